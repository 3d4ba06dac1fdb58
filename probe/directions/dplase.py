"""DP-LaSE: K directions that maximise a site's feature variation, decorrelated, density preserving.

Loss per step (a batch of z0, one step t per z0; defaults first, the authors' code's choices as options):
  l_var  = -mean ||G1(dp(z0 + t g_j)) - G1(z0)||^2 / mean ||G1(z0)||^2   (variation_scale, variation_weight)
  l_corr = lambda_corr * mean over pairs j != h of the decorrelation term  (decorrelation: flat-cos2 cos^2 of the
           flattened changes | channel-cos2 per-channel cos^2 | flat-dot2 the squared dot product, as the code)
  l_reg  = zeta * mean((Gamma Gamma^T - I)^2)                               (keep orthonormal; as the code)
Steps: t ~ +-U(0.25, 1) * step_size (signed-uniform) | U(-step_size, step_size) (uniform, the code's).
Pairs: every direction at every z0 (all) | two random directions per z0 (one, the code's: variation of both,
decorrelation of the pair where they differ). dp() keeps log p unchanged: the norm for the Gaussian prior on z,
the Mahalanobis distance of the fitted GaussianDensity for w (density=False walks linearly). G1 runs only up to
the site. final_qr re-orthonormalises the result (the code only normalises rows).

Channel subspaces (subspace):
  top-fraction: per direction the top `mask_fraction` channels by mean |feature change|.
  self-expression: descriptors X [N, C] of the site's channels (the signed change of each channel over eval
  samples, directions and positions), unit columns; self-expression coefficients, closed form,
  C = argmin ||X - XC||^2 + lam ||C||^2 with diag(C) = 0  ->  C = I - P diag(P)^-1,  P = (X^T X + lam I)^-1;
  per column keep the largest |C| entries holding `affinity_threshold` of its mass; affinity |C| + |C|^T;
  spectral clustering (sklearn, precomputed affinity, seeded) into n_groups channel groups; each direction takes
  the group it moves most (mean |change| per channel; group_assignment relative: over the mean direction's).
  subspace_refine: a second phase of `refine_steps` in which the variation of direction j counts only its
  group's channels (the paper's per-subspace training).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .base import DirectionError, DirectionSet
from .estimator import DirectionEstimator


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


SUBSPACES = ("top-fraction", "self-expression")
DECORRELATIONS = ("flat-cos2", "channel-cos2", "flat-dot2")
STEP_DISTRIBUTIONS = ("signed-uniform", "uniform")
DIRECTIONS_PER_LATENT = ("all", "one")
VARIATION_SCALES = ("feature-energy", "none")
GROUP_ASSIGNMENTS = ("relative", "absolute")


def self_expression(X, lam: float = 0.1) -> np.ndarray:
    """Self-expression coefficients of the columns of X, closed form.  # X [N, C] -> C [C, C], diag 0

    argmin ||X - XC||_F^2 + lam ||C||_F^2 with diag(C) = 0, on unit-norm columns (an all-zero column stays
    unconnected): C = I - P diag(P)^-1 with P = (X^T X + lam I)^-1."""
    X = np.asarray(X, np.float64)
    if X.ndim != 2:
        raise DirectionError(f"self_expression: X must be [N, C] (rows samples, columns channels); got {list(X.shape)}")
    return _self_expression_gram(X.T @ X, lam)


def _self_expression_gram(G: np.ndarray, lam: float) -> np.ndarray:
    d = np.sqrt(np.clip(np.diag(G), 0.0, None))
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d > 0)
    P = np.linalg.inv(G * inv[:, None] * inv[None, :] + lam * np.eye(len(G)))
    C = np.eye(len(G)) - P / np.diag(P)[None, :]
    np.fill_diagonal(C, 0.0)
    return C


def keep_mass(A: np.ndarray, fraction: float) -> np.ndarray:
    """Per column, keep the largest entries of A >= 0 that hold `fraction` of the column's sum; zero the rest."""
    A = np.asarray(A, np.float64)
    order = np.argsort(-A, axis=0, kind="stable")
    s = np.take_along_axis(A, order, 0)
    before = np.cumsum(s, 0) - s
    keep = np.zeros(A.shape, bool)
    np.put_along_axis(keep, order, before < fraction * s.sum(0, keepdims=True), 0)
    return np.where(keep & (A > 0), A, 0.0)


