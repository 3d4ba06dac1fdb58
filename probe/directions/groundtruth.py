"""Ground-truth scoring of discovered directions: which factor each direction controls, and how purely.

For a model whose images have known factors of variation measured by a factor measure (the sprites model and the
`sprites` measures: shape, scale, rotation, x, y, hue), a study walks every direction of every method. From its
interventions table:

- importance R[direction, factor] >= 0:
  - continuous factor m: |slope of d_<m> on alpha| (probe.stats OLS, as `probe.directions.evaluate`) divided by
    the std of m over the study's samples: factor stds moved per unit alpha;
  - periodic factor (sprite_rotation, period 90 deg): the larger of a consistent turn (slope of the wrapped
    d_<m> over std(m)) and a consistent move of the point (cos, sin)(2 pi m / period) (|slope| over the RMS std of
    cos and sin): a linear direction in w moves toward one angle, which a signed angle slope averages away;
  - categorical factor (class index, e.g. sprite_shape): the class index has no order, so its slope means
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

import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from .. import schema
from ..errors import ProbeError
from ..stats import effects_from_table
from .base import DirectionError

CATEGORICAL = ("sprite_shape",)          # measures treated as class indices when no `categorical` is given
CIRCULAR = {"sprite_rotation": 90.0, "hue": 360.0}  # periodic measures (a square at 0 and 90 deg is the same)
DEFAULT_SPEC = Path(__file__).resolve().parents[2] / "examples" / "sprites_gt.toml"  # the repository's
IMPORTANCE_COLUMNS = list(schema.GROUNDTRUTH_COLUMNS)
SCORE_COLUMNS = ["method", "n_directions", "n_factors", "disentanglement", "completeness", "mig", "purity",
                 "covered", "strength"]


def _entropy(p: np.ndarray, axis: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.nansum(np.where(p > 0, p * np.log(p), 0.0), axis=axis)


def categorical_measures(measures: Sequence[str], measure_info: dict | None = None) -> list[str]:
    """Measures scored as categories: unit mentions 'class' in measure_info, or named in CATEGORICAL."""
    info = measure_info or {}
    return [m for m in measures if m in CATEGORICAL or "class" in str(info.get(m, {}).get("unit", "")).lower()]


def circular_measures(measures: Sequence[str], measure_info: dict | None = None) -> dict[str, float]:
    """{measure: period} for measures whose description says 'period P deg' (or listed in CIRCULAR)."""
    import re
    out = {}
    for m in measures:
        hit = re.search(r"period (\d+(?:\.\d+)?)", str((measure_info or {}).get(m, {}).get("description", "")))
        if hit:
            out[m] = float(hit.group(1))
        elif m in CIRCULAR:
            out[m] = CIRCULAR[m]
    return out


def wrap(d: np.ndarray, period: float) -> np.ndarray:
    """Differences of a periodic measure wrapped to [-period / 2, period / 2)."""
    return (np.asarray(d, float) + period / 2) % period - period / 2


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
    frame = pd.DataFrame({"method": iv["method"].to_numpy(), "target": iv["target"].to_numpy(),
                          "alpha": iv["alpha"].to_numpy(), "d_turn": wrap(th1 - th0, period),
                          "d_cos": np.cos(k * th1) - np.cos(k * th0), "d_sin": np.sin(k * th1) - np.sin(k * th0)})
    e = effects_from_table(frame, ["turn", "cos", "sin"]).pivot(index=["method", "target"], columns="measure",
                                                                 values="slope")
    b = base.to_numpy(float)
    s_turn = float(np.std(b, ddof=1))
    s_circ = float(np.sqrt((np.var(np.cos(k * b), ddof=1) + np.var(np.sin(k * b), ddof=1)) / 2))
    turn = e["turn"].abs().to_numpy(float)
    circ = np.hypot(e["cos"].to_numpy(float), e["sin"].to_numpy(float))
    use_circle = circ / s_circ > turn / s_turn
    idx = e.index.to_frame(index=False)
    return pd.DataFrame({"method": idx["method"].astype(str).to_numpy(), "target": idx["target"].astype(str).to_numpy(),
                         "measure": f, "kind": np.where(use_circle, "circle", "turn"),
                         "effect": np.where(use_circle, circ, e["turn"].to_numpy(float)),
                         "spread": np.where(use_circle, s_circ, s_turn)})


def importance_table(interventions: pd.DataFrame, samples: pd.DataFrame, factors: Sequence[str],
                     categorical: Sequence[str] = (), circular: dict[str, float] | None = None) -> pd.DataFrame:
    """Long importance table: one row per (method, target, measure) of every direction target.

    interventions: study rows (target_kind, method, target, alpha, d_<factor>); samples: one row per sample with
    the factor columns; circular: {measure: period}: see _circular_part (kind turn | circle).
    categorical factors: per class c, the slope of the change of the indicator 1[class == c] on alpha over its std
    sqrt(p_c (1 - p_c)); the class with the largest ratio is kept (kind "class", effect = its slope).
    -> columns method, target, measure, kind (slope | class | turn | circle), effect, spread, importance.
    """
    miss = [f for f in factors if f not in samples.columns or f"d_{f}" not in interventions.columns]
    if miss:
        raise DirectionError(f"factors {miss} are not measures of this study; use some of "
                             f"{[c[2:] for c in interventions.columns if c.startswith('d_')]}")
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
        parts.append(pd.DataFrame({"method": eff["method"].astype(str), "target": eff["target"].astype(str),
                                   "measure": eff["measure"].astype(str), "kind": "slope",
                                   "effect": eff["slope"].to_numpy(float),
                                   "spread": eff["measure"].map(std).to_numpy(float)}))
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
            ind = pd.DataFrame({"method": iv["method"].to_numpy(), "target": iv["target"].to_numpy(),
                                "alpha": iv["alpha"].to_numpy(), "d_ind": (after == c) * 1.0 - (before == c) * 1.0})
            e = effects_from_table(ind, ["ind"])
            e = e.assign(spread=np.sqrt(p * (1 - p)), cls=c)
            e["score"] = e["slope"].abs() / e["spread"]
            best = e if best is None else pd.concat([best, e]).sort_values("score", ascending=False, kind="stable")
        if best is None:
            raise DirectionError(f"categorical factor {f!r} takes a single class over the samples; drop it")
        best = best.drop_duplicates(["method", "target"])
        parts.append(pd.DataFrame({"method": best["method"].astype(str).to_numpy(),
                                   "target": best["target"].astype(str).to_numpy(), "measure": f, "kind": "class",
                                   "effect": best["slope"].to_numpy(float), "spread": best["spread"].to_numpy(float)}))
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
    return {"top": top, "purity": purity, "disentanglement": dis, "weight": weight, "row_share": rs,
            "col_share": cs, "completeness": comp, "gap": gap, "strength": R.max(0),
            "col_weight": col / tot if tot > 0 else np.full(F, np.nan)}


class GroundTruthScore:
    """Score every direction set walked in a study against ground-truth factors (scikit-learn style).

    factors: measures that are ground-truth factors (None: every measure of the study);
    categorical: measures scored as classes (None: unit contains 'class', or in CATEGORICAL);
    circular: {measure: period} (None: 'period P' in the measure's description, or CIRCULAR).
    fit(study) or fit(interventions, samples) -> self with
      importance_ (long table: IMPORTANCE_COLUMNS, one row per method, target, measure),
      assignments_ (one row per direction: method, target, factor, purity, importance, second, disentanglement,
      weight), factors_ (one row per method, factor: best target, strength, gap, completeness),
      scores_ (one row per method: SCORE_COLUMNS, in ORDER), factors_used_, categorical_used_.
    """

    def __init__(self, factors: Sequence[str] | None = None, categorical: Sequence[str] | None = None,
                 circular: dict[str, float] | None = None):
        self.factors = factors
        self.categorical = categorical
        self.circular = circular

    def get_params(self, deep: bool = True) -> dict:
        return {"factors": self.factors, "categorical": self.categorical, "circular": self.circular}

    def set_params(self, **params) -> "GroundTruthScore":
        for k, v in params.items():
            if k not in ("factors", "categorical", "circular"):
                raise DirectionError(f"GroundTruthScore has no parameter {k!r}; use factors, categorical or "
                                     f"circular")
            setattr(self, k, v)
        return self

    def fit(self, X, samples: pd.DataFrame | None = None) -> "GroundTruthScore":
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
    def from_table(cls, groundtruth: pd.DataFrame) -> "GroundTruthScore":
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

    def _score(self, imp: pd.DataFrame) -> "GroundTruthScore":
        factors = self.factors_used_
        long, assign, fac, scores = [], [], [], []
        for method, g in imp.groupby("method", sort=True):
            targets = list(dict.fromkeys(g["target"]))
            R = (g.pivot(index="target", columns="measure", values="importance")
                 .reindex(index=targets, columns=factors).to_numpy(float))
            s = score_matrix(R)
            ti = {t: i for i, t in enumerate(targets)}
            fi = {f: j for j, f in enumerate(factors)}
            i, j = g["target"].map(ti).to_numpy(), g["measure"].map(fi).to_numpy()
            long.append(g.assign(row_share=s["row_share"][i, j], col_share=s["col_share"][i, j],
                                 is_top=s["top"][i] == j, purity=s["purity"][i],
                                 disentanglement=s["disentanglement"][i], weight=s["weight"][i]))
            Rz = np.nan_to_num(R, nan=0.0)
            for k, t in enumerate(targets):
                order = np.argsort(-Rz[k], kind="stable")
                live = s["top"][k] >= 0
                assign.append({"method": method, "target": t, "factor": factors[order[0]] if live else "",
                               "purity": s["purity"][k], "importance": Rz[k, order[0]],
                               "second": factors[order[1]] if live and len(factors) > 1 else "",
                               "second_share": s["row_share"][k, order[1]] if live and len(factors) > 1 else np.nan,
                               "disentanglement": s["disentanglement"][k], "weight": s["weight"][k]})
            for jf, f in enumerate(factors):
                best = int(np.argmax(Rz[:, jf]))
                fac.append({"method": method, "measure": f, "best_target": targets[best],
                            "strength": s["strength"][jf], "gap": s["gap"][jf],
                            "completeness": s["completeness"][jf], "weight": s["col_weight"][jf]})
            cw = s["col_weight"]
            ok = np.isfinite(s["completeness"]) & np.isfinite(cw)
            scores.append({"method": method, "n_directions": len(targets), "n_factors": len(factors),
                           "disentanglement": float(np.nansum(s["weight"] * np.nan_to_num(s["disentanglement"]))),
                           "completeness": float((cw[ok] * s["completeness"][ok]).sum() / cw[ok].sum())
                           if ok.any() else np.nan,
                           "mig": float(np.nanmean(s["gap"])) if np.isfinite(s["gap"]).any() else np.nan,
                           "purity": float(np.nanmean(s["purity"])) if np.isfinite(s["purity"]).any() else np.nan,
                           "covered": int(len({x for x in s["top"] if x >= 0})),
                           "strength": float(np.nanmean(s["strength"]))})
        self.importance_ = pd.concat(long, ignore_index=True)[IMPORTANCE_COLUMNS]
        self.assignments_ = pd.DataFrame(assign)
        self.factors_ = pd.DataFrame(fac)
        rank = {m: i for i, m in enumerate(ordered_methods([r["method"] for r in scores]))}
        self.scores_ = pd.DataFrame(sorted(scores, key=lambda r: rank[r["method"]]), columns=SCORE_COLUMNS)
        return self


def groundtruth(study, factors: Sequence[str] | None = None, categorical: Sequence[str] | None = None,
                circular: dict[str, float] | None = None, write: bool = True) -> GroundTruthScore:
    """Fit GroundTruthScore on a study; with write, store its importance table as the study's `groundtruth`."""
    est = GroundTruthScore(factors, categorical, circular).fit(study)
    if write:
        write_groundtruth(study, est.importance_)
    return est


def write_groundtruth(study, df: pd.DataFrame) -> Path:
    """Write groundtruth.parquet through probe.store (the table contract is schema.GROUNDTRUTH_COLUMNS)."""
    return study.write_table("groundtruth", df)


# ---- Markdown --------------------------------------------------------------------------------------
def _short(f: str) -> str:
    return f.removeprefix("sprite_")


ORDER = ("interfacegan", "dplase", "ganspace", "sefa", "random")
METHOD_NAMES = {"interfacegan": "InterFaceGAN", "dplase": "DP-LaSE", "ganspace": "GANSpace", "sefa": "SeFa"}


def ordered_methods(methods, order: Sequence[str] = ORDER) -> list[str]:
    """methods in the tables' order: InterFaceGAN, DP-LaSE, GANSpace, SeFa, random, then any other."""
    return [m for m in order if m in set(methods)] + [m for m in methods if m not in order]


def to_markdown(est: GroundTruthScore, order: Sequence[str] = ORDER) -> str:
    """One comparison table: a row per method with D, C, MIG gap, purity, covered factors and assignments."""
    sc = est.scores_.set_index("method")
    methods = ordered_methods(list(sc.index), order)
    F = len(est.factors_used_)
    head = ["method", "K", "disentanglement", "completeness", "MIG gap", "purity", f"factors covered (of {F})",
            "strength", "direction: top factor (purity)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in methods:
        r = sc.loc[m]
        a = est.assignments_[est.assignments_["method"] == m]
        ass = ", ".join(f"{_short(x.target.split('/', 1)[-1])}: {_short(x.factor) or '-'} ({x.purity:.2f})"
                        for x in a.itertuples())
        lines.append(f"| {METHOD_NAMES.get(m, m)} | {int(r['n_directions'])} | {r['disentanglement']:.2f} | "
                     f"{r['completeness']:.2f} | {r['mig']:.2f} | {r['purity']:.2f} | {int(r['covered'])} | "
                     f"{r['strength']:.2f} | {ass} |")
    return "\n".join(lines)


# ---- end to end: fit the methods, one study, score ----------------------------------------------------
def _dplase_site(model) -> str:
    """The site at a quarter of the image resolution (b16 on a 64 px model), else the first site."""
    want = f"b{max(4, model.resolution // 4)}"
    return want if want in model.sites else model.sites[0]


def fit_gt_directions(model, ddir: Path, factors: Sequence[str], k: int = 6, n_fit: int = 2000,
                      dplase_steps: int = 200, ratio: float = 0.1, space: str = "w", circular: dict | None = None,
                      seed: int = 0, progress: bool = True, log: Callable[[str], None] = print) -> None:
    """Fit the five direction sets into ddir (skipping files that exist), as `probe.demo` does for faces.

    InterFaceGAN: one boundary per factor, labels = the factor measures of n_fit samples (top/bottom `ratio`;
    a circular factor {measure: period} is labelled by cos(2 pi m / period): axis-aligned vs diagonal);
    DP-LaSE: k directions at the quarter-resolution site; GANSpace: PCA of n_fit w; SeFa: all style affines;
    random: k orthonormal. All in `space` (w). seed: of DP-LaSE, GANSpace and random; InterFaceGAN's samples and
    split use seed + 1.
    """
    from .base import fit_once
    from .dplase import DPLaSE
    from .ganspace import GANSpace
    from .interfacegan import InterFaceGAN, sample_and_score
    from .random_dirs import RandomDirections
    from .sefa import SeFa

    def fit(stem, make):
        fit_once(ddir / f"{stem}.npz", make, log)

    def interfacegan():
        lat, scores = sample_and_score(model, list(factors), n_fit, seed=seed + 1, space=space, progress=progress)
        for m, period in (circular or {}).items():  # top/bottom of an angle are the same sprite: use cos instead
            if m in scores:
                scores[m] = np.cos(2 * np.pi * scores[m] / period)
        est = InterFaceGAN(list(factors), ratio=ratio, space=space, seed=seed + 1).fit(lat, scores, model=model)
        est.directions_.provenance.update({"n_samples": int(n_fit), "sample_seed": seed + 1,
                                           "circular_labels": {m: f"cos(2 pi {m} / {p})"
                                                               for m, p in (circular or {}).items()}})
        for name, acc in est.accuracy_.items():
            log(f"    boundary {name:<16} held-out accuracy {acc:.3f}")
        return est.directions_

    ddir.mkdir(parents=True, exist_ok=True)
    fit("interfacegan", interfacegan)
    fit("dplase", lambda: DPLaSE(k, site=_dplase_site(model), space=space, steps=dplase_steps, seed=seed,
                                 progress=progress).fit(model).directions_)
    fit("ganspace", lambda: GANSpace(k, n_samples=n_fit, space=space, seed=seed).fit(model).directions_)
    fit("sefa", lambda: SeFa(k, affines="all-affines").fit(model).directions_)  # as the published scores
    fit("random", lambda: RandomDirections(k, seed=seed, space=space).fit(model).directions_)


def w_spread(model, n: int = 4096, seed: int = 0) -> float:
    """RMS std of w over n samples, sqrt(trace(cov(w)) / w_dim), rounded to 4 significant digits."""
    import torch
    with torch.no_grad():
        w = model.to_space(model.sample(int(n), seed), "z", "w").double().cpu()
    s = float(torch.sqrt(torch.trace(torch.cov(w.T)) / w.shape[1]))
    return float(f"{s:.4g}")


def gt_spec(spec: str | Path = DEFAULT_SPEC, model: str | None = None, measures: Sequence[str] | None = None,
            n_samples: int | None = None, unit: float | None = None, seed: int | None = None):
    """Load the ground-truth study spec (TOML), optionally for another model / measures / sample count.

    unit: the step of alpha = 1 for every direction target without its own `scale` (run_groundtruth passes the
    model's w spread, so every unit direction is walked the same distance in units of w's typical std).
    """
    from ..study import SpecError, parse_spec, read_spec_file
    p = Path(spec)
    if not p.is_file():
        raise SpecError(f"--spec {str(p)!r} does not exist; pass --spec path/to/spec.toml")
    data = read_spec_file(p)
    if model is not None:
        from ..models.zoo import resolve_model
        data["model"] = resolve_model(model, Path.cwd())  # named on the command line: relative to the cwd
        data["name"] = f"{data.get('name', 'gt')}-{model}" if model != "sprites" else data.get("name", "gt")
    if measures is not None:
        data["measures"] = list(measures)
    if n_samples is not None:
        data["n_samples"] = int(n_samples)
    if seed is not None:
        data["seed"] = int(seed)
    if unit is not None:
        data["targets"] = [dict(t, scale=float(unit)) if isinstance(t, dict) and t.get("kind") == "directions"
                           and "scale" not in t else t for t in data.get("targets", [])]
    s = parse_spec(data, p.parent, where=f"{p.name}: ")
    s._source = p.name
    return s


def run_groundtruth(out: str | Path, model: str | None = None, spec: str | Path = DEFAULT_SPEC,
                    measures: Sequence[str] | None = None, k: int = 6, n_fit: int = 2000, dplase_steps: int = 200,
                    n_samples: int | None = None, seed: int | None = None, progress: bool = True,
                    log: Callable[[str], None] = print, device: str | None = None) -> GroundTruthScore:
    """Fit the five methods, run ONE study walking all of them, evaluate, score; writes into `out`:
    directions/, the study tables, evaluation.parquet, groundtruth.parquet and groundtruth.md. Resumable.
    seed: of the study's samples and of the fits (None: the spec's seed for samples, 0 for the fits).
    device: auto | cpu | cuda | cuda:N for the fits and the study (default the spec's device, auto)."""
    from ..devices import resolve_device
    from ..measures import MeasureSet
    from ..models import load_model
    from ..study import run_study, spec_model
    from .evaluate import evaluate_study

    out = Path(out)
    s = gt_spec(spec, model, measures, n_samples, seed=seed)
    t0 = time.perf_counter()
    from ..models.zoo import model_options
    dev = resolve_device(device or s.device, field="--device" if device else "device")
    g = load_model(spec_model(s), **model_options(s.dump())).to(dev)
    if s.space not in ("w", "ws") or "w" not in g.spaces:
        raise ProbeError(f"model {g.name!r} has no w space; ground-truth scoring fits the methods in w "
                         f"(use a style-based model such as 'sprites')")
    unit = w_spread(g, seed=0)  # a property of the model: the same step for every seed
    s = gt_spec(spec, model, measures, n_samples, unit=unit, seed=seed)
    ms = MeasureSet(list(s.measures))
    factors = ms.names
    info = {i.name: {"unit": i.unit, "description": i.description} for i in ms.infos}
    log(f"[1/3] fitting direction sets on model {s.model!r} (weights {g.weights_hash}), factors {factors}; "
        f"alpha unit = RMS std of w = {unit}")
    fit_gt_directions(g, out / "directions", factors, k=k, n_fit=n_fit, dplase_steps=dplase_steps,
                      circular=circular_measures(factors, info), seed=0 if seed is None else int(seed),
                      progress=progress, log=log)
    log(f"[2/3] running study {s.name!r} -> {out}")
    study = run_study(s, out, resume=(out / "manifest.json").is_file(), progress=progress, device=str(dev))
    evaluate_study(study)
    log("[3/3] ground-truth scores")
    est = groundtruth(study, factors)
    md = to_markdown(est)
    from ..io import atomic_write_bytes
    atomic_write_bytes(out / "groundtruth.md", (md + "\n").encode())
    log(md)
    log(f"done in {time.perf_counter() - t0:.0f} s: {out / 'groundtruth.parquet'}, {out / 'groundtruth.md'}")
    return est


METRICS = {"disentanglement": "disentanglement", "completeness": "completeness", "mig": "MIG gap",
           "purity": "purity", "covered": "factors covered", "strength": "strength"}


def seed_summary(scores: dict[int, pd.DataFrame], baseline: str = "random") -> pd.DataFrame:
    """Mean and std over seeds of each method's scores, and in how many seeds it beats `baseline`.

    scores: {seed: GroundTruthScore.scores_}. Returns one row per method: method, seeds, <metric>_mean,
    <metric>_std (ddof 1; NaN for one seed) and <metric>_wins (seeds where method > baseline) per METRICS.
    """
    if not scores:
        raise DirectionError("seeds: no ground-truth runs to summarise; pass at least one seed")
    allr = pd.concat([df.assign(seed=s) for s, df in scores.items()], ignore_index=True)
    base = allr[allr["method"] == baseline].set_index("seed")
    rows = []
    for m in ordered_methods(list(dict.fromkeys(allr["method"]))):
        g = allr[allr["method"] == m]
        r = {"method": m, "seeds": len(g)}
        for c in METRICS:
            r[f"{c}_mean"], r[f"{c}_std"] = float(g[c].mean()), float(g[c].std(ddof=1)) if len(g) > 1 else np.nan
            r[f"{c}_wins"] = int(sum(v > base.loc[s, c] for s, v in zip(g["seed"], g[c]) if s in base.index))
        rows.append(r)
    return pd.DataFrame(rows)


def seed_markdown(summary: pd.DataFrame, baseline: str = "random") -> str:
    """The seed summary as one table: mean +- std per score; 'beats random in' counts seeds on disentanglement."""
    head = ["method", "seeds"] + list(METRICS.values()) + [f"D above {baseline} (seeds)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary.to_dict("records"):
        cells = [METHOD_NAMES.get(r["method"], r["method"]), str(r["seeds"])]
        for c in METRICS:
            sd = "" if np.isnan(r[f"{c}_std"]) else f" ± {r[f'{c}_std']:.2f}"
            cells.append(f"{r[f'{c}_mean']:.2f}{sd}")
        cells.append("–" if r["method"] == baseline else f"{r['disentanglement_wins']} of {r['seeds']}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_groundtruth_seeds(out: str | Path, seeds: Sequence[int], log: Callable[[str], None] = print,
                          **kw) -> pd.DataFrame:
    """run_groundtruth once per seed into out/seed-<s>/ (each resumable), then the seed summary: writes
    out/groundtruth_seeds.csv and .md. kw: run_groundtruth's other arguments.  # -> seed_summary table"""
    from ..io import atomic_write_bytes
    seeds = [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds) or not seeds:
        raise DirectionError(f"--seeds: give distinct seeds, e.g. 0,1,2; got {seeds}")
    out = Path(out)
    scores = {}
    for s in seeds:
        log(f"== seed {s} ({seeds.index(s) + 1} of {len(seeds)})")
        scores[s] = run_groundtruth(out / f"seed-{s}", seed=s, log=log, **kw).scores_
    summary = seed_summary(scores)
    md = seed_markdown(summary)
    atomic_write_bytes(out / "groundtruth_seeds.csv", summary.to_csv(index=False).encode())
    atomic_write_bytes(out / "groundtruth_seeds.md", (md + "\n").encode())
    log(md)
    return summary


__all__ = ["GroundTruthScore", "groundtruth", "importance_table", "score_matrix", "categorical_measures",
           "to_markdown", "fit_gt_directions", "run_groundtruth", "gt_spec", "write_groundtruth", "w_spread",
           "circular_measures", "wrap", "seed_summary", "seed_markdown", "run_groundtruth_seeds",
           "ordered_methods", "ORDER"]
