"""SeFa: closed-form directions, the top eigenvectors of A^T A for the first latent-consuming weights A."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import nn

from .base import DirectionError, DirectionSet
from .estimator import DirectionEstimator


def _first_z_layer(module: nn.Module, z_dim: int) -> nn.Module:
    for m in module.modules():
        if isinstance(m, nn.ConvTranspose2d) and m.in_channels == z_dim:
            return m
        if isinstance(m, nn.Conv2d) and m.in_channels == z_dim:
            return m
        if isinstance(m, nn.Linear) and m.in_features == z_dim:
            return m
    raise DirectionError(
        f"SeFa: no ConvTranspose2d / Conv2d / Linear layer taking z_dim={z_dim} inputs found; "
        f"this model's first layer cannot be factorised"
    )


def first_layer_weight(model) -> np.ndarray:
    """The z-consuming weight as [z_dim, outputs] (one column per output unit / channel x kernel position)."""
    m = _first_z_layer(model.module, model.z_dim)
    w = m.weight.detach().cpu().double()
    if isinstance(m, nn.ConvTranspose2d):  # [in=z_dim, out, kh, kw]
        return w.reshape(w.shape[0], -1).numpy()
    return (
        w.reshape(w.shape[0], -1).T.numpy()
        if isinstance(m, nn.Linear)
        else w.permute(1, 0, 2, 3).reshape(w.shape[1], -1).numpy()
    )


AFFINE_MODES = ("official", "all-affines")


def style_affines(model, mode: str = "official") -> list[dict]:
    """The style affines SeFa factorises, each {name, module, ws, ...} (see StyleGANGenerator.style_affines).

    official: the affines of the modulated convolutions plus the last ToRGB only (official SeFa's "all" layers);
    all-affines: every style affine (every ToRGB, and a StyleGAN3 input transform).
    """
    if mode not in AFFINE_MODES:
        raise DirectionError(f"SeFa: affines {mode!r} unknown; use one of {list(AFFINE_MODES)}")
    if not hasattr(model, "style_affines"):
        raise DirectionError(
            f"SeFa: model {model.name!r} exposes no style affines; load it through the StyleGAN "
            f"adapter (mapping/synthesis interface)"
        )
    aff = model.style_affines()
    if not aff:
        raise DirectionError(
            f"SeFa: model {model.name!r} has no style affines (`*.affine` layers with weight "
            f"[C, w_dim={model.w_dim}]) in its synthesis network"
        )
    if mode == "all-affines":
        return list(aff)
    rgb = [a for a in aff if a["torgb"]]
    last = max(rgb, key=lambda a: a["ws"]) if rgb else None
    return [a for a in aff if (a["conv"] and not a["torgb"]) or a is last]


def style_weight(model, layers: Sequence[int], mode: str = "official") -> np.ndarray:
    """Concatenated style-affine weights of the chosen ws layers as [w_dim, sum C].  (mode: see style_affines)"""
    keep = set(int(x) for x in layers)
    cols = [a["module"].weight.detach().cpu().double().T.numpy() for a in style_affines(model, mode) if a["ws"] in keep]
    if not cols:
        raise DirectionError(f"SeFa: no style affines read ws layers {list(layers)} (affines {mode!r}); widen --layers")
    return np.concatenate(cols, 1)


def factorize(weight: np.ndarray, normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvectors of W W^T (rows, unit), eigenvalues, sorted descending.  # [D, M] -> [D, D], [D]"""
    w = np.asarray(weight, np.float64)
    if normalize:
        w = w / (np.linalg.norm(w, axis=0, keepdims=True) + 1e-12)
    vals, vecs = np.linalg.eigh(w @ w.T)
    order = np.argsort(-vals, kind="stable")
    return vecs[:, order].T, vals[order]


class SeFa(DirectionEstimator):
    """Closed-form factorisation. n_components: K directions kept; layers: (start, end) ws range for style
    models (None = all layers, directions then live in w); normalize: unit columns before factorising;
    affines: "official" (conv affines + the last ToRGB, as official SeFa) or "all-affines" (every ToRGB too).
    Attributes: directions_ (DirectionSet, scales 1), eigenvalues_ [K]."""

    method = "sefa"

    def __init__(
        self,
        n_components: int = 20,
        layers: tuple[int, int] | None = None,
        normalize: bool = True,
        affines: str = "official",
    ):
        self.n_components, self.layers, self.normalize, self.affines = n_components, layers, normalize, affines

    def fit(self, model) -> SeFa:
        if self.affines not in AFFINE_MODES:
            raise DirectionError(f"SeFa: affines {self.affines!r} unknown; use one of {list(AFFINE_MODES)}")
        if "w" in model.spaces and hasattr(model.module, "synthesis"):
            s, e = self.layers or (0, model.num_ws)
            if not 0 <= s < e <= model.num_ws:
                raise DirectionError(
                    f"SeFa: layers ({s}, {e}) out of range for num_ws={model.num_ws}; "
                    f"use 0 <= start < end <= {model.num_ws}"
                )
            weight = style_weight(model, range(s, e), self.affines)
            space, lay = ("w", None) if self.layers is None else ("ws", (s, e))
        else:
            if self.layers is not None:
                raise DirectionError("SeFa: layers only apply to style models with a w space; leave it unset")
            weight, space, lay = first_layer_weight(model), "z", None
        vecs, vals = factorize(weight, self.normalize)
        k = min(int(self.n_components), len(vecs))
        self.eigenvalues_ = vals[:k]
        self.weight_ = weight
        style = space != "z"
        info = [
            {"eigenvalue": float(v), "rank": i, **({"affines": self.affines} if style else {})}
            for i, v in enumerate(vals[:k])
        ]
        self.directions_ = DirectionSet(
            [f"sefa{i}" for i in range(k)],
            vecs[:k],
            space,
            self.method,
            model.name,
            model.weights_hash,
            [lay] * k,
            info=info,
            provenance={
                "n_components": k,
                "layers": list(lay) if lay else None,
                "normalize": self.normalize,
                "affines": self.affines if style else None,
            },
        )
        return self
