"""DP-LaSE: K orthonormal directions that maximise a site's feature variation, decorrelated, density preserving.

Loss per step (batch of z0, one step size t per sample, every direction):
  l_var  = -mean_j ||G1(dp(z0 + t g_j)) - G1(z0)||^2 / mean ||G1(z0)||^2          (maximise variation)
  l_corr = lambda_corr * mean_{j != h} cos^2(Delta_j, Delta_h)                     (decorrelate changes)
  l_reg  = zeta * mean((Gamma Gamma^T - I)^2)  (||.||_F^2 / K^2, as the code)     (keep orthonormal)
dp() keeps log p unchanged: the norm for the Gaussian prior on z, the Mahalanobis distance of the fitted
GaussianDensity for w (density=False walks linearly). G1 runs only up to the site: the forward stops there.
The result is QR re-orthonormalised; channel_masks rank the site's channels by how much each direction moves
them and keep the top `mask_fraction` (the per-direction channel subspace; a channel walk restricted to it).
"""
from __future__ import annotations

import time

import numpy as np
import torch

from .base import DirectionError, DirectionSet


class _Stop(Exception):
    pass


def site_features(model, latent: torch.Tensor, space: str, site: str) -> torch.Tensor:
    """Features at `site`, with gradients, stopping the forward pass there.  # [N, C, h, w]"""
    box = {}

    def grab(x):
        box["x"] = x
        raise _Stop

    try:
        with model.edit(site, grab):
            model.synthesize(latent, space)
    except _Stop:
        pass
    if "x" not in box:
        raise DirectionError(f"site {site!r} was not reached while rendering; choose another site")
    return box["x"]


def density_preserve(x0: torch.Tensor, x1: torch.Tensor, density=None) -> torch.Tensor:
    """Rescale walked latents x1 so their log-density equals that of x0 (differentiable).  # [N, D]

    density None: Gaussian prior, keep ||x||; else keep the Mahalanobis distance to density.mean_."""
    if density is None:
        return x1 * (x0.norm(dim=1, keepdim=True) / x1.norm(dim=1, keepdim=True).clamp_min(1e-12))
    mean = density.mean_.to(x1)
    L = density._chol.to(x1)

    def maha(x):
        return torch.linalg.solve_triangular(L, (x - mean).T, upper=False).norm(dim=0)[:, None]
    return mean + (x1 - mean) * (maha(x0) / maha(x1).clamp_min(1e-12))


