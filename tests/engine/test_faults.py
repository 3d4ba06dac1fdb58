"""Fault injection: SIGKILL at random points of a study run, then --resume; full disk and read-only study dirs.

The kills are real: a `probe run` subprocess and fresh interpreters running `run_study`, all killed with
SIGKILL. Full disk (ENOSPC) and read-only (EROFS / EACCES) are SIMULATED by monkeypatching the
one low-level write (`probe.io._write_file`) to raise the OSError the kernel would raise: the tests cannot fill
the real disk, and they run as root, where chmod does not stop writes.
"""

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import probe.io as pio
from probe.errors import ProbeError
from probe.store import StoreError, Study
from probe.study import load_spec, run_study
from tests.helpers import cli

KEY = ["target", "sample_id", "step"]
PART_ROWS = 6
SPEC = """name = "faults"
model = "tiny-dcgan"
measures = ["brightness", "contrast"]
n_samples = 12
seed = 3
batch_size = 4
part_rows = 6
alphas = [-2, -1, 0, 1, 2]

[[targets]]
kind = "variables"
indices = 6

[[targets]]
kind = "channels"
site = "b2"
channels = [1, 2]
"""
N_ROWS = 8 * 12 * 5  # 8 targets x 12 samples x 5 alphas
N_PARTS = N_ROWS // PART_ROWS  # 80


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("faults") / "faults.toml"
    p.write_text(SPEC)
    return p


@pytest.fixture(scope="module")
def ref(spec_path, tmp_path_factory) -> pd.DataFrame:
    """The interventions table of an uninterrupted run."""
    df = run_study(load_spec(spec_path), tmp_path_factory.mktemp("ref") / "s", progress=False).table("interventions")
    assert len(df) == N_ROWS
    return df


def _parts_done(out: Path) -> int:
    try:
        return len(json.loads((out / "manifest.json").read_text())["parts_done"])
    except (OSError, ValueError, KeyError):
        return -1


def _kill_at(pid: int, out: Path, min_parts: int, extra_s: float, timeout: float = 60) -> None:
    """SIGKILL pid once the manifest lists >= min_parts parts (-1: at once; 0: once the manifest exists), after
    a further `extra_s` seconds (so kills also land inside writes)."""
    t0 = time.time()
    while time.time() - t0 < timeout and _parts_done(out) < min_parts:
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            raise AssertionError(f"run ended before the kill point ({min_parts} parts)")
        time.sleep(0.001)
    time.sleep(extra_s)
    os.kill(pid, signal.SIGKILL)


_RUN = (
    "import sys, torch; torch.set_num_threads(1); from probe.study import load_spec, run_study; "
    "run_study(load_spec(sys.argv[1]), sys.argv[2], resume=True, progress=False)"
)


