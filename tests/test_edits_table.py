"""The edits table: one row per drag or inversion run, images beside it, written atomically under the study lock."""

import errno
import io
import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from probe import schema
from probe.cli import app
from probe.io import StoreWriteError
from probe.store import StoreError, Study


def png(value: int, size: int = 6) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), (value, 255 - value, 7)).save(buf, format="PNG")
    return buf.getvalue()


DRAG = {
    "kind": "drag",
    "method": "draggan",
    "model": "tiny-dcgan",
    "site": "b2",
    "space": "z",
    "steps": 12,
    "seed": 3,
    "points": {"handles": [[10, 12]], "targets": [[14, 12]], "final": [[13.5, 12.0]]},
    "handle_dist_px": 0.5,
    "outside_change": 0.01,
    "quality": {"drift_brightness": 0.02},
    "status": "ok",
    "seconds": 1.5,
}


@pytest.fixture
def study(tmp_path):
    return Study.create(tmp_path / "s", {"name": "s", "model": "tiny-dcgan", "measures": {}, "n_samples": 4})


def test_no_edits_is_an_empty_frame_with_the_schema(study):
    df = study.edits()
    assert len(df) == 0 and list(df.columns) == list(schema.EDIT_COLUMNS)
    assert {c: str(t) for c, t in df.dtypes.items()} == schema.EDIT_COLUMNS
    assert not study.has("edits") and "edits" in schema.TABLES
    with pytest.raises(StoreError, match="has no edits table yet; make it with probe drag --study"):
        study.table("edits")


def test_add_edit_round_trip(study):
    t0 = datetime.now(UTC).replace(microsecond=0)
    a = study.add_edit(DRAG, png(10), png(200))
    b = study.add_edit(
        {
            "kind": "invert",
            "method": "invert",
            "model": "tiny-dcgan",
            "steps": 5,
            "psnr": 18.25,
            "status": "stopped",
            "sample_id": 2,
        },
        png(30),
        png(40),
    )
    c = study.add_edit(
        {**DRAG, "run_id": "mine.1", "created": "2026-01-31T12:00:00+00:00", "status": "degraded"}, png(50), png(60)
    )
    assert (a, b, c) == ("drag-0001", "invert-0002", "mine.1")
    df = Study(study.path).edits()
    assert list(df.columns) == list(schema.EDIT_COLUMNS) and list(df.run_id) == [a, b, c]
    assert {c: str(t) for c, t in df.dtypes.items()} == schema.EDIT_COLUMNS
    r = df.iloc[0]
    assert (r.kind, r.method, r.site, r.space, r.steps, r.seed, r.status) == ("drag", "draggan", "b2", "z", 12, 3, "ok")
    assert json.loads(r.points) == DRAG["points"] and json.loads(r.quality) == {"drift_brightness": 0.02}
    assert (r.handle_dist_px, r.outside_change, r.seconds) == (0.5, 0.01, 1.5) and pd.isna(r.psnr)
    assert pd.isna(r.sample_id) and pd.isna(r.params)
    assert t0 <= datetime.fromisoformat(r.created) <= datetime.now(UTC)
    inv = df.iloc[1]
    assert inv.psnr == 18.25 and inv.sample_id == 2 and pd.isna(inv.seed) and pd.isna(inv.points)
    assert inv.quality == "{}" and inv.status == "stopped"
    assert df.iloc[2].created == "2026-01-31T12:00:00+00:00" and df.iloc[2].status == "degraded"
    # images beside the table, named by run id, byte for byte
    assert (r.before, r.after) == ("edits/drag-0001_before.png", "edits/drag-0001_after.png")
    assert (study.path / r.before).read_bytes() == png(10) and study.edit_png(a, "after") == png(200)
    assert study.edit_png(b, "before") == png(30)
    assert sorted(p.name for p in (study.path / "edits").iterdir()) == sorted(
        f"{i}_{w}.png" for i in (a, b, c) for w in ("before", "after")
    )
    assert not list(study.path.rglob(".*.tmp")) and not (study.path / ".lock").exists()


