"""Plotly figure builders from tidy study tables (shared by the dashboard and the report).

Pure functions: DataFrames (schema columns of `probe.schema`) and images in, `go.Figure` out, no I/O.
Images are img tensors [N, 3, H, W] in [-1, 1] or uint8 arrays [N, H, W, 3].
Engineers F and G may ADD builders at the end of this file; existing signatures stay as they are.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from _plotly_utils.utils import to_typed_array_spec
from PIL import Image

from .errors import ProbeError

GREY = "rgb(215,215,215)"
DIVERGING = "RdBu_r"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


# ---- images --------------------------------------------------------------------------------------
def _uint8(img) -> np.ndarray:
    """Any img batch -> uint8 [N, H, W, 3]."""
    if hasattr(img, "detach"):
        img = img.detach().cpu().numpy()
    a = np.asarray(img)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise ProbeError(f"images must be [N, 3, H, W] or [N, H, W, 3]; got shape {list(a.shape)}")
    if a.dtype == np.uint8:
        if a.shape[-1] != 3 and a.shape[1] == 3:
            a = a.transpose(0, 2, 3, 1)
        if a.shape[-1] != 3:
            raise ProbeError(f"uint8 images must be [N, H, W, 3]; got shape {list(a.shape)}")
        return np.ascontiguousarray(a)
    if a.shape[1] != 3:
        raise ProbeError(f"float images must be img [N, 3, H, W] in [-1, 1]; got shape {list(a.shape)}")
    a = np.floor((np.clip(a.astype(np.float32), -1, 1) + 1) * 127.5 + 0.5).clip(0, 255).astype(np.uint8)
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def img_to_png_bytes(img) -> bytes:
    """PNG bytes of one image.  # img [3, H, W] in [-1, 1] (tensor or array) or uint8 [H, W, 3]"""
    buf = io.BytesIO()
    Image.fromarray(_uint8(img)[0]).save(buf, format="PNG")
    return buf.getvalue()


def img_to_data_uri(img, size: int | None = None) -> str:
    """`data:image/png;base64,...` of one image, resized to size x size (bilinear) when size is given."""
    a = _uint8(img)[0]
    if size is not None and (a.shape[0], a.shape[1]) != (size, size):
        a = np.asarray(Image.fromarray(a).resize((int(size), int(size)), Image.BILINEAR))
    return "data:image/png;base64," + base64.b64encode(img_to_png_bytes(a)).decode("ascii")


