"""Small layout helpers shared by the pages."""
from __future__ import annotations

import numpy as np
import pandas as pd
from dash import dash_table, dcc, html

from probe.store import MAKERS


def missing(ctx, table: str, id: str | None = None) -> html.Div | None:
    """A note naming the command that makes `table`, or None when the study has it."""
    if ctx.has(table):
        return None
    cmd = MAKERS.get(table, "probe run").replace("STUDY", str(ctx.study.path))
    kw = {"id": id} if id else {}
    return html.Div([f"This study has no {table} table yet; make it with ", html.Code(cmd)], className="probe-note",
                    **kw)


def table(df: pd.DataFrame, id: str, page_size: int = 12, **kw) -> dash_table.DataTable:
    """DataTable of a DataFrame (floats rounded for display)."""
    d = df.copy()
    for c in d.columns:
        if pd.api.types.is_float_dtype(d[c]):
            d[c] = d[c].round(4)
    return dash_table.DataTable(id=id, data=d.to_dict("records"), columns=[{"name": c, "id": c} for c in d.columns],
                                page_size=page_size, sort_action="native", style_table={"overflowX": "auto"},
                                style_cell={"fontSize": 12, "padding": "2px 6px"}, **kw)


def plain(fig):
    """Figure -> dict with customdata as plain lists: plotly.js drops 2-D typed-array customdata from hover and
    click event data (plotly.py encodes numpy arrays as typed arrays)."""
    if fig is None or not hasattr(fig, "to_plotly_json"):
        return fig
    d = fig.to_plotly_json()
    for tr, src in zip(d["data"], fig.data):
        cd = getattr(src, "customdata", None)
        if cd is not None:
            tr["customdata"] = np.asarray(cd, dtype=object).tolist()
    return d


def graph(id: str, fig=None, **kw) -> dcc.Graph:
    return dcc.Graph(id=id, figure=plain(fig) if fig is not None else {"data": [], "layout": {}},
                     config={"displaylogo": False}, **kw)


def field(label: str, comp) -> html.Div:
    return html.Div([html.Label(label), comp])
