"""probe.stats: closed-form OLS and Pearson against statsmodels / scipy, BH q, controlling variables, the
study-level tables and `probe stats`."""

import shutil

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats as sst
from statsmodels.stats.multitest import multipletests

from probe import schema
from probe import stats as S
from probe.errors import ProbeError
from probe.store import Study

ALPHAS = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
SLOPES = [0.0, 0.3, -0.8, 1.5]


@pytest.fixture(scope="module")
def walks():
    """Interventions rows: 4 variable targets with planted slopes on gender, age constant, 30 samples."""
    rng = np.random.default_rng(0)
    n = 30
    rows = []
    for t, b in enumerate(SLOPES):
        a = np.tile(ALPHAS, n)
        rows.append(
            pd.DataFrame(
                {
                    "sample_id": np.repeat(np.arange(n), len(ALPHAS)),
                    "method": "variable",
                    "target": f"z[{t}]",
                    "alpha": a,
                    "d_gender": b * a + rng.normal(0, 0.5, len(a)),
                    "d_age": 0.0,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_ols_matches_statsmodels(walks):
    r = S.ols_slopes(walks["alpha"], walks["d_gender"], walks["target"])
    assert list(r["group"]) == ["z[0]", "z[1]", "z[2]", "z[3]"]
    for i, t in enumerate(r["group"]):
        g = walks[walks.target == t]
        fit = sm.OLS(g["d_gender"].to_numpy(), sm.add_constant(g["alpha"].to_numpy())).fit()
        lo, hi = fit.conf_int(0.05)[1]
        assert r["slope"][i] == pytest.approx(fit.params[1], rel=1e-9, abs=1e-12)
        assert r["slope_lo"][i] == pytest.approx(lo, rel=1e-9) and r["slope_hi"][i] == pytest.approx(hi, rel=1e-9)
        assert r["p"][i] == pytest.approx(fit.pvalues[1], rel=1e-6, abs=1e-300)
        assert r["r2"][i] == pytest.approx(fit.rsquared, rel=1e-9, abs=1e-12)
        assert r["n"][i] == 150


def test_effects_recover_planted_slopes(walks):
    eff = S.effects_from_table(walks, ["gender", "age"])
    assert list(eff.columns) == list(schema.EFFECT_COLUMNS) and len(eff) == 8
    g = eff[eff.measure == "gender"].set_index("target")
    for t, b in enumerate(SLOPES):
        row = g.loc[f"z[{t}]"]
        assert row.slope_lo <= b <= row.slope_hi  # 95% CI covers the planted slope
        assert abs(row.slope - b) < 0.1
    assert (g.loc[["z[1]", "z[2]", "z[3]"], "q"] < 1e-6).all() and g.loc["z[0]", "q"] > 0.05
    assert ((g["r2"] >= 0) & (g["r2"] <= 1)).all()
    # constant measure: exact zero slope, no NaN, p = 1
    a = eff[eff.measure == "age"]
    assert (a.slope == 0).all() and (a.slope_lo == 0).all() and (a.p == 1).all() and (a.q == 1).all()
    assert not eff[["slope", "slope_lo", "slope_hi", "r2", "p", "q"]].isna().any().any()
    assert (eff.q >= eff.p - 1e-15).all()
    with pytest.raises(ProbeError, match="d_smile"):
        S.effects_from_table(walks, ["smile"])


def test_degenerate_groups_give_nan_not_crash():
    r = S.ols_slopes([0.0, 1.0, 1.0, 1.0, 2.0], [1.0, 2.0, np.nan, 5.0, 3.0], ["a", "a", "b", "b", "c"])
    assert r["n"].tolist() == [2, 1, 1]
    assert r[["slope", "p"]].isna().all().all()
    perfect = S.ols_slopes([0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 7.0], ["a"] * 4)
    assert perfect["slope"][0] == pytest.approx(2.0) and perfect["p"][0] == 0 and perfect["r2"][0] == 1


def test_bh_q_values():
    rng = np.random.default_rng(3)
    p = np.r_[rng.uniform(size=40), rng.uniform(0, 1e-3, 10)]
    q = S.bh_q(p)
    assert np.allclose(q, multipletests(p, method="fdr_bh")[1])
    assert (q >= p).all() and (q <= 1).all()
    order = np.argsort(p)
    assert (np.diff(q[order]) >= -1e-15).all()  # monotone in p
    qn = S.bh_q(np.r_[p[:5], np.nan])
    assert np.isnan(qn[-1]) and np.allclose(qn[:5], multipletests(p[:5], method="fdr_bh")[1])


def test_pearson_matches_scipy():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 5))
    y = np.c_[x[:, 1] * 2 + rng.normal(size=40), rng.normal(size=40), np.full(40, 3.0)]
    y[[0, 7], 1] = np.nan
    r, p, n = S.pearson(x, y)
    assert r.shape == (5, 3) and n.tolist() == [40, 38, 40]
    for v in range(5):
        ok = np.isfinite(y[:, 1])
        for j, (xx, yy) in enumerate([(x[:, v], y[:, 0]), (x[ok, v], y[ok, 1])]):
            ref = sst.pearsonr(xx, yy)
            assert r[v, j] == pytest.approx(ref.statistic, abs=1e-12)
            assert p[v, j] == pytest.approx(ref.pvalue, rel=1e-6)
    assert (r[:, 2] == 0).all() and (p[:, 2] == 1).all()  # constant measure


def test_correlations_and_controlling():
    rng = np.random.default_rng(5)
    lat = rng.normal(size=(80, 6)).astype(np.float32)
    samples = pd.DataFrame(
        {
            "sample_id": np.arange(80)[::-1],
            "gender": lat[::-1, 2] - 0.5 * lat[::-1, 4] + 0.3 * rng.normal(size=80),
            "age": 1.0,
        }
    )
    cor = S.correlations_from_arrays(lat, samples, ["gender", "age"])
    assert list(cor.columns) == list(schema.CORRELATION_COLUMNS) and len(cor) == 12
    g = cor[cor.measure == "gender"].set_index("variable")
    assert g.loc["z[2]", "r"] > 0.8 and g.loc["z[4]", "r"] < -0.3 and g.loc["z[2]", "q"] < 1e-10
    assert (cor[cor.measure == "age"].r == 0).all()
    ctl = S.controlling(None, cor)
    assert list(ctl.columns) == list(schema.CONTROLLING_COLUMNS)
    top = ctl[ctl.measure == "gender"]
    assert top["target"].tolist()[:2] == ["z[2]", "z[4]"] and top["rank"].tolist()[:2] == [1, 2]
    assert (top["source"] == "correlation").all() and (top["q"] <= 0.05).all()
    assert not (ctl.measure == "age").any()
    # intervention slopes take precedence where variable targets exist
    eff = pd.DataFrame(
        {
            "method": ["variable", "variable", "variable", "random"],
            "target": ["z[0]", "z[4]", "z[2]", "random/d0"],
            "measure": "gender",
            "slope": [0.1, -2.0, 1.0, 9.0],
            "slope_lo": 0.0,
            "slope_hi": 0.0,
            "r2": 0.5,
            "p": [0.2, 1e-5, 1e-4, 1e-9],
            "q": [0.2, 3e-5, 1.5e-4, 1e-9],
            "n": 10,
        }
    )
    ctl2 = S.controlling(eff, cor)
    t = ctl2[ctl2.measure == "gender"]
    assert t["target"].tolist() == ["z[4]", "z[2]"] and (t["source"] == "intervention").all()
    assert t["effect"].tolist() == [-2.0, 1.0]
    with pytest.raises(ProbeError, match="q_max"):
        S.controlling(eff, cor, q_max=0)


def test_alpha_summary(walks):
    s = S.alpha_summary(walks, "d_gender", by=["target"])
    assert list(s.columns) == ["target", "alpha", "n", "mean", "sd", "lo", "hi"] and len(s) == 20
    z3 = s[s.target == "z[3]"]
    assert (z3["n"] == 30).all() and z3["mean"].is_monotonic_increasing
    assert ((z3["lo"] <= 1.5 * z3["alpha"]) & (1.5 * z3["alpha"] <= z3["hi"])).all()
    one = S.alpha_summary(walks.head(1), "d_gender")
    assert one["lo"][0] == one["hi"][0] == one["mean"][0]


def test_analyze_tiny_study_and_cli(tiny_study, tmp_path):
    from typer.testing import CliRunner

    from probe.cli import app

    path = tmp_path / "study"
    shutil.copytree(tiny_study.path, path)
    st = Study(path)
    out = S.analyze(st)
    n_targets = st.table("interventions")["target"].nunique()
    m = len(st.measures)
    assert len(out["effects"]) == n_targets * m
    assert len(out["correlations"]) == 16 * m  # tiny-dcgan z_dim = 16
    for name in ("effects", "correlations", "controlling"):
        assert st.table(name).equals(out[name].reset_index(drop=True))
    eff = out["effects"]
    assert set(eff["method"]) == {"variable", "random", "channel"}
    assert (eff["q"] >= eff["p"] - 1e-15).all()
    res = CliRunner().invoke(app, ["stats", str(path), "--q-max", "0.1"])
    assert res.exit_code == 0, res.output
    assert f"effects: {n_targets * m} tests" in res.output and "controlling:" in res.output
    bad = CliRunner().invoke(app, ["stats", str(tmp_path / "nope")])
    assert isinstance(bad.exception, ProbeError) and "does not exist" in str(bad.exception)
