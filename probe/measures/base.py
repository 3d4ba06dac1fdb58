"""Measure protocol: images -> named attribute scores, each with a declared unit and range."""
from __future__ import annotations

from dataclasses import dataclass, asdict

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
