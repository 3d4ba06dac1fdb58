"""Procedural sprites in the manner of dSprites, rendered by our own code: 64x64 colour, exact labels.

Factors (independent, uniform; natural units):

| factor | range | unit |
|---|---|---|
| shape | {0: square, 1: ellipse, 2: heart} | class index |
| scale | [0.2, 0.4) | sprite size / image size (square side, ellipse major axis, heart width) |
| rotation | [0, 90) | degrees, counter-clockwise on screen, about the sprite's area centroid |
| x, y | [20, 44) | pixels: the sprite's area centroid (x from the left edge, y from the top edge) |
| hue | [0, 300) | degrees of HSV hue (saturation 1, value 1); no wrap, so red (0) and magenta (300) stay apart |

Every shape is unambiguous over the rotation range (the square repeats every 90 deg, the 2:1 ellipse every 180,
the heart every 360) and every sprite lies fully inside the frame (its radius is at most 0.4 * 64 / sqrt(2) = 18.1 px
< 20 px). Background is black. Rendering is deterministic: the coverage of each pixel is estimated on a 4x4
supersampling grid (256x256 inside tests, then 4x4 area-averaged), so edges are anti-aliased.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..measures.sprites import FACTORS, RANGES, SHAPES, UNITS  # noqa: F401 - the factor definitions, shared with the measure

RES = 64
SUPERSAMPLE = 4

_ELLIPSE_MINOR = 0.5  # minor / major axis
_HEART_K = 0.5 / 1.14  # heart curve x extent is +-1.14: scaled to width 1 (in units of size)


def _heart_inside(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Heart of unit width, point down on screen; u right, v down, in units of size."""
    hx, hy = u / _HEART_K, -v / _HEART_K  # curve coordinates (y up)
    return (hx.square() + hy.square() - 1) ** 3 - hx.square() * hy**3 <= 0


def _heart_centroid() -> float:
    """Vertical area centroid of the heart (screen v, units of size), so that (x, y) is the centroid."""
    s = torch.linspace(-0.7, 0.7, 1401, dtype=torch.float64)
    inside = _heart_inside(s[None, :], s[:, None]).double()
    return float((inside.sum(1) * s).sum() / inside.sum())


_HEART_DV = _heart_centroid()


def _inside(shape: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """u, v: [N, P, P] sprite-frame coordinates in units of size (centroid at 0) -> bool [N, P, P]."""
    sq = (u.abs() <= 0.5) & (v.abs() <= 0.5)
    el = (u / 0.5).square() + (v / (0.5 * _ELLIPSE_MINOR)).square() <= 1
    he = _heart_inside(u, v + _HEART_DV)
    s = shape[:, None, None]
    return torch.where(s == 0, sq, torch.where(s == 1, el, he))


def hue_to_rgb(hue: torch.Tensor) -> torch.Tensor:
    """HSV (hue deg, s=1, v=1) -> rgb in [0, 1].  # [N] -> [N, 3]"""
    h = (hue % 360) / 60.0
    k = torch.stack([(5 + h) % 6, (3 + h) % 6, (1 + h) % 6], 1)  # standard hsv2rgb formula
    return 1 - torch.clamp(torch.minimum(k, 4 - k), 0, 1)


def sample_factors(n: int, seed: int) -> dict[str, np.ndarray]:
    """Independent uniform factors for n sprites (deterministic for a seed).  # {factor: [n]}"""
    rng = np.random.default_rng(int(seed))
    out = {"shape": rng.integers(0, len(SHAPES), n).astype(np.int64)}
    for f in FACTORS[1:]:
        lo, hi = RANGES[f]
        out[f] = rng.uniform(lo, hi, n)
    return out


def check_factors(factors: dict) -> dict[str, np.ndarray]:
    """Validate factor arrays (all six, same length, shape index valid)."""
    missing = [f for f in FACTORS if f not in factors]
    if missing:
        raise ValueError(f"sprite factors lack {missing}; give all of {list(FACTORS)}")
    out = {f: np.asarray(factors[f], dtype=np.float64).reshape(-1) for f in FACTORS}
    n = {len(v) for v in out.values()}
    if len(n) != 1:
        raise ValueError(f"sprite factors must have equal lengths, got { {f: len(v) for f, v in out.items()} }")
    if len(out["shape"]) and not np.isin(out["shape"], np.arange(len(SHAPES))).all():
        raise ValueError(f"sprite shape must be a class index in 0..{len(SHAPES) - 1} ({SHAPES})")
    return out


@torch.no_grad()
def render(factors: dict, chunk: int = 64) -> torch.Tensor:
    """Render sprites from factors (deterministic, anti-aliased).  # {factor: [N]} -> img [N, 3, 64, 64] in [-1, 1]"""
    f = check_factors(factors)
    n = len(f["shape"])
    P = RES * SUPERSAMPLE
    grid = (torch.arange(P, dtype=torch.float32) + 0.5) / SUPERSAMPLE  # pixel coordinates of subsamples
    outs = []
    for i in range(0, n, chunk):
        sl = slice(i, i + chunk)
        t = {k: torch.as_tensor(v[sl], dtype=torch.float32) for k, v in f.items()}
        size = (t["scale"] * RES)[:, None, None]
        dx = grid[None, None, :] - t["x"][:, None, None]
        dy = grid[None, :, None] - t["y"][:, None, None]
        th = torch.deg2rad(t["rotation"])[:, None, None]
        c, s = torch.cos(th), torch.sin(th)
        # screen y points down: a counter-clockwise rotation on screen by th maps sprite (u, v) to
        # (dx, dy) = (c u + s v, -s u + c v); invert it
        u = (c * dx - s * dy) / size
        v = (s * dx + c * dy) / size
        cover = _inside(t["shape"].long(), u, v).float()[:, None]  # [n, 1, P, P]
        cover = F.avg_pool2d(cover, SUPERSAMPLE)  # [n, 1, 64, 64]
        rgb = hue_to_rgb(t["hue"])[:, :, None, None]
        outs.append(cover * rgb * 2 - 1)
    if not outs:
        return torch.zeros(0, 3, RES, RES)
    return torch.cat(outs)


def dataset(n: int, seed: int) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    """n sprites with their exact factors.  # -> img [n, 3, 64, 64] in [-1, 1], {factor: [n]}"""
    factors = sample_factors(n, seed)
    return render(factors), factors


def grid_png(img: torch.Tensor, path, nrow: int = 8) -> None:
    """Write img [N, 3, H, W] in [-1, 1] as one PNG grid (1 px gray separators)."""
    from PIL import Image

    n, _, h, w = img.shape
    rows = math.ceil(n / nrow)
    canvas = torch.full((3, rows * (h + 1) + 1, nrow * (w + 1) + 1), 0.5)
    x = (img.detach().cpu().clamp(-1, 1) + 1) / 2
    for k in range(n):
        r, c = divmod(k, nrow)
        canvas[:, 1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (w + 1) : 1 + c * (w + 1) + w] = x[k]
    arr = (canvas.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    Image.fromarray(arr).save(path)
