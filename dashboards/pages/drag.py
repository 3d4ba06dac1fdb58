"""Drag: click handle and target points on a generated (or uploaded + inverted) image, run DragGAN / FreeDrag.

Long work (drag, inversion) runs in a background thread from the app's job registry (`Context.start_job`); the
page keeps the job id in a dcc.Store and polls it with a dcc.Interval; Stop sets the job's stop flag. Steps,
points, upload bytes and pixels are bounded here on the server (`dashboards.limits`), not only in the inputs.
"""
from __future__ import annotations

import base64
import io
import math

import numpy as np
import torch
from dash import Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from probe import figures as F
from probe.errors import ProbeError

from ..limits import LIMITS, Limits
from ._util import field, graph

KEY, PATH, NAME = "drag", "/drag", "Drag"
MIN_SIDE = 16   # as probe.edit.invert: smaller images cannot be inverted
OFFSET_SITES = {"faces": "b2"}  # extended inversion by default: a photo stays recognisable (docs/readme/50-editing.md)
OFFSET_STEPS = 200


class UploadError(ProbeError):
    """An uploaded file is not a usable image."""


def _header(raw: bytes):
    """PNG / JPEG image object with only its header read (size known, pixels not decoded), or None."""
    from PIL import JpegImagePlugin, PngImagePlugin
    for cls in (PngImagePlugin.PngImageFile, JpegImagePlugin.JpegImageFile):
        try:
            return cls(io.BytesIO(raw))
        except Exception:  # noqa: BLE001 - any parse failure of untrusted bytes: not this format
            continue
    return None


def decode_upload(contents: str | None, filename: str | None, limits: Limits = LIMITS) -> np.ndarray:
    """dcc.Upload contents (data URI) -> uint8 [H, W, 3]; UploadError (one line) if it is not a PNG / JPEG image
    or exceeds `limits` (bytes, then pixels from the header, before any decoding)."""
    from PIL import Image
    filename = None if filename is None else str(filename)[:120]   # echoed in messages
    if not contents or "," not in contents:
        raise UploadError("upload: no file content; choose a PNG or JPEG image")
    if len(contents) > limits.max_upload_bytes * 4 // 3 + 1024:
        raise UploadError(f"upload {filename!r} is over {limits.max_upload_bytes / 2**20:g} MiB; use a smaller "
                          "image")
    try:
        raw = base64.b64decode(contents.split(",", 1)[1], validate=False)
    except ValueError:
        raise UploadError(f"upload {filename!r} could not be decoded; choose a PNG or JPEG image") from None
    if len(raw) > limits.max_upload_bytes:
        raise UploadError(f"upload {filename!r} is {len(raw) / 2**20:.1f} MiB; use an image under "
                          f"{limits.max_upload_bytes / 2**20:g} MiB")
    im = _header(raw)
    if im is None:
        raise UploadError(f"upload {filename!r} is not an image; choose a PNG or JPEG file")
    w, h = im.size
    if w * h > limits.max_pixels:
        raise UploadError(f"upload {filename!r}: image too large ({w} x {h} px, limit {limits.max_pixels}); "
                          "scale it down")
    if min(w, h) < MIN_SIDE:
        raise UploadError(f"upload {filename!r} is {w}x{h} pixels; use an image of at least {MIN_SIDE}x{MIN_SIDE}")
    try:
        im.load()
        return np.asarray(im.convert("RGB"))
    except Image.DecompressionBombError:
        raise UploadError(f"upload {filename!r}: image too large ({w} x {h} px, limit {limits.max_pixels}); "
                          "scale it down") from None
    except Exception:  # noqa: BLE001 - a truncated or corrupt file
        raise UploadError(f"upload {filename!r} is not a readable image (truncated or corrupt); choose a PNG or "
                          "JPEG file") from None


def bounded_steps(value, what: str, limits: Limits = LIMITS) -> int:
    """A step count from the browser as an int in 1..limits.max_steps; ProbeError (one line) otherwise."""
    try:
        n = int(value)
        ok = n == float(value) and 1 <= n <= limits.max_steps
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ProbeError(f"{what} must be an integer in 1..{limits.max_steps}; got {value!r}")
    return n


