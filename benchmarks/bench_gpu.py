"""GPU throughput: images/s of the bare generator, of the engine with image measures and of the engine with face
measures (dlib + ONNX on the CPU, overlapped with rendering), for the faces model and a random-init StyleGAN2 at
256 px (config-f channels). Target: engine / bare >= 0.9 on the image-measure path. Skips on a machine without
CUDA (prints one line and returns).

python -m benchmarks.run gpu                        (or python -m benchmarks.bench_gpu [--device cuda:N] [--quick])
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

BATCH = 32
ROWS = {"faces": 2048, "stylegan2-256": 512}  # rendered rows per timed run (--quick: a quarter)


def _model(name: str, device: torch.device):
    if name == "faces":
        from probe.models import load_model

        return load_model("faces").to(device)
    from benchmarks.bench_nvlabs import build
    from probe.models import StyleGANGenerator

    return StyleGANGenerator(build(name, str(device)), name=name)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _plan(model, rows: int):
    """Base latents and targets for `rows` rendered rows: variable walks on z, 4 non-zero alphas."""
    from probe.walks import variable

    n = max(1, rows // 16)
    return model.sample(n, 0).cpu(), [variable(i) for i in range(4)], [-2.0, -1.0, 1.0, 2.0]


def bare(model, lat, targets, alphas, device) -> tuple[int, float]:
    """Generator only on pre-walked latents (no measures, no engine): rows, seconds."""
    from probe.walks import apply

    walked = torch.cat([apply(lat, "z", t, alphas) for t in targets]).to(device)
    _sync(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(walked), BATCH):
            model.synthesize(walked[i : i + BATCH], "z")
    _sync(device)
    return len(walked), time.perf_counter() - t0


def engine(model, lat, targets, alphas, measures, device, overlap=None) -> tuple[int, float]:
    """probe.engine.run_plan (walks, render, measures, density stats): rows, seconds."""
    from probe.engine import run_plan

    _sync(device)
    t0 = time.perf_counter()
    rows = sum(
        len(p.sample_id)
        for p in run_plan(model, lat, "z", targets, alphas, measures, batch_size=BATCH, part_rows=1024, overlap=overlap)
    )
    _sync(device)
    return rows, time.perf_counter() - t0


def run(name: str, device: torch.device, quick: bool = False) -> dict:
    from probe.measures import MeasureSet

    model = _model(name, device)
    rows = ROWS[name] // (4 if quick else 1)
    lat, targets, alphas = _plan(model, rows)
    image, faces = MeasureSet(["image"]), MeasureSet(["faces", "image"])
    engine(model, lat[:2], targets[:1], alphas[:1], faces, device)  # warm-up: range check, sessions, kernels
    out = {"model": name, "device": str(device), "batch": BATCH, "resolution": model.resolution}
    n, s = bare(model, lat, targets, alphas, device)
    out["bare_img_s"] = n / s
    n, s = engine(model, lat, targets, alphas, image, device)
    out["engine_image_img_s"] = n / s
    n, s = engine(model, lat, targets, alphas, faces, device, overlap=False)
    out["engine_faces_serial_img_s"] = n / s
    n, s = engine(model, lat, targets, alphas, faces, device)
    out["engine_faces_img_s"] = n / s
    out["ratio_image"] = out["engine_image_img_s"] / out["bare_img_s"]
    out["ratio_faces"] = out["engine_faces_img_s"] / out["bare_img_s"]
    out["overlap_gain_faces"] = out["engine_faces_img_s"] / out["engine_faces_serial_img_s"]
    return out


def table(results: list[dict]) -> str:
    head = ["model", "px", "bare img/s", "engine+image img/s", "ratio", "engine+faces img/s (serial)", "ratio"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        lines.append(
            f"| {r['model']} | {r['resolution']} | {r['bare_img_s']:,.0f} | {r['engine_image_img_s']:,.0f} | "
            f"{r['ratio_image']:.2f} | {r['engine_faces_img_s']:,.0f} ({r['engine_faces_serial_img_s']:,.0f})"
            f" | {r['ratio_faces']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(prog="bench_gpu")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    a = ap.parse_args([] if argv is None else argv)
    if not torch.cuda.is_available():
        print("bench_gpu: skipped (torch.cuda.is_available() is False: no CUDA on this machine)")
        return []
    from probe.devices import device_name, resolve_device

    device = resolve_device(a.device)
    torch.backends.cudnn.benchmark = True
    results = [run(name, device, a.quick) for name in ROWS]
    print(
        f"{device_name(device)}, torch {torch.__version__}, {platform.processor() or platform.machine()}, batch {BATCH}"
    )
    print(table(results))
    bad = [r["model"] for r in results if r["ratio_image"] < 0.9]
    print("target engine/bare >= 0.9 on the image-measure path: " + (f"missed for {bad}" if bad else "met"))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
