"""Quality numbers of a sprites generator: factor distributions (generated vs data) and a Frechet distance in the
factor CNN's feature space (generated vs real), with a real-vs-real baseline of the same n for scale.

The factor CNN reads both generated and real images, so the distributions are compared like for like
(`real_pred`, `gen_pred`); the true labels of the real images (`data`) show the CNN's own error.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy import linalg, stats

from . import sprites

CONTINUOUS = ("scale", "rotation", "x", "y", "hue")


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets.  # a [N, F], b [M, F] -> float"""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    off = np.eye(len(s1)) * 1e-6  # ReLU features have dead dimensions: keep the product non-singular
    s1, s2 = s1 + off, s2 + off
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@torch.no_grad()
def generate(model, n: int, seed: int, batch: int = 250, truncation_psi: float = 1.0) -> torch.Tensor:
    """n images from a Generator (z from `sample(n, seed)`).  # -> img [n, 3, H, W]"""
    z = model.sample(n, seed)
    if hasattr(model, "with_options") and float(truncation_psi) != model.truncation_psi:
        opts = {k: v for k, v in model.options().items() if k != "c_dim"}
        model = model.with_options(**{**opts, "truncation_psi": float(truncation_psi)})
    return torch.cat([model.synthesize(z[i : i + batch], "z") for i in range(0, n, batch)]).cpu()


def _summary(v: np.ndarray) -> dict:
    return {
        "mean": float(np.mean(v)),
        "std": float(np.std(v)),
        "q05": float(np.quantile(v, 0.05)),
        "q95": float(np.quantile(v, 0.95)),
    }


def quality(model="sprites", n: int = 2000, seed: int = 0, truncation_psi: float = 1.0) -> dict:
    """Factor distributions and Frechet distances for a generator (zoo name or Generator).  # -> JSON-able dict"""
    from ..measures.sprites import SpriteFactors
    from ..models import load_model

    g = load_model(model) if isinstance(model, str) else model
    m = SpriteFactors()
    gen = generate(g, n, seed, truncation_psi=truncation_psi)
    real, data = sprites.dataset(n, 1_000_000 + seed)
    real2, _ = sprites.dataset(n, 2_000_000 + seed)
    pred = {"gen_pred": m(gen), "real_pred": m(real)}
    out = {
        "model": getattr(g, "name", str(model)),
        "n": n,
        "seed": seed,
        "truncation_psi": truncation_psi,
        "factors": {},
    }
    for f in CONTINUOUS:
        gp, rp = pred["gen_pred"][f"sprite_{f}"], pred["real_pred"][f"sprite_{f}"]
        out["factors"][f] = {
            "data": _summary(data[f]),
            "real_pred": _summary(rp),
            "gen_pred": _summary(gp),
            "ks_gen_vs_real": float(stats.ks_2samp(gp, rp).statistic),
        }
    k = len(sprites.SHAPES)
    freq = {key: np.bincount(pred[key]["sprite_shape"].astype(int), minlength=k) / n for key in pred}
    freq["data"] = np.bincount(data["shape"].astype(int), minlength=k) / n
    out["factors"]["shape"] = {key: dict(zip(sprites.SHAPES, map(float, v))) for key, v in freq.items()}
    out["factors"]["shape"]["tv_gen_vs_real"] = float(0.5 * np.abs(freq["gen_pred"] - freq["real_pred"]).sum())
    out["shape_confidence"] = {"gen": float(m.probs(gen).max(1).mean()), "real": float(m.probs(real).max(1).mean())}
    fg, fr, fr2 = m.features(gen), m.features(real), m.features(real2)
    out["frechet"] = {"gen_vs_real": frechet_distance(fg, fr), "real_vs_real": frechet_distance(fr2, fr)}
    return out


def format_quality(q: dict) -> str:
    """A Markdown table of `quality()` numbers."""
    lines = [
        f"model {q['model']}, n = {q['n']} generated vs {q['n']} real (truncation psi {q['truncation_psi']})",
        "",
        "| factor | data (true) mean / std | real (CNN) mean / std | generated (CNN) mean / std | KS gen vs real |",
        "|---|---|---|---|---|",
    ]
    for f in CONTINUOUS:
        r = q["factors"][f]
        lines.append(
            f"| {f} | {r['data']['mean']:.3g} / {r['data']['std']:.3g} | {r['real_pred']['mean']:.3g} / "
            f"{r['real_pred']['std']:.3g} | {r['gen_pred']['mean']:.3g} / {r['gen_pred']['std']:.3g} | "
            f"{r['ks_gen_vs_real']:.3f} |"
        )
    s = q["factors"]["shape"]
    fmt = lambda d: " / ".join(f"{d[k]:.2f}" for k in sprites.SHAPES)  # noqa: E731
    lines.append(
        f"| shape ({' / '.join(sprites.SHAPES)}) | {fmt(s['data'])} | {fmt(s['real_pred'])} | "
        f"{fmt(s['gen_pred'])} | TV {s['tv_gen_vs_real']:.3f} |"
    )
    c, fd = q["shape_confidence"], q["frechet"]
    lines += [
        "",
        f"mean max shape probability: generated {c['gen']:.3f}, real {c['real']:.3f}",
        f"Frechet distance in factor-CNN features: generated vs real {fd['gen_vs_real']:.3f}; "
        f"real vs real (baseline, same n) {fd['real_vs_real']:.3f}",
    ]
    return "\n".join(lines)
