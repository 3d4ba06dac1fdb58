"""probe.study: spec validation (one line, field path + fix, before any work), determinism, resume leftovers.

kill -9 at random points + resume: tests/engine/test_faults.py."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from probe.directions.base import DirectionSet
from probe.errors import ProbeError
from probe.store import Study
from probe.study import SpecError, load_spec, parse_spec, run_study

BASE = {
    "name": "t",
    "model": "tiny-dcgan",
    "measures": ["brightness", "contrast"],
    "n_samples": 6,
    "seed": 3,
    "alphas": [-1, 0, 1],
    "targets": [{"kind": "variables", "indices": [0, 2]}],
}


def _spec(**kw):
    d = json.loads(json.dumps(BASE))
    d.update(kw)
    return d


def _toml(d: dict) -> str:
    def val(v):
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return repr(v)

    lines = [f"{k} = {val(v)}" for k, v in d.items() if k != "targets"]
    for t in d.get("targets", []):
        lines += ["", "[[targets]]"] + [f"{k} = {val(v)}" for k, v in t.items()]
    return "\n".join(lines) + "\n"


def _err(tmp_path, d, out=None):
    p = tmp_path / "spec.toml"
    p.write_text(_toml(d))
    out = out or tmp_path / "out"
    with pytest.raises(ProbeError) as e:
        run_study(load_spec(p), out, progress=False)
    msg = str(e.value)
    assert "\n" not in msg
    assert not (out / "manifest.json").exists()  # failed before any work
    return msg


@pytest.mark.parametrize(
    "change, want",
    [
        (
            {"targets": [{"kind": "variables", "indices": [3, 120]}]},
            "targets[0].indices: index 120 out of range for z_dim=16; use 0..15",
        ),
        ({"targets": [{"kind": "variables", "indices": 40}]}, "targets[0].indices: count 40 out of range for z_dim=16"),
        (
            {"targets": [{"kind": "variables", "indices": [1], "colour": "red"}]},
            "targets[0].colour: Extra inputs are not permitted; remove it (unknown field)",
        ),
        ({"targets": [{"kind": "knobs"}]}, "targets[0]: Input tag 'knobs'"),
        ({"targets": [{"kind": "variables", "mode": "twist"}]}, "targets[0].mode: Input should be 'shift' or 'set'"),
        (
            {"targets": [{"kind": "channels", "site": "b9", "channels": [1]}]},
            "targets[0].site: 'b9' is not a site of model 'tiny-dcgan'; use one of ['b1', 'b2', 'b3']",
        ),
        (
            {"targets": [{"kind": "channels", "site": "b2", "channels": [1, 32]}]},
            "targets[0].channels: channel 32 out of range for site 'b2' with 32 channels; use 0..31",
        ),
        ({"targets": [{"kind": "directions", "file": "none.npz"}]}, "targets[0].file: "),
        (
            {"targets": [{"kind": "directions", "file": "r.npz", "names": ["d7"]}]},
            "targets[0].names: 'd7' is not in r.npz; use some of ['d0', 'd1']",
        ),
        (
            {"targets": [{"kind": "directions", "file": "r.npz", "walk": "layers"}]},
            "targets[0].walk: 'layers' needs space = \"ws\"",
        ),
        (
            {"targets": [{"kind": "directions", "file": "w16.npz"}]},
            "targets[0].file: directions live in space 'w' but the study walks in 'z'; set space = \"w\"",
        ),
        (
            {"targets": [{"kind": "directions", "file": "r8.npz"}]},
            "targets[0].file: directions in r8.npz have dimension 8, but space 'z' of model 'tiny-dcgan' takes 16",
        ),
        (
            {"targets": [{"kind": "variables", "indices": [1]}, {"kind": "variables", "indices": [2, 1]}]},
            "targets: 'z[1]' appears twice",
        ),
        ({"model": "nope"}, "model: unknown model 'nope'"),
        ({"measures": ["brightness", "happiness"]}, "measures: unknown measure 'happiness'"),
        ({"measures": []}, "measures: List should have at least 1 item"),
        ({"alphas": [1, 1]}, "alphas: alphas must be distinct"),
        ({"n_samples": 0}, "n_samples: Input should be greater than or equal to 1"),
        ({"space": "w"}, "space: model 'tiny-dcgan' has no space 'w'; use one of ['z']"),
        ({"space": "q"}, "space: Input should be 'z', 'w' or 'ws'"),
        ({"batch_size": "big"}, "batch_size: Input should be a valid integer"),
        ({"seeed": 1}, "seeed: Extra inputs are not permitted; remove it"),
    ],
)
def test_bad_spec_one_line_before_work(tmp_path, change, want):
    v = np.eye(2, 16, dtype=np.float32)
    DirectionSet(["d0", "d1"], v, "z", "random").save(tmp_path / "r.npz")
    DirectionSet(["d0"], v[:1], "w", "random").save(tmp_path / "w16.npz")
    DirectionSet(["d0"], v[:1, :8], "z", "random").save(tmp_path / "r8.npz")
    msg = _err(tmp_path, _spec(**change))
    assert msg.startswith("spec.toml: ")
    assert want in msg, msg


def test_spec_file_errors(tmp_path):
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("name = [\n")
    with pytest.raises(SpecError, match="bad.toml: not valid TOML"):
        load_spec(tmp_path / "bad.toml")
    (tmp_path / "s.toml").write_text(_toml({k: v for k, v in BASE.items() if k != "model"}))
    with pytest.raises(SpecError, match="^s.toml: model: Field required; add it$"):
        load_spec(tmp_path / "s.toml")


def test_same_spec_same_tables_and_resume_guards(tmp_path):
    d = _spec(
        targets=[
            {"kind": "variables", "indices": 3},
            {"kind": "channels", "site": "b1", "channels": [0, 5], "together": True, "mode": "shift", "scale": 0.5},
        ]
    )
    spec = parse_spec(d)
    a = run_study(spec, tmp_path / "a", progress=False)
    b = run_study(spec, tmp_path / "b", progress=False)
    for t in ("samples", "interventions"):
        pd.testing.assert_frame_equal(a.table(t), b.table(t))
    np.testing.assert_array_equal(a.latents(), b.latents())
    assert a.target_names == ["z[0]", "z[1]", "z[2]", "b1:c0+c5"]
    assert a.manifest["study_id"] == b.manifest["study_id"] and a.manifest["weights_hash"]
    assert a.manifest["versions"]["torch"] and a.manifest["parts_done"] == [0]  # 72 rows: one part
    assert not (a.path / "parts").exists()
    # resume of a complete study is a no-op; a different spec or a missing --resume is refused
    assert run_study(spec, tmp_path / "a", resume=True, progress=False).status == "complete"
    with pytest.raises(SpecError, match="already holds a study; add --resume"):
        run_study(spec, tmp_path / "a", progress=False)
    with pytest.raises(SpecError, match="the spec differs from the study's in \\['n_samples'\\]"):
        run_study(parse_spec({**d, "n_samples": 7}), tmp_path / "a", resume=True, progress=False)


def test_directions_by_stem_and_copied(tmp_path):
    out = tmp_path / "s"
    v = np.random.default_rng(1).standard_normal((3, 16))
    DirectionSet(["a", "b", "c"], v / np.linalg.norm(v, axis=1, keepdims=True), "z", "mine").save(
        out / "directions" / "mine.npz"
    )
    spec = parse_spec(
        _spec(targets=[{"kind": "directions", "file": "mine", "names": ["c", "a"], "walk": "isodensity", "scale": 2.0}])
    )
    st = run_study(spec, out, progress=False)
    df = st.table("interventions")
    assert st.target_names == ["mine/c", "mine/a"] and set(df.walk) == {"isodensity"}
    assert np.abs(df.dlogp).max() < 1e-3  # norm-preserving walk keeps log p(z)
    from probe.restudy import study_target

    t = study_target(st, "mine/a")
    assert t.scale == 2.0 and t.walk == "isodensity" and np.allclose(t.vector, v[0] / np.linalg.norm(v[0]))


def _write_spec(tmp_path, n_variables: int = 6) -> Path:
    p = tmp_path / "kill.toml"
    p.write_text(
        _toml(
            _spec(
                name="kill",
                n_samples=12,
                batch_size=4,
                part_rows=6,
                alphas=[-2, -1, 0, 1, 2],
                targets=[
                    {"kind": "variables", "indices": n_variables},
                    {"kind": "channels", "site": "b2", "channels": [1, 2]},
                ],
            )
        )
    )
    return p


def test_resume_after_crash_leftovers(tmp_path):
    """States a kill can leave: a part written but not recorded, a torn tmp file, a merged table not marked."""
    spec_path = _write_spec(tmp_path, n_variables=1)
    spec = load_spec(spec_path)
    ref = run_study(spec, tmp_path / "ref", progress=False)
    out = tmp_path / "s"
    import shutil

    shutil.copytree(ref.path, out)
    st = Study(out)
    # rebuild the running state: manifest lists 5 parts, part 5 exists unrecorded, part 6 is garbage + tmp file
    st.manifest.update(status="running", parts_done=[0, 1, 2, 3, 4])
    st.save_manifest()
    df = ref.table("interventions")
    for k in range(7):
        (out / "parts").mkdir(exist_ok=True)
        df.iloc[k * 6 : (k + 1) * 6].to_parquet(st.part_path(k), index=False)
    st.part_path(6).write_bytes(b"PAR1 torn")
    (out / ".manifest.json.999.tmp").write_text("{")
    (out / "interventions.parquet").write_bytes(b"stale")
    again = run_study(spec, out, resume=True, progress=False)
    pd.testing.assert_frame_equal(again.table("interventions"), df)
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("name", ["../evil", "/tmp/abs", "a/b", "..", "."])
def test_default_out_needs_a_plain_name(tmp_path, monkeypatch, capsys, name):
    """`name` becomes the default --out studies/<name>: anything but a plain name is refused, nothing created."""
    from tests.helpers import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.toml").write_text(_toml(_spec(name=name)))
    code, _, err = cli(["run", "spec.toml", "--no-progress"], capsys)
    assert (code, err) == (
        2,
        f"error: spec.toml: name {name!r} is the default --out studies/<name>, so it must be "
        f"a plain name (letters, digits, '.', '_', '-'; no '/', '..' or absolute path); rename "
        f"it or pass --out\n",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.toml"]


def test_default_out_plain_name_runs(tmp_path, monkeypatch, capsys):
    from tests.helpers import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.toml").write_text(_toml(_spec(name="ok-1.2_x")))
    code, out, err = cli(["run", "spec.toml", "--no-progress"], capsys)
    assert (code, out) == (
        0,
        "study 'ok-1.2_x' complete: 6 samples, 2 targets, 36 intervention rows -> studies/ok-1.2_x\n",
    ), err


def test_big_plan_needs_yes_and_creates_nothing(tmp_path):
    """Over CONFIRM_ROWS rows: one line with the plan and the estimate, nothing created; yes=True runs."""
    from probe.study import CONFIRM_ROWS, plan_rows

    spec = parse_spec(_spec(n_samples=2_500_001))
    assert plan_rows(spec, 2) == 2_500_001 * 2 * 3 > CONFIRM_ROWS
    with pytest.raises(SpecError) as e:
        run_study(spec, tmp_path / "big", progress=False)
    msg = str(e.value)
    assert msg.startswith("plan: 2,500,001 samples x 2 targets x 3 alphas = 15,000,006 rows (~") and msg.endswith(
        "measured on one batch of 32); this is over 5,000,000 rows: pass --yes to run it, or lower n_samples / "
        "targets / alphas"
    )
    assert not (tmp_path / "big").exists()


def test_yes_runs_a_plan_over_the_threshold(tmp_path, monkeypatch):
    import probe.study

    monkeypatch.setattr(probe.study, "CONFIRM_ROWS", 35)  # the 36-row plan below is "big"
    spec = parse_spec(_spec())
    with pytest.raises(
        SpecError, match=r"^plan: 6 samples x 2 targets x 3 alphas = 36 rows .*over 35 rows: pass --yes"
    ):
        run_study(spec, tmp_path / "s", progress=False)
    assert not (tmp_path / "s").exists()
    assert len(run_study(spec, tmp_path / "s", progress=False, yes=True).table("interventions")) == 36


def test_missing_latents_advice_works_on_a_complete_study(tiny_study, tmp_path, capsys):
    """latents.npy deleted from a complete study: the error's advice (probe run SPEC --out X --resume) rebuilds it
    from the seed, byte-identical, and leaves every table as it was."""
    import shutil

    from tests.helpers import cli

    st = tmp_path / "st"
    shutil.copytree(tiny_study.path, st)
    shutil.copy(tiny_study.path.parent / "random.npz", tmp_path / "random.npz")
    lat = (st / "latents.npy").read_bytes()
    (st / "latents.npy").unlink()
    tables = {p.name: p.read_bytes() for p in st.glob("*.parquet")}
    tables.pop("alpha_summary.parquet", None)  # a reader may have cached it in the shared fixture
    with pytest.raises(ProbeError) as e:
        Study(st).latents()
    assert str(e.value) == (
        f"study {str(st)!r} has no latents.npy; rebuild it from the seed with probe run "
        f"SPEC.toml --out {st} --resume (the study's spec)"
    )
    spec = {k: v for k, v in Study(st).manifest["spec"].items() if v is not None}
    spec["targets"] = [{k: v for k, v in t.items() if v is not None} for t in spec["targets"]]
    (tmp_path / "tiny.toml").write_text(_toml(spec))
    code, out, err = cli(["run", tmp_path / "tiny.toml", "--out", st, "--resume", "--no-progress"], capsys)
    assert code == 0, err
    assert (st / "latents.npy").read_bytes() == lat
    after = {p.name: p.read_bytes() for p in st.glob("*.parquet")}
    assert after.pop("alpha_summary.parquet")  # probe run stores the summary the fixture's run_study left out
    assert after == tables and Study(st).status == "complete"
