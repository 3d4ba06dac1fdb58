"""Speed and memory of our NVlabs-compatible generators at real sizes (random init, no weights needed):
StyleGAN2 config-f at 256 and 1024 px (channel_base 32768, channel_max 512, 8 mapping layers, z = w = 512) and
StyleGAN3-T at 256 px. Per model, in its own process (so peak RSS is that model's): build + load time, images/s at
batch 1 and 4 (after one warm-up render, which also runs the adapter's output-range check), peak RSS, and an engine
study (probe.study.run_study: a few samples, one channel target, measures "image") in rows/s. CUDA too when there.

python -m benchmarks.run nvlabs                     (or python -m benchmarks.bench_nvlabs [--quick] [--device cpu])
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import torch

CONFIGS = {  # name: (family, init kwargs)
    "stylegan2-256": (
        "stylegan2",
        dict(
            z_dim=512,
            c_dim=0,
            w_dim=512,
            img_resolution=256,
            img_channels=3,
            mapping_kwargs={"num_layers": 8},
            synthesis_kwargs={"channel_base": 32768, "channel_max": 512, "num_fp16_res": 4, "conv_clamp": 256},
        ),
    ),
    "stylegan2-1024": (
        "stylegan2",
        dict(
            z_dim=512,
            c_dim=0,
            w_dim=512,
            img_resolution=1024,
            img_channels=3,
            mapping_kwargs={"num_layers": 8},
            synthesis_kwargs={"channel_base": 32768, "channel_max": 512, "num_fp16_res": 4, "conv_clamp": 256},
        ),
    ),
    "stylegan3-t-256": (
        "stylegan3",
        dict(
            z_dim=512,
            c_dim=0,
            w_dim=512,
            img_resolution=256,
            img_channels=3,
            channel_base=32768,
            channel_max=512,
            mapping_kwargs={"num_layers": 2},
        ),
    ),
}
REPEATS = {"stylegan2-256": (2, 1), "stylegan2-1024": (1, 1), "stylegan3-t-256": (2, 1)}  # renders at batch 1, 4
STUDY = {"stylegan2-256": 2, "stylegan2-1024": 1, "stylegan3-t-256": 2}  # engine study samples


def build(name: str, device: str = "cpu") -> torch.nn.Module:
    """The random-init network of a config (seeded, NVlabs-style init), on `device`."""
    from probe.models.stylegan import seeded_init_

    family, kw = CONFIGS[name]
    if family == "stylegan2":
        from probe.models.stylegan2 import Generator
    else:
        from probe.models.stylegan3 import Generator
    return seeded_init_(Generator(**kw).eval(), 0).to(device)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def one(name: str, device: str, quick: bool) -> dict:
    """Benchmark one config in this process -> a result row."""
    from probe.models import StyleGANGenerator
    from probe.study import parse_spec, run_study

    t0 = time.perf_counter()
    g = StyleGANGenerator(build(name, device), name=name)
    load_s = time.perf_counter() - t0
    row = {
        "model": name,
        "device": device,
        "resolution": g.resolution,
        "num_ws": g.num_ws,
        "params_m": sum(p.numel() for p in g.module.parameters()) / 1e6,
        "load_s": load_s,
    }
    t0 = time.perf_counter()
    with torch.no_grad():
        g.synthesize(g.sample(1, 0))  # warm-up, includes the output-range check (2 samples above 128 px)
    _sync(device)
    row["first_render_s"] = time.perf_counter() - t0
    for bs, reps in zip((1, 4), REPEATS[name]):
        reps = 1 if quick else reps
        z = g.sample(bs, 1)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            with torch.no_grad():
                g.synthesize(z)
            _sync(device)
            times.append(time.perf_counter() - t0)
        row[f"img_s_b{bs}"] = bs / min(times)
    if device.startswith("cuda"):
        row["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    with tempfile.TemporaryDirectory() as root:
        f = Path(root) / "nets.py"
        f.write_text(
            textwrap.dedent(f"""
            from benchmarks.bench_nvlabs import build

            def make():
                return build({name!r}, {device!r})
        """)
        )
        site = g.sites[len(g.sites) // 2]
        n = 1 if quick else STUDY[name]
        spec = parse_spec(
            {
                "name": "bench",
                "model": f"{f}:make",
                "measures": ["image"],
                "n_samples": n,
                "seed": 0,
                "batch_size": 4,
                "alphas": [-1.0, 1.0],
                "targets": [{"kind": "channels", "site": site, "channels": [0]}],
            }
        )
        t0 = time.perf_counter()
        st = run_study(spec, Path(root) / "study", progress=False)
        dt = time.perf_counter() - t0
        rows = len(st.table("interventions")) + n
    row.update(
        {"study_site": site, "study_rows": rows, "study_s": dt, "study_rows_s": rows / dt, "peak_rss_mb": _peak_mb()}
    )
    return row


def sefa_modes(data: str = "tests/data/nvlabs") -> list[dict]:
    """|cos| between SeFa's official and all-affines top-5 directions on the NVlabs test networks."""
    import numpy as np

    from probe.directions.sefa import SeFa
    from probe.models import StyleGANGenerator
    from probe.models.stylegan2 import Generator as G2
    from probe.models.stylegan3 import Generator as G3

    out = []
    for name, G in (("sg2_32", G2), ("sg3_t_32", G3)):
        info = json.loads((Path(data) / f"{name}_info.json").read_text())
        net = G(**info["init_kwargs"]).eval()
        with np.load(Path(data) / f"{name}_state.npz", allow_pickle=False) as z:
            net.load_state_dict({k: torch.from_numpy(z[k]) for k in z.files})
        g = StyleGANGenerator(net, name=name)
        a, b = SeFa(5).fit(g), SeFa(5, affines="all-affines").fit(g)
        cos = np.abs((a.directions_.vectors * b.directions_.vectors).sum(1))
        out.append(
            {
                "network": name,
                "official_columns": a.weight_.shape[1],
                "all_columns": b.weight_.shape[1],
                "top5_abs_cos": [round(float(c), 2) for c in cos],
            }
        )
        print(json.dumps(out[-1]), flush=True)
    return out


