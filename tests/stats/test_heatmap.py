"""correlation_heatmap: row order, per-measure colour scaling, units and p/q in the hover, a capped row window."""

import numpy as np
import pandas as pd
import pytest

from probe import figures as F
from probe.errors import ProbeError


def _eff():
    rows = []
    # a: moves age a lot; b: moves male a lot; c, d: like a but smaller; e: nothing significant
    spec = {"a": (-3.0, 0.01), "b": (0.1, 0.5), "c": (-1.5, 0.02), "d": (-1.0, 0.0), "e": (0.01, 0.001)}
    for t, (age, male) in spec.items():
        for m, v in (("age", age), ("male", male)):
            q = 0.5 if t == "e" else 1e-8
            rows.append(
                {
                    "method": "x",
                    "target": t,
                    "measure": m,
                    "slope": v,
                    "slope_lo": v - 0.1,
                    "slope_hi": v + 0.1,
                    "p": q / 10,
                    "q": q,
                }
            )
    return pd.DataFrame(rows)


def test_order_by_effect_and_cluster():
    e = _eff()
    f = F.correlation_heatmap(e, "slope", order="effect")
    assert list(f.data[1].y) == ["a", "c", "d", "b", "e"]
    f = F.correlation_heatmap(e, "slope", order="name")
    assert list(f.data[1].y) == ["a", "b", "c", "d", "e"]
    y = list(F.correlation_heatmap(e, "slope", order="cluster").data[1].y)
    # a, c, d share a profile (age down): adjacent in the clustered order
    pos = sorted(y.index(t) for t in "acd")
    assert pos[2] - pos[0] == 2
    with pytest.raises(ProbeError, match="heatmap order 'size': use 'effect', 'cluster' or 'name'"):
        F.correlation_heatmap(e, "slope", order="size")


def test_measure_colour_scaling_and_units_in_hover():
    f = F.correlation_heatmap(_eff(), "slope", order="name", colour="measure", units={"age": "years / alpha"})
    z = np.array(f.data[1].z, dtype=float)
    assert np.nanmax(np.abs(z), axis=0) == pytest.approx([1.0, 1.0])  # each measure fills its own scale
    assert z[0, 0] == pytest.approx(-1.0) and z[1, 1] == pytest.approx(1.0)
    assert np.isnan(z[4]).all()  # row e: q > 0.05, grey
    assert f.data[1].text[0][0] == "years / alpha"
    assert "p=%{customdata[1]:.2e}" in f.data[1].hovertemplate
    assert "q=%{customdata[2]:.2e}" in f.data[1].hovertemplate
    assert "age<br>(years / alpha)" in f.layout.xaxis.ticktext
    g = F.correlation_heatmap(_eff(), "slope", colour="shared")
    assert np.nanmax(np.abs(np.array(g.data[1].z, dtype=float))) == pytest.approx(3.0)


def test_raw_column_in_hover():
    e = _eff().assign(std_slope=lambda d: d["slope"] / 2)
    f = F.correlation_heatmap(
        e, "std_slope", order="name", units="sd / alpha", raw="slope", raw_units={"age": "years / alpha"}
    )
    assert f.data[1].text[0][0] == "sd / alpha<br>slope=-3 years / alpha"


def test_row_window_caps_height():
    e = pd.concat([_eff().assign(target=lambda d, i=i: d["target"] + str(i)) for i in range(20)])  # 100 rows
    full = F.correlation_heatmap(e, "slope")
    capped = F.correlation_heatmap(e, "slope", max_rows=30)
    assert full.layout.meta["rows"] == 100 and len(capped.data[1].y) == 100
    assert capped.layout.meta["visible"] == 30
    assert capped.layout.height == 20 * 30 + 170 < full.layout.height
    assert list(capped.layout.yaxis.range) == [29.5, -0.5]
    assert capped.layout.dragmode == "pan" and capped.layout.xaxis.fixedrange


def test_faded_insignificant_cells_keep_their_colour():
    e = _eff().assign(q=0.5)  # nothing significant: the "all grey" case
    grey = F.correlation_heatmap(e, "slope")
    assert np.nanmax(np.array(grey.data[0].z, dtype=float)) == 0 and grey.layout.meta["n_sig"] == 0
    f = F.correlation_heatmap(e, "slope", insignificant="faded", order="name")
    z = np.array(f.data[0].z, dtype=float)
    assert z[0, 0] == pytest.approx(-3.0) and f.data[0].opacity == pytest.approx(0.35)
    assert f.data[0].colorscale == f.data[1].colorscale
    assert f.data[1].zmax == pytest.approx(3.0)
    with pytest.raises(ProbeError, match="heatmap insignificant 'hide': use 'grey' or 'faded'"):
        F.correlation_heatmap(e, "slope", insignificant="hide")


def test_unit_curves_one_axis_per_unit():
    a = np.array([-2.0, 0.0, 2.0])
    rows = []
    for m, slope in (("male", 0.1), ("age", 3.0), ("smile", -0.05)):
        for x in a:
            rows.append(
                {"measure": m, "alpha": x, "n": 8, "mean": slope * x, "lo": slope * x - 0.1, "hi": slope * x + 0.1}
            )
    s = pd.DataFrame(rows)
    f = F.unit_curves(s, {"male": "probability", "age": "years", "smile": "probability"}, "t")
    assert f.layout.meta["units"] == ["probability", "years"]
    assert f.layout.yaxis.title.text == "change (probability)" and f.layout.yaxis2.title.text == "change (years)"
    lines = [t for t in f.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["male", "age", "smile"]
    assert [t.yaxis for t in lines] == ["y", "y2", "y"]
    assert f.layout.height == 220 * 2 + 140
    one = F.unit_curves(s[s["measure"] != "age"], {"male": "probability", "smile": "probability"}, "t")
    assert one.layout.meta["units"] == ["probability"] and len(one.data) == 4