def _tile(u8: np.ndarray, cols: int, pad: int, pad_y: int) -> np.ndarray:
    n, h, w, _ = u8.shape
    rows = -(-n // cols)
    out = np.full((rows * (h + pad_y) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad_y), pad + c * (w + pad)
        out[y : y + h, x : x + w] = u8[i]
    return out


def _grid_figure(
    u8: np.ndarray, cols: int, labels, ids, title, col_titles=None, row_titles=None, scale: float = 2.0
) -> go.Figure:
    n, h, w, _ = u8.shape
    pad = max(2, h // 16)
    pad_y = pad + (max(8, int(14 / scale)) if col_titles is None else 0)  # room for a label under each image
    big = _tile(u8, cols, pad, pad_y)
    H, W = big.shape[:2]
    fig = go.Figure(go.Image(source=img_to_data_uri(big), x0=0, y0=0, dx=1, dy=1, hoverinfo="skip"))
    idx = np.arange(n)
    r, c = np.divmod(idx, cols)
    cx = pad + c * (w + pad) + w / 2
    cy = pad + r * (h + pad_y) + h / 2
    ids = list(range(n)) if ids is None else [int(i) for i in ids]
    labels = [str(i) for i in ids] if labels is None else [str(s) for s in labels]
    if len(labels) != n or len(ids) != n:
        raise ProbeError(
            f"sample_grid: got {n} images but {len(labels)} labels and {len(ids)} sample_ids; pass one per image"
        )
    # invisible cell markers carry sample_id (customdata) for hover and click
    fig.add_trace(
        go.Scatter(
            x=cx,
            y=cy,
            mode="markers",
            customdata=ids,
            text=labels,
            name="cells",
            marker=dict(symbol="square", size=max(8, int(h * scale * 0.9)), opacity=0),
            hovertemplate="%{text}<br>sample_id=%{customdata}<extra></extra>",
            showlegend=False,
        )
    )
    if col_titles is None:
        for x, y, s in zip(cx, cy, labels):
            fig.add_annotation(
                x=x, y=y + h / 2 + (pad_y - pad) / 2, text=s, showarrow=False, yanchor="middle", font=dict(size=10)
            )
    else:
        for j, s in enumerate(col_titles):
            fig.add_annotation(
                x=pad + j * (w + pad) + w / 2, y=0, text=str(s), showarrow=False, yanchor="bottom", font=dict(size=11)
            )
    for i, s in enumerate(row_titles or []):
        fig.add_annotation(
            x=0, y=pad + i * (h + pad_y) + h / 2, text=str(s), showarrow=False, xanchor="right", font=dict(size=11)
        )
    top = 60 if title else 30
    fig.update_layout(
        title=title,
        width=int(W * scale) + (120 if row_titles else 40),
        height=int(H * scale) + top + 20,
        margin=dict(l=120 if row_titles else 20, r=20, t=top, b=20),
        plot_bgcolor="white",
        meta=dict(cols=cols, cell=[h + pad_y, w + pad], pad=pad, sample_ids=ids),
    )
    fig.update_xaxes(visible=False, range=[0, W])
    fig.update_yaxes(visible=False, range=[H, 0], scaleanchor="x")
    return fig


def sample_grid(
    imgs,
    labels: Sequence[str] | None = None,
    sample_ids: Sequence[int] | None = None,
    cols: int = 8,
    title: str | None = None,
    scale: float = 2.0,
) -> go.Figure:
    """Image grid; one label under each image, sample_id in the cell markers' customdata (hover / click).

    imgs: img [N, 3, H, W] in [-1, 1] or uint8 [N, H, W, 3]. layout.meta holds cols, cell size and sample_ids.
    """
    u8 = _uint8(imgs)
    return _grid_figure(u8, max(1, min(int(cols), len(u8))), labels, sample_ids, title, scale=scale)


def image_strip(
    imgs,
    alphas: Sequence[float],
    row_labels: Sequence[str] | None = None,
    sample_ids: Sequence[int] | None = None,
    title: str | None = None,
    scale: float = 2.0,
) -> go.Figure:
    """Walk strip: rows = samples, columns = alphas.  # imgs [N, A, 3, H, W] (or uint8 [N, A, H, W, 3])"""
    a = imgs.detach().cpu().numpy() if hasattr(imgs, "detach") else np.asarray(imgs)
    if a.ndim != 5:
        raise ProbeError(f"image_strip takes imgs [N, A, 3, H, W]; got shape {list(a.shape)}")
    n, k = a.shape[:2]
    if len(alphas) != k:
        raise ProbeError(f"image_strip: {k} images per row but {len(alphas)} alphas; pass one alpha per column")
    u8 = _uint8(a.reshape(n * k, *a.shape[2:]))
    ids = None if sample_ids is None else np.repeat(np.asarray(sample_ids, int), k)
    rows = [
        str(s) for s in (row_labels if row_labels is not None else (sample_ids if sample_ids is not None else range(n)))
    ]
    labels = [f"{rows[i]}, alpha={al:g}" for i in range(n) for al in alphas]
    return _grid_figure(
        u8, k, labels, ids, title, col_titles=[f"alpha={al:g}" for al in alphas], row_titles=rows, scale=scale
    )


# ---- tables -> charts ----------------------------------------------------------------------------
def _natural(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(s))]


def _rgba(hex_colour: str, a: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{a})"


def _need(df: pd.DataFrame, cols: Sequence[str], who: str) -> None:
    miss = [c for c in cols if c not in df.columns]
    if miss:
        raise ProbeError(f"{who}: table lacks column(s) {miss}; pass the table named in its docstring")


def _row_order(v: np.ndarray, rows: list, order: str) -> np.ndarray:
    """Row permutation of a heatmap matrix v [R, C]: "name" (natural sort, as given), "effect" (largest |value|
    first), "cluster" (average-linkage hierarchical clustering of the rows; similar profiles side by side)."""
    if order not in ("name", "effect", "cluster"):
        raise ProbeError(f"heatmap order {order!r}: use 'effect', 'cluster' or 'name'")
    n = len(rows)
    if order == "name" or n < 2:
        return np.arange(n)
    a = np.nan_to_num(np.abs(v) if order == "effect" else v)
    if order == "effect":
        return np.argsort(-a.max(axis=1), kind="stable")
    if order == "cluster":
        if n < 3:
            return np.arange(n)
        from scipy.cluster.hierarchy import leaves_list, linkage

        return leaves_list(linkage(a, method="average", metric="euclidean"))
    return np.arange(n)


def _units_of(units, cols) -> list[str]:
    if units is None:
        return [""] * len(cols)
    if isinstance(units, str):
        return [units] * len(cols)
    return [str(units.get(c, "") or "") for c in cols]


# ---- figure specs: one description, drawn as a go.Figure (report) or as a plain dict (dashboard) ----------------
_TRACES = {"heatmap": go.Heatmap, "scatter": go.Scatter}
_TEMPLATES: dict = {}
_SCALES: dict = {}


def _template() -> dict | None:
    """plotly's default template in JSON form, as go.Figure() sets it (a fresh copy per call)."""
    name = pio.templates.default
    if name not in _TEMPLATES:
        _TEMPLATES[name] = json.dumps(go.Figure().to_plotly_json()["layout"].get("template"))
    return json.loads(_TEMPLATES[name])


def _colorscale(name: str) -> list:
    if name not in _SCALES:
        _SCALES[name] = go.Heatmap(colorscale=name).colorscale
    return [list(x) for x in _SCALES[name]]


def _plain_value(k: str, v):
    if isinstance(v, (pd.Series, pd.Index)):
        return _plain_value(k, v.to_numpy())
    if isinstance(v, dict) and k != "meta":
        return {kk: _plain_value(kk, vv) for kk, vv in v.items() if vv is not None}
    if k == "colorscale" and isinstance(v, str):
        return _colorscale(v)
    if k == "title" and isinstance(v, str):
        return {"text": v}
    if isinstance(v, np.ndarray):
        return v.astype(object).tolist() if k == "customdata" or v.dtype == object else to_typed_array_spec(v)
    return v


def _plain_axis(a: dict) -> dict:
    a = dict(a)
    if "title_text" in a:
        a["title"] = a.pop("title_text")
    return _plain_value("axis", a)


@dataclass
class _Spec:
    """A figure as trace kwargs (of one trace type), layout and axis kwargs (`after`: layout set last)."""

    kind: str
    traces: list
    layout: dict
    xaxis: dict
    yaxis: dict
    after: dict = field(default_factory=dict)

    def figure(self) -> go.Figure:
        fig = go.Figure([_TRACES[self.kind](**t) for t in self.traces])
        fig.update_layout(**self.layout)
        fig.update_xaxes(**self.xaxis)
        fig.update_yaxes(**self.yaxis)
        if self.after:
            fig.update_layout(**self.after)
        return fig

    def plain(self) -> dict:
        """The figure's JSON form without graph objects: named colour scales expanded, title strings as
        {"text": ...}, customdata as lists, numpy arrays as typed arrays (what plotly's validation makes)."""
        data = [{**_plain_value("trace", t), "type": self.kind} for t in self.traces]
        layout = {
            "template": _template(),
            **_plain_value("layout", self.layout),
            "xaxis": _plain_axis(self.xaxis),
            "yaxis": _plain_axis(self.yaxis),
            **_plain_value("layout", self.after),
        }
        return {"data": data, "layout": {k: v for k, v in layout.items() if v is not None}}


def correlation_heatmap(
    df: pd.DataFrame,
    value: str = "r",
    q_max: float = 0.05,
    title: str | None = None,
    zmax: float | None = None,
    *,
    units: dict | str | None = None,
    raw: str | None = None,
    raw_units: dict | str | None = None,
    order: str = "name",
    colour: str = "shared",
    max_rows: int | None = None,
    insignificant: str = "grey",
) -> go.Figure:
    """Rows = variables (or targets), columns = measures; colour = `value` (r, slope or std_slope).

    df: correlations table (variable, measure, r, p, q) or effects table (target, measure, slope, p, q; with
    std_slope from probe.stats.standardise_effects). Cells with q > q_max are grey; hover shows value (with
    `units`: {measure: unit} or one unit for all), `raw` (another column, in `raw_units`), p and q in scientific
    notation. order: "name" | "effect" | "cluster" (rows). colour: "shared" (one symmetric scale) | "measure"
    (each column scaled to its own largest |value|, for values in different units). max_rows: at most this many
    rows in view; more scroll inside the plot (drag it up / down), labels stay. insignificant: "grey" (cells with
    q > q_max grey) | "faded" (coloured by value, faded: readable when nothing passes). layout.meta: rows, visible,
    order, colour, n_sig (cells with q <= q_max).
    """
    spec = _heatmap_spec(
        df,
        value,
        q_max,
        title,
        zmax,
        units=units,
        raw=raw,
        raw_units=raw_units,
        order=order,
        colour=colour,
        max_rows=max_rows,
        insignificant=insignificant,
    )
    return spec.figure()


def correlation_heatmap_dict(df: pd.DataFrame, *args, **kw) -> dict:
    """correlation_heatmap(df, ...) (same arguments) as the figure dict the dashboard sends, built without
    plotly's graph objects (validation is most of a heatmap's cost): plain(correlation_heatmap(...)) in JSON."""
    return _heatmap_spec(df, *args, **kw).plain()


def _heatmap_spec(
    df,
    value="r",
    q_max=0.05,
    title=None,
    zmax=None,
    *,
    units=None,
    raw=None,
    raw_units=None,
    order="name",
    colour="shared",
    max_rows=None,
    insignificant="grey",
):
    row = "variable" if "variable" in df.columns else "target"
    need = [row, "measure", value, "p", "q", *([raw] if raw else [])]
    _need(df, need, "correlation_heatmap")
    if colour not in ("shared", "measure"):
        raise ProbeError(f"heatmap colour {colour!r}: use 'shared' (one scale) or 'measure' (one per column)")
    vals = list(dict.fromkeys([value, "p", "q", *([raw] if raw else [])]))
    rcode, rows = pd.factorize(df[row].astype(str), sort=False)
    ccode, cols = pd.factorize(df["measure"].astype(str), sort=False)
    rows, cols = rows.tolist(), cols.tolist()
    nat = np.array(sorted(range(len(rows)), key=lambda i: _natural(rows[i])), dtype=np.int64)
    rank = np.empty(len(rows), np.int64)
    rank[nat] = np.arange(len(rows))
    rows = [str(rows[i]) for i in nat]
    first = ~pd.Series(rank[rcode] * max(1, len(cols)) + ccode).duplicated().to_numpy()  # first row per cell
    piv = {}
    for c in vals:
        a = np.full((len(rows), len(cols)), np.nan)
        a[rank[rcode][first], ccode[first]] = df[c].to_numpy(float)[first]
        piv[c] = a
    v, p, q = piv[value], piv["p"], piv["q"]
    rv = piv[raw] if raw else v
    perm = _row_order(np.where(q <= q_max, v, 0.0), rows, order)
    rows = [rows[i] for i in perm]
    v, p, q, rv = v[perm], p[perm], q[perm], rv[perm]
    if insignificant not in ("grey", "faded"):
        raise ProbeError(f"heatmap insignificant {insignificant!r}: use 'grey' or 'faded'")
    shown = v
    if colour == "measure":
        with np.errstate(invalid="ignore", divide="ignore"):
            inc = (q <= q_max) | (insignificant == "faded")
            cmax = np.nanmax(np.where(inc, np.abs(v), np.nan), axis=0) if len(rows) else np.ones(len(cols))
        cmax = np.where(np.isfinite(cmax) & (cmax > 0), cmax, 1.0)
        shown = v / cmax
    sig = np.where(q <= q_max, shown, np.nan)
    ns = np.where(q <= q_max, np.nan, np.where(np.isnan(q), np.nan, 0.0 if insignificant == "grey" else shown))
    custom = np.dstack([v, p, q, rv] if raw else [v, p, q])
    vu, ru = _units_of(units, cols), _units_of(raw_units, cols)
    text = None
    if raw or any(vu):  # per-cell hover text only when there are units to show
        text = np.empty((len(rows), len(cols)), dtype=object)
        for j in range(len(cols)):
            text[:, j] = [vu[j] + (f"<br>{raw}={x:.3g} {ru[j]}" if raw else "") for x in rv[:, j]]
    hover = (
        f"{row}=%{{y}}<br>measure=%{{x}}<br>{value}=%{{customdata[0]:.3g}}{' %{text}' if text is not None else ''}"
        "<br>p=%{customdata[1]:.2e}<br>q=%{customdata[2]:.2e}<extra></extra>"
    )
    if colour == "measure":
        m, bar = 1.0, dict(title="share of the column's<br>largest |value|")
    else:
        live = v if insignificant == "faded" or not (q <= q_max).any() else np.where(q <= q_max, v, np.nan)
        m = zmax if zmax is not None else (float(np.nanmax(np.abs(live))) if np.isfinite(live).any() else 1.0) or 1.0
        bar = dict(title=value)
    faded = (
        dict(colorscale=DIVERGING, zmid=0, zmin=-m, zmax=m, opacity=0.35)
        if insignificant == "faded"
        else dict(colorscale=[[0, GREY], [1, GREY]])
    )
    cells = dict(x=cols, y=rows, customdata=custom, text=text)
    traces = [
        dict(z=ns, **cells, showscale=False, hovertemplate=hover, name=f"q > {q_max:g}", **faded),
        dict(
            z=sig,
            **cells,
            colorscale=DIVERGING,
            zmid=0,
            zmin=-m,
            zmax=m,
            colorbar=bar,
            hovertemplate=hover,
            name=f"q <= {q_max:g}",
        ),
    ]
    n = len(rows)
    k = n if not max_rows else min(n, int(max_rows))
    layout = dict(
        title=title or f"{value} per {row} and measure (grey: q > {q_max:g})",
        height=max(320, 20 * k + 170),
        plot_bgcolor="white",
        margin=dict(t=130, b=30),
        meta=dict(rows=n, visible=k, order=order, colour=colour, n_sig=int((q <= q_max).sum())),
    )
    tick_units = _units_of(None if raw or isinstance(units, str) else units, cols)  # per-measure units only
    ticks = [f"{c}<br>({u})" if u else str(c) for c, u in zip(cols, tick_units)]
    xaxis = dict(title_text="measure", side="top", tickvals=cols, ticktext=ticks, fixedrange=k < n)
    if k < n:  # a window of k rows; the rest scroll inside the plot (pan), axis labels stay in place
        yaxis = dict(title_text=f"{row} (rows 1-{k} of {n}; drag to scroll)", range=[k - 0.5, -0.5], type="category")
        after = dict(dragmode="pan")
    else:
        yaxis, after = dict(title_text=row, autorange="reversed", type="category"), {}
    return _Spec("heatmap", traces, layout, xaxis, yaxis, after)


def effects_forest(
    effects: pd.DataFrame,
    measure: str | None = None,
    q_max: float = 0.05,
    top: int | None = None,
    title: str | None = None,
) -> go.Figure:
    """Slope of d_<measure> per unit alpha with its 95% CI, one row per target (effects table).

    Filled markers: q <= q_max; hollow: not significant. `top` keeps the largest |slope| rows.
    """
    _need(effects, ["method", "target", "measure", "slope", "slope_lo", "slope_hi", "q"], "effects_forest")
    d = effects if measure is None else effects[effects["measure"] == measure]
    if d.empty:
        raise ProbeError(
            f"effects_forest: no rows for measure {measure!r}; use one of {sorted(effects['measure'].unique())}"
        )
    dup = d.groupby(["target", "measure"])["method"].transform("nunique") > 1  # same target under two methods
    d = d.assign(label=np.where(dup, d["method"].astype(str) + " " + d["target"].astype(str), d["target"].astype(str)))
    if top:
        d = d.loc[d["slope"].abs().sort_values(ascending=False).index[: int(top)]]
    d = d.sort_values("slope")
    fig = go.Figure()
    for i, (m, g) in enumerate(d.groupby("measure", sort=False)):
        sig = g["q"].to_numpy() <= q_max
        fig.add_trace(
            go.Scatter(
                x=g["slope"],
                y=g["label"],
                mode="markers",
                name=str(m),
                error_x=dict(
                    type="data",
                    symmetric=False,
                    array=g["slope_hi"] - g["slope"],
                    arrayminus=g["slope"] - g["slope_lo"],
                    thickness=1.2,
                ),
                marker=dict(color=PALETTE[i % len(PALETTE)], size=8, symbol=np.where(sig, "circle", "circle-open")),
                customdata=np.c_[g["slope_lo"], g["slope_hi"], g["q"]],
                hovertemplate="%{y}<br>slope=%{x:.3g} [%{customdata[0]:.3g}, %{customdata[1]:.3g}]"
                "<br>q=%{customdata[2]:.3g}<extra>" + str(m) + "</extra>",
            )
        )
    fig.add_vline(x=0, line=dict(color="grey", dash="dot"))
    fig.update_layout(
        title=title or f"slope of d_{measure or 'measure'} per unit alpha (95% CI)",
        height=max(300, 20 * d["label"].nunique() + 140),
        plot_bgcolor="white",
        showlegend=d["measure"].nunique() > 1,
    )
    fig.update_xaxes(
        title_text=f"slope (d_{measure} per unit alpha)" if measure else "slope per unit alpha", gridcolor="#eee"
    )
    fig.update_yaxes(title_text="target", type="category")
    return fig


def _curves(df: pd.DataFrame, cols: Sequence[str], by: str, title: str, ytitle: str, level: float) -> go.Figure:
    from .stats import alpha_summary

    if by == "measure":
        _need(df, ["alpha", *cols], "measure_curves")
        long = df.melt(id_vars=["alpha"], value_vars=list(cols), var_name="measure", value_name="value")
    else:
        _need(df, ["alpha", by, *cols], "measure_curves")
        if len(cols) != 1:
            raise ProbeError(f"curves by {by!r} take one measure; got {list(cols)} (use by='measure' for several)")
        long = df[[by, "alpha", cols[0]]].rename(columns={cols[0]: "value"})
    s = alpha_summary(long, "value", by=[by], level=level)
    return summary_curves(s, by, title, ytitle, list(dict.fromkeys(long[by])) if by == "measure" else None)


def _ci_traces(g: pd.DataFrame, k, colour: str, label: str, unit: str = "") -> tuple[go.Scatter, go.Scatter]:
    """The CI band and the mean line of one key's per-alpha summary g (alpha, n, mean, lo, hi; sorted by alpha)."""
    band, line = _ci_kwargs(g, k, colour, label, unit)
    return go.Scatter(**band), go.Scatter(**line)


def _ci_kwargs(g: pd.DataFrame, k, colour: str, label: str, unit: str = "") -> tuple[dict, dict]:
    band = dict(
        x=np.r_[g["alpha"], g["alpha"].to_numpy()[::-1]],
        y=np.r_[g["hi"].to_numpy(), g["lo"].to_numpy()[::-1]],
        fill="toself",
        mode="lines",
        fillcolor=_rgba(colour, 0.18),
        line=dict(width=0),
        hoverinfo="skip",
        showlegend=False,
        legendgroup=str(k),
        name=f"{k} CI",
    )
    line = dict(
        x=g["alpha"],
        y=g["mean"],
        mode="lines+markers",
        name=str(k),
        legendgroup=str(k),
        line=dict(color=colour),
        customdata=np.c_[g["lo"], g["hi"], g["n"]],
        hovertemplate=f"{label}<br>alpha=%{{x:g}}<br>mean=%{{y:.3g}}{' ' + unit + ' ' if unit else ' '}"
        "[%{customdata[0]:.3g}, %{customdata[1]:.3g}]<br>n=%{customdata[2]}<extra></extra>",
    )
    return band, line


def summary_curves(s: pd.DataFrame, by: str, title: str, ytitle: str, keys: Sequence | None = None) -> go.Figure:
    """Curves with CI bands from a per-alpha summary (columns by, alpha, n, mean, lo, hi; probe.stats.alpha_summary
    or probe.query.Query.alpha_summary), one line per `by` value in `keys` order (default natural sort)."""
    return _curves_spec(s, by, title, ytitle, keys).figure()


def summary_curves_dict(s: pd.DataFrame, by: str, title: str, ytitle: str, keys: Sequence | None = None) -> dict:
    """summary_curves(...) (same arguments) as the figure dict the dashboard sends, built without plotly's graph
    objects: plain(summary_curves(...)) in JSON."""
    return _curves_spec(s, by, title, ytitle, keys).plain()


def _curves_spec(s, by, title, ytitle, keys):
    keys = sorted(s[by].unique(), key=_natural) if keys is None else keys
    traces = []
    for i, k in enumerate(keys):
        c = PALETTE[i % len(PALETTE)]
        g = s[s[by] == k].sort_values("alpha")
        traces += _ci_kwargs(g, k, c, f"{by}={k}")
    layout = dict(title=title, plot_bgcolor="white", hovermode="closest")
    xaxis = dict(title_text="alpha", gridcolor="#eee", zeroline=True, zerolinecolor="#bbb")
    return _Spec("scatter", traces, layout, xaxis, dict(title_text=ytitle, gridcolor="#eee"))


def unit_curves(
    s: pd.DataFrame, units: dict[str, str], title: str, keys: Sequence[str] | None = None, xtitle: str = "alpha"
) -> go.Figure:
    """Curves of several measures vs alpha with one y-axis per unit (stacked panels sharing alpha), never two
    units on one axis. s: per-alpha summary with a `measure` column (alpha, n, mean, lo, hi; as summary_curves);
    units: {measure: unit} (measures with the same unit share a panel). layout.meta: units (panel order)."""
    from plotly.subplots import make_subplots

    _need(s, ["measure", "alpha", "mean", "lo", "hi", "n"], "unit_curves")
    keys = list(dict.fromkeys(s["measure"])) if keys is None else list(keys)
    panels = list(dict.fromkeys(str(units.get(k, "") or "") for k in keys))
    fig = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, vertical_spacing=0.08 if len(panels) > 1 else 0)
    for i, k in enumerate(keys):
        r = panels.index(str(units.get(k, "") or "")) + 1
        c = PALETTE[i % len(PALETTE)]
        g = s[s["measure"] == k].sort_values("alpha")
        for t in _ci_traces(g, k, c, str(k), units.get(k, "")):
            fig.add_trace(t, row=r, col=1)
    for r, u in enumerate(panels, 1):
        fig.update_yaxes(title_text=f"change ({u})" if u else "change", gridcolor="#eee", row=r, col=1)
        fig.update_xaxes(gridcolor="#eee", zeroline=True, zerolinecolor="#bbb", row=r, col=1)
    fig.update_xaxes(title_text=xtitle, row=len(panels), col=1)
    fig.update_layout(
        title=title, plot_bgcolor="white", hovermode="closest", height=220 * len(panels) + 140, meta=dict(units=panels)
    )
    return fig


def measure_curves(
    df: pd.DataFrame,
    measure: str | Sequence[str],
    by: str = "target",
    delta: bool = True,
    level: float = 0.95,
    title: str | None = None,
) -> go.Figure:
    """Mean of a measure vs alpha with a 95% CI band, one line per `by` value (interventions rows).

    delta=True plots d_<measure>. by="measure" draws one line per measure in `measure` (filter to one target first).
    """
    ms = [measure] if isinstance(measure, str) else list(measure)
    cols = [f"d_{m}" if delta else m for m in ms]
    name = ", ".join(cols)
    return _curves(
        df,
        cols,
        by,
        title or f"{name} vs alpha (mean, {level:.0%} CI)",
        name if len(cols) == 1 else ("change of measure" if delta else "measure"),
        level,
    )


def density_curve(
    df: pd.DataFrame, value: str = "dlogp", by: str = "target", level: float = 0.95, title: str | None = None
) -> go.Figure:
    """log p (or dlogp, norm) of the walked latent vs alpha, mean with CI band per `by` (interventions rows)."""
    return _curves(df, [value], by, title or f"{value} vs alpha (mean, {level:.0%} CI)", value, level)


def embedding_scatter(
    emb: pd.DataFrame,
    color: str | None = None,
    samples: pd.DataFrame | None = None,
    walks: bool = True,
    title: str | None = None,
) -> go.Figure:
    """UMAP scatter of samples (colour = a measure), walk trajectories as lines (embedding table).

    color: a column of `emb` or of `samples` (joined on sample_id). Sample points carry customdata
    [sample_id, point_id] for hover thumbnails and click; walk lines carry [sample_id, point_id, alpha].
    """
    _need(emb, ["point_id", "kind", "sample_id", "target", "alpha", "x", "y"], "embedding_scatter")
    base = emb[emb["kind"] == "sample"]
    if color is not None and color not in base.columns:
        if samples is None or color not in samples.columns:
            raise ProbeError(
                f"embedding_scatter: colour column {color!r} not found; name a measure of the "
                f"samples table and pass samples="
            )
        base = base.merge(samples[["sample_id", color]], on="sample_id", how="left")
    fig = go.Figure()
    if walks:
        w = emb[emb["kind"] != "sample"]
        for i, (t, g) in enumerate(w.groupby("target", sort=True)):
            g = g.sort_values(["sample_id", "alpha"])
            xs, ys, cd = [], [], []
            for _, h in g.groupby("sample_id", sort=False):
                xs += [*h["x"], None]
                ys += [*h["y"], None]
                cd += [*zip(h["sample_id"], h["point_id"], h["alpha"]), (None, None, None)]
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines+markers",
                    name=f"walk {t}",
                    customdata=cd,
                    line=dict(width=1, color=PALETTE[(i + 1) % len(PALETTE)]),
                    marker=dict(size=4),
                    opacity=0.7,
                    hovertemplate=f"{t}<br>sample_id=%{{customdata[0]}}<br>alpha=%{{customdata[2]:g}}<extra></extra>",
                )
            )
    marker = dict(size=7, line=dict(width=0.5, color="white"))
    if color is not None:
        marker.update(color=base[color], colorscale="Viridis", showscale=True, colorbar=dict(title=color))
    else:
        marker.update(color=PALETTE[0])
    fig.add_trace(
        go.Scatter(
            x=base["x"],
            y=base["y"],
            mode="markers",
            name="samples",
            marker=marker,
            customdata=np.c_[base["sample_id"], base["point_id"]],
            hovertemplate="sample_id=%{customdata[0]}"
            + (f"<br>{color}=%{{marker.color:.3g}}" if color else "")
            + "<extra></extra>",
        )
    )
    fig.update_layout(
        title=title or "UMAP of the sample latents" + (f" (colour: {color})" if color else ""),
        plot_bgcolor="white",
        legend=dict(orientation="h", y=-0.15),
    )
    fig.update_xaxes(title_text="UMAP x", gridcolor="#eee")
    fig.update_yaxes(title_text="UMAP y", gridcolor="#eee")
    return fig


