"""Edit quality: an honest verdict on a drag, computed per edit, and an early stop when the image falls apart.

A drag's own status says whether its tracked handles reached their targets; it cannot see that the rest of the
image has changed beyond recognition. Three numbers can:

- `handle_px`: the mean distance of the tracked handles to their targets (px), the drag's own measure;
- `outside_change`: the mean |after - before| (0-255 units, mean over RGB) over the pixels farther than `radius`
  (default H / 8) from every handle and target: what an edit of those points should leave alone;
- `drift`: per measure of the model's default measures (`model.default_measures`; faces: gender, age, yaw, roll,
  face position and scale), |after - before| / (hi - lo) of its `MeasureInfo` range (circular measures wrap at
  their period); a measure that was finite before and is NaN after (no face found any more) drifts by 1.

`degraded` is True when outside_change > max_outside (default `MAX_OUTSIDE` = 20/255) or the largest drift >
max_drift (default `MAX_DRIFT` = 0.5 of a measure's range). The thresholds were read off the face model: a
whole-image shift of the face by its landmark displacement (the `oracle-shift` row of `probe drag-eval`) changes
13-16/255 outside, while drags that turn the face into a blob change 37-57/255 (docs/readme/50-editing.md).

`QualityGuard.watch(method, ...)` consumes a drag's step generator, checks the outside change at every step and
the measures every `every` steps, and calls `method.stop()` as soon as the image degrades: the run then ends
with status "degraded" and the image of the step that crossed the threshold, never a blob reported as success.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ProbeError
from ..models.base import Generator
from .drag import DragResult, DragStep

MAX_OUTSIDE = 20.0
MAX_DRIFT = 0.5


class QualityError(ProbeError):
    """A quality check could not run as asked; the message names the field and the fix."""


@dataclass
class EditQuality:
    """The verdict on one edited image (see the module docstring for each field)."""

    handle_px: float
    outside_change: float
    drift: dict = field(default_factory=dict)
    degraded: bool = False
    reason: str = ""

    @property
    def max_drift(self) -> float:
        """The largest measure drift (0 when no measure was scored)."""
        vals = [v for v in self.drift.values() if not math.isnan(v)]
        return max(vals) if vals else 0.0

    def as_dict(self) -> dict:
        """Flat JSON-ready scores: handle_px, outside_change, max_drift, degraded, reason, drift_<measure>."""
        return {
            "handle_px": self.handle_px,
            "outside_change": self.outside_change,
            "max_drift": self.max_drift,
            "degraded": self.degraded,
            "reason": self.reason,
            **{f"drift_{k}": v for k, v in self.drift.items()},
        }


def outside_change(before: torch.Tensor, after: torch.Tensor, points: np.ndarray, radius: float) -> float:
    """Mean |after - before| (0..255) over pixels farther than `radius` from every point.  # img [3, H, W]"""
    h, w = before.shape[-2:]
    yy, xx = np.mgrid[0:h, 0:w]
    far = np.ones((h, w), bool)
    for x, y in np.asarray(points, dtype=np.float64).reshape(-1, 2):
        far &= (xx - x) ** 2 + (yy - y) ** 2 > radius**2
    if not far.any():
        return float("nan")
    diff = (after.detach().float() - before.detach().float()).abs().mean(0).cpu().numpy() * 127.5
    return float(diff[far].mean())


def measure_drift(before: dict, after: dict, infos: Sequence) -> dict:
    """|after - before| / (hi - lo) per measure (circular: the shorter way round).  # {name: float}

    before / after: {name: value} of one image; infos: the `MeasureInfo`s. Finite -> NaN counts as 1 (lost).
    """
    out = {}
    for info in infos:
        a, b = float(before[info.name]), float(after[info.name])
        if math.isnan(a):
            out[info.name] = float("nan")
            continue
        if math.isnan(b):
            out[info.name] = 1.0
            continue
        d = abs(b - a)
        if info.kind == "circular":
            d = d % info.period
            d = min(d, info.period - d)
        out[info.name] = d / (info.hi - info.lo) if info.hi > info.lo else d
    return out


