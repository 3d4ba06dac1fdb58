"""The study write lock: real racing processes (fresh interpreters), kill -9 of a holder, stale tmp files.

The racing writers are new Python processes (`subprocess`, not a fork of the test process): they start with no
threads, OpenMP teams or module state of the tests that ran before, so the suite can run them in one process.
The runs use a real user measure (`gate.py:make`, a file.py:factory extension point) as the barrier: its factory
waits until `barrier_n` processes have arrived (that is after the spec checks, right before the run takes its
lock), and scoring waits for a `go` file, so the holder keeps the lock while the test checks the other writer.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from probe.io import StudyBusyError, study_lock
from probe.store import Study
from probe.study import run_study
from tests.helpers import cli

GATE = """
import os
import time
from pathlib import Path

import numpy as np

from probe.measures.base import Measure, MeasureInfo

HERE = Path(__file__).parent


class Gate(Measure):
    infos = (MeasureInfo("gate", "1", -1.0, 1.0, "mean pixel, scored once HERE/go exists"),)

    def __call__(self, img):
        (HERE / f"held-{os.getpid()}").touch()
        t0 = time.time()
        while not (HERE / "go").exists() and time.time() - t0 < 60:
            time.sleep(0.005)
        return {"gate": img.float().mean((1, 2, 3)).double().numpy()}


def make():
    (HERE / f"arrived-{os.getpid()}").touch()
    n = int((HERE / "barrier_n").read_text())
    t0 = time.time()
    while len(list(HERE.glob("arrived-*"))) < n and time.time() - t0 < 60:
        time.sleep(0.005)
    return Gate()
"""


def _spec(root: Path, seed: int) -> Path:
    p = root / f"spec{seed}.toml"
    p.write_text(
        f'name = "lock"\nmodel = "tiny-dcgan"\nmeasures = ["brightness", "gate.py:make"]\nn_samples = 6\n'
        f"seed = {seed}\nbatch_size = 3\npart_rows = 8\nalphas = [-1.0, 1.0]\n\n"
        f'[[targets]]\nkind = "variables"\nindices = 3\n'
    )
    return p


@pytest.fixture
def gate(tmp_path) -> Path:
    (tmp_path / "gate.py").write_text(GATE)
    (tmp_path / "barrier_n").write_text("1")
    return tmp_path


@pytest.fixture(scope="module")
def refs(tmp_path_factory) -> dict[int, pd.DataFrame]:
    """Interventions tables of undisturbed runs, seeds 0 and 1 (gate open), each by a fresh writer process like
    the racing ones (no state of earlier tests in this process reaches them)."""
    root = tmp_path_factory.mktemp("lockref")
    (root / "gate.py").write_text(GATE)
    (root / "barrier_n").write_text("1")
    (root / "go").touch()
    procs = {s: _run(_spec(root, s), root / f"ref{s}", root / "msg") for s in (0, 1)}
    assert [_wait(p, root / "msg") for p in procs.values()] == [0, 0]
    return {s: Study(root / f"ref{s}").table("interventions") for s in (0, 1)}


# A writer in a fresh interpreter: `run SPEC OUT` runs the study; `hold STUDY DIR` holds the study's lock until
# DIR/go exists (DIR/held once it has it). Exit 0 on success, 5 on StudyBusyError, 4 on another ProbeError (the
# message written to MSG-<pid>), 3 on anything else (the traceback written to MSG-<pid>.err).
WRITER = """
import sys, time, traceback
from pathlib import Path

from probe.errors import ProbeError
from probe.io import StudyBusyError, study_lock

mode, a, b, msg = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
mine = msg.parent / f"{msg.name}-{__import__('os').getpid()}"
code = 0
try:
    if mode == "run":
        from probe.study import load_spec, run_study
        run_study(load_spec(a), b, progress=False)
    else:
        with study_lock(a):
            (b / "held").touch()
            t0 = time.time()
            while not (b / "go").exists() and time.time() - t0 < 60:
                time.sleep(0.005)
except StudyBusyError as e:
    code = 5
    mine.write_text(str(e))
except ProbeError as e:
    code = 4
    mine.write_text(str(e))
except BaseException:
    code = 3
    mine.with_name(mine.name + ".err").write_text(traceback.format_exc())
sys.exit(code)
"""


def _start(mode: str, a: Path, b: Path, msg: Path) -> subprocess.Popen:
    """A writer process (WRITER) started now; its PID is the PID a busy message names."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, mode, str(a), str(b), str(msg)], env=env, cwd=Path(__file__).resolve().parents[1]
    )


def _run(spec: Path, out: Path, msg: Path) -> subprocess.Popen:
    return _start("run", spec, out, msg)


