"""Standardised effects: slope / spread of the measure over samples, by measure kind."""

import numpy as np
import pandas as pd
import pytest

from probe import stats
from probe.errors import ProbeError


def _effects():
    return pd.DataFrame(
        {
            "method": ["m"] * 4,
            "target": ["a", "a", "b", "b"],
            "measure": ["age", "male", "age", "male"],
            "slope": [-0.84, 0.02, 3.0, -0.5],
            "slope_lo": [-1.0, 0.01, 2.0, -0.6],
            "slope_hi": [-0.68, 0.03, 4.0, -0.4],
            "p": [1e-7, 0.01, 1e-3, 1e-9],
            "q": [4e-6, 0.01, 2e-3, 4e-9],
        }
    )


def test_scales_continuous_sd_categorical_one_and_constant_nan():
    rng = np.random.default_rng(0)
    s = pd.DataFrame(
        {"age": rng.normal(40, 8, 500), "cls": rng.integers(0, 3, 500).astype(float), "flat": np.full(500, 2.5)}
    )
    sc = stats.measure_scales(s, ["age", "cls", "flat"], {"cls": ("categorical", None)})
    assert sc["age"] == pytest.approx(np.std(s["age"], ddof=1))
    assert 7.0 < sc["age"] < 9.0
    assert sc["cls"] == 1.0
    assert np.isnan(sc["flat"])


def test_scales_circular_wraps():
    # hue around 0 / 360 degrees: the linear sd is ~180, the circular one ~ the true 10 degrees
    rng = np.random.default_rng(1)
    h = (rng.normal(0, 10, 4000)) % 360
    s = pd.DataFrame({"hue": h})
    lin = stats.measure_scales(s, ["hue"])["hue"]
    circ = stats.measure_scales(s, ["hue"], {"hue": ("circular", 360.0)})["hue"]
    assert lin > 100
    assert circ == pytest.approx(10.0, rel=0.05)


def test_standardise_divides_slope_and_ci_and_keeps_p_q():
    e = _effects()
    out = stats.standardise_effects(e, {"age": 8.0, "male": 0.25})
    np.testing.assert_allclose(out["std_slope"], [-0.105, 0.08, 0.375, -2.0])
    np.testing.assert_allclose(out["std_slope_lo"], [-0.125, 0.04, 0.25, -2.4])
    np.testing.assert_allclose(out["std_slope_hi"], [-0.085, 0.12, 0.5, -1.6])
    np.testing.assert_allclose(out["scale"], [8.0, 0.25, 8.0, 0.25])
    pd.testing.assert_series_equal(out["q"], e["q"])
    # a measure without a scale: NaN, not a crash
    out = stats.standardise_effects(e, {"age": 8.0})
    assert out.loc[e["measure"] == "male", "std_slope"].isna().all()


def test_standardise_names_missing_columns():
    with pytest.raises(ProbeError, match=r"standardise_effects: table lacks column\(s\) \['slope_lo', 'slope_hi'\]"):
        stats.standardise_effects(_effects().drop(columns=["slope_lo", "slope_hi"]), {"age": 1.0})
    with pytest.raises(ProbeError, match=r"samples table lacks column\(s\) \['age'\]"):
        stats.measure_scales(pd.DataFrame({"x": [1.0]}), ["age"])


def test_standardised_effects_of_a_study(tiny_study):
    eff = stats.effects(tiny_study)
    out = stats.standardised_effects(tiny_study, eff)
    smp = tiny_study.table("samples")
    b = out[out["measure"] == "brightness"]
    np.testing.assert_allclose(b["std_slope"], b["slope"] / np.std(smp["brightness"], ddof=1))
    assert {"scale", "std_slope", "std_slope_lo", "std_slope_hi"} <= set(out.columns)