def bounded_points(pts: dict | None, limits: Limits = LIMITS) -> tuple[list, list]:
    """(handles, targets) pairs from the points store: at most limits.max_points, finite numbers."""
    pts = pts or {}
    hs, ts = list(pts.get("handles") or []), list(pts.get("targets") or [])
    k = min(len(hs), len(ts))
    if k == 0:
        raise ProbeError("points: click a handle and then its target on the image before Run")
    if k > limits.max_points:
        raise ProbeError(f"points: {k} handle/target pairs; use at most {limits.max_points} (Clear points)")
    try:
        out = [[[float(v) for v in p] for p in hs[:k]], [[float(v) for v in p] for p in ts[:k]]]
        ok = all(len(p) == 2 and all(math.isfinite(v) for v in p) for side in out for p in side)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ProbeError("points: each handle and target must be two finite numbers (x, y); Clear points")
    return out[0], out[1]


def _source(ctx, src: dict) -> tuple[torch.Tensor, str, dict]:
    """The latent to drag and its feature offsets (an extended inversion's).  # -> latent [1, *shape], space, {site: t}"""
    if src.get("kind") == "upload":
        job = ctx.job(src.get("job"))
        if not job or job.get("state") != "done" or "latent" not in job:
            raise ProbeError("the uploaded image is not inverted yet; wait for the inversion to finish")
        return job["latent"], job["space"], job.get("offsets", {})
    sid = int(src.get("sample_id", 0))
    lat = ctx.latents()
    if not 0 <= sid < len(lat):
        raise ProbeError(f"sample_id must lie in 0..{len(lat) - 1}")
    return torch.from_numpy(lat[sid:sid + 1].copy()), ctx.study.space, {}


def _image(ctx, src: dict) -> torch.Tensor:
    """img [3, H, W] of the current source."""
    lat, space, offsets = _source(ctx, src)
    model = ctx.model()
    with ctx._lock, torch.no_grad(), model.offsets(offsets):
        return model.synthesize(lat, space)[0]


def layout(ctx):
    n = len(ctx.latents())
    sites = list(ctx.model().sites)
    return html.Div([
        html.H2("Drag"),
        dcc.Store(id="dg-src", data={"kind": "sample", "sample_id": 0}),
        dcc.Store(id="dg-points", data={"handles": [], "targets": []}),
        dcc.Store(id="dg-job"),
        dcc.Interval(id="dg-poll", interval=400, disabled=True),
        html.Div([field("sample_id", dcc.Input(id="dg-sample", type="number", value=0, min=0, max=n - 1, step=1,
                                               debounce=True, style={"width": "80px"})),
                  dcc.Upload(id="dg-upload", children=html.Button("Upload an image to invert", id="dg-upload-btn"),
                             multiple=False, max_size=ctx.limits.max_upload_bytes),
                  field("inversion steps", dcc.Input(id="dg-inv-steps", type="number", value=100, min=1,
                                                     max=ctx.limits.max_steps,
                                                     step=1, style={"width": "80px"})),
                  field("detail offset", dcc.Dropdown(
                      id="dg-offset-site", clearable=False, style={"width": "110px"},
                      value=OFFSET_SITES.get(ctx.study.model_name, "none"),
                      options=[{"label": "none", "value": "none"}] + [{"label": s, "value": s} for s in sites]))],
                 className="controls"),
        html.Div(id="dg-msg"),
        html.Div([
            html.Div([graph("dg-canvas"), html.Div("click the image: 1st click = handle, 2nd = its target, ...",
                                                   className="probe-note"),
                      html.Div(id="dg-points-text")], className="col"),
            html.Div([
                html.Div([field("method", dcc.RadioItems(id="dg-method", inline=True, value="draggan", options=[
                              {"label": "DragGAN", "value": "draggan"}, {"label": "FreeDrag", "value": "freedrag"}])),
                          field("max steps", dcc.Input(id="dg-steps", type="number", value=50, min=1,
                                                       max=ctx.limits.max_steps,
                                                       step=1, style={"width": "80px"}))], className="controls"),
                html.Div([html.Button("Run", id="dg-run"), html.Button("Stop", id="dg-stop"),
                          html.Button("Clear points", id="dg-clear")], className="controls"),
                html.Div("idle", id="dg-counter", className="counter"),
                html.Div(id="dg-result"),
            ], className="col"),
        ], className="row"),
    ])


