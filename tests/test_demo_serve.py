"""probe demo: the dashboard opens once the first table exists while a worker (holding the study lock) goes on;
progress.json and the Overview banner say what is done and what is coming."""

import json
import os
import subprocess
import sys
import threading

from benchmarks.load_dashboard import Callback
from dashboards.pages._progress import PROGRESS, computing, progress_text, read_progress
from probe.demo import PROGRESS as WRITTEN
from probe.demo import STEP_TABLES, STEPS, DemoRunner, Progress

MINI = """name = "faces-demo-mini"
model = "faces"
measures = ["faces", "image"]
n_samples = 8
seed = 0
space = "z"
batch_size = 32
alphas = [-3, 0, 3]
[[targets]]
kind = "variables"
indices = 3
[[targets]]
kind = "directions"
file = "interfacegan"
[[targets]]
kind = "directions"
file = "dplase"
walk = "isodensity"
[[targets]]
kind = "directions"
file = "ganspace"
[[targets]]
kind = "directions"
file = "sefa"
[[targets]]
kind = "directions"
file = "random"
"""


def _route(app, path="/"):
    cb = Callback(app, "page.children")
    r = app.server.test_client().post("/_dash-update-component", json=cb.payload({"url.pathname": path}))
    assert r.status_code == 200
    return r.get_data(as_text=True)


def _tick(app):
    cb = Callback(app, "demo-progress.children")
    r = app.server.test_client().post("/_dash-update-component", json=cb.payload({"demo-progress-tick.n_intervals": 1}))
    assert r.status_code == 200
    out = json.loads(r.get_data(as_text=True))["response"]
    return out["demo-progress"]["children"], out["demo-progress"]["hidden"], out["demo-progress-tick"]["disabled"]


def test_progress_text_follows_the_steps(tmp_path):
    assert PROGRESS == WRITTEN  # the file the demo writes is the one the banner reads
    p = Progress(tmp_path)
    p.start("samples")
    assert progress_text(tmp_path) == (
        "probe demo is still running (step 1 of 7: rendering and measuring the base "
        "samples). Done: nothing yet. Still to come: directions, study, statistics, "
        "evaluation, embedding, report. Pages fill in as their tables appear."
    )
    assert computing(tmp_path, "samples") == (
        "being computed: rendering and measuring the base samples (probe demo, "
        "step 1 of 7); this page fills in when it is done"
    )
    p.done("samples", 1.5)
    p.start("directions")
    assert computing(tmp_path, "samples") is None and computing(tmp_path, "groundtruth") is None
    assert computing(tmp_path, "effects").startswith(
        "being computed: statistics (effects, correlations, controlling variables) (probe demo, step 4 of 7)"
    )
    p.done("directions", 3.2)
    p.start("study")
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            {
                "n_samples": 8,
                "targets": [{}] * 16,
                "alphas": [-3, 0, 3],
                "spec": {"part_rows": 100},
                "parts_done": [0, 1],
            }
        )
    )
    assert "(step 3 of 7: running the study's interventions, interventions part 2 of 4)" in progress_text(
        tmp_path
    )  # 8 * 16 * 3 = 384 rows in parts of 100
    assert "Done: samples, directions. Still to come: statistics, evaluation" in progress_text(tmp_path)
    d = read_progress(tmp_path)
    assert [s["state"] for s in d["steps"]] == ["done"] * 2 + ["running"] + ["pending"] * 4
    assert d["steps"][1]["seconds"] == 3.2 and d["steps"][2]["tables"] == ["interventions", "alpha_summary"]
    p.fail("study", ValueError("disk full"))
    assert progress_text(tmp_path) == (
        "probe demo stopped at step 3, study: ValueError: disk full. Re-run probe demo "
        "to resume it; finished steps are kept."
    )
    assert computing(tmp_path, "effects") is None  # a stopped demo computes nothing
    q = Progress(tmp_path)
    q.start("directions")
    q.data["pid"] = 2**22 + 12345  # a process that does not exist
    q._write()
    assert progress_text(tmp_path).startswith(
        f"probe demo (PID {2**22 + 12345}) is no longer running: it stopped during step 2, directions."
    )
    assert computing(tmp_path, "effects") is None
    q.data["pid"] = os.getpid()
    q.finish()
    assert progress_text(tmp_path) is None
    assert progress_text(tmp_path, finished=True).startswith("probe demo finished: all 7 steps done in ")
    assert computing(tmp_path, "effects") is None
    assert progress_text(tmp_path / "nope") is None
    (tmp_path / "progress.json").write_text("{not json")
    assert read_progress(tmp_path) is None