class QualityGuard:
    """Scores edits against their start image and stops drags that degrade it.

    measures: names for `probe.measures.MeasureSet` (None: the model's default measures; () for none);
    radius: px of the discs around handles and targets left out of outside_change (None: H / 8); max_outside,
    max_drift: the degradation thresholds; every: score the measures every this many steps (the outside change
    is checked at every step; the final image is always fully scored); early_stop: stop the drag when degraded.
    """

    def __init__(
        self,
        measures: Sequence[str] | None = None,
        radius: float | None = None,
        max_outside: float = MAX_OUTSIDE,
        max_drift: float = MAX_DRIFT,
        every: int = 5,
        early_stop: bool = True,
    ):
        if max_outside <= 0 or max_drift <= 0 or every < 1:
            raise QualityError(
                f"max_outside and max_drift must be > 0 and every >= 1; got max_outside="
                f"{max_outside}, max_drift={max_drift}, every={every}"
            )
        self.measures, self.radius = measures, radius
        self.max_outside, self.max_drift, self.every, self.early_stop = (
            float(max_outside),
            float(max_drift),
            int(every),
            bool(early_stop),
        )
        self._set, self._names = None, None

    def _measure_set(self, model: Generator):
        names = tuple(self.measures if self.measures is not None else getattr(model, "default_measures", ()))
        if not names:
            return None
        if self._set is None or self._names != names:  # one set per guard: its providers load once
            from ..measures import MeasureSet

            self._set, self._names = MeasureSet(list(names)), names
        return self._set

    def bind(self, model: Generator, before: torch.Tensor, handles, targets) -> QualityGuard:
        """Fix the start image [3, H, W] and the points [K, 2] later checks compare against."""
        self._set = self._measure_set(model)
        self._before = before.detach().cpu()
        self._points = np.concatenate(
            [np.asarray(handles, float).reshape(-1, 2), np.asarray(targets, float).reshape(-1, 2)]
        )
        self._targets = np.asarray(targets, float).reshape(-1, 2)
        self._radius = before.shape[-1] / 8 if self.radius is None else float(self.radius)
        self._scores0 = self._score(self._before) if self._set is not None else {}
        return self

    def _score(self, img: torch.Tensor) -> dict:
        got = self._set(img.detach().cpu()[None])
        return {k: float(v[0]) for k, v in got.items()}

    def check(self, img: torch.Tensor, points, measures: bool = True) -> EditQuality:
        """The verdict on img [3, H, W] with tracked points [K, 2] (after `bind`)."""
        img = img.detach().cpu()
        hp = float(np.linalg.norm(np.asarray(points, float).reshape(-1, 2) - self._targets, axis=1).mean())
        oc = outside_change(self._before, img, self._points, self._radius)
        drift = measure_drift(self._scores0, self._score(img), self._set.infos) if measures and self._set else {}
        q = EditQuality(hp, oc, drift)
        reasons = []
        if not math.isnan(oc) and oc > self.max_outside:
            reasons.append(f"change outside the handle region {oc:.1f}/255 > {self.max_outside:g}")
        if q.max_drift > self.max_drift:
            worst = max((k for k in drift if not math.isnan(drift[k])), key=lambda k: drift[k])
            reasons.append(f"{worst} drifted by {drift[worst]:.2f} of its range > {self.max_drift:g}")
        q.degraded, q.reason = bool(reasons), "; ".join(reasons)
        return q

    def watch(
        self, method, model: Generator, latent, space: str, handles, targets, steps: Iterator, offsets=None
    ) -> Iterator:
        """Pass a drag's items through, with `quality` set; stop the drag (method.stop()) once degraded."""
        bound = False
        flagged = None
        n = 0
        for item in steps:
            if isinstance(item, DragStep):
                if not bound:  # the first step shows the image before any update
                    self.bind(model, item.img, handles, targets)
                    bound = True
                n += 1
                item.quality = self.check(item.img, item.points, measures=n % self.every == 0)
                if item.quality.degraded and flagged is None:
                    flagged = item.quality
                    if self.early_stop:
                        method.stop()
                yield item
            elif isinstance(item, DragResult):
                if not bound:
                    with torch.no_grad(), model.offsets(model.check_offsets(offsets)):
                        before = model.synthesize(model.check_latent(latent, space), space)[0]
                    self.bind(model, before, handles, targets)
                q = self.check(item.img, item.points)
                item.quality = q
                if q.degraded or flagged is not None:
                    item.status = "degraded"
                    item.reason = "image degraded: " + (q.reason if q.degraded else flagged.reason)
                    item.converged = False
                yield item
            else:
                yield item


def edit_record(res: DragResult) -> dict:
    """The columns a drag run fills in the `edits` table (`probe.schema.EDIT_COLUMNS`): kind, method, site, space,
    steps, points, handle_dist_px, outside_change, quality (further scores), params, status, seconds."""
    q = res.quality.as_dict() if res.quality is not None else {}
    return {
        "kind": "drag",
        "method": res.method,
        "site": res.site,
        "space": res.space,
        "steps": int(res.steps),
        "points": {"handles": res.handles.tolist(), "targets": res.targets.tolist(), "final": res.points.tolist()},
        "handle_dist_px": float(res.distances.mean()),
        "outside_change": q.get("outside_change", float("nan")),
        "quality": {k: v for k, v in q.items() if k not in ("handle_px", "outside_change")} | {"reason": res.reason},
        "params": {k: v for k, v in res.params.items()},
        "status": res.status,
        "seconds": float(res.seconds),
    }
