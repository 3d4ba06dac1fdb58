"""Run our DragGAN and FreeDrag ports beside the official code on one random-init NVlabs StyleGAN2 network.

The official code is imported from checkouts given on the command line (never part of this repository):
`--draggan` holds XingangPan/DragGAN (`viz/renderer.py`, `training/networks_stylegan2.py`, `torch_utils`, `dnnlib`),
`--freedrag` holds LPengYang/FreeDrag (`functions.py`, `training/networks.py`). Both run on the CPU, where their
CUDA ops fall back to the reference implementations.

One seeded, perturbed 128 px generator is built with the official DragGAN network class, its weights are loaded into
the official FreeDrag network class and into ours (`probe.models.nvlabs.build_from_state`), and the three renders are
compared. Then each case (w, handles, targets) runs the official DragGAN loop (`Renderer._render_drag_impl`, one call
per step, driven with the minimal state it needs) and ours with identical w, points, site, radii, layers, lr and
steps, and the official FreeDrag loop (`functions.free_drag`) and ours. Per case and method it reports the largest
|handle difference| over the steps (px), the steps to stop, the final handle distance, the PSNR between the final
images and the time per step of each.

    python scripts/compare_official_drag.py --draggan /work/ref/draggan --freedrag /work/ref/freedrag --out DIR
    python scripts/compare_official_drag.py ... --fixture tests/data/official_drag   # also (re)write the fixture

Writes DIR/official_drag.csv and DIR/official_drag.md (and with --fixture: the network state, info json and the
official trajectories, tests/data/official_drag/).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import math
import platform
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RES = 128
INIT_KWARGS = {
    "z_dim": 64,
    "c_dim": 0,
    "w_dim": 64,
    "img_resolution": RES,
    "img_channels": 3,
    "mapping_kwargs": {"num_layers": 2},
    "synthesis_kwargs": {
        "channel_base": 2048,
        "channel_max": 32,
        "num_fp16_res": 0,
        "conv_clamp": 256,
        "architecture": "skip",
    },
}
PSI = 0.7
# (x, y) image px. DragGAN at the official feature_idx 5 (the 6th block: b128 at 128 px) and at b64; FreeDrag at b32,
# H/4 as the official's 128 px map at 512 px.
CASES = [
    {"case": "short-1pt", "seed": 1, "handles": [[60, 64]], "targets": [[66, 60]]},
    {"case": "long-1pt", "seed": 2, "handles": [[44, 70]], "targets": [[74, 52]]},
    {"case": "two-pt", "seed": 3, "handles": [[46, 50], [84, 82]], "targets": [[54, 44], [76, 90]]},
]
DRAGGAN_SITES = {"b128": 5, "b64": 4}  # our site -> the official feature_idx
# the toolkit's earlier variants (each an option now), run against the same official runs on one case
EARLIER = {
    "draggan": {"motion": "paper", "units": "mean"},
    "freedrag": {
        "template": "mean",
        "sampling": "resized",
        "substop": "before",
        "arrival": "frozen",
        "loss_points": "active",
        "search": "clip",
        "extra_steps": None,
        "mask_mean": "image",
        "units": "mean",
    },
}
EARLIER_CASE = "long-1pt"
FREEDRAG_SITE = "b32"
STEPS = 200
FIELDS = [
    "case",
    "method",
    "site",
    "steps_official",
    "steps_ours",
    "max_traj_diff_px",
    "first_diff_step",
    "final_dist_official",
    "final_dist_ours",
    "psnr_db",
    "ws_max_diff",
    "ms_step_official",
    "ms_step_ours",
    "time_ratio",
]


def _stub(name: str) -> None:
    """An empty module for an import the CPU drag path never uses (GUI colour maps, pickles, LPIPS)."""
    try:
        __import__(name)
    except ImportError:
        mod = types.ModuleType(name)
        sys.modules[name] = mod
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, mod)


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def official_modules(draggan: Path, freedrag: Path):
    """(DragGAN networks_stylegan2, DragGAN renderer, FreeDrag networks, FreeDrag functions) from the checkouts."""
    for name in ("legacy", "matplotlib", "matplotlib.cm", "torchvision", "torchvision.transforms", "lpips"):
        _stub(name)
    sys.path.insert(0, str(draggan))
    import training.networks_stylegan2 as dg_net  # noqa: PLC0415
    import viz.renderer as dg_render  # noqa: PLC0415

    fd_net = _load(freedrag / "training" / "networks.py", "freedrag_networks")
    fd_fun = _load(freedrag / "functions.py", "freedrag_functions")
    return dg_net, dg_render, fd_net, fd_fun


def perturbed_state(module: torch.nn.Module, seed: int = 0) -> dict:
    """The module's state with seeded noise on every tensor except the FIR filters (so biases, noise strengths,
    w_avg and constants are non-trivial, as in tests/data/nvlabs).  # {name: tensor}"""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in module.state_dict().items():
        v = v.detach().clone().float()
        if "resample_filter" not in k:
            v = v + 0.2 * torch.randn(v.shape, generator=g)
        out[k] = v
    return out


