"""Edits: a live editor (original at alpha = 0 beside the edited image) over named directions, and a gallery.

Directions are named by what they do, read from the direction set (its method's display label, the measure an
InterFaceGAN boundary was fitted for) and from the evaluation table (the measure the walk moves most, its slope
per unit alpha in the measure's unit, specificity). The live editor sits at the top, above the fold.
"""

from __future__ import annotations

import math

import torch
from dash import Input, Output, dcc, html

from probe import figures as F
from probe.directions import registry
from probe.errors import ProbeError
from probe.walks import direction

from ._util import field, graph, int_input

KEY, PATH, NAME = "edits", "/edits", "Edits"
FIRST = ("dplase", "interfacegan")
GALLERY_ALPHAS = [-3.0, -1.5, 0.0, 1.5, 3.0]
LIVE_PX = 256  # the live editor's images (original and edited), px


class EditInputError(ProbeError):
    """A control of the Edits page holds a value it cannot use; the message names the control."""


def _sets(ctx) -> dict:
    sets = ctx.directions()
    order = registry.ordered([*FIRST, *(ds.method for ds in sets.values())])
    return dict(sorted(sets.items(), key=lambda kv: (order.index(kv[1].method), kv[0])))


def _target(ctx, key: str):
    stem, _, i = (key or "").partition("::")
    sets = ctx.directions()
    if stem not in sets or not i.isdigit() or int(i) >= len(sets[stem]):
        raise EditInputError(f"direction {key!r} is not in this study; pick one from the list")
    return direction(sets[stem], int(i), source=stem)


def _num(v, fmt: str = ".3g") -> str:
    return "n/a" if v is None or not math.isfinite(float(v)) else format(float(v), fmt)


def describe(ctx) -> dict[str, dict]:
    """Per direction ("stem::i"): label, method label, target measure, slope, unit, specificity, dlogp drift.

    The measured effect comes from the evaluation table's target-measure row of the direction's walk
    (`probe evaluate`); a direction that was never walked is labelled with what its set records (the measure an
    InterFaceGAN boundary was fitted for) and "not walked"."""

    def make():
        ev = ctx.table("evaluation") if ctx.has("evaluation") else None
        rows = {}
        if ev is not None and len(ev):
            tgt = (
                ev[ev["is_target"]]
                if "is_target" in ev.columns
                else ev.loc[ev.assign(a=ev["slope"].abs()).groupby("target")["a"].idxmax()]
            )
            rows = {str(r["target"]): r for _, r in tgt.iterrows()}
        out = {}
        for stem, ds in _sets(ctx).items():
            mlabel = registry.label(ds.method)
            for i, name in enumerate(ds.names):
                info = ds.info[i] if i < len(ds.info) else {}
                r = rows.get(f"{stem}/{name}")
                fitted = info.get("measure")
                d = {"stem": stem, "name": name, "method": mlabel, "fitted": fitted, "walked": r is not None}
                if r is not None:
                    m = str(r["measure"])
                    unit = (ctx.study.measure_info.get(m) or {}).get("unit") or ""
                    d.update(
                        measure=m,
                        unit=unit,
                        slope=float(r["slope"]),
                        effect_std=float(r["effect_std"]) if "effect_std" in r else float("nan"),
                        specificity=float(r["specificity"]),
                        dlogp=float(r["dlogp_abs_mean"]),
                    )
                    per = f" {unit}" if unit else ""
                    d["label"] = (
                        f"{mlabel}: {m} {_num(d['slope'], '+.3g')}{per} per alpha "
                        f"(specificity {_num(d['specificity'], '.2f')}) [{stem}/{name}]"
                    )
                else:
                    what = f"fitted for {fitted}" if fitted else "not walked in this study"
                    d["label"] = f"{mlabel}: {name} ({what}) [{stem}/{name}]"
                out[f"{stem}::{i}"] = d
        return out

    return ctx.memo(("ed-describe",), make, "directions", "evaluation.parquet", "manifest.json")


def _info_box(d: dict) -> html.Div:
    """What the study measured for one direction."""
    rows = [("method", d["method"]), ("direction", f"{d['stem']}/{d['name']}")]
    if d.get("fitted"):
        rows.append(("fitted for", d["fitted"]))
    if d["walked"]:
        per = f" {d['unit']}" if d["unit"] else ""
        rows += [
            ("moves most", d["measure"]),
            ("slope", f"{_num(d['slope'], '+.3g')}{per} per alpha"),
            ("slope / sd of the measure", _num(d["effect_std"], "+.3g")),
            ("specificity", _num(d["specificity"], ".2f")),
            ("mean |dlogp|", _num(d["dlogp"])),
        ]
    else:
        rows.append(("measured effect", "not walked in this study (no evaluation row)"))
    return html.Table([html.Tr([html.Td(k), html.Td(v)]) for k, v in rows], className="kv", id="ed-dir-info-table")


