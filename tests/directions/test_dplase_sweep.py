"""The DP-LaSE sweep script: config selection, step sizes in units of the space's spread, the reduced sprites run."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from probe.directions import DirectionSet
from probe.errors import ProbeError

SITES = ["b4", "b8", "b16", "b32", "b64"]


@pytest.fixture(scope="module")
def sweep():
    path = Path(__file__).resolve().parents[2] / "scripts" / "dplase_sweep.py"
    spec = importlib.util.spec_from_file_location("dplase_sweep", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_select_configs_rejoins_names_with_commas_and_expands_reduced(sweep):
    full = sweep.configs(SITES, "b16")
    picked = sweep.select_configs(full, "uniform,step_size=10,default,reduced".split(","))
    names = [n for n, _ in picked]
    assert names[:2] == ["uniform,step_size=10", "default"]
    assert names[2:] == [n for n, _ in sweep.REDUCED if n != "default"]  # no duplicate default
    assert dict(picked)["uniform,step_size=10"] == {"step_distribution": "uniform", "step_size": 10.0}
    assert sweep.select_configs(full, None) == full
    assert [n for n, _ in sweep.select_configs(full, ["step_std=2+linear"])] == ["step_std=2+linear"]


def test_select_configs_unknown_name_is_one_line(sweep):
    with pytest.raises(ProbeError) as e:
        sweep.select_configs(sweep.configs(SITES, "b16"), ["step=2"])
    assert str(e.value).startswith("--configs: 'step=2' unknown; use 'reduced' or some of ['default'")
    assert "\n" not in str(e.value)


def test_resolve_turns_step_std_into_step_size(sweep):
    assert sweep.resolve({"step_std": 2.0, "site": "b8"}, 0.1079) == {"site": "b8", "step_size": 0.2158}
    assert sweep.resolve({"step_size": 10.0}, 0.1079) == {"step_size": 10.0}
    ref = dict(sweep.REDUCED)["authors-code+step_std=2"]
    kw = sweep.resolve(ref, 0.5)
    assert kw["step_size"] == 1.0 and kw["step_distribution"] == "uniform" and "step_std" not in kw
    assert ref["step_std"] == 2.0  # the config itself is untouched


def test_top_factors_counts_most_frequent_first(sweep):
    a = pd.DataFrame({"factor": ["scale", "y", "scale", "", "x", "scale", "y"]})
    assert sweep.top_factors(a) == "scale:3 y:2 x:1"


def test_summary_counts_seeds_above_random(sweep):
    runs = pd.DataFrame(
        {
            "benchmark": ["sprites-gt"] * 3,
            "config": ["a"] * 3,
            "seed": [0, 1, 2],
            "fit_seconds": [1.0, 2.0, 3.0],
            "step_size": [0.2] * 3,
            "disentanglement": [0.2, 0.1, 0.3],
            "d_minus_random": [0.05, -0.02, 0.1],
        }
    )
    s = sweep.summarise(runs).iloc[0]
    assert s["beats_random"] == 2 and s["seeds"] == 3 and s["fit_seconds"] == 2.0
    assert np.isclose(s["disentanglement_mean"], 0.2) and np.isclose(s["disentanglement_std"], 0.1)
    md = sweep.to_markdown(sweep.summarise(runs))
    assert "| a | 3 | 0.2 | 2.0 | – | 0.200 ± 0.100 |" in md and md.rstrip().endswith("| 2 of 3 |")


def test_merge_runs_replaces_a_rerun_and_keeps_the_other_runs(tmp_path, sweep):
    def row(bench, cfg, seed, d):
        return {"benchmark": bench, "config": cfg, "seed": seed, "fit_seconds": 1.0, "step_size": 0.2} | (
            {"disentanglement": d, "d_minus_random": d - 0.1} if bench == "sprites-gt" else {"specificity": d}
        )

    sweep.merge_runs(tmp_path, [row("sprites-gt", "a", 0, 0.3), row("sprites-gt", "a", 1, 0.1 / 3)])
    sweep.merge_runs(tmp_path, [row("faces", "b", 0, 0.5)])
    runs = sweep.merge_runs(tmp_path, [row("sprites-gt", "c", 0, 0.2), row("sprites-gt", "a", 1, 0.15)])
    on_disk = pd.read_csv(tmp_path / "dplase_sweep_runs.csv")
    assert list(on_disk.columns) == sweep.RUN_COLUMNS
    for t in (runs, on_disk):
        assert list(zip(t["benchmark"], t["config"], t["seed"])) == [
            ("sprites-gt", "a", 0),
            ("sprites-gt", "a", 1),
            ("sprites-gt", "c", 0),
            ("faces", "b", 0),
        ]
        assert t["disentanglement"].tolist()[:3] == [0.3, 0.15, 0.2] and t["specificity"].tolist()[3] == 0.5
    md = (tmp_path / "dplase_sweep.md").read_text()
    assert "| a | 2 | 0.2 | 1.0 | – | 0.225 ± 0.106 |" in md and "| c | 1 | 0.2 | 1.0 | – | 0.200 |" in md
    assert "| b | 1 | 0.2 | 1.0 | 0.500 | – | – |" in md
    assert [ln.rsplit("|", 2)[1] for ln in md.splitlines() if ln.startswith(("| a ", "| c "))] == [
        " 2 of 2 ",
        " 1 of 1 ",
    ]
    before = [(tmp_path / f).read_bytes() for f in ("dplase_sweep_runs.csv", "dplase_sweep.csv", "dplase_sweep.md")]
    sweep.merge_runs(tmp_path, [])  # nothing new: the tables are rewritten byte for byte
    assert [
        (tmp_path / f).read_bytes() for f in ("dplase_sweep_runs.csv", "dplase_sweep.csv", "dplase_sweep.md")
    ] == before
    sweep.merge_runs(tmp_path, [row("sprites-gt", "a", 0, 1 / 3)])
    again = pd.read_csv(tmp_path / "dplase_sweep_runs.csv")
    assert again["disentanglement"].iloc[0] == 1 / 3 and again["disentanglement"].iloc[1] == 0.15
    rerun = [row("sprites-gt", c, s, 0.25) for c, s in (("a", 0), ("a", 1), ("c", 0))]
    runs = sweep.merge_runs(tmp_path, rerun)  # every sprites run again: the table keeps its order
    assert runs["benchmark"].tolist() == ["sprites-gt"] * 3 + ["faces"] and runs["config"].tolist() == list("aacb")
    assert (tmp_path / "dplase_sweep.md").read_text().startswith("### sprites-gt\n")


@pytest.mark.slow
def test_reduced_configs_on_sprites_only(tmp_path, sweep, tiny_stylegan):
    from probe.directions import DPLaSE
    from probe.directions.groundtruth import w_spread

    argv = [
        "--out",
        str(tmp_path),
        "--quick",
        "--seeds",
        "0",
        "--benchmarks",
        "sprites",
        "--configs",
        "default,step_std=2",
    ]
    assert sweep.main(argv) == 0
    runs = pd.read_csv(tmp_path / "dplase_sweep_runs.csv")
    assert runs["config"].tolist() == ["default", "step_std=2"]
    assert runs["benchmark"].tolist() == ["sprites-gt"] * 2  # no faces run
    unit = w_spread(tiny_stylegan, seed=0)
    assert np.isclose(runs["step_size"].iloc[1], float(f"{2 * unit:.4g}")) and runs["step_size"].iloc[0] == 3.0
    saved = DirectionSet.load(tmp_path / "sprites" / "seed-0" / "step_std-2" / "directions" / "dplase.npz")
    assert saved.provenance["step_size"] == runs["step_size"].iloc[1]
    fit = (
        DPLaSE(2, space="w", site="b8", steps=2, seed=0, progress=False, step_size=runs["step_size"].iloc[1])
        .fit(tiny_stylegan)
        .directions_
    )
    assert np.array_equal(saved.vectors, fit.vectors)
    counts = [[int(t.split(":")[1]) for t in row.split()] for row in runs["top_factors"]]
    assert all(sum(c) <= 2 and c == sorted(c, reverse=True) for c in counts)  # k = 2 directions
    before = (tmp_path / "dplase_sweep_runs.csv").read_bytes()
    assert sweep.main(argv) == 0  # resumed: same table
    assert (tmp_path / "dplase_sweep_runs.csv").read_bytes() == before
    assert sweep.main(argv[:-1] + ["nope"]) == 2
    assert sweep.main(argv[:5] + ["--benchmarks", "cars"]) == 2


def test_train_walk_length_in_units_of_the_spread(sweep, tiny_stylegan):
    import torch

    from probe.directions.dplase import draw_steps

    vecs = np.eye(tiny_stylegan.dim("w"))[:3]
    lin = sweep.train_walk_std(tiny_stylegan, vecs, {"step_size": 0.5, "density": False}, 0.25, n=64, seed=3)
    g = torch.Generator().manual_seed(3)
    torch.randn(4096 + 64, tiny_stylegan.z_dim, generator=g)  # the w samples drawn first
    t = draw_steps(64, 0.5, "signed-uniform", g).double()
    assert np.isclose(lin, float(t.abs().mean() / 0.25))  # unit vectors: |t| / unit
    small = sweep.train_walk_std(tiny_stylegan, vecs, {"step_size": 0.5}, 0.25, n=64, seed=3)
    huge = sweep.train_walk_std(tiny_stylegan, vecs, {"step_size": 50.0}, 0.25, n=64, seed=3)
    assert abs(small / lin - 1) < 0.2  # a small step: rescale barely moves
    assert huge < 0.5 * 100 * lin  # a huge step: bounded by the shell


def test_sprites_zoo_entry_sets_the_dplase_step_faces_keep_the_generic_one(tiny_stylegan):
    import pickle

    from probe.directions import registry
    from probe.directions.registry import FitContext
    from probe.models import GENERIC, ModelDefaults
    from probe.models.zoo import FACES_DEFAULTS, SPRITES_DEFAULTS

    assert dict(SPRITES_DEFAULTS.dplase) == {"step_size": 0.2158}
    assert dict(FACES_DEFAULTS.dplase) == {} and dict(GENERIC.dplase) == {}

    class Sprites:  # the registry reads only .defaults and .spaces
        defaults, spaces = SPRITES_DEFAULTS, ("z", "w")

    class Faces:
        defaults, spaces = FACES_DEFAULTS, ("z",)

    m = registry.get("dplase")
    assert m.params(FitContext(Sprites(), k=6))["step_size"] == 0.2158
    assert m.params(FitContext(Sprites(), k=6), {"step_size": 3.0})["step_size"] == 3.0  # the caller wins
    assert "step_size" not in m.params(FitContext(Faces(), k=6))
    assert "step_size" not in m.params(FitContext(tiny_stylegan, k=2))
    back = pickle.loads(pickle.dumps(SPRITES_DEFAULTS))
    assert dict(back.dplase) == {"step_size": 0.2158} and back.drag_eval == "centres"
    assert dict(ModelDefaults(dplase={"steps": 5}).dplase) == {"steps": 5}
