"""The dashboard's figure dicts (correlation heatmap, embedding explorer, CI curves) built without plotly's graph
objects equal the graph-object figures in their JSON form, for every option; every figure the analysis views
send is already in plotly's validated form; the per-variant cold-cost benchmark covers every view."""

import itertools

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from benchmarks.load_dashboard import cold_costs, make_study, views
from dashboards.app import Wired, create_app, wire
from dashboards.pages._util import plain
from probe import figures as F
from probe.stats import standardised_effects


@pytest.fixture(scope="module")
def synth_app(tmp_path_factory):
    path = tmp_path_factory.mktemp("fast") / "study"
    make_study(path, n_rows=2000, n_samples=40)
    return create_app(path)


def _figures(v):
    """Every figure dict (data + layout) inside a Dash response."""
    if isinstance(v, dict):
        if "data" in v and "layout" in v:
            yield v
        else:
            for x in v.values():
                yield from _figures(x)
    elif isinstance(v, list):
        for x in v:
            yield from _figures(x)


def _validated(fig: dict) -> dict:
    return wire(plain(go.Figure(fig)))


def test_heatmap_dict_equals_graph_object_figure(full_study):
    eff = standardised_effects(full_study, full_study.table("effects"))
    cor = full_study.table("correlations")
    units = {m: f"unit {i}" for i, m in enumerate(full_study.measures)}
    views = [
        (eff, "std_slope", dict(units="sd / alpha", raw="slope", raw_units=units)),
        (eff, "slope", dict(units=units, colour="measure")),
        (eff, "slope", {}),
        (cor, "r", {}),
    ]
    n = 0
    for (df, value, kw), (i, (order, ins)) in itertools.product(
        views, enumerate(itertools.product(["effect", "cluster", "name"], ["grey", "faded"]))
    ):
        q, rows = [0.05, 1e-6, 1.0][i % 3], [None, 3][i % 2]
        args = dict(q_max=q, order=order, insignificant=ins, max_rows=rows, title=f"t {q:g}", **kw)
        want = wire(plain(F.correlation_heatmap(df, value, **args)))
        got = wire(F.correlation_heatmap_dict(df, value, **args))
        assert got == want, (value, args)
        n += 1
    assert n == 24
    assert want["data"][1]["colorscale"][0] == [0.0, "rgb(5,48,97)"]  # named scale expanded as plotly does
    assert "bdata" in want["data"][1]["z"]  # z as a typed array, customdata as lists
    assert isinstance(want["data"][1]["customdata"][0][0], list)


def test_embedding_dict_equals_graph_object_figure(full_study):
    emb = full_study.table("embedding")
    s = full_study.table("samples")
    emb = emb.merge(s[["sample_id", "brightness", "logp"]], on="sample_id", how="left")
    n_samples = int((emb["kind"] == "sample").sum())
    keep = np.arange(n_samples) % 3 != 0
    cases = [
        (None, [], None, None, (), None),
        ("logp", ["random/d0"], [0, 2], None, (), None),
        ("brightness", [], None, keep, (), None),
        (None, ["random/d0"], [1], keep, (3,), None),
        ("logp", ["random/d0"], None, None, (1, 5), "u"),
        ("brightness", ["random/d0"], None, keep, (1, 5), "u"),
    ]
    for color, walks, ws, k, hl, unit in cases:
        args = dict(color=color, walk_targets=walks, walk_samples=ws, keep=k, highlight=hl, unit=unit, axis="PCA")
        want = wire(plain(F.embedding_explorer(emb, **args)))
        assert wire(F.embedding_explorer_dict(emb, **args)) == want, args
    names = [t["name"] for t in want["data"]]
    assert names == ["filtered out", "samples", "walk random/d0", "found"]
    assert want["data"][2]["customdata"][:2] == [[0, 24, -2.0, "random/d0"], [0, 25, -1.0, "random/d0"]]


def test_curves_dict_equals_graph_object_figure(synth_app):
    ctx = synth_app.probe_ctx
    tn = ctx.study.target_names
    for i, m in itertools.product(range(0, 12, 3), ctx.study.measures[:2]):
        s = ctx.iv_summary((f"d_{m}",), targets=tn[i : i + 4])
        want = wire(plain(F.summary_curves(s, "target", f"d_{m} vs alpha", f"d_{m} (u)")))
        assert wire(F.summary_curves_dict(s, "target", f"d_{m} vs alpha", f"d_{m} (u)")) == want, (i, m)
    assert [t["name"] for t in want["data"]][:2] == [f"{tn[9]} CI", tn[9]]


@pytest.mark.slow
def test_every_view_variant_sends_validated_figures(synth_app):
    c = synth_app.server.test_client()
    checked, empty = {}, {}
    for name, cb, variants in views(synth_app):
        for v in variants:
            r = c.post("/_dash-update-component", json=cb.payload(v))
            assert r.status_code == 200, (name, v, r.get_data(as_text=True)[:300])
            for fig in _figures(r.get_json()["response"]):
                if not fig["data"]:  # the "no row passes" placeholder of the heatmap
                    empty[name] = empty.get(name, 0) + 1
                    continue
                assert _validated(fig) == fig, (name, v)
                checked[name] = checked.get(name, 0) + 1
    assert sorted(checked) == sorted(
        ["heatmap std", "heatmap slope", "heatmap r", "walks compare", "embedding scatter"]
    )
    for which in ("std", "slope", "r"):
        assert checked[f"heatmap {which}"] + empty.get(f"heatmap {which}", 0) == 12
    n = {name: len(v) for name, _, v in views(synth_app)}
    assert checked["embedding scatter"] == n["embedding scatter"] == 16
    assert checked["walks compare"] >= n["walks compare"] > 1


def test_validation_check_catches_an_unvalidated_figure():
    raw = {"data": [{"type": "heatmap", "z": [[1.0]], "colorscale": "RdBu_r"}], "layout": {"title": "t"}}
    assert _validated(raw) != raw
    assert _validated(raw)["layout"]["title"] == {"text": "t"}


def test_cold_costs_cover_every_view_variant(synth_app):
    synth_app.probe_ctx._memo.clear()
    c = cold_costs(synth_app)
    assert {k: d["variants"] for k, d in c.items()} == {name: len(v) for name, _, v in views(synth_app)}
    assert all(0 < d["mean_ms"] <= d["max_ms"] for d in c.values())


def test_wire_passes_a_wired_view_through():
    df = pd.DataFrame(
        {"target": ["a", "b"], "measure": ["m", "m"], "slope": [1.0, -2.0], "p": [0.01, 0.5], "q": [0.02, 0.5]}
    )
    fig = F.correlation_heatmap_dict(df, "slope")
    w = wire(fig)
    assert isinstance(w, Wired) and w == wire(plain(go.Figure(fig)))
    assert wire(w) is w and wire((w, 1))[0] is w