def method_comparison(evaluation: pd.DataFrame, measure: str | None = None, title: str | None = None) -> go.Figure:
    """Specificity vs density drift per direction, one colour per method (evaluation table).

    x = specificity, y = dlogp_abs_mean (error bar up to dlogp_abs_max); hover names target and slope.
    """
    _need(
        evaluation,
        ["method", "target", "measure", "slope", "specificity", "dlogp_abs_mean", "dlogp_abs_max"],
        "method_comparison",
    )
    d = evaluation if measure is None else evaluation[evaluation["measure"] == measure]
    if d.empty:
        raise ProbeError(
            f"method_comparison: no rows for measure {measure!r}; use one of {sorted(evaluation['measure'].unique())}"
        )
    from .directions.registry import label, ordered

    fig = go.Figure()
    for i, m in enumerate(ordered(list(dict.fromkeys(d["method"])))):  # the registry's order and labels
        g = d[d["method"] == m]
        fig.add_trace(
            go.Scatter(
                x=g["specificity"],
                y=g["dlogp_abs_mean"],
                mode="markers",
                name=label(m),
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=g["dlogp_abs_max"] - g["dlogp_abs_mean"],
                    arrayminus=np.zeros(len(g)),
                    thickness=1,
                ),
                marker=dict(size=10, color=PALETTE[i % len(PALETTE)]),
                customdata=np.c_[g["target"], g["measure"], g["slope"], g["dlogp_abs_max"]],
                hovertemplate="%{customdata[0]} (%{customdata[1]})<br>specificity=%{x:.3g}<br>mean |dlogp|=%{y:.3g}"
                "<br>max |dlogp|=%{customdata[3]:.3g}<br>slope=%{customdata[2]:.3g}<extra>" + label(m) + "</extra>",
            )
        )
    fig.update_layout(
        title=title or "specificity vs density drift per method" + (f" ({measure})" if measure else ""),
        plot_bgcolor="white",
    )
    fig.update_xaxes(title_text="specificity", gridcolor="#eee")
    fig.update_yaxes(title_text="mean |dlogp| (bar: max)", gridcolor="#eee")
    return fig


