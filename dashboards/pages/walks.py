"""Walks: a target (any method, any walk: linear, isodensity, InterFaceGAN distance, ...) -> measure curves vs alpha
with CIs (one y-axis per unit, or standardised), density curve, image strip; compare targets; evaluation table."""

from __future__ import annotations

from dash import Input, Output, dcc, html

from probe import figures as F
from probe.errors import ProbeError
from probe.measures import measure_kinds
from probe.stats import measure_scales

from ._util import field, fitted_graph, graph, missing, table

KEY, PATH, NAME = "walks", "/walks", "Walks"
STRIP_SAMPLES = 4
PLAIN_WALKS = ("linear", "variable", "channel")  # walks whose label is just the target kind
SCALES = {"units": "measure units (one axis per unit)", "std": "standardised (measure sds)"}


def _label(target: str, kind: str, walk: str | None) -> str:
    """Dropdown label of a target: its kind, and its walk where that is not the kind's plain one."""
    w = str(walk or "")
    return f"{target} ({kind})" if not w or w in PLAIN_WALKS else f"{target} ({kind}, {w} walk)"


def _targets(ctx) -> list[dict]:
    d = ctx.iv_targets()
    order = {"direction": 0, "channel": 1, "variable": 2}
    d = d.assign(o=d["target_kind"].map(order).fillna(3)).sort_values(["o", "target"], kind="stable")
    d = d.drop_duplicates("target")
    return [{"label": _label(t, k, w), "value": t} for t, k, w in zip(d["target"], d["target_kind"], d["walk"])]


def _walk_of(ctx, target: str) -> str:
    d = ctx.iv_targets()
    w = d.loc[d["target"] == target, "walk"]
    return str(w.iloc[0]) if len(w) else ""


def _xtitle(walk: str) -> str:
    return "alpha (signed distance to the boundary)" if walk == "distance" else "alpha"


def _units(ctx) -> dict[str, str]:
    return {m: str(i.get("unit", "") or "") for m, i in ctx.study.measure_info.items()}


def _scales(ctx) -> dict[str, float]:
    return ctx.memo(
        ("wk-scales",),
        lambda: measure_scales(ctx.table("samples"), ctx.study.measures, measure_kinds(ctx.study.measure_info)),
        "samples.parquet",
        "manifest.json",
    )


def layout(ctx):
    if not ctx.has("interventions"):
        return html.Div([html.H2("Walks"), missing(ctx, "interventions", id="wk-missing")])
    opts = _targets(ctx)
    ms = ctx.study.measures
    dirs = [o["value"] for o in opts if "/" in o["value"]]
    return html.Div(
        [
            html.H2("Walks"),
            html.Div(
                [
                    field(
                        "target",
                        dcc.Dropdown(
                            id="wk-target",
                            options=opts,
                            value=opts[0]["value"],
                            clearable=False,
                            style={"width": "320px"},
                        ),
                    ),
                    field(
                        "measures",
                        dcc.Dropdown(id="wk-measures", options=ms, value=ms[:2], multi=True, style={"width": "360px"}),
                    ),
                ],
                className="controls",
            ),
            html.Div(
                [
                    field(
                        "y",
                        dcc.RadioItems(
                            id="wk-scale",
                            value="units",
                            inline=True,
                            options=[{"label": lab, "value": v} for v, lab in SCALES.items()],
                        ),
                    ),
                    field(
                        "density",
                        dcc.RadioItems(
                            id="wk-density",
                            value="dlogp",
                            inline=True,
                            options=[{"label": v, "value": v} for v in ("dlogp", "logp", "norm")],
                        ),
                    ),
                ],
                className="controls",
            ),
            html.Div(id="wk-msg"),
            html.Div(
                [html.Div(id="wk-curves-box", className="col"), html.Div(id="wk-density-box", className="col")],
                className="row",
            ),
            html.Div(id="wk-strip-box"),
            html.H3("Compare targets"),
            html.Div(
                [
                    field(
                        "targets",
                        dcc.Dropdown(
                            id="wk-compare",
                            options=opts,
                            value=dirs[:4] or [opts[0]["value"]],
                            multi=True,
                            style={"width": "520px"},
                        ),
                    ),
                    field(
                        "measure",
                        dcc.Dropdown(
                            id="wk-cmp-measure", options=ms, value=ms[0], clearable=False, style={"width": "200px"}
                        ),
                    ),
                ],
                className="controls",
            ),
            html.Div(
                [html.Div(id="wk-compare-box", className="col"), html.Div(id="wk-eval-box", className="col")],
                className="row",
            ),
            *_evaluation(ctx),
            *_groundtruth(ctx),
        ]
    )


