"""Correlations: latent-variable x measure heatmap (r or slope, q filter); click a cell -> scatter + image strip."""
from __future__ import annotations

import re

import numpy as np
from dash import Input, Output, State, dcc, html

from probe import figures as F
from probe.errors import ProbeError
from probe.walks import variable

from ._util import field, graph, missing, table

KEY, PATH, NAME = "correlations", "/correlations", "Correlations"
STRIP_SAMPLES = 3


def _default_view(ctx, have: list[str]) -> str:
    """Slopes of per-variable interventions when the study has them (far more power than r over samples)."""
    if "effects" in have and (ctx.table("effects")["method"] == "variable").any():
        return "effects"
    return have[0]


def layout(ctx):
    have = [t for t in ("correlations", "effects") if ctx.has(t)]
    if not have:
        return html.Div([html.H2("Correlations"), missing(ctx, "correlations", id="co-missing")])
    measures = ctx.study.measures
    return html.Div([
        html.H2("Correlations"),
        html.Div([
            field("value", dcc.RadioItems(id="co-value", inline=True, value=_default_view(ctx, have), options=[
                {"label": "r (latent variable vs measure, over samples)", "value": "correlations",
                 "disabled": "correlations" not in have},
                {"label": "slope (d_measure per unit alpha, interventions)", "value": "effects",
                 "disabled": "effects" not in have}])),
            field("q <=", dcc.Input(id="co-q", type="number", value=0.05, min=0, max=1, step=0.01,
                                    debounce=True, style={"width": "80px"})),
            dcc.Checklist(id="co-sig", options=[{"label": "only rows with a cell at q <= threshold", "value": "sig"}],
                          value=[]),
        ], className="controls"),
        html.Div(id="co-heat-box"),
        html.Div([html.Div(id="co-scatter-box", className="col"), html.Div(id="co-strip-box", className="col")],
                 className="row"),
        html.H3("Controlling variables per measure"),
        missing(ctx, "controlling") or html.Div([
            html.Div(field("measure", dcc.Dropdown(id="co-measure", options=measures, value=measures[0],
                                                   clearable=False, style={"width": "220px"})),
                     className="controls"),
            html.Div(id="co-controlling")]),
    ])


def _table(ctx, which: str):
    df = ctx.table(which)
    return df, ("r" if which == "correlations" else "slope")


def register(app, ctx):
    @app.callback(Output("co-heat-box", "children"), Input("co-value", "value"), Input("co-q", "value"),
                  Input("co-sig", "value"))
    @ctx.guard()
    def heat(which, q, sig):
        if q is None or not 0 <= float(q) <= 1:
            raise ProbeError("q threshold must be a number in [0, 1]; type e.g. 0.05")
        if which not in ("correlations", "effects"):
            raise ProbeError(f"value {which!r}: pick r (correlations) or slope (effects)")
        return ctx.memo(("co-heat", which, float(q), bool(sig)), lambda: _heat(ctx, which, float(q), sig),
                        f"{which}.parquet")

    def _heat(ctx, which, q, sig):
        df, value = _table(ctx, which)
        row = "variable" if "variable" in df.columns else "target"
        if sig:
            keep = df.loc[df["q"] <= float(q), row].unique()
            if len(keep) == 0:
                return html.Div(f"no {row} has a cell with q <= {float(q):g}; raise the threshold", id="co-empty",
                                className="probe-note")
            df = df[df[row].isin(keep)]
        fig = F.correlation_heatmap(df, value=value, q_max=float(q))
        return graph("co-heat", fig)

    @app.callback(Output("co-scatter-box", "children"), Output("co-strip-box", "children"),
                  Input("co-heat", "clickData"), State("co-value", "value"), prevent_initial_call=True)
    @ctx.guard(2)
    def cell(click, which):
        p = click["points"][0]
        name, measure = str(p["y"]), str(p["x"])
        ids = list(range(min(STRIP_SAMPLES, len(ctx.latents()))))
        alphas = ctx.alphas()
        m = re.fullmatch(r"(z|w|ws)\[(\d+)\]", name)
        if m:  # scatter of the variable's value vs the measure over the base samples
            i = int(m[2])
            x = ctx.latents().reshape(len(ctx.latents()), -1)[:, i]
            y = ctx.table("samples").sort_values("sample_id")[measure].to_numpy()
            fig = F.variable_scatter(x, y, name, measure, sample_ids=np.arange(len(x)))
            target = name if name in ctx.study.target_names else variable(i, ctx.study.space)
        else:  # a direction / channel target: measure curve from the interventions table
            fig = F.summary_curves(ctx.iv_summary((f"d_{measure}",), targets=[name]), "target",
                                   f"d_{measure} vs alpha (mean, 95% CI)", f"d_{measure}")
            target = name
        imgs = ctx.render(ids, target, alphas)
        strip = F.image_strip(imgs, alphas, sample_ids=ids, title=f"{name}: intervention strip")
        head = html.Div(f"{name} x {measure}", id="co-cell")
        return html.Div([head, graph("co-scatter", fig)]), graph("co-strip", strip)

    @app.callback(Output("co-controlling", "children"), Input("co-measure", "value"))
    @ctx.guard()
    def controlling(measure):
        return ctx.memo(("co-controlling", str(measure)), lambda: _controlling(measure), "controlling.parquet")

    def _controlling(measure):
        d = ctx.table("controlling")
        d = d[d["measure"] == measure].sort_values("rank")
        if d.empty:
            return html.Div(f"no controlling variable for {measure} passes the q threshold", className="probe-note",
                            id="co-ctl-empty")
        return table(d, "co-ctl-table")