def render(name: str, repeats: int) -> dict:
    """Seconds per 256/1024 px image at batch 1 (best of `repeats` after one warm-up) and peak RSS, with whatever
    `probe` is first on sys.path (the comparison puts an older revision there)."""
    import probe

    g = build(name)
    z = torch.randn(1, g.z_dim, generator=torch.Generator().manual_seed(0))
    times = []
    with torch.no_grad():
        ws = g.mapping(z, None)
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            img = g.synthesis(ws)
            times.append(time.perf_counter() - t0)
    return {
        "model": name,
        "probe": str(Path(probe.__file__).parent),
        "s_per_img": min(times[1:] or times),
        "peak_rss_mb": _peak_mb(),
        "img_mean": float(img.mean()),
    }


def compare(rev: str, names: list[str], threads: int, repeats: int) -> list[dict]:
    """Before/after in one run: each config rendered by the `probe` package of git revision `rev` and by this
    checkout, alternating, each in its own process."""
    root = Path(__file__).resolve().parents[1]
    rows = []
    with tempfile.TemporaryDirectory() as old:
        arc = subprocess.run(["git", "archive", rev, "probe"], cwd=root, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", old], input=arc, check=True)
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        for name in names:
            out = {}
            for side, path in (("before", old), ("after", str(root))):
                cmd = [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--render",
                    name,
                    "--threads",
                    str(threads),
                    "--repeats",
                    str(repeats),
                ]
                r = subprocess.run(cmd, capture_output=True, text=True, env=dict(env, PYTHONPATH=path), cwd=path)
                if r.returncode != 0:
                    raise RuntimeError(f"{name} ({side}) failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
                out[side] = json.loads(r.stdout.strip().splitlines()[-1])
            row = {
                "model": name,
                "rev": rev,
                "threads": threads,
                **{f"{k}_{side}": v for side in out for k, v in out[side].items() if k != "model"},
            }
            row["speedup"] = row["s_per_img_before"] / row["s_per_img_after"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("| model | s/img before | s/img after | speedup | peak RSS MB before | after |\n|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['s_per_img_before']:.1f} | {r['s_per_img_after']:.1f} | {r['speedup']:.1f}x | "
            f"{r['peak_rss_mb_before']:.0f} | {r['peak_rss_mb_after']:.0f} |"
        )
    return rows


def _child(name: str, device: str, quick: bool, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.bench_nvlabs",
        "--one",
        name,
        "--device",
        device,
        "--threads",
        str(threads),
    ] + (["--quick"] if quick else [])
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[1])
    if r.returncode != 0:
        raise RuntimeError(f"{name} on {device} failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    """Markdown table of result rows."""
    head = [
        "model",
        "device",
        "params (M)",
        "load s",
        "first render s",
        "img/s b1",
        "img/s b4",
        "peak RSS MB",
        "study rows/s",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['device']} | {r['params_m']:.1f} | {r['load_s']:.1f} | "
            f"{r['first_render_s']:.1f} | {r['img_s_b1']:.2f} | {r['img_s_b4']:.2f} | "
            f"{r['peak_rss_mb']:.0f} | {r['study_rows_s']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    """Run every config (each in a child process) on CPU and, when present, CUDA; print rows and a table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--one")
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--quick", action="store_true", help="one repeat per batch size, one study sample")
    ap.add_argument("--only", nargs="*", default=None, help="config names (default all)")
    ap.add_argument("--sefa", action="store_true", help="only compare SeFa's two affine modes on the test networks")
    ap.add_argument("--against", metavar="REV", help="only time one image per config, at git revision REV and now")
    ap.add_argument("--render", help=argparse.SUPPRESS)
    ap.add_argument("--repeats", type=int, default=1, help="renders after the warm-up (--against)")
    a = ap.parse_args([] if argv is None and __name__ != "__main__" else argv)
    if a.sefa:
        sefa_modes()
        return []
    if a.render:
        torch.set_num_threads(a.threads)
        print(json.dumps(render(a.render, a.repeats)))
        return []
    if a.against:
        compare(a.against, a.only or list(CONFIGS), a.threads, a.repeats)
        return []
    if a.one:
        torch.set_num_threads(a.threads)
        print(json.dumps(one(a.one, a.device or "cpu", a.quick)))
        return []
    devices = [a.device] if a.device else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, torch "
        f"{torch.__version__}, {a.threads} thread(s)"
        + (f", {torch.cuda.get_device_name(0)}" if "cuda" in devices else ", no CUDA device"),
        flush=True,
    )
    rows = []
    for dev in devices:
        for name in a.only or CONFIGS:
            r = _child(name, dev, a.quick, a.threads)
            rows.append(r)
            print(json.dumps(r), flush=True)
    print(table(rows))
    print(
        "load = build + seeded init + the adapter's first render; first render = one image plus the output-range "
        "check (2 seeded images above 128 px); img/s best of the repeats; study = run_study (n samples, one "
        "channel target at the middle site, alphas -1, 1, measures image), rows = base samples + intervention "
        "rows."
    )
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
