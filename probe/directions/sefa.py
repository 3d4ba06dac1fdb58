"""SeFa: closed-form directions, the top eigenvectors of A^T A for the first latent-consuming weights A."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from torch import nn

from .base import DirectionError, DirectionSet


def _first_z_layer(module: nn.Module, z_dim: int) -> nn.Module:
    for m in module.modules():
        if isinstance(m, nn.ConvTranspose2d) and m.in_channels == z_dim:
            return m
        if isinstance(m, nn.Conv2d) and m.in_channels == z_dim:
            return m
        if isinstance(m, nn.Linear) and m.in_features == z_dim:
            return m
    raise DirectionError(f"SeFa: no ConvTranspose2d / Conv2d / Linear layer taking z_dim={z_dim} inputs found; "
                         f"this model's first layer cannot be factorised")


def first_layer_weight(model) -> np.ndarray:
    """The z-consuming weight as [z_dim, outputs] (one column per output unit / channel x kernel position)."""
    m = _first_z_layer(model.module, model.z_dim)
    w = m.weight.detach().cpu().double()
    if isinstance(m, nn.ConvTranspose2d):  # [in=z_dim, out, kh, kw]
        return w.reshape(w.shape[0], -1).numpy()
    return w.reshape(w.shape[0], -1).T.numpy() if isinstance(m, nn.Linear) else \
        w.permute(1, 0, 2, 3).reshape(w.shape[1], -1).numpy()


def _ws_affines(synthesis: nn.Module, num_ws: int) -> dict[int, list[nn.Linear]]:
    """ws index -> style affines consuming it (StyleGAN-lite order, or NVlabs blocks with num_conv/num_torgb)."""
    out: dict[int, list[nn.Linear]] = {}
    blocks = [b for _, b in synthesis.named_children() if hasattr(b, "num_conv")]
    if blocks:  # NVlabs StyleGAN2: conv0/conv1 use consecutive ws, torgb the next one (shared with next conv0)
        idx = 0
        for b in blocks:
            convs = [getattr(b, n) for n in ("conv0", "conv1") if hasattr(b, n)]
            for j, c in enumerate(convs):
                out.setdefault(idx + j, []).append(c.affine)
            if getattr(b, "torgb", None) is not None:
                out.setdefault(idx + len(convs), []).append(b.torgb.affine)
            idx += b.num_conv
        return out
    aff = [m for n, m in synthesis.named_modules() if n.endswith("affine") and isinstance(m, nn.Linear)]
    if len(aff) != num_ws:
        raise DirectionError(f"SeFa: found {len(aff)} style affines for num_ws={num_ws}; cannot tell which "
                             f"ws layer each one reads")
    return {i: [a] for i, a in enumerate(aff)}


def style_weight(model, layers: Sequence[int]) -> np.ndarray:
    """Concatenated style-affine weights of the chosen ws layers as [w_dim, sum C]."""
    aff = _ws_affines(model.module.synthesis, model.num_ws)
    cols = [a.weight.detach().cpu().double().T.numpy() for l in layers for a in aff.get(l, [])]
    if not cols:
        raise DirectionError(f"SeFa: no style affines read ws layers {list(layers)}")
    return np.concatenate(cols, 1)


def factorize(weight: np.ndarray, normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvectors of W W^T (rows, unit), eigenvalues, sorted descending.  # [D, M] -> [D, D], [D]"""
    w = np.asarray(weight, np.float64)
    if normalize:
        w = w / (np.linalg.norm(w, axis=0, keepdims=True) + 1e-12)
    vals, vecs = np.linalg.eigh(w @ w.T)
    order = np.argsort(-vals, kind="stable")
    return vecs[:, order].T, vals[order]


class SeFa:
    """Closed-form factorisation. n_components: K directions kept; layers: (start, end) ws range for style
    models (None = all layers, directions then live in w); normalize: unit columns before factorising.
    Attributes: directions_ (DirectionSet, scales 1), eigenvalues_ [K]."""

    method = "sefa"

    def __init__(self, n_components: int = 20, layers: tuple[int, int] | None = None, normalize: bool = True):
        self.n_components, self.layers, self.normalize = n_components, layers, normalize

    def fit(self, model) -> "SeFa":
        if "w" in model.spaces and hasattr(model.module, "synthesis"):
            s, e = self.layers or (0, model.num_ws)
            if not 0 <= s < e <= model.num_ws:
                raise DirectionError(f"SeFa: layers ({s}, {e}) out of range for num_ws={model.num_ws}; "
                                     f"use 0 <= start < end <= {model.num_ws}")
            weight = style_weight(model, range(s, e))
            space, lay = ("w", None) if self.layers is None else ("ws", (s, e))
        else:
            if self.layers is not None:
                raise DirectionError("SeFa: layers only apply to style models with a w space; leave it unset")
            weight, space, lay = first_layer_weight(model), "z", None
        vecs, vals = factorize(weight, self.normalize)
        k = min(int(self.n_components), len(vecs))
        self.eigenvalues_ = vals[:k]
        self.weight_ = weight
        info = [{"eigenvalue": float(v), "rank": i} for i, v in enumerate(vals[:k])]
        self.directions_ = DirectionSet([f"sefa{i}" for i in range(k)], vecs[:k], space, self.method, model.name,
                                        model.weights_hash, [lay] * k, info=info,
                                        provenance={"n_components": k, "layers": list(lay) if lay else None,
                                                    "normalize": self.normalize})
        return self
