"""Drag: click handle and target points on a generated (or uploaded + inverted) image, run DragGAN / FreeDrag.

Before and after side by side, the handles' live positions, an optional mask region (rectangles drawn on the
image: only they may change), Reset, and an honest verdict after each run from `probe.edit.quality` (handle
distance, change outside the handle region, drift of the model's default measures; a warning when the image
degrades or the handle never moved). Every finished run is saved into the study (`Study.add_edit`), so it
appears in the report. One job at a time: a Run during a run is refused with a message.

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
from ._util import field, graph, int_input

KEY, PATH, NAME = "drag", "/drag", "Drag"
MIN_SIDE = 16  # as probe.edit.invert: smaller images cannot be inverted
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

    filename = None if filename is None else str(filename)[:120]  # echoed in messages
    if not contents or "," not in contents:
        raise UploadError("upload: no file content; choose a PNG or JPEG image")
    if len(contents) > limits.max_upload_bytes * 4 // 3 + 1024:
        raise UploadError(f"upload {filename!r} is over {limits.max_upload_bytes / 2**20:g} MiB; use a smaller image")
    try:
        raw = base64.b64decode(contents.split(",", 1)[1], validate=False)
    except ValueError:
        raise UploadError(f"upload {filename!r} could not be decoded; choose a PNG or JPEG image") from None
    if len(raw) > limits.max_upload_bytes:
        raise UploadError(
            f"upload {filename!r} is {len(raw) / 2**20:.1f} MiB; use an image under "
            f"{limits.max_upload_bytes / 2**20:g} MiB"
        )
    im = _header(raw)
    if im is None:
        raise UploadError(f"upload {filename!r} is not an image; choose a PNG or JPEG file")
    w, h = im.size
    if w * h > limits.max_pixels:
        raise UploadError(
            f"upload {filename!r}: image too large ({w} x {h} px, limit {limits.max_pixels}); scale it down"
        )
    if min(w, h) < MIN_SIDE:
        raise UploadError(f"upload {filename!r} is {w}x{h} pixels; use an image of at least {MIN_SIDE}x{MIN_SIDE}")
    try:
        im.load()
        return np.asarray(im.convert("RGB"))
    except Image.DecompressionBombError:
        raise UploadError(
            f"upload {filename!r}: image too large ({w} x {h} px, limit {limits.max_pixels}); scale it down"
        ) from None
    except Exception:  # noqa: BLE001 - a truncated or corrupt file
        raise UploadError(
            f"upload {filename!r} is not a readable image (truncated or corrupt); choose a PNG or JPEG file"
        ) from None


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
    return torch.from_numpy(lat[sid : sid + 1].copy()), ctx.study.space, {}


def _image(ctx, src: dict) -> torch.Tensor:
    """img [3, H, W] of the current source."""
    lat, space, offsets = _source(ctx, src)
    model = ctx.model()
    with ctx._lock, torch.no_grad(), model.offsets(offsets):
        return model.synthesize(lat, space)[0]


def _offset_site(model, sites) -> str:
    """The model's default extended-inversion site (its zoo entry's `defaults.offset_site`), else "none"."""
    site = model.defaults.offset_site
    return site if site in sites else "none"


def mask_array(boxes, size: int) -> np.ndarray | None:
    """Mask regions (boxes [x0, y0, x1, y1] in image px) -> float32 [size, size], 1 = may change; None for none."""
    if not boxes:
        return None
    m = np.zeros((size, size), np.float32)
    for x0, y0, x1, y1 in boxes:
        xa, xb = sorted((x0, x1))
        ya, yb = sorted((y0, y1))
        xa, ya = max(0, int(math.floor(xa + 0.5))), max(0, int(math.floor(ya + 0.5)))
        xb, yb = min(size, int(math.floor(xb + 0.5)) + 1), min(size, int(math.floor(yb + 0.5)) + 1)
        m[ya:yb, xa:xb] = 1.0
    return m


def boxes_from_relayout(relayout: dict | None, size: int, limits: Limits = LIMITS) -> list | None:
    """Rectangles drawn on the canvas (plotly relayoutData 'shapes') -> boxes [[x0, y0, x1, y1]] clipped to the
    image; None when the relayout is not about shapes."""
    if not relayout or "shapes" not in relayout:
        return None
    out = []
    for sh in relayout["shapes"] or []:
        if not isinstance(sh, dict) or sh.get("type") != "rect":
            continue
        try:
            b = [float(sh[k]) for k in ("x0", "y0", "x1", "y1")]
        except (KeyError, TypeError, ValueError):
            continue
        if not all(math.isfinite(v) for v in b):
            continue
        b = [min(max(v, -0.5), size - 0.5) for v in b]
        if abs(b[2] - b[0]) >= 1 and abs(b[3] - b[1]) >= 1:
            out.append([round(v, 1) for v in b])
    if len(out) > limits.max_points:
        raise ProbeError(f"mask: {len(out)} regions; draw at most {limits.max_points} (Clear mask)")
    return out


def verdict(status: str, trajectory, targets, quality: dict | None, moved_min: float = 0.5) -> tuple[str, str]:
    """An honest one-line verdict on a finished drag -> (level ok | warn | stopped, text).

    status: the drag's own (ok | degraded | stopped); trajectory [S + 1, K, 2]; targets [K, 2]; quality: the
    quality guard's scores (handle_px, outside_change, max_drift, degraded, reason). A handle that moved less than
    `moved_min` px is reported as never moved, whatever the status says."""
    tr = np.asarray(trajectory, float)
    moved = float(np.linalg.norm(tr[-1] - tr[0], axis=1).max()) if len(tr) else 0.0
    dist = float(np.linalg.norm(tr[-1] - np.asarray(targets, float), axis=1).max()) if len(tr) else float("nan")
    q = quality or {}
    if q.get("degraded"):
        return "warn", f"image degraded: {q.get('reason') or 'it changed beyond the quality thresholds'}"
    if status == "stopped":
        return "stopped", f"stopped: handles moved up to {moved:.1f} px, {dist:.1f} px from their targets"
    if moved < moved_min and dist >= moved_min:
        return "warn", f"the handle never moved ({moved:.1f} px); the drag failed: try more steps or another method"
    if status == "ok":
        return "ok", f"ok: every handle reached its target (within {dist:.1f} px), moved up to {moved:.1f} px"
    return "warn", f"not reached: a handle is still {dist:.1f} px from its target (moved up to {moved:.1f} px)"


def outcome(job: dict) -> str:
    """A job's outcome for the counter, the same call as its verdict box: running | finished: ok | finished:
    degraded | finished: not reached | finished: never moved | stopped | stopped: degraded | error | finished."""
    state = job["state"]
    if state in ("running", "error"):
        return state
    stopped = state == "stopped" or job.get("status") == "stopped"
    if job["kind"] != "drag" or "distances" not in job:
        return "stopped" if stopped else "finished: no result" if job["kind"] == "drag" else "finished"
    q = job.get("quality") or {}
    level, text = verdict(job.get("status", "degraded"), job["trajectory"], job["targets"], q)
    word = (
        "degraded"
        if q.get("degraded")
        else "ok"
        if level == "ok"
        else "never moved"
        if text.startswith("the handle never moved")
        else "not reached"
    )
    if stopped:
        return "stopped: degraded" if word == "degraded" else "stopped"
    return f"finished: {word}"


CANVAS_PX = 320


def layout(ctx):
    n = len(ctx.latents())
    sites = list(ctx.model().sites)
    return html.Div(
        [
            html.H2("Drag"),
            dcc.Store(id="dg-src", data={"kind": "sample", "sample_id": 0}),
            dcc.Store(id="dg-points", data={"handles": [], "targets": []}),
            dcc.Store(id="dg-mask", data={"boxes": []}),
            dcc.Store(id="dg-job"),
            dcc.Interval(id="dg-poll", interval=400, disabled=True),
            html.Div(
                [
                    field(
                        "sample_id",
                        int_input("dg-sample", 0, n - 1, debounce=True),
                    ),
                    dcc.Upload(
                        id="dg-upload",
                        children=html.Button("Upload an image to invert", id="dg-upload-btn"),
                        multiple=False,
                        max_size=ctx.limits.max_upload_bytes,
                    ),
                    field(
                        "inversion steps",
                        int_input("dg-inv-steps", 100, ctx.limits.max_steps, lo=1),
                    ),
                    field(
                        "detail offset",
                        dcc.Dropdown(
                            id="dg-offset-site",
                            clearable=False,
                            style={"width": "110px"},
                            value=_offset_site(ctx.model(), sites),
                            options=[{"label": "none", "value": "none"}] + [{"label": s, "value": s} for s in sites],
                        ),
                    ),
                ],
                className="controls",
            ),
            html.Div(
                [
                    field(
                        "method",
                        dcc.RadioItems(
                            id="dg-method",
                            inline=True,
                            value="draggan",
                            options=[
                                {"label": "DragGAN", "value": "draggan"},
                                {"label": "FreeDrag", "value": "freedrag"},
                            ],
                        ),
                    ),
                    field(
                        "max steps",
                        int_input("dg-steps", 50, ctx.limits.max_steps, lo=1),
                    ),
                    field(
                        "click to",
                        dcc.RadioItems(
                            id="dg-tool",
                            inline=True,
                            value="points",
                            options=[
                                {"label": "place points", "value": "points"},
                                {"label": "draw mask region", "value": "mask"},
                            ],
                        ),
                    ),
                    html.Button("Run", id="dg-run"),
                    html.Button("Stop", id="dg-stop"),
                    html.Button("Reset", id="dg-reset", title="clear points, mask, result and messages"),
                    html.Button("Clear points", id="dg-clear"),
                    html.Button("Clear mask", id="dg-clear-mask"),
                ],
                className="controls",
            ),
            html.Div(id="dg-msg"),
            html.Div(id="dg-busy"),
            html.Div("idle", id="dg-counter", className="counter"),
            html.Div(
                [
                    html.Div(
                        [
                            html.H4("before: click a handle, then its target"),
                            graph("dg-canvas"),
                            html.Div(id="dg-points-text"),
                            html.Div(id="dg-mask-text"),
                        ],
                        className="col dg-col",
                    ),
                    html.Div(
                        [html.H4("after"), graph("dg-after", _blank_after()), html.Div(id="dg-live-points")],
                        className="col dg-col",
                    ),
                    html.Div(id="dg-result", className="col dg-col"),
                ],
                className="row",
            ),
        ]
    )


def _blank_after():
    return F.drag_canvas(np.full((64, 64, 3), 245, np.uint8), title="run a drag to see the result here", size=CANVAS_PX)


def _drag_job(ctx, src, handles, targets, method, steps, mask, boxes):
    from probe.edit.drag import DragResult, DragStep, make_drag
    from probe.edit.quality import QualityGuard, edit_record

    lat, space, offsets = _source(ctx, src)
    model = ctx.model()
    before = _image(ctx, src)
    drag = make_drag(method, max_steps=int(steps))
    items = QualityGuard().watch(
        drag,
        model,
        lat,
        space,
        handles,
        targets,
        drag.steps(model, lat, space, handles, targets, mask=mask, offsets=offsets),
        offsets=offsets,
    )

    def fn(job):
        traj = [np.asarray(handles, float)]
        stopping = False
        while True:
            if job["stop"].is_set() and not stopping:
                drag.stop()  # the generator finishes with the current latent, status "stopped"
                stopping = True
            with ctx._lock:
                item = next(items, None)
            if item is None:
                break
            if isinstance(item, DragStep):
                traj.append(np.asarray(item.points, float))
                q = item.quality.as_dict() if item.quality is not None else {}
                job.update(
                    step=item.step + 1,
                    loss=float(item.loss),
                    img=item.img.detach(),
                    points=np.asarray(item.points, float).tolist(),
                    trajectory=np.stack(traj),
                    outside=q.get("outside_change"),
                )
            elif isinstance(item, DragResult):
                q = item.quality.as_dict() if item.quality is not None else {}
                job.update(
                    img=item.img.detach(),
                    trajectory=item.trajectory,
                    steps=item.steps,
                    points=np.asarray(item.points, float).tolist(),
                    seconds=item.seconds,
                    distances=item.distances.tolist(),
                    status=item.status,
                    reason=item.reason,
                    quality=q,
                    latent=item.latent.detach(),
                    space=item.space,
                )
                row = edit_record(item)
                row.update(
                    model=ctx.study.model_name,
                    sample_id=src.get("sample_id") if src.get("kind") == "sample" else None,
                    params={**row["params"], "mask_boxes": boxes or []},
                )
                try:
                    job["saved"] = ctx.study.add_edit(row, F.img_to_png_bytes(before), F.img_to_png_bytes(item.img))
                except ProbeError as e:
                    job["save_error"] = str(e)
        items.close()

    return fn


def _invert_job(ctx, photo, steps, offset_site):
    from probe.edit.invert import Inversion, InversionResult, InversionStep

    inv = Inversion(max_steps=int(steps), offset_site=offset_site, offset_steps=OFFSET_STEPS)

    def fn(job):
        model = ctx.model()
        it = inv.steps(model, photo)
        while True:
            if job["stop"].is_set():
                inv.stop()  # the generator ends after this step with the current latent (status "stopped")
            with ctx._lock:  # one step at a time holds the model (its hooks must not mix with others)
                item = next(it, None)
            if item is None:
                break
            if isinstance(item, InversionStep):
                job.update(step=item.step + 1, loss=float(item.loss))
            elif isinstance(item, InversionResult):
                job.update(
                    latent=item.latent.detach(),
                    space=item.space,
                    img=item.img.detach(),
                    psnr=item.psnr,
                    offsets=item.offsets,
                )

    return fn


def _fmt(v, spec=".1f") -> str:
    return "n/a" if v is None or not math.isfinite(float(v)) else format(float(v), spec)


def _result(job) -> html.Div:
    """The verdict and quality numbers of a finished drag job."""
    q = job.get("quality") or {}
    level, text = verdict(job.get("status", "degraded"), job["trajectory"], job["targets"], q)
    cls = {"ok": "probe-ok", "stopped": "probe-note", "warn": "probe-warning"}[level]
    rows = [
        ("steps", f"{job['steps']} in {job['seconds']:.1f} s"),
        ("distance to target (px)", ", ".join(_fmt(d) for d in job["distances"])),
        ("change outside the handle region", f"{_fmt(q.get('outside_change'))} / 255"),
        ("largest measure drift", f"{_fmt(q.get('max_drift'), '.2f')} of its range"),
    ]
    drift = sorted(
        ((k[6:], v) for k, v in q.items() if k.startswith("drift_") and v is not None and math.isfinite(float(v))),
        key=lambda kv: -float(kv[1]),
    )
    rows += [(f"drift of {k}", _fmt(v, ".2f")) for k, v in drift[:4]]  # the largest four
    saved = (
        html.Div(f"saved into the study as {job['saved']} (edits table)", id="dg-saved")
        if job.get("saved")
        else html.Div(f"not saved: {job['save_error']}", className="probe-warning", id="dg-saved")
        if job.get("save_error")
        else None
    )
    return html.Div(
        [
            html.Div(text, className=cls, id="dg-verdict"),
            html.Table([html.Tr([html.Td(k), html.Td(v)]) for k, v in rows], className="kv", id="dg-quality"),
            saved,
        ]
    )


def _points_text(pts) -> str:
    return f"{len(pts['handles'])} handle(s), {len(pts['targets'])} target(s): " + "; ".join(
        f"({h[0]:g}, {h[1]:g}) -> ({t[0]:g}, {t[1]:g})" for h, t in zip(pts["handles"], pts["targets"])
    )


def register(app, ctx):
    @app.callback(
        Output("dg-src", "data"),
        Output("dg-job", "data", allow_duplicate=True),
        Output("dg-msg", "children"),
        Output("dg-poll", "disabled", allow_duplicate=True),
        Input("dg-sample", "value"),
        Input("dg-upload", "contents"),
        State("dg-upload", "filename"),
        State("dg-inv-steps", "value"),
        State("dg-offset-site", "value"),
        State("dg-job", "data"),
        prevent_initial_call=True,
    )
    @ctx.guard(4, err_index=2)
    def source(sid, contents, filename, inv_steps, offset_site, jid):
        from dash import ctx as cbctx

        if cbctx.triggered_id == "dg-upload":
            photo = decode_upload(contents, filename, ctx.limits)
            inv_steps = bounded_steps(inv_steps, "inversion steps", ctx.limits)
            site = None if offset_site in (None, "none") else str(offset_site)
            if site is not None and site not in ctx.model().sites:
                raise ProbeError(
                    f"detail offset: site {site!r} does not exist; use none or one of {list(ctx.model().sites)}"
                )
            busy = ctx.job(jid)
            if busy and busy["state"] == "running":
                raise ProbeError(f"a {busy['kind']} is already running; press Stop or wait before uploading")
            total = inv_steps + (OFFSET_STEPS if site else 0)
            jid = ctx.start_job(_invert_job(ctx, photo, inv_steps, site), kind="invert", total=total)
            return (
                {"kind": "upload", "job": jid},
                jid,
                html.Div(f"inverting {filename} ...", className="probe-note"),
                False,
            )
        if sid is None or not 0 <= int(sid) < len(ctx.latents()):
            raise ProbeError(f"sample_id must be an integer in 0..{len(ctx.latents()) - 1}")
        return {"kind": "sample", "sample_id": int(sid)}, no_update, None, no_update

    @app.callback(
        Output("dg-points", "data"),
        Input("dg-canvas", "clickData"),
        Input("dg-clear", "n_clicks"),
        Input("dg-reset", "n_clicks"),
        Input("dg-src", "data"),
        State("dg-points", "data"),
        State("dg-tool", "value"),
        prevent_initial_call=True,
    )
    def points(click, _clear, _reset, _src, pts, tool):
        from dash import ctx as cbctx

        if cbctx.triggered_id != "dg-canvas":
            return {"handles": [], "targets": []}
        if not click or tool == "mask":
            raise PreventUpdate
        p = click["points"][0]
        xy = [float(round(p["x"])), float(round(p["y"]))]
        pts = pts or {"handles": [], "targets": []}
        key = "handles" if len(pts["handles"]) == len(pts["targets"]) else "targets"
        pts[key] = [*pts[key], xy]
        return pts

    @app.callback(
        Output("dg-mask", "data"),
        Output("dg-mask-text", "children"),
        Input("dg-canvas", "relayoutData"),
        Input("dg-clear-mask", "n_clicks"),
        Input("dg-reset", "n_clicks"),
        Input("dg-src", "data"),
        State("dg-mask", "data"),
        prevent_initial_call=True,
    )
    @ctx.guard(2, err_index=1)
    def mask(relayout, _clear, _reset, src, cur):
        from dash import ctx as cbctx

        if cbctx.triggered_id != "dg-canvas":
            return {"boxes": []}, ""
        img = (
            _image(ctx, src)
            if src.get("kind") != "upload" or (ctx.job(src.get("job")) or {}).get("state") == "done"
            else None
        )
        boxes = boxes_from_relayout(relayout, img.shape[-1] if img is not None else 1 << 20, ctx.limits)
        if boxes is None:
            raise PreventUpdate
        txt = (
            f"mask: {len(boxes)} region(s) may change, the rest is held"
            if boxes
            else "mask: none (the whole image may change)"
        )
        return {"boxes": boxes}, html.Span(txt, id="dg-mask-count")

    @app.callback(
        Output("dg-canvas", "figure"),
        Output("dg-points-text", "children"),
        Input("dg-points", "data"),
        Input("dg-src", "data"),
        Input("dg-mask", "data"),
        Input("dg-tool", "value"),
    )
    @ctx.guard(2, err_index=1)
    def canvas(pts, src, mask_data, tool):
        pts = pts or {"handles": [], "targets": []}
        if src.get("kind") == "upload":
            job = ctx.job(src.get("job"))
            if not job or "img" not in job or job["state"] == "running":
                return F.drag_canvas(np.full((64, 64, 3), 230, np.uint8), title="inverting ...", size=CANVAS_PX), ""
        img = _image(ctx, src)
        fig = F.drag_canvas(img, pts["handles"], pts["targets"][: len(pts["handles"])], size=CANVAS_PX)
        F.drag_mask_regions(fig, (mask_data or {}).get("boxes") or [], draw=tool == "mask")
        return fig, _points_text(pts)

    @app.callback(
        Output("dg-job", "data"),
        Output("dg-poll", "disabled"),
        Output("dg-result", "children"),
        Output("dg-busy", "children"),
        Output("dg-msg", "children", allow_duplicate=True),
        Output("dg-live-points", "children", allow_duplicate=True),
        Input("dg-run", "n_clicks"),
        State("dg-src", "data"),
        State("dg-points", "data"),
        State("dg-method", "value"),
        State("dg-steps", "value"),
        State("dg-mask", "data"),
        State("dg-job", "data"),
        prevent_initial_call=True,
    )
    @ctx.guard(6, err_index=3)
    def run(_n, src, pts, method, steps, mask_data, jid):
        busy = ctx.job(jid)
        if busy and busy["state"] == "running":  # one job at a time: a second Run is refused, visibly
            what = "inversion" if busy["kind"] == "invert" else busy.get("method", "drag")
            return (
                no_update,
                no_update,
                no_update,
                html.Div(
                    f"refused: a {what} is already running (step {busy['step']} / {busy['total']}); "
                    "press Stop or wait until it ends",
                    className="probe-warning",
                    id="dg-refused",
                ),
                no_update,
                no_update,
            )
        handles, targets = bounded_points(pts, ctx.limits)
        steps = bounded_steps(steps, "max steps", ctx.limits)
        boxes = (mask_data or {}).get("boxes") or []
        m = mask_array(boxes, int(_image(ctx, src).shape[-1])) if boxes else None
        fn = _drag_job(ctx, src, handles, targets, method, steps, m, boxes)
        jid = ctx.start_job(fn, kind="drag", total=steps, method=method, handles=handles, targets=targets)
        return jid, False, None, None, None, ""

    @app.callback(
        Output("dg-stop", "n_clicks"), Input("dg-stop", "n_clicks"), State("dg-job", "data"), prevent_initial_call=True
    )
    def stop(n, jid):
        job = ctx.job(jid)
        if job:
            job["stop"].set()
        raise PreventUpdate

    @app.callback(
        Output("dg-result", "children", allow_duplicate=True),
        Output("dg-busy", "children", allow_duplicate=True),
        Output("dg-msg", "children", allow_duplicate=True),
        Output("dg-after", "figure", allow_duplicate=True),
        Output("dg-live-points", "children", allow_duplicate=True),
        Output("dg-counter", "children", allow_duplicate=True),
        Input("dg-reset", "n_clicks"),
        State("dg-job", "data"),
        prevent_initial_call=True,
    )
    def reset(_n, jid):
        job = ctx.job(jid)
        if job and job["state"] == "running":
            job["stop"].set()
        return None, None, None, _blank_after(), "", "idle"

    @app.callback(
        Output("dg-counter", "children"),
        Output("dg-canvas", "figure", allow_duplicate=True),
        Output("dg-after", "figure"),
        Output("dg-live-points", "children"),
        Output("dg-poll", "disabled", allow_duplicate=True),
        Output("dg-result", "children", allow_duplicate=True),
        Input("dg-poll", "n_intervals"),
        State("dg-job", "data"),
        State("dg-points", "data"),
        prevent_initial_call=True,
    )
    def poll(_n, jid, pts):
        job = ctx.job(jid)
        if not job:
            return "idle", no_update, no_update, no_update, True, no_update
        running = job["state"] == "running"
        what = "inversion" if job["kind"] == "invert" else job.get("method", "drag")
        loss = f", loss {job['loss']:.4g}" if "loss" in job else ""
        counter = f"{what}: step {job['step']} / {job['total']}{loss} ({outcome(job)})"
        canvas, after, live, result = no_update, no_update, no_update, no_update
        if job["kind"] == "drag":
            if "img" in job:
                after = F.drag_canvas(
                    job["img"], job.get("points", job["handles"]), job["targets"], job.get("trajectory"), size=CANVAS_PX
                )
            if "points" in job:
                live = html.Span(
                    "handles now: "
                    + "; ".join(
                        f"({p[0]:.1f}, {p[1]:.1f}), {math.dist(p, t):.1f} px from ({t[0]:g}, {t[1]:g})"
                        for p, t in zip(job["points"], job["targets"])
                    ),
                    id="dg-live-text",
                )
        elif not running and "img" in job:
            canvas = F.drag_canvas(
                job["img"],
                (pts or {}).get("handles", []),
                [],
                size=CANVAS_PX,
                title=f"inverted (psnr {job['psnr']:.1f} dB)" if "psnr" in job else None,
            )
        if job["state"] == "error":
            result = html.Div(job["error"], className="probe-error", id="dg-error")
        elif not running and job["kind"] == "drag" and "distances" in job:
            result = _result(job)
        elif not running and job["kind"] == "drag":
            result = html.Div(
                f"{job['state']} after {job['step']} steps (no result)", className="probe-warning", id="dg-verdict"
            )
        elif not running:
            result = html.Div(
                f"inversion {job['state']}: psnr {job.get('psnr', float('nan')):.1f} dB; "
                "click points on the inverted image",
                id="dg-inverted",
            )
        return counter, canvas, after, live, not running, result
