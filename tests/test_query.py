"""probe.query: DuckDB over interventions.parquet gives the same rows and numbers as pandas on the whole table."""

import numpy as np
import pandas as pd
import pytest

from probe import stats
from probe.query import Query, QueryError
from probe.store import StoreError, Study


@pytest.fixture(scope="module")
def q(tiny_study):
    return Query(tiny_study)


def test_rows_columns_and_filters_match_pandas(tiny_study, q):
    iv = tiny_study.table("interventions")
    pd.testing.assert_frame_equal(q.interventions(), iv)
    got = q.interventions(
        ["sample_id", "target", "alpha", "d_brightness"],
        where={"target": ["random/d0", "z[2]"], "sample_id": [3, 5, 7]},
    )
    want = iv[iv["target"].isin(["random/d0", "z[2]"]) & iv["sample_id"].isin([3, 5, 7])]
    pd.testing.assert_frame_equal(got, want[["sample_id", "target", "alpha", "d_brightness"]].reset_index(drop=True))
    got = q.interventions(["target", "alpha"], where={"!target_kind": "channel"}, alpha=2.0)
    want = iv[(iv["target_kind"] != "channel") & (iv["alpha"] == 2.0)][["target", "alpha"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)
    assert q.count() == len(iv) == 840
    assert q.count({"target": "b2:c3"}) == 120 and q.count({"target": []}) == 0
    assert q.sample_ids(limit=3).tolist() == [0, 1, 2] and q.alphas() == [-2.0, -1.0, 0.0, 1.0, 2.0]


def test_targets_are_the_distinct_target_rows(tiny_study, q):
    iv = tiny_study.table("interventions")
    want = (
        iv[["target", "target_kind", "method", "walk"]]
        .drop_duplicates("target")
        .sort_values("target")
        .reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(q.targets(), want)


def test_values_are_bound_never_formatted(q):
    assert q.count({"target": ["z[0]' OR '1'='1", 'x"); DROP TABLE t; --']}) == 0
    with pytest.raises(QueryError) as e:
        q.interventions(['target" FROM x; --'])
    assert str(e.value).startswith(
        "columns: ['target\" FROM x; --'] not in the interventions table of study "
        "'tiny'; columns are ['sample_id', 'target_kind', "
    )
    with pytest.raises(QueryError, match=r"^where: \['nope'\] not in the interventions table"):
        q.count({"nope": 1})


def test_effects_via_duckdb_equal_the_pandas_path(tiny_study, tiny_study_stylegan):
    for st in (tiny_study, tiny_study_stylegan):
        want = stats.effects_from_table(st.table("interventions"), st.measures)
        got = stats.effects(st)
        assert got["method"].tolist() == want["method"].tolist() and got["target"].tolist() == want["target"].tolist()
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9, atol=1e-12)


def test_effects_with_nan_rows_and_constant_groups_equal_pandas(tiny_study, tmp_path):
    import shutil

    shutil.copytree(tiny_study.path, tmp_path / "s")
    st = Study(tmp_path / "s")
    iv = st.table("interventions")
    iv.loc[iv.index % 7 == 0, "d_brightness"] = np.nan  # NaN rows dropped per measure
    iv.loc[iv["target"] == "z[1]", "d_contrast"] = 0.25  # constant y: slope 0, p 1
    keep = (iv["sample_id"] == 0) & (iv["step"] <= 1)
    iv.loc[(iv["target"] == "z[2]") & ~keep, "d_hue"] = np.nan  # n = 2 < 3: NaN
    st.write_table("interventions", iv)
    want = stats.effects_from_table(iv, st.measures)
    got = stats.effects(st)
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9, atol=1e-12)
    row = got[(got["target"] == "z[1]") & (got["measure"] == "contrast")].iloc[0]
    assert (row["slope"], row["p"], row["r2"]) == (0.0, 1.0, 0.0)
    assert got[(got["target"] == "z[2]") & (got["measure"] == "hue")]["slope"].isna().all()


def test_ols_sums_slopes_equal_statsmodels(q, tiny_study):
    import statsmodels.api as sm

    iv = tiny_study.table("interventions")
    eff = stats.effects_from_query(q, ["brightness"], where={"target": "random/d1"})
    d = iv[iv["target"] == "random/d1"]
    fit = sm.OLS(d["d_brightness"].to_numpy(), sm.add_constant(d["alpha"].to_numpy())).fit()
    lo, hi = fit.conf_int(0.05)[1]
    r = eff.iloc[0]
    assert len(eff) == 1 and r["n"] == 120
    np.testing.assert_allclose(
        [r["slope"], r["slope_lo"], r["slope_hi"], r["r2"], r["p"]],
        [fit.params[1], lo, hi, fit.rsquared, fit.pvalues[1]],
        rtol=1e-9,
        atol=1e-15,
    )


def test_alpha_summary_equals_pandas(q, tiny_study):
    iv = tiny_study.table("interventions")
    got = q.alpha_summary(["d_brightness", "dlogp"], by=["target"], where={"target": ["z[0]", "random/d0"]})
    for v in ("d_brightness", "dlogp"):
        d = iv[iv["target"].isin(["z[0]", "random/d0"])]
        want = stats.alpha_summary(d, v, by=["target"])
        g = got[got["value"] == v].drop(columns="value").reset_index(drop=True)
        want["target"] = want["target"].astype("string")
        pd.testing.assert_frame_equal(g, want, check_exact=False, rtol=1e-9, atol=1e-12, check_dtype=False)


def test_query_of_an_incomplete_study_names_the_fix(tiny_study, tmp_path):
    import shutil

    shutil.copytree(tiny_study.path, tmp_path / "s")
    st = Study(tmp_path / "s")
    st.manifest["status"] = "running"
    st.save_manifest()
    with pytest.raises(StoreError) as e:
        Query(st)
    assert str(e.value) == (
        f"study {str(st.path)!r} is incomplete (status 'running'); finish it with "
        f"probe run SPEC.toml --out {st.path} --resume"
    )