# --- added by dashboards ---
def variable_scatter(
    x, y, xname: str, yname: str, sample_ids: Sequence[int] | None = None, title: str | None = None
) -> go.Figure:
    """One latent variable vs one measure over samples, with the OLS line.  # x [N], y [N]"""
    x, y = np.asarray(x, float).reshape(-1), np.asarray(y, float).reshape(-1)
    if len(x) != len(y):
        raise ProbeError(f"variable_scatter: x has {len(x)} values but y has {len(y)}; pass one per sample")
    ids = np.arange(len(x)) if sample_ids is None else np.asarray(sample_ids, int)
    fig = go.Figure(
        go.Scatter(
            x=x,
            y=y,
            mode="markers",
            name="samples",
            customdata=ids,
            marker=dict(size=7, color=PALETTE[0], opacity=0.8),
            hovertemplate=f"sample_id=%{{customdata}}<br>{xname}=%{{x:.3g}}<br>{yname}=%{{y:.3g}}<extra></extra>",
        )
    )
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() >= 2 and np.ptp(x[ok]) > 0:
        b, a = np.polyfit(x[ok], y[ok], 1)
        r = float(np.corrcoef(x[ok], y[ok])[0, 1])
        xs = np.array([x[ok].min(), x[ok].max()])
        fig.add_trace(
            go.Scatter(x=xs, y=a + b * xs, mode="lines", name=f"OLS (r={r:.2f})", line=dict(color=PALETTE[3]))
        )
    fig.update_layout(
        title=title or f"{yname} vs {xname} over samples", plot_bgcolor="white", legend=dict(orientation="h", y=-0.2)
    )
    fig.update_xaxes(title_text=xname, gridcolor="#eee")
    fig.update_yaxes(title_text=yname, gridcolor="#eee")
    return fig


