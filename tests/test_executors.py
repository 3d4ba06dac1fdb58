"""Executors: in-process vs Ray on a local cluster started here (2 CPUs); real worker and driver kills."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

from probe.executors import ExecutorError, InProcessExecutor, RayExecutor, make_executor
from probe.store import Study
from probe.study import parse_spec, run_study
from tests.helpers import cli

SPEC = {
    "name": "ex",
    "model": "tiny-dcgan",
    "measures": ["image"],
    "n_samples": 16,
    "seed": 3,
    "alphas": [-2, -1, 0, 1, 2],
    "part_rows": 24,
    "targets": [{"kind": "variables", "indices": [0, 1, 2, 3]}, {"kind": "channels", "site": "b2", "channels": [3, 5]}],
}  # 480 rows, 20 parts
BIG = {
    **SPEC,
    "name": "big",
    "n_samples": 64,
    "part_rows": 64,
    "targets": [{"kind": "variables", "indices": list(range(8))}],
}  # 2560 rows, 40 parts
TABLES = ("interventions", "samples")


@pytest.fixture(scope="module")
def ray_address():
    """A local Ray cluster of 2 CPUs for this module (shut down after it: its processes and the driver's threads
    do not outlive the module) -> its GCS address (other processes connect to it)."""
    try:
        import ray
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("ray is not installed (pip install 'latent-probe[ray]'); CI installs it")
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_ex(ray_address):
    """Two actors holding tiny-dcgan + 'image'. No Ray task retries, so a killed actor's tasks come back to the
    driver, which reschedules them on the other actor."""
    ex = RayExecutor(workers=2, task_retries=0).start("tiny-dcgan", {}, ["image"])
    yield ex
    ex.close()


# The in-process reference runs in a fresh interpreter, like the Ray actors: no state an earlier test of this
# process left behind (RNGs, thread counts, cached models or measures, torch flags) can reach it.
REF = """
import json, sys
from probe.study import parse_spec, run_study
for d in json.loads(sys.argv[1]):
    run_study(parse_spec(d), f"{sys.argv[2]}/{d['name']}", progress=False)
"""


@pytest.fixture(scope="session")
def ref(tmp_path_factory):
    """In-process studies of SPEC and BIG, run by a new Python process -> {name: {table: DataFrame}}."""
    root = tmp_path_factory.mktemp("ref")
    r = subprocess.run(
        [sys.executable, "-c", REF, json.dumps([SPEC, BIG]), str(root)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return {d["name"]: {t: Study(root / d["name"]).table(t) for t in TABLES} for d in (SPEC, BIG)}


def _same(study, want: dict) -> None:
    for t in TABLES:
        pd.testing.assert_frame_equal(study.table(t), want[t])


def _parts(out) -> int:
    p = out / "parts"
    return len([f for f in p.iterdir() if f.suffix == ".parquet"]) if p.is_dir() else 0


@pytest.mark.slow
def test_ray_run_equals_inprocess(ray_ex, ref, tmp_path):
    st = run_study(parse_spec(SPEC), tmp_path / "s", progress=False, executor=ray_ex)
    assert st.status == "complete" and st.manifest["parts_done"] == list(range(20))
    _same(st, ref["ex"])
    assert len(set(ray_ex.worker_pids()) - {os.getpid()}) == 2


# The interrupted run, in a fresh interpreter like the reference and the Ray actors: the first 5 parts then raise.
FIVE_PARTS = """
import json, sys
from probe.executors import InProcessExecutor
from probe.study import parse_spec, run_study
class Stop(Exception):
    pass
class FiveParts(InProcessExecutor):
    def run(self, plan, skip=(), **kw):
        for i, part in enumerate(super().run(plan, skip, **kw)):
            if i == 5:
                raise Stop
            yield part
try:
    run_study(parse_spec(json.loads(sys.argv[1])), sys.argv[2], progress=False, executor=FiveParts())
except Stop:
    print("stopped")