def layout(ctx):
    sets = _sets(ctx)
    if not sets:
        return html.Div(
            [
                html.H2("Edits"),
                html.Div(
                    [
                        "This study has no direction sets yet; make them with ",
                        html.Code(f"probe discover {ctx.study.path} --method dplase"),
                        " (or --method interfacegan)",
                    ],
                    className="probe-note",
                    id="ed-missing",
                ),
            ]
        )
    n = len(ctx.latents())
    desc = describe(ctx)
    dir_opts = [{"label": d["label"], "value": k} for k, d in desc.items()]
    first = next((k for k, d in desc.items() if d["walked"]), dir_opts[0]["value"])
    missing_methods = [m for m in FIRST if m not in {ds.method for ds in sets.values()}]
    img = {"width": LIVE_PX, "height": LIVE_PX, "style": {"imageRendering": "pixelated", "border": "1px solid #ccc"}}
    return html.Div(
        [
            html.H2("Edits"),
            html.Div(
                [
                    field(
                        "direction",
                        dcc.Dropdown(
                            id="ed-dir",
                            options=dir_opts,
                            value=first,
                            clearable=False,
                            optionHeight=44,
                            style={"width": "560px"},
                        ),
                    ),
                    field(
                        "sample_id",
                        int_input("ed-live-sample", 0, n - 1, debounce=True),
                    ),
                ],
                className="controls",
            ),
            html.Div(
                [
                    html.Label("alpha"),
                    html.Div(
                        dcc.Slider(
                            id="ed-alpha",
                            min=-3,
                            max=3,
                            step=0.25,
                            value=1.5,
                            updatemode="drag",
                            marks={a: f"{a:g}" for a in range(-3, 4)},
                        ),
                        style={"width": "520px"},
                    ),
                ],
                className="controls",
            ),
            html.Div(
                [
                    html.Figure(
                        [
                            html.Img(id="ed-orig-img", **img),
                            html.Figcaption("original (alpha = 0)", id="ed-orig-label"),
                        ],
                        className="ed-cell",
                    ),
                    html.Figure(
                        [html.Img(id="ed-live-img", **img), html.Figcaption(id="ed-live-label")], className="ed-cell"
                    ),
                    html.Div(id="ed-dir-info", style={"flex": "1 1 280px", "minWidth": "260px"}),
                ],
                className="row",
                id="ed-live",
            ),
            html.Div(
                [
                    "No direction set from method(s) "
                    + ", ".join(registry.label(m) for m in missing_methods)
                    + " yet; make one with ",
                    html.Code(f"probe discover {ctx.study.path} --method {missing_methods[0]}"),
                ],
                className="probe-note",
            )
            if missing_methods
            else None,
            html.H3("Gallery"),
            html.Div(
                [
                    field(
                        "direction set",
                        dcc.Dropdown(
                            id="ed-set",
                            options=[
                                {
                                    "label": f"{registry.label(ds.method)}: {stem} ({len(ds)} directions, space {ds.space})",
                                    "value": stem,
                                }
                                for stem, ds in sets.items()
                            ],
                            value=next(iter(sets)),
                            clearable=False,
                            style={"width": "420px"},
                        ),
                    ),
                    field(
                        "sample_id",
                        int_input("ed-sample", 0, n - 1, debounce=True),
                    ),
                ],
                className="controls",
            ),
            html.Div(id="ed-gallery"),
        ]
    )


def _sid(ctx, sid) -> int:
    n = len(ctx.latents())
    try:
        ok = sid is not None and float(sid) == int(sid) and 0 <= int(sid) < n
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        got = "the box is empty or out of range" if sid is None else f"got {sid!r}"
        raise EditInputError(f"sample_id must be an integer in 0..{n - 1} ({got})")
    return int(sid)


def register(app, ctx):
    @app.callback(Output("ed-gallery", "children"), Input("ed-set", "value"), Input("ed-sample", "value"))
    @ctx.guard()
    def gallery(stem, sid):
        sid = _sid(ctx, sid)
        sets = ctx.directions()
        if stem not in sets:
            raise EditInputError(f"direction set {stem!r} is not in this study; pick one from the list")
        ds = sets[stem]
        desc = describe(ctx)
        labels = []
        for i, name in enumerate(ds.names):
            d = desc.get(f"{stem}::{i}", {})
            labels.append(f"{name}: {d['measure']} {_num(d['slope'], '+.2g')}" if d.get("walked") else name)
        imgs = torch.cat([ctx.render([sid], direction(ds, i, source=stem), GALLERY_ALPHAS) for i in range(len(ds))])
        fig = F.image_strip(
            imgs,
            GALLERY_ALPHAS,
            row_labels=labels,
            title=f"{registry.label(ds.method)} ({stem}): sample {sid}, one row per direction",
        )
        return graph("ed-gallery-fig", fig)

    @app.callback(
        Output("ed-orig-img", "src"),
        Output("ed-live-img", "src"),
        Output("ed-live-label", "children"),
        Output("ed-dir-info", "children"),
        Input("ed-dir", "value"),
        Input("ed-live-sample", "value"),
        Input("ed-alpha", "value"),
    )
    @ctx.guard(4, err_index=2)
    def live(key, sid, alpha):
        sid = _sid(ctx, sid)
        t = _target(ctx, key)
        a = 0.0 if alpha is None else float(alpha)
        imgs = ctx.render([sid], t, [0.0, a])[0]
        d = describe(ctx).get(key)
        label = f"{t.name}, sample {sid}, alpha={a:g}"
        if d and d["walked"] and math.isfinite(d["slope"]):
            per = f" {d['unit']}" if d["unit"] else ""
            label += f" (expected {d['measure']} change {_num(d['slope'] * a, '+.3g')}{per})"
        return (
            F.img_to_data_uri(imgs[0], LIVE_PX),
            F.img_to_data_uri(imgs[1], LIVE_PX),
            label,
            _info_box(d) if d else None,
        )