def _drag_job(ctx, src, handles, targets, method, steps):
    from probe.edit.drag import DragResult, DragStep, make_drag
    lat, space, offsets = _source(ctx, src)
    model = ctx.model()
    it = make_drag(method, max_steps=int(steps)).drag(model, lat, space, handles, targets, offsets=offsets)

    def fn(job):
        traj = [np.asarray(handles, float)]
        while not job["stop"].is_set():
            with ctx._lock:
                item = next(it, None)
            if item is None:
                break
            if isinstance(item, DragStep):
                traj.append(np.asarray(item.points, float))
                job.update(step=item.step + 1, loss=float(item.loss), img=item.img.detach(), trajectory=np.stack(traj))
            elif isinstance(item, DragResult):
                job.update(img=item.img.detach(), trajectory=item.trajectory, steps=item.steps,
                           seconds=item.seconds, distances=item.distances.tolist(), converged=item.converged,
                           latent=item.latent.detach(), space=item.space)
        it.close()
    return fn


def _invert_job(ctx, photo, steps, offset_site):
    from probe.edit.invert import invert

    def fn(job):
        model = ctx.model()

        def cb(step, loss):
            job.update(step=int(step) + 1, loss=float(loss))
            if job["stop"].is_set():
                raise ProbeError("inversion stopped")
        with ctx._lock:  # inversion holds the model for its whole run (its hooks must not mix with others)
            res = invert(model, photo, steps=int(steps), callback=cb, offset_site=offset_site,
                         offset_steps=OFFSET_STEPS)
        job.update(latent=res.latent.detach(), space=res.space, img=res.img.detach(), psnr=res.psnr,
                   offsets=res.offsets)
    return fn


