"""Measure protocol: images -> named attribute scores, each with a declared unit and range."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..errors import ProbeError


class MeasureError(ProbeError):
    """A measure was named or used wrongly; the message names the fix."""


KINDS = ("continuous", "categorical", "circular")


@dataclass(frozen=True)
class MeasureInfo:
    """One scored attribute. kind: continuous | categorical (a class index, no order) | circular (wraps at period,
    in the measure's unit). Code that treats measures differently reads these fields, never names or descriptions."""

    name: str
    unit: str
    lo: float
    hi: float
    description: str
    kind: str = "continuous"
    period: float | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise MeasureError(f"measure {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if (self.kind == "circular") != (self.period is not None):
            raise MeasureError(f"measure {self.name!r}: a circular measure needs a period, and only it takes one")

    def to_dict(self) -> dict:
        return asdict(self)


class Measure:
    """A scorer of several named attributes. Call with img [N, 3, H, W] in [-1, 1] -> {name: float64 [N]}.

    `device`: where it computes. "cpu" (the default; user measures too): it takes CPU images, and the engine runs
    it on a worker thread while the generator renders the next batch. "any": it computes on the images' device
    (no copy of the images to the host) and returns CPU numpy."""

    infos: tuple[MeasureInfo, ...] = ()
    device: str = "cpu"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.infos)

    def __call__(self, img: torch.Tensor) -> dict[str, np.ndarray]:
        raise NotImplementedError


def check_img(img: torch.Tensor, keep_device: bool = False) -> torch.Tensor:
    """Validate img [N, 3, H, W] (float, [-1, 1]) and return it detached, on CPU unless keep_device."""
    img = torch.as_tensor(img)
    if img.dim() != 4 or img.shape[1] != 3:
        raise MeasureError(f"measures take img [N, 3, H, W]; got shape {list(img.shape)}")
    img = img.detach().float()
    return img if keep_device else img.cpu()


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """[-1, 1] img [N, 3, H, W] -> uint8 [N, H, W, 3] (round half up, as image writers do)."""
    x = ((check_img(img).clamp(-1, 1) + 1) * 127.5 + 0.5).floor().clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().numpy()


def measure_kinds(infos) -> dict[str, tuple[str, float | None]]:
    """{measure: (kind, period)} of MeasureInfos, a MeasureSet (its `.infos`), or a study's measure_info
    ({name: info dict}). A stored dict without `kind` (studies written before kinds existed) takes the kind of the
    built-in measure of that name, else "continuous"."""
    if hasattr(infos, "infos"):
        infos = infos.infos
    items = infos.items() if isinstance(infos, dict) else ((getattr(i, "name", None), i) for i in infos)
    out: dict[str, tuple[str, float | None]] = {}
    builtin = None
    for name, info in items:
        if isinstance(info, MeasureInfo):
            out[info.name] = (info.kind, info.period)
            continue
        if not isinstance(info, dict):
            raise MeasureError(f"measure {name!r}: info must be a MeasureInfo or a dict, got {type(info).__name__}")
        if info.get("kind") is None:
            if builtin is None:
                from . import catalog

                builtin = {i.name: (i.kind, i.period) for i in catalog()}
            out[name] = builtin.get(name, ("continuous", None))
            continue
        kind, period = info["kind"], info.get("period")
        if kind not in KINDS:
            raise MeasureError(
                f"measure {name!r}: kind {kind!r} is not one of {', '.join(KINDS)}; fix the study's manifest.json"
            )
        if (kind == "circular") != (period is not None):
            raise MeasureError(
                f"measure {name!r}: a circular measure needs a period, and only it takes one; fix the "
                f"study's manifest.json"
            )
        out[name] = (kind, None if period is None else float(period))
    return out


def categorical(infos) -> list[str]:
    """Names of the categorical measures (class indices) of `infos` (as measure_kinds takes)."""
    return [m for m, (k, _) in measure_kinds(infos).items() if k == "categorical"]


def circular(infos) -> dict[str, float]:
    """{measure: period} of the circular measures of `infos` (as measure_kinds takes)."""
    return {m: p for m, (k, p) in measure_kinds(infos).items() if k == "circular"}


def wrap(d, period: float) -> np.ndarray:
    """Differences of a circular measure wrapped to [-period / 2, period / 2).  # d [...] -> float64 [...]"""
    return (np.asarray(d, dtype=np.float64) + period / 2) % period - period / 2


def difference(x, y, kind: str, period: float | None = None) -> np.ndarray:
    """x - y of one measure by its kind: wrapped for a circular one, 1.0 / 0.0 (class changed or not) for a
    categorical one, plain otherwise.  # x, y [...] -> float64 [...]"""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if kind == "categorical":
        return (np.round(x) != np.round(y)).astype(np.float64)
    if kind == "circular":
        return wrap(x - y, period)
    return x - y


def short_names(names) -> list[str]:
    """Measure names without the `prefix_` they all share, for table headers: ["sprite_x", "sprite_hue"] ->
    ["x", "hue"]; names without a common prefix (or a single name) are kept."""
    names = [str(n) for n in names]
    if len(names) < 2:
        return names
    head = names[0]
    cut = 0
    for i, ch in enumerate(head):
        if any(len(n) <= i or n[i] != ch for n in names[1:]):
            break
        if ch == "_":
            cut = i + 1
    return [n[cut:] if all(len(m) > cut for m in names) else n for n in names]
