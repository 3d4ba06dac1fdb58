"""Edits: DP-LaSE and InterFaceGAN edit galleries (any DirectionSet), live alpha slider re-rendering one sample."""
from __future__ import annotations

import torch
from dash import Input, Output, dcc, html

from probe import figures as F
from probe.errors import ProbeError
from probe.walks import direction

from ._util import field, graph

KEY, PATH, NAME = "edits", "/edits", "Edits"
FIRST = ("dplase", "interfacegan")
GALLERY_ALPHAS = [-3.0, -1.5, 0.0, 1.5, 3.0]


def _sets(ctx) -> dict:
    sets = ctx.directions()
    return dict(sorted(sets.items(), key=lambda kv: (kv[1].method not in FIRST, FIRST.index(kv[1].method)
                                                     if kv[1].method in FIRST else 0, kv[0])))


def _target(ctx, key: str):
    stem, _, i = key.partition("::")
    sets = ctx.directions()
    if stem not in sets or not i.isdigit() or int(i) >= len(sets[stem]):
        raise ProbeError(f"direction {key!r} is not in this study; pick one from the list")
    return direction(sets[stem], int(i), source=stem)


def layout(ctx):
    sets = _sets(ctx)
    if not sets:
        return html.Div([html.H2("Edits"), html.Div(["This study has no direction sets yet; make them with ",
                                                     html.Code(f"probe discover {ctx.study.path} --method dplase"),
                                                     " (or --method interfacegan)"], className="probe-note",
                                                    id="ed-missing")])
    n = len(ctx.latents())
    dir_opts = [{"label": f"{ds.method}/{name} ({stem})", "value": f"{stem}::{i}"}
                for stem, ds in sets.items() for i, name in enumerate(ds.names)]
    missing_methods = [m for m in FIRST if m not in {ds.method for ds in sets.values()}]
    return html.Div([
        html.H2("Edits"),
        html.Div(["No direction set from method(s) " + ", ".join(missing_methods) + " yet; make one with ",
                  html.Code(f"probe discover {ctx.study.path} --method {missing_methods[0]}")],
                 className="probe-note") if missing_methods else None,
        html.H3("Gallery"),
        html.Div([field("direction set", dcc.Dropdown(id="ed-set", options=[
                      {"label": f"{stem} ({ds.method}, {len(ds)} directions, space {ds.space})", "value": stem}
                      for stem, ds in sets.items()], value=next(iter(sets)), clearable=False,
                      style={"width": "380px"})),
                  field("sample_id", dcc.Input(id="ed-sample", type="number", value=0, min=0, max=n - 1, step=1,
                                               debounce=True, style={"width": "80px"}))], className="controls"),
        html.Div(id="ed-gallery"),
        html.H3("Live edit"),
        html.Div([field("direction", dcc.Dropdown(id="ed-dir", options=dir_opts, value=dir_opts[0]["value"],
                                                  clearable=False, style={"width": "380px"})),
                  field("sample_id", dcc.Input(id="ed-live-sample", type="number", value=0, min=0, max=n - 1,
                                               step=1, debounce=True, style={"width": "80px"}))],
                 className="controls"),
        html.Div(dcc.Slider(id="ed-alpha", min=-3, max=3, step=0.25, value=0, updatemode="drag",
                            marks={a: f"{a:g}" for a in range(-3, 4)}), style={"maxWidth": "520px"}),
        html.Div([html.Img(id="ed-live-img", width=192), html.Div(id="ed-live-label")], className="row"),
    ])


def register(app, ctx):
    @app.callback(Output("ed-gallery", "children"), Input("ed-set", "value"), Input("ed-sample", "value"))
    @ctx.guard()
    def gallery(stem, sid):
        if sid is None:
            raise ProbeError(f"sample_id must be an integer in 0..{len(ctx.latents()) - 1}")
        sets = ctx.directions()
        if stem not in sets:
            raise ProbeError(f"direction set {stem!r} is not in this study; pick one from the list")
        ds = sets[stem]
        imgs = torch.cat([ctx.render([int(sid)], direction(ds, i, source=stem), GALLERY_ALPHAS)
                          for i in range(len(ds))])
        fig = F.image_strip(imgs, GALLERY_ALPHAS, row_labels=list(ds.names),
                            title=f"{ds.method}: sample {int(sid)}, one row per direction")
        return graph("ed-gallery-fig", fig)

    @app.callback(Output("ed-live-img", "src"), Output("ed-live-label", "children"), Input("ed-dir", "value"),
                  Input("ed-live-sample", "value"), Input("ed-alpha", "value"))
    @ctx.guard(2, err_index=1)
    def live(key, sid, alpha):
        if sid is None:
            raise ProbeError(f"sample_id must be an integer in 0..{len(ctx.latents()) - 1}")
        t = _target(ctx, key)
        img = ctx.render([int(sid)], t, [float(alpha)])[0, 0]
        return F.img_to_data_uri(img, 192), f"{t.name}, sample {int(sid)}, alpha={float(alpha):g}"
