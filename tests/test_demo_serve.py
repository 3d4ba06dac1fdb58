"""probe demo: the dashboard opens once the first table exists while a worker (holding the study lock) goes on;
progress.json and the Overview banner say what is done and what is coming."""
import json
import os
import subprocess
import sys
import threading

from benchmarks.load_dashboard import Callback
from dashboards.pages._progress import PROGRESS, progress_text, read_progress
from probe.demo import PROGRESS as WRITTEN
from probe.demo import STEPS, DemoRunner, Progress

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
    assert PROGRESS == WRITTEN                                  # the file the demo writes is the one the banner reads
    p = Progress(tmp_path)
    p.start("directions")
    assert progress_text(tmp_path) == ("probe demo is still running (step 1 of 6: fitting direction sets (InterFaceGAN, "
                                       "DP-LaSE, GANSpace, SeFa, random)). Done: nothing yet. Still to come: study, "
                                       "statistics, evaluation, embedding, report. Pages fill in as their tables "
                                       "appear.")
    p.done("directions", 3.2)
    p.start("study")
    (tmp_path / "manifest.json").write_text(json.dumps({"n_samples": 8, "targets": [{}] * 16, "alphas": [-3, 0, 3],
                                                        "spec": {"part_rows": 100}, "parts_done": [0, 1]}))
    assert "(step 2 of 6: running the study (samples, then interventions), interventions part 2 of 4)" \
        in progress_text(tmp_path)                                          # 8 * 16 * 3 = 384 rows in parts of 100
    assert "Done: directions. Still to come: statistics, evaluation" in progress_text(tmp_path)
    d = read_progress(tmp_path)
    assert [s["state"] for s in d["steps"]] == ["done", "running"] + ["pending"] * 4 and d["steps"][0]["seconds"] == 3.2
    p.fail("study", ValueError("disk full"))
    assert progress_text(tmp_path) == ("probe demo stopped at step 2, study: ValueError: disk full. Re-run probe demo "
                                       "to resume it; finished steps are kept.")
    q = Progress(tmp_path)
    q.start("directions")
    q.data["pid"] = 2 ** 22 + 12345                                          # a process that does not exist
    q._write()
    assert progress_text(tmp_path).startswith(f"probe demo (PID {2 ** 22 + 12345}) is no longer running: it stopped "
                                              f"during step 1, directions.")
    q.data["pid"] = os.getpid()
    q.finish()
    assert progress_text(tmp_path) is None
    assert progress_text(tmp_path, finished=True).startswith("probe demo finished: all 6 steps done in ")
    assert progress_text(tmp_path / "nope") is None
    (tmp_path / "progress.json").write_text("{not json")
    assert read_progress(tmp_path) is None


def test_bad_spec_is_one_line(tmp_path):
    from typer.testing import CliRunner

    from probe.cli import app
    r = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "s"), "--spec", str(tmp_path / "nope.toml"),
                                 "--no-dash"])
    assert r.exit_code != 0
    assert f"--spec '{tmp_path / 'nope.toml'}' does not exist; run from the repository root or pass --spec" \
        in (r.output + str(r.exception))
    assert not (tmp_path / "s").exists()


def test_dashboard_opens_while_the_demo_goes_on(tmp_path):
    from dashboards.app import create_app
    spec = tmp_path / "mini.toml"
    spec.write_text(MINI)
    out = tmp_path / "study"
    gate, reached, logs = threading.Event(), threading.Event(), []

    def on_step(name):
        if name == "evaluation":          # hold the worker here, with statistics done and three steps to come
            reached.set()
            assert gate.wait(600)

    runner = DemoRunner(out, spec=spec, n_fit=200, dplase_steps=5, k=2, progress=False, log=logs.append,
                        on_step=on_step).start()
    try:
        assert runner.wait_first_table(timeout=900)
        first = read_progress(out)
        assert first["state"] == "running" and first["steps"][0]["state"] == "done"
        assert [s["name"] for s in first["steps"] if s["state"] == "pending"][-4:] == [
            "statistics", "evaluation", "embedding", "report"]
        app = create_app(out)
        assert app.server.test_client().get("/").status_code == 200
        body = _route(app)
        assert "ov-counts" in body and "probe-error" not in body and "probe demo is still running" in body

        assert reached.wait(900), logs
        text, hidden, disabled = _tick(app)
        assert text.startswith("probe demo is still running (step 3 of 6). Done: directions, study, statistics. "
                               "Still to come: evaluation, embedding, report.") and not hidden and not disabled
        body = _route(app)                                  # the tables written since the dashboard opened
        ctx = app.probe_ctx
        assert ctx.study.status == "complete" and ctx.has("interventions") and ctx.has("effects")
        assert "probe-error" not in body and not ctx.has("embedding")

        # the worker holds the write lock: another process is refused with one line naming this process
        r = subprocess.run([sys.executable, "-c", "import sys; from probe.io import study_lock\n"
                            f"with study_lock({str(out)!r}): pass"], capture_output=True, text=True)
        assert r.returncode != 0 and f"is in use by another probe process (PID {os.getpid()})" in r.stderr
    finally:
        gate.set()
        runner.join(timeout=900)
    assert runner.error is None and read_progress(out)["state"] == "done"
    assert all(s["state"] == "done" and s["seconds"] is not None for s in read_progress(out)["steps"])
    assert [s["name"] for s in read_progress(out)["steps"]] == [n for n, _ in STEPS]
    text, hidden, disabled = _tick(app)
    assert text.startswith("probe demo finished: all 6 steps done in ") and not hidden and disabled
    assert app.probe_ctx.has("embedding") and (out / "report.html").is_file()
    assert not (out / ".lock").exists()


def test_overview_banner_in_the_browser(dash_duo, tiny_study, tmp_path):
    """What a user sees on the Overview page of a study that probe demo is still filling, then once it is done."""
    import shutil

    from probe.store import Study
    from tests.dashboards.ui import T, error_texts, no_sideways_scroll, open_page
    s = Study(shutil.copytree(tiny_study.path, tmp_path / "study"))
    p = Progress(s.path)
    p.done("directions", 1.0)
    p.start("study")
    open_page(dash_duo, s)
    dash_duo.wait_for_contains_text("#demo-progress", "probe demo is still running (step 2 of 6: running the study",
                                    timeout=T)
    assert dash_duo.find_element("#demo-progress").is_displayed()
    assert "Done: directions. Still to come: statistics, evaluation, embedding, report." in \
        dash_duo.find_element("#demo-progress").text
    assert error_texts(dash_duo) == []
    no_sideways_scroll(dash_duo)
    for name in ("study", "statistics", "evaluation", "embedding", "report"):
        p.start(name)
        p.done(name, 0.5)
    p.finish()
    dash_duo.wait_for_contains_text("#demo-progress", "probe demo finished: all 6 steps done in ", timeout=T)
    assert error_texts(dash_duo) == []