def _spawn_run(spec_path: Path, out: Path) -> int:
    """A fresh interpreter running run_study(resume=True) (never a fork of this multi-threaded process) -> its pid."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN, str(spec_path), str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc.pid


def _check_on_disk(out: Path, ref: pd.DataFrame) -> list[int]:
    """After a kill: the manifest parses, every recorded part exists and holds exactly its rows of the plan."""
    m = json.loads((out / "manifest.json").read_text())  # never torn (atomic replace)
    assert m["status"] == "running"
    done = sorted(m["parts_done"])
    assert len(done) == len(set(done))
    for k in done:
        part = pd.read_parquet(out / "parts" / f"interventions-{k:05d}.parquet")
        want = ref.iloc[k * PART_ROWS : (k + 1) * PART_ROWS].reset_index(drop=True)
        pd.testing.assert_frame_equal(part, want)
    return done


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume(spec_path, ref, tmp_path, capsys):
    """Six SIGKILLs (one of a real `probe run` process, five of `run_study` processes) at seeded random points: base-sample
    stage, then part thresholds with random extra delays; the resumed table equals the uninterrupted one."""
    rng = np.random.default_rng(int(os.environ.get("PROBE_FAULT_SEED", "9")))
    out = tmp_path / "killed"
    # 1: a real `probe run` subprocess, killed a random moment after the manifest appears (latents / samples)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import torch; torch.set_num_threads(1); from probe.cli import main; main()",
            "run",
            str(spec_path),
            "--out",
            str(out),
            "--no-progress",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    t0 = time.time()
    while proc.poll() is None and not (out / "manifest.json").is_file() and time.time() - t0 < 60:
        time.sleep(0.001)
    time.sleep(rng.uniform(0, 0.02))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-300:]
    history = [len(_check_on_disk(out, ref))]
    # 2..6: run_study processes killed at increasing random part counts, each plus a random 0..8 ms
    thresholds = np.sort(rng.choice(np.arange(2, N_PARTS - 10), size=5, replace=False))
    for th in thresholds:
        pid = _spawn_run(spec_path, out)
        _kill_at(pid, out, int(th), float(rng.uniform(0, 0.008)), timeout=300)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"run ended (status {status})"
        history.append(len(_check_on_disk(out, ref)))
        assert history[-1] >= th  # no recorded part was lost
    assert history == sorted(history) and history[-1] < N_PARTS
    with pytest.raises(ProbeError, match="incomplete"):
        Study(out).table("interventions")
    # resume through the real CLI entry point
    code, stdout, err = cli(["run", spec_path, "--out", out, "--resume", "--no-progress"], capsys)
    assert code == 0, err
    assert f"{N_ROWS} intervention rows" in stdout
    got = Study(out).table("interventions")
    assert not got.duplicated(KEY).any() and len(got) == N_ROWS
    pd.testing.assert_frame_equal(
        got.sort_values(KEY).reset_index(drop=True), ref.sort_values(KEY).reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(got, ref)  # and in plan order
    assert not list(out.glob(".*.tmp")) and not (out / "parts").exists()


# ---- full disk / read-only (simulated: see the module docstring) ----------------------------------------------
def _fail_writes(monkeypatch, err: int, when) -> list[Path]:
    """Make probe.io._write_file raise OSError(err) for tmp files whose target name satisfies `when(name, n)`
    (n = how many writes so far); returns the list of refused paths."""
    real = pio._write_file
    refused: list[Path] = []
    calls = {"n": 0}

    def write(path: Path, data: bytes) -> None:
        calls["n"] += 1
        name = path.name.split(".")[1] + "." + path.name.split(".")[2]  # .<name>.<ext>.<pid>.tmp -> name.ext
        if when(name, calls["n"]):
            refused.append(path)
            raise OSError(err, os.strerror(err), str(path))
        real(path, data)

    monkeypatch.setattr(pio, "_write_file", write)
    return refused


def test_disk_full_mid_run_one_line_parts_intact_then_resume(spec_path, ref, tmp_path, capsys, monkeypatch):
    out = tmp_path / "full"
    parts_seen = []

    def when(name, n):
        if name.startswith("interventions-"):
            parts_seen.append(name)
        return len(parts_seen) > 7 and name.startswith("interventions-")  # disk fills at part 7

    refused = _fail_writes(monkeypatch, errno.ENOSPC, when)
    code, _, err = cli(["run", spec_path, "--out", out, "--no-progress"], capsys)
    assert code == 2
    line = err.strip()
    assert "\n" not in line and "Traceback" not in err
    assert line.startswith("error: cannot write ") and "interventions-00007.parquet" in line
    assert "no space left on device [ENOSPC]; free disk space" in line and "--resume" in line
    assert refused and not refused[0].exists()  # the tmp file was removed
    assert _check_on_disk(out, ref) == list(range(7))  # parts 0..6 intact and recorded
    assert not list(out.glob("**/.*.tmp"))
    monkeypatch.undo()  # space freed
    code, stdout, err = cli(["run", spec_path, "--out", out, "--resume", "--no-progress"], capsys)
    assert code == 0, err
    pd.testing.assert_frame_equal(Study(out).table("interventions"), ref)


def _digest(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(
    "err, reason", [(errno.EROFS, "read-only file system [EROFS]"), (errno.EACCES, "permission denied [EACCES]")]
)
def test_read_only_study_one_line_and_untouched(tiny_study, tmp_path, capsys, monkeypatch, err, reason):
    """`probe stats` on a study that cannot be written: one line naming the file and the fix, files unchanged.
    As root chmod does not block writes, so the EROFS / EACCES the kernel would give are simulated; as a normal
    user the directory is also made read-only for real."""
    import shutil

    st = tmp_path / "ro"
    shutil.copytree(tiny_study.path, st)
    before = _digest(st)
    refused = _fail_writes(monkeypatch, err, lambda name, n: True)
    if os.geteuid() != 0:
        os.chmod(st, 0o555)
    try:
        code, _, e = cli(["stats", st], capsys)
    finally:
        os.chmod(st, 0o755)
    assert code == 2 and e.count("\n") == 1, e
    assert e.startswith(f"error: cannot write '{st}/") and reason in e and "make the directory writable" in e
    assert refused and _digest(st) == before  # nothing changed, no tmp left


def test_store_write_error_is_storeerror_and_oserror(tmp_path, monkeypatch):
    p = tmp_path / "a.json"
    pio.atomic_write_json(p, {"v": 1})
    _fail_writes(monkeypatch, errno.ENOSPC, lambda name, n: True)
    with pytest.raises(StoreError, match=r"cannot write '.*a\.json': no space left on device") as e:
        pio.atomic_write_json(p, {"v": 2})
    assert isinstance(e.value, OSError) and "\n" not in str(e.value)
    assert json.loads(p.read_text()) == {"v": 1} and not list(tmp_path.glob(".*.tmp"))


def test_new_study_in_unwritable_place_is_one_line(spec_path, tmp_path, capsys, monkeypatch):
    def mkdir(self, *a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", mkdir)  # simulated: as root nothing is unwritable
    code, _, e = cli(["run", spec_path, "--out", tmp_path / "new" / "s", "--no-progress"], capsys)
    assert code == 2 and e.count("\n") == 1 and "permission denied [EACCES]" in e, e
    assert not (tmp_path / "new").exists()
