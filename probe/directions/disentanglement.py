"""Disentanglement metrics of discovered directions against ground-truth factors, and their estimator.

For a model whose images have known factors of variation measured by a factor measure (the sprites model and the
`sprites` measures: shape, scale, rotation, x, y, hue), a study walks every direction of every method. A factor's
kind (continuous, categorical, circular with its period) is its MeasureInfo's (probe.measures.measure_kinds). From
the study's interventions table:

- importance R[direction, factor] >= 0:
  - continuous factor m: |slope of d_<m> on alpha| (probe.stats OLS, as `probe.directions.evaluate`) divided by
    the std of m over the study's samples: factor stds moved per unit alpha;
  - circular factor (e.g. sprite_rotation, period 90 deg): the larger of a consistent turn (slope of the wrapped
    d_<m> over std(m)) and a consistent move of the point (cos, sin)(2 pi m / period) (|slope| over the RMS std of
    cos and sin): a linear direction in w moves toward one angle, which a signed angle slope averages away;
  - categorical factor (a class index, e.g. sprite_shape): the class index has no order, so its slope means
    nothing. Each class c is scored like a number instead: the OLS slope of the change of 1[class == c] on alpha
    (the change of P(class c) per unit alpha) over the indicator's std sqrt(p_c (1 - p_c)) over the samples; the
    factor's importance is the largest over the classes.
- per direction: factor = argmax_f R[d, f]; purity = R[d, factor] / sum_f R[d, f] (share on its top factor);
  disentanglement D_d = 1 - H(R[d, :] / sum) / log F (DCI); weight = row mass / method mass.
- per factor: completeness C_f = 1 - H(R[:, f] / sum) / log K (DCI); gap = difference of the two largest column
  shares R[d, f] / sum_d R[d, f] (MIG-style); strength = max_d R[d, f].
- per method: disentanglement = sum_d weight_d D_d; completeness = sum_f (column mass share) C_f; mig = mean_f gap;
  purity = mean_d purity; covered = number of distinct factors some direction has as its top factor.

Importance is per unit alpha, so D and purity (row-normalised) do not depend on a direction's step size, but
completeness, gap and strength compare directions of one method at their walked step (`probe gt-score` walks
every direction as a unit vector in w with the same alphas, in units of the RMS std of w: `w_spread`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import schema
from ..measures import measure_kinds, wrap
from ..stats import effects_from_table
from .base import DirectionError
from .estimator import DirectionEstimator
from .registry import BASELINE, ordered

IMPORTANCE_COLUMNS = list(schema.GROUNDTRUTH_COLUMNS)
SCORE_COLUMNS = [
    "method",
    "n_directions",
    "n_factors",
    "disentanglement",
    "completeness",
    "mig",
    "purity",
    "covered",
    "strength",
]


def _entropy(p: np.ndarray, axis: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.nansum(np.where(p > 0, p * np.log(p), 0.0), axis=axis)


def factor_kinds(measures: Sequence[str], measure_info: dict | None = None) -> dict[str, tuple[str, float | None]]:
    """{measure: (kind, period)} from the measures' MeasureInfo dicts (a study's measure_info); a measure without
    a stored kind (older studies, bare tables) takes the kind of the built-in measure of that name, else continuous."""
    info = measure_info or {}
    return measure_kinds({m: dict(info.get(m) or {}) for m in measures})


def categorical_measures(measures: Sequence[str], measure_info: dict | None = None) -> list[str]:
    """The measures of kind categorical (class indices), see factor_kinds."""
    return [m for m, (k, _) in factor_kinds(measures, measure_info).items() if k == "categorical"]


def circular_measures(measures: Sequence[str], measure_info: dict | None = None) -> dict[str, float]:
    """{measure: period} of the measures of kind circular, see factor_kinds."""
    return {m: p for m, (k, p) in factor_kinds(measures, measure_info).items() if k == "circular"}


def _circular_part(iv: pd.DataFrame, samples: pd.DataFrame, f: str, period: float) -> pd.DataFrame:
    """Importance of a periodic factor: the larger of a consistent turn and a consistent move on the circle.

    turn: slope of the wrapped d_<f> on alpha over std(f). circle: the point (cos, sin)(2 pi f / period) moves by
    the slopes (b_cos, b_sin) per unit alpha; effect |b|, spread the RMS std of cos and sin over the samples. A
    linear direction in w usually moves toward one angle (circle), which a signed angle slope averages away.
    """
    if "sample_id" not in iv.columns or "sample_id" not in samples.columns:
        raise DirectionError(f"circular factor {f!r} needs sample_id in the interventions and samples tables")
    base = samples.set_index("sample_id")[f]
    th0 = base.reindex(iv["sample_id"].to_numpy()).to_numpy(float)
    th1 = th0 + iv[f"d_{f}"].to_numpy(float)
    k = 2 * np.pi / period
    frame = pd.DataFrame(
        {
            "method": iv["method"].to_numpy(),
            "target": iv["target"].to_numpy(),
            "alpha": iv["alpha"].to_numpy(),
            "d_turn": wrap(th1 - th0, period),
            "d_cos": np.cos(k * th1) - np.cos(k * th0),
            "d_sin": np.sin(k * th1) - np.sin(k * th0),
        }
    )
    e = effects_from_table(frame, ["turn", "cos", "sin"]).pivot(
        index=["method", "target"], columns="measure", values="slope"
    )
    b = base.to_numpy(float)
    s_turn = float(np.std(b, ddof=1))
    s_circ = float(np.sqrt((np.var(np.cos(k * b), ddof=1) + np.var(np.sin(k * b), ddof=1)) / 2))
    turn = e["turn"].abs().to_numpy(float)
    circ = np.hypot(e["cos"].to_numpy(float), e["sin"].to_numpy(float))
    use_circle = circ / s_circ > turn / s_turn
    idx = e.index.to_frame(index=False)
    return pd.DataFrame(
        {
            "method": idx["method"].astype(str).to_numpy(),
            "target": idx["target"].astype(str).to_numpy(),
            "measure": f,
            "kind": np.where(use_circle, "circle", "turn"),
            "effect": np.where(use_circle, circ, e["turn"].to_numpy(float)),
            "spread": np.where(use_circle, s_circ, s_turn),
        }
    )


def importance_table(
    interventions: pd.DataFrame,
    samples: pd.DataFrame,
    factors: Sequence[str],
    categorical: Sequence[str] = (),
    circular: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Long importance table: one row per (method, target, measure) of every direction target.

    interventions: study rows (target_kind, method, target, alpha, d_<factor>); samples: one row per sample with
    the factor columns; circular: {measure: period}: see _circular_part (kind turn | circle).
    categorical factors: per class c, the slope of the change of the indicator 1[class == c] on alpha over its std
    sqrt(p_c (1 - p_c)); the class with the largest ratio is kept (kind "class", effect = its slope).
    -> columns method, target, measure, kind (slope | class | turn | circle), effect, spread, importance.
    """
    miss = [f for f in factors if f not in samples.columns or f"d_{f}" not in interventions.columns]
    if miss:
        raise DirectionError(
            f"factors {miss} are not measures of this study; use some of "
            f"{[c[2:] for c in interventions.columns if c.startswith('d_')]}"
        )
    iv = interventions[interventions["target_kind"] == "direction"] if "target_kind" in interventions else interventions
    if iv.empty:
        raise DirectionError("the study walked no directions; add direction targets to its spec and run it")
    circ = {f: p for f, p in (circular or {}).items() if f in factors and f not in set(categorical)}
    cont = [f for f in factors if f not in set(categorical) and f not in circ]
    parts = []
    for f, period in circ.items():
        parts.append(_circular_part(iv, samples, f, period))
    if cont:
        eff = effects_from_table(iv, cont)
        std = {f: float(samples[f].std(ddof=1)) for f in cont}
        parts.append(
            pd.DataFrame(
                {
                    "method": eff["method"].astype(str),
                    "target": eff["target"].astype(str),
                    "measure": eff["measure"].astype(str),
                    "kind": "slope",
                    "effect": eff["slope"].to_numpy(float),
                    "spread": eff["measure"].map(std).to_numpy(float),
                }
            )
        )
    for f in factors:
        if f not in set(categorical):
            continue
        if "sample_id" not in iv.columns or "sample_id" not in samples.columns:
            raise DirectionError(f"categorical factor {f!r} needs sample_id in the interventions and samples tables")
        base = samples.set_index("sample_id")[f].round()
        before = base.reindex(iv["sample_id"].to_numpy()).to_numpy(float)
        after = np.round(before + iv[f"d_{f}"].to_numpy(float))
        best = None
        for c in np.sort(base.dropna().unique()):
            p = float((base == c).mean())
            if not 0 < p < 1:
                continue
            # d of the class indicator 1[class == c]: the change in P(class c), like d_<measure> for a number
            ind = pd.DataFrame(
                {
                    "method": iv["method"].to_numpy(),
                    "target": iv["target"].to_numpy(),
                    "alpha": iv["alpha"].to_numpy(),
                    "d_ind": (after == c) * 1.0 - (before == c) * 1.0,
                }
            )
            e = effects_from_table(ind, ["ind"])
            e = e.assign(spread=np.sqrt(p * (1 - p)), cls=c)
            e["score"] = e["slope"].abs() / e["spread"]
            best = e if best is None else pd.concat([best, e]).sort_values("score", ascending=False, kind="stable")
        if best is None:
            raise DirectionError(f"categorical factor {f!r} takes a single class over the samples; drop it")
        best = best.drop_duplicates(["method", "target"])
        parts.append(
            pd.DataFrame(
                {
                    "method": best["method"].astype(str).to_numpy(),
                    "target": best["target"].astype(str).to_numpy(),
                    "measure": f,
                    "kind": "class",
                    "effect": best["slope"].to_numpy(float),
                    "spread": best["spread"].to_numpy(float),
                }
            )
        )
    df = pd.concat(parts, ignore_index=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        imp = np.abs(df["effect"].to_numpy(float)) / df["spread"].to_numpy(float)
    df["importance"] = np.where(np.isfinite(imp), imp, np.nan)
    first = {t: i for i, t in enumerate(dict.fromkeys(iv["target"].astype(str)))}  # plan order of the targets
    order = {f: i for i, f in enumerate(factors)}
    df = df.assign(_t=df["target"].map(first), _o=df["measure"].map(order))
    return df.sort_values(["method", "_t", "_o"], kind="stable").drop(columns=["_t", "_o"]).reset_index(drop=True)


def score_matrix(R: np.ndarray) -> dict[str, np.ndarray]:
    """DCI / MIG-style scores of one method.  # R [K, F] importance >= 0 -> per-direction [K], per-factor [F]

    Returns top [K] (argmax factor, -1 for an all-zero row), purity [K], disentanglement [K], weight [K],
    row_share [K, F], col_share [K, F], completeness [F], gap [F], strength [F], col_weight [F].
    """
    R = np.nan_to_num(np.asarray(R, float), nan=0.0)
    if R.ndim != 2 or R.size == 0:
        raise DirectionError(f"importance matrix must be [K, F] with K, F >= 1; got shape {list(R.shape)}")
    if (R < 0).any():
        raise DirectionError("importance must be >= 0 (absolute normalised effects)")
    K, F = R.shape
    row, col, tot = R.sum(1), R.sum(0), R.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        rs = R / row[:, None]
        cs = R / col[None, :]
        dis = 1 - _entropy(rs, 1) / np.log(F) if F > 1 else np.ones(K)
        comp = 1 - _entropy(cs, 0) / np.log(K) if K > 1 else np.ones(F)
    live_r, live_c = row > 0, col > 0
    rs[~live_r], cs[:, ~live_c] = np.nan, np.nan
    dis = np.where(live_r, dis, np.nan)
    comp = np.where(live_c, comp, np.nan)
    top = np.where(live_r, R.argmax(1), -1)
    purity = np.where(live_r, np.nanmax(np.where(live_r[:, None], rs, 0.0), 1), np.nan)
    srt = np.sort(np.nan_to_num(cs, nan=0.0), 0)[::-1]
    gap = np.where(live_c, srt[0] - (srt[1] if K > 1 else 0.0), np.nan)
    weight = row / tot if tot > 0 else np.full(K, np.nan)
    return {
        "top": top,
        "purity": purity,
        "disentanglement": dis,
        "weight": weight,
        "row_share": rs,
        "col_share": cs,
        "completeness": comp,
        "gap": gap,
        "strength": R.max(0),
        "col_weight": col / tot if tot > 0 else np.full(F, np.nan),
    }


class GroundTruthScore(DirectionEstimator):
    """Score every direction set walked in a study against ground-truth factors (scikit-learn style).

    factors: measures that are ground-truth factors (None: every measure of the study);
    categorical: measures scored as classes (None: the factors of kind categorical, see factor_kinds);
    circular: {measure: period} (None: the factors of kind circular with their periods).
    fit(study) or fit(interventions, samples) -> self with
      importance_ (long table: IMPORTANCE_COLUMNS, one row per method, target, measure),
      assignments_ (one row per direction: method, target, factor, purity, importance, second, disentanglement,
      weight), factors_ (one row per method, factor: best target, strength, gap, completeness),
      scores_ (one row per method: SCORE_COLUMNS, in the registry's method order), factors_used_,
      categorical_used_, circular_used_.
    """

    def __init__(
        self,
        factors: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        circular: dict[str, float] | None = None,
    ):
        self.factors = factors
        self.categorical = categorical
        self.circular = circular

    def fit(self, X, samples: pd.DataFrame | None = None) -> GroundTruthScore:
        """X: a probe.store.Study (complete), or an interventions DataFrame together with `samples`."""
        if isinstance(X, pd.DataFrame):
            if samples is None:
                raise DirectionError("GroundTruthScore.fit(interventions, samples): pass the samples table too")
            iv, info = X, {}
            measures = [c[2:] for c in iv.columns if c.startswith("d_")]
        else:
            iv, samples, info, measures = X.table("interventions"), X.table("samples"), X.measure_info, X.measures
        factors = list(self.factors) if self.factors is not None else measures
        if not factors:
            raise DirectionError("factors: name at least one measure of the study")
        unknown = [f for f in factors if f not in measures]
        if unknown:
            raise DirectionError(f"factors: {unknown} are not measures of this study; use some of {measures}")
        cat = list(self.categorical) if self.categorical is not None else categorical_measures(factors, info)
        bad = [c for c in cat if c not in factors]
        if bad:
            raise DirectionError(f"categorical: {bad} are not among the factors {factors}")
        circ = dict(self.circular) if self.circular is not None else circular_measures(factors, info)
        bad = [c for c in circ if c not in factors or c in cat]
        if bad:
            raise DirectionError(f"circular: {bad} are not continuous factors among {factors}")
        imp = importance_table(iv, samples, factors, cat, circ)
        self.factors_used_, self.categorical_used_, self.circular_used_ = factors, cat, circ
        return self._score(imp)

    @classmethod
    def from_table(cls, groundtruth: pd.DataFrame) -> GroundTruthScore:
        """Rebuild the fitted scores from a stored `groundtruth` table (no study needed): its measures are the
        factors, those of kind 'class' the categorical ones (circular factors are not recorded: {})."""
        need = ["method", "target", "measure", "kind", "effect", "spread", "importance"]
        miss = [c for c in need if c not in groundtruth.columns]
        if miss:
            raise DirectionError(f"groundtruth table lacks columns {miss}; make it with `probe gt-score`")
        est = cls()
        factors = list(dict.fromkeys(groundtruth["measure"]))
        cat = list(dict.fromkeys(groundtruth.loc[groundtruth["kind"] == "class", "measure"]))
        est.factors_used_, est.categorical_used_, est.circular_used_ = factors, cat, {}
        return est._score(groundtruth[need])

    def _score(self, imp: pd.DataFrame) -> GroundTruthScore:
        factors = self.factors_used_
        long, assign, fac, scores = [], [], [], []
        for method, g in imp.groupby("method", sort=True):
            targets = list(dict.fromkeys(g["target"]))
            R = (
                g.pivot(index="target", columns="measure", values="importance")
                .reindex(index=targets, columns=factors)
                .to_numpy(float)
            )
            s = score_matrix(R)
            ti = {t: i for i, t in enumerate(targets)}
            fi = {f: j for j, f in enumerate(factors)}
            i, j = g["target"].map(ti).to_numpy(), g["measure"].map(fi).to_numpy()
            long.append(
                g.assign(
                    row_share=s["row_share"][i, j],
                    col_share=s["col_share"][i, j],
                    is_top=s["top"][i] == j,
                    purity=s["purity"][i],
                    disentanglement=s["disentanglement"][i],
                    weight=s["weight"][i],
                )
            )
            Rz = np.nan_to_num(R, nan=0.0)
            for k, t in enumerate(targets):
                order = np.argsort(-Rz[k], kind="stable")
                live = s["top"][k] >= 0
                assign.append(
                    {
                        "method": method,
                        "target": t,
                        "factor": factors[order[0]] if live else "",
                        "purity": s["purity"][k],
                        "importance": Rz[k, order[0]],
                        "second": factors[order[1]] if live and len(factors) > 1 else "",
                        "second_share": s["row_share"][k, order[1]] if live and len(factors) > 1 else np.nan,
                        "disentanglement": s["disentanglement"][k],
                        "weight": s["weight"][k],
                    }
                )
            for jf, f in enumerate(factors):
                best = int(np.argmax(Rz[:, jf]))
                fac.append(
                    {
                        "method": method,
                        "measure": f,
                        "best_target": targets[best],
                        "strength": s["strength"][jf],
                        "gap": s["gap"][jf],
                        "completeness": s["completeness"][jf],
                        "weight": s["col_weight"][jf],
                    }
                )
            cw = s["col_weight"]
            ok = np.isfinite(s["completeness"]) & np.isfinite(cw)
            scores.append(
                {
                    "method": method,
                    "n_directions": len(targets),
                    "n_factors": len(factors),
                    "disentanglement": float(np.nansum(s["weight"] * np.nan_to_num(s["disentanglement"]))),
                    "completeness": float((cw[ok] * s["completeness"][ok]).sum() / cw[ok].sum())
                    if ok.any()
                    else np.nan,
                    "mig": float(np.nanmean(s["gap"])) if np.isfinite(s["gap"]).any() else np.nan,
                    "purity": float(np.nanmean(s["purity"])) if np.isfinite(s["purity"]).any() else np.nan,
                    "covered": int(len({x for x in s["top"] if x >= 0})),
                    "strength": float(np.nanmean(s["strength"])),
                }
            )
        self.importance_ = pd.concat(long, ignore_index=True)[IMPORTANCE_COLUMNS]
        self.assignments_ = pd.DataFrame(assign)
        self.factors_ = pd.DataFrame(fac)
        rank = {m: i for i, m in enumerate(ordered([r["method"] for r in scores]))}
        self.scores_ = pd.DataFrame(sorted(scores, key=lambda r: rank[r["method"]]), columns=SCORE_COLUMNS)
        return self


METRICS = {
    "disentanglement": "disentanglement",
    "completeness": "completeness",
    "mig": "MIG gap",
    "purity": "purity",
    "covered": "factors covered",
    "strength": "strength",
}


def seed_summary(scores: dict[int, pd.DataFrame], baseline: str = BASELINE) -> pd.DataFrame:
    """Mean and std over seeds of each method's scores, and in how many seeds it beats `baseline`.

    scores: {seed: GroundTruthScore.scores_}. Returns one row per method: method, seeds, <metric>_mean,
    <metric>_std (ddof 1; NaN for one seed) and <metric>_wins (seeds where method > baseline) per METRICS.
    """
    if not scores:
        raise DirectionError("seeds: no ground-truth runs to summarise; pass at least one seed")
    allr = pd.concat([df.assign(seed=s) for s, df in scores.items()], ignore_index=True)
    base = allr[allr["method"] == baseline].set_index("seed")
    rows = []
    for m in ordered(list(dict.fromkeys(allr["method"]))):
        g = allr[allr["method"] == m]
        r = {"method": m, "seeds": len(g)}
        for c in METRICS:
            r[f"{c}_mean"], r[f"{c}_std"] = float(g[c].mean()), float(g[c].std(ddof=1)) if len(g) > 1 else np.nan
            r[f"{c}_wins"] = int(sum(v > base.loc[s, c] for s, v in zip(g["seed"], g[c]) if s in base.index))
        rows.append(r)
    return pd.DataFrame(rows)


__all__ = [
    "GroundTruthScore",
    "importance_table",
    "score_matrix",
    "factor_kinds",
    "categorical_measures",
    "circular_measures",
    "seed_summary",
    "IMPORTANCE_COLUMNS",
    "SCORE_COLUMNS",
    "METRICS",
    "wrap",
]
