"""App factory, path guard, study-file route, upload decoding, neighbours, CLI errors (no browser)."""

import base64
import io

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dashboards.app import PathError, create_app, within
from dashboards.pages import PAGES
from dashboards.pages.drag import UploadError, decode_upload
from dashboards.pages.embedding import neighbours
from probe.errors import ProbeError


def test_within_rejects_escapes(tmp_path):
    (tmp_path / "a").mkdir()
    assert within(tmp_path, "a/b.json") == (tmp_path / "a" / "b.json").resolve()
    for bad in ("../x", "a/../../x", "/etc/passwd"):
        with pytest.raises(PathError, match="outside the study root"):
            within(tmp_path, bad)
    (tmp_path / "link").symlink_to("/etc")
    with pytest.raises(PathError):
        within(tmp_path, "link/passwd")


def test_create_app_missing_dir_is_one_line(tmp_path):
    with pytest.raises(ProbeError, match="does not exist; make one with probe run") as e:
        create_app(tmp_path / "nope")
    assert "\n" not in str(e.value)


def test_cli_dash_missing_study_one_line(tmp_path):
    from probe.cli import app

    r = CliRunner().invoke(app, ["dash", str(tmp_path / "nope")])
    assert r.exit_code != 0 and isinstance(r.exception, ProbeError)
    assert "does not exist" in str(r.exception)


def test_study_file_route_serves_only_inside_root(full_study):
    app = create_app(full_study.path)
    c = app.server.test_client()
    r = c.get("/study-file/manifest.json")
    assert r.status_code == 200 and r.get_json()["name"] == full_study.name
    assert c.get("/study-file/samples.parquet").status_code == 200
    assert c.get("/study-file/%2E%2E/%2E%2E/etc/passwd").status_code in (403, 404)
    assert c.get("/study-file/latents.txt").status_code == 404


def test_every_page_lays_out(full_study, tiny_study):
    for study in (full_study, tiny_study):
        ctx = create_app(study.path).probe_ctx
        for p in PAGES:
            assert p.layout(ctx) is not None, p.NAME


