"""Server-side bounds of the dashboard (dashboards.limits): request bodies, upload pixels, drag / inversion steps,
drag points, one job per browser session and per model, the job time limit. Callbacks are driven through the real
Flask server with its test client (what the browser POSTs), so every bound is checked on the server."""

import base64
import json
import struct
import time
import zlib

import psutil
import pytest

from benchmarks.load_dashboard import Callback
from dashboards.app import create_app
from dashboards.limits import LIMITS, MAX_PIXELS, MAX_REQUEST_BYTES, MAX_STEPS, Limits
from dashboards.pages.drag import UploadError, bounded_steps, decode_upload
from probe.errors import ProbeError

RUN = "..dg-job.data...dg-poll.disabled...dg-result.children.."  # the Run button's callback
POINTS = {"handles": [[10.0, 12.0]], "targets": [[20.0, 18.0]]}


def png(w: int, h: int) -> bytes:
    """A valid all-black 1-bit greyscale PNG of w x h pixels (small file: the rows compress to almost nothing)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    comp = zlib.compressobj(9)
    row = bytes(1 + (w + 7) // 8)
    idat = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0))
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


def uri(raw: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(raw).decode()


def post(client, app, output: str, values: dict, changed: list[str] | None = None) -> dict:
    r = client.post("/_dash-update-component", json=Callback(app, output).payload(values, changed))
    assert r.status_code == 200, r.data[:300]
    return r.get_json()


def run_values(steps, points=POINTS) -> dict:
    return {
        "dg-src.data": {"kind": "sample", "sample_id": 0},
        "dg-points.data": points,
        "dg-method.value": "draggan",
        "dg-steps.value": steps,
    }


def message(resp: dict) -> str:
    """Text of the probe error box in a callback response ('' if none)."""

    def find(x):
        if isinstance(x, dict):
            if "probe-error" in str(x.get("props", {}).get("className", "")):
                return x["props"]["children"]
            for v in x.values():
                if (m := find(v)) is not None:
                    return m
        elif isinstance(x, list):
            for v in x:
                if (m := find(v)) is not None:
                    return m
        return None

    return find(resp) or ""


def stop_all(ctx):
    for j in list(ctx.jobs.values()):
        j["stop"].set()
        j["thread"].join(30)


class CountingStream:
    """A seekable request body of `n` bytes produced on demand; counts what the server reads."""

    def __init__(self, n: int):
        self.n, self.pos, self.read_bytes = n, 0, 0

    def tell(self) -> int:
        return self.pos

    def seek(self, off: int, whence: int = 0) -> int:
        self.pos = off if whence == 0 else self.n + off if whence == 2 else self.pos + off
        return self.pos

    def read(self, size: int = -1) -> bytes:
        left = self.n - self.pos
        size = min(left if size is None or size < 0 else min(size, left), 1 << 20)
        self.pos += size
        self.read_bytes += size
        return b" " * size

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


@pytest.fixture(scope="module")
def limits_study(tiny_study, tmp_path_factory):
    """A copy of tiny_study: the Drag page saves every finished run into its study (edits table)."""
    import shutil

    path = tmp_path_factory.mktemp("limits") / "study"
    shutil.copytree(tiny_study.path, path)
    return path


@pytest.fixture(scope="module")
def app(limits_study):
    return create_app(limits_study)


def test_request_body_over_the_cap_is_refused_unread(app):
    """A 200 MB POST is answered 413 before the server reads it: no byte read, RSS does not grow."""
    proc = psutil.Process()
    body = CountingStream(200 * 2**20)
    rss0 = proc.memory_info().rss
    r = app.server.test_client().post(
        "/_dash-update-component", input_stream=body, content_length=body.n, content_type="application/json"
    )
    assert r.status_code == 413
    assert r.get_data(as_text=True) == f"request body too large (limit {MAX_REQUEST_BYTES} bytes)\n"
    assert body.read_bytes == 0
    assert proc.memory_info().rss - rss0 < 100 * 2**20


def test_request_body_cap_over_real_http(app):
    """The werkzeug server answers 413 after the headers and 64 KiB of a declared 200 MB body."""
    import socket

    from benchmarks.load_dashboard import serve

    srv, _ = serve(app)
    try:
        with socket.create_connection(("127.0.0.1", srv.server_port), timeout=30) as s:
            s.sendall(
                f"POST /_dash-update-component HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {200 * 2**20}\r\n\r\n".encode()
                + b" " * 65536
            )
            data = b""
            while not data.endswith(b"bytes)\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    finally:
        srv.shutdown()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert body == f"request body too large (limit {MAX_REQUEST_BYTES} bytes)\n".encode()


def test_request_body_under_the_cap_still_works(app):
    r = post(app.server.test_client(), app, "page.children", {"url.pathname": "/"})
    assert "Overview" in json.dumps(r)


def test_png_generator_makes_real_images():
    a = decode_upload(uri(png(40, 24)), "small.png")
    assert a.shape == (24, 40, 3) and a.dtype.name == "uint8" and int(a.max()) == 0


@pytest.mark.parametrize("w, h", [(13000, 13000), (20000, 20000), (4097, 4096)])
def test_upload_pixels_checked_on_the_header(w, h):
    """13000 x 13000 (a 0.2 MB file that decodes to 169 Mpx), a decompression bomb past PIL's own limit, and one
    pixel column over the limit: the same message, from the header alone (fast, no decoding)."""
    raw = png(w, h)
    assert len(raw) < 700_000
    t0 = time.perf_counter()
    with pytest.raises(UploadError) as e:
        decode_upload(uri(raw), "big.png")
    assert time.perf_counter() - t0 < 1.0
    assert str(e.value) == (f"upload 'big.png': image too large ({w} x {h} px, limit {MAX_PIXELS}); scale it down")


def test_upload_pixel_limit_through_the_callback(app):
    """The upload callback answers the message in the page and starts no inversion."""
    r = post(
        app.server.test_client(),
        app,
        "dg-src.data",
        {
            "dg-upload.contents": uri(png(13000, 13000)),
            "dg-upload.filename": "bomb.png",
            "dg-inv-steps.value": 100,
            "dg-offset-site.value": "none",
        },
        ["dg-upload.contents"],
    )
    assert message(r) == f"upload 'bomb.png': image too large (13000 x 13000 px, limit {MAX_PIXELS}); scale it down"
    assert app.probe_ctx.jobs == {}


def test_upload_bytes_limit():
    small = Limits(max_upload_bytes=1000)
    with pytest.raises(UploadError) as e:
        decode_upload(uri(bytes(2000)), "x.png", small)
    assert str(e.value) == "upload 'x.png' is over 0.000953674 MiB; use a smaller image"
    with pytest.raises(UploadError) as e:
        decode_upload(uri(bytes(1100)), "x.png", small)
    assert str(e.value) == "upload 'x.png' is 0.0 MiB; use an image under 0.000953674 MiB"


def test_truncated_png_is_not_readable():
    raw = png(64, 64)
    with pytest.raises(UploadError) as e:
        decode_upload(uri(raw[:48]), "cut.png")  # header + part of IDAT
    assert str(e.value) == "upload 'cut.png' is not a readable image (truncated or corrupt); choose a PNG or JPEG file"


@pytest.mark.parametrize("value", [10**9, MAX_STEPS + 1, 0, -5, 2.5, "many", None, float("inf")])
def test_steps_bounded(value):
    with pytest.raises(ProbeError) as e:
        bounded_steps(value, "max steps")
    assert str(e.value) == f"max steps must be an integer in 1..{MAX_STEPS}; got {value!r}"
    assert bounded_steps(MAX_STEPS, "max steps") == MAX_STEPS and bounded_steps(3.0, "max steps") == 3


def test_drag_steps_refused_on_the_server(app):
    """steps=10**9 posted straight to the Run callback (the input's max attribute is not the guard)."""
    r = post(app.server.test_client(), app, RUN, run_values(10**9), ["dg-run.n_clicks"])
    assert message(r) == f"max steps must be an integer in 1..{MAX_STEPS}; got 1000000000"
    assert app.probe_ctx.jobs == {}


def test_inversion_steps_refused_on_the_server(app):
    r = post(
        app.server.test_client(),
        app,
        "dg-src.data",
        {
            "dg-upload.contents": uri(png(32, 32)),
            "dg-upload.filename": "ok.png",
            "dg-inv-steps.value": 10**9,
            "dg-offset-site.value": "none",
        },
        ["dg-upload.contents"],
    )
    assert message(r) == f"inversion steps must be an integer in 1..{MAX_STEPS}; got 1000000000"
    assert app.probe_ctx.jobs == {}


def test_drag_points_bounded(app):
    many = {"handles": [[1.0, 1.0]] * 33, "targets": [[2.0, 2.0]] * 33}
    r = post(app.server.test_client(), app, RUN, run_values(5, many), ["dg-run.n_clicks"])
    assert message(r) == "points: 33 handle/target pairs; use at most 32 (Clear points)"
    bad = {"handles": [[1.0, float("nan")]], "targets": [[2.0, 2.0]]}
    r = post(app.server.test_client(), app, RUN, run_values(5, bad), ["dg-run.n_clicks"])
    assert message(r) == "points: each handle and target must be two finite numbers (x, y); Clear points"
    assert app.probe_ctx.jobs == {}


def test_one_job_per_session_and_per_model(app):
    ctx = app.probe_ctx
    a, b = app.server.test_client(), app.server.test_client()  # two browsers (separate cookie jars)
    try:
        r = post(a, app, RUN, run_values(MAX_STEPS), ["dg-run.n_clicks"])
        jid = r["response"]["dg-job"]["data"]
        job = ctx.job(jid)
        assert job["state"] == "running" and message(r) == ""
        r2 = post(a, app, RUN, run_values(3), ["dg-run.n_clicks"])
        assert message(r2) == f"a job is already running (started {job['started']}); press Stop or wait"
        r3 = post(
            b,
            app,
            "dg-src.data",
            {
                "dg-upload.contents": uri(png(32, 32)),
                "dg-upload.filename": "p.png",
                "dg-inv-steps.value": 5,
                "dg-offset-site.value": "none",
            },
            ["dg-upload.contents"],
        )
        assert message(r3) == (
            f"a job of another browser session is running on this model (started {job['started']}); wait until it ends"
        )
        assert list(ctx.jobs) == [jid]
        # the other session can neither see nor stop the job (its id is not enough)
        p = post(b, app, "..dg-counter.children...dg-canvas", {"dg-poll.n_intervals": 1, "dg-job.data": jid})
        assert p["response"]["dg-counter"]["children"] == "idle"
        r = b.post(
            "/_dash-update-component",
            json=Callback(app, "dg-stop.n_clicks").payload({"dg-stop.n_clicks": 1, "dg-job.data": jid}),
        )
        assert r.status_code == 204 and not job["stop"].is_set() and job["state"] == "running"
        p = post(a, app, "..dg-counter.children...dg-canvas", {"dg-poll.n_intervals": 1, "dg-job.data": jid})
        assert p["response"]["dg-counter"]["children"].startswith("draggan: step ")
        job["stop"].set()
        job["thread"].join(30)
        assert job["state"] == "stopped" and job["step"] < MAX_STEPS
        r4 = post(a, app, RUN, run_values(2), ["dg-run.n_clicks"])  # after Stop a new Run starts
        assert message(r4) == "" and r4["response"]["dg-job"]["data"] != jid
    finally:
        stop_all(ctx)


def test_job_time_limit_stops_the_job(limits_study):
    app = create_app(limits_study, limits=Limits(job_time_limit_s=0.5))
    c = app.server.test_client()
    try:
        r = post(c, app, RUN, run_values(MAX_STEPS), ["dg-run.n_clicks"])
        job = app.probe_ctx.job(r["response"]["dg-job"]["data"])
        job["thread"].join(60)
        assert not job["thread"].is_alive()
        assert job["state"] == "error" and job["error"] == "stopped at the time limit of 0.5 s per job; use fewer steps"
        assert job["step"] < MAX_STEPS
        p = post(c, app, "..dg-counter.children...dg-canvas", {"dg-poll.n_intervals": 1, "dg-job.data": job["id"]})
        res = p["response"]["dg-result"]["children"]["props"]
        assert res["children"] == "stopped at the time limit of 0.5 s per job; use fewer steps"
        assert res["id"] == "dg-error"
    finally:
        stop_all(app.probe_ctx)


def test_finished_jobs_are_not_kept_forever(limits_study):
    ctx = create_app(limits_study).probe_ctx
    for _ in range(ctx.JOBS_KEPT + 10):
        ctx.job(ctx.start_job(lambda job: None, kind="test"))["thread"].join(5)
    assert len(ctx.jobs) == ctx.JOBS_KEPT


def test_limits_defaults():
    assert LIMITS == Limits(16 * 2**20, 10 * 2**20, 4096 * 4096, 2000, 32, 600.0)
    from PIL import Image

    assert Image.MAX_IMAGE_PIXELS <= MAX_PIXELS


def test_long_file_names_are_cut_in_messages():
    with pytest.raises(UploadError) as e:
        decode_upload(uri(b"not an image"), "n" * 5000 + ".txt")
    assert str(e.value) == f"upload {'n' * 120!r} is not an image; choose a PNG or JPEG file"