def channel_affinity(X, affinity_threshold: float = 0.2, lam: float = 0.1) -> np.ndarray:
    """Channel affinity |C| + |C|^T of the thresholded self-expression C of X's columns.  # X [N, C] -> [C, C]"""
    A = keep_mass(np.abs(self_expression(X, lam)), affinity_threshold)
    return A + A.T


def cluster_channels(W: np.ndarray, n_groups: int, seed: int = 0) -> np.ndarray:
    """Spectral clustering of a channel affinity W [C, C] into n_groups groups.  # -> [C] ints in 0..n_groups-1

    sklearn SpectralClustering(affinity='precomputed', k-means labels, random_state=seed) on W plus a floor of
    1e-6 max(W) (isolated channels stay clusterable); groups are numbered in order of their first channel."""
    W = np.asarray(W, np.float64)
    n = len(W)
    if not 1 <= int(n_groups) <= n:
        raise DirectionError(f"n_groups={n_groups} must be between 1 and the number of channels {n}")
    if int(n_groups) == 1:
        return np.zeros(n, np.int64)
    from sklearn.cluster import SpectralClustering

    W = W + 1e-6 * max(float(W.max()), 1e-12) * (1 - np.eye(n))
    lab = SpectralClustering(
        n_clusters=int(n_groups), affinity="precomputed", random_state=int(seed), n_init=10
    ).fit_predict(W)
    uniq, first = np.unique(lab, return_index=True)
    if len(uniq) < int(n_groups):
        raise DirectionError(f"spectral clustering found only {len(uniq)} channel groups; set n_groups <= {len(uniq)}")
    remap = np.empty(int(lab.max()) + 1, np.int64)
    remap[uniq[np.argsort(first, kind="stable")]] = np.arange(len(uniq))
    return remap[lab]


def channel_groups(X, n_groups: int, affinity_threshold: float = 0.2, lam: float = 0.1, seed: int = 0) -> np.ndarray:
    """Channel groups by subspace clustering of X's columns (self-expression -> affinity -> spectral).
    # X [N, C] -> [C] ints in 0..n_groups-1"""
    return cluster_channels(channel_affinity(X, affinity_threshold, lam), n_groups, seed)


def channel_group_table(ds: DirectionSet):
    """Per direction: its channel group (-1 if the set has none), channel count and channels of its mask.
    # -> DataFrame [K rows: direction, channel_group, n_channels, channels]"""
    import pandas as pd

    rows = []
    for i, name in enumerate(ds.names):
        m = None if ds.channel_masks is None else np.flatnonzero(ds.channel_masks[i] > 0)
        rows.append(
            {
                "direction": name,
                "channel_group": int(ds.info[i].get("channel_group", -1)),
                "n_channels": 0 if m is None else len(m),
                "channels": "" if m is None else ",".join(map(str, m.tolist())),
            }
        )
    return pd.DataFrame(rows, columns=["direction", "channel_group", "n_channels", "channels"])


def draw_steps(n: int, step_size: float, distribution: str, g: torch.Generator) -> torch.Tensor:
    """Training steps t.  # [n]; signed-uniform: +-U(0.25, 1) * step_size; uniform: U(-step_size, step_size)"""
    if distribution == "uniform":
        return (torch.rand(n, generator=g) * 2 - 1) * step_size
    t = (torch.rand(n, generator=g) * 0.75 + 0.25) * step_size
    return t * torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)


def decorrelation_terms(delta: torch.Tensor, n_channels: int, kind: str = "flat-cos2") -> torch.Tensor:
    """Decorrelation term of every pair of feature changes of one z0.  # delta [B, M, F] -> [B, M, M]

    flat-cos2: cos^2 of the flattened changes; channel-cos2: cos^2 per channel (F = n_channels x positions),
    averaged over channels; flat-dot2: squared dot product of the flattened changes (the authors' code)."""
    if kind == "flat-dot2":
        return (delta @ delta.transpose(1, 2)).square()
    if kind == "channel-cos2":
        dc = delta.reshape(delta.shape[0], delta.shape[1], int(n_channels), -1)  # [B, M, C, S]
        u = dc / dc.norm(dim=3, keepdim=True).clamp_min(1e-12)
        return torch.einsum("bjcs,bhcs->bcjh", u, u).square().mean(1)
    u = delta / delta.norm(dim=2, keepdim=True).clamp_min(1e-12)
    return (u @ u.transpose(1, 2)).square()


