"""Embedding: UMAP scatter coloured by a measure; hover thumbnail, lasso -> table, click -> latent neighbours."""
from __future__ import annotations

import numpy as np
from dash import Input, Output, dcc, html, no_update

from probe import figures as F

from ._util import field, graph, missing, plain, table

KEY, PATH, NAME = "embedding", "/embedding", "Embedding"
K_NEIGHBOURS = 6


def neighbours(latents: np.ndarray, sample_id: int, k: int = K_NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """k nearest samples to one sample in latent space (Euclidean, itself excluded).  # -> ids [k], dist [k]"""
    x = latents.reshape(len(latents), -1).astype(np.float64)
    d = np.linalg.norm(x - x[int(sample_id)], axis=1)
    d[int(sample_id)] = np.inf
    idx = np.argsort(d, kind="stable")[:k]
    return idx, d[idx]


def _sample_id(point) -> int | None:
    cd = point.get("customdata")
    if cd is None or (isinstance(cd, list) and (not cd or cd[0] is None)):
        return None
    return int(cd[0] if isinstance(cd, list) else cd)


def layout(ctx):
    if not ctx.has("embedding"):
        return html.Div([html.H2("Embedding"), missing(ctx, "embedding", id="em-missing")])
    opts = [*ctx.study.measures, "logp", "norm"]
    return html.Div([
        html.H2("Embedding"),
        html.Div([field("colour", dcc.Dropdown(id="em-color", options=opts, value=opts[0], clearable=False,
                                               style={"width": "200px"})),
                  dcc.Checklist(id="em-walks", options=[{"label": "walk trajectories", "value": "walks"}],
                                value=["walks"])], className="controls"),
        html.Div([html.Div([graph("em-scatter", clear_on_unhover=True), dcc.Tooltip(id="em-tip")], className="col"),
                  html.Div([html.H4("Nearest neighbours in latent space (click a point)"),
                            html.Div(id="em-neighbours", className="thumbs")], className="col")], className="row"),
        html.H4("Lasso / box selection"),
        html.Div(id="em-selection", children=html.Div("select points with the lasso tool", className="probe-note")),
    ])


def register(app, ctx):
    @app.callback(Output("em-scatter", "figure"), Input("em-color", "value"), Input("em-walks", "value"))
    def scatter(color, walks):
        return ctx.memo(("em-scatter", str(color), bool(walks)), lambda: plain(F.embedding_scatter(
            ctx.table("embedding"), color=color, samples=ctx.table("samples"), walks=bool(walks))),
            "embedding.parquet", "samples.parquet")

    @app.callback(Output("em-tip", "show"), Output("em-tip", "bbox"), Output("em-tip", "children"),
                  Input("em-scatter", "hoverData"))
    def tip(hover):
        if not hover:
            return False, no_update, no_update
        p = hover["points"][0]
        sid = _sample_id(p)
        if sid is None:
            return False, no_update, no_update
        return True, p["bbox"], html.Div([html.Img(src=ctx.thumb(sid), id="em-tip-img", width=96),
                                          html.Div(f"sample_id={sid}")])

    @app.callback(Output("em-selection", "children"), Input("em-scatter", "selectedData"), prevent_initial_call=True)
    @ctx.guard()
    def selection(sel):
        ids = sorted({s for s in (_sample_id(p) for p in (sel or {}).get("points", [])) if s is not None})
        if not ids:
            return html.Div("no samples selected", className="probe-note")
        def make():
            d = ctx.table("samples")
            return html.Div([html.Div(f"{len(ids)} samples selected", id="em-n-selected"),
                             table(d[d["sample_id"].isin(ids)], "em-table")])
        return ctx.memo(("em-selection", tuple(ids)), make, "samples.parquet")

    @app.callback(Output("em-neighbours", "children"), Input("em-scatter", "clickData"), prevent_initial_call=True)
    @ctx.guard()
    def click(cd):
        sid = _sample_id(cd["points"][0])
        if sid is None:
            return html.Div("click a sample point", className="probe-note")
        ids, dist = neighbours(ctx.latents(), sid)
        cells = [html.Figure([html.Img(src=ctx.thumb(sid)), html.Figcaption(f"sample {sid} (clicked)")],
                             id="em-clicked")]
        cells += [html.Figure([html.Img(src=ctx.thumb(int(i))), html.Figcaption(f"sample {int(i)}, d={d:.2f}")],
                              className="em-nb") for i, d in zip(ids, dist)]
        return html.Div(cells, className="row")
