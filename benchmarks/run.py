"""`make bench`: run every benchmarks/bench_*.py module's `main()` in turn, then the dashboard load test
(benchmarks/load_dashboard.py).  python -m benchmarks.run [names...] runs the ones whose name contains a name,
e.g. `python -m benchmarks.run nvlabs` (StyleGAN2 256/1024 px and StyleGAN3-T 256 px at real sizes)."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

EXTRA = ["load_dashboard"]  # loopback dashboard load test (8 clients x 30 s on a 100k-row study)


def modules(only: list[str] | None = None) -> list[str]:
    """Benchmark module names (bench_*.py next to this file, sorted, then EXTRA); `only` filters by substring."""
    names = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py")) + EXTRA
    return [n for n in names if not only or any(o in n for o in only)]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    failed = []
    for name in modules(argv):
        print(f"== {name} ==", flush=True)
        t = time.perf_counter()
        try:
            importlib.import_module(f"benchmarks.{name}").main()
        except Exception as e:  # noqa: BLE001 - report and go on with the next benchmark
            failed.append(name)
            print(f"{name} FAILED: {type(e).__name__}: {e}", flush=True)
        print(f"({name}: {time.perf_counter() - t:.1f} s)\n", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
