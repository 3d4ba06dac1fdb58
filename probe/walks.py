"""Latent walks: how a target moves a latent by a step `alpha`.

Walk kinds
- `linear`      latent + alpha * scale * d
- `isodensity`  like linear, then rescaled so the density is unchanged: z keeps ||z|| (the Gaussian prior's
                log p(z) depends only on the norm: the DP-LaSE rule); w / ws keep their Mahalanobis distance to
                the fitted GaussianDensity mean (per layer for ws)
- `layers`      linear offset of the ws layers [start, end) only
- `variable`    one coordinate: shift (latent[i] + alpha * scale) or set (latent[i] = alpha)
- `channel`     scale (x * (1 + alpha * scale)) or shift (x + alpha * scale) chosen channels of a site; the latent
                is unchanged and the edit runs in `probe.engine` through a scoped `Generator.edit` hook
- `distance`    InterFaceGAN's edit: the latent is placed at signed distance alpha * scale from the hyperplane
                n.x + offset = 0 (n the unit direction, offset its DirectionSet info["offset"], 0 when absent:
                the hyperplane through the origin), x' = x - (n.x + offset) n + alpha * scale * n, so that
                n.x' + offset = alpha * scale. In ws a [w_dim] normal places every layer of the range (all layers,
                or the direction's layers) on its own; a [num_ws * w_dim] normal places the flattened code.

alpha = 0 leaves every walk except `variable` with mode `set` and `distance` (which moves the latent onto the
hyperplane) at its base latent and image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from .errors import ProbeError

WALKS = ("linear", "isodensity", "layers", "variable", "channel", "distance")
KINDS = ("variable", "direction", "channel")


class WalkError(ProbeError):
    """A walk or target was asked for wrongly; the message names the fix."""


@dataclass(eq=False)
class Target:
    """One thing to intervene on. `name` is the table string: `z[17]`, `random/d0`, `b2:c41`."""

    kind: str
    name: str
    walk: str
    vector: np.ndarray | None = None  # [D] flat in the space, or [w_dim] broadcast over ws layers
    index: int | None = None  # variable: flat coordinate
    site: str | None = None  # channel: site name
    channels: tuple[int, ...] | None = None  # channel: channel indices
    layers: tuple[int, int] | None = None  # layers: ws layer range, end exclusive
    mode: str = "shift"  # shift | set | scale
    scale: float = 1.0  # unit step
    method: str = ""  # table column `method`: variable | channel | DirectionSet.method
    source: str | None = None  # direction: stem of the DirectionSet file in the study's directions/
    offset: float = 0.0  # distance: b of the hyperplane n.x + b = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise WalkError(f"target kind {self.kind!r} unknown; use one of {list(KINDS)}")
        if self.walk not in WALKS:
            raise WalkError(f"walk {self.walk!r} unknown; use one of {list(WALKS)}")
        if self.vector is not None:
            self.vector = np.asarray(self.vector, dtype=np.float32).reshape(-1)
        if self.channels is not None:
            self.channels = tuple(int(c) for c in self.channels)
        if self.layers is not None:
            self.layers = (int(self.layers[0]), int(self.layers[1]))
        if not self.method:
            self.method = {"variable": "variable", "channel": "channel"}.get(self.kind, "direction")
        self.offset = float(self.offset)
        if self.walk == "distance" and self.kind != "direction":
            raise WalkError(f"walk 'distance' for {self.name!r} needs a direction target; use it on directions")

    @property
    def identity_at_zero(self) -> bool:
        """Whether alpha = 0 leaves the latent and image unchanged (all walks but variable `set` and distance)."""
        return not ((self.walk == "variable" and self.mode == "set") or self.walk == "distance")

    def __eq__(self, other) -> bool:
        if not isinstance(other, Target):
            return NotImplemented
        same_vec = (self.vector is None and other.vector is None) or (
            self.vector is not None and other.vector is not None and np.array_equal(self.vector, other.vector)
        )
        return same_vec and self.to_dict() == other.to_dict()

    def to_dict(self) -> dict:
        """JSON-able record without the vector (vectors live in the study's directions/); `offset` only for
        the distance walk."""
        d = {
            "kind": self.kind,
            "name": self.name,
            "walk": self.walk,
            "index": self.index,
            "site": self.site,
            "channels": list(self.channels) if self.channels is not None else None,
            "layers": list(self.layers) if self.layers is not None else None,
            "mode": self.mode,
            "scale": self.scale,
            "method": self.method,
            "source": self.source,
        }
        if self.walk == "distance":
            d["offset"] = self.offset
        return d

    @classmethod
    def from_dict(cls, d: dict, vector: np.ndarray | None = None) -> Target:
        return cls(
            d["kind"],
            d["name"],
            d["walk"],
            vector,
            d.get("index"),
            d.get("site"),
            d.get("channels"),
            d.get("layers"),
            d.get("mode", "shift"),
            float(d.get("scale", 1.0)),
            d.get("method", ""),
            d.get("source"),
            float(d.get("offset", 0.0)),
        )


def variable(i: int, space: str = "z", mode: str = "shift", scale: float = 1.0) -> Target:
    """Per-variable target `z[i]` (shift or set one flat coordinate)."""
    return Target("variable", f"{space}[{int(i)}]", "variable", index=int(i), mode=mode, scale=scale)


def channel(site: str, channels, mode: str = "scale", scale: float = 1.0) -> Target:
    """Channel target `b2:c41` (one channel) or `b2:c1+c5` (several edited together)."""
    chs = tuple(int(c) for c in np.atleast_1d(channels))
    return Target(
        "channel",
        f"{site}:" + "+".join(f"c{c}" for c in chs),
        "channel",
        site=site,
        channels=chs,
        mode=mode,
        scale=scale,
    )


def direction(ds, i: int, walk: str = "linear", source: str | None = None) -> Target:
    """Target for direction i of a DirectionSet, its layer range and unit step.

    The table name is `<source>/<name>`, source being the set's file stem (default its method), so two sets of one
    method (`sefa.npz`, `sefa_late.npz`) walk side by side; the `method` column keeps the method. walk
    "distance" takes the hyperplane's offset from ds.info[i]["offset"] (InterFaceGAN records it; 0 otherwise).
    """
    layers = ds.layers[i]
    if walk == "linear" and layers is not None and ds.space == "ws":
        walk = "layers"
    source = source or ds.method
    offset = float((ds.info[i] if i < len(ds.info) else {}).get("offset", 0.0)) if walk == "distance" else 0.0
    return Target(
        "direction",
        f"{source}/{ds.names[i]}",
        walk,
        vector=ds.vectors[i],
        layers=layers,
        scale=float(ds.scales[i]),
        method=ds.method,
        source=source,
        offset=offset,
    )


_CHANNEL = re.compile(r"^(?P<site>[^:\s]+):(?P<chs>c\d+(\+c\d+)*)$")
_VARIABLE = re.compile(r"^(?P<space>z|w|ws)\[(?P<i>\d+)\]$")


def parse_name(name: str) -> dict:
    """Split a table target string into its parts: kind plus index / site + channels / set (file stem) + name.

    `method` holds the set's stem, which is its method unless the set file was named otherwise."""
    if m := _VARIABLE.match(name):
        return {"kind": "variable", "space": m["space"], "index": int(m["i"])}
    if m := _CHANNEL.match(name):
        return {"kind": "channel", "site": m["site"], "channels": [int(c[1:]) for c in m["chs"].split("+")]}
    if "/" in name:
        method, _, dname = name.partition("/")
        return {"kind": "direction", "method": method, "name": dname}
    raise WalkError(f"target {name!r} is not a table target string; use z[17], method/name or site:c41")


# ---- latent walks --------------------------------------------------------------------------------
def _offset(target: Target, shape: tuple[int, ...]) -> torch.Tensor:
    """Unit offset in the latent's per-sample shape (vector broadcast over ws layers; layer range applied)."""
    if target.vector is None:
        raise WalkError(f"target {target.name!r} ({target.walk}) needs a direction vector")
    v = torch.from_numpy(target.vector).float()
    flat = int(np.prod(shape))
    if len(shape) == 2 and v.numel() == shape[1]:
        d = v.expand(shape).clone()
    elif v.numel() == flat:
        d = v.reshape(shape).clone()
    else:
        raise WalkError(
            f"direction {target.name!r} has dimension {v.numel()}, but the latent has shape "
            f"{list(shape)}; use directions fitted in this space"
        )
    if target.walk == "layers":
        if len(shape) != 2:
            raise WalkError(f"walk 'layers' for {target.name!r} needs space 'ws'; use walk 'linear' in z or w")
        s, e = target.layers or (0, shape[0])
        if not 0 <= s < e <= shape[0]:
            raise WalkError(
                f"layers {[s, e]} of {target.name!r} out of range for num_ws={shape[0]}; "
                f"use 0 <= start < end <= {shape[0]}"
            )
        mask = torch.zeros(shape[0], 1)
        mask[s:e] = 1
        d = d * mask
    return d


def signed_distance(latent, target: Target) -> torch.Tensor:
    """n.x + offset of each row (each ws layer of the target's range for a [w_dim] normal), n the unit direction.

    latent [R, D] -> [R]; [R, L, D] with a [D] normal -> [R, L'] (L' layers of the range); [R, L, D] with an
    [L * D] normal -> [R]."""
    latent = torch.as_tensor(latent, dtype=torch.float32)
    n, rows = _normal(target, tuple(latent.shape[1:]))
    x = latent[:, rows] if rows is not None else latent.reshape(len(latent), -1)
    return x.double() @ n.double() + target.offset


def _normal(target: Target, shape: tuple[int, ...]):
    """(unit normal as a float32 tensor, ws layer slice or None) for the distance walk of one latent shape."""
    if target.vector is None:
        raise WalkError(f"target {target.name!r} (distance) needs a direction vector")
    v = torch.from_numpy(target.vector).float()
    norm = float(v.norm())
    if not np.isfinite(norm) or norm < 1e-12:
        raise WalkError(f"direction {target.name!r} has zero length; the distance walk needs a hyperplane normal")
    v = v / norm
    if len(shape) == 2 and v.numel() == shape[1]:
        s, e = target.layers or (0, shape[0])
        if not 0 <= s < e <= shape[0]:
            raise WalkError(
                f"layers {[s, e]} of {target.name!r} out of range for num_ws={shape[0]}; "
                f"use 0 <= start < end <= {shape[0]}"
            )
        return v, slice(s, e)
    if v.numel() != int(np.prod(shape)):
        raise WalkError(
            f"direction {target.name!r} has dimension {v.numel()}, but the latent has shape "
            f"{list(shape)}; use directions fitted in this space"
        )
    return v, None


def _place(latent: torch.Tensor, target: Target, dist: torch.Tensor) -> torch.Tensor:
    """Rows moved along the unit normal n to signed distance dist [R]: x - (n.x + offset) n + dist n."""
    n, rows = _normal(target, tuple(latent.shape[1:]))
    n, dist = n.double(), dist.double()  # in float64, rounded once to the latent's float32
    if rows is None:
        flat = latent.reshape(len(latent), -1).double()
        shift = dist - (flat @ n + target.offset)
        return (flat + shift[:, None] * n).float().reshape(latent.shape)
    out = latent.clone()
    x = latent[:, rows].double()
    shift = dist[:, None] - (x @ n + target.offset)  # [R, L']
    out[:, rows] = (x + shift[..., None] * n).float()
    return out


def apply_rows(latent: torch.Tensor, space: str, target: Target, alpha: torch.Tensor, density=None) -> torch.Tensor:
    """Walk each row by its own alpha.  # latent [R, *shape], alpha [R] -> [R, *shape]"""
    latent = torch.as_tensor(latent, dtype=torch.float32)
    a = torch.as_tensor(alpha, dtype=torch.float32).reshape(-1, *([1] * (latent.dim() - 1)))
    if len(a) != len(latent):
        raise WalkError(f"apply_rows: {len(latent)} latent rows but {len(a)} alphas")
    w = target.walk
    if w == "channel":
        return latent.clone()
    if w == "variable":
        flat = latent.reshape(len(latent), -1).clone()
        i = target.index
        if i is None or not 0 <= i < flat.shape[1]:
            raise WalkError(f"variable {target.name!r}: index {i} out of range; use 0..{flat.shape[1] - 1}")
        col = a.reshape(-1)
        flat[:, i] = col if target.mode == "set" else flat[:, i] + col * target.scale
        return flat.reshape(latent.shape)
    if w == "distance":
        return _place(latent, target, a.reshape(-1) * target.scale)
    d = _offset(target, tuple(latent.shape[1:]))
    out = latent + a * target.scale * d
    if w != "isodensity":
        return out
    if space == "z":  # keep ||z||: log N(z; 0, I) unchanged
        n0 = latent.reshape(len(latent), -1).norm(dim=1)
        n1 = out.reshape(len(out), -1).norm(dim=1).clamp_min(1e-12)
        return out * (n0 / n1).reshape(a.shape)
    if density is None:
        raise WalkError(f"isodensity walk in space {space!r} needs the study's fitted GaussianDensity")
    mean = density.mean_.float()
    layered = latent.dim() == 3
    x0 = latent.reshape(-1, latent.shape[-1])
    x1 = out.reshape(-1, out.shape[-1])
    m0 = density.mahalanobis(x0).float()
    m1 = density.mahalanobis(x1).float().clamp_min(1e-12)
    x = mean + (x1 - mean) * (m0 / m1)[:, None]
    return x.reshape(out.shape) if layered else x


def apply(latent: torch.Tensor, space: str, target: Target, alphas, density=None) -> torch.Tensor:
    """All alphas for all samples, sample-major (row n * A + a).  # [N, *shape], alphas [A] -> [N * A, *shape]"""
    latent = torch.as_tensor(latent, dtype=torch.float32)
    alphas = torch.as_tensor(np.asarray(alphas, dtype=np.float32))
    n, na = len(latent), len(alphas)
    return apply_rows(latent.repeat_interleave(na, 0), space, target, alphas.repeat(n), density)


def channel_fn(target: Target, alpha: torch.Tensor):
    """Feature edit for a channel target with one alpha per row.  # x [R, C, h, w] -> [R, C, h, w]"""
    a = torch.as_tensor(alpha, dtype=torch.float32).reshape(-1, 1, 1, 1) * target.scale
    idx = list(target.channels or ())

    def fn(x: torch.Tensor) -> torch.Tensor:
        if len(x) != len(a):
            raise WalkError(f"channel edit at {target.site!r}: batch {len(x)} but {len(a)} alphas")
        if max(idx) >= x.shape[1]:
            raise WalkError(
                f"channel {max(idx)} out of range for site {target.site!r} with {x.shape[1]} channels; "
                f"use 0..{x.shape[1] - 1}"
            )
        x = x.clone()
        sel = x[:, idx]
        x[:, idx] = sel * (1 + a.to(x)) if target.mode == "scale" else sel + a.to(x)
        return x

    return fn
