"""Sprite factor measure: a small CNN trained on the exact labels of `probe.train.sprites` (see `probe train factors`).

Predicts the six factors of a sprite image in the dataset's units: shape (class index, as float), scale (fraction
of the image), rotation (degrees in [0, 90), predicted as an angle of period 90 deg), x, y (pixels), hue (degrees).
`features(img)` gives the penultimate-layer features used for the Frechet distance of `probe.train.quality`.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import Measure, MeasureError, MeasureInfo, check_img

# The sprite factors of the procedural dataset (`probe.train.sprites` renders them) in natural units.
FACTORS = ("shape", "scale", "rotation", "x", "y", "hue")
SHAPES = ("square", "ellipse", "heart")
RANGES = {
    "shape": (0, len(SHAPES)),
    "scale": (0.2, 0.4),
    "rotation": (0.0, 90.0),
    "x": (20.0, 44.0),
    "y": (20.0, 44.0),
    "hue": (0.0, 300.0),
}
UNITS = {
    "shape": "class index",
    "scale": "fraction of image",
    "rotation": "degrees",
    "x": "pixels",
    "y": "pixels",
    "hue": "degrees",
}
REG = ("scale", "x", "y", "hue")  # regression heads (targets normalised to [-1, 1] over RANGES)
FEATURES = 128


class FactorNet(nn.Module):
    """img [N, 3, 64, 64] -> shape logits [N, n_shapes], regression [N, 6] (scale, x, y, hue, cos 4rot, sin 4rot)."""

    def __init__(self, width: int = 16, features: int = FEATURES, n_shapes: int = len(SHAPES)):
        super().__init__()
        c = [width, width * 2, width * 4, width * 4]
        layers, cin = [], 3
        for b in c:  # 64 -> 32 -> 16 -> 8 -> 4
            layers += [nn.Conv2d(cin, b, 3, 2, 1), nn.ReLU(), nn.Conv2d(b, b, 3, 1, 1), nn.ReLU()]
            cin = b
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Linear(cin * 16, features), nn.ReLU())
        self.cls = nn.Linear(features, n_shapes)
        self.reg = nn.Linear(features, len(REG) + 2)

    def features(self, img):  # [N, 3, 64, 64] -> [N, F]
        return self.fc(self.conv(img).flatten(1))

    def forward(self, img):
        h = self.features(img)
        return self.cls(h), self.reg(h)


def encode(factors: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Factors -> training targets: shape class [N] (long), regression [N, 6] (normalised; rotation as cos/sin of 4x)."""
    cols = []
    for f in REG:
        lo, hi = RANGES[f]
        cols.append(2 * (np.asarray(factors[f], dtype=np.float64) - lo) / (hi - lo) - 1)
    rot = np.deg2rad(np.asarray(factors["rotation"], dtype=np.float64)) * 4
    cols += [np.cos(rot), np.sin(rot)]
    return (
        torch.as_tensor(np.asarray(factors["shape"]), dtype=torch.long),
        torch.as_tensor(np.stack(cols, 1), dtype=torch.float32),
    )


def decode(logits: torch.Tensor, reg: torch.Tensor) -> dict[str, np.ndarray]:
    """Network outputs -> factors in dataset units.  # {factor: float64 [N]}"""
    out = {"shape": logits.argmax(1).double().numpy()}
    r = reg.double().numpy()
    for i, f in enumerate(REG):
        lo, hi = RANGES[f]
        out[f] = (r[:, i] + 1) / 2 * (hi - lo) + lo
    out["rotation"] = np.rad2deg(np.arctan2(r[:, len(REG) + 1], r[:, len(REG)])) % 360 / 4  # [0, 90)
    return out


def weights_path():
    return files("probe.measures") / "weights" / "sprite_factors.pt"


@lru_cache(maxsize=2)
def load_factor_net(path: str | None = None) -> FactorNet:
    """The shipped (or a given) factor CNN, loaded with weights_only=True, in eval mode."""
    p = str(path or weights_path())
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise MeasureError(f"sprite factor weights {p} are missing; train them with `probe train factors`") from None
    net = FactorNet(**ck["config"])
    net.load_state_dict(ck["state_dict"])
    return net.eval().requires_grad_(False)


class SpriteFactors(Measure):
    """Sprite factors predicted by the factor CNN (64x64 inputs; other sizes are resized by area/bilinear)."""

    infos = (
        MeasureInfo(
            "sprite_shape",
            "class index",
            0.0,
            float(len(SHAPES) - 1),
            "predicted shape: " + ", ".join(f"{i} = {s}" for i, s in enumerate(SHAPES)),
            kind="categorical",
        ),
        MeasureInfo(
            "sprite_scale",
            "fraction of image",
            *RANGES["scale"],
            "sprite size / image size (square side, ellipse major axis, heart width)",
        ),
        MeasureInfo(
            "sprite_rotation",
            "degrees",
            *RANGES["rotation"],
            "counter-clockwise rotation on screen, period 90 deg",
            kind="circular",
            period=90.0,
        ),
        MeasureInfo("sprite_x", "pixels", 0.0, 64.0, "sprite centroid x in the 64 px image (0 = left)"),
        MeasureInfo("sprite_y", "pixels", 0.0, 64.0, "sprite centroid y in the 64 px image (0 = top)"),
        MeasureInfo("sprite_hue", "degrees", *RANGES["hue"], "HSV hue of the sprite colour (data range [0, 300))"),
    )

    def __init__(self, path: str | None = None, batch_size: int = 256):
        self.net = load_factor_net(path)
        self.batch_size = int(batch_size)

    def _prep(self, img) -> torch.Tensor:
        img = check_img(img).clamp(-1, 1)
        if img.shape[-2:] != (64, 64):
            img = F.interpolate(
                img,
                size=(64, 64),
                mode="area" if img.shape[-1] > 64 else "bilinear",
                align_corners=None if img.shape[-1] > 64 else False,
            )
        return img

    @torch.no_grad()
    def _run(self, img):
        img = self._prep(img)
        outs = [self.net(img[i : i + self.batch_size]) for i in range(0, len(img), self.batch_size)]
        if not outs:
            return torch.zeros(0, len(SHAPES)), torch.zeros(0, len(REG) + 2)
        return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])

    def __call__(self, img: torch.Tensor) -> dict[str, np.ndarray]:
        """img [N, 3, H, W] in [-1, 1] -> {sprite_<factor>: float64 [N]}"""
        f = decode(*self._run(img))
        return {f"sprite_{k}": f[k] for k in ("shape", "scale", "rotation", "x", "y", "hue")}

    def probs(self, img: torch.Tensor) -> np.ndarray:
        """Shape class probabilities.  # img [N, 3, H, W] -> [N, n_shapes]"""
        return torch.softmax(self._run(img)[0], 1).double().numpy()

    @torch.no_grad()
    def features(self, img: torch.Tensor) -> np.ndarray:
        """Penultimate-layer features (for Frechet distances).  # img [N, 3, H, W] -> [N, F]"""
        img = self._prep(img)
        outs = [self.net.features(img[i : i + self.batch_size]) for i in range(0, len(img), self.batch_size)]
        return (torch.cat(outs) if outs else torch.zeros(0, FEATURES)).double().numpy()
