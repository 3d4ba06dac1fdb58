"""Embedding: UMAP / PCA scatter of the samples, coloured by a measure, filterable by any samples column.

Walk trajectories are drawn only for the targets (and samples) the user picks; none by default. Hovering a
point shows the image of that point: a sample's own image, or a walk point re-rendered on demand with
`Study.render` (the same pixels the engine measured) and cached. A box / lasso selection counts samples only
(walk points are not samples), lists them, and downloads their sample ids; unselected points are muted.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict

import numpy as np
import pandas as pd
from dash import Input, Output, State, dcc, html, no_update

from probe import figures as F
from probe.errors import ProbeError

from ._util import field, graph, missing, table

KEY, PATH, NAME = "embedding", "/embedding", "Embedding"
K_NEIGHBOURS = 6
MAX_WALK_TARGETS = 8  # trajectories drawn at once (more would bring back the legend flood)
PLOT_HEIGHT = 600  # px; fixed, so neither legend nor colour bar squeezes the plot
THUMB_PX = 128
WALK_THUMBS_KEPT = 512  # re-rendered walk points kept (least recently used dropped)
MAX_FIND = 64  # sample ids one search may ring


class EmbeddingInputError(ProbeError):
    """A control of the Embedding page holds a value it cannot use; the message names the control."""


def neighbours(latents: np.ndarray, sample_id: int, k: int = K_NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """k nearest samples to one sample in latent space (Euclidean, itself excluded).  # -> ids [k], dist [k]"""
    x = latents.reshape(len(latents), -1).astype(np.float64)
    d = np.linalg.norm(x - x[int(sample_id)], axis=1)
    d[int(sample_id)] = np.inf
    idx = np.argsort(d, kind="stable")[:k]
    return idx, d[idx]


def parse_ids(text: str | None, n: int) -> list[int]:
    """'3, 10-12' -> [3, 10, 11, 12] (sample ids in 0..n-1); EmbeddingInputError naming the bad part."""
    out: list[int] = []
    for part in re.split(r"[,\s]+", (text or "").strip()):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise EmbeddingInputError(f"find: {part!r} is not a sample id; type ids and ranges like 3, 10-12")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo or hi >= n:
            raise EmbeddingInputError(f"find: {part!r} is outside the sample ids 0..{n - 1}")
        out.extend(range(lo, hi + 1))
        if len(out) > MAX_FIND:
            raise EmbeddingInputError(f"find: more than {MAX_FIND} sample ids; narrow the search")
    return sorted(set(out))


def selected_samples(sel: dict | None) -> list[int]:
    """Sample ids of a plotly selection, walk points left out (they carry [sample_id, point_id, alpha, target])."""
    ids = set()
    for p in (sel or {}).get("points", []):
        cd = p.get("customdata")
        if isinstance(cd, list) and len(cd) <= 2 and cd and cd[0] is not None:
            ids.add(int(cd[0]))
        elif isinstance(cd, (int, float)):
            ids.add(int(cd))
    return sorted(ids)


def _point(p) -> tuple[int, str | None, float] | None:
    """(sample_id, target or None, alpha) of a hovered / clicked point; None for a gap or decoration."""
    cd = p.get("customdata")
    if isinstance(cd, (int, float)):
        return int(cd), None, 0.0
    if not isinstance(cd, list) or not cd or cd[0] is None:
        return None
    if len(cd) >= 4:
        return int(cd[0]), str(cd[3]), float(cd[2])
    return int(cd[0]), None, 0.0


def _columns(ctx) -> list[str]:
    """Numeric columns of the samples table offered for colour and filter (measures first)."""
    s = ctx.table("samples")
    num = [c for c in s.columns if pd.api.types.is_numeric_dtype(s[c]) and c not in ("sample_id",)]
    return [*[m for m in ctx.study.measures if m in num], *[c for c in num if c not in ctx.study.measures]]


def _unit(ctx, col: str | None) -> str | None:
    return (ctx.study.measure_info.get(col) or {}).get("unit") if col else None


