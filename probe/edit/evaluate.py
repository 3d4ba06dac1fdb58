"""Drag evaluation: the DragGAN face-landmark protocol on a face model.

Pairs of generated faces (A, B): drag A's dlib landmarks to B's, re-detect the landmarks on the edited image and
report the mean distance (MD) to the targets, before ("no edit") and after, with time per edit, optimisation
steps, and the mean absolute pixel change outside discs around the handles and targets (0..255 units).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..models.base import Generator
from .drag import DragError, make_drag

EDIT_COLUMNS = ["method", "points", "pair", "md_before", "md_after", "seconds", "steps", "converged",
                "outside_change"]


def outside_change(before: torch.Tensor, after: torch.Tensor, points: np.ndarray, radius: float) -> float:
    """Mean |after - before| (0..255) over pixels farther than `radius` from every point.  # img [3, H, W]"""
    h, w = before.shape[-2:]
    yy, xx = np.mgrid[0:h, 0:w]
    far = np.ones((h, w), bool)
    for x, y in points:
        far &= (xx - x) ** 2 + (yy - y) ** 2 > radius ** 2
    if not far.any():
        return float("nan")
    diff = (after - before).abs().mean(0).cpu().numpy() * 127.5
    return float(diff[far].mean())


def oracle_warp(img: torch.Tensor, handles: np.ndarray, targets: np.ndarray, sigma: float | None) -> torch.Tensor:
    """The ideal drag as a warp: content at each handle lands exactly on its target.  # img [3, H, W] -> [3, H, W]

    sigma (px): Gaussian falloff of each handle's displacement around its target (a local edit); None: the whole
    image is translated by the mean displacement (the most global edit).
    """
    h, w = img.shape[-2:]
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    d = torch.as_tensor(np.asarray(targets, np.float64) - np.asarray(handles, np.float64), dtype=torch.float32)
    sx, sy = xx.clone(), yy.clone()
    if sigma is None:
        sx, sy = sx - d[:, 0].mean(), sy - d[:, 1].mean()
    else:
        for (tx, ty), (dx, dy) in zip(np.asarray(targets, np.float64), d):
            wgt = torch.exp(-((xx - tx) ** 2 + (yy - ty) ** 2) / (2 * sigma ** 2))
            sx, sy = sx - dx * wgt, sy - dy * wgt
    grid = torch.stack([(2 * sx + 1) / w - 1, (2 * sy + 1) / h - 1], -1)[None]
    return F.grid_sample(img[None].float(), grid, mode="bilinear", padding_mode="border", align_corners=False)[0]


ORACLES = {"oracle-local": lambda res: res / 16, "oracle-shift": lambda res: None}


def edit_rows(model: Generator, z: torch.Tensor, img: torch.Tensor, handles: np.ndarray, targets: np.ndarray,
              drags: dict, locate, radius: float, oracles: bool = True, base: dict | None = None):
    """Score every drag of one image A (and the oracle warps) by locating the dragged points on each result.

    z [1, z_dim], img [3, H, W]: image A; handles, targets [k, 2] (x, y px); drags: {method: DragGAN | FreeDrag};
    locate(img [3, H, W]) -> (points [k, 2], {extra column: value}); base: columns set in every row (points,
    pair). Yields one row per method: EDIT_COLUMNS + the extra columns.
    """
    res = img.shape[-1]
    edits = {name: d.run(model, z, "z", handles, targets) for name, d in drags.items()}
    if oracles:
        edits.update({name: oracle_warp(img, handles, targets, sigma(res)) for name, sigma in ORACLES.items()})
    md0 = float(np.linalg.norm(handles - targets, axis=1).mean())
    for name, r in edits.items():
        warp = isinstance(r, torch.Tensor)
        after = r if warp else r.img
        pts, extra = locate(after)
        yield {"method": name, **(base or {}), "md_before": md0,
               "md_after": float(np.linalg.norm(pts - targets, axis=1).mean()),
               "seconds": 0.0 if warp else r.seconds, "steps": 0 if warp else r.steps,
               "converged": np.nan if warp else r.converged,
               "outside_change": outside_change(img, after, np.concatenate([handles, targets]), radius), **extra}


