"""Ground-truth scoring: known answers on synthetic interventions tables, a tiny real run end to end, errors."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from probe.cli import app
from probe.directions import DirectionError, GroundTruthScore
from probe.directions.disentanglement import importance_table, score_matrix
from probe.directions.groundtruth import run_groundtruth
from reports.groundtruth_md import seed_markdown, to_markdown

FACTORS = ["a", "b", "c", "shape"]
ALPHAS = [-2.0, -1.0, 0.0, 1.0, 2.0]
N = 20


def _samples(rng):
    return pd.DataFrame(
        {
            "sample_id": np.arange(N),
            "a": rng.normal(0, 2.0, N),
            "b": rng.normal(5, 0.5, N),
            "c": rng.normal(0, 1.0, N),
            "shape": (np.arange(N) % 3).astype(float),
        }
    )


def _table(effects: dict, rng, noise: float = 0.0) -> pd.DataFrame:
    """effects: {(method, target): {factor: per-unit-alpha change in factor stds (or 'flip' / 'swap' for shape)}}."""
    samples = _samples(rng)
    std = samples[["a", "b", "c"]].std(ddof=1)
    rows = []
    for (method, target), eff in effects.items():
        for sid in range(N):
            for al in ALPHAS:
                r = {"sample_id": sid, "target_kind": "direction", "method": method, "target": target, "alpha": al}
                for f in ("a", "b", "c"):
                    r[f"d_{f}"] = eff.get(f, 0.0) * std[f] * al + (noise * rng.normal() if al else 0.0)
                s, c0 = eff.get("shape", ""), samples["shape"][sid]
                if s == "two_way":  # heart (2) for alpha > 0, square (0) for alpha < 0
                    r["d_shape"] = (2.0 if al > 0 else 0.0 if al < 0 else c0) - c0
                elif s == "to_ellipse":  # squares and hearts become ellipses for alpha > 0: the mean index stays
                    r["d_shape"] = 1.0 - c0 if al > 0 else 0.0
                elif s == "flicker":  # the class changes at either sign of alpha, at random (no direction)
                    r["d_shape"] = float((c0 + rng.integers(1, 3)) % 3 - c0) if al else 0.0
                else:
                    r["d_shape"] = 0.0
                rows.append(r)
    return pd.DataFrame(rows), samples


def test_pure_directions_score_one_and_assign_right():
    rng = np.random.default_rng(0)
    iv, samples = _table(
        {
            ("ideal", "ideal/a"): {"a": 1.0},
            ("ideal", "ideal/b"): {"b": 0.5},
            ("ideal", "ideal/c"): {"c": 2.0},
            ("ideal", "ideal/shape"): {"shape": "two_way"},
            ("mixed", "mixed/0"): {"a": 1, "b": 1, "c": 1},
            ("mixed", "mixed/1"): {"a": 1, "b": -1, "c": 1},
            ("mixed", "mixed/2"): {"a": -1, "b": 1, "c": 1},
        },
        rng,
    )
    est = GroundTruthScore(FACTORS, categorical=["shape"]).fit(iv, samples)
    a = est.assignments_.set_index("target")
    assert a.loc[["ideal/a", "ideal/b", "ideal/c", "ideal/shape"], "factor"].tolist() == ["a", "b", "c", "shape"]
    assert np.allclose(a.loc[a.index.str.startswith("ideal"), "purity"], 1.0)
    sc = est.scores_.set_index("method")
    ideal, mixed = sc.loc["ideal"], sc.loc["mixed"]
    for k in ("disentanglement", "completeness", "mig", "purity"):
        assert ideal[k] == pytest.approx(1.0)
    assert ideal["covered"] == 4
    # equal effect on a, b, c: purity 1/3, D = 1 - log 3 / log 4
    assert np.allclose(a.loc[a.index.str.startswith("mixed"), "purity"], 1 / 3)
    assert mixed["disentanglement"] == pytest.approx(1 - np.log(3) / np.log(4))
    assert mixed["mig"] < 0.05 and mixed["purity"] < ideal["purity"]
    # importance is |slope| / std in factor stds per unit alpha
    imp = est.importance_.set_index(["target", "measure"])["importance"]
    assert imp[("ideal/c", "c")] == pytest.approx(2.0) and imp[("ideal/b", "b")] == pytest.approx(0.5)
    assert imp[("ideal/a", "b")] == 0.0
    assert set(est.importance_["kind"]) == {"slope", "class"}


def test_categorical_shape_scores_class_probabilities_not_the_index():
    rng = np.random.default_rng(1)
    iv, samples = _table(
        {("m", "m/ell"): {"shape": "to_ellipse", "a": 0.1}, ("m", "m/flicker"): {"shape": "flicker", "a": 0.1}}, rng
    )
    cat = GroundTruthScore(FACTORS, categorical=["shape"]).fit(iv, samples)
    a = cat.assignments_.set_index("target")["factor"]
    assert a["m/ell"] == "shape"  # P(ellipse) rises with alpha
    assert a["m/flicker"] == "a"  # random class changes at both signs of alpha move no P(class) with alpha
    row = cat.importance_.set_index(["target", "measure"]).loc[("m/ell", "shape")]
    p1 = (samples["shape"] == 1).mean()
    assert row["kind"] == "class" and row["spread"] == pytest.approx(np.sqrt(p1 * (1 - p1)))
    # the change of 1[ellipse] is 0, 0, 0, 1 - 1[base ellipse], same: OLS slope over alphas -2..2 = 0.3 (1 - p1)
    assert row["effect"] == pytest.approx(0.3 * (1 - p1))
    as_number = GroundTruthScore(FACTORS, categorical=[]).fit(iv, samples)  # the mean index barely moves
    assert as_number.assignments_.set_index("target")["factor"]["m/ell"] == "a"
    auto = GroundTruthScore(["a", "sprite_shape"]).fit(
        iv.rename(columns={"d_shape": "d_sprite_shape"}), samples.rename(columns={"shape": "sprite_shape"})
    )
    assert auto.categorical_used_ == ["sprite_shape"]


def test_random_directions_score_low():
    rng = np.random.default_rng(2)
    eff = {("ideal", f"ideal/{f}"): {f: 1.0} for f in "abc"}
    eff.update({("random", f"random/{i}"): dict(zip("abc", rng.normal(0, 1, 3))) for i in range(3)})
    iv, samples = _table(eff, rng, noise=0.05)
    sc = GroundTruthScore(["a", "b", "c"]).fit(iv, samples).scores_.set_index("method")
    assert sc.loc["ideal", "disentanglement"] > 0.95 and sc.loc["ideal", "purity"] > 0.95
    assert sc.loc["random", "disentanglement"] < 0.6 and sc.loc["random", "purity"] < 0.85
    assert sc.loc["random", "mig"] < sc.loc["ideal", "mig"]


def test_score_matrix_definitions():
    R = np.array([[2.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    s = score_matrix(R)
    assert s["top"].tolist() == [0, 0, -1]
    assert s["purity"][:2].tolist() == [1.0, 0.5] and np.isnan(s["purity"][2])
    assert s["disentanglement"][:2] == pytest.approx([1.0, 0.0])
    assert s["weight"].tolist() == [0.5, 0.5, 0.0]
    assert s["gap"] == pytest.approx([2 / 3 - 1 / 3, 1.0])
    assert s["completeness"][1] == pytest.approx(1.0)
    with pytest.raises(DirectionError, match=">= 0"):
        score_matrix(-R)
    with pytest.raises(DirectionError, match=r"\[K, F\]"):
        score_matrix(np.zeros(3))


def test_errors_name_the_field():
    rng = np.random.default_rng(3)
    iv, samples = _table({("m", "m/a"): {"a": 1.0}}, rng)
    with pytest.raises(DirectionError, match=r"^factors: \['zz'\] are not measures of this study"):
        GroundTruthScore(["a", "zz"]).fit(iv, samples)
    with pytest.raises(DirectionError, match=r"^categorical: \['c'\] are not among the factors"):
        GroundTruthScore(["a", "b"], categorical=["c"]).fit(iv, samples)
    with pytest.raises(DirectionError, match="pass the samples table too"):
        GroundTruthScore().fit(iv)
    with pytest.raises(DirectionError, match="walked no directions"):
        importance_table(iv.assign(target_kind="variable"), samples, ["a"])
    with pytest.raises(DirectionError, match="has no parameter"):
        GroundTruthScore().set_params(bogus=1)
    with pytest.raises(DirectionError, match=r"^circular: \['shape'\] are not continuous factors"):
        GroundTruthScore(FACTORS, categorical=["shape"], circular={"shape": 3}).fit(iv, samples)
    assert GroundTruthScore(["a"]).get_params() == {"factors": ["a"], "categorical": None, "circular": None}


def test_circular_factor_differences_are_wrapped():
    """rotation with period 90: a walk of +10 deg per unit alpha that crosses 0/90 must still read as +10."""
    rng = np.random.default_rng(4)
    base = rng.uniform(0, 90, N)
    samples = pd.DataFrame({"sample_id": np.arange(N), "sprite_rotation": base, "a": rng.normal(0, 1, N)})
    rows = []
    for sid in range(N):
        for al in ALPHAS:
            rot = (base[sid] + 10 * al) % 90
            rows.append(
                {
                    "sample_id": sid,
                    "target_kind": "direction",
                    "method": "m",
                    "target": "m/rot",
                    "alpha": al,
                    "d_sprite_rotation": rot - base[sid],
                    "d_a": 0.0,
                }
            )
    iv = pd.DataFrame(rows)
    info = {"sprite_rotation": {"unit": "degrees", "description": "rotation, period 90 deg"}}
    from probe.directions.disentanglement import circular_measures

    assert circular_measures(["sprite_rotation", "a"], info) == {"sprite_rotation": 90.0}
    est = GroundTruthScore().fit(iv, samples)  # auto: the built-in sprite_rotation measure is circular, period 90
    row = est.importance_.set_index("measure").loc["sprite_rotation"]
    assert row["kind"] == "turn" and row["effect"] == pytest.approx(10.0)
    assert row["spread"] == pytest.approx(base.std(ddof=1))
    raw = GroundTruthScore(circular={}).fit(iv, samples).importance_.set_index("measure")
    assert abs(raw.loc["sprite_rotation", "effect"] - 10.0) > 1.0  # without wrapping the slope is wrong


def test_circular_factor_move_toward_one_angle():
    """A linear move of the (cos, sin) point toward 0 deg turns samples both ways: the turn slope misses it."""
    rng = np.random.default_rng(5)
    base = rng.uniform(0, 90, 60)
    phi = 2 * np.pi * base / 90
    samples = pd.DataFrame({"sample_id": np.arange(60), "sprite_rotation": base, "a": rng.normal(0, 1, 60)})
    rows = []
    for sid in range(60):
        for al in ALPHAS:
            th = np.arctan2(np.sin(phi[sid]), np.cos(phi[sid]) + 0.2 * al) * 90 / (2 * np.pi) % 90
            rows.append(
                {
                    "sample_id": sid,
                    "target_kind": "direction",
                    "method": "m",
                    "target": "m/toward0",
                    "alpha": al,
                    "d_sprite_rotation": th - base[sid],
                    "d_a": 0.1 * al,
                }
            )
    iv = pd.DataFrame(rows)
    est = GroundTruthScore().fit(iv, samples)
    row = est.importance_.set_index("measure").loc["sprite_rotation"]
    assert row["kind"] == "circle" and row["effect"] > 0.05  # the point is renormalised to the circle
    assert est.assignments_["factor"].iloc[0] == "sprite_rotation"
    turn_only = GroundTruthScore(circular={}).fit(
        iv.assign(d_sprite_rotation=lambda d: (d["d_sprite_rotation"] + 45) % 90 - 45), samples
    )
    assert turn_only.assignments_["factor"].iloc[0] == "a"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gt") / "study"
    est = run_groundtruth(
        out,
        model="tiny-stylegan",
        measures=["image"],
        k=3,
        n_fit=120,
        dplase_steps=2,
        n_samples=4,
        progress=False,
        log=lambda s: None,
        markdown=to_markdown,
    )
    return out, est


def test_end_to_end_on_tiny_stylegan(tiny_run):
    from probe.store import Study

    out, est = tiny_run
    st = Study(out)
    assert st.status == "complete" and st.space == "w"
    assert sorted(st.directions()) == ["dplase", "ganspace", "interfacegan", "random", "sefa"]
    gt = pd.read_parquet(out / "groundtruth.parquet")
    assert set(gt["method"]) == {"dplase", "ganspace", "interfacegan", "random", "sefa"}
    assert len(gt) == (6 + 4 * 3) * 6  # interfacegan: one per measure; k = 3 for the others; 6 image measures
    assert (gt["importance"] >= 0).all() and gt.groupby("target")["is_top"].sum().eq(1).all()
    assert set(est.assignments_[est.assignments_["method"] == "interfacegan"]["target"]) == {
        f"interfacegan/{m}" for m in ["brightness", "contrast", "saturation", "hue", "centroid_x", "centroid_y"]
    }
    md = (out / "groundtruth.md").read_text()
    assert md.splitlines()[0].startswith("| method | K | disentanglement")
    assert [l.split("|")[1].strip() for l in md.splitlines()[2:]] == [
        "InterFaceGAN",
        "DP-LaSE",
        "GANSpace",
        "SeFa",
        "random",
    ]
    # every direction walked with the same step: the model's RMS std of w (GANSpace's per-PC std replaced)
    from probe.directions.groundtruth import w_spread
    from probe.restudy import study_model, study_target

    unit = w_spread(study_model(st), seed=0)
    assert [study_target(st, t).scale for t in st.target_names] == pytest.approx([unit] * 18) and 0 < unit < 10
    assert to_markdown(est) == md.strip()
    assert est.scores_["disentanglement"].between(0, 1).all() and est.scores_["purity"].between(1 / 6, 1).all()


def test_scores_rebuild_from_the_stored_table(tiny_run):
    out, est = tiny_run
    again = GroundTruthScore.from_table(pd.read_parquet(out / "groundtruth.parquet"))
    pd.testing.assert_frame_equal(again.scores_, est.scores_)
    pd.testing.assert_frame_equal(again.assignments_, est.assignments_)
    assert again.factors_used_ == est.factors_used_
    with pytest.raises(DirectionError, match=r"lacks columns \['importance'\]; make it with `probe gt-score`"):
        GroundTruthScore.from_table(est.importance_.drop(columns="importance"))


def test_gt_score_cli_errors(tmp_path):
    r = CliRunner().invoke(app, ["gt-score", "--model", "tiny-dcgan", "--measures", "image", "--out", str(tmp_path)])
    assert r.exception is not None and "has no w space" in str(r.exception)
    r = CliRunner().invoke(app, ["gt-score", "--spec", str(tmp_path / "nope.toml"), "--out", str(tmp_path)])
    assert r.exception is not None and "does not exist" in str(r.exception)


def test_groundtruth_on_sprites(tmp_path):
    """The shipped sprites model with the factor CNN (skipped until both exist): shape is categorical, rotation
    circular, every sprite factor scored."""
    from probe.errors import ProbeError

    try:
        from probe.measures.sprites import load_factor_net
        from probe.models import load_model

        load_factor_net()
        load_model("sprites")
    except ProbeError as e:
        pytest.skip(f"sprites model or factor CNN not available: {e}")
    est = run_groundtruth(
        tmp_path / "gt", k=2, n_fit=60, dplase_steps=1, n_samples=3, progress=False, log=lambda s: None
    )
    assert est.factors_used_ == [
        "sprite_shape",
        "sprite_scale",
        "sprite_rotation",
        "sprite_x",
        "sprite_y",
        "sprite_hue",
    ]
    assert est.categorical_used_ == ["sprite_shape"] and est.circular_used_ == {"sprite_rotation": 90.0}
    kinds = est.importance_.set_index("measure")["kind"]
    assert set(kinds.loc["sprite_shape"]) == {"class"} and set(kinds.loc["sprite_x"]) == {"slope"}
    assert len(est.scores_) == 5


def test_seed_summary_means_stds_and_wins():
    from probe.directions.disentanglement import SCORE_COLUMNS, seed_summary

    def scores(d_ifg, d_rand):
        return pd.DataFrame(
            [["interfacegan", 6, 6, d_ifg, 0.2, 0.3, 0.4, 5, 0.25], ["random", 6, 6, d_rand, 0.1, 0.1, 0.3, 4, 0.09]],
            columns=SCORE_COLUMNS,
        )

    s = seed_summary({0: scores(0.20, 0.16), 1: scores(0.10, 0.14), 2: scores(0.30, 0.12)}).set_index("method")
    assert s.loc["interfacegan", "disentanglement_mean"] == pytest.approx(0.2)
    assert s.loc["interfacegan", "disentanglement_std"] == pytest.approx(0.1)
    assert s.loc["interfacegan", "disentanglement_wins"] == 2 and s.loc["random", "disentanglement_wins"] == 0
    assert s.loc["random", "seeds"] == 3 and s.loc["random", "covered_std"] == 0
    md = seed_markdown(s.reset_index()).splitlines()
    assert md[0].startswith("| method | seeds | disentanglement |") and md[0].endswith("| D above random (seeds) |")
    assert (
        md[2] == "| InterFaceGAN | 3 | 0.20 ± 0.10 | 0.20 ± 0.00 | 0.30 ± 0.00 | 0.40 ± 0.00 | 5.00 ± 0.00 | "
        "0.25 ± 0.00 | 2 of 3 |"
    )
    assert md[3].endswith("| – |")
    one = seed_summary({4: scores(0.2, 0.1)})
    assert np.isnan(one["purity_std"]).all() and "±" not in seed_markdown(one)
    with pytest.raises(DirectionError, match="^seeds: no ground-truth runs"):
        seed_summary({})


def test_gt_score_over_seeds_on_tiny_stylegan(tiny_run, tmp_path):
    from probe.directions.groundtruth import run_groundtruth_seeds

    out, est = tiny_run
    msgs = []
    summary = run_groundtruth_seeds(
        tmp_path,
        [0, 1],
        model="tiny-stylegan",
        measures=["image"],
        k=3,
        n_fit=120,
        dplase_steps=2,
        n_samples=4,
        progress=False,
        log=msgs.append,
        markdown=to_markdown,
        seeds_markdown=seed_markdown,
    )
    # seed 0 is the default run: the same table
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "seed-0" / "groundtruth.parquet"), pd.read_parquet(out / "groundtruth.parquet")
    )
    s0 = pd.read_parquet(tmp_path / "seed-0" / "samples.parquet")
    s1 = pd.read_parquet(tmp_path / "seed-1" / "samples.parquet")
    assert not np.allclose(s0["brightness"], s1["brightness"])  # other samples
    per_seed = [pd.read_parquet(tmp_path / f"seed-{s}" / "groundtruth.parquet") for s in (0, 1)]
    assert not per_seed[0]["importance"].equals(per_seed[1]["importance"])
    assert summary["method"].tolist() == ["interfacegan", "dplase", "ganspace", "sefa", "random"]
    assert (summary["seeds"] == 2).all() and summary["disentanglement_mean"].between(0, 1).all()
    assert (tmp_path / "groundtruth_seeds.md").read_text().count("\n") == 7
    assert pd.read_csv(tmp_path / "groundtruth_seeds.csv")["purity_mean"].tolist() == pytest.approx(
        summary["purity_mean"].tolist()
    )
    assert any(m.startswith("== seed 1 (2 of 2)") for m in msgs)


def test_gt_score_cli_seed_errors(tmp_path):
    r = CliRunner().invoke(app, ["gt-score", "--seed", "1", "--seeds", "0,1", "--out", str(tmp_path)])
    assert r.exception is not None and "--seed and --seeds: give one of them" in str(r.exception)
    r = CliRunner().invoke(app, ["gt-score", "--seeds", "0,x", "--out", str(tmp_path)])
    assert r.exception is not None and "--seeds: expected a comma list of integers" in str(r.exception)
    r = CliRunner().invoke(app, ["gt-score", "--seeds", "1,1", "--out", str(tmp_path)])
    assert r.exception is not None and "--seeds: give distinct seeds" in str(r.exception)
