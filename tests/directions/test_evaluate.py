"""evaluate() on a real tiny study (run by probe.study), and the `probe discover` / `probe evaluate` commands."""

import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from probe.cli import app
from probe.directions import DirectionError, RandomDirections, evaluate, evaluate_study, fit_from_model
from probe.study import parse_spec, run_study

MEASURES = ["brightness", "contrast", "saturation"]


def _spec(tmp_path, targets, name="t"):
    return parse_spec(
        {
            "name": name,
            "model": "tiny-dcgan",
            "measures": MEASURES,
            "n_samples": 12,
            "seed": 0,
            "space": "z",
            "alphas": [-2.0, -1.0, 0.0, 1.0, 2.0],
            "batch_size": 64,
            "targets": targets,
        },
        base=tmp_path,
    )


@pytest.fixture(scope="module")
def study(tiny_dcgan, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evalstudy")
    fit_from_model(tiny_dcgan, ["brightness"], n=200, seed=0, ratio=0.25).directions_.save(tmp / "interfacegan.npz")
    RandomDirections(2, seed=0).fit(tiny_dcgan).directions_.save(tmp / "random.npz")
    spec = _spec(
        tmp,
        [
            {"kind": "directions", "file": "interfacegan.npz", "walk": "linear"},
            {"kind": "directions", "file": "random.npz", "walk": "isodensity"},
            {"kind": "variables", "indices": [0]},
        ],
    )
    return run_study(spec, tmp / "study", progress=False)


def test_evaluate_rows_slopes_specificity_and_drift(study):
    df = evaluate(study)
    assert set(df["target"]) == {"interfacegan/brightness", "random/random0", "random/random1"}  # no z[0]
    assert len(df) == 3 * len(MEASURES)
    iv = study.table("interventions")
    sd = study.table("samples")[MEASURES].std(ddof=1)
    for r in df.itertuples():
        g = iv[iv["target"] == r.target]
        slope = np.polyfit(g["alpha"], g[f"d_{r.measure}"], 1)[0]
        assert r.slope == pytest.approx(slope, rel=1e-6, abs=1e-9)
        assert r.slope_lo <= r.slope <= r.slope_hi
        assert r.effect_std == pytest.approx(r.slope / sd[r.measure], rel=1e-6)
    ifg = df[df["target"] == "interfacegan/brightness"].set_index("measure")
    assert (ifg["target_measure"] == "brightness").all() and ifg.loc["brightness", "is_target"]
    e = ifg["effect_std"].abs()
    assert ifg["specificity"].iloc[0] == pytest.approx(e["brightness"] / e.drop("brightness").sum())
    assert ifg.loc["brightness", "slope"] > 0  # the boundary points toward brighter
    rnd = df[df["target"] == "random/random0"]
    assert rnd["is_target"].sum() == 1  # unsupervised: largest |effect_std| wins
    assert rnd.loc[rnd["is_target"], "effect_std"].abs().iloc[0] == rnd["effect_std"].abs().max()
    assert (rnd["dlogp_abs_max"] < 1e-3).all() and (rnd["walk"] == "isodensity").all()
    assert (ifg["dlogp_abs_mean"] > 0.1).all() and (ifg["dlogp_abs_max"] >= ifg["dlogp_abs_mean"]).all()


def test_evaluate_study_writes_the_table(study):
    evaluate_study(study)
    assert study.has("evaluation")
    back = study.table("evaluation")
    assert {"method", "target", "measure", "slope", "specificity", "dlogp_abs_mean", "dlogp_abs_max"} <= set(back)
    assert len(back) == 9


def test_evaluate_without_direction_targets_names_the_fix(tmp_path):
    st = run_study(_spec(tmp_path, [{"kind": "variables", "indices": [1]}]), tmp_path / "s", progress=False)
    with pytest.raises(DirectionError, match="walked no directions; add direction targets"):
        evaluate(st)


def test_cli_discover_then_walk_then_evaluate(study, tmp_path):
    runner = CliRunner()
    for args in (
        ["--method", "sefa", "--k", "3"],
        ["--method", "random", "--k", "2", "--name", "rand2"],
        [
            "--method",
            "interfacegan",
            "--measures",
            "brightness,contrast",
            "--n",
            "200",
            "--ratio",
            "brightness=0.2,contrast=0.3",
            "--condition",
            "brightness:contrast",
        ],
        [
            "--method",
            "interfacegan",
            "--from-study",
            "--ratio",
            "0.25",
            "--measures",
            "brightness",
            "--name",
            "ifg-own",
        ],
    ):
        r = runner.invoke(app, ["discover", str(study.path), *args, "--no-progress"])
        assert r.exit_code == 0, r.output
    sets = study.directions()
    assert len(sets["sefa"]) == 3 and len(sets["rand2"]) == 2
    assert sets["interfacegan"].names == ["brightness", "contrast", "brightness|contrast"]
    assert [i["ratio"] for i in sets["interfacegan"].info] == [0.2, 0.3, 0.2]
    assert "held-out accuracy" in r.output and sets["ifg-own"].provenance["n_latents"] == 12
    spec = _spec(tmp_path, [{"kind": "directions", "file": str(study.path / "directions" / "sefa.npz")}], "b")
    st = run_study(spec, tmp_path / "b", progress=False)
    r = runner.invoke(app, ["evaluate", str(st.path)])
    assert r.exit_code == 0, r.output
    assert "3 directions evaluated" in r.output and st.has("evaluation")


def test_cli_errors_are_one_line(study):
    r = CliRunner().invoke(app, ["discover", str(study.path), "--method", "interfacegan", "--condition", "gender"])
    assert r.exit_code != 0 and "write PRIMAL:COND" in str(r.exception)
    r = CliRunner().invoke(app, ["discover", str(study.path), "--method", "interfacegan", "--ratio", "a=b"])
    assert r.exit_code != 0 and "measure=value pairs" in str(r.exception)
    r = CliRunner().invoke(app, ["discover", str(study.path), "--method", "sefa", "--steps", "5"])
    assert r.exit_code != 0 and str(r.exception) == "--steps does not apply to --method sefa; drop it"
    r = CliRunner().invoke(app, ["discover", str(study.path), "--method", "random", "--from-study"])
    assert r.exit_code != 0 and "--from-study applies to supervised methods" in str(r.exception)
    p = subprocess.run(
        [sys.executable, "-c", "from probe.cli import main; main()", "discover", str(study.path), "--method", "pca"],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2 and p.stderr.strip().startswith("error:") and "--method 'pca' unknown" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_method_summary_is_the_median_specificity_per_method(study):
    from probe.directions import method_summary

    df = evaluate(study)
    s = method_summary(df)
    assert s["method"].tolist() == ["interfacegan", "random"]  # the registry's order
    per = df[df["is_target"]].set_index("target")
    rnd = s.set_index("method").loc["random"]
    assert rnd["directions"] == 2
    assert rnd["specificity"] == pytest.approx(np.median(per.loc[["random/random0", "random/random1"], "specificity"]))
    assert rnd["dlogp_abs_max"] == pytest.approx(per.loc[["random/random0", "random/random1"], "dlogp_abs_max"].max())
    by_walk = method_summary(df, by=("method", "walk"))
    assert by_walk[["method", "walk"]].values.tolist() == [["interfacegan", "linear"], ["random", "isodensity"]]
    with pytest.raises(DirectionError, match=r"evaluation table lacks columns \['specificity'\]"):
        method_summary(df.drop(columns="specificity"))