"""


@pytest.mark.slow
def test_ray_resume_skips_done_parts(ray_ex, ref, tmp_path):
    """A study interrupted after 5 parts (the generator is closed by the error) resumes on Ray with only the
    missing 15 parts computed, and its tables equal the in-process run exactly."""
    from probe.executors import Plan

    out = tmp_path / "s"
    r = subprocess.run(
        [sys.executable, "-c", FIVE_PARTS, json.dumps(SPEC), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert r.returncode == 0 and r.stdout.strip() == "stopped", r.stderr[-2000:]
    assert _parts(out) == 5
    seen = []

    class Counting:
        def run(self, plan: Plan, skip=(), **kw):
            for part in ray_ex.run(plan, skip, **kw):
                seen.append(part.k)
                yield part

    st = run_study(parse_spec(SPEC), out, resume=True, progress=False, executor=Counting())
    assert sorted(seen) == list(range(5, 20))
    _same(st, ref["ex"])


@pytest.mark.slow
def test_worker_killed_mid_run_is_rescheduled(ray_ex, ref, tmp_path):
    """SIGKILL one actor once the first part is written: its tasks in flight move to the other actor, Ray
    restarts the killed one (a new PID), and the tables equal the in-process run."""
    out = tmp_path / "s"
    pid = ray_ex.worker_pids()[0]
    at_kill = []

    def killer():
        t0 = time.monotonic()
        while _parts(out) < 1 and time.monotonic() - t0 < 120:
            time.sleep(0.002)
        at_kill.append(_parts(out))
        os.kill(pid, signal.SIGKILL)

    before = ray_ex.rescheduled
    th = threading.Thread(target=killer)
    th.start()
    st = run_study(parse_spec(BIG), out, progress=False, executor=ray_ex)
    th.join()
    assert 1 <= at_kill[0] < 40
    assert ray_ex.rescheduled > before
    _same(st, ref["big"])
    new = ray_ex.worker_pids()
    assert pid not in new and len(set(new)) == 2


@pytest.mark.slow
def test_sample_and_score_and_fit_equal_inprocess(ray_ex, tiny_dcgan):
    from probe.directions import fit_from_model, sample_and_score

    lat0, s0 = sample_and_score(tiny_dcgan, ["image"], 100, seed=4, batch_size=16)
    lat1, s1 = sample_and_score(tiny_dcgan, ["image"], 100, seed=4, batch_size=16, executor=ray_ex)
    np.testing.assert_array_equal(lat0, lat1)
    assert list(s0) == list(s1) == ["brightness", "contrast", "saturation", "hue", "centroid_x", "centroid_y"]
    for m in s0:
        np.testing.assert_array_equal(s0[m], s1[m])
    from probe.measures import MeasureSet

    ms = MeasureSet(["image"])  # the same six measures: the actors are reused
    a = fit_from_model(tiny_dcgan, ms, n=120, seed=0, ratio=0.25, batch_size=32)
    b = fit_from_model(tiny_dcgan, ms, n=120, seed=0, ratio=0.25, batch_size=32, executor=ray_ex)
    assert a.directions_.names == ms.names and a.accuracy_ == b.accuracy_
    np.testing.assert_array_equal(a.directions_.vectors, b.directions_.vectors)


def test_more_workers_than_cpus(ray_address):
    with pytest.raises(ExecutorError) as e:
        RayExecutor(workers=3).start("tiny-dcgan", {}, ["image"])
    assert str(e.value) == "--workers: 3 actors need 3 CPUs but the Ray cluster has 2; use --workers 2 or add nodes"


@pytest.mark.slow
def test_driver_killed_then_resume(ray_address, ray_ex, ref, tmp_path, capsys):
    """A `probe run --executor ray --address` driver connected to this cluster, SIGKILLed after its first part;
    `probe run --resume --executor ray` finishes it with the tables of an in-process run."""
    ray_ex.close()  # free the cluster's 2 CPUs for the drivers' actors (ray_ex restarts its actors when used)
    spec = tmp_path / "big.toml"
    spec.write_text(
        f'name = "big"\nmodel = "tiny-dcgan"\nmeasures = ["image"]\nn_samples = 64\nseed = 3\n'
        f'alphas = [-2, -1, 0, 1, 2]\npart_rows = 64\n[[targets]]\nkind = "variables"\n'
        f"indices = {list(range(8))}\n"
    )
    out = tmp_path / "s"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from probe.cli import main; main()",
            "run",
            str(spec),
            "--out",
            str(out),
            "--executor",
            "ray",
            "--address",
            ray_address,
            "--workers",
            "1",
            "--no-progress",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    t0 = time.monotonic()
    while _parts(out) < 1 and proc.poll() is None and time.monotonic() - t0 < 120:
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = _parts(out)
    assert proc.returncode == -signal.SIGKILL and 1 <= done < 40, proc.stderr.read().decode()[-2000:]
    code, stdout, err = cli(
        ["run", spec, "--out", out, "--resume", "--executor", "ray", "--workers", "1", "--no-progress"], capsys
    )
    assert code == 0, err
    assert "2560 intervention rows" in stdout
    _same(Study(out), ref["big"])


def test_inprocess_score_equals_sample_and_score(tiny_dcgan):
    from probe.directions import sample_and_score

    lat, s0 = sample_and_score(tiny_dcgan, ["image"], 40, seed=1, batch_size=16)
    s1 = InProcessExecutor().score("tiny-dcgan", {}, ["image"], lat, "z", 16)
    assert list(s0) == list(s1)
    for m in s0:
        np.testing.assert_array_equal(s0[m], s1[m])


def test_executor_bad_inputs():
    with pytest.raises(ExecutorError) as e:
        make_executor("dask")
    assert str(e.value) == "--executor: 'dask' is unknown; use one of ['inproc', 'ray']"
    with pytest.raises(ExecutorError) as e:
        make_executor("inproc", address="auto")
    assert str(e.value) == "--address: only used with --executor ray; add --executor ray or remove --address"
    with pytest.raises(ExecutorError) as e:
        make_executor("inproc", workers=3)
    assert str(e.value) == "--workers: only used with --executor ray; add --executor ray or remove --workers"
    pytest.importorskip("ray")
    with pytest.raises(ExecutorError) as e:
        make_executor("ray", workers=0)
    assert str(e.value) == "--workers: 0 is out of range; use 1..1024 actors"
    with pytest.raises(ExecutorError) as e:
        RayExecutor(address=" ")
    assert str(e.value) == "--address: ' ' is empty; use auto or HOST:PORT of a running Ray head"


def test_cli_bad_executor(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(
        'name = "s"\nmodel = "tiny-dcgan"\nmeasures = ["image"]\nn_samples = 2\nalphas = [0]\n'
        '[[targets]]\nkind = "variables"\nindices = [0]\n'
    )
    code, _, err = cli(["run", spec, "--out", tmp_path / "o", "--executor", "dask"], capsys)
    assert (code, err) == (2, "error: --executor: 'dask' is unknown; use one of ['inproc', 'ray']\n")
    code, _, err = cli(["run", spec, "--out", tmp_path / "o", "--workers", "2"], capsys)
    assert (code, err) == (
        2,
        "error: --workers: only used with --executor ray; add --executor ray or remove --workers\n",
    )
    assert not (tmp_path / "o").exists()


def test_cli_ray_missing(tmp_path):
    """Without Ray installed (import blocked), --executor ray is one line and creates nothing."""
    spec = tmp_path / "s.toml"
    spec.write_text(
        'name = "s"\nmodel = "tiny-dcgan"\nmeasures = ["image"]\nn_samples = 2\nalphas = [0]\n'
        '[[targets]]\nkind = "variables"\nindices = [0]\n'
    )
    code = (
        "import sys; sys.modules['ray'] = None; from probe.cli import main; sys.argv = ['probe', 'run', "
        f"{str(spec)!r}, '--out', {str(tmp_path / 'o')!r}, '--executor', 'ray']; main()"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stderr) == (
        2,
        "error: --executor ray: Ray is not installed; pip install "
        "'latent-probe[ray]' (or 'ray>=2.9'), or use --executor inproc\n",
    )
    assert not (tmp_path / "o").exists()