class DPLaSE:
    """Learned density-preserving directions.

    n_directions: K; site: feature site G1 ends at (default the model's first site); space: z | w;
    steps: Adam iterations; batch_size: z0 per step (every direction is applied to each); lr: Adam step;
    step_size: max |t| of the training walk (t ~ +-U(0.25, 1) * step_size); lambda_corr, zeta: loss weights;
    density: density-preserving walks (False = linear, to show what the rescale buys);
    mask_fraction: top fraction of site channels kept per direction; seed; progress: tqdm bar.
    Attributes: directions_ (DirectionSet with site + channel_masks), history_ (loss per step), seconds_.
    """

    method = "dplase"

    def __init__(self, n_directions: int = 8, site: str | None = None, space: str = "z", steps: int = 600,
                 batch_size: int = 16, lr: float = 0.01, step_size: float = 3.0, lambda_corr: float = 1.0,
                 zeta: float = 100.0, density: bool = True, mask_fraction: float = 0.25, seed: int = 0,
                 progress: bool = True):
        self.n_directions, self.site, self.space, self.steps = n_directions, site, space, steps
        self.batch_size, self.lr, self.step_size = batch_size, lr, step_size
        self.lambda_corr, self.zeta, self.density = lambda_corr, zeta, density
        self.mask_fraction, self.seed, self.progress = mask_fraction, seed, progress

    def _base(self, model, n: int, g: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, model.z_dim, generator=g)
        return z if self.space == "z" else model.to_space(z, "z", "w").detach()

    def _walk(self, x0, gamma, t, dens):  # x0 [B, D], gamma [K, D], t [B] -> [B*K, D]
        k = len(gamma)
        x0r = x0.repeat_interleave(k, 0)
        x1 = x0r + t.repeat_interleave(k)[:, None] * gamma.repeat(len(x0), 1)
        return density_preserve(x0r, x1, dens) if self.density else x1

    def fit(self, model, density=None) -> "DPLaSE":
        """Train on `model`; density: fitted GaussianDensity for space w (fitted on 4096 w samples if None)."""
        from tqdm.auto import tqdm
        if self.space not in ("z", "w"):
            raise DirectionError(f"DPLaSE: space must be 'z' or 'w', got {self.space!r}")
        model.check_space(self.space)
        site = self.site or model.sites[0]
        model.check_site(site)
        K, D = int(self.n_directions), model.dim(self.space)
        if not 0 < K <= D:
            raise DirectionError(f"DPLaSE: n_directions={K} must be between 1 and the latent dimension {D}")
        if not 0 < self.mask_fraction <= 1:
            raise DirectionError(f"DPLaSE: mask_fraction={self.mask_fraction} must lie in (0, 1]")
        g = torch.Generator().manual_seed(int(self.seed))
        dens = None
        if self.space == "w":
            if density is None:
                from ..density import GaussianDensity
                density = GaussianDensity().fit(self._base(model, 4096, g))
            dens = density
        q, r = torch.linalg.qr(torch.randn(D, K, generator=g))
        gamma = torch.nn.Parameter((q * torch.sign(torch.diagonal(r))).T.contiguous())
        opt = torch.optim.Adam([gamma], lr=self.lr)
        eye = torch.eye(K)
        off = ~torch.eye(K, dtype=torch.bool)
        self.history_ = []
        t0 = time.perf_counter()
        bar = tqdm(range(int(self.steps)), desc=f"DP-LaSE {model.name}:{site}", disable=not self.progress)
        for _ in bar:
            x0 = self._base(model, self.batch_size, g)
            t = (torch.rand(len(x0), generator=g) * 0.75 + 0.25) * self.step_size
            t = t * torch.where(torch.rand(len(x0), generator=g) < 0.5, -1.0, 1.0)
            gn = gamma / gamma.norm(dim=1, keepdim=True)
            with torch.no_grad():
                f0 = site_features(model, x0, self.space, site).flatten(1)
            f1 = site_features(model, self._walk(x0, gn, t, dens), self.space, site).flatten(1)
            delta = (f1.reshape(len(x0), K, -1) - f0[:, None])  # [B, K, F]
            l_var = -delta.square().sum(2).mean() / f0.square().sum(1).mean().clamp_min(1e-12)
            u = delta / delta.norm(dim=2, keepdim=True).clamp_min(1e-12)
            cos2 = (u @ u.transpose(1, 2)).square()  # [B, K, K]
            l_corr = cos2[:, off].mean() if K > 1 else delta.new_zeros(())
            l_reg = (gn @ gn.T - eye).square().mean()
            loss = l_var + self.lambda_corr * l_corr + self.zeta * l_reg
            opt.zero_grad()
            loss.backward()
            opt.step()
            h = {"loss": loss.item(), "var": -l_var.item(), "corr": l_corr.item(), "reg": l_reg.item()}
            self.history_.append(h)
            bar.set_postfix(var=f"{h['var']:.3f}", corr=f"{h['corr']:.3f}", refresh=False)
        self.seconds_ = time.perf_counter() - t0
        with torch.no_grad():
            q, r = torch.linalg.qr(gamma.detach().T)
            vecs = (q * torch.sign(torch.diagonal(r))).T.contiguous()  # [K, D] orthonormal
            g_eval = torch.Generator().manual_seed(int(self.seed) + 1)
            masks, var, dlogp = self._masks(model, vecs, site, dens, g_eval)
        self.channel_scores_ = masks
        k_keep = max(1, int(round(self.mask_fraction * masks.shape[1])))
        top = np.argsort(-masks, axis=1, kind="stable")[:, :k_keep]
        cm = np.zeros_like(masks, dtype=np.float32)
        np.put_along_axis(cm, top, 1.0, axis=1)
        info = [{"variation": float(v), "top_channels": [int(c) for c in top[i, :8]]} for i, v in enumerate(var)]
        prov = {k: getattr(self, k) for k in ("n_directions", "space", "steps", "batch_size", "lr", "step_size",
                                               "lambda_corr", "zeta", "density", "mask_fraction", "seed")}
        prov.update(site=site, seconds=round(self.seconds_, 2), final_loss=self.history_[-1]["loss"]
                    if self.history_ else None, dlogp_abs_mean_train_walk=dlogp)
        self.directions_ = DirectionSet([f"d{i}" for i in range(K)], vecs.numpy(), self.space, self.method,
                                        model.name, model.weights_hash, site=site, channel_masks=cm, info=info,
                                        provenance=prov)
        return self

    def _masks(self, model, vecs, site, dens, g, n: int = 64):
        """Per-direction mean |feature change| per channel over n samples, the variation, |dlogp| of the walk."""
        from ..density import logp_normal
        x0 = self._base(model, n, g)
        t = torch.full((n,), float(self.step_size))
        x1 = self._walk(x0, vecs, t, dens)
        f0 = site_features(model, x0, self.space, site)
        f1 = site_features(model, x1, self.space, site)
        d = (f1.reshape(n, len(vecs), *f0.shape[1:]) - f0[:, None]).abs()  # [n, K, C, h, w]
        ch = d.reshape(n, len(vecs), d.shape[2], -1).mean(3).mean(0).double().numpy()  # [K, C]
        var = d.flatten(2).square().sum(2).mean(0).double().numpy()
        x0r = x0.repeat_interleave(len(vecs), 0)
        lp = (lambda x: logp_normal(x)) if dens is None else dens.logp
        dlogp = float((lp(x1.double()) - lp(x0r.double())).abs().mean())
        return ch, var, dlogp
