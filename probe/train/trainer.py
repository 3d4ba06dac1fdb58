"""GAN trainer for the sprites dataset: non-saturating logistic loss + lazy R1, Adam(0, 0.99), generator EMA.

Deterministic: network init from `seed`; iteration `it` draws its real batch (fresh sprites, infinite data) and
its z from seeds derived from (seed, it), so a resumed run repeats the uninterrupted one. A checkpoint
(`checkpoint.pt`, written atomically, loadable with weights_only=True) holds G, D, the EMA of G, both Adam
states and the iteration; `generator.pt` holds the EMA generator alone (arch, config, state_dict).
"""

from __future__ import annotations

import copy
import io
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..io import atomic_write_bytes
from . import sprites
from .nets import D_CHANNELS, SPRITES_DCGAN, SPRITES_STYLEGAN, TINY, build_discriminator, build_generator

DEFAULTS = {
    "stylegan": {"lr": 0.0025, "r1_gamma": 0.05, "mixing": 0.5, "mapping_lr_mul": 0.1},
    "dcgan": {"lr": 0.0005, "r1_gamma": 0.05, "mixing": 0.0, "mapping_lr_mul": 1.0},
}


def atomic_save(obj, path) -> None:
    """torch.save through probe.store's atomic writer (tmp + fsync + os.replace; never a half-written file)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def real_batch(n: int, seed: int, it: int) -> torch.Tensor:
    """Fresh sprites for iteration `it`.  # [n, 3, 64, 64]"""
    return sprites.render(sprites.sample_factors(n, seed * 10_000_019 + it))


def _z(n: int, z_dim: int, seed: int, it: int, k: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 10_000_019 + it * 4 + k + 1)
    return torch.randn(n, z_dim, generator=g)


def _gen(G, arch: str, z, z2=None, cutoff: int | None = None, track_w: bool = False):
    if arch != "stylegan":
        return G(z)
    ws = G.mapping(z)
    if track_w:
        with torch.no_grad():
            G.mapping.w_avg.lerp_(ws[:, 0].mean(0), 0.005)
    if z2 is not None and cutoff is not None:
        ws = torch.cat([ws[:, :cutoff], G.mapping(z2)[:, cutoff:]], 1)
    return G.synthesis(ws)


def init_stylegan_(G) -> None:
    """StyleGAN2-like init of the dense layers: mapping layers keep the variance of z (He init for LeakyReLU 0.2),
    style affines get N(0, 1 / w_dim) weights (bias 1), so z moves the styles from the first step."""
    from torch import nn

    gain = math.sqrt(2 / (1 + 0.2**2))
    for m in G.mapping.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, gain / math.sqrt(m.in_features))
            nn.init.zeros_(m.bias)
    for name, m in G.synthesis.named_modules():
        if name.endswith("affine"):
            nn.init.normal_(m.weight, 0, 1 / math.sqrt(m.in_features))


def load_generator(path, fused: bool = False):
    """Build the (EMA) generator saved in generator.pt or checkpoint.pt.  # -> nn.Module in eval mode"""
    ck = torch.load(str(path), map_location="cpu", weights_only=True)
    G = build_generator(ck["arch"], ck["config"], fused=fused)
    G.load_state_dict(ck["state_dict"] if "state_dict" in ck else ck["G_ema"])
    return G.eval()


