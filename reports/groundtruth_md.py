"""Markdown tables of ground-truth scores (`probe gt-score` writes them as groundtruth.md / groundtruth_seeds.md).

    to_markdown(GroundTruthScore)      one row per method: D, C, MIG gap, purity, covered factors, assignments
    seed_markdown(seed_summary table)  one row per method: mean ± std over seeds, seeds above the baseline

Method order and labels come from probe.directions.registry.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from probe.directions.disentanglement import METRICS
from probe.directions.registry import BASELINE, label, ordered


def _shortener(names: Sequence[str]):
    """Drop the prefix up to an underscore that all factor names share (sprite_shape, sprite_x -> shape, x)."""
    common = os.path.commonprefix(list(names)) if len(names) > 1 else ""
    cut = common.rfind("_") + 1
    return lambda s: s[cut:] if cut and s.startswith(common[:cut]) else s


def to_markdown(est, order: Sequence[str] | None = None) -> str:
    """One comparison table of a fitted GroundTruthScore: a row per method with D, C, MIG gap, purity, covered
    factors, strength and each direction's top factor (purity). order: method order (default the registry's)."""
    sc = est.scores_.set_index("method")
    first = list(order) if order is not None else ordered(list(sc.index))
    methods = [m for m in first if m in sc.index] + [m for m in sc.index if m not in first]
    F = len(est.factors_used_)
    short = _shortener(est.factors_used_)
    head = [
        "method",
        "K",
        "disentanglement",
        "completeness",
        "MIG gap",
        "purity",
        f"factors covered (of {F})",
        "strength",
        "direction: top factor (purity)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in methods:
        r = sc.loc[m]
        a = est.assignments_[est.assignments_["method"] == m]
        ass = ", ".join(
            f"{short(x.target.split('/', 1)[-1])}: {short(x.factor) or '-'} ({x.purity:.2f})" for x in a.itertuples()
        )
        lines.append(
            f"| {label(m)} | {int(r['n_directions'])} | {r['disentanglement']:.2f} | "
            f"{r['completeness']:.2f} | {r['mig']:.2f} | {r['purity']:.2f} | {int(r['covered'])} | "
            f"{r['strength']:.2f} | {ass} |"
        )
    return "\n".join(lines)


def seed_markdown(summary: pd.DataFrame, baseline: str = BASELINE) -> str:
    """The seed summary (probe.directions.disentanglement.seed_summary) as one table: mean ± std per score;
    the last column counts the seeds in which a method's disentanglement is above the baseline's."""
    head = ["method", "seeds"] + list(METRICS.values()) + [f"D above {baseline} (seeds)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary.to_dict("records"):
        cells = [label(r["method"]), str(r["seeds"])]
        for c in METRICS:
            sd = "" if np.isnan(r[f"{c}_std"]) else f" ± {r[f'{c}_std']:.2f}"
            cells.append(f"{r[f'{c}_mean']:.2f}{sd}")
        cells.append("–" if r["method"] == baseline else f"{r['disentanglement_wins']} of {r['seeds']}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = ["to_markdown", "seed_markdown"]
