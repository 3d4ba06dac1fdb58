"""Engine throughput: a full study run (walks + render + measures + density stats + atomic Parquet parts) against
the bare generator + measures forward at the same batch size (target >= 0.9x) and a per-sample loop (>= 20x).

python -m benchmarks.run engine      (or python -m benchmarks.bench_engine)
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time

import torch

CONFIGS = (  # model, measures, n_samples, variables, alphas (no 0: every row is rendered), batch size
    ("tiny-dcgan", ["image"], 64, 16, [-2.0, -1.0, 1.0, 2.0], 64),
    ("faces", ["image"], 16, 8, [-3.0, -1.5, 1.5, 3.0], 64),
    ("faces", ["faces", "image"], 16, 8, [-3.0, 3.0], 64),
)


def _bare(model, lat, targets, alphas, ms, bs):
    """Generator + measures forward on pre-walked latents, same batch size; no engine, no store."""
    from probe.walks import apply

    walked = torch.cat([apply(lat, "z", t, alphas) for t in targets])
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, len(walked), bs):
        with torch.no_grad():
            img = model.synthesize(walked[i : i + bs], "z")
        ms(img)
    return len(walked), time.perf_counter() - t0, time.process_time() - c0


def _loop(model, lat, targets, alphas, ms, limit):
    """Per-sample Python loop: one walk, one image, one measure call at a time (first `limit` images)."""
    from probe.density import latent_stats
    from probe.walks import apply

    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    for t in targets:
        for x in lat:
            for a in alphas:
                e = apply(x[None], "z", t, [a])
                with torch.no_grad():
                    img = model.synthesize(e, "z")
                ms(img)
                latent_stats(e, "z")
                n += 1
                if n >= limit:
                    return n, time.perf_counter() - t0, time.process_time() - c0
    return n, time.perf_counter() - t0, time.process_time() - c0


def _engine(spec, root):
    from probe.study import run_study

    out = os.path.join(root, "study")
    shutil.rmtree(out, ignore_errors=True)
    t0, c0 = time.perf_counter(), time.process_time()
    st = run_study(spec, out, progress=False)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    return len(st.table("interventions")) + spec.n_samples, dt, dc


def main(threads: int = 1, loop_images: int = 64, repeats: int = 3) -> list[dict]:
    """Print images/s (wall clock and CPU time) of engine, bare forward and per-sample loop per config, and the
    ratios; engine and bare runs are interleaved `repeats` times and the best of each is kept."""
    from probe.measures import MeasureSet
    from probe.models import load_model
    from probe.study import parse_spec
    from probe.walks import variable

    torch.set_num_threads(threads)
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, "
        f"torch {torch.__version__}, {threads} thread(s)"
    )
    print(
        f"{'model':<11} {'measures':<12} {'images':>6} {'batch':>5} | images/s wall: {'engine':>7} {'bare':>7} "
        f"{'loop':>6} {'e/bare':>6} {'e/loop':>6} | images/s CPU: {'engine':>7} {'bare':>7} {'loop':>6} "
        f"{'e/bare':>6} {'e/loop':>6}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for name, measures, n, k, alphas, bs in CONFIGS:
            model = load_model(name)
            ms = MeasureSet(measures)
            lat = model.sample(n, 0)
            targets = [variable(i) for i in range(k)]
            spec = parse_spec(
                {
                    "name": "bench",
                    "model": name,
                    "measures": measures,
                    "n_samples": n,
                    "seed": 0,
                    "batch_size": bs,
                    "alphas": alphas,
                    "targets": [{"kind": "variables", "indices": k}],
                }
            )
            ms(model.synthesize(lat[:4], "z"))  # warm-up: lazy sessions, kernels
            eng, bare = [], []
            for _ in range(repeats):
                eng.append(_engine(spec, root))
                bare.append(_bare(model, lat, targets, alphas, ms, bs))
            loop = _loop(model, lat, targets, alphas, ms, loop_images)
            r = {"model": name, "measures": "+".join(measures), "images": eng[0][0], "batch": bs}
            for j, clock in ((1, "wall"), (2, "cpu")):
                e = eng[0][0] / min(x[j] for x in eng)
                b = bare[0][0] / min(x[j] for x in bare)
                lo = loop[0] / loop[j]
                r.update(
                    {
                        f"engine_{clock}": e,
                        f"bare_{clock}": b,
                        f"loop_{clock}": lo,
                        f"engine_vs_bare_{clock}": e / b,
                        f"engine_vs_loop_{clock}": e / lo,
                    }
                )
            rows.append(r)
            cells = " | ".join(
                f"{'':>15}{r[f'engine_{c}']:>7.1f} {r[f'bare_{c}']:>7.1f} {r[f'loop_{c}']:>6.1f} "
                f"{r[f'engine_vs_bare_{c}']:>5.2f}x {r[f'engine_vs_loop_{c}']:>5.1f}x"
                for c in ("wall", "cpu")
            )
            print(f"{name:<11} {r['measures']:<12} {r['images']:>6} {bs:>5} | {cells}", flush=True)
    print(
        f"engine = probe.study.run_study end to end (base samples + every intervention row, atomic parts, merge); "
        f"bare = synthesize + measures on pre-walked latents at the same batch size; loop = one image at a time "
        f"(first {loop_images} images). Best of {repeats} interleaved runs. "
        f"Targets: engine/bare >= 0.9x, engine/loop >= 20x."
    )
    return rows


if __name__ == "__main__":
    main()
