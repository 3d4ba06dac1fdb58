"""The stored per-(target, alpha) summary: written by the runner, read by the dashboard and report while fresh."""

import json
import os
import shutil
import threading

import pandas as pd
import pytest

from probe import query
from probe.query import Query
from probe.store import Study


@pytest.fixture()
def study(tiny_study, tmp_path):
    """A writable copy of the tiny study without its summary file (as an older study)."""
    shutil.copytree(tiny_study.path, tmp_path / "s")
    (tmp_path / "s" / "alpha_summary.parquet").unlink(missing_ok=True)
    return Study(tmp_path / "s")


def _scan(st):
    q = Query(st)
    return q.alpha_summary(query.summary_values(st, q.columns), by=list(query.SUMMARY_BY))


def test_stored_summary_equals_the_scan_exactly(study):
    assert not study.has("alpha_summary") and query.read_alpha_summary(study) is None
    query.write_alpha_summary(study)
    got = query.read_alpha_summary(study)
    pd.testing.assert_frame_equal(got, _scan(study), check_exact=True)
    assert list(dict.fromkeys(got["value"])) == sorted([*(f"d_{m}" for m in study.measures), "dlogp", "logp", "norm"])
    assert sorted(got["target"].unique()) == sorted(study.target_names)
    assert (got["n"] == 24).all()  # 24 samples per (target, alpha), every value finite here


def test_runner_writes_it_and_a_rewritten_table_makes_it_stale(study):
    query.write_alpha_summary(study)
    assert query.summary_fresh(study)
    st = os.stat(study.path / "interventions.parquet")
    os.utime(study.path / "alpha_summary.parquet", ns=(st.st_atime_ns, st.st_mtime_ns - 10**9))  # older: stale
    assert not query.summary_fresh(study) and query.read_alpha_summary(study) is None
    s = query.study_alpha_summary(study, write=True)  # scanned again, and stored again
    assert query.summary_fresh(study)
    pd.testing.assert_frame_equal(s, query.read_alpha_summary(study))


def test_run_study_alone_leaves_it_to_the_readers(tmp_path):
    # run_study's callers (probe run, the demo) store it; a study made by run_study alone has none
    from probe.study import parse_spec, run_study

    spec = parse_spec(
        {
            "name": "alone",
            "model": "tiny-dcgan",
            "measures": ["image"],
            "n_samples": 4,
            "seed": 0,
            "alphas": [-1, 0, 1],
            "targets": [{"kind": "variables", "indices": [0, 1]}],
        }
    )
    st = run_study(spec, tmp_path / "alone", progress=False)
    assert not st.has("alpha_summary")
    s = query.study_alpha_summary(st)  # write=False: a scan, nothing written
    pd.testing.assert_frame_equal(s, _scan(st))
    assert not st.has("alpha_summary")


def _count_scans(monkeypatch) -> list:
    calls = []
    orig = Query.sql

    def sql(self, text, params=()):
        calls.append(text)
        return orig(self, text, params)

    monkeypatch.setattr(Query, "sql", sql)
    return calls


def _post(app, output, values):
    from benchmarks.load_dashboard import Callback

    r = app.server.test_client().post("/_dash-update-component", json=Callback(app, output).payload(values))
    assert r.status_code == 200
    return r.get_data(as_text=True)


def test_dashboard_walk_views_read_the_file_without_scanning(study, monkeypatch):
    from dashboards.app import create_app

    query.write_alpha_summary(study)
    calls = _count_scans(monkeypatch)
    app = create_app(study.path)
    page = _post(app, "page.children", {"url.pathname": "/walks"})
    assert "probe-error" not in page and "z[0]" in page
    body = _post(
        app, "wk-compare-box.children", {"wk-compare.value": ["z[0]", "z[1]"], "wk-cmp-measure.value": "brightness"}
    )
    assert "probe-error" not in body and '"z[1]"' in body
    assert calls == []  # no DuckDB query of interventions.parquet
    want = _scan(study)
    got = app.probe_ctx.iv_summary(("d_brightness",), targets=["z[1]"])
    w = want[(want["value"] == "d_brightness") & (want["target"] == "z[1]")]
    pd.testing.assert_frame_equal(got, w.drop(columns=["target_kind", "method", "walk"]).reset_index(drop=True))
    t = app.probe_ctx.iv_targets()
    calls.clear()
    pd.testing.assert_frame_equal(t, Query(study).targets())


def test_dashboard_of_a_study_without_the_file_scans_once_and_stores_it(study, monkeypatch):
    from dashboards.app import create_app

    calls = _count_scans(monkeypatch)
    app = create_app(study.path)
    body = _post(app, "wk-compare-box.children", {"wk-compare.value": ["z[0]"], "wk-cmp-measure.value": "contrast"})
    assert "probe-error" not in body and '"z[0]"' in body
    assert len(calls) == 1 and "GROUP BY" in calls[0]
    assert query.summary_fresh(study)
    pd.testing.assert_frame_equal(query.read_alpha_summary(study), _scan(study))


def test_a_long_summary_shows_a_note_then_the_figure(study, monkeypatch):
    from dashboards import app as dash_app

    release = threading.Event()
    orig = query.study_alpha_summary

    def slow(st, write=False):
        release.wait(30)
        return orig(st, write=write)

    monkeypatch.setattr(query, "study_alpha_summary", slow)
    app = dash_app.create_app(study.path)
    app.probe_ctx.SUMMARY_WAIT_S = 0.05
    values = {"wk-compare.value": ["z[0]"], "wk-cmp-measure.value": "contrast"}
    body = json.loads(_post(app, "wk-compare-box.children", values))
    text = json.dumps(body)
    assert "probe-note" in text and "probe-error" not in text
    assert f"summarising {Query(study).count():,} rows of interventions.parquet" in text
    release.set()
    app.probe_ctx._summary_job["done"].wait(30)
    body = _post(app, "wk-compare-box.children", values)
    assert "summarising" not in body and "probe-error" not in body and '"z[0]"' in body


def test_an_unwritable_study_still_gets_its_summary(study, monkeypatch):
    from probe.io import StoreError

    def refuse(*a, **k):
        raise StoreError("read-only study")

    monkeypatch.setattr(Study, "write_table", refuse)
    s = query.study_alpha_summary(study, write=True)
    pd.testing.assert_frame_equal(s, _scan(study))
    assert not (study.path / "alpha_summary.parquet").exists()


def test_probe_run_stores_the_summary(tmp_path, monkeypatch, capsys):
    from tests.helpers import cli
    from tests.test_study import _spec, _toml

    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.toml").write_text(_toml(_spec(name="s")))
    code, out, err = cli(["run", "spec.toml", "--no-progress"], capsys)
    assert code == 0, err
    st = Study(tmp_path / "studies" / "s")
    assert query.summary_fresh(st)
    pd.testing.assert_frame_equal(query.read_alpha_summary(st), _scan(st), check_exact=True)