def train_gan(
    arch: str = "stylegan",
    iters: int = 1000,
    batch: int = 32,
    seed: int = 0,
    out="runs/sprites",
    config: dict | None = None,
    d_channels: dict | None = None,
    lr: float | None = None,
    r1_gamma: float | None = None,
    r1_every: int = 16,
    mixing: float | None = None,
    ema_nimg: float = 10_000,
    ema_rampup: float | None = 0.05,
    ckpt_every: int = 200,
    sample_every: int = 500,
    log_every: int = 20,
    resume: bool = True,
    tiny: bool = False,
    threads: int | None = None,
    log=print,
) -> Path:
    """Train G (StyleGAN-lite or DCGAN) on fresh sprites for `iters` iterations; returns out/generator.pt."""
    if arch not in DEFAULTS:
        raise ValueError(f"unknown arch {arch!r}; use 'stylegan' or 'dcgan'")
    if threads:
        torch.set_num_threads(int(threads))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    d = DEFAULTS[arch]
    lr = d["lr"] if lr is None else lr
    r1_gamma = d["r1_gamma"] if r1_gamma is None else r1_gamma
    mixing = d["mixing"] if mixing is None else mixing
    if config is None:
        config = copy.deepcopy(TINY[arch] if tiny else (SPRITES_STYLEGAN if arch == "stylegan" else SPRITES_DCGAN))
    if d_channels is None:
        d_channels = TINY["d"] if tiny else D_CHANNELS
    hp = {
        "arch": arch,
        "iters": iters,
        "batch": batch,
        "seed": seed,
        "lr": lr,
        "r1_gamma": r1_gamma,
        "r1_every": r1_every,
        "mixing": mixing,
        "ema_nimg": ema_nimg,
        "ema_rampup": ema_rampup,
        "config": config,
        "d_channels": {str(k): v for k, v in d_channels.items()},
    }

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = build_generator(arch, config, fused=False).train()
        if arch == "stylegan":
            init_stylegan_(G)
        D = build_discriminator(
            arch, config["resolution"], d_channels, ch=config.get("ch") if arch == "dcgan" else None
        ).train()
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    c = r1_every / (r1_every + 1)  # lazy regularization: Adam corrected as in StyleGAN2
    if arch == "stylegan":
        groups = [
            {"params": list(G.mapping.parameters()), "lr": lr * d["mapping_lr_mul"]},
            {"params": list(G.synthesis.parameters())},
        ]
    else:
        groups = [{"params": list(G.parameters())}]
    opt_g = torch.optim.Adam(groups, lr=lr, betas=(0.0, 0.99), eps=1e-8)
    opt_d = torch.optim.Adam(D.parameters(), lr=lr * c, betas=(0.0, 0.99**c), eps=1e-8)
    start, elapsed = 0, 0.0
    ckpt = out / "checkpoint.pt"
    if resume and ckpt.exists():
        ck = torch.load(str(ckpt), map_location="cpu", weights_only=True)
        if ck["arch"] != arch or ck["config"] != config:
            raise ValueError(
                f"{ckpt} was made with arch {ck['arch']!r} and config {ck['config']}; "
                f"use another --out or the same settings"
            )
        G.load_state_dict(ck["G"])
        D.load_state_dict(ck["D"])
        G_ema.load_state_dict(ck["G_ema"])
        opt_g.load_state_dict(ck["opt_g"])
        opt_d.load_state_dict(ck["opt_d"])
        lr_g = [lr * d["mapping_lr_mul"], lr] if arch == "stylegan" else [lr]
        for opt, lrs in ((opt_g, lr_g), (opt_d, [lr * c])):  # this run's learning rates, not the saved ones
            for g, v in zip(opt.param_groups, lrs):
                g["lr"] = v
        start, elapsed = int(ck["iter"]), float(ck.get("elapsed", 0.0))
        log(f"resumed from {ckpt} at iteration {start}")
    (out / "hparams.json").write_text(json.dumps(hp, indent=1))
    if start:  # a resumed stage may change lr, r1_gamma, mixing, EMA: log.jsonl records each stage's settings
        with open(out / "log.jsonl", "a") as f:
            f.write(json.dumps({"event": "resume", "iter": start, "hparams": hp}) + "\n")
    z_dim = config["z_dim"]
    num_ws = getattr(G, "num_ws", 0)
    fixed_z = torch.randn(32, z_dim, generator=torch.Generator().manual_seed(12345))

    def save(it):
        atomic_save(
            {
                "arch": arch,
                "config": config,
                "hparams": hp,
                "iter": it,
                "elapsed": elapsed,
                "G": G.state_dict(),
                "D": D.state_dict(),
                "G_ema": G_ema.state_dict(),
                "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(),
            },
            ckpt,
        )
        atomic_save(
            {"arch": arch, "config": config, "iter": it, "state_dict": G_ema.state_dict()}, out / "generator.pt"
        )

    logf = open(out / "log.jsonl", "a")
    t0 = t_start = time.perf_counter()
    run = {"d": 0.0, "g": 0.0, "r1": 0.0, "n": 0}
    for it in range(start, iters):
        reals = real_batch(batch, seed, it)
        # ---- D step: softplus(D(fake)) + softplus(-D(real)); lazy R1 on reals every r1_every iterations
        with torch.no_grad():
            fakes = _gen(G, arch, _z(batch, z_dim, seed, it, 0))
        loss_d = F.softplus(D(fakes)).mean() + F.softplus(-D(reals)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        if r1_gamma > 0 and it % r1_every == 0:
            x = reals.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
            r1 = grad.square().sum((1, 2, 3)).mean()
            opt_d.zero_grad(set_to_none=True)
            (r1 * (r1_gamma / 2) * r1_every).backward()
            opt_d.step()
            run["r1"] = float(r1.detach())
        # ---- G step: softplus(-D(G(z))), with style mixing
        z = _z(batch, z_dim, seed, it, 1)
        g = torch.Generator().manual_seed(seed * 10_000_019 + it)
        cutoff = None
        if arch == "stylegan" and mixing > 0 and float(torch.rand((), generator=g)) < mixing:
            cutoff = int(torch.randint(1, num_ws, (), generator=g))
        fakes = _gen(G, arch, z, _z(batch, z_dim, seed, it, 2) if cutoff else None, cutoff, track_w=True)
        loss_g = F.softplus(-D(fakes)).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        # ---- EMA of G (parameters; buffers such as w_avg and BatchNorm statistics copied)
        nimg = (it + 1) * batch
        half = min(ema_nimg, nimg * ema_rampup) if ema_rampup else ema_nimg
        beta = 0.5 ** (batch / max(half, 1e-8))
        with torch.no_grad():
            for pe, p in zip(G_ema.parameters(), G.parameters()):
                pe.copy_(p.lerp(pe, beta))
            for be, b in zip(G_ema.buffers(), G.buffers()):
                be.copy_(b)
        ld, lg = float(loss_d.detach()), float(loss_g.detach())
        if not (math.isfinite(ld) and math.isfinite(lg)):
            raise FloatingPointError(
                f"iteration {it}: loss is not finite (D {ld}, G {lg}); lower --lr or raise --r1-gamma"
            )
        run["d"] += ld
        run["g"] += lg
        run["n"] += 1
        done = it + 1
        if done % log_every == 0 or done == iters:
            now = time.perf_counter()
            elapsed += now - t0
            t0 = now
            rec = {
                "iter": done,
                "loss_d": run["d"] / run["n"],
                "loss_g": run["g"] / run["n"],
                "r1": run["r1"],
                "elapsed_s": round(elapsed, 1),
                "s_per_iter": round((now - t_start) / max(done - start, 1), 3),
            }
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
            log(json.dumps(rec))
            run = {"d": 0.0, "g": 0.0, "r1": run["r1"], "n": 0}
        if done % ckpt_every == 0 or done == iters:
            save(done)
        if sample_every and (done % sample_every == 0 or done == iters):
            with torch.no_grad():
                sprites.grid_png(_gen(G_ema, arch, fixed_z).clamp(-1, 1), out / f"samples_{done:06d}.png")
    logf.close()
    if start >= iters and not (out / "generator.pt").exists():
        save(start)
    return out / "generator.pt"