def _evaluation(ctx) -> list:
    """Every direction's evaluation (slope, specificity, density drift per measure): sortable, exportable."""
    if not ctx.has("evaluation"):
        return []
    ev = ctx.table("evaluation")
    return [
        html.H3("Evaluation of every direction"),
        table(
            ev,
            "wk-eval-table",
            csv="evaluation.csv",
            headers={"dlogp_abs_mean": "mean |dlogp|", "dlogp_abs_max": "max |dlogp|"},
            units={"slope": "measure units / alpha"},
        ),
    ]


def _groundtruth(ctx) -> list:
    """Ground-truth scores (studies made by `probe gt-score`): per-method scores and the importance heatmap."""
    if not ctx.has("groundtruth"):
        return []
    from probe.directions.groundtruth import GroundTruthScore

    gt = ctx.table("groundtruth")
    sc = GroundTruthScore.from_table(gt).scores_.rename(columns={"mig": "MIG gap"})
    return [
        html.H3("Ground-truth scores"),
        html.P("Which known factor each direction moves, and how purely (probe gt-score).", className="probe-note"),
        table(sc.drop(columns=["n_factors"]), id="wk-gt-scores", csv="groundtruth-scores.csv"),
        graph("wk-gt-heatmap", F.groundtruth_heatmap(gt)),
    ]


def register(app, ctx):
    @app.callback(
        Output("wk-curves-box", "children"),
        Output("wk-density-box", "children"),
        Output("wk-strip-box", "children"),
        Input("wk-target", "value"),
        Input("wk-measures", "value"),
        Input("wk-density", "value"),
        Input("wk-scale", "value"),
    )
    @ctx.guard(3)
    def one(target, measures, dens, scale):
        if not measures:
            raise ProbeError("measures: pick at least one measure to plot")
        if scale not in SCALES:
            raise ProbeError(f"y {scale!r}: pick one of {', '.join(SCALES)}")
        dens = dens or "dlogp"
        cols = [f"d_{m}" for m in measures]
        s = ctx.iv_summary(tuple(cols), by=(), targets=[target])
        if s.empty:
            raise ProbeError(f"target {target!r} has no rows in the interventions table; pick another")
        s = s.assign(measure=s["value"].str.slice(2))
        walk = _walk_of(ctx, target)
        if scale == "std":
            sc = _scales(ctx)
            f = s["measure"].map(sc).astype(float)
            s = s.assign(mean=s["mean"] / f, lo=s["lo"] / f, hi=s["hi"] / f)
            units = {m: "measure sds" for m in measures}
            title = f"{target}: standardised change of measure vs alpha (95% CI)"
        else:
            units = {m: _units(ctx).get(m, "") for m in measures}
            title = f"{target}: change of measure vs alpha (95% CI)"
        curves = F.unit_curves(s, units, title, keys=list(measures), xtitle=_xtitle(walk))
        density = F.summary_curves(
            ctx.iv_summary((dens,), targets=[target]), "target", f"{target}: {dens} vs alpha (95% CI)", dens
        )
        density.update_xaxes(title_text=_xtitle(walk))
        alphas = sorted(s["alpha"].unique().tolist())
        ids = list(range(min(STRIP_SAMPLES, len(ctx.latents()))))
        strip = F.image_strip(ctx.render(ids, target, alphas), alphas, sample_ids=ids, title=f"{target}")
        return graph("wk-curves", curves), graph("wk-dens", density), fitted_graph("wk-strip", strip)

    @app.callback(
        Output("wk-compare-box", "children"),
        Output("wk-eval-box", "children"),
        Input("wk-compare", "value"),
        Input("wk-cmp-measure", "value"),
    )
    @ctx.guard(2)
    def compare(targets, measure):
        if not targets:
            raise ProbeError("targets: pick one or more targets to compare")
        return ctx.memo(
            ("wk-compare", tuple(map(str, targets)), str(measure)),
            lambda: _compare(targets, measure),
            "interventions.parquet",
            "evaluation.parquet",
            "manifest.json",
        )

    def _compare(targets, measure):
        unit = _units(ctx).get(measure, "")
        fig = F.summary_curves_dict(
            ctx.iv_summary((f"d_{measure}",), targets=targets),
            "target",
            f"d_{measure} vs alpha per target (95% CI)",
            f"d_{measure} ({unit})" if unit else f"d_{measure}",
        )
        ev = missing(ctx, "evaluation") or graph("wk-eval", F.method_comparison(ctx.table("evaluation"), measure))
        return graph("wk-cmp", fig), ev