def test_samples_first_then_resume_equals_one_shot(tmp_path):
    """run_samples writes the base samples before the direction file exists; run_study --resume then gives the
    same tables and manifest as a one-shot run."""
    import numpy as np
    import pandas as pd
    import pytest

    from probe.directions.base import DirectionSet
    from probe.store import Study
    from probe.study import SpecError, run_samples, run_study

    spec = {
        "name": "t",
        "model": "tiny-dcgan",
        "measures": ["brightness", "contrast"],
        "n_samples": 6,
        "seed": 3,
        "alphas": [-1, 0, 1],
        "part_rows": 7,
        "targets": [{"kind": "variables", "indices": [0, 2]}, {"kind": "directions", "file": "random"}],
    }
    ds = DirectionSet(["d0", "d1"], np.eye(2, 16, dtype=np.float32), "z", "random")
    one = tmp_path / "one"
    ds.save((one / "directions").mkdir(parents=True) or one / "directions" / "random.npz")
    run_study(spec, one, progress=False)

    two = tmp_path / "two"
    s = run_samples(spec, two, progress=False)
    assert not (two / "directions").exists() and s.status == "running" and s.manifest["targets"] == []
    assert s.manifest["stage"] == "samples" and not s.has("interventions")
    pd.testing.assert_frame_equal(s.table("samples"), Study(one).table("samples"))
    with pytest.raises(SpecError, match=r"targets\[1\]\.file: .*random\.npz' does not exist"):
        run_study(spec, two, resume=True, progress=False)  # the directions are not there yet
    ds.save(two / "directions" / "random.npz")
    before = (two / "samples.parquet").stat().st_mtime_ns
    run_study(spec, two, resume=True, progress=False)
    a, b = Study(one), Study(two)
    assert (two / "samples.parquet").stat().st_mtime_ns == before  # reused, not recomputed
    assert b.status == "complete" and b.manifest == a.manifest  # no stage left, targets filled in
    for t in ("samples", "interventions"):
        pd.testing.assert_frame_equal(a.table(t), b.table(t))
    assert np.array_equal(a.latents(), b.latents()) and len(b.table("interventions")) == 6 * 4 * 3
    with pytest.raises(SpecError, match=r"--resume: the spec differs from the study's in \['seed'\]"):
        run_samples({**spec, "seed": 4}, two, progress=False)


def test_bad_spec_is_one_line(tmp_path):
    from typer.testing import CliRunner

    from probe.cli import app

    r = CliRunner().invoke(
        app, ["demo", "--out", str(tmp_path / "s"), "--spec", str(tmp_path / "nope.toml"), "--no-dash"]
    )
    assert r.exit_code != 0
    assert f"--spec '{tmp_path / 'nope.toml'}' does not exist; run from the repository root or pass --spec" in (
        r.output + str(r.exception)
    )
    assert not (tmp_path / "s").exists()


def test_dashboard_opens_while_the_demo_goes_on(tmp_path):
    from dashboards.app import create_app

    spec = tmp_path / "mini.toml"
    spec.write_text(MINI)
    out = tmp_path / "study"
    gate, reached, logs = threading.Event(), threading.Event(), []
    fits, fitting = threading.Event(), threading.Event()

    def on_step(name):
        if name == "directions":  # hold the worker before any direction is fitted
            fitting.set()
            assert fits.wait(600)
        if name == "evaluation":  # hold the worker here, with statistics done and three steps to come
            reached.set()
            assert gate.wait(600)

    runner = DemoRunner(
        out, spec=spec, n_fit=200, dplase_steps=5, k=2, progress=False, log=logs.append, on_step=on_step
    ).start()
    try:
        assert runner.wait_first_table(timeout=900) and fitting.wait(900)
        assert not (out / "directions").exists() and not (out / "interventions.parquet").exists()
        first = read_progress(out)
        assert first["state"] == "running" and first["steps"][0]["state"] == "done"
        assert first["first_table_s"] is not None
        assert [s["name"] for s in first["steps"] if s["state"] == "pending"] == [
            "directions",
            "study",
            "statistics",
            "evaluation",
            "embedding",
            "report",
        ]
        app = create_app(out)
        assert app.server.test_client().get("/").status_code == 200
        body = _route(app)
        assert "ov-counts" in body and "probe-error" not in body and "probe demo is still running" in body
        assert "The interventions table is being computed: running the study's interventions" in body
        r = app.server.test_client().post(
            "/_dash-update-component", json=Callback(app, "ov-grid.figure").payload({"ov-n.value": 8})
        )
        grid = json.loads(r.get_data(as_text=True))["response"]
        assert r.status_code == 200 and grid["ov-grid-msg"]["children"] is None
        assert grid["ov-grid"]["figure"]["layout"]["title"]["text"] == "first 8 samples"  # the samples grid
        for path in ("/walks", "/correlations", "/embedding", "/edits", "/drag"):
            body = _route(app, path)
            assert "probe-error" not in body and "make it with" not in body, path
        assert "being computed: statistics" in _route(app, "/correlations")
        fits.set()

        assert reached.wait(900), logs
        text, hidden, disabled = _tick(app)
        assert (
            text.startswith(
                "probe demo is still running (step 4 of 7). Done: samples, directions, study, "
                "statistics. Still to come: evaluation, embedding, report."
            )
            and not hidden
            and not disabled
        )
        body = _route(app)  # the tables written since the dashboard opened
        ctx = app.probe_ctx
        assert ctx.study.status == "complete" and ctx.has("interventions") and ctx.has("effects")
        assert "probe-error" not in body and not ctx.has("embedding")

        # the worker holds the write lock: another process is refused with one line naming this process
        r = subprocess.run(
            [sys.executable, "-c", f"import sys; from probe.io import study_lock\nwith study_lock({str(out)!r}): pass"],
            capture_output=True,
            text=True,
        )
        assert r.returncode != 0 and f"is in use by another probe process (PID {os.getpid()})" in r.stderr
    finally:
        fits.set()
        gate.set()
        runner.join(timeout=900)
    assert runner.error is None and read_progress(out)["state"] == "done"
    assert all(s["state"] == "done" and s["seconds"] is not None for s in read_progress(out)["steps"])
    assert [s["name"] for s in read_progress(out)["steps"]] == [n for n, _ in STEPS]
    text, hidden, disabled = _tick(app)
    assert text.startswith("probe demo finished: all 7 steps done in ") and not hidden and disabled
    assert app.probe_ctx.has("embedding") and (out / "report.html").is_file()
    assert not (out / ".lock").exists()


