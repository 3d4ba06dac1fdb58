"""Generator protocol shared by every model adapter.

A `Generator` wraps a torch module and exposes one vocabulary: latent spaces `z`, `w`, `ws` (W+),
images `img` [N, 3, H, W] in [-1, 1], named `site`s (intermediate layers) for feature reads and channel
interventions. All hooks are scoped (context managers) and removed on exit, also on error.
"""
from __future__ import annotations

import hashlib
from contextlib import contextmanager, ExitStack
from typing import Callable, Iterator, Mapping, Sequence

import torch

from ..errors import ProbeError
from torch import nn

SPACES = ("z", "w", "ws")


class ModelError(ProbeError):
    """A model could not be loaded or used as asked; the message names what to fix."""


def weights_hash(module: nn.Module) -> str:
    """sha256 (first 16 hex) over parameter and buffer names, shapes and bytes."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _first(o):
    return o[0] if isinstance(o, tuple) else o


class Generator:
    """Base adapter. Subclasses set the attributes below and implement `_render` (and `_map` with w)."""

    name: str = "generator"
    z_dim: int
    w_dim: int | None = None
    num_ws: int | None = None
    resolution: int
    spaces: tuple[str, ...] = ("z",)
    module: nn.Module
    site_modules: Mapping[str, nn.Module]

    # ---- identity -------------------------------------------------------------------------
    @property
    def sites(self) -> tuple[str, ...]:
        return tuple(self.site_modules)

    @property
    def device(self) -> torch.device:
        p = next(self.module.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    @property
    def weights_hash(self) -> str:
        if not hasattr(self, "_hash"):
            self._hash = weights_hash(self.module)
        return self._hash

    def dim(self, space: str) -> int:
        """Flat dimension of a latent in `space` (ws counts num_ws * w_dim)."""
        self.check_space(space)
        return {"z": self.z_dim, "w": self.w_dim, "ws": (self.num_ws or 0) * (self.w_dim or 0)}[space]

    def shape(self, space: str) -> tuple[int, ...]:
        """Per-sample latent shape: (z_dim,), (w_dim,) or (num_ws, w_dim)."""
        self.check_space(space)
        return {"z": (self.z_dim,), "w": (self.w_dim,), "ws": (self.num_ws, self.w_dim)}[space]

    def describe(self) -> dict:
        return {"name": self.name, "z_dim": self.z_dim, "w_dim": self.w_dim, "num_ws": self.num_ws,
                "resolution": self.resolution, "spaces": list(self.spaces), "sites": list(self.sites),
                "weights_hash": self.weights_hash}

    # ---- checks ---------------------------------------------------------------------------
    def check_space(self, space: str) -> None:
        if space not in self.spaces:
            raise ModelError(f"space {space!r} is not available for model {self.name!r}; "
                             f"use one of {list(self.spaces)}")

    def check_site(self, site: str) -> nn.Module:
        if site not in self.site_modules:
            raise ModelError(f"site {site!r} does not exist in model {self.name!r}; "
                             f"use one of {list(self.site_modules)}")
        return self.site_modules[site]

    def check_latent(self, latent: torch.Tensor, space: str) -> torch.Tensor:
        self.check_space(space)
        want = self.shape(space)
        latent = torch.as_tensor(latent, dtype=torch.float32)
        if latent.dim() == len(want):
            latent = latent.unsqueeze(0)
        if tuple(latent.shape[1:]) != want:
            raise ModelError(f"latent for space {space!r} must have shape [N, {', '.join(map(str, want))}], "
                             f"got {list(latent.shape)}")
        if not torch.isfinite(latent).all():
            raise ModelError(f"latent for space {space!r} contains NaN or inf values; pass finite numbers")
        return latent.to(self.device)

    # ---- sampling and spaces --------------------------------------------------------------
    def sample(self, n: int, seed: int) -> torch.Tensor:
        """Deterministic z ~ N(0, I) for a seed.  # [n, z_dim]"""
        if int(n) < 0:
            raise ModelError(f"sample: n must be >= 0, got {n}")
        g = torch.Generator().manual_seed(int(seed))
        return torch.randn(n, self.z_dim, generator=g).to(self.device)

    def to_space(self, latent: torch.Tensor, src: str, dst: str) -> torch.Tensor:
        """Map z -> w -> ws (only forwards; w/ws cannot go back to z).  # [N, *shape(dst)]"""
        latent = self.check_latent(latent, src)
        self.check_space(dst)
        order = {"z": 0, "w": 1, "ws": 2}
        if order[dst] < order[src]:
            raise ModelError(f"cannot map from {src!r} back to {dst!r}: the mapping network is not invertible; "
                             f"invert an image instead (probe invert)")
        if src == dst:
            return latent
        if src == "z":
            w = self._map(latent)
            return w if dst == "w" else w.unsqueeze(1).repeat(1, self.num_ws, 1)
        return latent.unsqueeze(1).repeat(1, self.num_ws, 1)  # w -> ws

    def _map(self, z: torch.Tensor) -> torch.Tensor:  # [N, w_dim]
        raise ModelError(f"model {self.name!r} has no mapping network (spaces: {list(self.spaces)})")

    def _render(self, latent: torch.Tensor, space: str) -> torch.Tensor:
        raise NotImplementedError

    # ---- rendering ------------------------------------------------------------------------
    def synthesize(self, latent: torch.Tensor, space: str = "z") -> torch.Tensor:
        """Render images.  # latent [N, *shape(space)] -> img [N, 3, H, W] in [-1, 1]"""
        return self._render(self.check_latent(latent, space), space).clamp(-1, 1)

    def forward(self, latent: torch.Tensor, space: str = "z", sites: Sequence[str] = ()):
        """Render and capture site features in one pass (gradients flow).  # -> img, {site: [N, C, h, w]}"""
        with self.capture(sites) as feats:
            img = self.synthesize(latent, space)
        return img, dict(feats)

    @torch.no_grad()
    def features(self, latent: torch.Tensor, space: str = "z", sites: Sequence[str] = ()) -> dict:
        """Site activations without gradients.  # {site: [N, C, h, w]}"""
        return self.forward(latent, space, sites)[1]

    # ---- scoped hooks ---------------------------------------------------------------------
    @contextmanager
    def capture(self, sites: Sequence[str]) -> Iterator[dict]:
        """Record the outputs of `sites` during the block; hooks removed on exit."""
        out: dict[str, torch.Tensor] = {}
        with ExitStack() as stack:
            for s in sites:
                mod = self.check_site(s)
                h = mod.register_forward_hook(lambda _m, _i, o, s=s: out.__setitem__(s, _first(o)))
                stack.callback(h.remove)
            yield out

    @contextmanager
    def edit(self, site: str, fn: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
        """Replace a site's output by fn(output) during the block; hook removed on exit."""
        def hook(_m, _i, o):  # NVlabs-style blocks return (x, img): edit the features x
            return (fn(o[0]), *o[1:]) if isinstance(o, tuple) else fn(o)
        h = self.check_site(site).register_forward_hook(hook)
        try:
            yield
        finally:
            h.remove()

    def check_offsets(self, offsets) -> dict[str, torch.Tensor]:
        """Validate feature offsets {site: [1, C, h, w]} against the model's sites and feature shapes."""
        out = {}
        for site, delta in (offsets or {}).items():
            self.check_site(site)
            d = torch.as_tensor(delta, dtype=torch.float32)
            want = tuple(self.features(self.sample(1, 0), "z", [site])[site].shape[1:])
            if d.dim() == len(want):
                d = d[None]
            if tuple(d.shape[1:]) != want or d.shape[0] != 1:
                raise ModelError(f"offset for site {site!r} must have shape [1, {', '.join(map(str, want))}], "
                                 f"got {list(d.shape)}")
            if not torch.isfinite(d).all():
                raise ModelError(f"offset for site {site!r} contains NaN or inf values; pass finite numbers")
            out[site] = d.to(self.device)
        return out

    @contextmanager
    def offsets(self, offsets: Mapping[str, torch.Tensor] | None) -> Iterator[None]:
        """Add feature offsets {site: [1 | N, C, h, w]} to site outputs during the block (scoped hooks).

        An offset is what an extended-latent inversion finds besides the latent (`probe.edit.invert`); None or {}
        renders the plain model.
        """
        with ExitStack() as stack:
            for site, delta in (offsets or {}).items():
                stack.enter_context(self.edit(site, lambda o, d=delta: o + d.to(o)))
            yield

    def channels(self, site: str) -> int:
        """Number of feature channels at a site."""
        if not hasattr(self, "_channels"):
            self._channels = {}
        if site not in self._channels:
            self.check_site(site)
            feats = self.features(self.sample(1, 0), "z", [site])
            self._channels[site] = int(feats[site].shape[1])
        return self._channels[site]
