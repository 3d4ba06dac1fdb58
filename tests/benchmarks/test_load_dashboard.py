"""Smoke test of the dashboard load test (2 clients, 2 s, small synthetic study) and of the view caches it relies
on: cached views follow a table rewritten while the app runs. No timing assertions."""

import numpy as np
import pandas as pd
import pytest

from benchmarks.load_dashboard import Callback, make_study, run_load, serve, views
from dashboards.app import create_app


@pytest.fixture(scope="module")
def load_app(tmp_path_factory):
    path = tmp_path_factory.mktemp("load") / "study"
    st = make_study(path, n_rows=2000, n_samples=40)
    assert st.status == "complete" and len(st.table("interventions")) == 2000
    for t in ("samples", "effects", "correlations", "controlling", "embedding"):
        assert st.has(t), t
    return create_app(path)


def test_load_smoke_two_clients(load_app):
    s = run_load(load_app, clients=2, seconds=2)
    assert s["errors"] == 0, s["first_errors"]
    names = [v[0] for v in views(load_app)]
    assert s["requests"] >= len(names)
    for n in names:
        v = s["views"][n]
        assert v["n"] >= 1 and v["errors"] == 0 and v["p50_ms"] > 0 and v["cold_ms"] > 0, (n, v)
    assert 0 < s["p50_ms"] <= s["p95_ms"] <= s["max_ms"]


def test_load_server_is_loopback_only(load_app):
    with pytest.raises(ValueError, match="only runs on loopback"):
        serve(load_app, "0.0.0.0")
    srv, url = serve(load_app)
    try:
        assert srv.server_address[0] == "127.0.0.1" and url.startswith("http://127.0.0.1:")
    finally:
        srv.shutdown()


def test_cached_views_follow_table_rewrites(load_app):
    """The controlling list and the heatmap are memoised per table version: rewriting the table (as a re-run of
    probe stats does) changes what the next request shows."""
    ctx = load_app.probe_ctx
    c = load_app.server.test_client()
    cb = Callback(load_app, "co-controlling.children")
    m = ctx.study.measures[0]

    def shown():
        return c.post("/_dash-update-component", json=cb.payload({"co-measure.value": m})).get_data(as_text=True)

    before = shown()
    assert shown() == before
    ctl = ctx.study.table("controlling")
    new = pd.DataFrame(
        {
            "measure": [m],
            "rank": [1],
            "target": ["z[99]-rewritten"],
            "effect": [1.0],
            "q": [0.001],
            "source": ["effects"],
        }
    )
    try:
        ctx.study.write_table("controlling", new)
        after = shown()
        assert "z[99]-rewritten" in after and after != before
        assert len(ctx.table("controlling")) == 1
    finally:
        ctx.study.write_table("controlling", ctl)
    assert "z[99]-rewritten" not in shown()
    assert np.array_equal(ctx.table("controlling")["rank"], ctl["rank"])
