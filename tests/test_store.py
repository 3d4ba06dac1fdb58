"""probe.store: the study directory, tables, schema versions; probe.io: atomic writes; probe.restudy: re-rendering."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from probe import schema
from probe.errors import ProbeError
from probe.io import atomic_write_bytes
from probe.restudy import rerender, study_model, study_target
from probe.store import StoreError, Study, conform


def test_tiny_study_tables(tiny_study):
    st = tiny_study
    assert st.status == "complete" and st.model_name == "tiny-dcgan" and st.space == "z"
    assert st.measures[:2] == ["brightness", "contrast"]
    assert st.measure_info["brightness"]["unit"] == "fraction" and st.measure_info["hue"]["hi"] == 360.0
    s = st.table("samples")
    assert list(s.sample_id) == list(range(24)) and (s.seed == 0).all()
    for c in list(schema.SAMPLE_COLUMNS) + st.measures:
        assert c in s.columns
    df = st.table("interventions")
    # 4 variables + 2 directions + 1 channel target, 24 samples, 5 alphas
    assert len(df) == 7 * 24 * 5
    assert st.target_names == ["z[0]", "z[1]", "z[2]", "z[3]", "random/d0", "random/d1", "b2:c3"]
    assert list(df.target.unique()) == st.target_names
    assert set(df.target_kind) == {"variable", "direction", "channel"}
    assert set(df.method) == {"variable", "random", "channel"}
    for c in list(schema.INTERVENTION_COLUMNS) + st.measures + [f"d_{m}" for m in st.measures]:
        assert c in df.columns
    # rows sorted: plan order of targets, then sample_id, then step
    order = df.target.map({t: i for i, t in enumerate(st.target_names)})
    key = order * 10_000 + df.sample_id * 10 + df.step
    assert key.is_monotonic_increasing
    # alpha 0 is the base image for every walk: no change
    zero = df[df.alpha == 0]
    assert (zero[[f"d_{m}" for m in st.measures]].to_numpy() == 0).all() and (zero.dlogp == 0).all()
    # d_ columns are edited minus base
    merged = df.merge(s[["sample_id", "brightness", "logp"]], on="sample_id", suffixes=("", "_base"))
    np.testing.assert_allclose(merged.d_brightness, merged.brightness - merged.brightness_base, atol=1e-12)
    np.testing.assert_allclose(merged.dlogp, merged.logp - merged.logp_base, atol=1e-9)
    # variable shift: z[i] + alpha changes logp as the Gaussian prior says
    v = df[df.target == "z[1]"].merge(s[["sample_id"]], on="sample_id")
    z = st.latents()
    want = -0.5 * ((z[v.sample_id, 1] + v.alpha) ** 2 - z[v.sample_id, 1] ** 2)
    np.testing.assert_allclose(v.dlogp, want, atol=1e-4)
    # channel edits leave the latent alone
    assert np.abs(df[df.target == "b2:c3"].dlogp).max() == 0


def test_latents_and_directions_saved(tiny_study):
    z = tiny_study.latents()
    assert z.shape == (24, 16) and z.dtype == np.float32
    np.testing.assert_array_equal(z, study_model(tiny_study).sample(24, 0).numpy())
    ds = tiny_study.directions()
    assert list(ds) == ["random"] and ds["random"].names == ["d0", "d1"]


def test_render_reproduces_rows(tiny_study):
    st = tiny_study
    df = st.table("interventions")
    from probe.measures import MeasureSet

    ms = MeasureSet(["image"])
    for name in ("z[2]", "random/d1", "b2:c3"):
        t = study_target(st, name)
        assert t.name == name
        img = rerender(st, [3, 5], name, st.alphas)
        assert img.shape == (2, 5, 3, 32, 32) and img.min() >= -1 and img.max() <= 1
        got = ms(img.reshape(-1, 3, 32, 32))["brightness"]
        rows = df[(df.target == name) & df.sample_id.isin([3, 5])].sort_values(["sample_id", "step"])
        np.testing.assert_allclose(got, rows.brightness, atol=1e-6)


def test_target_unknown(tiny_study):
    with pytest.raises(StoreError, match="target 'z\\[9\\]' is not in study"):
        study_target(tiny_study, "z[9]")


def test_missing_tables_name_command(tiny_study, tmp_path):
    import shutil

    shutil.copytree(
        tiny_study.path, tmp_path / "s", ignore=shutil.ignore_patterns("effects.parquet", "embedding.parquet")
    )
    st = Study(tmp_path / "s")
    with pytest.raises(StoreError, match=f"no effects table yet; make it with probe stats {tmp_path / 's'}"):
        st.table("effects")
    with pytest.raises(StoreError, match="probe embed"):
        st.table("embedding")
    with pytest.raises(StoreError, match="unknown table 'nope'"):
        st.table("nope")


def test_open_errors(tmp_path):
    with pytest.raises(StoreError, match="does not exist; make one with probe run"):
        Study(tmp_path / "nothing")
    with pytest.raises(StoreError, match="is not a study"):
        Study(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"schema_version": schema.SCHEMA_VERSION + 1}))
    with pytest.raises(ProbeError, match=f"schema_version {schema.SCHEMA_VERSION + 1}, newer than .*upgrade"):
        Study(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(StoreError, match="unreadable"):
        Study(tmp_path)


def test_write_table_checks_and_roundtrip(tmp_path):
    st = Study.create(tmp_path / "s", {"name": "x", "model": "tiny-dcgan", "measures": {}})
    assert st.manifest["schema_version"] == schema.SCHEMA_VERSION and st.status == "running"
    with pytest.raises(StoreError, match="lacks required columns \\['q', 'n'\\]"):
        st.write_table("correlations", pd.DataFrame({"variable": ["z[0]"], "measure": ["m"], "r": [0.1], "p": [0.5]}))
    df = pd.DataFrame(
        {
            "variable": ["z[0]", "z[1]"],
            "measure": ["m", "m"],
            "r": [0.1, -0.2],
            "p": [0.5, 0.01],
            "q": [0.5, 0.02],
            "n": [10, 10],
            "extra": [1, 2],
        }
    )
    st.write_table("correlations", df)
    back = st.table("correlations")
    assert list(back.columns) == list(df.columns) and back.n.dtype == np.int64
    np.testing.assert_allclose(back.r, df.r)
    assert st.has("correlations") and not st.has("effects")
    with pytest.raises(StoreError, match="cannot be stored as int64"):
        st.write_table("correlations", df.assign(n=["a", "b"]))
    with pytest.raises(StoreError, match="already holds a study"):
        Study.create(tmp_path / "s", {"model": "tiny-dcgan"})
    # interventions of a running study are refused with the resume command
    with pytest.raises(StoreError, match="incomplete .*--resume"):
        st.table("interventions")


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    p = tmp_path / "a.bin"
    atomic_write_bytes(p, b"old")
    import os

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(p, b"new")
    assert p.read_bytes() == b"old"


def test_conform_casts_measure_columns():
    df = pd.DataFrame(
        {
            c: pd.Series([1], dtype="int64" if t == "int64" else None) if t != "string" else ["a"]
            for c, t in schema.SAMPLE_COLUMNS.items()
        }
    )
    df["gender"] = [1]
    out = conform("samples", df, ["gender"])
    assert out.gender.dtype == np.float64 and out.norm.dtype == np.float64
    with pytest.raises(StoreError, match="lacks required columns \\['age'\\]"):
        conform("samples", df, ["gender", "age"])


def test_stylegan_study_w_space(tiny_study_stylegan):
    st = tiny_study_stylegan
    assert st.space == "w" and st.latents().shape == (16, 16)
    df = st.table("interventions")
    assert len(df) == (2 + 2 + 1) * 16 * 3
    assert st.density() is not None
    iso = df[df.walk == "isodensity"]
    assert len(iso) == 2 * 16 * 3
    # isodensity keeps log p under the fitted Gaussian; a linear shift of w[0] does not
    assert np.abs(iso.dlogp).max() < 1e-3
    assert np.abs(df[(df.target == "w[0]") & (df.alpha != 0)].dlogp).min() > 1e-3
    img = rerender(st, [0], "random/d0", [2.0])
    assert img.shape == (1, 1, 3, 32, 32)
    assert torch.isfinite(img).all()


def test_direction_save_failure_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch):
    import errno

    from probe import io as pio
    from probe.directions.base import DirectionSet

    p = DirectionSet(["d0"], np.eye(1, 4), "z", "random").save(tmp_path / "random.npz")
    before = p.read_bytes()

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pio, "_write_file", full)
    with pytest.raises(pio.StoreWriteError, match=r"cannot write .*random\.npz': no space left on device"):
        DirectionSet(["d0", "d1"], np.eye(2, 4), "z", "random").save(p)
    assert p.read_bytes() == before and [f.name for f in tmp_path.iterdir()] == ["random.npz"]


def test_create_checks_the_manifest_before_writing(tmp_path):
    with pytest.raises(StoreError) as e:
        Study.create(tmp_path / "s", {"name": "x", "model": "tiny-dcgan", "measures": None})
    assert str(e.value) == (
        f"{tmp_path / 's' / 'manifest.json'}: field 'measures' must be an object, got null; it was "
        f"not written by latent-probe or is damaged; re-run the study"
    )
    assert not (tmp_path / "s").exists()


def _parted_copy(src, path, part_rows: int) -> tuple[Study, int]:
    """A running copy of study `src` (manifest + latents) whose interventions are written as parts of part_rows."""
    import shutil

    m = {k: v for k, v in src.manifest.items() if k not in ("schema_version", "status", "parts_done")}
    st = Study.create(path, m)
    shutil.copy(src.path / "latents.npy", st.path / "latents.npy")
    iv = src.table("interventions")
    n = -(-len(iv) // part_rows)
    for k in range(n):
        st.write_part(k, iv.iloc[k * part_rows : (k + 1) * part_rows])
    return st, n


def test_finish_streams_parts_into_the_same_table_as_a_concat(tiny_study, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from probe import store

    monkeypatch.setattr(store, "ROW_GROUP_ROWS", 100)  # row groups cut across part boundaries
    st, n = _parted_copy(tiny_study, tmp_path / "s", 37)
    old = pd.concat([pd.read_parquet(st.part_path(k)) for k in range(n)], ignore_index=True)
    old = conform("interventions", old, st.measures)
    st.finish(n)
    got = Study(st.path).table("interventions")
    pd.testing.assert_frame_equal(got, old)
    pd.testing.assert_frame_equal(got, tiny_study.table("interventions"))
    meta = pq.ParquetFile(st.path / "interventions.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [100] * 8 + [40]
    assert Study(st.path).status == "complete" and not (st.path / "parts").exists()
    assert not list(st.path.glob(".*.tmp"))


def test_finish_write_failure_is_one_line_and_leaves_no_table(tiny_study, tmp_path, monkeypatch):
    import errno

    import pyarrow.parquet as pq

    st, n = _parted_copy(tiny_study, tmp_path / "s", 400)

    def full(self, table, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    with pytest.raises(StoreError) as e:
        st.finish(n)
    p = st.path / "interventions.parquet"
    assert str(e.value) == (
        f"cannot write {str(p)!r}: no space left on device [ENOSPC]; free disk space, then run "
        f"the command again (probe run continues with --resume); files already written are "
        f"intact"
    )
    assert not p.exists() and not list(st.path.glob(".*.tmp")) and Study(st.path).status == "running"
    assert Study(st.path).parts_done == list(range(n))


def test_study_model_is_loaded_once_per_opened_study(tiny_study):
    st = Study(tiny_study.path)
    m = study_model(st)
    assert study_model(st) is m and m.name == "tiny-dcgan"
    # a Target given as an object renders the same pixels as its table string
    a = rerender(st, [1], "random/d0", [1.0])
    b = rerender(st, [1], study_target(st, "random/d0"), [1.0])
    assert torch.equal(a, b)
    with pytest.raises(StoreError, match=r"^sample_ids must lie in 0\.\.23$"):
        rerender(st, [24], "z[0]", [1.0])


def test_store_loads_no_model_code(tiny_study):
    """The store reads and writes files: reading a study's tables, latents and directions imports no model, walk,
    engine, measure or study code (nor torch)."""
    import subprocess
    import sys

    code = (
        "import sys; from probe.store import Study; st = Study(sys.argv[1]); st.table('samples'); st.latents(); "
        "assert list(st.directions()) == ['random'] and len(st.edits()) == 0; "
        "print(sorted(m for m in sys.modules if m.startswith(('probe.models', 'probe.walks', 'probe.engine', "
        "'probe.measures', 'probe.restudy', 'probe.study', 'torch'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tiny_study.path)], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