@pytest.mark.parametrize(
    "row, message",
    [
        ({**DRAG, "colour": 1}, "edits row: unknown column 'colour'; columns are ['run_id', 'kind', "),
        ({**DRAG, "kind": "warp"}, "edits row: 'kind' must be one of ['drag', 'invert'], got 'warp'"),
        ({**DRAG, "status": "done"}, "edits row: 'status' must be one of ['ok', 'degraded', 'stopped'], got 'done'"),
        ({**DRAG, "method": ""}, "edits row: 'method' must be a non-empty string, got ''"),
        ({k: v for k, v in DRAG.items() if k != "steps"}, "edits row: 'steps' is missing; give the number of steps"),
        ({**DRAG, "steps": 2.5}, "edits row: 'steps' must be an integer or None, got float 2.5"),
        ({**DRAG, "steps": -1}, "edits row: 'steps' must be >= 0, got -1"),
        ({**DRAG, "sample_id": 4}, "edits row: 'sample_id' 4 is not a sample of the study (0..3)"),
        ({**DRAG, "handle_dist_px": "far"}, "edits row: 'handle_dist_px' must be a number or None, got str 'far'"),
        ({**DRAG, "points": "{oops"}, "edits row: 'points' is not valid JSON text; give {\"handles\""),
        (
            {**DRAG, "quality": 3},
            "edits row: 'quality' must be a dict, a list or JSON text, got int; give named scores",
        ),
        ({**DRAG, "space": "q"}, "edits row: 'space' must be one of ['z', 'w', 'ws'] or None, got 'q'"),
        (
            {**DRAG, "before": "x.png"},
            "edits row: 'before' is set by Study.add_edit (edits/<run_id>_before.png); leave it out",
        ),
        ({**DRAG, "run_id": "../x"}, "edits row: 'run_id' '../x' must be 1-64 letters, digits"),
        ({**DRAG, "created": "yesterday"}, "edits row: 'created' must be an ISO 8601 time"),
        (["drag"], "edits row: expected a dict of columns, got a list"),
    ],
)
def test_bad_rows_are_one_line_and_write_nothing(study, row, message):
    with pytest.raises(StoreError) as e:
        study.add_edit(row, png(1), png(2))
    assert str(e.value).startswith(message) and "\n" not in str(e.value)
    assert not (study.path / "edits").exists() and not study.has("edits")


def test_images_must_be_png_and_run_ids_unique(study):
    with pytest.raises(
        StoreError,
        match=r"^add_edit: after_png must be PNG bytes \(e\.g\. probe\.figures\."
        r"img_to_png_bytes\(img\)\), got bytes that are not a PNG$",
    ):
        study.add_edit(DRAG, png(1), b"GIF89a....")
    with pytest.raises(StoreError, match="^add_edit: before_png must be PNG bytes .*got ndarray$"):
        study.add_edit(DRAG, np.zeros(3), png(1))
    study.add_edit({**DRAG, "run_id": "x"}, png(1), png(2))
    with pytest.raises(StoreError, match="^edits row: run_id 'x' is already in study 's'; leave it out"):
        study.add_edit({**DRAG, "run_id": "x"}, png(3), png(4))
    assert study.edit_png("x", "after") == png(2) and len(study.edits()) == 1
    with pytest.raises(
        StoreError,
        match="^run_id 'y' is not in the edits table of study 's'; run ids are e.g. "
        r"\['x'\]$",
    ):
        study.edit_png("y")


def _fail_writes(monkeypatch, when):
    """Make the low-level write raise ENOSPC for target files whose name satisfies `when`."""
    import probe.io as pio

    real = pio._write_file

    def write(path, data):
        if when(path.name):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(pio, "_write_file", write)


def test_a_failed_image_write_leaves_no_row(study, monkeypatch):
    study.add_edit(DRAG, png(1), png(2))
    before = (study.path / "edits.parquet").read_bytes()
    _fail_writes(monkeypatch, lambda name: name.endswith(f"_after.png.{__import__('os').getpid()}.tmp"))
    with pytest.raises(StoreWriteError, match=r"cannot write .*drag-0002_after\.png': no space left on device"):
        study.add_edit(DRAG, png(3), png(4))
    assert (study.path / "edits.parquet").read_bytes() == before and list(study.edits().run_id) == ["drag-0001"]
    assert not list(study.path.rglob(".*.tmp"))


def test_a_failed_table_write_keeps_the_old_table(study, monkeypatch):
    study.add_edit(DRAG, png(1), png(2))
    before = (study.path / "edits.parquet").read_bytes()
    _fail_writes(monkeypatch, lambda name: name.startswith(".edits.parquet"))
    with pytest.raises(StoreWriteError, match=r"cannot write .*edits\.parquet': no space left on device"):
        study.add_edit(DRAG, png(3), png(4))
    assert (study.path / "edits.parquet").read_bytes() == before and list(study.edits().run_id) == ["drag-0001"]
    # the images came first; they are unreferenced and the next run replaces them
    monkeypatch.undo()
    assert study.add_edit(DRAG, png(5), png(6)) == "drag-0002" and study.edit_png("drag-0002") == png(6)


