"""Train the sprite factor CNN (`probe.measures.sprites.FactorNet`) on exact labels of fresh `sprites` batches.

Shape is a 3-way classification (cross-entropy); scale, x, y, hue are regressions on targets normalised to
[-1, 1]; rotation is regressed as (cos 4r, sin 4r), a circle of period 90 deg, so the square's 0 = 90 deg wrap is
no discontinuity. Every step draws a fresh batch (seeded from (seed, step)); held-out metrics use a separate seed.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..measures.sprites import FactorNet, decode, encode
from . import sprites
from .trainer import atomic_save

HELD_OUT_SEED = 987_654


def evaluate(net: FactorNet, n: int = 2000, seed: int = HELD_OUT_SEED) -> dict:
    """Held-out metrics on a fresh dataset: shape accuracy; R2 and MAE per continuous factor (rotation: circular MAE)."""
    img, f = sprites.dataset(n, seed)
    net.eval()
    with torch.no_grad():
        outs = [net(img[i : i + 256]) for i in range(0, n, 256)]
    pred = decode(torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs]))
    res = {"n": n, "eval_seed": seed, "shape_accuracy": float((pred["shape"] == f["shape"]).mean())}
    for k in ("scale", "rotation", "x", "y", "hue"):
        t, p = np.asarray(f[k], float), pred[k]
        err = p - t
        if k == "rotation":
            err = (err + 45) % 90 - 45  # circular, period 90 deg
        res[f"{k}_r2"] = float(1 - (err**2).sum() / ((t - t.mean()) ** 2).sum())
        res[f"{k}_mae"] = float(np.abs(err).mean())
    return res


def train_factor_cnn(
    steps: int = 2500,
    batch: int = 64,
    seed: int = 0,
    out="runs/sprite-factors",
    lr: float = 2e-3,
    width: int = 16,
    n_eval: int = 2000,
    threads: int | None = None,
    log_every: int = 100,
    log=print,
) -> tuple[Path, dict]:
    """Train the factor CNN; writes out/sprite_factors.pt (weights_only) and out/metrics.json.  # -> path, metrics"""
    if threads:
        torch.set_num_threads(int(threads))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = FactorNet(width=width)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / steps, 1))))
    t0 = time.perf_counter()
    net.train()
    for step in range(steps):
        f = sprites.sample_factors(batch, seed * 10_000_019 + step + 1)
        img = sprites.render(f)
        cls, reg = encode(f)
        logits, pred = net(img)
        loss_c, loss_r = F.cross_entropy(logits, cls), F.mse_loss(pred, reg) * 10
        opt.zero_grad(set_to_none=True)
        (loss_c + loss_r).backward()
        opt.step()
        sched.step()
        if (step + 1) % log_every == 0 or step + 1 == steps:
            log(
                json.dumps(
                    {
                        "step": step + 1,
                        "loss_shape": round(float(loss_c.detach()), 4),
                        "loss_reg": round(float(loss_r.detach()), 4),
                        "elapsed_s": round(time.perf_counter() - t0, 1),
                    }
                )
            )
    wall = time.perf_counter() - t0
    metrics = evaluate(net, n_eval)
    metrics.update({"steps": steps, "batch": batch, "train_seed": seed, "train_wall_s": round(wall, 1)})
    atomic_save(
        {"config": {"width": width}, "state_dict": net.state_dict(), "metrics": metrics}, out / "sprite_factors.pt"
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return out / "sprite_factors.pt", metrics
