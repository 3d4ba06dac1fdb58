"""Report build time and size (budget: the demo report < 8 MB, builds < 10 s).

python -m benchmarks.run report      (or python -m benchmarks.bench_report [STUDY_DIR])

Uses STUDY_DIR, else studies/faces-demo when `make demo` made it, else makes a demo-sized face study in a temp dir
(faces model, measures faces + image, 64 samples, 8 variables + 4 random directions + 2 channels, 5 alphas; then
probe stats, probe embed and the direction evaluation) and reports that.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEMO = Path("studies/faces-demo")


def make_demo_like(root: Path):
    """A demo-sized face study with every table, in root/study.  -> probe.store.Study"""
    from probe import stats
    from probe.directions import evaluate_study
    from probe.directions.base import DirectionSet
    from probe.embed import embed_study
    from probe.models import load_model
    from probe.study import parse_spec, run_study

    m = load_model("faces")
    v = np.random.default_rng(0).standard_normal((4, m.z_dim))
    DirectionSet([f"d{i}" for i in range(4)], v / np.linalg.norm(v, axis=1, keepdims=True), "z", "random").save(
        root / "random.npz"
    )
    spec = parse_spec(
        {
            "name": "faces-bench",
            "model": "faces",
            "measures": ["faces", "image"],
            "n_samples": 64,
            "seed": 0,
            "alphas": [-3, -1.5, 0, 1.5, 3],
            "targets": [
                {"kind": "variables", "indices": 8},
                {"kind": "directions", "file": "random.npz"},
                {"kind": "channels", "site": "b2", "channels": [3, 7]},
            ],
        },
        base=root,
    )
    s = run_study(spec, root / "study", progress=False)
    stats.analyze(s)
    evaluate_study(s)
    embed_study(s, walks=True)
    return s


def main(argv: list[str] | None = None) -> dict:
    from probe.store import Study
    from reports.build import timed_build

    argv = sys.argv[1:] if argv is None else argv
    tmp = Path(tempfile.mkdtemp(prefix="bench_report_"))
    try:
        if argv:
            study = Study(argv[0])
        elif (DEMO / "manifest.json").is_file():
            study = Study(DEMO)
        else:
            t = time.perf_counter()
            study = make_demo_like(tmp)
            print(f"made a demo-sized face study in {time.perf_counter() - t:.1f} s")
        n = len(study.table("interventions")) if study.has("interventions") else 0
        print(f"study {study.path} ({study.model_name}, {len(study.latents())} samples, {n} intervention rows)")
        out = {}
        for cdn in (False, True):
            for k in range(2):  # first build pays the imports of plotly / scipy / the model
                c0 = time.process_time()
                r = timed_build(study, tmp / f"report{'-cdn' if cdn else ''}.html", cdn=cdn)
                r["cpu_seconds"] = time.process_time() - c0
                out[f"{'cdn' if cdn else 'offline'}_{'first' if k == 0 else 'warm'}"] = r
                print(
                    f"build_report(cdn={cdn}) {'first' if k == 0 else 'warm '}: {r['seconds']:.2f} s wall, "
                    f"{r['cpu_seconds']:.2f} s CPU, {r['bytes'] / 1e6:.2f} MB"
                )
        t, c0 = time.perf_counter(), os.times()
        subprocess.run(
            [str(Path(sys.executable).with_name("probe")), "report", str(study.path), "-o", str(tmp / "cli.html")],
            check=True,
            capture_output=True,
        )
        out["cli_seconds"] = time.perf_counter() - t
        c1 = os.times()
        out["cli_cpu_seconds"] = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
        print(
            f"`probe report` command (new process, imports included): {out['cli_seconds']:.2f} s wall, "
            f"{out['cli_cpu_seconds']:.2f} s CPU"
        )
        f = out["offline_first"]
        ok = f["bytes"] < 8e6 and f["seconds"] < 10
        print(
            f"budget (< 8 MB, < 10 s): {'met' if ok else 'NOT met'} by wall time, "
            f"{'met' if f['bytes'] < 8e6 and f['cpu_seconds'] < 10 else 'NOT met'} by CPU time; machine: {platform.machine()}, "
            f"{os.cpu_count()} CPUs, torch threads {__import__('torch').get_num_threads()}, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