def register(app, ctx):
    @app.callback(Output("dg-src", "data"), Output("dg-job", "data", allow_duplicate=True),
                  Output("dg-msg", "children"), Output("dg-poll", "disabled", allow_duplicate=True),
                  Input("dg-sample", "value"), Input("dg-upload", "contents"), State("dg-upload", "filename"),
                  State("dg-inv-steps", "value"), State("dg-offset-site", "value"), prevent_initial_call=True)
    @ctx.guard(4, err_index=2)
    def source(sid, contents, filename, inv_steps, offset_site):
        from dash import ctx as cbctx
        if cbctx.triggered_id == "dg-upload":
            photo = decode_upload(contents, filename, ctx.limits)
            inv_steps = bounded_steps(inv_steps, "inversion steps", ctx.limits)
            site = None if offset_site in (None, "none") else str(offset_site)
            if site is not None and site not in ctx.model().sites:
                raise ProbeError(f"detail offset: site {site!r} does not exist; use none or one of "
                                 f"{list(ctx.model().sites)}")
            total = inv_steps + (OFFSET_STEPS if site else 0)
            jid = ctx.start_job(_invert_job(ctx, photo, inv_steps, site), kind="invert", total=total)
            return {"kind": "upload", "job": jid}, jid, html.Div(f"inverting {filename} ...",
                                                                 className="probe-note"), False
        if sid is None or not 0 <= int(sid) < len(ctx.latents()):
            raise ProbeError(f"sample_id must be an integer in 0..{len(ctx.latents()) - 1}")
        return {"kind": "sample", "sample_id": int(sid)}, no_update, None, no_update

    @app.callback(Output("dg-points", "data"), Input("dg-canvas", "clickData"), Input("dg-clear", "n_clicks"),
                  Input("dg-src", "data"), State("dg-points", "data"), prevent_initial_call=True)
    def points(click, _clear, _src, pts):
        from dash import ctx as cbctx
        if cbctx.triggered_id != "dg-canvas" or not click:
            return {"handles": [], "targets": []}
        p = click["points"][0]
        xy = [float(round(p["x"])), float(round(p["y"]))]
        pts = pts or {"handles": [], "targets": []}
        key = "handles" if len(pts["handles"]) == len(pts["targets"]) else "targets"
        pts[key] = [*pts[key], xy]
        return pts

    @app.callback(Output("dg-canvas", "figure"), Output("dg-points-text", "children"), Input("dg-points", "data"),
                  Input("dg-src", "data"))
    @ctx.guard(2, err_index=1)
    def canvas(pts, src):
        pts = pts or {"handles": [], "targets": []}
        if src.get("kind") == "upload":
            job = ctx.job(src.get("job"))
            if not job or "img" not in job:
                return F.drag_canvas(np.full((64, 64, 3), 230, np.uint8), title="inverting ..."), ""
        img = _image(ctx, src)
        txt = f"{len(pts['handles'])} handle(s), {len(pts['targets'])} target(s): " + "; ".join(
            f"({h[0]:g}, {h[1]:g}) -> ({t[0]:g}, {t[1]:g})" for h, t in zip(pts["handles"], pts["targets"]))
        return F.drag_canvas(img, pts["handles"], pts["targets"][:len(pts["handles"])]), txt

    @app.callback(Output("dg-job", "data"), Output("dg-poll", "disabled"), Output("dg-result", "children"),
                  Input("dg-run", "n_clicks"), State("dg-src", "data"), State("dg-points", "data"),
                  State("dg-method", "value"), State("dg-steps", "value"), prevent_initial_call=True)
    @ctx.guard(3, err_index=2)
    def run(_n, src, pts, method, steps):
        handles, targets = bounded_points(pts, ctx.limits)
        steps = bounded_steps(steps, "max steps", ctx.limits)
        fn = _drag_job(ctx, src, handles, targets, method, steps)
        jid = ctx.start_job(fn, kind="drag", total=steps, method=method, handles=handles, targets=targets)
        return jid, False, None

    @app.callback(Output("dg-stop", "n_clicks"), Input("dg-stop", "n_clicks"), State("dg-job", "data"),
                  prevent_initial_call=True)
    def stop(n, jid):
        job = ctx.job(jid)
        if job:
            job["stop"].set()
        raise PreventUpdate

    @app.callback(Output("dg-counter", "children"), Output("dg-canvas", "figure", allow_duplicate=True),
                  Output("dg-poll", "disabled", allow_duplicate=True),
                  Output("dg-result", "children", allow_duplicate=True),
                  Input("dg-poll", "n_intervals"), State("dg-job", "data"), prevent_initial_call=True)
    def poll(_n, jid):
        job = ctx.job(jid)
        if not job:
            return "idle", no_update, True, no_update
        running = job["state"] == "running"
        what = "inversion" if job["kind"] == "invert" else job.get("method", "drag")
        loss = f", loss {job['loss']:.4g}" if "loss" in job else ""
        counter = f"{what}: step {job['step']} / {job['total']}{loss} ({job['state']})"
        fig = no_update
        if "img" in job:
            if job["kind"] == "drag":
                fig = F.drag_canvas(job["img"], job["handles"], job["targets"], job.get("trajectory"))
            else:
                fig = F.drag_canvas(job["img"], title=f"inverted (psnr {job['psnr']:.1f} dB)" if "psnr" in job
                                    else None)
        result = no_update
        if job["state"] == "error":
            result = html.Div(job["error"], className="probe-error", id="dg-error")
        elif not running and job["kind"] == "drag" and "distances" in job:
            result = html.Div(f"{job['state']}: {job['steps']} steps in {job['seconds']:.1f} s; final distance to "
                              f"target (px): " + ", ".join(f"{d:.1f}" for d in job["distances"]), id="dg-done")
        elif not running and job["kind"] == "drag":
            result = html.Div(f"{job['state']} after {job['step']} steps", id="dg-done")
        elif not running:
            result = html.Div(f"inversion {job['state']}: psnr {job.get('psnr', float('nan')):.1f} dB; "
                              "click points on the inverted image", id="dg-inverted")
        return counter, fig, not running, result