class DPLaSE(DirectionEstimator):
    """Learned density-preserving directions, with their channel subspaces at the site.

    n_directions: K; site: feature site G1 ends at (default the model's first site); space: z | w;
    steps: Adam iterations; batch_size: z0 per step; lr: Adam step; lambda_corr, zeta: loss weights;
    step_size, step_distribution: t ~ +-U(0.25, 1) * step_size (signed-uniform) | U(-step_size, step_size) (uniform);
    directions_per_latent: all (every direction at each z0) | one (two random directions per z0, as the code);
    decorrelation: flat-cos2 | channel-cos2 | flat-dot2; variation_weight; variation_scale: feature-energy (divide
    by mean ||G1(z0)||^2) | none; final_qr: re-orthonormalise (False: unit rows only);
    density: density-preserving walks (False = linear, to show what the rescale buys);
    subspace: top-fraction (mask_fraction of channels per direction) | self-expression (n_groups channel groups,
    affinity_threshold, self_expression_lambda, group_assignment: each direction takes the group with the largest
    mean |change| per channel over that of the mean direction (relative) or the largest itself (absolute));
    subspace_refine: then train `refine_steps` (None: steps) more with each direction's variation counted on its
    group's channels only; seed; progress: tqdm bar.
    Attributes: directions_ (DirectionSet with site, channel_masks, info[j]["channel_group"]), history_ (loss per
    step), seconds_, channel_scores_ [K, C] mean |change|; self-expression: channel_groups_ [C],
    direction_groups_ [K], group_scores_ [K, n_groups], affinity_ [C, C] (None for top-fraction).
    """

    method = "dplase"

    def __init__(
        self,
        n_directions: int = 8,
        site: str | None = None,
        space: str = "z",
        steps: int = 600,
        batch_size: int = 16,
        lr: float = 0.01,
        step_size: float = 3.0,
        lambda_corr: float = 1.0,
        zeta: float = 100.0,
        density: bool = True,
        mask_fraction: float = 0.25,
        seed: int = 0,
        progress: bool = True,
        decorrelation: str = "flat-cos2",
        step_distribution: str = "signed-uniform",
        directions_per_latent: str = "all",
        final_qr: bool = True,
        variation_weight: float = 1.0,
        variation_scale: str = "feature-energy",
        subspace: str = "top-fraction",
        n_groups: int = 6,
        affinity_threshold: float = 0.2,
        self_expression_lambda: float = 0.1,
        group_assignment: str = "relative",
        subspace_refine: bool = False,
        refine_steps: int | None = None,
    ):
        self.n_directions, self.site, self.space, self.steps = n_directions, site, space, steps
        self.batch_size, self.lr, self.step_size = batch_size, lr, step_size
        self.lambda_corr, self.zeta, self.density = lambda_corr, zeta, density
        self.mask_fraction, self.seed, self.progress = mask_fraction, seed, progress
        self.decorrelation, self.step_distribution = decorrelation, step_distribution
        self.directions_per_latent, self.final_qr = directions_per_latent, final_qr
        self.variation_weight, self.variation_scale = variation_weight, variation_scale
        self.subspace, self.n_groups, self.affinity_threshold = subspace, n_groups, affinity_threshold
        self.self_expression_lambda, self.group_assignment = self_expression_lambda, group_assignment
        self.subspace_refine, self.refine_steps = subspace_refine, refine_steps

    def _check(self, channels: int, site: str) -> None:
        for field, value, allowed in (
            ("decorrelation", self.decorrelation, DECORRELATIONS),
            ("step_distribution", self.step_distribution, STEP_DISTRIBUTIONS),
            ("directions_per_latent", self.directions_per_latent, DIRECTIONS_PER_LATENT),
            ("variation_scale", self.variation_scale, VARIATION_SCALES),
            ("subspace", self.subspace, SUBSPACES),
            ("group_assignment", self.group_assignment, GROUP_ASSIGNMENTS),
        ):
            if value not in allowed:
                raise DirectionError(f"DPLaSE: {field}={value!r} must be one of {', '.join(allowed)}")
        if not 0 < self.mask_fraction <= 1:
            raise DirectionError(f"DPLaSE: mask_fraction={self.mask_fraction} must lie in (0, 1]")
        if not self.step_size > 0:
            raise DirectionError(f"DPLaSE: step_size={self.step_size} must be > 0")
        if not np.isfinite(self.variation_weight):
            raise DirectionError(f"DPLaSE: variation_weight={self.variation_weight} must be a finite number")
        if self.subspace == "self-expression":
            if int(self.n_groups) != self.n_groups or not 1 <= self.n_groups <= channels:
                raise DirectionError(
                    f"DPLaSE: n_groups={self.n_groups} must be an integer between 1 and the "
                    f"{channels} channels of site {site!r}"
                )
            if not 0 < self.affinity_threshold <= 1:
                raise DirectionError(
                    f"DPLaSE: affinity_threshold={self.affinity_threshold} must lie in (0, 1] "
                    f"(the share of each channel's affinity mass kept)"
                )
            if not self.self_expression_lambda > 0:
                raise DirectionError(f"DPLaSE: self_expression_lambda={self.self_expression_lambda} must be > 0")
        elif self.subspace_refine:
            raise DirectionError("DPLaSE: subspace_refine=True needs subspace='self-expression'")
        if self.refine_steps is not None and not (int(self.refine_steps) == self.refine_steps >= 0):
            raise DirectionError(f"DPLaSE: refine_steps={self.refine_steps} must be an integer >= 0 or None")

    def _base(self, model, n: int, g: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, model.z_dim, generator=g).to(model.device)  # drawn on the CPU: the same on every device
        return z if self.space == "z" else model.to_space(z, "z", "w").detach()

    def _walk(self, x0, gamma, t, dens):  # x0 [B, D], gamma [K, D], t [B] -> [B*K, D]
        k = len(gamma)
        x0r = x0.repeat_interleave(k, 0)
        x1 = x0r + t.repeat_interleave(k)[:, None] * gamma.repeat(len(x0), 1)
        return density_preserve(x0r, x1, dens) if self.density else x1

    def _walk_each(self, x0, dirs, t, dens):  # x0 [B, D], dirs [B, M, D], t [B] -> [B*M, D]
        m = dirs.shape[1]
        x0r = x0.repeat_interleave(m, 0)
        x1 = x0r + t.repeat_interleave(m)[:, None] * dirs.reshape(-1, dirs.shape[2])
        return density_preserve(x0r, x1, dens) if self.density else x1

    def _train(self, model, gamma, opt, site, dens, g, steps: int, masks, desc: str) -> None:
        from tqdm.auto import tqdm

        K = len(gamma)
        dev = gamma.device
        eye = torch.eye(K, device=dev)
        off = ~torch.eye(K, dtype=torch.bool, device=dev)
        masks = masks.to(dev) if masks is not None else None
        bar = tqdm(range(int(steps)), desc=desc, disable=not self.progress)
        for _ in bar:
            x0 = self._base(model, self.batch_size, g)
            t = draw_steps(len(x0), self.step_size, self.step_distribution, g).to(dev)
            gn = gamma / gamma.norm(dim=1, keepdim=True)
            with torch.no_grad():
                f0 = site_features(model, x0, self.space, site)
            shape, f0 = f0.shape[1:], f0.flatten(1)
            if self.directions_per_latent == "all":
                f1 = site_features(model, self._walk(x0, gn, t, dens), self.space, site).flatten(1)
                delta = f1.reshape(len(x0), K, -1) - f0[:, None]  # [B, K, F]
                idx = None
            else:
                idx = torch.randint(K, (len(x0), 2), generator=g).to(dev)  # two directions per z0
                f1 = site_features(model, self._walk_each(x0, gn[idx], t, dens), self.space, site).flatten(1)
                delta = f1.reshape(len(x0), 2, -1) - f0[:, None]  # [B, 2, F]
            if masks is not None:  # each direction's variation on its own channels
                fm = masks.repeat_interleave(delta.shape[2] // masks.shape[1], dim=1)  # [K, F]
                dv = delta * (fm[None] if idx is None else fm[idx])
            else:
                dv = delta
            l_var = -dv.square().sum(2).mean()
            if self.variation_scale == "feature-energy":
                l_var = l_var / f0.square().sum(1).mean().clamp_min(1e-12)
            pairs = decorrelation_terms(delta, shape[0], self.decorrelation)
            if idx is None:
                l_corr = pairs[:, off].mean() if K > 1 else delta.new_zeros(())
            else:
                differ = (idx[:, 0] != idx[:, 1]).to(delta.dtype)
                l_corr = (pairs[:, 0, 1] * differ).sum() / differ.sum().clamp_min(1.0)
            l_reg = (gn @ gn.T - eye).square().mean()
            loss = self.variation_weight * l_var + self.lambda_corr * l_corr + self.zeta * l_reg
            opt.zero_grad()
            loss.backward()
            opt.step()
            h = {
                "loss": loss.item(),
                "var": -l_var.item(),
                "corr": l_corr.item(),
                "reg": l_reg.item(),
                "walks": int(delta.shape[0] * delta.shape[1]),
            }
            if masks is not None:
                h["phase"] = "refine"
            self.history_.append(h)
            bar.set_postfix(var=f"{h['var']:.3f}", corr=f"{h['corr']:.3f}", refresh=False)

    def _final(self, gamma) -> torch.Tensor:  # [K, D]
        if not self.final_qr:
            return (gamma / gamma.norm(dim=1, keepdim=True)).detach().contiguous()
        q, r = torch.linalg.qr(gamma.detach().T)
        return (q * torch.sign(torch.diagonal(r))).T.contiguous()  # orthonormal

    def fit(self, model, density=None) -> DPLaSE:
        """Train on `model`; density: fitted GaussianDensity for space w (fitted on 4096 w samples if None)."""
        if self.space not in ("z", "w"):
            raise DirectionError(f"DPLaSE: space must be 'z' or 'w', got {self.space!r}")
        model.check_space(self.space)
        site = self.site or model.sites[0]
        model.check_site(site)
        K, D = int(self.n_directions), model.dim(self.space)
        if not 0 < K <= D:
            raise DirectionError(f"DPLaSE: n_directions={K} must be between 1 and the latent dimension {D}")
        self._check(model.channels(site), site)
        g = torch.Generator().manual_seed(int(self.seed))
        dens = None
        if self.space == "w":
            if density is None:
                from ..density import GaussianDensity

                density = GaussianDensity().fit(self._base(model, 4096, g).cpu())
            dens = density
        q, r = torch.linalg.qr(torch.randn(D, K, generator=g))
        gamma = torch.nn.Parameter((q * torch.sign(torch.diagonal(r))).T.contiguous().to(model.device))
        opt = torch.optim.Adam([gamma], lr=self.lr)
        self.history_ = []
        t0 = time.perf_counter()
        self._train(model, gamma, opt, site, dens, g, int(self.steps), None, f"DP-LaSE {model.name}:{site}")
        self.seconds_ = time.perf_counter() - t0  # training only
        groups = self.subspace == "self-expression"
        with torch.no_grad():
            vecs = self._final(gamma)
            masks, var, dlogp, gram = self._masks(
                model, vecs, site, dens, torch.Generator().manual_seed(int(self.seed) + 1), gram=groups
            )
        self.channel_groups_ = self.direction_groups_ = self.group_scores_ = self.affinity_ = None
        if groups:
            self.affinity_ = keep_mass(
                np.abs(_self_expression_gram(gram, float(self.self_expression_lambda))), float(self.affinity_threshold)
            )
            self.affinity_ = self.affinity_ + self.affinity_.T
            self.channel_groups_ = cluster_channels(self.affinity_, int(self.n_groups), int(self.seed))
            self.direction_groups_ = self._assign(self._group_scores(masks))
            cm = (self.channel_groups_[None, :] == self.direction_groups_[:, None]).astype(np.float32)
            if self.subspace_refine:
                steps = int(self.steps if self.refine_steps is None else self.refine_steps)
                t0 = time.perf_counter()
                self._train(
                    model, gamma, opt, site, dens, g, steps, torch.from_numpy(cm), f"DP-LaSE {model.name}:{site} refine"
                )
                self.seconds_ += time.perf_counter() - t0
                with torch.no_grad():
                    vecs = self._final(gamma)
                    masks, var, dlogp, _ = self._masks(
                        model, vecs, site, dens, torch.Generator().manual_seed(int(self.seed) + 1)
                    )
            self.group_scores_ = self._group_scores(masks)
        self.channel_scores_ = masks
        k_keep = max(1, int(round(self.mask_fraction * masks.shape[1])))
        top = np.argsort(-masks, axis=1, kind="stable")[:, :k_keep]
        if not groups:
            cm = np.zeros_like(masks, dtype=np.float32)
            np.put_along_axis(cm, top, 1.0, axis=1)
        info = [{"variation": float(v), "top_channels": [int(c) for c in top[i, :8]]} for i, v in enumerate(var)]
        if groups:
            for i, row in enumerate(info):
                row.update(channel_group=int(self.direction_groups_[i]), group_size=int(cm[i].sum()))
        prov = {
            k: getattr(self, k)
            for k in (
                "n_directions",
                "space",
                "steps",
                "batch_size",
                "lr",
                "step_size",
                "lambda_corr",
                "zeta",
                "density",
                "mask_fraction",
                "seed",
                "decorrelation",
                "step_distribution",
                "directions_per_latent",
                "final_qr",
                "variation_weight",
                "variation_scale",
                "subspace",
            )
        }
        if groups:
            prov.update(
                {
                    k: getattr(self, k)
                    for k in (
                        "n_groups",
                        "affinity_threshold",
                        "self_expression_lambda",
                        "group_assignment",
                        "subspace_refine",
                        "refine_steps",
                    )
                }
            )
            prov["channel_groups"] = [int(c) for c in self.channel_groups_]
        prov.update(
            site=site,
            seconds=round(self.seconds_, 2),
            final_loss=self.history_[-1]["loss"] if self.history_ else None,
            dlogp_abs_mean_train_walk=dlogp,
        )
        self.directions_ = DirectionSet(
            [f"d{i}" for i in range(K)],
            vecs.cpu().numpy(),
            self.space,
            self.method,
            model.name,
            model.weights_hash,
            site=site,
            channel_masks=cm,
            info=info,
            provenance=prov,
        )
        return self

    def _assign(self, gs: np.ndarray) -> np.ndarray:  # [K, n_groups] -> [K] the group each direction takes
        if self.group_assignment == "relative" and len(gs) > 1:
            gs = gs / np.maximum(gs.mean(0, keepdims=True), 1e-300)
        return gs.argmax(1)

    def _group_scores(self, scores: np.ndarray) -> np.ndarray:  # [K, C] -> [K, n_groups] mean score per channel
        n = int(self.n_groups)
        onehot = (self.channel_groups_[:, None] == np.arange(n)[None, :]).astype(np.float64)  # [C, n_groups]
        return scores @ onehot / onehot.sum(0)[None, :]

    def _masks(self, model, vecs, site, dens, g, n: int = 64, gram: bool = False):
        """Per-direction mean |feature change| per channel over n samples, the variation, |dlogp| of the walk,
        and (gram) the channels' Gram matrix of signed changes [C, C] (over samples, directions, positions)."""
        from ..density import logp_normal

        x0 = self._base(model, n, g)
        t = torch.full((n,), float(self.step_size), device=x0.device)
        x1 = self._walk(x0, vecs, t, dens)
        f0 = site_features(model, x0, self.space, site)
        f1 = site_features(model, x1, self.space, site)
        diff = f1.reshape(n, len(vecs), *f0.shape[1:]) - f0[:, None]
        d = diff.abs()  # [n, K, C, h, w]
        ch = d.reshape(n, len(vecs), d.shape[2], -1).mean(3).mean(0).double().cpu().numpy()  # [K, C]
        var = d.flatten(2).square().sum(2).mean(0).double().cpu().numpy()
        x0r = x0.repeat_interleave(len(vecs), 0)
        lp = (lambda x: logp_normal(x)) if dens is None else dens.logp
        dlogp = float((lp(x1.double().cpu()) - lp(x0r.double().cpu())).abs().mean())
        G = None
        if gram:
            X = diff.reshape(n * len(vecs), diff.shape[2], -1).double()  # [n K, C, S]
            G = torch.einsum("ncs,nds->cd", X, X).cpu().numpy()
        return ch, var, dlogp, G
