"""Time to first look: seconds from starting `probe demo` until GET / returns 200 and the Overview page's content
comes back (the router callback, as the browser asks for it) with the samples grid (the Overview's grid callback),
then until every demo step is done. The demo serves once its base samples are scored, before the direction fits.

python -m benchmarks.run demo                 (or python -m benchmarks.bench_demo [--quick] [--no-wait])

Runs `probe demo --out TMP --port FREE` in a new process (imports, model load and all), on the real demo spec
(examples/faces_demo.toml, 5,000 faces for InterFaceGAN, 600 DP-LaSE steps); --quick runs a reduced demo (32
samples, 16 variables, 1,000 faces, 100 DP-LaSE steps) for a loaded machine; --no-wait stops at the first look.
Budget: first look <= 120 s on 2 quiet cores. CPU seconds of the demo process are printed beside the wall times
(less sensitive to other jobs on a shared machine). The study directory is removed afterwards.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

SPEC = Path("examples/faces_demo.toml")
BUDGET_S = 120.0
QUICK = {"n_samples = 128": "n_samples = 32", "indices = 64": "indices = 16"}
ROUTE = {
    "output": "page.children",
    "outputs": {"id": "page", "property": "children"},
    "inputs": [{"id": "url", "property": "pathname", "value": "/"}],
    "changedPropIds": ["url.pathname"],
}
GRID = {
    "output": "..ov-grid.figure...ov-grid.style...ov-grid-msg.children..",
    "outputs": [
        {"id": "ov-grid", "property": "figure"},
        {"id": "ov-grid", "property": "style"},
        {"id": "ov-grid-msg", "property": "children"},
    ],
    "inputs": [{"id": "ov-n", "property": "value", "value": 16}],
    "changedPropIds": ["ov-n.value"],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quick_spec(path: Path) -> Path:
    """The demo spec with fewer samples and variables, written to path."""
    text = SPEC.read_text()
    for a, b in QUICK.items():
        if text.count(a) != 1:
            raise RuntimeError(f"{SPEC} no longer has one {a!r}; update benchmarks/bench_demo.QUICK")
        text = text.replace(a, b)
    path.write_text(text)
    return path


def _post(url: str, body: dict) -> str:
    req = urllib.request.Request(
        url + "/_dash-update-component", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.read().decode()


def _overview(url: str) -> str | None:
    """The Overview content when the dashboard serves it (GET / 200, the router callback's answer and the samples
    grid figure), else None."""
    try:
        with urllib.request.urlopen(url + "/", timeout=5) as r:
            if r.status != 200:
                return None
        body = _post(url, ROUTE)
        if "ov-counts" not in body:
            return None
        grid = _post(url, GRID)
    except OSError:
        return None
    return body + grid if re.search(r"first \d+ samples", grid) else None  # the grid figure's title


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a running process (Linux /proc), threads included."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> dict:
    from dashboards.pages._progress import read_progress

    argv = sys.argv[1:] if argv is None else argv
    quick, wait = "--quick" in argv, "--no-wait" not in argv
    tmp = Path(tempfile.mkdtemp(prefix="bench_demo_"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [str(Path(sys.executable).with_name("probe")), "demo", "--out", str(tmp / "study"), "--port", str(port)]
    if quick:
        cmd += ["--spec", str(quick_spec(tmp / "quick.toml")), "--n-fit", "1000", "--dplase-steps", "100"]
    log = open(tmp / "demo.log", "w")
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    out: dict = {"quick": quick, "command": " ".join(cmd[1:]), "load_start": load0}
    try:
        body = None
        while body is None:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"probe demo exited ({proc.returncode}) before serving; see its log:\n"
                    + (tmp / "demo.log").read_text()[-2000:]
                )
            body = _overview(url)
            if body is None:
                time.sleep(0.5)
        out["first_look_s"] = time.perf_counter() - t0
        out["first_look_cpu_s"] = cpu_seconds(proc.pid)
        out["error_box"] = "probe-error" in body
        out["first_look_direction_files"] = len(list((tmp / "study" / "directions").glob("*.npz")))
        p = read_progress(tmp / "study") or {}
        out["first_look_steps_done"] = [s["name"] for s in p.get("steps", []) if s.get("state") == "done"]
        cpu = out["first_look_cpu_s"]
        print(
            f"first look (GET / 200 + Overview content): {out['first_look_s']:.1f} s after `probe demo` started"
            + (f", {cpu:.1f} s of CPU time in the demo process" if cpu is not None else "")
            + f"; steps done by then: {', '.join(out['first_look_steps_done']) or 'none'}; direction files: "
            f"{out['first_look_direction_files']}; load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        if wait:
            while True:
                p = read_progress(tmp / "study") or {}
                if p.get("state") in ("done", "failed") or proc.poll() is not None:
                    break
                time.sleep(1.0)
            out["all_done_s"] = time.perf_counter() - t0
            out["all_done_cpu_s"] = cpu_seconds(proc.pid)
            out["state"] = p.get("state")
            out["steps_s"] = {s["name"]: s.get("seconds") for s in p.get("steps", [])}
            print(
                f"all steps {out['state']} after {out['all_done_s']:.1f} s ({out['all_done_cpu_s'] or 0:.0f} s CPU): "
                + ", ".join(f"{k} {v:.0f} s" for k, v in out["steps_s"].items() if v is not None),
                flush=True,
            )
            out["overview_after"] = _overview(url) is not None
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    out["load_end"] = os.getloadavg()[0]
    ok = out["first_look_s"] <= BUDGET_S and not out["error_box"]
    print(
        f"budget (first look <= {BUDGET_S:.0f} s on 2 quiet cores): {'met' if ok else 'NOT met'}"
        f"{' (reduced demo: --quick)' if quick else ''}; machine: {os.cpu_count()} CPUs, load average "
        f"{load0:.1f} at the start, {out['load_end']:.1f} at the end"
    )
    return out


if __name__ == "__main__":
    main()
