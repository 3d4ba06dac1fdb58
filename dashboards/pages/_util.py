"""Small layout helpers shared by the pages: study-table notes, AG Grid tables, graphs, labelled fields."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from dash import ALL, Input, Output, dcc, html
from dash_ag_grid import AgGrid

from probe.store import MAKERS

SCI_COLUMNS = ("p", "q", "p_value", "q_value")  # always shown in scientific notation (never "0")
AUTO_HEIGHT_ROWS = 15  # up to this many rows the grid grows with its rows; longer ones scroll virtually
GRID_HEIGHT_PX = 420  # the fixed height of a long (virtually scrolled) grid
ROW_PX = 30  # AG Grid row height, for the fixed height of short-but-not-tiny grids


def missing(ctx, table: str, id: str | None = None) -> html.Div | None:
    """A note naming the command that makes `table`, or None when the study has it."""
    if ctx.has(table):
        return None
    from ._progress import computing

    kw = {"id": id} if id else {}
    busy = computing(ctx.root, table)
    if busy is not None:  # a running probe demo will write it
        return html.Div(f"The {table} table is {busy}.", className="probe-note", **kw)
    cmd = MAKERS.get(table, "probe run").replace("STUDY", str(ctx.study.path))
    return html.Div(
        [f"This study has no {table} table yet; make it with ", html.Code(cmd)], className="probe-note", **kw
    )


def _number_formatter(sci: bool) -> dict:
    """A d3 number format for AG Grid cells: p/q values in scientific notation, others to 4 significant digits;
    the cell keeps its number, so sorting and filtering stay numeric."""
    fmt = ".2e" if sci else ".4~g"
    return {"function": f"params.value == null ? '' : d3.format('{fmt}')(params.value)"}


def _cell(v):
    """One DataFrame value as JSON for the grid: NaN / NaT -> None, numpy scalars -> Python."""
    if v is None:
        return None
    if isinstance(v, (float, np.floating)):
        return None if not math.isfinite(float(v)) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (list, tuple, np.ndarray)):
        return ", ".join(map(str, v))
    return v if isinstance(v, (int, str)) else str(v)


def table(
    df: pd.DataFrame,
    id: str,
    units: dict[str, str] | None = None,
    csv: str | None = None,
    headers: dict[str, str] | None = None,
    sci: tuple[str, ...] = SCI_COLUMNS,
    height: int | None = None,
    **kw,
) -> html.Div:
    """A DataFrame as an AG Grid table (sortable, filterable columns; numbers stay numbers).

    units: column -> unit shown in its header (`slope (years / alpha)`); headers: column -> header text.
    csv: file name of an "Export CSV" button above the grid (the rows as filtered and sorted). Columns in `sci` show
    in scientific notation. Up to AUTO_HEIGHT_ROWS rows the grid grows with them; longer tables get a fixed height
    (`height` px, default GRID_HEIGHT_PX) and scroll virtually (only visible rows are in the page). Extra keyword
    arguments go to dash_ag_grid.AgGrid. The grid's id is `id`; the wrapper's is `<id>-box`.
    """
    units, headers = units or {}, headers or {}
    cols = []
    for c in df.columns:
        name = headers.get(c, str(c))
        if units.get(c):
            name = f"{name} ({units[c]})"
        d = {"field": str(c), "headerName": name, "headerTooltip": name}
        if pd.api.types.is_bool_dtype(df[c]):
            d["filter"] = "agTextColumnFilter"
        elif pd.api.types.is_numeric_dtype(df[c]):
            d["filter"] = "agNumberColumnFilter"
            d["type"] = "numericColumn"
            if pd.api.types.is_float_dtype(df[c]):
                d["valueFormatter"] = _number_formatter(str(c) in sci)
        else:
            d["filter"] = "agTextColumnFilter"
            d["tooltipField"] = str(c)  # long text (descriptions) in full on hover
        cols.append(d)
    rows = [{str(c): _cell(v) for c, v in zip(df.columns, r)} for r in df.itertuples(index=False, name=None)]
    n = len(rows)
    auto = n <= AUTO_HEIGHT_ROWS and height is None
    opts = {
        "suppressFieldDotNotation": True,
        "animateRows": False,
        "rowBuffer": 10,
        "enableCellTextSelection": True,
        "tooltipShowDelay": 300,
        **({"domLayout": "autoHeight"} if auto else {}),
        **kw.pop("dashGridOptions", {}),
    }
    style = {"width": "100%"} if auto else {"width": "100%", "height": f"{int(height or GRID_HEIGHT_PX)}px"}
    grid = AgGrid(
        id=id,
        rowData=rows,
        columnDefs=cols,
        columnSize=kw.pop("columnSize", "responsiveSizeToFit"),
        defaultColDef={
            "sortable": True,
            "resizable": True,
            "filter": True,
            "floatingFilter": n > 8,
            "minWidth": 90,
            **kw.pop("defaultColDef", {}),
        },
        dashGridOptions=opts,
        style={**style, **kw.pop("style", {})},
        csvExportParams={"fileName": csv} if csv else {},
        **kw,
    )
    bar = []
    if csv:
        bar = [
            html.Div(
                [
                    html.Button(
                        "Export CSV",
                        id={"type": "probe-csv", "grid": id},
                        className="probe-csv",
                        title=f"download the rows shown as {csv}",
                    ),
                    html.Span(f"{n} rows", className="probe-rows", id=f"{id}-rows"),
                ],
                className="probe-grid-bar",
            )
        ]
    return html.Div([*bar, grid], id=f"{id}-box", className="probe-table")


# one clientside callback serves every table's CSV button: the button's id names its grid
_CSV_JS = """function(n) {
    const c = dash_clientside.callback_context, t = c.triggered_id;
    if (!t || !t.grid || !c.triggered.length || !c.triggered[0].value || !window.dash_ag_grid) {
        return dash_clientside.no_update;
    }
    const api = window.dash_ag_grid.getApi(t.grid);
    if (api) { api.exportDataAsCsv(); }
    return t.grid;
}"""


def register(app) -> None:
    """The CSV export of every `table(..., csv=...)` (needs a dcc.Store id 'probe-csv-done' in the app layout)."""
    app.clientside_callback(
        _CSV_JS,
        Output("probe-csv-done", "data"),
        Input({"type": "probe-csv", "grid": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )


def csv_store() -> dcc.Store:
    """The store the CSV callback writes (the last exported grid id); put once in the app layout."""
    return dcc.Store(id="probe-csv-done")


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
    return dcc.Graph(
        id=id, figure=plain(fig) if fig is not None else {"data": [], "layout": {}}, config={"displaylogo": False}, **kw
    )


def fitted(fig) -> tuple[dict, dict]:
    """An image figure (sample grid, strip) that shrinks to its column: (figure without a fixed size, the graph's
    style: full width up to the figure's own width, height following the width by the figure's aspect ratio)."""
    w, h = fig.layout.width, fig.layout.height
    fig.update_layout(width=None, height=None, autosize=True)
    style = {"width": "100%"}
    if w and h:
        style.update(maxWidth=f"{int(w)}px", aspectRatio=f"{int(w)} / {int(h)}")
    return plain(fig), style


def fitted_graph(id: str, fig, **kw) -> dcc.Graph:
    """dcc.Graph of an image figure that never overflows its column (see `fitted`)."""
    figure, style = fitted(fig)
    return dcc.Graph(id=id, figure=figure, style=style, responsive=True, config={"displaylogo": False}, **kw)


def click_point(click) -> dict:
    """The first point of a plotly clickData, PreventUpdate when there is none (a graph drawn or redrawn)."""
    from dash.exceptions import PreventUpdate

    pts = (click or {}).get("points") or []
    if not pts:
        raise PreventUpdate
    return pts[0]


def sci(x) -> str:
    """A p or q value for text: scientific notation, never a bare "0" (1.2e-07; "< 1e-300" below doubles)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "n/a"
    if not np.isfinite(v):
        return "n/a"
    return "< 1e-300" if v == 0 else f"{v:.2e}"


def field(label: str, comp) -> html.Div:
    return html.Div([html.Label(label), comp])


def int_input(id: str, value: int, hi: int, lo: int = 0, debounce: bool = False, width: int = 80) -> dcc.Input:
    """A whole-number box limited to lo..hi."""
    return dcc.Input(
        id=id, type="number", value=value, min=lo, max=hi, step=1, debounce=debounce, style={"width": f"{width}px"}
    )
