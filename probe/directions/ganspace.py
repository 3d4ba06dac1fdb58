"""GANSpace: principal components of w samples, or of site activations regressed back to z (z-only models)."""

from __future__ import annotations

import numpy as np
import torch

from .base import DirectionError, DirectionSet
from .estimator import DirectionEstimator


def svd_lowrank(a: torch.Tensor, q: int, niter: int, generator: torch.Generator):
    """Randomized truncated SVD (Halko et al. 2009, Alg. 4.4, as torch.svd_lowrank computes it) drawing its
    Gaussian test matrix from `generator`, not torch's global one.  # a [m, n] -> U [m, q], S [q], V [n, q]"""
    m, n = a.shape
    t = a.mH if m < n else a
    x = t @ torch.randn(t.shape[-1], q, dtype=t.dtype, generator=generator).to(t.device)
    b = torch.linalg.qr(x).Q
    for _ in range(niter):
        b = torch.linalg.qr(t.mH @ b).Q
        b = torch.linalg.qr(t @ b).Q
    u, s, vh = torch.linalg.svd(b.mH @ t, full_matrices=False)
    u, v = b @ u, vh.mH
    return (v, s, u) if m < n else (u, s, v)


class GANSpace(DirectionEstimator):
    """PCA directions.

    n_components: K; n_samples: latents sampled for the PCA (and the z regression); space: "w" (PCA directly on
    w samples, StyleGAN-like) or "z" (PCA on the flattened activations of `site`, then least squares from the
    standardised PCA coordinates back to z, the paper's rule for models without w); site: default first site;
    n_stdev: samples used for lat_stdev (std of latent projections on each component, stored as `scales`).
    Attributes: directions_, explained_variance_ratio_ [K], lat_mean_ [D], lat_stdev_ [K].
    """

    method = "ganspace"

    def __init__(
        self,
        n_components: int = 20,
        n_samples: int = 10_000,
        space: str | None = None,
        site: str | None = None,
        n_stdev: int = 5000,
        batch_size: int = 256,
        seed: int = 0,
    ):
        self.n_components, self.n_samples, self.space, self.site = n_components, n_samples, space, site
        self.n_stdev, self.batch_size, self.seed = n_stdev, batch_size, seed

    def _pca(self, x: np.ndarray, k: int):
        """Top-k principal axes of x [N, D] -> (components [k, D], explained variance ratio [k], mean [D])."""
        mean = x.mean(0)
        xc = torch.from_numpy(x - mean)
        total = float(xc.square().sum() / (len(x) - 1))
        if x.shape[1] <= 2048:  # covariance eigendecomposition (exact)
            vals, vecs = torch.linalg.eigh(xc.T @ xc / (len(x) - 1))
            vals, comps = vals.flip(0)[:k], vecs.flip(1)[:, :k].T
        else:  # randomized SVD for wide site activations
            g = torch.Generator().manual_seed(int(self.seed))
            _, s, v = svd_lowrank(xc, q=min(k + 10, min(x.shape)), niter=4, generator=g)
            vals, comps = s[:k].square() / (len(x) - 1), v[:, :k].T
        comps = comps * torch.where(comps.sum(1, keepdim=True) < 0, -1.0, 1.0).to(comps)  # sign convention
        return comps.numpy(), (vals / total).numpy(), mean

    @torch.no_grad()
    def fit(self, model) -> GANSpace:
        space = self.space or ("w" if "w" in model.spaces else "z")
        if space not in ("w", "z"):
            raise DirectionError(f"GANSpace: space must be 'w' or 'z', got {space!r}")
        model.check_space(space)
        n = int(self.n_samples)
        k = int(self.n_components)
        z = model.sample(n, self.seed)
        if space == "w":
            if k > model.w_dim:
                raise DirectionError(f"GANSpace: n_components={k} exceeds w_dim={model.w_dim}")
            x = model.to_space(z, "z", "w").cpu().double().numpy()
            comps, evr, mean = self._pca(x, k)
            site = None
        else:
            site = self.site or model.sites[0]
            from .dplase import site_features  # stops the forward pass at the site

            model.check_site(site)
            acts = [
                site_features(model, z[i : i + self.batch_size], "z", site).flatten(1).cpu().numpy()
                for i in range(0, n, self.batch_size)
            ]
            a = np.concatenate(acts).astype(np.float64)
            k = min(k, model.z_dim, n - 1)
            pcs, evr, amean = self._pca(a, k)
            coords = (a - amean) @ pcs.T
            coords = coords / (coords.std(0, keepdims=True) + 1e-12)
            zz = z.cpu().double().numpy()
            from scipy.linalg import lstsq

            m, *_ = lstsq(coords, zz - zz.mean(0), lapack_driver="gelsd")  # [K, z_dim]
            comps = m
            mean = zz.mean(0)
        comps = comps / np.linalg.norm(comps, axis=1, keepdims=True)
        zs = model.sample(int(self.n_stdev), self.seed + 1)
        lat = (model.to_space(zs, "z", "w") if space == "w" else zs).cpu().double().numpy()
        stdev = ((lat - mean) @ comps.T).std(0)
        self.explained_variance_ratio_ = evr[:k]
        self.lat_mean_, self.lat_stdev_ = mean, stdev
        info = [
            {"explained_variance_ratio": float(r), "lat_stdev": float(s)}
            for r, s in zip(self.explained_variance_ratio_, stdev)
        ]
        self.directions_ = DirectionSet(
            [f"pc{i}" for i in range(len(comps))],
            comps,
            space,
            self.method,
            model.name,
            model.weights_hash,
            scales=stdev,
            info=info,
            provenance={
                "n_components": k,
                "n_samples": n,
                "site": site,
                "seed": self.seed,
                "n_stdev": int(self.n_stdev),
            },
        )
        return self