def pca_table(emb: pd.DataFrame, latents: np.ndarray, study) -> pd.DataFrame:
    """The embedding table with x, y replaced by the first two principal components of the sample latents;
    walk points are re-walked with probe.walks exactly as the engine did and projected on the same axes."""
    import torch

    from probe.restudy import study_target
    from probe.walks import apply_rows

    x = latents.reshape(len(latents), -1).astype(np.float64)
    mu = x.mean(0)
    _, _, vt = np.linalg.svd(x - mu, full_matrices=False)
    axes = vt[:2].T  # [D, 2]
    out = emb.copy()
    smp = out["kind"] == "sample"
    out.loc[smp, ["x", "y"]] = (x[out.loc[smp, "sample_id"].to_numpy()] - mu) @ axes
    density = study.density() if (~smp).any() else None
    for t, g in out[~smp].groupby("target", sort=False):
        walked = apply_rows(
            torch.from_numpy(latents[g["sample_id"].to_numpy()].copy()),
            study.space,
            study_target(study, t),
            torch.as_tensor(g["alpha"].to_numpy(np.float32)),
            density,
        ).numpy()
        out.loc[g.index, ["x", "y"]] = (walked.reshape(len(g), -1).astype(np.float64) - mu) @ axes
    return out


def layout(ctx):
    if not ctx.has("embedding"):
        return html.Div([html.H2("Embedding"), missing(ctx, "embedding", id="em-missing")])
    cols = _columns(ctx)
    emb = ctx.table("embedding")
    walk = emb[emb["kind"] != "sample"]
    targets = sorted(walk["target"].unique(), key=F._natural)
    walk_ids = sorted(int(s) for s in walk["sample_id"].unique())
    n = int((emb["kind"] == "sample").sum())
    col_opts = [{"label": c + (f" ({_unit(ctx, c)})" if _unit(ctx, c) else ""), "value": c} for c in cols]
    return html.Div(
        [
            html.H2("Embedding"),
            html.Div(
                [
                    field(
                        "projection",
                        dcc.RadioItems(
                            id="em-proj",
                            value="umap",
                            inline=True,
                            options=[{"label": "UMAP", "value": "umap"}, {"label": "PCA", "value": "pca"}],
                        ),
                    ),
                    field(
                        "colour",
                        dcc.Dropdown(
                            id="em-color",
                            options=col_opts,
                            value=cols[0] if cols else None,
                            clearable=False,
                            style={"width": "200px"},
                        ),
                    ),
                    field(
                        "walks of",
                        dcc.Dropdown(
                            id="em-walks",
                            options=targets,
                            value=[],
                            multi=True,
                            placeholder=f"pick up to {MAX_WALK_TARGETS} targets"
                            if targets
                            else "no walk points in this embedding",
                            disabled=not targets,
                            style={"width": "330px"},
                        ),
                    ),
                    field(
                        "for samples",
                        dcc.Dropdown(
                            id="em-walk-samples",
                            options=walk_ids,
                            value=[],
                            multi=True,
                            placeholder=f"all {len(walk_ids)} walked samples",
                            disabled=not targets,
                            style={"width": "220px"},
                        ),
                    ),
                ],
                className="controls",
            ),
            html.Div(
                [
                    field(
                        "filter",
                        dcc.Dropdown(
                            id="em-filter-col",
                            options=col_opts,
                            value=None,
                            placeholder="column",
                            style={"width": "180px"},
                        ),
                    ),
                    dcc.Input(
                        id="em-filter-lo", type="number", placeholder="min", debounce=True, style={"width": "90px"}
                    ),
                    dcc.Input(
                        id="em-filter-hi", type="number", placeholder="max", debounce=True, style={"width": "90px"}
                    ),
                    field(
                        "find sample_id",
                        dcc.Input(
                            id="em-find",
                            type="text",
                            placeholder="e.g. 3, 10-12",
                            debounce=True,
                            style={"width": "120px"},
                        ),
                    ),
                ],
                className="controls",
            ),
            html.Div(id="em-status", className="probe-status"),
            html.Div(
                [
                    html.Div(
                        [
                            graph("em-scatter", clear_on_unhover=True, style={"height": f"{PLOT_HEIGHT}px"}),
                            dcc.Tooltip(id="em-tip", direction="right"),
                        ],
                        className="col",
                        style={"flex": "3 1 640px"},
                    ),
                    html.Div(
                        [
                            html.H4("Nearest neighbours in latent space (click a point)"),
                            html.Div(id="em-neighbours", className="thumbs"),
                        ],
                        className="col",
                        style={"flex": "1 1 300px", "minWidth": "280px"},
                    ),
                ],
                className="row",
            ),
            html.H4("Box / lasso selection"),
            html.Div(
                [
                    html.Button("Download sample ids", id="em-download-btn", disabled=True),
                    dcc.Download(id="em-download"),
                    dcc.Store(id="em-selected", data=[]),
                ],
                className="controls",
            ),
            html.Div(
                id="em-selection",
                children=html.Div(f"select points with the box or lasso tool ({n} samples)", className="probe-note"),
            ),
        ]
    )