def _wait(proc: subprocess.Popen, msg: Path | None = None) -> int:
    """The writer's exit code once it ended (120 s at most); a crash's traceback is shown in the failure."""
    try:
        code = proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"writer {proc.pid} still running after 120 s") from None
    err = msg and msg.parent / f"{msg.name}-{proc.pid}.err"
    assert code != 3 or not err, err.read_text() if err.exists() else f"writer {proc.pid} failed"
    return code


def _wait_file(p: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    t0 = time.time()
    while not p.exists():
        assert proc.poll() is None, f"process {proc.pid} ended ({proc.returncode}) before {p.name} appeared"
        assert time.time() - t0 < timeout, f"{p.name} never appeared"
        time.sleep(0.005)


def _busy(path: Path, pid: int) -> str:
    return (
        f"study {str(path)!r} is in use by another probe process (PID {pid}); wait for it to finish or use "
        f"another --out"
    )


def test_two_new_runs_race_exactly_one_writes(gate, refs):
    """Two new runs with different seeds released together on one --out: one writes, the other gets the busy
    line naming the winner's PID; the table is exactly the winner's seed, no parts of the other seed."""
    out = gate / "out"
    (gate / "barrier_n").write_text("2")
    procs = {s: _run(_spec(gate, s), out, gate / "msg") for s in (0, 1)}
    loser_msgs = []
    t0 = time.time()
    while not loser_msgs and time.time() - t0 < 120 and all(p.poll() in (None, 5) for p in procs.values()):
        loser_msgs = [m for m in gate.glob("msg-*") if m.suffix != ".err"]
        time.sleep(0.005)
    assert len(loser_msgs) == 1, {s: p.poll() for s, p in procs.items()}
    loser_pid = int(loser_msgs[0].name.split("-")[1])
    winner = next(s for s, p in procs.items() if p.pid != loser_pid)
    loser = next(p for p in procs.values() if p.pid == loser_pid)
    assert _wait(loser, gate / "msg") == 5
    assert loser_msgs[0].read_text() == _busy(out, procs[winner].pid)
    (gate / "go").touch()
    assert _wait(procs[winner], gate / "msg") == 0
    st = Study(out)
    assert st.status == "complete" and st.manifest["seed"] == winner
    pd.testing.assert_frame_equal(st.table("interventions"), refs[winner])
    assert not (out / ".lock").exists() and not (out / "parts").exists()


def test_second_writer_gets_the_holders_pid_then_proceeds(gate, refs, capsys):
    """While a real run holds the lock: --resume, probe stats, probe discover each print the one busy line (exit 2)
    and change nothing; a new run on the same --out is refused as an existing study."""
    out = gate / "out"
    spec = _spec(gate, 0)
    proc = _run(spec, out, gate / "msg")
    pid = proc.pid
    _wait_file(gate / f"held-{pid}", proc)
    manifest = (out / "manifest.json").read_bytes()
    for args in (
        ["run", spec, "--out", out, "--resume", "--no-progress"],
        ["stats", out],
        ["discover", out, "--method", "random", "--k", "2"],
        ["evaluate", out],
    ):
        code, _, err = cli(args, capsys)
        assert (code, err) == (2, f"error: {_busy(out, pid)}\n"), args
    code, _, err = cli(["run", spec, "--out", out, "--no-progress"], capsys)
    assert (code, err) == (
        2,
        f"error: --out {str(out)!r} already holds a study; add --resume to continue it or choose a new --out\n",
    )
    assert (out / "manifest.json").read_bytes() == manifest and not (out / "directions").exists()
    (gate / "go").touch()
    assert _wait(proc, gate / "msg") == 0
    pd.testing.assert_frame_equal(Study(out).table("interventions"), refs[0])


def test_kill_9_of_the_holder_never_blocks(gate, refs, capsys):
    """SIGKILL a run holding the lock: its .lock (with its PID) stays on disk, the OS dropped the lock, and
    --resume proceeds to the undisturbed table."""
    out = gate / "out"
    spec = _spec(gate, 1)
    proc = _run(spec, out, gate / "msg")
    pid = proc.pid
    _wait_file(gate / f"held-{pid}", proc)
    os.kill(pid, signal.SIGKILL)
    assert _wait(proc) == -signal.SIGKILL
    assert (out / ".lock").read_text() == f"{pid}\n"
    (gate / "go").touch()
    code, out_text, err = cli(["run", spec, "--out", out, "--resume", "--no-progress"], capsys)
    assert code == 0, err
    assert out_text == f"study 'lock' complete: 6 samples, 3 targets, 36 intervention rows -> {out}\n"
    pd.testing.assert_frame_equal(Study(out).table("interventions"), refs[1])
    assert not (out / ".lock").exists()


def test_resume_of_a_complete_study_while_locked_keeps_it_complete(tiny_study, tmp_path, capsys):
    """--resume on a complete study while another process holds its lock: one line, status stays complete,
    every file byte-identical."""
    st = tmp_path / "st"
    shutil.copytree(tiny_study.path, st)
    before = {p.name: p.read_bytes() for p in st.rglob("*") if p.is_file()}
    proc = _start("hold", st, tmp_path, tmp_path / "msg")
    pid = proc.pid
    _wait_file(tmp_path / "held", proc)
    assert (st / ".lock").read_text() == f"{pid}\n"
    from probe.study import parse_spec

    s = parse_spec(Study(st).manifest["spec"], base=tiny_study.path.parent)
    with pytest.raises(StudyBusyError) as e:
        run_study(s, st, resume=True, progress=False)
    assert str(e.value) == _busy(st, pid)
    code, _, err = cli(["stats", st], capsys)
    assert (code, err) == (2, f"error: {_busy(st, pid)}\n")
    (tmp_path / "go").touch()
    assert _wait(proc, tmp_path / "msg") == 0
    assert {p.name: p.read_bytes() for p in st.rglob("*") if p.is_file()} == before
    assert Study(st).status == "complete"


def test_writers_sweep_stale_tmp_files_of_dead_processes(tiny_study, tmp_path, capsys):
    """A killed `probe stats` leaves .correlations.parquet.<pid>.tmp: the next writer removes it (and dead parts'
    tmp files), and keeps the tmp files of live processes."""
    st = tmp_path / "st"
    shutil.copytree(tiny_study.path, st)
    p = subprocess.Popen(["true"])
    p.wait()
    dead, live = p.pid, os.getppid()
    (st / "parts").mkdir()
    stale = [st / f".correlations.parquet.{dead}.tmp", st / "parts" / f".interventions-00001.parquet.{dead}.tmp"]
    keep = st / f".effects.parquet.{live}.tmp"
    for f in [*stale, keep]:
        f.write_bytes(b"half a file")
    code, _, err = cli(["stats", st], capsys)
    assert code == 0, err
    assert [f.exists() for f in stale] == [False, False] and keep.read_bytes() == b"half a file"


def test_lock_is_reentrant_and_leaves_nothing(tmp_path):
    """In one process the lock nests; released, it leaves no .lock, and a directory it made stays only if
    something was written into it."""
    d = tmp_path / "new"
    with study_lock(d):
        assert (d / ".lock").read_text() == f"{os.getpid()}\n"
        with study_lock(d):
            pass
        assert (d / ".lock").exists()
    assert not d.exists()
    with study_lock(d):
        (d / "x").write_text("1")
    assert sorted(p.name for p in d.iterdir()) == ["x"]


def test_threads_of_one_process_take_turns(tmp_path):
    """The dashboard writes from several threads: a second thread waits for the first to release the study."""
    import threading

    d = tmp_path / "st"
    order, inside = [], threading.Event()

    def first():
        with study_lock(d):
            inside.set()
            time.sleep(0.2)
            order.append("first done")

    t = threading.Thread(target=first)
    t.start()
    inside.wait(10)
    with study_lock(d):
        order.append("second in")
        assert (d / ".lock").read_text() == f"{os.getpid()}\n"
    t.join()
    assert order == ["first done", "second in"] and not d.exists()


def test_lock_removes_the_parents_it_made(tmp_path):
    with pytest.raises(StudyBusyError):
        with study_lock(tmp_path / "a" / "b" / "c"):
            raise StudyBusyError("stand-in for any failure before the first write")
    assert sorted(tmp_path.iterdir()) == []


FORKS = """
import os, signal, sys, threading
from pathlib import Path

from probe.io import StudyBusyError, study_lock

d, which = Path(sys.argv[1]), sys.argv[2]


def child():
    signal.alarm(20)   # a child stuck on a lock copied from the parent dies of SIGALRM
    try:
        with study_lock(d):
            os._exit(0)
    except StudyBusyError as e:
        print(e, flush=True)
        os._exit(5)


def fork_and_wait():
    pid = os.fork()
    if pid == 0:
        child()
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)


if which == "main":
    with study_lock(d):
        fork_and_wait()
else:
    held, done = threading.Event(), threading.Event()

    def holder():
        with study_lock(d):
            held.set()
            done.wait(60)
    t = threading.Thread(target=holder)
    t.start()
    held.wait(60)
    fork_and_wait()
    done.set()
    t.join()
"""


@pytest.mark.parametrize("holder", ["main", "thread"])
def test_a_forked_child_does_not_inherit_the_lock(tmp_path, holder):
    """A process forked while its parent (the forking thread, or another thread) holds a study's lock is another
    writer: its study_lock gets the busy line naming the parent's PID, neither nesting into the parent's lock nor
    waiting on a thread lock that no thread of the child will release."""
    d = tmp_path / "st"
    r = subprocess.run(
        [sys.executable, "-c", FORKS, str(d), holder],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    busy, code = r.stdout.splitlines()
    parent = int(busy.split("(PID ")[1].split(")")[0])
    assert (busy, code) == (_busy(d, parent), "5") and parent != os.getpid()
    assert not d.exists()
