"""Correlations: target x measure heatmap (standardised slope, raw slope or r; q filter, row order); click a cell ->
its curve or scatter and image strip beside the heatmap; controlling variables and every effect as tables."""

from __future__ import annotations

import re

import dash
import numpy as np
from dash import Input, Output, State, dcc, html

from probe import figures as F
from probe.errors import ProbeError
from probe.stats import standardised_effects
from probe.walks import variable

from ._util import click_point, field, fitted_graph, graph, missing, sci, table

KEY, PATH, NAME = "correlations", "/correlations", "Correlations"
STRIP_SAMPLES = 3
HEAT_ROWS = 30  # rows in view; more scroll inside the heatmap
Q_MIN = 1e-12
VIEWS = {
    "std": "standardised slope (measure sds per unit alpha)",
    "slope": "slope (measure units per unit alpha)",
    "r": "r (latent variable vs measure, over samples)",
}
ORDERS = {"effect": "largest effect first", "cluster": "clustered", "name": "by name"}


class QError(ProbeError):
    """The q threshold typed is not a number in [1e-12, 1]."""


def parse_q(text) -> float:
    """The q box's text -> a threshold in [1e-12, 1] (plain or scientific notation: 0.05, 1e-6, 3.9E-06)."""
    try:
        q = float(str(text).strip())
    except (TypeError, ValueError):
        raise QError(f"q threshold {text!r} is not a number; type one from 1e-12 to 1, e.g. 0.05 or 1e-6") from None
    if not Q_MIN <= q <= 1:
        raise QError(f"q threshold {q:g} lies outside [1e-12, 1]; type e.g. 0.05 or 1e-6")
    return q


def parse_min(text) -> float:
    """The |effect| box's text -> a threshold >= 0 (standardised slope in sd / alpha, or |r|)."""
    try:
        v = float(str(text).strip())
    except (TypeError, ValueError):
        raise QError(f"|effect| threshold {text!r} is not a number; type one >= 0, e.g. 0.1") from None
    if not np.isfinite(v) or v < 0:
        raise QError(f"|effect| threshold {v:g} must be a finite number >= 0; type e.g. 0.1")
    return v


def _units(ctx) -> dict[str, str]:
    return {m: str(i.get("unit", "") or "") for m, i in ctx.study.measure_info.items()}


def _per_alpha(ctx) -> dict[str, str]:
    return {m: (f"{u} / alpha" if u else "per alpha") for m, u in _units(ctx).items()}


def _default_view(ctx, have: list[str]) -> str:
    """Standardised slopes when the study has interventions (far more power than r over samples)."""
    return "std" if "effects" in have else "r"


def layout(ctx):
    have = [t for t in ("correlations", "effects") if ctx.has(t)]
    if not have:
        return html.Div([html.H2("Correlations"), missing(ctx, "correlations", id="co-missing")])
    measures = ctx.study.measures
    need = {"std": "effects", "slope": "effects", "r": "correlations"}
    return html.Div(
        [
            html.H2("Correlations"),
            html.Div(
                [
                    field(
                        "value",
                        dcc.RadioItems(
                            id="co-value",
                            inline=True,
                            value=_default_view(ctx, have),
                            options=[
                                {"label": lab, "value": v, "disabled": need[v] not in have} for v, lab in VIEWS.items()
                            ],
                        ),
                    ),
                ],
                className="controls",
            ),
            html.Div(
                [
                    field(
                        "rows",
                        dcc.RadioItems(
                            id="co-order",
                            inline=True,
                            value="effect",
                            options=[{"label": lab, "value": v} for v, lab in ORDERS.items()],
                        ),
                    ),
                    field(
                        "q <=",
                        dcc.Input(
                            id="co-q",
                            type="text",
                            value="0.05",
                            debounce=True,
                            inputMode="decimal",
                            style={"width": "90px"},
                            placeholder="0.05 or 1e-6",
                        ),
                    ),
                    dcc.Checklist(
                        id="co-sig",
                        value=[],
                        options=[{"label": "only rows with a cell at q <= threshold and |effect| >=", "value": "sig"}],
                    ),
                    dcc.Input(
                        id="co-min",
                        type="text",
                        value="0",
                        debounce=True,
                        inputMode="decimal",
                        style={"width": "70px"},
                        placeholder="0.1",
                    ),
                    html.Span("sd / alpha (r in the r view)", className="probe-count"),
                ],
                className="controls",
            ),
            html.Div(id="co-heat-msg"),
            html.Div(
                [
                    html.Div(
                        dcc.Graph(id="co-heat", figure={"data": [], "layout": {}}, config={"displaylogo": False}),
                        className="col co-heat-col",
                    ),
                    html.Div(
                        [
                            html.Div(
                                "Click a cell for its curve and image strip.", id="co-cell", className="probe-note"
                            ),
                            html.Div(id="co-scatter-box"),
                            html.Div(id="co-strip-box"),
                        ],
                        className="col co-detail",
                    ),
                ],
                className="row",
            ),
            html.H3("Controlling variables per measure"),
            missing(ctx, "controlling")
            or html.Div(
                [
                    html.Div(
                        field(
                            "measure",
                            dcc.Dropdown(
                                id="co-measure",
                                options=measures,
                                value=measures[0],
                                clearable=False,
                                style={"width": "220px"},
                            ),
                        ),
                        className="controls",
                    ),
                    html.Div(id="co-controlling"),
                ]
            ),
            *_effects_table(ctx),
        ]
    )