def test_overview_banner_in_the_browser(dash_duo, tiny_study, tmp_path):
    """What a user sees on the Overview page of a study that probe demo is still filling, then once it is done."""
    import shutil

    from probe.store import Study
    from tests.dashboards.ui import T, error_texts, no_sideways_scroll, open_page

    s = Study(shutil.copytree(tiny_study.path, tmp_path / "study"))
    p = Progress(s.path)
    p.done("samples", 1.0)
    p.done("directions", 1.0)
    p.start("study")
    open_page(dash_duo, s)
    dash_duo.wait_for_contains_text(
        "#demo-progress", "probe demo is still running (step 3 of 7: running the study", timeout=T
    )
    assert dash_duo.find_element("#demo-progress").is_displayed()
    assert (
        "Done: samples, directions. Still to come: statistics, evaluation, embedding, report."
        in dash_duo.find_element("#demo-progress").text
    )
    assert error_texts(dash_duo) == []
    no_sideways_scroll(dash_duo)
    for name in ("study", "statistics", "evaluation", "embedding", "report"):
        p.start(name)
        p.done(name, 0.5)
    p.finish()
    dash_duo.wait_for_contains_text("#demo-progress", "probe demo finished: all 7 steps done in ", timeout=T)
    assert error_texts(dash_duo) == []


def test_every_page_with_only_the_samples_in_the_browser(dash_duo, tmp_path):
    """A study a running demo has only scored the samples of: each page loads without an error box, the Overview
    shows the samples grid, and pages whose tables are still to come say they are being computed."""
    import time

    from dashboards.app import PAGES
    from probe.study import run_samples
    from tests.dashboards.ui import T, error_texts, open_page, wait_until

    spec = {
        "name": "t",
        "model": "tiny-dcgan",
        "measures": ["brightness", "contrast"],
        "n_samples": 12,
        "seed": 3,
        "alphas": [-1, 0, 1],
        "targets": [{"kind": "variables", "indices": [0, 2]}, {"kind": "directions", "file": "random"}],
    }
    s = run_samples(spec, tmp_path / "study", progress=False)
    p = Progress(s.path)
    p.done("samples", 1.0)
    p.start("directions")
    open_page(dash_duo, s)
    wait_until(
        lambda: dash_duo.driver.execute_script(
            "const g = document.querySelector('#ov-grid .js-plotly-plot'); return g && g.data && g.data.length"
        ),
        what="the samples grid",
    )
    assert (
        "The interventions table is being computed: running the study's interventions"
        in dash_duo.find_element("#ov-tables").text
    )
    assert error_texts(dash_duo) == []
    for page in PAGES:
        dash_duo.driver.get(dash_duo.server_url + page.PATH)
        dash_duo.wait_for_element("#page", timeout=T)
        time.sleep(1.5)  # let the page's first callbacks answer
        assert error_texts(dash_duo) == [], page.PATH
        text = dash_duo.find_element("#page").text  # demo tables: no "make it with <command>"
        assert not [t for ts in STEP_TABLES.values() for t in ts if f"no {t} table yet" in text], page.PATH
    dash_duo.driver.get(dash_duo.server_url + "/correlations")
    dash_duo.wait_for_contains_text("#page", "being computed: statistics", timeout=T)