def test_cli_drag_and_invert_record_rows(tiny_study, tmp_path):
    import shutil

    shutil.copytree(tiny_study.path, tmp_path / "s")
    runner = CliRunner()
    r = runner.invoke(
        app,
        [
            "drag",
            "--model",
            "tiny-dcgan",
            "--seed",
            "3",
            "--point",
            "10,12->14,12",
            "--steps",
            "3",
            "--out",
            str(tmp_path / "d.png"),
            "--study",
            str(tmp_path / "s"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert f"recorded drag-0001 in {tmp_path / 's'}/edits.parquet" in r.output
    img = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(img)
    r = runner.invoke(
        app,
        [
            "invert",
            str(img),
            "--model",
            "tiny-dcgan",
            "--out",
            str(tmp_path / "inv"),
            "--steps",
            "3",
            "--study",
            str(tmp_path / "s"),
        ],
    )
    assert r.exit_code == 0, r.output
    st = Study(tmp_path / "s")
    df = st.edits()
    assert list(df.run_id) == ["drag-0001", "invert-0002"] and list(df.kind) == ["drag", "invert"]
    d, i = df.iloc[0], df.iloc[1]
    pts = json.loads(d.points)
    assert pts["handles"] == [[10.0, 12.0]] and pts["targets"] == [[14.0, 12.0]] and len(pts["final"]) == 1
    want = float(np.linalg.norm(np.subtract(pts["final"], pts["targets"]), axis=1).mean())
    assert d.handle_dist_px == pytest.approx(want) and d.seed == 3 and d.model == "tiny-dcgan"
    assert d.status in ("ok", "degraded") and 1 <= d.steps <= 3 and d.space == "z" and isinstance(d.site, str)
    assert i.method == "invert" and i.steps == 3 and np.isfinite(i.psnr) and pd.isna(i.seed)
    assert json.loads(i.params)["image"] == str(img)
    a = Image.open(io.BytesIO(st.edit_png("drag-0001", "after")))
    assert a.size == (32, 32) and Image.open(io.BytesIO(st.edit_png("invert-0002", "before"))).size == (32, 32)


def test_cli_study_is_checked_before_the_run(tmp_path):
    r = CliRunner().invoke(
        app,
        [
            "drag",
            "--model",
            "tiny-dcgan",
            "--point",
            "1,1->2,2",
            "--steps",
            "1",
            "--out",
            str(tmp_path / "d.png"),
            "--study",
            str(tmp_path / "nope"),
        ],
    )
    assert isinstance(r.exception, StoreError) and "does not exist; make one with probe run" in str(r.exception)
    assert not (tmp_path / "d.png").exists()


def test_a_writer_holding_the_study_waits_nothing_is_written(study):
    import subprocess
    import sys

    from probe.io import StudyBusyError

    code = (
        "import sys, time; from probe.io import study_lock\n"
        "with study_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(30)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code, str(study.path)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        with pytest.raises(StudyBusyError, match=rf"is in use by another probe process \(PID {p.pid}\)"):
            study.add_edit(DRAG, png(1), png(2))
    finally:
        p.kill()
        p.wait()
    assert not (study.path / "edits").exists() and not study.has("edits")
    assert study.add_edit(DRAG, png(1), png(2)) == "drag-0001"


def test_tmp_files_of_dead_writers_in_edits_are_swept(study):
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    (study.path / "edits").mkdir()
    stale = study.path / "edits" / f".drag-0001_after.png.{dead.pid}.tmp"
    stale.write_bytes(b"half a png")
    study.add_edit(DRAG, png(1), png(2))
    assert not stale.exists() and study.edit_png("drag-0001") == png(2)


def test_images_are_read_only_from_the_edits_folder(study, tmp_path):
    study.add_edit(DRAG, png(1), png(2))
    (tmp_path / "secret.png").write_bytes(png(9))
    df = study.edits()
    df.loc[0, "after"] = "../secret.png"
    study.write_table("edits", df)
    with pytest.raises(
        StoreError,
        match=r"^edits row 'drag-0001': after image '\.\./secret\.png' is not in edits/ "
        r"of the study; the edits table is damaged: re-record the run$",
    ):
        study.edit_png("drag-0001", "after")
    assert study.edit_png("drag-0001", "before") == png(1)
