"""Self-contained HTML report of a study: one file, plotly.js inlined once, images as inline PNG thumbnails.

    build_report("studies/faces-demo", "report.html")           # offline file (~5 MB: plotly.js is ~4.8 MB)
    build_report(study, "report.html", cdn=True)                 # small file, loads plotly.js from the CDN

Every figure comes from `probe.figures` (the same builders as the dashboard). A section whose table is absent
says so and names the command that makes it. User-supplied names are escaped: Jinja2 autoescape for HTML text,
and figure JSON inside <script> has `<`, `>` and `&` written as \\u003c, \\u003e, \\u0026.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probe import schema
from probe.errors import ProbeError

TEMPLATES = Path(__file__).parent / "templates"
CDN_URL = "https://cdn.plot.ly/plotly-{version}.min.js"
SECTIONS = (
    ("findings", "Findings"),
    ("effects", "Effects"),
    ("correlations", "Controlling variables and correlations"),
    ("directions", "Direction comparisons"),
    ("walks", "Walks"),
    ("samples", "Sample grid"),
    ("embedding", "UMAP embedding"),
    ("edits", "Drag and inversion runs"),
    ("groundtruth", "Ground-truth scores"),
    ("spec", "Study spec and provenance"),
)
FIT_WIDTH = 900  # px: image figures are scaled to fit this width (the page's content column at 1,280 px)
HEAT_ROWS = 30  # targets in the report's effect heatmap (the largest standardised effects)
P_COLUMNS = {"p", "q"}
OPTIONAL = {"groundtruth"}  # shown only when the study has the table (only models with known factors make it)


class ReportError(ProbeError):
    """A report could not be built as asked; the message names the fix."""


@dataclass
class Section:
    """One report section: id (HTML anchor), title, blocks (dicts the template renders by `kind`)."""

    id: str
    title: str
    intro: str = ""
    blocks: list[dict] = field(default_factory=list)

    @property
    def present(self) -> bool:
        return any(b["kind"] != "absent" for b in self.blocks)

    def add(self, kind: str, heading: str | None = None, **kw) -> None:
        self.blocks.append({"kind": kind, "heading": heading, **kw})

    def absent(self, text: str, command: str | None = None, heading: str | None = None) -> None:
        self.add("absent", heading, text=text, command=command)


# ---- escaping and formatting -----------------------------------------------------------------------
def script_json(obj_or_json: Any) -> str:
    """JSON safe to place inside <script>: `<`, `>`, `&` as \\u003c / \\u003e / \\u0026 (so no `</script>`, `<!--`)."""
    s = obj_or_json if isinstance(obj_or_json, str) else json.dumps(obj_or_json)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def fmt_p(v: Any) -> str:
    """p or q in scientific notation ("3.90e-06"); an exact 0 (below the float range) as "<1e-300"."""
    if v is None or (isinstance(v, (float, np.floating)) and math.isnan(v)):
        return "–"
    v = float(v)
    return "<1e-300" if v == 0 else f"{v:.2e}"


def fmt(v: Any) -> str:
    """Table cell text: floats to 3 significant digits (below 1e-3 in e-notation); missing values as "–"."""
    if v is None or v is pd.NA or v is pd.NaT:
        return "–"
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return "–"
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.2e}"
        return f"{v:.3g}"
    if isinstance(v, (np.integer,)):
        return str(int(v))
    return str(v)


class _Figs:
    """Numbers figure blocks and turns go.Figure into escaped JSON."""

    def __init__(self):
        self.n = 0

    def block(self, sec: Section, fig, heading: str | None = None) -> None:
        self.n += 1
        sec.add("figure", heading, id=f"fig-{self.n}", json=script_json(fig.to_json()))

    def safe(self, sec: Section, make, heading: str | None = None) -> None:
        """Add make() as a figure; a ProbeError from the builder becomes a visible note instead."""
        try:
            fig = make()
        except (ProbeError, ImportError) as e:
            sec.add("text", heading, text=f"figure not available: {e}")
            return
        self.block(sec, fig, heading)


def _table(sec: Section, df: pd.DataFrame, heading: str | None = None, max_rows: int = 60, source: str = "") -> None:
    cols = list(df.columns)
    text_cols = [c for c in cols if not pd.api.types.is_numeric_dtype(df[c])]
    f = [fmt_p if c in P_COLUMNS else fmt for c in cols]
    rows = [[(c, ff(v)) for c, ff, v in zip(cols, f, r)] for r in df.head(max_rows).itertuples(index=False, name=None)]
    more = f"{len(df) - max_rows} more rows in {source}" if len(df) > max_rows else ""
    sec.add("table", heading, columns=cols, text_cols=text_cols, rows=rows, more=more)


def _thumbs(img, size: int):
    """Downscale img [..., 3, H, W] so that H, W <= size (antialiased); smaller images stay as they are."""
    import torch
    import torch.nn.functional as F

    t = img if isinstance(img, torch.Tensor) else torch.as_tensor(np.asarray(img))
    h, w = t.shape[-2:]
    if max(h, w) <= size:
        return t
    lead = t.shape[:-3]
    s = size / max(h, w)
    out = F.interpolate(
        t.reshape(-1, *t.shape[-3:]).float(),
        size=(max(1, round(h * s)), max(1, round(w * s))),
        mode="bilinear",
        antialias=True,
        align_corners=False,
    )
    return out.reshape(*lead, *out.shape[-3:])


def _fit_scale(w: int, cols: int, margin: int, most: float = 2.0) -> float:
    """Scale of probe.figures' image grids (cols images w px wide, `margin` px of labels) that fits FIT_WIDTH."""
    pad = max(2, w // 16)
    return max(0.5, min(most, (FIT_WIDTH - margin) / (cols * (w + pad) + pad)))


def _missing(study, table: str) -> tuple[str, str]:
    from probe.store import MAKERS

    if table == "interventions" and study.status != "complete":
        return (
            f"The study is incomplete (status {study.status!r}): no interventions table yet.",
            f"probe run SPEC.toml --out {study.path} --resume",
        )
    return (f"No {table} table in this study.", MAKERS.get(table, "").replace("STUDY", str(study.path)))


# ---- sections ----------------------------------------------------------------------------------------
def focus_measures(study) -> list[str]:
    """The measures the study was about, in study order: those of the model's `default_measures` when the
    manifest records them, else those of the spec's first `measures` entry (a group such as `faces`, or one
    measure); every measure when that entry is a user file.  -> list of measure names"""
    from probe.measures import GROUPS

    ms = list(study.measures)
    spec = study.manifest.get("spec") or {}
    entries = list((study.manifest.get("model_info") or {}).get("default_measures") or [])
    entries = [e for e in entries if e in GROUPS or e in ms] or list(spec.get("measures") or [])[:1]
    names: list[str] = []
    for e in entries:
        if e in GROUPS:
            names += [i.name for i in GROUPS[e]().infos]
        elif e in ms:
            names.append(e)
    got = [m for m in ms if m in set(names)]
    return got or ms


def _unit(study, m: str) -> str:
    return str((study.measure_info.get(m) or {}).get("unit") or "")


def _per_alpha(study, m: str) -> str:
    u = _unit(study, m)
    return f"{u} per unit alpha" if u else "per unit alpha"


def _findings(study, sec: Section, present: dict[str, bool]) -> None:
    """Top controlling variables and the best direction per measure, then links to the sections below."""
    focus = focus_measures(study)
    order = focus + [m for m in study.measures if m not in focus]
    n = study.manifest.get("n_samples", "")
    sec.intro = (
        f"{n} samples of model {study.model_name}, {len(study.target_names)} targets walked over alphas "
        f"{', '.join(f'{a:g}' for a in study.alphas)}. Effect = slope of the change of a measure per unit "
        f"alpha (OLS, 95% CI, q: Benjamini-Hochberg). Measures the study was about: {', '.join(focus)}."
    )
    if study.has("controlling"):
        k = study.table("controlling")
        rows = []
        for m in order:
            g = k[k["measure"] == m].sort_values("rank")
            top = "; ".join(f"{r.target} {r.effect:+.3g} (q {fmt_p(r.q)})" for r in g.head(3).itertuples())
            src = g["source"].iloc[0] if len(g) else ""
            rows.append(
                {
                    "measure": m,
                    "unit": _unit(study, m),
                    "top controlling variables (effect, q)": top or "none significant (q <= 0.05)",
                    "significant": len(g),
                    "effect": ("slope per unit alpha" if src == "intervention" else "r" if src else ""),
                }
            )
        _table(sec, pd.DataFrame(rows), "Top controlling variables per measure")
        sec.add("links", links=[("#correlations", "all controlling variables and correlations")])
    else:
        sec.absent(*_missing(study, "controlling"), heading="Top controlling variables per measure")
    if study.has("evaluation"):
        ev = study.table("evaluation")
        ev = ev[ev["is_target"]] if "is_target" in ev.columns else ev
        rows = []
        for m in order:
            g = ev[ev["measure"] == m]
            if g.empty:
                continue
            b = g.loc[g["specificity"].fillna(-np.inf).idxmax()]
            rows.append(
                {
                    "measure": m,
                    "best direction": b["target"],
                    "method": b["method"],
                    "slope": float(b["slope"]),
                    "unit per alpha": _unit(study, m),
                    "specificity": float(b["specificity"]),
                    "mean |dlogp|": float(b["dlogp_abs_mean"]),
                    "directions for it": int(g["target"].nunique()),
                }
            )
        if rows:
            _table(
                sec,
                pd.DataFrame(rows),
                "Best direction per measure (highest specificity among the directions aimed at it)",
            )
        else:
            sec.add("text", "Best direction per measure", text="no direction targets a measure of this study")
        sec.add("links", links=[("#directions", "all directions: specificity and density drift")])
    else:
        sec.absent(*_missing(study, "evaluation"), heading="Best direction per measure")
    sec.add(
        "links",
        "Sections",
        links=[(f"#{sid}", title) for sid, title in SECTIONS if sid != "findings" and present.get(sid, True)],
    )


def _spec(study, sec: Section) -> None:
    m = study.manifest
    spec = m.get("spec", {})
    vers = m.get("versions") or {}
    kv = [
        ("name", study.name),
        ("study id", m.get("study_id", "")),
        ("directory", str(study.path)),
        ("status", study.status),
        ("model", study.model_name),
        ("weights hash", m.get("weights_hash", "")),
        ("space", study.space),
        ("samples", m.get("n_samples", spec.get("n_samples", ""))),
        ("seed", m.get("seed", spec.get("seed", ""))),
        ("alphas", ", ".join(fmt(float(a)) for a in study.alphas)),
        (
            "targets",
            f"{len(study.target_names)}: "
            + ", ".join(study.target_names[:12])
            + (" ..." if len(study.target_names) > 12 else ""),
        ),
        ("versions", ", ".join(f"{k} {v}" for k, v in vers.items() if v)),
    ]
    sec.add("kv", rows=[(k, fmt(v)) for k, v in kv])
    info = m.get("model_info") or {}
    if info:
        sec.add(
            "kv",
            "Model",
            rows=[(k, ", ".join(map(str, v)) if isinstance(v, list) else fmt(v)) for k, v in info.items()],
        )
    mi = study.measure_info
    if mi:
        _table(
            sec,
            pd.DataFrame(
                [
                    {
                        "measure": k,
                        "unit": v.get("unit", ""),
                        "lo": v.get("lo"),
                        "hi": v.get("hi"),
                        "description": v.get("description", ""),
                    }
                    for k, v in mi.items()
                ]
            ),
            "Measures",
        )
    try:
        dsets = study.directions()
    except ProbeError as e:
        sec.add("text", "Direction sets", text=f"direction files unreadable: {e}")
        dsets = {}
    if dsets:
        _table(
            sec,
            pd.DataFrame(
                [
                    {
                        "file": f"directions/{k}.npz",
                        "method": d.method,
                        "space": d.space,
                        "directions": len(d.names),
                        "names": ", ".join(d.names[:8]) + (" ..." if len(d.names) > 8 else ""),
                    }
                    for k, d in dsets.items()
                ]
            ),
            "Direction sets",
        )
    sec.add("pre", "Spec", text=json.dumps(spec, indent=2, sort_keys=True, default=str))


def _samples(study, sec: Section, figs: _Figs, n_grid: int, thumb: int) -> None:
    from probe import figures

    if not study.has("samples"):
        sec.absent(*_missing(study, "samples"))
        return
    s = study.table("samples").sort_values("sample_id")
    ids = s["sample_id"].to_numpy()[:n_grid]
    try:
        import torch

        from probe.restudy import study_model

        model = study_model(study)
        with torch.no_grad():
            img = model.synthesize(torch.as_tensor(study.latents()[ids]), study.space)
    except ProbeError as e:
        sec.add("text", text=f"images not rendered: {e}")
    else:
        img = _thumbs(img, thumb)
        cols = min(8, len(ids))
        figs.block(
            sec,
            figures.sample_grid(
                img,
                labels=[str(i) for i in ids],
                sample_ids=ids.tolist(),
                cols=cols,
                title=f"first {len(ids)} of {len(s)} samples (label: sample_id)",
                scale=_fit_scale(img.shape[-1], cols, 40),
            ),
        )
    cols = ["logp", "norm", "chi2_pct", *[c for c in study.measures if c in s.columns]]
    d = s[cols].describe().T[["mean", "std", "min", "50%", "max"]].rename(columns={"50%": "median"})
    _table(sec, d.reset_index(names="column"), "Per-sample measures and density")


def _correlations(study, sec: Section, figs: _Figs) -> None:
    from probe import figures

    if study.has("controlling"):
        k = study.table("controlling").sort_values(["measure", "rank"])
        _table(sec, k, "Controlling variables (ranked per measure)", source="controlling.parquet")
    else:
        sec.absent(*_missing(study, "controlling"), heading="Controlling variables")
    if not study.has("correlations"):
        sec.absent(*_missing(study, "correlations"), heading="Correlation heatmap")
        return
    c = study.table("correlations")
    sig = c[c["q"] <= 0.05]
    n = int(c["n"].max()) if len(c) else 0
    if sig.empty:
        sec.add(
            "text",
            "Correlation heatmap",
            text=f"No latent variable's correlation with a measure over the {n} "
            "samples survives q <= 0.05 (Benjamini-Hochberg), so the heatmap would be all grey and is left out; "
            "the intervention slopes (Effects) are the stronger evidence. All r, p, q are in correlations.parquet.",
        )
        return
    keep = sig.assign(a=sig["r"].abs()).groupby("variable")["a"].max().sort_values(ascending=False)
    keep = keep.index[:HEAT_ROWS]
    figs.safe(
        sec,
        lambda: figures.correlation_heatmap(
            c[c["variable"].isin(keep)],
            title=f"r of the {len(keep)} latent variables with a significant correlation"
            f" (largest |r| first kept; grey: q > 0.05)",
        ),
        "Correlation heatmap",
    )


def _effects(study, sec: Section, figs: _Figs, max_measures: int) -> list[str]:
    from probe import figures

    if not study.has("effects"):
        sec.absent(*_missing(study, "effects"))
        return []
    e = study.table("effects")
    e = e.assign(abs_slope=e["slope"].abs()).sort_values(["q", "abs_slope"], ascending=[True, False])
    t = e[["method", "target", "measure", "slope", "slope_lo", "slope_hi", "r2", "p", "q", "n"]].rename(
        columns={"slope_lo": "CI lo (95%)", "slope_hi": "CI hi (95%)"}
    )
    _effect_heatmap(study, sec, figs, e)
    have = set(e["measure"])
    focus = [m for m in focus_measures(study) if m in have][:max_measures]
    for m in focus:
        figs.safe(
            sec,
            lambda m=m: figures.effects_forest(
                e, measure=m, top=20, title=f"{m}: slope of d_{m} ({_per_alpha(study, m)}), 95% CI, top 20 targets"
            ),
            f"Forest plot: {m}",
        )
    _table(
        sec,
        t,
        "Effects (OLS slope of d_measure on alpha; q: Benjamini-Hochberg over all rows)",
        source="effects.parquet",
    )
    return _diverse(e["target"].tolist(), e["method"].tolist())


def _effect_heatmap(study, sec: Section, figs: _Figs, e: pd.DataFrame) -> None:
    """Standardised slopes (slope / sd of the measure over the samples) of the HEAT_ROWS targets with the
    largest significant |standardised slope|, rows ordered by effect; raw slopes with units in the hover."""
    from probe import figures, stats

    try:
        se = stats.standardised_effects(study, e)
    except ProbeError as err:
        sec.add("text", "Standardised effects", text=f"standardised effects not available: {err}")
        return
    se = se[np.isfinite(se["std_slope"])]
    if se.empty:
        sec.add("text", "Standardised effects", text="no measure varies over the samples: nothing to standardise by")
        return
    sig = se[se["q"] <= 0.05]
    top = (sig if len(sig) else se).assign(a=lambda d: d["std_slope"].abs()).groupby("target")["a"].max()
    keep = top.sort_values(ascending=False).index[:HEAT_ROWS]
    n = se["target"].nunique()
    units = {m: f"{_unit(study, m)} per unit alpha".strip() for m in se["measure"].unique()}
    focus = focus_measures(study)
    rank = {m: i for i, m in enumerate(focus + [m for m in study.measures if m not in focus])}
    shown = se[se["target"].isin(keep)]
    shown = shown.iloc[np.argsort(shown["measure"].map(rank).fillna(len(rank)).to_numpy(), kind="stable")]
    figs.safe(
        sec,
        lambda: figures.correlation_heatmap(
            shown,
            value="std_slope",
            units="sd per unit alpha",
            raw="slope",
            raw_units=units,
            order="effect",
            title=f"standardised slope (measure sds per unit alpha) of the {len(keep)} of {n} targets "
            f"with the largest effects (grey: q > 0.05)",
        ),
        "Standardised effects",
    )


def _diverse(targets: list[str], methods: list[str]) -> list[str]:
    """Unique targets in the given order, but the first target of each method comes first (one per method)."""
    seen, first, rest = set(), [], []
    for t, m in zip(targets, methods):
        if t in seen:
            continue
        seen.add(t)
        (rest if m in {mm for _, mm in first} else first).append((t, m))
    return [t for t, _ in first + rest]


def _directions(study, sec: Section, figs: _Figs, q) -> None:
    from probe import figures

    if study.has("evaluation"):
        ev = study.table("evaluation")
        figs.safe(sec, lambda: figures.method_comparison(ev), "Specificity vs density drift")
        from probe.directions.evaluate import method_summary  # the one per-method summary (median specificity)

        by = ("method", "walk") if "walk" in ev.columns else ("method",)
        g = method_summary(ev, by=by).rename(columns={"specificity": "specificity (median)"})
        _table(sec, g, "Per method" + (" and walk" if "walk" in by else ""))
        _table(
            sec,
            ev[[c for c in schema.EVALUATION_COLUMNS if c in ev.columns]],
            "Per direction and measure",
            source="evaluation.parquet",
        )
    else:
        sec.absent(*_missing(study, "evaluation"), heading="Specificity per method")
    if q is None:
        sec.absent(*_missing(study, "interventions"), heading="Density drift per method")
        return
    top = max((abs(a) for a in q.alphas()), default=0.0)
    g = q.sql(
        "SELECT method, walk, count(DISTINCT target) AS targets, first(abs(alpha)) AS alpha_abs, "
        "avg(abs(dlogp)) AS dlogp_abs_mean, max(abs(dlogp)) AS dlogp_abs_max FROM {src} "
        "WHERE abs(alpha) = ? GROUP BY method, walk ORDER BY method, walk",
        [top],
    )
    g["targets"] = g["targets"].astype(np.int64)
    _table(sec, g, "Density drift per method and walk at the largest |alpha|")
    figs.safe(
        sec,
        lambda: figures.summary_curves(
            q.alpha_summary(["dlogp"], by=["method"]),
            "method",
            "dlogp of the walked latent vs alpha, per method",
            "dlogp",
        ),
        "Density drift per method",
    )


def _groundtruth(study, sec: Section, figs: _Figs) -> None:
    from probe import figures
    from probe.directions.groundtruth import GroundTruthScore

    gt = study.table("groundtruth")
    est = GroundTruthScore.from_table(gt)
    sec.intro = (
        "Which ground-truth factor each walked direction moves, and how purely (`probe gt-score`; "
        "definitions in the README section on sprites). Scores are in [0, 1] except covered (a count) and "
        "strength (factor stds per alpha unit)."
    )
    _table(
        sec,
        est.scores_.rename(columns={"mig": "MIG gap", "n_directions": "directions", "n_factors": "factors"}),
        "Scores per method",
    )
    figs.safe(sec, lambda: figures.groundtruth_heatmap(gt), "Importance per direction and factor")
    _table(
        sec,
        est.assignments_[["method", "target", "factor", "purity", "importance", "second", "second_share"]],
        "Top factor per direction",
        source="groundtruth.parquet",
    )


def _walks(
    study, sec: Section, figs: _Figs, q, order: list[str], n_walks: int, n_rows: int, max_measures: int, thumb: int
) -> None:
    from probe import figures
    from probe.restudy import rerender

    if q is None:
        sec.absent(*_missing(study, "interventions"))
        return
    names = study.target_names or q.targets()["target"].tolist()
    chosen = [t for t in order if t in names][:n_walks] or names[:n_walks]
    sec.intro = (
        f"{len(chosen)} of {len(names)} targets"
        + (" (most significant effect per method first)" if order else "")
        + f"; image rows are sample_ids 0..{n_rows - 1}."
    )
    alphas = study.alphas or q.alphas()
    ids = q.sample_ids(limit=n_rows).tolist()
    for t in chosen:
        try:
            img = rerender(study, ids, t, alphas)
        except ProbeError as e:
            sec.add("text", f"Walk strip: {t}", text=f"images not rendered: {e}")
            continue
        img = _thumbs(img, thumb)
        figs.block(
            sec,
            figures.image_strip(
                img, alphas, sample_ids=ids, title=f"walk {t}", scale=_fit_scale(img.shape[-1], len(alphas), 120)
            ),
            f"Walk strip: {t}",
        )
    ms = [f"d_{m}" for m in focus_measures(study) if f"d_{m}" in q.columns][:max_measures]
    from probe.query import study_alpha_summary

    full = study_alpha_summary(study, write=True)  # alpha_summary.parquet when fresh, else one scan (stored)
    s = full[full["value"].isin([*ms, "dlogp"]) & full["target"].isin(chosen)].reset_index(drop=True)
    for c in [*ms, "dlogp"]:
        figs.safe(
            sec,
            lambda c=c: figures.summary_curves(s[s["value"] == c], "target", f"{c} vs alpha (mean, 95% CI)", c),
            f"Curves: {c}",
        )


def _embedding(study, sec: Section, figs: _Figs, order: list[str], n_walks: int) -> None:
    from probe import figures

    if not study.has("embedding"):
        sec.absent(*_missing(study, "embedding"))
        return
    emb = study.table("embedding")
    walked = list(dict.fromkeys(emb.loc[emb["kind"] != "sample", "target"]))
    keep = ([t for t in order if t in walked] or walked)[:n_walks]
    if walked:
        sec.intro = (
            f"Walk trajectories of {len(keep)} of {len(walked)} targets"
            + (" (most significant effect per method first)" if order else "")
            + "; all of them are in embedding.parquet."
        )
    emb = emb[(emb["kind"] == "sample") | emb["target"].isin(keep)]
    samples = study.table("samples") if study.has("samples") else None
    color = next((m for m in study.measures if samples is not None and m in samples.columns), None)
    figs.safe(sec, lambda: figures.embedding_scatter(emb, color=color, samples=samples, walks=True))


def _edits(study, sec: Section, thumb: int) -> None:
    from reports.drag import edit_blocks

    edit_blocks(study, sec, thumb)


# ---- public --------------------------------------------------------------------------------------------
def report_context(
    study,
    cdn: bool = False,
    n_grid: int = 24,
    n_walks: int = 4,
    n_rows: int = 3,
    max_measures: int = 8,
    thumb: int = 96,
) -> dict:
    """Everything the template needs: sections with blocks (figures as escaped JSON), names, plotly.js."""
    import plotly
    import plotly.offline

    from probe import __version__
    from probe.store import Study

    study = study if isinstance(study, Study) else Study(study)
    secs = {k: Section(k, t) for k, t in SECTIONS}
    figs = _Figs()
    from probe.query import Query

    inter = Query(study) if study.has("interventions") else None
    _spec(study, secs["spec"])
    _samples(study, secs["samples"], figs, n_grid, thumb)
    _correlations(study, secs["correlations"], figs)
    order = _effects(study, secs["effects"], figs, max_measures)
    _directions(study, secs["directions"], figs, inter)
    if study.has("groundtruth"):
        _groundtruth(study, secs["groundtruth"], figs)
    _walks(study, secs["walks"], figs, inter, order, n_walks, n_rows, max_measures, thumb)
    _embedding(study, secs["embedding"], figs, order or study.target_names, n_walks)
    _edits(study, secs["edits"], thumb)
    _findings(study, secs["findings"], {k: v.present for k, v in secs.items()})
    js = None if cdn else plotly.offline.get_plotlyjs().replace("</script", "<\\/script")
    return {
        "study_name": study.name,
        "study_path": str(study.path),
        "version": __version__,
        "built": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "sections": [v for k, v in secs.items() if k not in OPTIONAL or v.blocks],
        "plotly_inline": js,
        "plotly_cdn": CDN_URL.format(version=plotly.offline.get_plotlyjs_version()),
        "n_figures": figs.n,
        "plotly_py": plotly.__version__,
    }


def render_html(context: dict) -> str:
    """Render the Jinja2 template (autoescape on) with a report_context()."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
    )
    return env.get_template("report.html").render(**context)


def build_report(study, out_path: str | os.PathLike, cdn: bool = False, **kw) -> Path:
    """Write the report of `study` (Study or directory) to out_path, atomically; returns the path.

    cdn=True loads plotly.js from the CDN (small file, needs a network); otherwise it is inlined once.
    kw: n_grid (24 samples), n_walks (4 targets), n_rows (3 samples per strip), max_measures (8), thumb (96 px).
    """
    from probe.io import atomic_write_bytes

    out = Path(out_path)
    if out.is_dir():
        raise ReportError(f"-o {str(out)!r} is a directory; name the report file, e.g. {out / 'report.html'}")
    if out.suffix.lower() not in (".html", ".htm"):
        raise ReportError(f"-o {str(out)!r}: the report is one HTML file; name it with .html, e.g. report.html")
    html = render_html(report_context(study, cdn=cdn, **kw))
    return atomic_write_bytes(out, html.encode("utf-8"))


def timed_build(study, out_path, cdn: bool = False) -> dict:
    """build_report plus its wall time (s) and size (bytes), for the benchmark and the CLI."""
    t0 = time.perf_counter()
    p = build_report(study, out_path, cdn=cdn)
    return {"path": str(p), "seconds": time.perf_counter() - t0, "bytes": p.stat().st_size}