def _std_effects(ctx):
    return ctx.memo(
        ("co-std-effects",),
        lambda: standardised_effects(ctx.study, ctx.table("effects")),
        "effects.parquet",
        "samples.parquet",
        "manifest.json",
    )


def _effects_table(ctx) -> list:
    """Every effect (slope with its CI, standardised slope, p, q) as one sortable, filterable, exportable table."""
    if not ctx.has("effects"):
        return []
    d = _std_effects(ctx)
    u = _per_alpha(ctx)
    d = d.assign(unit=d["measure"].map(u))
    cols = ["method", "target", "measure", "std_slope", "slope", "unit", "slope_lo", "slope_hi", "r2", "p", "q", "n"]
    return [
        html.H3("All effects"),
        table(
            d[[c for c in cols if c in d.columns]],
            "co-effects",
            csv="effects.csv",
            headers={"std_slope": "standardised slope", "slope_lo": "slope 95% low", "slope_hi": "slope 95% high"},
            units={"std_slope": "sd / alpha"},
        ),
    ]


def _cell_text(ctx, which: str, name: str, measure: str) -> str:
    """One line on the clicked cell: its value with units, p and q in scientific notation."""
    if which == "r":
        d = ctx.table("correlations")
        r = d[(d["variable"] == name) & (d["measure"] == measure)]
        if r.empty:
            return f"{name} x {measure}"
        r = r.iloc[0]
        return f"{name} x {measure}: r = {r['r']:.3g}, p = {sci(r['p'])}, q = {sci(r['q'])} (n = {int(r['n'])})"
    d = _std_effects(ctx)
    r = d[(d["target"] == name) & (d["measure"] == measure)]
    if r.empty:
        return f"{name} x {measure}"
    r = r.iloc[0]
    return (
        f"{name} x {measure}: slope = {r['slope']:.3g} {_per_alpha(ctx).get(measure, '')} "
        f"({r['std_slope']:.3g} sd / alpha), p = {sci(r['p'])}, q = {sci(r['q'])}"
    )