def ours_from_state(state: dict, init_kwargs: dict, name: str = "official_sg2_128"):
    """Our StyleGAN2 generator with these NVlabs tensors (the importer's strict load)."""
    from probe.models.nvlabs import build_from_state
    from probe.models.stylegan import StyleGANGenerator

    module = build_from_state({k: v.clone() for k, v in state.items()}, init_kwargs, where=name)
    return StyleGANGenerator(module, name=name)


def case_ws(gen, seed: int) -> torch.Tensor:
    """ws [1, num_ws, w_dim] of z = RandomState(seed).randn at truncation 0.7, mapped by our network."""
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, gen.z_dim)).float()
    with torch.no_grad():
        return gen.module.mapping(z, torch.zeros(1, 0), truncation_psi=PSI)


def render(gen, ws: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return gen.synthesize(ws, "ws")[0]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) between two images in [-1, 1] (peak-to-peak 2)."""
    mse = float(((a.clamp(-1, 1) - b.clamp(-1, 1)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(4 / mse)


def official_draggan(render_mod, G, ws, handles, targets, feature_idx: int, steps: int):
    """The official loop: one `_render_drag_impl` call per step (track, then one Adam step unless stopped).
    -> trajectory [S + 1, K, 2] (x, y), final ws, steps, seconds"""
    r = render_mod.Renderer.__new__(render_mod.Renderer)
    r._device = torch.device("cpu")
    r.G = G
    r.w0 = ws.detach().clone()
    r.w = ws.detach().clone()
    r.w.requires_grad = True
    r.w_optim = torch.optim.Adam([r.w], lr=0.001)
    r.feat_refs, r.points0_pt = None, None
    points = [[int(y), int(x)] for x, y in handles]
    tgts = [[int(y), int(x)] for x, y in targets]
    traj, n = [], 0
    t0 = time.perf_counter()
    for _ in range(steps + 1):
        ws_out = torch.cat([r.w[:, :6], r.w0[:, 6:]], 1).detach().clone()  # the latent this call renders
        res = render_mod.dnnlib.EasyDict()
        r._render_drag_impl(res, points=points, targets=tgts, is_drag=True, feature_idx=feature_idx, mask=None)
        traj.append([[p[1], p[0]] for p in res.points])
        if res.stop or n == steps:  # (the call after `steps` steps tracks, and its own step is not counted)
            break
        n += 1
    sec = time.perf_counter() - t0
    return np.asarray(traj, np.float64), ws_out, n, sec


def ours_draggan(gen, ws, handles, targets, site: str, steps: int, **kw):
    from probe.edit import DragGAN

    t0 = time.perf_counter()
    res = DragGAN(site=site, max_steps=steps, **kw).run(gen, ws, "ws", handles, targets)
    return res.trajectory, res.latent, res.steps, time.perf_counter() - t0


def official_freedrag(fd_fun, G, ws, handles, targets, handle_size: int, d_max: float, steps: int):
    """The official generator `free_drag` with a yield after every step. -> per-step handle positions [S, K, 2]
    (x, y, image px; the positions each step was supervised at), final ws, steps, seconds (of a second run that
    yields only at the end, as the GUI between its samples)"""
    pts = {"handle": [[float(y), float(x)] for x, y in handles], "target": [[float(y), float(x)] for x, y in targets]}
    mask = np.zeros((RES, RES))
    per, ws_out, n = [], ws, 0
    t0 = time.perf_counter()
    for _img, cur, step, _full, ws_now in fd_fun.free_drag(
        G, pts, mask, handle_size, 6, ws.detach().clone(), steps, 0.3, d_max, 1, "cpu"
    ):
        if len(per) < step:
            per.append(cur.detach().cpu().numpy()[:, ::-1].astype(np.float64))
        ws_out, n = ws_now, step
    sec = time.perf_counter() - t0
    t0 = time.perf_counter()  # timed again without the per-step yields (each renders the layers after the site)
    for _ in fd_fun.free_drag(G, pts, mask, handle_size, 6, ws.detach().clone(), steps, 0.3, d_max, 10**9, "cpu"):
        pass
    sec = time.perf_counter() - t0
    return np.asarray(per), ws_out, n, sec


def ours_freedrag(gen, ws, handles, targets, site: str, steps: int, **kw):
    from probe.edit import FreeDrag

    per = []
    t0 = time.perf_counter()
    for item in FreeDrag(site=site, max_steps=steps, **kw).drag(gen, ws, "ws", handles, targets):
        if hasattr(item, "trajectory"):
            res = item
        else:
            per.append(np.asarray(item.points, np.float64))
    return np.asarray(per), res.latent, res.steps, time.perf_counter() - t0


def traj_diff(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """(max |a - b| over common steps and handles, first step where they differ (-1 if never))."""
    n = min(len(a), len(b))
    d = np.abs(a[:n] - b[:n]).reshape(n, -1).max(1) if n else np.zeros(0)
    bad = np.flatnonzero(d > 1e-4)
    return (float(d.max()) if n else 0.0), (int(bad[0]) if len(bad) else -1)


def compare(args) -> tuple[list[dict], dict]:
    torch.manual_seed(0)
    dg_net, dg_render, fd_net, fd_fun = official_modules(Path(args.draggan), Path(args.freedrag))
    kw = json.loads(json.dumps(INIT_KWARGS))
    torch.manual_seed(args.seed)
    Gd = dg_net.Generator(**kw).eval()
    state = perturbed_state(Gd, args.seed)
    Gd.load_state_dict(state)
    Gf = fd_net.Generator(**json.loads(json.dumps(INIT_KWARGS))).eval()
    Gf.load_state_dict(state)
    gen = ours_from_state(state, kw)
    checks = {}
    ws0 = case_ws(gen, CASES[0]["seed"])
    with torch.no_grad():
        img_ours = gen.module.synthesis(ws0, noise_mode="const")[0]  # unclamped, as the official
        img_dg = Gd(ws0, torch.zeros(1, 0), noise_mode="const", input_is_w=True)[0]
        _, img_fd = Gf.get_features(ws0, noise_mode="const")
        ws_dg = Gd.mapping(torch.from_numpy(np.random.RandomState(1).randn(1, 64)).float(), None, truncation_psi=PSI)
    checks["render_max_diff_draggan_net"] = float((img_ours - img_dg).abs().max())
    checks["render_max_diff_freedrag_net"] = float((img_ours - img_fd[0]).abs().max())
    checks["render_max_abs"] = float(img_dg.abs().max())
    checks["render_saturated_fraction"] = float((img_dg.abs() > 1).float().mean())
    checks["mapping_max_diff"] = float((ws_dg - ws0).abs().max())
    rows, fixture = [], {}
    for c in CASES:
        ws = case_ws(gen, c["seed"])
        h, t = np.asarray(c["handles"], float), np.asarray(c["targets"], float)
        fixture[f"{c['case']}/ws"] = ws.numpy()
        runs = [("draggan", s, "") for s in DRAGGAN_SITES] + [("freedrag", FREEDRAG_SITE, "")]
        if c["case"] == EARLIER_CASE:
            runs += [("draggan", "b128", "earlier"), ("freedrag", FREEDRAG_SITE, "earlier")]
        official = {}
        for method, site, variant in runs:
            opts = EARLIER[method] if variant else {}
            if (method, site) in official:
                a = official[method, site]
            elif method == "draggan":
                a = official_draggan(dg_render, Gd, ws, h, t, DRAGGAN_SITES[site], args.steps)
            else:
                hs = int(site[1:])
                from probe.edit.drag import scaled

                d_max = scaled(12, RES) * hs / RES  # official d_max is in feature px (3 at 128 of 512)
                a = official_freedrag(fd_fun, Gf, ws, h, t, hs, d_max, args.steps)
            official[method, site] = a
            if method == "draggan":
                b = ours_draggan(gen, ws, h, t, site, args.steps, **opts)
            else:
                b = ours_freedrag(gen, ws, h, t, site, args.steps, **opts)
            (ta, wa, na, sa), (tb, wb, nb, sb) = a, b
            diff, first = traj_diff(ta, tb)
            fin_a = float(np.linalg.norm(ta[-1] - t, axis=1).max())
            fin_b = float(np.linalg.norm(tb[-1] - t, axis=1).max())
            ia, ib = render(gen, wa), render(gen, wb)
            rows.append(
                {
                    "case": c["case"],
                    "method": method + (f" ({variant} variant)" if variant else ""),
                    "site": site,
                    "steps_official": na,
                    "steps_ours": nb,
                    "max_traj_diff_px": round(diff, 4),
                    "first_diff_step": first,
                    "final_dist_official": round(fin_a, 3),
                    "final_dist_ours": round(fin_b, 3),
                    "psnr_db": round(psnr(ia, ib), 2),
                    "ws_max_diff": float(f"{float((wa - wb).abs().max()):.3g}"),
                    "ms_step_official": round(1000 * sa / max(na, 1), 1),
                    "ms_step_ours": round(1000 * sb / max(nb, 1), 1),
                    "time_ratio": round((sb / max(nb, 1)) / (sa / max(na, 1)), 2),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
            if variant:
                continue
            key = f"{c['case']}/{method}/{site}"
            fixture[f"{key}/trajectory"] = ta
            fixture[f"{key}/steps"] = np.asarray(na)
            fixture[f"{key}/ws_final"] = wa.numpy()
    return rows, {"state": state, "checks": checks, "fixture": fixture}


def write_tables(rows: list[dict], checks: dict, out: Path, cmd: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "official_drag.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    load = " ".join(f"{x:.2f}" for x in __import__("os").getloadavg())
    lines = [
        "# Our drag ports beside the official code",
        "",
        f"Command: `{cmd}`; machine: {platform.machine()} CPU, {__import__('os').cpu_count()} cores, torch "
        f"{torch.__version__}, load average at the end {load}.",
        "",
        "Renders of the same weights: " + ", ".join(f"{k} {v:.2g}" for k, v in checks.items()) + ".",
        "",
        "| " + " | ".join(FIELDS) + " |",
        "|" + "---|" * len(FIELDS),
    ]
    lines += ["| " + " | ".join(str(r[k]) for k in FIELDS) + " |" for r in rows]
    (out / "official_drag.md").write_text("\n".join(lines) + "\n")


def write_fixture(extra: dict, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.numpy().astype(np.float32) for k, v in extra["state"].items()}
    np.savez_compressed(directory / "sg2_128_state.npz", **state)
    info = {
        "class": "training.networks_stylegan2.Generator",
        "init_kwargs": INIT_KWARGS,
        "truncation_psi": PSI,
        "cases": CASES,
        "draggan_sites": DRAGGAN_SITES,
        "freedrag_site": FREEDRAG_SITE,
        "steps": STEPS,
        "checks": extra["checks"],
        "state_dict": {k: list(v.shape) for k, v in state.items()},
    }
    (directory / "sg2_128_info.json").write_text(json.dumps(info, indent=1) + "\n")
    np.savez_compressed(directory / "official_runs.npz", **extra["fixture"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--draggan", required=True, help="a checkout of XingangPan/DragGAN")
    ap.add_argument("--freedrag", required=True, help="a checkout of LPengYang/FreeDrag")
    ap.add_argument("--out", required=True, help="directory for official_drag.csv / .md")
    ap.add_argument("--steps", type=int, default=STEPS, help="max steps per run (official default 200)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the network's init and perturbation")
    ap.add_argument("--fixture", default=None, help="also write the reference fixture here")
    args = ap.parse_args(argv)
    for flag in ("draggan", "freedrag"):
        if not Path(getattr(args, flag)).is_dir():
            print(f"error: --{flag}: {getattr(args, flag)} is not a directory; give a checkout of the official code")
            return 2
    torch.set_num_threads(1)
    rows, extra = compare(args)
    cmd = "python scripts/compare_official_drag.py " + " ".join(sys.argv[1:] if argv is None else argv)
    write_tables(rows, extra["checks"], Path(args.out), cmd)
    if args.fixture:
        write_fixture(extra, Path(args.fixture))
    print(json.dumps(extra["checks"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
