"""Evaluate every direction walked in a study: per-measure slopes, specificity, density drift."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import schema
from .base import DirectionError

DIRECTIONS = {"target_kind": "direction"}


def _slopes(q, measures: list[str]) -> pd.DataFrame:
    """(method, target, measure) -> slope, slope_lo, slope_hi (probe.stats OLS of d_<measure> on alpha)."""
    from ..stats import effects_from_query  # here: importing the package (and evaluate) stays light

    eff = effects_from_query(q, measures, where=DIRECTIONS)
    return eff[["method", "target", "measure", "slope", "slope_lo", "slope_hi"]].reset_index(drop=True)


def _declared_measures(study) -> dict[str, str]:
    """target -> the measure a supervised direction was fitted for (DirectionSet.info['measure'])."""
    out = {}
    try:
        sets = study.directions()
    except Exception:  # noqa: BLE001 - unreadable sets just leave targets undeclared
        sets = {}
    for stem, ds in sets.items():
        for i in range(len(ds)):
            m = ds.info[i].get("measure") if i < len(ds.info) else None
            if m:
                out[f"{stem}/{ds.names[i]}"] = m
    return out


def evaluate(study) -> pd.DataFrame:
    """One row per (method, target, measure) for every direction target in the study's interventions.

    slope (+ slope_lo, slope_hi): change of the measure per unit alpha; effect_std = slope / std of the measure
    over the study's samples; target_measure: the measure the direction was fitted for, or (unsupervised) the
    one with the largest |effect_std|; specificity = |effect_std(target)| / sum |effect_std(others)|;
    dlogp_abs_mean / dlogp_abs_max: |dlogp| over all the direction's walk rows.  -> schema.EVALUATION_COLUMNS+
    """
    from ..query import Query, _ident

    q = Query(study)
    if q.count(DIRECTIONS) == 0:
        raise DirectionError(
            f"study {study.name!r} walked no directions; add direction targets to the spec "
            f"(e.g. interfacegan/gender) and run it before probe evaluate"
        )
    measures = [m for m in study.measures if f"d_{m}" in q.columns]
    samples = study.table("samples")
    std = {m: float(samples[m].std(ddof=1)) if m in samples else np.nan for m in measures}
    for m in measures:
        if not np.isfinite(std[m]) or std[m] <= 0:
            std[m] = (
                float(
                    q.sql(
                        f"SELECT stddev_samp({_ident(m)}) FILTER (WHERE isfinite({_ident(m)})) AS s "
                        f"FROM {{src}} WHERE target_kind = ?",
                        ["direction"],
                    )["s"]
                    .fillna(np.nan)
                    .iloc[0]
                )
                if m in q.columns
                else np.nan
            )
    sl = _slopes(q, measures)
    sl["effect_std"] = [
        s / std[m] if std[m] and np.isfinite(std[m]) else np.nan for s, m in zip(sl["slope"], sl["measure"])
    ]
    declared = _declared_measures(study)
    g = q.sql(
        "SELECT target, avg(abs(dlogp)) AS mean, max(abs(dlogp)) AS max, first(walk) AS walk FROM {src} "
        "WHERE target_kind = ? GROUP BY target",
        ["direction"],
    ).set_index("target")
    dl, walk = g[["mean", "max"]], g["walk"]
    parts = []
    for target, g in sl.groupby("target", sort=False):
        e = g.set_index("measure")["effect_std"].abs()
        tm = declared.get(target)
        if tm not in e.index:
            name = target.split("/", 1)[-1].split("|")[0].split("@")[0]
            tm = name if name in e.index else (e.idxmax() if e.notna().any() else e.index[0])
        others = e.drop(tm).sum()
        spec = float(e[tm] / others) if others > 0 else np.nan
        parts.append(
            g.assign(
                target_measure=tm,
                is_target=g["measure"] == tm,
                specificity=spec,
                dlogp_abs_mean=float(dl.loc[target, "mean"]) if target in dl.index else np.nan,
                dlogp_abs_max=float(dl.loc[target, "max"]) if target in dl.index else np.nan,
                walk=walk.get(target, ""),
            )
        )
    df = pd.concat(parts, ignore_index=True)
    cols = list(schema.EVALUATION_COLUMNS) + [
        "slope_lo",
        "slope_hi",
        "effect_std",
        "target_measure",
        "is_target",
        "walk",
    ]
    return df[cols]


def method_summary(evaluation: pd.DataFrame, by: Sequence[str] = ("method",)) -> pd.DataFrame:
    """One row per method (or per `by` group, e.g. ("method", "walk")) of an evaluation table, methods in the
    registry's order: directions (distinct targets), specificity = the MEDIAN over the method's directions of
    their specificity (a ratio with a heavy right tail where the other effects are near 0, so the median, not the
    mean), dlogp_abs_mean = mean over its directions, dlogp_abs_max = max.  -> SUMMARY_COLUMNS"""
    from .registry import ordered

    by = list(by)
    need = ["target", "specificity", "dlogp_abs_mean", "dlogp_abs_max", *by]
    miss = [c for c in need if c not in evaluation.columns]
    if miss:
        raise DirectionError(f"evaluation table lacks columns {miss}; make it with `probe evaluate STUDY`")
    per = evaluation[evaluation["is_target"].astype(bool)] if "is_target" in evaluation.columns else evaluation
    per = per.drop_duplicates([*by, "target"])  # one row per direction: its target measure's
    g = (
        per.groupby(by, sort=False)
        .agg(
            directions=("target", "nunique"),
            specificity=("specificity", "median"),
            dlogp_abs_mean=("dlogp_abs_mean", "mean"),
            dlogp_abs_max=("dlogp_abs_max", "max"),
        )
        .reset_index()
    )
    rank = {m: i for i, m in enumerate(ordered(list(dict.fromkeys(g["method"]))))} if "method" in by else {}
    if rank:
        g = g.assign(_r=g["method"].map(rank)).sort_values(["_r", *by[1:]], kind="stable").drop(columns="_r")
    return g[[*by, *SUMMARY_COLUMNS]].reset_index(drop=True)


SUMMARY_COLUMNS = ["directions", "specificity", "dlogp_abs_mean", "dlogp_abs_max"]


def evaluate_study(study) -> pd.DataFrame:
    """evaluate(study) and write it as the study's `evaluation` table (atomic, via probe.store)."""
    df = evaluate(study)
    study.write_table("evaluation", df)
    return df