def test_decode_upload():
    buf = io.BytesIO()
    Image.fromarray(np.full((16, 20, 3), 7, np.uint8)).save(buf, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    a = decode_upload(uri, "x.png")
    assert a.shape == (16, 20, 3) and a.dtype == np.uint8 and (a == 7).all()
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 10, 3), 7, np.uint8)).save(buf, format="PNG")
    with pytest.raises(UploadError, match="'s.png' is 10x8 pixels; use an image of at least 16x16"):
        decode_upload("data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(), "s.png")
    bad = "data:text/plain;base64," + base64.b64encode(b"hello, not an image").decode()
    with pytest.raises(UploadError, match="'notes.txt' is not an image; choose a PNG or JPEG"):
        decode_upload(bad, "notes.txt")
    with pytest.raises(UploadError, match="no file content"):
        decode_upload(None, None)


def test_neighbours_are_nearest_first():
    lat = np.array([[0.0, 0], [3, 0], [1, 0], [0, 2], [10, 10]], np.float32)
    ids, d = neighbours(lat, 0, k=3)
    assert ids.tolist() == [2, 3, 1] and np.allclose(d, [1, 2, 3])
    assert 0 not in neighbours(lat, 0, k=4)[0]


def test_job_registry_runs_stops_and_reports_errors(full_study):
    import time

    ctx = create_app(full_study.path).probe_ctx

    def count(job):
        while not job["stop"].is_set() and job["step"] < 10_000:
            job["step"] += 1
            time.sleep(0.001)

    jid = ctx.start_job(count, kind="test")
    time.sleep(0.05)
    ctx.job(jid)["stop"].set()
    ctx.job(jid)["thread"].join(5)
    assert ctx.job(jid)["state"] == "stopped" and 0 < ctx.job(jid)["step"] < 10_000

    def bad(job):
        raise ProbeError("points: click a handle first")

    jid = ctx.start_job(bad, kind="test")
    ctx.job(jid)["thread"].join(5)
    assert ctx.job(jid)["state"] == "error" and ctx.job(jid)["error"] == "points: click a handle first"
    assert ctx.job("nope") is None and ctx.job(None) is None


def test_walk_views_query_aggregates_and_never_load_the_interventions_table(full_study):
    import json

    from benchmarks.load_dashboard import Callback
    from probe import figures as F

    app = create_app(full_study.path)
    ctx, c = app.probe_ctx, app.server.test_client()
    targets = ["random/d0", "z[1]"]
    cb = Callback(app, "wk-compare-box.children")
    r = c.post(
        "/_dash-update-component", json=cb.payload({"wk-compare.value": targets, "wk-cmp-measure.value": "contrast"})
    )
    assert r.status_code == 200
    fig = r.get_json()["response"]["wk-compare-box"]["children"]["props"]["figure"]
    iv = full_study.table("interventions")
    want = F.measure_curves(
        iv[iv["target"].isin(targets)], "contrast", by="target", title="d_contrast vs alpha per target (95% CI)"
    ).to_plotly_json()["data"]
    got = fig["data"]
    assert [t["name"] for t in got] == [t["name"] for t in want]

    def arr(v):
        return np.frombuffer(base64.b64decode(v["bdata"]), v["dtype"]) if isinstance(v, dict) else np.asarray(v, float)

    for g, w in zip(got, want):
        np.testing.assert_allclose(arr(g["y"]), arr(w["y"]), rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(arr(g["x"]), arr(w["x"]))
    page = c.post("/_dash-update-component", json=Callback(app, "page.children").payload({"url.pathname": "/"}))
    assert '{"children": "840", "id": "ov-intervention-rows"}' in json.dumps(page.get_json()) and len(iv) == 840
    from dashboards.pages.walks import _targets

    assert [o["value"] for o in _targets(ctx)] == ["random/d0", "random/d1", "b2:c3", "z[0]", "z[1]", "z[2]", "z[3]"]
    assert "interventions" not in ctx._tables


def test_memo_builds_a_view_once_for_concurrent_requests(full_study):
    """8 requests for one view arriving together: one computes it, the others wait for its result; an error is
    not cached and the next request computes again."""
    import threading
    import time

    ctx = create_app(full_study.path).probe_ctx
    calls = []

    def build():
        calls.append(1)
        time.sleep(0.2)
        return {"data": [], "layout": {"title": "v"}}

    out = []
    threads = [threading.Thread(target=lambda: out.append(ctx.memo(("view", 1), build))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(out) == 8 and all(o == out[0] for o in out)

    def fail():
        calls.append(1)
        raise ValueError("boom")

    for _ in range(2):
        with pytest.raises(ValueError, match="boom"):
            ctx.memo(("view", 2), fail)
    assert len(calls) == 3 and ctx._flight == {}


def test_memo_moves_its_views_out_of_the_gc_scans(full_study):
    """A memoised view (and what else lives then) goes to the GC's permanent generation, so a full collection
    never walks the memo; cyclic garbage made before is collected first; FREEZE = False leaves them tracked."""
    import gc
    import weakref

    from dashboards.app import Context

    ctx = create_app(full_study.path).probe_ctx

    def tracked(v) -> bool:
        return any(o is v for o in gc.get_objects())

    class Cycle:
        pass

    def build():
        junk = Cycle()
        junk.me = junk  # garbage only the cyclic collector frees
        refs.append(weakref.ref(junk))
        return {"data": [{"type": "scatter", "x": [1, 2]}], "layout": {}}

    refs = []
    before, Context.FREEZE = Context.FREEZE, True
    v = ctx.memo(("frozen",), build)
    assert not tracked(v) and not tracked(v["data"][0]) and refs[0]() is None
    assert ctx.memo(("frozen",), build) is v and len(refs) == 1
    Context.FREEZE = False
    try:
        w = ctx.memo(("tracked",), build)
        assert tracked(w) and tracked(w["data"][0])
    finally:
        Context.FREEZE = before
