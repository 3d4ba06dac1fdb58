"""Walks: a direction (any method) -> measure curves vs alpha with CIs, density curve, image strips; compare."""
from __future__ import annotations

from dash import Input, Output, dcc, html

from probe import figures as F
from probe.errors import ProbeError

from ._util import field, graph, missing, table

KEY, PATH, NAME = "walks", "/walks", "Walks"
STRIP_SAMPLES = 4


def _targets(ctx) -> list[dict]:
    d = ctx.iv_targets()
    order = {"direction": 0, "channel": 1, "variable": 2}
    d = d.assign(o=d["target_kind"].map(order)).sort_values(["o", "target"], kind="stable")
    return [{"label": f"{t} ({k})", "value": t} for t, k in zip(d["target"], d["target_kind"])]


def layout(ctx):
    if not ctx.has("interventions"):
        return html.Div([html.H2("Walks"), missing(ctx, "interventions", id="wk-missing")])
    opts = _targets(ctx)
    ms = ctx.study.measures
    dirs = [o["value"] for o in opts if "/" in o["value"]]
    return html.Div([
        html.H2("Walks"),
        html.Div([field("target", dcc.Dropdown(id="wk-target", options=opts, value=opts[0]["value"],
                                               clearable=False, style={"width": "280px"})),
                  field("measures", dcc.Dropdown(id="wk-measures", options=ms, value=ms[:2], multi=True,
                                                 style={"width": "360px"})),
                  field("density", dcc.RadioItems(id="wk-density", value="dlogp", inline=True, options=[
                      {"label": v, "value": v} for v in ("dlogp", "logp", "norm")]))], className="controls"),
        html.Div([html.Div(id="wk-curves-box", className="col"), html.Div(id="wk-density-box", className="col")],
                 className="row"),
        html.Div(id="wk-strip-box"),
        html.H3("Compare methods"),
        html.Div([field("targets", dcc.Dropdown(id="wk-compare", options=opts, value=dirs[:4] or [opts[0]["value"]],
                                                multi=True, style={"width": "520px"})),
                  field("measure", dcc.Dropdown(id="wk-cmp-measure", options=ms, value=ms[0], clearable=False,
                                                style={"width": "200px"}))], className="controls"),
        html.Div([html.Div(id="wk-compare-box", className="col"), html.Div(id="wk-eval-box", className="col")],
                 className="row"),
        *_groundtruth(ctx),
    ])


def _groundtruth(ctx) -> list:
    """Ground-truth scores (studies made by `probe gt-score`): per-method scores and the importance heatmap."""
    if not ctx.has("groundtruth"):
        return []
    from probe.directions.groundtruth import GroundTruthScore
    gt = ctx.table("groundtruth")
    sc = GroundTruthScore.from_table(gt).scores_.rename(columns={"mig": "MIG gap"})
    return [html.H3("Ground-truth scores"),
            html.P("Which known factor each direction moves, and how purely (probe gt-score).", className="probe-note"),
            table(sc.drop(columns=["n_factors"]), id="wk-gt-scores"),
            graph("wk-gt-heatmap", F.groundtruth_heatmap(gt))]


def register(app, ctx):
    @app.callback(Output("wk-curves-box", "children"), Output("wk-density-box", "children"),
                  Output("wk-strip-box", "children"), Input("wk-target", "value"), Input("wk-measures", "value"),
                  Input("wk-density", "value"))
    @ctx.guard(3)
    def one(target, measures, dens):
        if not measures:
            raise ProbeError("measures: pick at least one measure to plot")
        dens = dens or "dlogp"
        cols = [f"d_{m}" for m in measures]
        s = ctx.iv_summary(tuple(cols), by=(), targets=[target])
        if s.empty:
            raise ProbeError(f"target {target!r} has no rows in the interventions table; pick another")
        curves = F.summary_curves(s.rename(columns={"value": "measure"}), "measure",
                                  f"{target}: change of measure vs alpha (95% CI)",
                                  cols[0] if len(cols) == 1 else "change of measure", keys=cols)
        density = F.summary_curves(ctx.iv_summary((dens,), targets=[target]), "target",
                                   f"{target}: {dens} vs alpha (95% CI)", dens)
        alphas = sorted(s["alpha"].unique().tolist())
        ids = list(range(min(STRIP_SAMPLES, len(ctx.latents()))))
        strip = F.image_strip(ctx.render(ids, target, alphas), alphas, sample_ids=ids, title=f"{target}")
        return graph("wk-curves", curves), graph("wk-dens", density), graph("wk-strip", strip)

    @app.callback(Output("wk-compare-box", "children"), Output("wk-eval-box", "children"),
                  Input("wk-compare", "value"), Input("wk-cmp-measure", "value"))
    @ctx.guard(2)
    def compare(targets, measure):
        if not targets:
            raise ProbeError("targets: pick one or more targets to compare")
        return ctx.memo(("wk-compare", tuple(map(str, targets)), str(measure)), lambda: _compare(targets, measure),
                        "interventions.parquet", "evaluation.parquet", "manifest.json")

    def _compare(targets, measure):
        fig = F.summary_curves(ctx.iv_summary((f"d_{measure}",), targets=targets), "target",
                               f"d_{measure} vs alpha per target (95% CI)", f"d_{measure}")
        ev = missing(ctx, "evaluation") or graph("wk-eval", F.method_comparison(ctx.table("evaluation"), measure))
        return graph("wk-cmp", fig), ev
