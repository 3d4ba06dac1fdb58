"""Drag evaluation on sprites (the "centres" protocol): drag object A's centre to object B's centre.

Pairs of generated samples (A, B) = samples (2i, 2i + 1) of `model.sample(2 n, seed)`. The handle is A's centre
and the target B's centre, both read by the centre measures the model's zoo entry names (`defaults.centre`: the
factor CNN's `sprite_x`, `sprite_y` for sprites; for other models the image measures' luma centroid,
`centroid_x`, `centroid_y`), converted to pixels. After the drag the centre is measured again on the edited
image: MD = distance to the target (px), before ("no edit") and after. Time, steps, and the change outside discs
around handle and target come from `probe.edit.evaluate`; `drift_<measure>` is the mean absolute change of every
other measure, by its MeasureInfo kind (categorical, such as `sprite_shape`: the share of edits that changed the
class; circular, such as `sprite_rotation`: differences wrap at its period): a drag should move the sprite and
leave its shape, scale, rotation and hue alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..measures.base import difference, measure_kinds, short_names
from ..models.base import Generator
from .drag import DragError, make_drag
from .evaluate import EDIT_COLUMNS, edit_rows, summarize, to_markdown


def centre_spec(
    model: Generator, centre: Sequence[str] | None = None, measures: Sequence[str] | None = None
) -> tuple[tuple[str, str], list[str]]:
    """The (x, y) centre measures and the measures scored with them: as given, else the model's
    `defaults.centre` and `defaults.measures` (sprites: `sprite_x`, `sprite_y` of the factor CNN; generic models:
    the image measures' luma centroid)."""
    centre = tuple(model.defaults.centre if centre is None else centre)
    if len(centre) != 2 or not all(isinstance(m, str) for m in centre):
        raise DragError(f"centre: expected two measure names (x, y), got {list(centre)!r}")
    measures = list(model.defaults.measures if measures is None else measures)
    return centre, measures


class CentreMeasure:
    """img [N, 3, H, W] -> centres [N, 2] (x, y pixel-index coordinates) and the other measures {name: [N]}.

    centre: the (x, y) measures; each one's declared range [lo, hi] spans the image width (sprite_x: 0..64 px of
    the factor CNN's 64 px input; centroid_x: 0..1 of the width). measures: scored besides (drift)."""

    def __init__(self, centre: Sequence[str] = ("centroid_x", "centroid_y"), measures: Sequence[str] = ()):
        from ..measures import MeasureSet

        self.x, self.y = centre
        have = MeasureSet(list(measures)).names if measures else []
        self.measures = MeasureSet(list(measures) + [m for m in centre if m not in have])
        self.ranges = {m: (self.measures.info(m).lo, self.measures.info(m).hi) for m in centre}
        self.others = [m for m in self.measures.names if m not in centre]
        self.kinds = measure_kinds(self.measures)

    @torch.no_grad()
    def __call__(self, img: torch.Tensor) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        s = self.measures(img)
        res = img.shape[-1]

        def px(m):  # the measure's range -> pixels of this image
            lo, hi = self.ranges[m]
            return (s[m] - lo) * (res / (hi - lo))

        xy = np.stack([px(self.x), px(self.y)], 1) - 0.5  # edge-based coordinates -> pixel centres
        return xy, {m: np.asarray(s[m], float) for m in self.others}

    def drift(self, m: str, dv: float) -> float:
        """How far measure m moved: |difference| by its kind (a categorical one: 1.0 when the class changed)."""
        kind, period = self.kinds[m]
        if kind == "categorical":
            return float(dv != 0)
        return float(abs(difference(dv, 0.0, kind, period)))


def sprite_drag_eval(
    model: Generator,
    n_pairs: int = 20,
    seed: int = 0,
    methods: Sequence[str] = ("draggan", "freedrag"),
    drag_kwargs: dict | None = None,
    radius: float | None = None,
    centre: Sequence[str] | None = None,
    measures: Sequence[str] | None = None,
    min_distance: float = 0.0,
    progress: Callable[[dict], None] | None = None,
    oracles: bool = True,
) -> pd.DataFrame:
    """One row per edit: EDIT_COLUMNS (points = 1) + drift_<measure> per other measure.

    model: any Generator (StyleGAN-like: the first ws rows are optimised); pairs (A, B) = samples (2i, 2i + 1);
    drag_kwargs: {method: {param: value}} for DragGAN / FreeDrag (unset ones: the model's `defaults.drag`);
    radius: discs excluded from outside_change (default H / 8); centre, measures: the (x, y) centre measures and
    the measures whose drift is reported (default: the model's `defaults.centre`, `defaults.measures`); min_distance: skip pairs whose centres are closer than this (px); oracles: also score the ideal
    drags done as warps of sprite A (`evaluate.oracle_warp`: "oracle-local", "oracle-shift"), the table's ceiling.
    """
    if n_pairs < 1:
        raise DragError(f"--pairs must be >= 1, got {n_pairs}")
    cm = CentreMeasure(*centre_spec(model, centre, measures))
    drags = {m: make_drag(m, **(drag_kwargs or {}).get(m, {})) for m in methods}
    res = model.resolution
    radius = res / 8 if radius is None else radius
    z = model.sample(4 * n_pairs, seed)
    with torch.no_grad():
        imgs = torch.cat([model.synthesize(z[i : i + 64], "z") for i in range(0, len(z), 64)])
    xy, other = cm(imgs)
    xy = np.clip(xy, 0, res - 1)
    pairs = [
        (2 * i, 2 * i + 1) for i in range(len(z) // 2) if np.linalg.norm(xy[2 * i] - xy[2 * i + 1]) >= min_distance
    ][:n_pairs]
    if len(pairs) < n_pairs:
        raise DragError(f"only {len(pairs)} pairs have centres at least {min_distance} px apart; use fewer --pairs")
    rows = []
    for i, (a, b) in enumerate(pairs):

        def locate(img, a=a):  # the centre, and how far every other factor moved from sprite A's
            xy_new, other_new = cm(img[None])
            return xy_new, {f"drift_{m}": cm.drift(m, v[0] - other[m][a]) for m, v in other_new.items()}

        for row in edit_rows(
            model,
            z[a : a + 1],
            imgs[a],
            xy[a][None],
            xy[b][None],
            drags,
            locate,
            radius,
            oracles,
            {"points": 1, "pair": i},
        ):
            rows.append(row)
            if progress is not None:
                progress(row)
    drift = [f"drift_{m}" for m in cm.others]
    return pd.DataFrame(rows, columns=EDIT_COLUMNS + drift)


def summarize_drift(edits: pd.DataFrame) -> pd.DataFrame:
    """probe.edit.evaluate.summarize plus the mean drift_<measure> per method (0 on the "no edit" row)."""
    s = summarize(edits)
    drift = [c for c in edits.columns if c.startswith("drift_")]
    means = edits.groupby(["points", "method"], sort=False)[drift].mean()
    for c in drift:
        s[c] = [0.0 if m == "no edit" else float(means.loc[(p, m), c]) for p, m in zip(s["points"], s["method"])]
    return s


def drift_markdown(summary: pd.DataFrame, infos=None) -> str:
    """to_markdown of the summary with one extra column per drift_<measure>. infos: the measures' infos (as
    `probe.measures.measure_kinds` takes; default the built-in measures of those names)."""
    drift = [c for c in summary.columns if c.startswith("drift_")]
    lines = to_markdown(summary).split("\n")
    names = [c.removeprefix("drift_") for c in drift]
    kinds = measure_kinds(infos if infos is not None else {m: {} for m in names})
    short = dict(zip(names, short_names(names)))

    def label(c):
        m = c.removeprefix("drift_")
        categorical = kinds.get(m, ("continuous", None))[0] == "categorical"
        return f"{short[m]} changed (share)" if categorical else f"mean abs Δ {short[m]}"

    lines[0] += " " + " | ".join(label(c) for c in drift) + " |"
    lines[1] += "---|" * len(drift)
    for i, (_, r) in enumerate(summary.iterrows()):
        lines[2 + i] += " " + " | ".join(f"{r[c]:.2f}" for c in drift) + " |"
    return "\n".join(lines)


def drag_eval_cli(
    model: str,
    pairs: int = 20,
    seed: int = 0,
    steps: int = 200,
    out: Path | None = None,
    echo: Callable[..., None] | None = None,
    oracles: bool = True,
) -> pd.DataFrame:
    """`probe drag-eval` with the centres protocol: run sprite_drag_eval, print the table, write drag_eval.csv / .md."""
    from ..models import load_model

    echo = echo or (lambda *a, **k: print(*a))
    g = load_model(model)

    def show(row):
        echo(
            f"pair {row['pair']:>3} {row['method']:<9} MD {row['md_before']:5.2f} -> {row['md_after']:5.2f} px, "
            f"{row['steps']:>3} steps, {row['seconds']:5.2f} s",
            err=True,
        )

    edits = sprite_drag_eval(
        g,
        n_pairs=pairs,
        seed=seed,
        progress=show,
        oracles=oracles,
        drag_kwargs={m: {"max_steps": steps} for m in ("draggan", "freedrag")},
    )
    table = drift_markdown(summarize_drift(edits), CentreMeasure(*centre_spec(g)).measures)
    echo(table)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        edits.to_csv(out / "drag_eval.csv", index=False)
        (out / "drag_eval.md").write_text(table + "\n")
        echo(f"wrote {out}/drag_eval.csv and {out}/drag_eval.md")
    return edits


__all__ = ["sprite_drag_eval", "summarize_drift", "drift_markdown", "drag_eval_cli", "CentreMeasure", "centre_spec"]
