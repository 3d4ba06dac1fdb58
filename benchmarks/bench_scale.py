"""Tens of millions of intervention rows: build (chunked write + streaming merge), `probe stats` and the dashboard
load test on synthetic tiny-dcgan studies of 1M, 10M and 30M rows; wall time and peak RSS of each step.

    python -m benchmarks.bench_scale                                  # 1M, 10M, 30M rows
    python -m benchmarks.bench_scale --rows 1000000 --seconds 10 --json scale.json

The stats step is what `probe stats STUDY` runs (probe.stats.analyze under the study lock). Each step runs in a
fresh subprocess: a small wrapper process runs the command and reports
resource.getrusage(RUSAGE_CHILDREN).ru_maxrss, i.e. the peak RSS of that command alone. The dashboard step is
benchmarks.load_dashboard on the built study (8 clients); its server reports its own peak RSS.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS = [1_000_000, 10_000_000, 30_000_000]
WRAP = (
    "import json, resource, subprocess, sys; r = subprocess.run(sys.argv[1:]).returncode; "
    "print('\\n@@' + json.dumps({'rc': r, 'rss_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))"
)


def measured(cmd: list[str], env: dict | None = None) -> dict:
    """Run cmd in a fresh wrapper process -> {seconds, rss_mb (peak of cmd), rc, tail (last output lines)}."""
    import os

    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-c", WRAP, *cmd],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )
    dt = time.perf_counter() - t0
    lines = p.stdout.strip().splitlines()
    mark = [i for i, ln in enumerate(lines) if ln.startswith("@@")]
    res = json.loads(lines[mark[-1]][2:]) if mark else {"rc": p.returncode, "rss_mb": float("nan")}
    out = [ln for ln in lines if not ln.startswith("@@")]
    return {"seconds": dt, **res, "tail": "\n".join(out[-13:] + p.stderr.strip().splitlines()[-3:])}


def one(rows: int, root: Path, clients: int, seconds: float) -> dict:
    """Build a study of `rows` rows under root, run probe stats on it, then the dashboard load test."""
    path = root / f"study-{rows}"
    py = sys.executable
    b = measured([py, "-c", f"from benchmarks.load_dashboard import build; build({str(path)!r}, {rows}, False)"])
    if b["rc"]:
        raise RuntimeError(f"build of {rows} rows failed:\n{b['tail']}")
    s = measured(
        [
            py,
            "-c",
            "import sys; from probe import stats; from probe.store import Study; "
            "st = Study(sys.argv[1]); lk = st.lock(); lk.__enter__(); stats.analyze(st)",
            str(path),
        ]
    )
    if s["rc"]:
        raise RuntimeError(f"probe stats failed:\n{s['tail']}")
    out = root / f"load-{rows}.json"
    d = measured(
        [
            py,
            "-m",
            "benchmarks.load_dashboard",
            "--study",
            str(path),
            "--clients",
            str(clients),
            "--seconds",
            str(seconds),
            "--json",
            str(out),
        ]
    )
    if d["rc"]:
        raise RuntimeError(f"load test failed:\n{d['tail']}")
    load = json.loads(out.read_text())
    views = {v: {"p95_ms": x["p95_ms"], "cold_ms": x.get("cold_ms")} for v, x in load["views"].items() if "n" in x}
    worst = max(views, key=lambda v: views[v]["p95_ms"])
    return {
        "rows": load["rows"],
        "build_s": b["seconds"],
        "build_rss_mb": b["rss_mb"],
        "stats_s": s["seconds"],
        "stats_rss_mb": s["rss_mb"],
        "dash_p95_ms": load["p95_ms"],
        "dash_worst_view": worst,
        "dash_worst_p95_ms": views[worst]["p95_ms"],
        "dash_errors": load["errors"],
        "dash_requests": load["requests"],
        "server_rss_mb": load["server_peak_rss_mb"],
        "views": views,
        "load_text": d["tail"],
    }


def table(res: list[dict]) -> str:
    """Markdown table of the results."""
    lines = [
        "| rows | build (write + merge) | probe stats | dashboard p95 (all views) | worst view p95 | "
        "dashboard RSS | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res:
        lines.append(
            f"| {r['rows']:,} | {r['build_s']:.0f} s, {r['build_rss_mb']:.0f} MB | {r['stats_s']:.1f} s, "
            f"{r['stats_rss_mb']:.0f} MB | {r['dash_p95_ms']:.0f} ms | {r['dash_worst_view']}: "
            f"{r['dash_worst_p95_ms']:.0f} ms | {r['server_rss_mb']:.0f} MB | {r['dash_errors']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=ROWS)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--root", type=Path, default=None, help="keep the studies here (default: a temp dir)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args([] if argv is None and __name__ != "__main__" else argv)
    res = []
    with tempfile.TemporaryDirectory() as tmp:
        root = a.root or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        for n in a.rows:
            r = one(n, root, a.clients, a.seconds)
            res.append(r)
            print(r["load_text"], flush=True)
            print(table([r]), flush=True)
            if a.json:
                a.json.write_text(json.dumps(res, indent=1))
    print(table(res), flush=True)
    return res


if __name__ == "__main__":
    main()
