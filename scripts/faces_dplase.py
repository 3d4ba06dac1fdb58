"""DP-LaSE on the face model: fit time, feature variation and decorrelation at the site, density drift.

Reproduces the DP-LaSE numbers of docs/readme/40-directions.md ("Measured on the face model"): DP-LaSE with
K = 8 at site b1 (default steps) against the random orthonormal set of the same size, both evaluated on 64 fresh
samples (seed 3) stepped by t = step_size along every direction with the density-preserving rescale:

- variation: mean ||G1(dp(z + t g)) - G1(z)||^2 over samples and directions (G1: the features at the site);
- decorrelation: mean off-diagonal cos^2 between the flattened feature changes of two directions of one sample;
- |dlogp| of the trained directions' isodensity walks (alpha -3..3).

    python scripts/faces_dplase.py                # the default 600 steps: minutes on a 2-core CPU
    python scripts/faces_dplase.py --steps 50     # a quick look
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


@torch.no_grad()
def site_change(model, z: torch.Tensor, vectors: np.ndarray, site: str, t: float) -> torch.Tensor:
    """Flattened feature change per sample and direction.  # z [N, D], vectors [K, D] -> [N, K, C*h*w]"""
    from probe.directions.dplase import density_preserve, site_features

    f0 = site_features(model, z, "z", site).flatten(1)  # [N, F]
    out = []
    for g in torch.as_tensor(vectors, dtype=torch.float32):
        z1 = density_preserve(z, z + t * g)
        out.append(site_features(model, z1, "z", site).flatten(1) - f0)
    return torch.stack(out, 1)


def scores(delta: torch.Tensor) -> dict[str, float]:
    """Mean squared feature change, and mean off-diagonal cos^2 between directions.  # delta [N, K, F]"""
    u = delta / delta.norm(dim=2, keepdim=True).clamp_min(1e-12)
    cos2 = (u @ u.transpose(1, 2)).square()  # [N, K, K]
    k = delta.shape[1]
    off = (cos2.sum((1, 2)) - cos2.diagonal(dim1=1, dim2=2).sum(1)) / (k * (k - 1))
    return {"variation": float(delta.square().sum(2).mean()), "cos2_offdiag": float(off.mean())}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--site", default="b1")
    ap.add_argument("--steps", type=int, default=None, help="Adam steps (default: DPLaSE's)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)

    import probe
    from probe.density import logp_normal
    from probe.walks import apply, direction

    faces = probe.load_model("faces")
    kw = {} if a.steps is None else {"steps": a.steps}
    t0 = time.perf_counter()
    dp = probe.DPLaSE(a.k, site=a.site, space="z", seed=0, progress=False, **kw).fit(faces)
    fit_s = time.perf_counter() - t0
    rnd = probe.RandomDirections(a.k, seed=0, space="z").fit(faces)
    z = faces.sample(64, 3)
    res = {"k": a.k, "site": a.site, "steps": dp.steps, "fit_seconds": round(fit_s, 1), "step_size": dp.step_size}
    for name, est in (("random", rnd), ("dplase", dp)):
        res[name] = scores(site_change(faces, z, est.directions_.vectors, a.site, dp.step_size))
    alphas = [-3, -2, -1, 0, 1, 2, 3]
    lp0 = logp_normal(z).repeat_interleave(len(alphas))
    d = [
        (logp_normal(apply(z, "z", direction(dp.directions_, i, "isodensity"), alphas)) - lp0).abs() for i in range(a.k)
    ]
    res["dlogp_isodensity"] = {"mean": float(torch.cat(d).mean()), "max": float(torch.cat(d).max())}

    print(f"DP-LaSE K={a.k} at {a.site}, {dp.steps} steps: fitted in {res['fit_seconds']} s")
    for name in ("random", "dplase"):
        print(
            f"{name:>7}: feature variation {res[name]['variation']:.4g}, "
            f"off-diagonal cos^2 {res[name]['cos2_offdiag']:.4f}"
        )
    print(
        f"|dlogp| of the isodensity walks: mean {res['dlogp_isodensity']['mean']:.2g}, "
        f"max {res['dlogp_isodensity']['max']:.2g}"
    )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == "__main__":
    main()