def register(app, ctx):
    thumbs: OrderedDict = OrderedDict()
    thumbs_lock = threading.Lock()

    def coords(proj):
        if proj == "pca":
            return ctx.memo(
                ("em-pca",),
                lambda: pca_table(ctx.table("embedding"), ctx.latents(), ctx.study),
                "embedding.parquet",
                "manifest.json",
            )
        return ctx.table("embedding")

    def with_samples(proj):
        def make():
            emb = coords(proj)
            s = ctx.table("samples")
            cols = [c for c in _columns(ctx) if c not in emb.columns]
            return emb.merge(s[["sample_id", *cols]], on="sample_id", how="left")

        return ctx.memo(("em-joined", proj), make, "embedding.parquet", "samples.parquet", "manifest.json")

    @app.callback(
        Output("em-scatter", "figure"),
        Output("em-status", "children"),
        Input("em-proj", "value"),
        Input("em-color", "value"),
        Input("em-walks", "value"),
        Input("em-walk-samples", "value"),
        Input("em-filter-col", "value"),
        Input("em-filter-lo", "value"),
        Input("em-filter-hi", "value"),
        Input("em-find", "value"),
    )
    @ctx.guard(2, err_index=1)
    def scatter(proj, color, walks, walk_samples, fcol, lo, hi, find):
        args = (proj, color, walks, walk_samples, fcol, lo, hi, find)  # the whole answer, memoised per input
        return ctx.memo(
            ("em-scatter-out", repr(args)),
            lambda: _scatter(*args),
            "embedding.parquet",
            "samples.parquet",
            "manifest.json",
        )

    def _scatter(proj, color, walks, walk_samples, fcol, lo, hi, find):
        proj = "pca" if proj == "pca" else "umap"
        walks = [str(t) for t in (walks or [])]
        if len(walks) > MAX_WALK_TARGETS:
            raise EmbeddingInputError(f"walks of: {len(walks)} targets picked; pick at most {MAX_WALK_TARGETS}")
        cols = _columns(ctx)
        if color is not None and color not in cols:
            raise EmbeddingInputError(f"colour: {color!r} is not a samples column; pick one of {cols[:8]}")
        if fcol is not None and fcol not in cols:
            raise EmbeddingInputError(f"filter: {fcol!r} is not a samples column; pick one of {cols[:8]}")
        emb = with_samples(proj)
        base = emb[emb["kind"] == "sample"]
        have = set(emb.loc[emb["kind"] != "sample", "target"])
        unknown = [t for t in walks if t not in have]
        if unknown:
            raise EmbeddingInputError(
                f"walks of: {unknown[0]!r} has no walk points in this embedding; pick a target from the list"
            )
        keep = np.ones(len(base), bool)
        if fcol is not None and (lo is not None or hi is not None):
            v = base[fcol].to_numpy(float)
            keep = (
                np.isfinite(v)
                & (v >= (-np.inf if lo is None else float(lo)))
                & (v <= (np.inf if hi is None else float(hi)))
            )
        found = parse_ids(find, len(ctx.latents()))
        ws = [int(s) for s in walk_samples] if walk_samples else None
        key = ("em-fig", proj, color, tuple(walks), tuple(ws or ()), fcol, lo, hi, tuple(found))

        def make():
            return F.embedding_explorer_dict(
                emb,
                color=color,
                walk_targets=walks,
                walk_samples=ws,
                keep=keep,
                highlight=found,
                axis=proj.upper(),
                unit=_unit(ctx, color),
                height=PLOT_HEIGHT,
            )

        fig = ctx.memo(key, make, "embedding.parquet", "samples.parquet", "manifest.json")
        parts = [f"{len(base)} samples"]
        if not keep.all():
            parts.append(f"{int(keep.sum())} pass the filter on {fcol} (the others are grey)")
        if walks:
            w = emb[(emb["kind"] != "sample") & emb["target"].isin(walks)]
            if ws is not None:
                w = w[w["sample_id"].isin(ws)]
            parts.append(f"walks of {len(walks)} target(s) for {w['sample_id'].nunique()} sample(s)")
        else:
            parts.append("no walks drawn (pick targets under 'walks of')")
        if found:
            parts.append("found: " + ", ".join(map(str, found[:12])) + (" ..." if len(found) > 12 else ""))
        return fig, html.Span("; ".join(parts), id="em-status-text")

    def walk_thumb(sid: int, target: str, alpha: float) -> str:
        key = (sid, target, float(alpha))
        with thumbs_lock:
            if key in thumbs:
                thumbs.move_to_end(key)
                return thumbs[key]
        img = ctx.render([sid], target, [float(alpha)])[0, 0]
        uri = F.img_to_data_uri(img, THUMB_PX)
        with thumbs_lock:
            thumbs[key] = uri
            while len(thumbs) > WALK_THUMBS_KEPT:
                thumbs.popitem(last=False)
        return uri

    @app.callback(
        Output("em-tip", "show"),
        Output("em-tip", "bbox"),
        Output("em-tip", "children"),
        Input("em-scatter", "hoverData"),
    )
    def tip(hover):
        if not hover:
            return False, no_update, no_update
        p = hover["points"][0]
        pt = _point(p)
        if pt is None:
            return False, no_update, no_update
        sid, target, alpha = pt
        try:
            if target is None:
                src, label = ctx.thumb(sid, THUMB_PX), f"sample_id={sid}"
            else:
                src, label = walk_thumb(sid, target, alpha), f"sample_id={sid}, {target}, alpha={alpha:g}"
        except Exception as e:  # noqa: BLE001 - one line in the tooltip instead of an image
            msg = str(e) if isinstance(e, ProbeError) else f"{type(e).__name__}: {e}"
            return True, p["bbox"], html.Div(msg, className="probe-error")
        return (
            True,
            p["bbox"],
            html.Div([html.Img(src=src, id="em-tip-img", width=THUMB_PX), html.Div(label, id="em-tip-label")]),
        )

    @app.callback(
        Output("em-selection", "children"),
        Output("em-selected", "data"),
        Output("em-download-btn", "disabled"),
        Input("em-scatter", "selectedData"),
        prevent_initial_call=True,
    )
    @ctx.guard(3)
    def selection(sel):
        ids = selected_samples(sel)
        if not ids:
            return (
                html.Div(
                    "no samples selected (walk points are not counted)", className="probe-note", id="em-n-selected"
                ),
                [],
                True,
            )

        def make():
            d = ctx.table("samples")
            units = {c: _unit(ctx, c) for c in d.columns if _unit(ctx, c)}
            return html.Div(
                [
                    html.Div(f"{len(ids)} samples selected", id="em-n-selected"),
                    table(d[d["sample_id"].isin(ids)], "em-table", units=units, csv="selected_samples.csv"),
                ]
            )

        return ctx.memo(("em-selection", tuple(ids)), make, "samples.parquet"), ids, False

    @app.callback(
        Output("em-download", "data"),
        Input("em-download-btn", "n_clicks"),
        State("em-selected", "data"),
        prevent_initial_call=True,
    )
    def download(_n, ids):
        ids = [int(i) for i in (ids or [])]
        if not ids:
            return no_update
        return dcc.send_string("sample_id\n" + "".join(f"{i}\n" for i in ids), f"{ctx.study.name}-selection.csv")

    @app.callback(Output("em-neighbours", "children"), Input("em-scatter", "clickData"), prevent_initial_call=True)
    @ctx.guard()
    def click(cd):
        pt = _point(cd["points"][0])
        if pt is None:
            return html.Div("click a sample point", className="probe-note")
        sid = pt[0]
        ids, dist = neighbours(ctx.latents(), sid)
        cells = [
            html.Figure([html.Img(src=ctx.thumb(sid)), html.Figcaption(f"sample {sid} (clicked)")], id="em-clicked")
        ]
        cells += [
            html.Figure(
                [html.Img(src=ctx.thumb(int(i))), html.Figcaption(f"sample {int(i)}, d={d:.2f}")], className="em-nb"
            )
            for i, d in zip(ids, dist)
        ]
        return html.Div(cells, className="row")
