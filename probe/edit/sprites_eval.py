"""Drag evaluation on sprites: drag sprite A's centre to sprite B's centre, measured by the factor CNN.

Pairs of generated sprites (A, B) = samples (2i, 2i + 1) of `model.sample(2 n, seed)`. The handle is A's centre
and the target B's centre, both read by the factor measure (`sprite_x`, `sprite_y`, pixels; for other models
the image measures' luma centroid, `centroid_x`, `centroid_y`, converted to pixels). After the drag the centre is
measured again on the edited image: MD = distance to the target (px), before ("no edit") and after. Time, steps,
and the change outside discs around handle and target come from `probe.edit.evaluate`; `drift_<measure>` is the
mean absolute change of every other factor (for a categorical one such as `sprite_shape`: the share of edits that
changed the class; rotation differences wrap at its 90 deg period): a drag should move the sprite and leave its
shape, scale, rotation and hue alone.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from ..models.base import Generator
from .drag import DragError, make_drag
from .evaluate import EDIT_COLUMNS, edit_rows, summarize, to_markdown

# centre measure group -> (x measure, y measure, factor to pixels; None: the measures are fractions of the width)
CENTRES = {"sprites": ("sprite_x", "sprite_y", 1.0), "image": ("centroid_x", "centroid_y", None)}
CATEGORICAL = ("sprite_shape",)
CIRCULAR = {"sprite_rotation": 90.0}  # a square at 0 and 90 deg is the same sprite: differences wrap


def centre_group(model: Generator, measure: str | None = None) -> str:
    """Which measure group locates the centre: 'sprites' for the sprites model (when installed), else 'image'."""
    from ..measures import GROUPS
    if measure is None:
        measure = "sprites" if model.name.startswith("sprites") and "sprites" in GROUPS else "image"
    if measure not in CENTRES:
        raise DragError(f"measure: centre measure group {measure!r} unknown; use one of {list(CENTRES)}")
    if measure not in GROUPS:
        raise DragError(f"measure: group {measure!r} is not installed in probe.measures; use 'image'")
    return measure


class CentreMeasure:
    """img [N, 3, H, W] -> centres [N, 2] (x, y pixel-index coordinates) and the other measures {name: [N]}."""

    def __init__(self, group: str):
        from ..measures import MeasureSet
        self.group = group
        self.x, self.y, self.to_px = CENTRES[group]
        self.measures = MeasureSet([group])
        self.others = [m for m in self.measures.names if m not in (self.x, self.y)]

    @torch.no_grad()
    def __call__(self, img: torch.Tensor) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        s = self.measures(img)
        res = img.shape[-1]
        k = self.to_px if self.to_px is not None else res  # fractions of the width -> pixels
        xy = np.stack([s[self.x] * k, s[self.y] * k], 1) - 0.5  # edge-based coordinates -> pixel centres
        return xy, {m: np.asarray(s[m], float) for m in self.others}


def _drift(m: str, dv: float) -> float:
    from ..directions.groundtruth import wrap
    dv = float(wrap(dv, CIRCULAR[m])) if m in CIRCULAR else dv
    return float(dv != 0) if m in CATEGORICAL else float(abs(dv))


def sprite_drag_eval(model: Generator, n_pairs: int = 20, seed: int = 0,
                     methods: Sequence[str] = ("draggan", "freedrag"), drag_kwargs: dict | None = None,
                     radius: float | None = None, measure: str | None = None, min_distance: float = 0.0,
                     progress: Callable[[dict], None] | None = None, oracles: bool = True) -> pd.DataFrame:
    """One row per edit: EDIT_COLUMNS (points = 1) + drift_<measure> per other measure.

    model: any Generator (StyleGAN-like: the first ws rows are optimised); pairs (A, B) = samples (2i, 2i + 1);
    drag_kwargs: {method: {param: value}} for DragGAN / FreeDrag (sites default per model: drag.MODEL_DEFAULTS);
    radius: discs excluded from outside_change (default H / 8); measure: 'sprites' | 'image' |
    None (auto); min_distance: skip pairs whose centres are closer than this (px); oracles: also score the ideal
    drags done as warps of sprite A (`evaluate.oracle_warp`: "oracle-local", "oracle-shift"), the table's ceiling.
    """
    if n_pairs < 1:
        raise DragError(f"--pairs must be >= 1, got {n_pairs}")
    cm = CentreMeasure(centre_group(model, measure))
    drags = {m: make_drag(m, **(drag_kwargs or {}).get(m, {})) for m in methods}  # sites: drag.MODEL_DEFAULTS
    res = model.resolution
    radius = res / 8 if radius is None else radius
    z = model.sample(4 * n_pairs, seed)
    with torch.no_grad():
        imgs = torch.cat([model.synthesize(z[i:i + 64], "z") for i in range(0, len(z), 64)])
    xy, other = cm(imgs)
    xy = np.clip(xy, 0, res - 1)
    pairs = [(2 * i, 2 * i + 1) for i in range(len(z) // 2)
             if np.linalg.norm(xy[2 * i] - xy[2 * i + 1]) >= min_distance][:n_pairs]
    if len(pairs) < n_pairs:
        raise DragError(f"only {len(pairs)} pairs have centres at least {min_distance} px apart; use fewer --pairs")
    rows = []
    for i, (a, b) in enumerate(pairs):
        def locate(img, a=a):  # the centre, and how far every other factor moved from sprite A's
            xy_new, other_new = cm(img[None])
            return xy_new, {f"drift_{m}": _drift(m, v[0] - other[m][a]) for m, v in other_new.items()}
        for row in edit_rows(model, z[a:a + 1], imgs[a], xy[a][None], xy[b][None], drags, locate, radius, oracles,
                             {"points": 1, "pair": i}):
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


def drift_markdown(summary: pd.DataFrame) -> str:
    """to_markdown of the summary with one extra column per drift_<measure>."""
    drift = [c for c in summary.columns if c.startswith("drift_")]
    lines = to_markdown(summary).split("\n")

    def label(c):
        m = c.removeprefix("drift_")
        short = m.removeprefix("sprite_")
        return f"{short} changed (share)" if m in CATEGORICAL else f"mean abs Δ {short}"
    lines[0] += " " + " | ".join(label(c) for c in drift) + " |"
    lines[1] += "---|" * len(drift)
    for i, (_, r) in enumerate(summary.iterrows()):
        lines[2 + i] += " " + " | ".join(f"{r[c]:.2f}" for c in drift) + " |"
    return "\n".join(lines)


def drag_eval_cli(model: str, pairs: int = 20, seed: int = 0, steps: int = 200, out: Path | None = None,
                  echo: Callable[..., None] | None = None, oracles: bool = True) -> pd.DataFrame:
    """`probe drag-eval --model sprites`: run sprite_drag_eval, print the table, write drag_eval.csv / .md."""
    from ..models import load_model
    echo = echo or (lambda *a, **k: print(*a))
    g = load_model(model)

    def show(row):
        echo(f"pair {row['pair']:>3} {row['method']:<9} MD {row['md_before']:5.2f} -> {row['md_after']:5.2f} px, "
             f"{row['steps']:>3} steps, {row['seconds']:5.2f} s", err=True)

    edits = sprite_drag_eval(g, n_pairs=pairs, seed=seed, progress=show, oracles=oracles,
                             drag_kwargs={m: {"max_steps": steps} for m in ("draggan", "freedrag")})
    table = drift_markdown(summarize_drift(edits))
    echo(table)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        edits.to_csv(out / "drag_eval.csv", index=False)
        (out / "drag_eval.md").write_text(table + "\n")
        echo(f"wrote {out}/drag_eval.csv and {out}/drag_eval.md")
    return edits


__all__ = ["sprite_drag_eval", "summarize_drift", "drift_markdown", "drag_eval_cli", "CentreMeasure"]