def drag_canvas(img, handles=(), targets=(), trajectory=None, title: str | None = None, size: int = 384) -> go.Figure:
    """Image with drag handles (red), targets (blue), arrows and handle paths.

    img [3, H, W] in [-1, 1] (or uint8 [H, W, 3]); handles/targets [K, 2] (x, y) pixels; trajectory [S, K, 2].
    Clicks on the image report pixel x, y (clickData points[0].x / .y).
    """
    u8 = _uint8(img)[0]
    h, w = u8.shape[:2]
    fig = go.Figure(go.Image(z=u8, name="image", hovertemplate="x=%{x}, y=%{y}<extra></extra>"))
    hs, ts = np.asarray(handles, float).reshape(-1, 2), np.asarray(targets, float).reshape(-1, 2)
    if trajectory is not None and len(trajectory):
        tr = np.asarray(trajectory, float)
        for k in range(tr.shape[1]):
            fig.add_trace(
                go.Scatter(
                    x=tr[:, k, 0],
                    y=tr[:, k, 1],
                    mode="lines",
                    name=f"path {k}",
                    line=dict(color="orange", width=2),
                    hoverinfo="skip",
                    showlegend=k == 0,
                )
            )
    for (a, b), (c, d) in zip(hs, ts):
        fig.add_annotation(
            x=c,
            y=d,
            ax=a,
            ay=b,
            xref="x",
            yref="y",
            axref="x",
            ayref="y",
            showarrow=True,
            arrowhead=3,
            arrowcolor="white",
            arrowwidth=1.5,
            text="",
        )
    if len(hs):
        fig.add_trace(
            go.Scatter(
                x=hs[:, 0],
                y=hs[:, 1],
                mode="markers",
                name="handles",
                marker=dict(color="red", size=10, line=dict(color="white", width=1)),
            )
        )
    if len(ts):
        fig.add_trace(
            go.Scatter(
                x=ts[:, 0],
                y=ts[:, 1],
                mode="markers",
                name="targets",
                marker=dict(color="#1f77ff", size=10, symbol="x", line=dict(color="white", width=1)),
            )
        )
    fig.update_layout(
        title=title,
        width=size + 40,
        height=size + (90 if title else 50),
        margin=dict(l=20, r=20, t=60 if title else 20, b=30),
        legend=dict(orientation="h", y=-0.02),
        clickmode="event",
        dragmode=False,
    )
    fig.update_xaxes(visible=False, range=[-0.5, w - 0.5])
    fig.update_yaxes(visible=False, range=[h - 0.5, -0.5], scaleanchor="x")
    return fig


