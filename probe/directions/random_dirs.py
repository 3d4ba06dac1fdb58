"""Random orthonormal directions: the baseline every discovered set is compared with."""

from __future__ import annotations

import numpy as np

from .base import DirectionError, DirectionSet
from .estimator import DirectionEstimator


def random_orthonormal(k: int, dim: int, seed: int = 0) -> np.ndarray:
    """K orthonormal rows from the QR of a seeded Gaussian matrix.  # -> [K, dim]"""
    if not 0 < k <= dim:
        raise DirectionError(f"RandomDirections: K={k} must be between 1 and the latent dimension {dim}")
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, k)))
    return (q * np.sign(np.diag(r))).T


class RandomDirections(DirectionEstimator):
    """K random orthonormal directions in `space`, from `seed`. fit(model) -> self; directions_."""

    method = "random"

    def __init__(self, K: int = 8, seed: int = 0, space: str = "z"):
        self.K, self.seed, self.space = K, seed, space

    def fit(self, model) -> RandomDirections:
        dim = model.dim(self.space) if self.space != "ws" else model.w_dim
        v = random_orthonormal(int(self.K), dim, self.seed)
        lay = [None] * len(v)
        self.directions_ = DirectionSet(
            [f"random{i}" for i in range(len(v))],
            v,
            self.space,
            self.method,
            model.name,
            model.weights_hash,
            lay,
            provenance={"K": int(self.K), "seed": int(self.seed)},
        )
        return self
