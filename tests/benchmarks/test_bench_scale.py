"""benchmarks.bench_scale: the per-command peak RSS wrapper and the results table (no timing assertions)."""

import sys

from benchmarks.bench_scale import measured, table


def test_measured_reports_the_peak_rss_of_the_command_alone():
    small = measured([sys.executable, "-c", "pass"])
    big = measured([sys.executable, "-c", "b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096])"])
    assert small["rc"] == 0 and big["rc"] == 0
    assert small["rss_mb"] < 100 < 300 < big["rss_mb"] < 400
    assert measured([sys.executable, "-c", "raise SystemExit(3)"])["rc"] == 3


def test_table_rows():
    r = {
        "rows": 1_000_000,
        "build_s": 12.3,
        "build_rss_mb": 456.7,
        "stats_s": 1.25,
        "stats_rss_mb": 200.4,
        "dash_p95_ms": 12.6,
        "dash_worst_view": "walks compare",
        "dash_worst_p95_ms": 40.2,
        "server_rss_mb": 333.3,
        "dash_errors": 0,
    }
    assert table([r]).splitlines()[2] == (
        "| 1,000,000 | 12 s, 457 MB | 1.2 s, 200 MB | 13 ms | walks compare: 40 ms | 333 MB | 0 |"
    )
