"""Overview: the study's model, measures, sample grid, counts and links."""

from __future__ import annotations

import dash
from dash import Input, Output, dcc, html

from probe import figures as F
from probe.schema import TABLES

from . import _progress
from ._util import click_point, field, fitted, missing, table

KEY, PATH, NAME = "overview", "/", "Overview"


def _counts(ctx) -> list[html.Tr]:
    s = ctx.study
    rows = [
        ("model", s.model_name),
        ("space", s.space),
        ("status", s.status),
        ("samples", len(ctx.latents())),
        ("targets", len(s.target_names)),
        ("alphas", ", ".join(f"{a:g}" for a in s.alphas)),
        ("direction sets", ", ".join(ctx.directions()) or "none"),
    ]
    if ctx.has("interventions"):
        rows.append(("intervention rows", ctx.iv_count()))
    return [html.Tr([html.Td(k), html.Td(str(v), id=f"ov-{k.replace(' ', '-')}")]) for k, v in rows]


def layout(ctx):
    import pandas as pd

    info = ctx.study.measure_info
    mdf = pd.DataFrame(
        [
            {
                "measure": m,
                "unit": i.get("unit", ""),
                "lo": i.get("lo"),
                "hi": i.get("hi"),
                "description": i.get("description", ""),
            }
            for m, i in info.items()
        ]
    )
    tables = [
        html.Li(
            [
                html.Code(t),
                " present " if ctx.has(t) else " absent ",
                html.A("download", href=f"/study-file/{t}.parquet") if ctx.has(t) else missing(ctx, t),
            ]
        )
        for t in TABLES
    ]
    return html.Div(
        [
            html.H2("Overview"),
            _progress.banner(ctx),
            html.Div(
                [
                    html.Div(
                        [
                            html.H3("Study"),
                            html.Table(_counts(ctx), className="kv", id="ov-counts"),
                            html.P([html.A("manifest.json", href="/study-file/manifest.json", id="ov-manifest")]),
                            html.H3("Tables"),
                            html.Ul(tables, id="ov-tables"),
                        ],
                        className="col",
                    ),
                    html.Div(
                        [html.H3("Measures"), table(mdf, "ov-measures", headers={"lo": "low", "hi": "high"})],
                        className="col",
                    ),
                ],
                className="row",
            ),
            html.H3("Samples"),
            html.Div(
                [
                    field(
                        "images",
                        dcc.Dropdown(
                            id="ov-n", options=[8, 16, 32], value=16, clearable=False, style={"width": "90px"}
                        ),
                    )
                ],
                className="controls",
            ),
            html.Div(id="ov-grid-msg"),
            html.Div(
                [
                    html.Div(
                        dcc.Graph(
                            id="ov-grid",
                            responsive=True,
                            config={"displaylogo": False},
                            figure={"data": [], "layout": {}},
                        ),
                        id="ov-grid-box",
                        className="col",
                    ),
                    html.Div(id="ov-detail", className="col"),
                ],
                className="row",
            ),
        ]
    )


def register(app, ctx):
    _progress.register(app, ctx)

    @app.callback(
        Output("ov-grid", "figure"),
        Output("ov-grid", "style"),
        Output("ov-grid-msg", "children"),
        Input("ov-n", "value"),
    )
    @ctx.guard(3, err_index=2)
    def grid(n):
        ids = list(range(min(int(n or 16), len(ctx.latents()))))
        fig = F.sample_grid(ctx.images(ids), sample_ids=ids, cols=8, title=f"first {len(ids)} samples")
        figure, style = fitted(fig)
        return figure, style, None

    @app.callback(Output("ov-detail", "children"), Input("ov-grid", "clickData"), prevent_initial_call=True)
    @ctx.guard()
    def detail(click):
        p = click_point(click)
        if p.get("customdata") is None:
            return dash.no_update
        sid = int(p["customdata"])
        row = ctx.table("samples").set_index("sample_id").loc[sid]
        info = ctx.study.measure_info
        unit = {m: i.get("unit", "") for m, i in info.items()}
        return html.Div(
            [
                html.H4(f"sample {sid}"),
                html.Img(src=ctx.thumb(sid, 128)),
                html.Table(
                    [
                        html.Tr(
                            [
                                html.Td(k),
                                html.Td(f"{v:.4g}" if isinstance(v, float) else str(v)),
                                html.Td(unit.get(k, "")),
                            ]
                        )
                        for k, v in row.items()
                    ],
                    className="kv",
                ),
            ],
            id="ov-sample",
        )