# --- ground truth (sprites) ---
def groundtruth_heatmap(gt: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Rows = directions (method/target), columns = ground-truth factors (groundtruth table).

    Colour = the direction's share of its importance on that factor (row_share, 0..1); the top factor of each row
    is starred; hover gives importance (factor stds per alpha unit), the row's purity and the factor's column share.
    """
    from .directions.registry import ordered

    _need(
        gt,
        ["method", "target", "measure", "importance", "row_share", "col_share", "is_top", "purity"],
        "groundtruth_heatmap",
    )
    if gt.empty:
        raise ProbeError("groundtruth_heatmap: the groundtruth table is empty; re-run `probe gt-score`")
    methods = ordered(list(dict.fromkeys(gt["method"])))
    rows = [t for m in methods for t in dict.fromkeys(gt.loc[gt["method"] == m, "target"])]
    cols = list(dict.fromkeys(gt["measure"]))
    piv = {
        c: gt.pivot_table(index="target", columns="measure", values=c, aggfunc="first").reindex(
            index=rows, columns=cols
        )
        for c in ("row_share", "importance", "col_share", "purity", "is_top")
    }
    share = piv["row_share"].to_numpy(float)
    top = piv["is_top"].fillna(False).to_numpy(bool)
    text = np.where(np.isnan(share), "", np.char.add(np.char.mod("%.2f", np.nan_to_num(share)), np.where(top, "*", "")))
    custom = np.dstack([piv[c].to_numpy(float) for c in ("importance", "purity", "col_share")])
    fig = go.Figure(
        go.Heatmap(
            z=share,
            x=cols,
            y=rows,
            text=text,
            texttemplate="%{text}",
            customdata=custom,
            zmin=0,
            zmax=1,
            colorscale="Blues",
            colorbar=dict(title="share"),
            hovertemplate="%{y}<br>factor=%{x}<br>share of the direction's importance=%{z:.3f}<br>"
            "importance=%{customdata[0]:.3g} factor stds per alpha<br>purity=%{customdata[1]:.3f}<br>"
            "share of the factor's importance=%{customdata[2]:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title or "Which factor each direction moves (share of its importance; * = top factor)",
        height=max(320, 20 * len(rows) + 160),
        plot_bgcolor="white",
    )
    fig.update_xaxes(title_text="factor", side="bottom")
    fig.update_yaxes(title_text="direction", autorange="reversed", type="category")
    return fig


# --- embedding explorer and drag before/after (dashboard) ---
def embedding_explorer(
    emb: pd.DataFrame,
    color: str | None = None,
    walk_targets: Sequence[str] = (),
    walk_samples: Sequence[int] | None = None,
    keep=None,
    highlight: Sequence[int] = (),
    axis: str = "UMAP",
    unit: str | None = None,
    height: int = 560,
    title: str | None = None,
) -> go.Figure:
    """Scatter of the samples of an embedding table with walks only for the picked targets (no legend flood).

    emb: embedding rows (point_id, kind, sample_id, target, alpha, x, y; plus `color` on the sample rows).
    walk_targets: targets whose trajectories are drawn (none by default); walk_samples: their samples (None =
    every sample with walk points). keep: bool [n_samples rows] of the filter; samples that fail it are drawn
    grey in a trace of their own ("filtered out"), never hidden. highlight: sample ids ringed (search).
    Sample points carry customdata [sample_id, point_id]; walk points [sample_id, point_id, alpha, target], so a
    selection can count samples only. Unselected points are muted (opacity), not hidden. Height is fixed.
    """
    return _explorer_spec(emb, color, walk_targets, walk_samples, keep, highlight, axis, unit, height, title).figure()


def embedding_explorer_dict(emb: pd.DataFrame, *args, **kw) -> dict:
    """embedding_explorer(emb, ...) (same arguments) as the figure dict the dashboard sends, built without
    plotly's graph objects: plain(embedding_explorer(...)) in JSON."""
    return _explorer_spec(emb, *args, **kw).plain()


def _explorer_spec(
    emb,
    color=None,
    walk_targets=(),
    walk_samples=None,
    keep=None,
    highlight=(),
    axis="UMAP",
    unit=None,
    height=560,
    title=None,
):
    _need(emb, ["point_id", "kind", "sample_id", "target", "alpha", "x", "y"], "embedding_explorer")
    is_s = (emb["kind"] == "sample").to_numpy(bool)
    if color is not None and color not in emb.columns:
        raise ProbeError(
            f"embedding_explorer: colour column {color!r} not found; use one of "
            f"{[c for c in emb.columns if c not in ('kind', 'target')][:12]}"
        )
    n = int(is_s.sum())
    keep = np.ones(n, bool) if keep is None else np.asarray(keep, bool).reshape(-1)
    if len(keep) != n:
        raise ProbeError(f"embedding_explorer: keep has {len(keep)} values for {n} samples; pass one per sample row")
    col = {c: emb[c].to_numpy()[is_s] for c in ("x", "y", "sample_id", "point_id", *([color] if color else []))}
    traces = []
    muted = dict(marker=dict(opacity=0.18))
    if not keep.all():
        traces.append(
            dict(
                x=col["x"][~keep],
                y=col["y"][~keep],
                mode="markers",
                name="filtered out",
                marker=dict(size=6, color=GREY),
                customdata=np.c_[col["sample_id"][~keep], col["point_id"][~keep]],
                unselected=muted,
                hovertemplate="sample_id=%{customdata[0]} (filtered out)<extra></extra>",
            )
        )
    marker = dict(size=8, line=dict(width=0.5, color="white"))
    label = color if not unit else f"{color} ({unit})"
    if color is not None:
        marker.update(
            color=col[color][keep],
            colorscale="Viridis",
            showscale=True,
            colorbar=dict(title=dict(text=label, side="right"), thickness=12, len=0.8),
        )
    else:
        marker.update(color=PALETTE[0])
    traces.append(
        dict(
            x=col["x"][keep],
            y=col["y"][keep],
            mode="markers",
            name="samples",
            marker=marker,
            customdata=np.c_[col["sample_id"][keep], col["point_id"][keep]],
            unselected=muted,
            hovertemplate="sample_id=%{customdata[0]}"
            + (f"<br>{label}=%{{marker.color:.3g}}" if color else "")
            + "<extra></extra>",
        )
    )
    walks = emb[(emb["kind"] != "sample") & emb["target"].isin(list(walk_targets))]
    if walk_samples is not None:
        walks = walks[walks["sample_id"].isin([int(s) for s in walk_samples])]
    for i, t in enumerate(walk_targets):
        g = walks[walks["target"] == t].sort_values(["sample_id", "alpha"])
        if g.empty:
            continue
        sid, pid = g["sample_id"].to_numpy(), g["point_id"].to_numpy()
        x, y, a = g["x"].to_numpy(), g["y"].to_numpy(), g["alpha"].to_numpy(float)
        xs, ys, cd, size = [], [], [], []
        for lo, hi in _runs(sid):  # one line per sample, broken by None
            xs += [*x[lo:hi].tolist(), None]
            ys += [*y[lo:hi].tolist(), None]
            cd += [*([int(s), int(p), float(al), str(t)] for s, p, al in zip(sid[lo:hi], pid[lo:hi], a[lo:hi]))]
            cd.append([None, None, None, None])
            size += [*(4 + 2 * np.abs(a[lo:hi])).tolist(), 0]
        c = PALETTE[(i + 1) % len(PALETTE)]
        traces.append(
            dict(
                x=xs,
                y=ys,
                mode="lines+markers",
                name=f"walk {t}",
                customdata=cd,
                line=dict(width=1.5, color=c),
                marker=dict(size=size, color=c),
                unselected=muted,
                hovertemplate=f"walk {t}<br>sample_id=%{{customdata[0]}}<br>alpha=%{{customdata[2]:g}}<extra></extra>",
            )
        )
    hl = np.isin(col["sample_id"], [int(s) for s in highlight])
    if hl.any():
        traces.append(
            dict(
                x=col["x"][hl],
                y=col["y"][hl],
                mode="markers",
                name="found",
                hoverinfo="skip",
                marker=dict(size=18, color="rgba(0,0,0,0)", line=dict(width=2.5, color="#d62728")),
            )
        )
    layout = dict(
        title=title or f"{axis} of the sample latents" + (f" (colour: {label})" if color else ""),
        plot_bgcolor="white",
        height=int(height),
        margin=dict(l=50, r=20, t=80, b=45),
        legend=dict(orientation="h", x=0, y=1.01, yanchor="bottom", font=dict(size=11)),
        uirevision=axis,
        clickmode="event+select",
        hovermode="closest",
    )
    xaxis = dict(title_text=f"{axis} 1", gridcolor="#eee", zeroline=False)
    yaxis = dict(title_text=f"{axis} 2", gridcolor="#eee", zeroline=False)
    return _Spec("scatter", traces, layout, xaxis, yaxis)


def _runs(v: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of the runs of equal values in v [N]."""
    cut = np.flatnonzero(v[1:] != v[:-1]) + 1
    edges = [0, *cut.tolist(), len(v)]
    return list(zip(edges[:-1], edges[1:]))


def drag_mask_regions(fig: go.Figure, boxes: Sequence[Sequence[float]], draw: bool = False) -> go.Figure:
    """Add a drag mask's regions (boxes [x0, y0, x1, y1] in image px, 1 = may change) to a `drag_canvas` figure
    as translucent rectangles; draw=True lets the user draw further rectangles on it (dragmode drawrect)."""
    style = dict(line=dict(color="#ffd400", width=2), fillcolor="rgba(255,212,0,0.18)")
    for x0, y0, x1, y1 in boxes:
        fig.add_shape(type="rect", x0=x0, y0=y0, x1=x1, y1=y1, xref="x", yref="y", editable=False, **style)
    if draw:
        fig.update_layout(dragmode="drawrect", newshape=dict(**style, layer="above"))
    return fig
