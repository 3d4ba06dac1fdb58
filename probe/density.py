"""Latent density statistics: log p under the prior for z, a fitted Gaussian for w / ws."""

from __future__ import annotations

import math

import numpy as np
import torch

from .errors import ProbeError


def _flat(x: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float64).reshape(len(x), -1)


def norm(z: torch.Tensor) -> torch.Tensor:
    """Euclidean norm per sample.  # [N, ...] -> [N]"""
    return _flat(z).norm(dim=1)


def logp_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) per sample.  # [N, D] -> [N]"""
    z = _flat(z)
    return -0.5 * z.square().sum(1) - 0.5 * z.shape[1] * math.log(2 * math.pi)


def chi2_percentile(z: torch.Tensor) -> torch.Tensor:
    """P(chi2_D <= ||z||^2): where the sample's norm sits under the prior, in [0, 1].  # [N, D] -> [N]"""
    z = _flat(z)
    d = torch.tensor(z.shape[1] / 2, dtype=torch.float64)
    return torch.special.gammainc(d, z.square().sum(1) / 2)


def z_stats(z: torch.Tensor) -> dict[str, np.ndarray]:
    """{'logp', 'norm', 'chi2_pct'} under N(0, I).  # [N, D] -> each [N]"""
    return {"logp": logp_normal(z).numpy(), "norm": norm(z).numpy(), "chi2_pct": chi2_percentile(z).numpy()}


class GaussianDensity:
    """Full-covariance Gaussian fitted on samples (for w; ws is scored per layer and summed).

    fit(x [N, D]) -> self; attributes mean_ [D], cov_ [D, D]; logp(x) uses the Mahalanobis form.
    """

    def __init__(self, shrinkage: float = 1e-6):
        self.shrinkage = shrinkage

    def fit(self, x: torch.Tensor) -> GaussianDensity:
        """Fit on w [N, D], or on ws [N, L, D] (layers pooled, so logp scores each layer and sums)."""
        x = torch.as_tensor(x, dtype=torch.float64)
        x = x.reshape(-1, x.shape[-1]) if x.dim() == 3 else _flat(x)
        if x.shape[0] < 2:
            raise ProbeError("GaussianDensity.fit needs at least 2 samples; sample more latents")
        if not torch.isfinite(x).all():
            raise ProbeError("GaussianDensity.fit got NaN or inf values; pass finite latents")
        self.mean_ = x.mean(0)
        cov = torch.cov(x.T).reshape(x.shape[1], x.shape[1])
        cov = cov + self.shrinkage * cov.diagonal().mean() * torch.eye(x.shape[1], dtype=torch.float64)
        self.cov_ = cov
        self._chol = torch.linalg.cholesky(cov)
        self._logdet = 2 * self._chol.diagonal().log().sum()
        return self

    def mahalanobis(self, x: torch.Tensor) -> torch.Tensor:
        """Mahalanobis distance per sample.  # [N, D] -> [N]"""
        x = _flat(x)
        if x.shape[1] != self.mean_.shape[0]:
            raise ProbeError(
                f"GaussianDensity was fitted on dimension {self.mean_.shape[0]}, got latents of "
                f"dimension {x.shape[1]}; score the same space it was fitted on"
            )
        d = (x - self.mean_).T
        return torch.linalg.solve_triangular(self._chol, d, upper=False).norm(dim=0)

    def logp(self, x: torch.Tensor) -> torch.Tensor:
        """log N(x; mean_, cov_).  # [N, D] or [N, L, D] (summed over layers L) -> [N]"""
        x = torch.as_tensor(x, dtype=torch.float64)
        if x.dim() == 3:
            return sum(self.logp(x[:, i]) for i in range(x.shape[1]))
        D = x.shape[1]
        return -0.5 * (self.mahalanobis(x).square() + self._logdet + D * math.log(2 * math.pi))

    def to_dict(self) -> dict:
        return {"mean": self.mean_.tolist(), "cov": self.cov_.tolist(), "shrinkage": self.shrinkage}

    @classmethod
    def from_dict(cls, d: dict) -> GaussianDensity:
        g = cls(d["shrinkage"])
        g.mean_ = torch.tensor(d["mean"], dtype=torch.float64)
        g.cov_ = torch.tensor(d["cov"], dtype=torch.float64)
        g._chol = torch.linalg.cholesky(g.cov_)
        g._logdet = 2 * g._chol.diagonal().log().sum()
        return g


def latent_stats(latent: torch.Tensor, space: str, density: GaussianDensity | None = None) -> dict[str, np.ndarray]:
    """{'norm', 'logp'} for a batch in its space: prior for z, the fitted Gaussian for w / ws.  # [N, ...] -> [N]"""
    if space == "z":
        s = z_stats(latent)
        return {"norm": s["norm"], "logp": s["logp"]}
    if density is None:
        raise ProbeError(f"latent space {space!r} needs a fitted GaussianDensity (fit it on sampled w)")
    return {"norm": norm(latent).numpy(), "logp": density.logp(latent).numpy()}
