"""Drag evaluation: the DragGAN face-landmark protocol on a face model.

Pairs of generated faces (A, B): drag A's dlib landmarks to B's, re-detect the landmarks on the edited image and
report the mean distance (MD) to the targets, before ("no edit") and after, with time per edit, optimisation
steps, the mean absolute pixel change outside discs around the handles and targets (0..255 units), and the
quality verdict of `probe.edit.quality` (status, tracked handle distance, largest drift of the model's default
measures, degraded): drags run under a `QualityGuard`, which stops an edit once its image degrades.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..models.base import Generator
from .drag import DragError, make_drag
from .quality import MAX_DRIFT, MAX_OUTSIDE, QualityGuard, outside_change

__all__ = [
    "EDIT_COLUMNS",
    "drag_eval",
    "edit_rows",
    "oracle_warp",
    "outside_change",
    "read_edits",
    "summarize",
    "to_markdown",
]

EDIT_COLUMNS = [
    "method",
    "points",
    "pair",
    "md_before",
    "md_after",
    "seconds",
    "steps",
    "converged",
    "outside_change",
    "status",
    "handle_px",
    "max_drift",
    "degraded",
]


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
            wgt = torch.exp(-((xx - tx) ** 2 + (yy - ty) ** 2) / (2 * sigma**2))
            sx, sy = sx - dx * wgt, sy - dy * wgt
    grid = torch.stack([(2 * sx + 1) / w - 1, (2 * sy + 1) / h - 1], -1)[None]
    return F.grid_sample(img[None].float(), grid, mode="bilinear", padding_mode="border", align_corners=False)[0]


ORACLES = {"oracle-local": lambda res: res / 16, "oracle-shift": lambda res: None}


def edit_rows(
    model: Generator,
    z: torch.Tensor,
    img: torch.Tensor,
    handles: np.ndarray,
    targets: np.ndarray,
    drags: dict,
    locate,
    radius: float,
    oracles: bool = True,
    base: dict | None = None,
    guard: QualityGuard | None = None,
):
    """Score every drag of one image A (and the oracle warps) by locating the dragged points on each result.

    z [1, z_dim], img [3, H, W]: image A; handles, targets [k, 2] (x, y px); drags: {method: DragGAN | FreeDrag};
    locate(img [3, H, W]) -> (points [k, 2], {extra column: value}); base: columns set in every row (points,
    pair); guard: run each drag under this QualityGuard (early stop on degradation; status, handle_px, max_drift
    and degraded come from its verdict). Yields one row per method: EDIT_COLUMNS + the extra columns.
    """
    res = img.shape[-1]
    edits = {name: d.run(model, z, "z", handles, targets, guard=guard) for name, d in drags.items()}
    if oracles:
        edits.update({name: oracle_warp(img, handles, targets, sigma(res)) for name, sigma in ORACLES.items()})
    md0 = float(np.linalg.norm(handles - targets, axis=1).mean())
    for name, r in edits.items():
        warp = isinstance(r, torch.Tensor)
        after = r if warp else r.img
        pts, extra = locate(after)
        yield {
            "method": name,
            **(base or {}),
            "md_before": md0,
            "md_after": float(np.linalg.norm(pts - targets, axis=1).mean()),
            "seconds": 0.0 if warp else r.seconds,
            "steps": 0 if warp else r.steps,
            "converged": np.nan if warp else r.converged,
            "outside_change": outside_change(img, after, np.concatenate([handles, targets]), radius),
            "status": "warp" if warp else r.status,
            "handle_px": 0.0 if warp else float(r.distances.mean()),
            "max_drift": np.nan if warp or r.quality is None else r.quality.max_drift,
            "degraded": np.nan if warp or r.quality is None else bool(r.quality.degraded),
            **extra,
        }


def detectable(imgs: torch.Tensor) -> np.ndarray:
    """Which images dlib's HOG face detector finds a face in (upsampled once).  # img [N, 3, H, W] -> bool [N]"""
    import dlib

    det = dlib.get_frontal_face_detector()
    u8 = ((imgs.detach().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    return np.array([len(det(np.ascontiguousarray(a), 1)) > 0 for a in u8], bool)


def drag_eval(
    model: Generator,
    n_pairs: int = 20,
    seed: int = 0,
    methods: Sequence[str] = ("draggan", "freedrag"),
    settings: Sequence[int] = (1, 5),
    drag_kwargs: dict | None = None,
    radius: float | None = None,
    progress=None,
    oracles: bool = True,
    drags: dict | None = None,
    guard: QualityGuard | None = None,
    checked: bool = True,
) -> pd.DataFrame:
    """One row per edit (EDIT_COLUMNS): method, points (1 | 5), pair, MD before/after (px), seconds, steps, ...

    Faces: draws from model.sample(., seed) that dlib's HOG detector finds a face in (the protocol uses faces an
    off-the-shelf detector handles), taken in order; pair i = (A, B) = faces 2i, 2i + 1. The 1-point setting drags
    landmark i mod 5 (eye corners, nose base in turn); the 5-point setting drags all five. drag_kwargs:
    {method: {param: value}} passed to DragGAN / FreeDrag. radius: of the discs excluded from outside_change
    (default H / 8). oracles: also score two ideal drags done as warps of image A (`oracle_warp`): "oracle-local"
    (each handle's content moved exactly onto its target, Gaussian falloff sigma = H / 16) and "oracle-shift" (the
    whole image translated by the mean displacement). They calibrate the metric: the MD a perfect edit of that
    extent would get from landmark re-detection. drags: {label: DragGAN | FreeDrag} scored instead of `methods`
    (to compare settings side by side); checked: run each drag under `guard` (default QualityGuard(radius=radius,
    every=10)), which stops it once its image degrades.
    """
    from ..measures.faces import face_landmarks

    if n_pairs < 1:
        raise DragError(f"--pairs must be >= 1, got {n_pairs}")
    bad = [s for s in settings if s not in (1, 5)]
    if bad:
        raise DragError(f"--points: settings must be 1 and/or 5 landmarks, got {bad}")
    drag_kwargs = drag_kwargs or {}
    drags = drags if drags is not None else {m: make_drag(m, **drag_kwargs.get(m, {})) for m in methods}
    res = model.resolution
    radius = res / 8 if radius is None else radius
    if checked and guard is None:
        guard = QualityGuard(radius=radius, every=10)
    z = model.sample(8 * n_pairs + 16, seed)
    with torch.no_grad():
        imgs = model.synthesize(z, "z")
    keep = np.flatnonzero(detectable(imgs))
    if len(keep) < 2 * n_pairs:
        raise DragError(f"only {len(keep)} of {len(z)} samples hold a detectable face; use fewer --pairs")
    z, imgs = z[keep[: 2 * n_pairs]], imgs[keep[: 2 * n_pairs]]
    lm = np.clip(np.asarray(face_landmarks(imgs), dtype=np.float64), 0, res - 1)  # [2n, 5, 2]
    rows = []
    for i in range(n_pairs):
        a, b = lm[2 * i], lm[2 * i + 1]
        for k in settings:
            idx = [i % 5] if k == 1 else list(range(5))

            def locate(img, idx=idx):  # re-detect the dragged landmarks
                return np.asarray(face_landmarks(img[None]), dtype=np.float64)[0][idx], {}

            for row in edit_rows(
                model,
                z[2 * i : 2 * i + 1],
                imgs[2 * i],
                a[idx],
                b[idx],
                drags,
                locate,
                radius,
                oracles,
                {"points": k, "pair": i},
                guard if checked else None,
            ):
                rows.append(row)
                if progress is not None:
                    progress(row)
    return pd.DataFrame(rows, columns=EDIT_COLUMNS)


def read_edits(path, field: str = "--summarize") -> pd.DataFrame:
    """The edit rows (EDIT_COLUMNS) of a drag_eval.csv, or of the drag_eval.part.csv a stopped run left."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise DragError(f"{field}: no file {path}")
    edits = pd.read_csv(path)
    missing = [c for c in EDIT_COLUMNS if c not in edits.columns]
    if missing:
        raise DragError(
            f"{field}: {path} lacks columns {', '.join(missing)}; give a drag_eval.csv written by probe drag-eval"
        )
    if edits.empty:
        raise DragError(f"{field}: {path} holds no edit rows yet; wait for the run's first pair")
    return edits


def summarize(edits: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, points) with a leading "no edit" row per setting: MD, time, steps, handle_px (mean
    tracked distance of the handles to their targets at the end, px; before the edit for "no edit"), outside
    change, ok (share of runs with status "ok"), flagged (share the quality verdict calls degraded), drift (mean largest
    measure drift) and false_ok (runs reported "ok" whose final image is over a quality threshold; the target is 0).
    """
    out = []
    for k, g in edits.groupby("points"):
        first = g[g["method"] == g["method"].iloc[0]]
        out.append(
            {
                "method": "no edit",
                "points": k,
                "pairs": len(first),
                "md": first["md_before"].mean(),
                "md_median": first["md_before"].median(),
                "seconds": 0.0,
                "steps": 0.0,
                "converged": np.nan,
                "handle_px": first["md_before"].mean(),
                "outside_change": 0.0,
                "ok": np.nan,
                "flagged": np.nan,
                "drift": np.nan,
                "false_ok": np.nan,
            }
        )
        for m, gm in g.groupby("method", sort=False):
            warp = (gm["status"] == "warp").all()
            bad = (gm["outside_change"] > MAX_OUTSIDE) | (gm["max_drift"].astype(float) > MAX_DRIFT)
            out.append(
                {
                    "method": m,
                    "points": k,
                    "pairs": len(gm),
                    "md": gm["md_after"].mean(),
                    "md_median": gm["md_after"].median(),
                    "seconds": gm["seconds"].mean(),
                    "steps": gm["steps"].mean(),
                    "converged": gm["converged"].mean(),
                    "handle_px": gm["handle_px"].mean() if "handle_px" in gm else np.nan,  # tables of old studies
                    "outside_change": gm["outside_change"].mean(),
                    "ok": np.nan if warp else (gm["status"] == "ok").mean(),
                    "flagged": np.nan if warp else gm["degraded"].astype(float).mean(),
                    "drift": np.nan if warp else gm["max_drift"].astype(float).mean(),
                    "false_ok": np.nan if warp else int(((gm["status"] == "ok") & bad).sum()),
                }
            )
    return pd.DataFrame(out)


def to_markdown(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table (no extra dependency)."""
    cols = [
        "method",
        "points",
        "pairs",
        "md",
        "md_median",
        "seconds",
        "steps",
        "converged",
        "handle_px",
        "outside_change",
        "ok",
        "flagged",
        "drift",
        "false_ok",
    ]
    head = [
        "method",
        "points",
        "pairs",
        "MD (px)",
        "median MD",
        "time / edit (s)",
        "steps",
        "converged",
        "handle left (px)",
        "change outside (0-255)",
        "status ok",
        "flagged degraded",
        "max drift",
        "ok but degraded",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def opt(v, f):
        return "–" if pd.isna(v) else f.format(v)

    for _, r in summary[cols].iterrows():
        cells = [str(r["method"]), str(int(r["points"])), str(int(r["pairs"]))]
        cells += [f"{r[c]:.2f}" for c in ("md", "md_median", "seconds")]
        cells += [
            f"{r['steps']:.1f}",
            opt(r["converged"], "{:.2f}"),
            opt(r["handle_px"], "{:.2f}"),
            f"{r['outside_change']:.2f}",
            opt(r["ok"], "{:.2f}"),
            opt(r["flagged"], "{:.2f}"),
            opt(r["drift"], "{:.2f}"),
            opt(r["false_ok"], "{:.0f}"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