def register(app, ctx):
    @app.callback(
        Output("co-heat", "figure"),
        Output("co-heat-msg", "children"),
        Input("co-value", "value"),
        Input("co-q", "value"),
        Input("co-sig", "value"),
        Input("co-order", "value"),
        Input("co-min", "value"),
    )
    @ctx.guard(2, err_index=1)
    def heat(which, q_text, sig, order, min_text):
        q, lo = parse_q(q_text), parse_min(min_text)
        if which not in VIEWS:
            raise ProbeError(f"value {which!r}: pick one of {', '.join(VIEWS)}")
        if order not in ORDERS:
            raise ProbeError(f"rows {order!r}: pick one of {', '.join(ORDERS)}")
        table_name = "correlations" if which == "r" else "effects"
        return ctx.memo(
            ("co-heat", which, q, bool(sig), order, lo),
            lambda: _heat(which, q, bool(sig), order, lo),
            f"{table_name}.parquet",
            "samples.parquet",
            "manifest.json",
        )

    def _heat(which, q, sig, order, lo):
        df = ctx.table("correlations") if which == "r" else _std_effects(ctx)
        row = "variable" if which == "r" else "target"
        n_all = df[row].nunique()
        note = None
        if sig:  # a cell counts when significant and at least `lo` large (standardised, comparable across units)
            size = df["r"] if which == "r" else df["std_slope"]
            keep = df.loc[(df["q"] <= q) & (size.abs() >= lo), row].unique()
            if len(keep) == 0:
                return (
                    {"data": [], "layout": {"height": 120}},
                    html.Div(
                        f"no {row} has a cell with q <= {q:g} and |effect| >= {lo:g}; relax a threshold",
                        id="co-empty",
                        className="probe-note",
                    ),
                )
            df = df[df[row].isin(keep)]
        n = df[row].nunique()
        kw = dict(q_max=q, order=order, max_rows=HEAT_ROWS, insignificant="faded")
        if which == "std":
            fig = F.correlation_heatmap_dict(
                df,
                "std_slope",
                units="sd / alpha",
                raw="slope",
                raw_units=_per_alpha(ctx),
                title=f"standardised slope per target and measure (faded: q > {q:g})",
                **kw,
            )
        elif which == "slope":
            fig = F.correlation_heatmap_dict(
                df,
                "slope",
                units=_per_alpha(ctx),
                colour="measure",
                title=f"slope per target and measure, each measure on its own colour scale (faded: q > {q:g})",
                **kw,
            )
        else:
            fig = F.correlation_heatmap_dict(
                df, "r", title=f"r per variable and measure over samples (faded: q > {q:g})", **kw
            )
        fig["layout"]["clickmode"] = "event"
        n_sig = fig["layout"]["meta"]["n_sig"]
        parts = [
            f"{n} of {n_all} {row}s"
            + (f" (only those with a cell at q <= {q:g} and |effect| >= {lo:g})" if sig else ""),
            f"{n_sig} cells at q <= {q:g}",
        ]
        if n > HEAT_ROWS:
            parts.append(f"rows 1-{HEAT_ROWS} in view: drag the heatmap up or down for the rest")
        if n_sig == 0:
            parts.append("no cell passes the threshold: colours are faded values")
        note = html.Div("; ".join(parts), id="co-heat-count", className="probe-count")
        return fig, note

    @app.callback(
        Output("co-cell", "children"),
        Output("co-scatter-box", "children"),
        Output("co-strip-box", "children"),
        Input("co-heat", "clickData"),
        State("co-value", "value"),
        prevent_initial_call=True,
    )
    @ctx.guard(3)
    def cell(click, which):
        p = click_point(click)
        name, measure = str(p["y"]), str(p["x"])
        if measure not in ctx.study.measures:
            return dash.no_update, dash.no_update, dash.no_update
        ids = list(range(min(STRIP_SAMPLES, len(ctx.latents()))))
        alphas = ctx.alphas()
        unit = _units(ctx).get(measure, "")
        m = re.fullmatch(r"(z|w|ws)\[(\d+)\]", name)
        if which == "r" and m:  # scatter of the variable's value vs the measure over the base samples
            i = int(m[2])
            x = ctx.latents().reshape(len(ctx.latents()), -1)[:, i]
            y = ctx.table("samples").sort_values("sample_id")[measure].to_numpy()
            fig = F.variable_scatter(x, y, name, measure, sample_ids=np.arange(len(x)))
            if unit:
                fig.update_yaxes(title_text=f"{measure} ({unit})")
            target = name if name in ctx.study.target_names else variable(i, ctx.study.space)
        else:  # a target of the interventions: the measure's change vs alpha
            fig = F.summary_curves(
                ctx.iv_summary((f"d_{measure}",), targets=[name]),
                "target",
                f"d_{measure} vs alpha (mean, 95% CI)",
                f"d_{measure} ({unit})" if unit else f"d_{measure}",
            )
            target = name
        fig.update_layout(height=320, margin=dict(l=60, r=20, t=50, b=50), showlegend=False)
        imgs = ctx.render(ids, target, alphas)
        strip = F.image_strip(imgs, alphas, sample_ids=ids, title=f"{name}: intervention strip")
        return (
            html.Div(_cell_text(ctx, which, name, measure), id="co-cell-text"),
            graph("co-scatter", fig),
            fitted_graph("co-strip", strip),
        )

    @app.callback(Output("co-controlling", "children"), Input("co-measure", "value"))
    @ctx.guard()
    def controlling(measure):
        return ctx.memo(
            ("co-controlling", str(measure)), lambda: _controlling(measure), "controlling.parquet", "manifest.json"
        )

    def _controlling(measure):
        d = ctx.table("controlling")
        d = d[d["measure"] == measure].sort_values("rank")
        if d.empty:
            return html.Div(
                f"no controlling variable for {measure} passes the q threshold",
                className="probe-note",
                id="co-ctl-empty",
            )
        unit = _per_alpha(ctx).get(measure, "")
        eu = {
            "effect": unit
            if (d["source"] == "intervention").all()
            else ("r" if (d["source"] == "correlation").all() else "slope or r")
        }
        return table(d, "co-ctl-table", csv=f"controlling-{measure}.csv", units=eu)