def detectable(imgs: torch.Tensor) -> np.ndarray:
    """Which images dlib's HOG face detector finds a face in (upsampled once).  # img [N, 3, H, W] -> bool [N]"""
    import dlib
    det = dlib.get_frontal_face_detector()
    u8 = ((imgs.detach().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    return np.array([len(det(np.ascontiguousarray(a), 1)) > 0 for a in u8], bool)


def drag_eval(model: Generator, n_pairs: int = 20, seed: int = 0, methods: Sequence[str] = ("draggan", "freedrag"),
              settings: Sequence[int] = (1, 5), drag_kwargs: dict | None = None, radius: float | None = None,
              progress=None, oracles: bool = True) -> pd.DataFrame:
    """One row per edit (EDIT_COLUMNS): method, points (1 | 5), pair, MD before/after (px), seconds, steps, ...

    Faces: draws from model.sample(., seed) that dlib's HOG detector finds a face in (the protocol uses faces an
    off-the-shelf detector handles), taken in order; pair i = (A, B) = faces 2i, 2i + 1. The 1-point setting drags
    landmark i mod 5 (eye corners, nose base in turn); the 5-point setting drags all five. drag_kwargs:
    {method: {param: value}} passed to DragGAN / FreeDrag. radius: of the discs excluded from outside_change
    (default H / 8). oracles: also score two ideal drags done as warps of image A (`oracle_warp`): "oracle-local"
    (each handle's content moved exactly onto its target, Gaussian falloff sigma = H / 16) and "oracle-shift" (the
    whole image translated by the mean displacement). They calibrate the metric: the MD a perfect edit of that
    extent would get from landmark re-detection.
    """
    from ..measures.faces import face_landmarks
    if n_pairs < 1:
        raise DragError(f"--pairs must be >= 1, got {n_pairs}")
    bad = [s for s in settings if s not in (1, 5)]
    if bad:
        raise DragError(f"--points: settings must be 1 and/or 5 landmarks, got {bad}")
    drag_kwargs = drag_kwargs or {}
    drags = {m: make_drag(m, **drag_kwargs.get(m, {})) for m in methods}
    res = model.resolution
    radius = res / 8 if radius is None else radius
    z = model.sample(8 * n_pairs + 16, seed)
    with torch.no_grad():
        imgs = model.synthesize(z, "z")
    keep = np.flatnonzero(detectable(imgs))
    if len(keep) < 2 * n_pairs:
        raise DragError(f"only {len(keep)} of {len(z)} samples hold a detectable face; use fewer --pairs")
    z, imgs = z[keep[:2 * n_pairs]], imgs[keep[:2 * n_pairs]]
    lm = np.clip(np.asarray(face_landmarks(imgs), dtype=np.float64), 0, res - 1)  # [2n, 5, 2]
    rows = []
    for i in range(n_pairs):
        a, b = lm[2 * i], lm[2 * i + 1]
        for k in settings:
            idx = [i % 5] if k == 1 else list(range(5))

            def locate(img, idx=idx):  # re-detect the dragged landmarks
                return np.asarray(face_landmarks(img[None]), dtype=np.float64)[0][idx], {}
            for row in edit_rows(model, z[2 * i:2 * i + 1], imgs[2 * i], a[idx], b[idx], drags, locate, radius,
                                 oracles, {"points": k, "pair": i}):
                rows.append(row)
                if progress is not None:
                    progress(row)
    return pd.DataFrame(rows, columns=EDIT_COLUMNS)


def summarize(edits: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, points) with a leading "no edit" row per setting: MD, time, steps, outside change."""
    out = []
    for k, g in edits.groupby("points"):
        first = g[g["method"] == g["method"].iloc[0]]
        out.append({"method": "no edit", "points": k, "pairs": len(first), "md": first["md_before"].mean(),
                    "md_median": first["md_before"].median(), "seconds": 0.0, "steps": 0.0, "converged": np.nan,
                    "outside_change": 0.0})
        for m, gm in g.groupby("method", sort=False):
            out.append({"method": m, "points": k, "pairs": len(gm), "md": gm["md_after"].mean(),
                        "md_median": gm["md_after"].median(), "seconds": gm["seconds"].mean(),
                        "steps": gm["steps"].mean(), "converged": gm["converged"].mean(),
                        "outside_change": gm["outside_change"].mean()})
    return pd.DataFrame(out)


def to_markdown(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table (no extra dependency)."""
    cols = ["method", "points", "pairs", "md", "md_median", "seconds", "steps", "converged", "outside_change"]
    head = ["method", "points", "pairs", "MD (px)", "median MD", "time / edit (s)", "steps", "converged",
            "change outside (0-255)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in summary[cols].iterrows():
        cells = [str(r["method"]), str(int(r["points"])), str(int(r["pairs"]))]
        cells += [f"{r[c]:.2f}" for c in ("md", "md_median", "seconds")]
        cells += [f"{r['steps']:.1f}", "–" if pd.isna(r["converged"]) else f"{r['converged']:.2f}",
                  f"{r['outside_change']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
