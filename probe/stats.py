"""Statistics over study tables: intervention slopes with CIs, latent-measure correlations, BH-FDR, controlling
variables and per-alpha summaries. Pure functions on DataFrames / arrays; `analyze(study)` writes the tables.

One-regressor OLS (d_<measure> ~ 1 + alpha) and Pearson r are computed in closed form for every group at once
(tests check them against statsmodels.OLS); q values use statsmodels' Benjamini-Hochberg.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sst
from statsmodels.stats.multitest import multipletests

from . import schema
from .errors import ProbeError

EPS = 1e-12


def bh_q(p) -> np.ndarray:
    """Benjamini-Hochberg q values; NaN p stay NaN and are not counted as tests.  # [T] -> [T]"""
    p = np.asarray(p, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = multipletests(np.clip(p[ok], 0.0, 1.0), method="fdr_bh")[1]
    return q


def ols_slopes(x: np.ndarray, y: np.ndarray, groups: np.ndarray, level: float = 0.95) -> pd.DataFrame:
    """OLS y ~ 1 + x within each group (closed form, vectorised); NaN y rows are dropped.

    x, y, groups: [R]. Returns one row per group (sorted codes): group, slope, slope_lo, slope_hi, r2, p, n.
    A constant y gives slope 0, CI [0, 0], r2 0, p 1; fewer than 3 points or a constant x give NaN.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    codes, uniq = pd.factorize(np.asarray(groups)[keep], sort=True)
    x, y = x[keep], y[keep]
    G = len(uniq)
    n = np.bincount(codes, minlength=G).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = np.bincount(codes, x, G) / n
        my = np.bincount(codes, y, G) / n
        dx, dy = x - mx[codes], y - my[codes]
        sxx = np.bincount(codes, dx * dx, G)
        sxy = np.bincount(codes, dx * dy, G)
        syy = np.bincount(codes, dy * dy, G)
    r = ols_from_sums(n, sxx, sxy, syy, np.bincount(codes, y * y, G), level)
    return pd.DataFrame({"group": uniq, **r})


def ols_from_sums(n, sxx, sxy, syy, yy, level: float = 0.95) -> dict[str, np.ndarray]:
    """OLS y ~ 1 + x per group from its sufficient statistics (n, centred sums sxx, sxy, syy, and sum y^2).

    All [G] -> {slope, slope_lo, slope_hi, r2, p, n}; the same rules as `ols_slopes` (constant y, n < 3)."""
    n, sxx, sxy, syy, yy = (np.asarray(a, float).copy() for a in (n, sxx, sxy, syy, yy))
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = sxy / sxx
        sse = np.maximum(syy - slope * sxy, 0.0)
        df = n - 2
        se = np.sqrt(sse / df / sxx)
        t = slope / se
        p = 2 * sst.t.sf(np.abs(t), df)
        r2 = 1 - sse / syy
        tq = sst.t.ppf(0.5 + level / 2, df)
    bad = (n < 3) | (sxx <= EPS * np.maximum(n, 1))
    const = ~bad & (syy <= EPS * np.maximum(1.0, yy))
    slope[const], se[const], p[const], r2[const] = 0.0, 0.0, 1.0, 0.0
    exact = ~bad & ~const & (se == 0)  # a perfect line: p -> 0
    p[exact] = 0.0
    for a in (slope, se, p, r2):
        a[bad] = np.nan
    return {
        "slope": slope,
        "slope_lo": slope - tq * se,
        "slope_hi": slope + tq * se,
        "r2": r2,
        "p": p,
        "n": n.astype(np.int64),
    }


def effects_from_table(interventions: pd.DataFrame, measures: Sequence[str], level: float = 0.95) -> pd.DataFrame:
    """Slope of d_<measure> on alpha per (method, target, measure) with CI, R2, p, BH q over all tests.

    interventions: rows of interventions.parquet (alpha, method, target, d_<measure>). -> schema.EFFECT_COLUMNS
    """
    need = ["method", "target", "alpha", *[f"d_{m}" for m in measures]]
    miss = [c for c in need if c not in interventions.columns]
    if miss:
        raise ProbeError(f"interventions table lacks column(s) {miss}; run the study with these measures")
    key = interventions["method"].astype(str) + "\x1f" + interventions["target"].astype(str)
    out = []
    for m in measures:
        r = ols_slopes(interventions["alpha"].to_numpy(), interventions[f"d_{m}"].to_numpy(), key.to_numpy(), level)
        mt = r.pop("group").str.split("\x1f", n=1, expand=True)
        out.append(r.assign(method=mt[0].to_numpy(), target=mt[1].to_numpy(), measure=m))
    cols = list(schema.EFFECT_COLUMNS)
    if not out:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in schema.EFFECT_COLUMNS.items()})
    eff = pd.concat(out, ignore_index=True)
    eff["q"] = bh_q(eff["p"])
    return eff[cols].astype(schema.EFFECT_COLUMNS)


def pearson(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pearson r and two-sided p of every column of x with every column of y, rows with NaN in y dropped per column.

    x [N, V], y [N, M] -> r [V, M], p [V, M], n [M]. A constant column gives r 0, p 1.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    V, M = x.shape[1], y.shape[1]
    r = np.zeros((V, M))
    p = np.ones((V, M))
    ns = np.zeros(M, np.int64)
    for j in range(M):  # one mask per measure; the V variables are vectorised
        ok = np.isfinite(y[:, j])
        n = int(ok.sum())
        ns[j] = n
        if n < 3:
            r[:, j], p[:, j] = np.nan, np.nan
            continue
        xs = x[ok] - x[ok].mean(0)
        ys = y[ok, j] - y[ok, j].mean()
        sx = np.sqrt((xs * xs).sum(0))
        sy = np.sqrt((ys * ys).sum())
        with np.errstate(invalid="ignore", divide="ignore"):
            rj = (xs.T @ ys) / (sx * sy)
        live = (sx > EPS) & (sy > EPS * max(1.0, np.abs(y[ok, j]).max()))
        rj = np.where(live, np.clip(rj, -1, 1), 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            t = rj * np.sqrt((n - 2) / np.maximum(1 - rj * rj, 0.0))
            pj = 2 * sst.t.sf(np.abs(t), n - 2)
        r[:, j], p[:, j] = rj, np.where(live, pj, 1.0)
    return r, p, ns


def correlations_from_arrays(
    latents: np.ndarray, samples: pd.DataFrame, measures: Sequence[str], space: str = "z"
) -> pd.DataFrame:
    """Per (latent variable `<space>[i]`, measure) Pearson r over samples with p and BH q over all pairs.

    latents [N, *shape] (row = sample_id); samples: samples table with sample_id + measure columns.
    -> schema.CORRELATION_COLUMNS, variables numbered by flat coordinate (as variable targets are).
    """
    miss = [m for m in ["sample_id", *measures] if m not in samples.columns]
    if miss:
        raise ProbeError(f"samples table lacks column(s) {miss}; run the study with these measures")
    lat = np.asarray(latents, float).reshape(len(latents), -1)
    ids = samples["sample_id"].to_numpy()
    if len(ids) and (ids.min() < 0 or ids.max() >= len(lat)):
        raise ProbeError(
            f"samples table has sample_id up to {ids.max()} but latents has {len(lat)} rows; "
            f"the study is inconsistent: re-run it"
        )
    r, p, n = pearson(lat[ids], samples[list(measures)].to_numpy(float))
    V, M = r.shape
    df = pd.DataFrame(
        {
            "variable": np.repeat([f"{space}[{i}]" for i in range(V)], M),
            "measure": np.tile(list(measures), V),
            "r": r.ravel(),
            "p": p.ravel(),
            "n": np.tile(n, V),
        }
    )
    df["q"] = bh_q(df["p"])
    return df[list(schema.CORRELATION_COLUMNS)].astype(schema.CORRELATION_COLUMNS)


def controlling(effects: pd.DataFrame | None, correlations: pd.DataFrame | None, q_max: float = 0.05) -> pd.DataFrame:
    """Controlling variables per measure: significant after FDR (q <= q_max), ranked by |effect|.

    effect = intervention slope of variable targets (method "variable") where the study has them for that measure,
    else the correlation r; `source` says which ("intervention" | "correlation"). -> schema.CONTROLLING_COLUMNS
    """
    if not 0 < q_max <= 1:
        raise ProbeError(f"q_max must be in (0, 1]; got {q_max}")
    parts = []
    ev = effects[effects["method"] == "variable"] if effects is not None and len(effects) else None
    measures = list(
        dict.fromkeys(
            [*(ev["measure"] if ev is not None else []), *(correlations["measure"] if correlations is not None else [])]
        )
    )
    for m in measures:
        if ev is not None and (ev["measure"] == m).any():
            d = ev[ev["measure"] == m].rename(columns={"slope": "effect"}).assign(source="intervention")
        elif correlations is not None and (correlations["measure"] == m).any():
            d = correlations[correlations["measure"] == m].rename(columns={"variable": "target", "r": "effect"})
            d = d.assign(source="correlation")
        else:
            continue
        d = d[d["q"] <= q_max]
        d = d.iloc[np.argsort(-d["effect"].abs().to_numpy(), kind="stable")]
        parts.append(d.assign(measure=m, rank=np.arange(1, len(d) + 1))[list(schema.CONTROLLING_COLUMNS)])
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in schema.CONTROLLING_COLUMNS.items()})
    return pd.concat(parts, ignore_index=True).astype(schema.CONTROLLING_COLUMNS)


def alpha_summary(df: pd.DataFrame, value: str, by: Sequence[str] = ("target",), level: float = 0.95) -> pd.DataFrame:
    """Mean and t-based CI of `value` at each alpha per group (NaN dropped).

    -> columns [*by, alpha, n, mean, sd, lo, hi]; a group with n = 1 has lo = hi = mean.
    """
    by = [b for b in by if b != "alpha"]
    miss = [c for c in [*by, "alpha", value] if c not in df.columns]
    if miss:
        raise ProbeError(f"alpha_summary: table lacks column(s) {miss}")
    g = df[[*by, "alpha", value]].dropna(subset=[value]).groupby([*by, "alpha"], sort=True)[value]
    s = g.agg(["count", "mean", "std"]).reset_index().rename(columns={"count": "n", "std": "sd"})
    with np.errstate(invalid="ignore", divide="ignore"):
        half = sst.t.ppf(0.5 + level / 2, s["n"] - 1) * s["sd"] / np.sqrt(s["n"])
    half = np.where(s["n"] > 1, half, 0.0)
    s["sd"] = s["sd"].fillna(0.0)
    s["lo"], s["hi"] = s["mean"] - half, s["mean"] + half
    return s


def measure_scales(samples: pd.DataFrame, measures: Sequence[str], kinds: dict | None = None) -> dict[str, float]:
    """Spread of each measure over the base samples: the unit a standardised effect is counted in.

    samples: samples table (one column per measure). kinds: {measure: (kind, period)} as
    `probe.measures.measure_kinds` gives (default: every measure continuous). Continuous: the sample standard
    deviation (ddof 1). Circular: the circular standard deviation sqrt(-2 ln R) in the measure's unit (R: mean
    resultant length over the period). Categorical: 1.0 (its d_ is 0/1, class changed or not, already a
    probability). NaN where fewer than 2 finite values or the spread is 0.  -> {measure: scale}
    """
    kinds = kinds or {}
    miss = [m for m in measures if m not in samples.columns]
    if miss:
        raise ProbeError(f"samples table lacks column(s) {miss}; pass the study's samples table")
    out: dict[str, float] = {}
    for m in measures:
        kind, period = kinds.get(m, ("continuous", None))
        x = samples[m].to_numpy(float)
        x = x[np.isfinite(x)]
        if kind == "categorical":
            out[m] = 1.0
            continue
        if len(x) < 2:
            out[m] = float("nan")
            continue
        if kind == "circular":
            ang = 2 * np.pi * x / float(period)
            r = float(np.hypot(np.cos(ang).mean(), np.sin(ang).mean()))
            sd = float(period) / (2 * np.pi) * np.sqrt(-2 * np.log(r)) if r > EPS else float("inf")
        else:
            sd = float(np.std(x, ddof=1))
        out[m] = sd if np.isfinite(sd) and sd > EPS * max(1.0, float(np.abs(x).max())) else float("nan")
    return out


def standardise_effects(effects: pd.DataFrame, scales: dict[str, float]) -> pd.DataFrame:
    """Effects a reader can compare across measures: slope and CI divided by the measure's spread over samples.

    effects: effects table (measure, slope, slope_lo, slope_hi, ...); scales: {measure: sd} from `measure_scales`.
    -> the table with added columns `scale`, `std_slope`, `std_slope_lo`, `std_slope_hi` (measure sds per unit
    alpha); NaN where a measure has no usable scale. p and q are unchanged (dividing by a constant)."""
    miss = [c for c in ("measure", "slope", "slope_lo", "slope_hi") if c not in effects.columns]
    if miss:
        raise ProbeError(f"standardise_effects: table lacks column(s) {miss}; pass the effects table")
    sc = effects["measure"].map({str(k): float(v) for k, v in scales.items()}).astype(float)
    out = effects.assign(scale=sc.to_numpy())
    for c in ("slope", "slope_lo", "slope_hi"):
        out[f"std_{c}"] = effects[c].to_numpy(float) / sc.to_numpy()
    return out


def standardised_effects(study, effects: pd.DataFrame | None = None) -> pd.DataFrame:
    """The study's effects table with standardised slopes (`standardise_effects` with `measure_scales` over its
    samples, measure kinds from its manifest)."""
    from .measures import measure_kinds

    eff = study.table("effects") if effects is None else effects
    scales = measure_scales(study.table("samples"), study.measures, measure_kinds(study.measure_info))
    return standardise_effects(eff, scales)


# ---- study-level entry points -------------------------------------------------------------------
def effects_from_query(query, measures: Sequence[str], level: float = 0.95, where=None) -> pd.DataFrame:
    """effects_from_table over a probe.query.Query: the OLS sums are grouped in DuckDB, so memory is bounded by
    the number of (method, target) groups, not rows. where: a Query filter.  -> schema.EFFECT_COLUMNS"""
    miss = [f"d_{m}" for m in measures if f"d_{m}" not in query.columns]
    if miss:
        raise ProbeError(f"interventions table lacks column(s) {miss}; run the study with these measures")
    s = query.ols_sums(measures, where)
    if not len(s):
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in schema.EFFECT_COLUMNS.items()})
    key = s["method"].astype(str) + "\x1f" + s["target"].astype(str)
    order = {m: i for i, m in enumerate(measures)}
    s = s.assign(_m=s["measure"].map(order), _k=key.to_numpy(object))
    s = s.sort_values(["_m", "_k"], kind="stable").reset_index(drop=True)
    r = ols_from_sums(s["n"], s["sxx"], s["sxy"], s["syy"], s["yy"], level)
    eff = pd.DataFrame(
        {
            "method": s["method"].astype(str).to_numpy(),
            "target": s["target"].astype(str).to_numpy(),
            "measure": s["measure"].to_numpy(),
            **r,
        }
    )
    eff["q"] = bh_q(eff["p"])
    return eff[list(schema.EFFECT_COLUMNS)].astype(schema.EFFECT_COLUMNS)


def effects(study, level: float = 0.95) -> pd.DataFrame:
    """effects table of a study (schema.EFFECT_COLUMNS) from its interventions, grouped in DuckDB (probe.query)."""
    from .query import Query

    return effects_from_query(Query(study), study.measures, level)


def correlations(study) -> pd.DataFrame:
    """correlations table of a study (schema.CORRELATION_COLUMNS): base latents x sample measures."""
    return correlations_from_arrays(study.latents(), study.table("samples"), study.measures, study.space)


def analyze(study, q_max: float = 0.05, level: float = 0.95) -> dict[str, pd.DataFrame]:
    """Compute and write effects, correlations and controlling tables; returns them by name."""
    eff = effects(study, level) if study.has("interventions") else None
    cor = correlations(study)
    ctl = controlling(eff, cor, q_max)
    out = {"correlations": cor, "controlling": ctl}
    if eff is not None:
        out["effects"] = eff
    for k, v in out.items():
        study.write_table(k, v)
    return out
