"""Generator protocol shared by every model adapter.

A `Generator` wraps a torch module and exposes one vocabulary: latent spaces `z`, `w`, `ws` (W+),
images `img` [N, 3, H, W] in [-1, 1], named `site`s (intermediate layers) for feature reads and channel
interventions. All hooks are scoped (context managers) and removed on exit, also on error.
"""

from __future__ import annotations

import copy
import hashlib
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from ..errors import ProbeError

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


def check_image_shape(img: torch.Tensor, name: str) -> int:
    """The resolution of a square img [N, 3, R, R]; ModelError naming H x W otherwise."""
    if img.dim() != 4 or img.shape[1] != 3:
        raise ModelError(f"model {name!r} must return img [N, 3, H, W]; it returned {list(img.shape)}")
    if img.shape[-2] != img.shape[-1]:
        raise ModelError(
            f"model {name!r} renders {img.shape[-2]} x {img.shape[-1]} (H x W) images; probe needs "
            f"square images: crop or pad them to square in your factory"
        )
    return int(img.shape[-1])


def check_output_range(img: torch.Tensor, name: str) -> None:
    """ModelError when raw img [N, 3, H, W] looks like [0, 1]: no value below -0.01, none above 1.01, some above
    0.5 and a mean above 0.2 (an output that never leaves [0, 0.5] is not told apart and passes)."""
    check_image_shape(img, name)
    x = img.detach().float()
    if not torch.isfinite(x).all():
        raise ModelError(f"model {name!r} renders NaN or inf values for seeded samples; check its weights")
    lo, hi, mean = float(x.min()), float(x.max()), float(x.mean())
    if lo >= -0.01 and 0.5 < hi <= 1.01 and mean > 0.2:
        raise ModelError(
            f"model {name!r} outputs images in [0, 1]; probe expects [-1, 1]: return img * 2 - 1 from your factory"
        )


DRAG_EVAL_PROTOCOLS = ("landmarks", "centres")


@dataclass(frozen=True)
class ModelDefaults:
    """What a model says about itself, read by commands for whatever the user leaves unset (a zoo entry carries
    its own; models loaded from a file or pickle get these generic ones).

    measures: measures a command scores when none are named; drag: {method: {param: value}} for DragGAN /
    FreeDrag parameters left as None (site, layers, r1, r2, ...); align_faces: photos are aligned to the face
    template before inversion; offset_site: the site an extended inversion fits by default (None: the latent
    only); drag_eval: the `probe drag-eval` protocol, "landmarks" (face landmarks, `probe.edit.evaluate`) or
    "centres" (object centres, `probe.edit.sprites_eval`); centre: the (x, y) measures that locate the object in
    the centres protocol (their [lo, hi] range spans the image width); dplase: DPLaSE keyword arguments the
    direction pipeline (`probe discover`, `probe gt-score`) uses on this model unless the caller sets them.
    """

    measures: tuple[str, ...] = ("image",)
    drag: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    align_faces: bool = False
    offset_site: str | None = None
    drag_eval: str = "landmarks"
    centre: tuple[str, str] = ("centroid_x", "centroid_y")
    dplase: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.drag_eval not in DRAG_EVAL_PROTOCOLS:
            raise ModelError(f"drag_eval: protocol {self.drag_eval!r} unknown; use one of {list(DRAG_EVAL_PROTOCOLS)}")
        object.__setattr__(self, "measures", tuple(self.measures))
        object.__setattr__(self, "centre", tuple(self.centre))
        object.__setattr__(
            self, "drag", MappingProxyType({m: MappingProxyType(dict(kw)) for m, kw in dict(self.drag).items()})
        )
        object.__setattr__(self, "dplase", MappingProxyType(dict(self.dplase)))

    def __copy__(self):  # immutable: copies of a Generator share it
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        return (
            ModelDefaults,
            (
                self.measures,
                {m: dict(kw) for m, kw in self.drag.items()},
                self.align_faces,
                self.offset_site,
                self.drag_eval,
                self.centre,
                dict(self.dplase),
            ),
        )

    def drag_params(self, method: str) -> Mapping[str, Any]:
        """The tuned parameters of a drag method on this model ({} when none)."""
        return self.drag.get(method, MappingProxyType({}))


GENERIC = ModelDefaults()


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
    defaults: ModelDefaults = GENERIC  # what commands use when the user names nothing
    info: dict = {}  # provenance recorded in describe() (e.g. pickle sha256)
    _range_checked: bool = False
    _hooks_off: bool = False  # site hooks pass through (the range check's own render)
    _origin = None  # weakref to the cached model this one is a fresh copy of

    # ---- identity -------------------------------------------------------------------------
    @property
    def default_measures(self) -> tuple[str, ...]:
        """Measures a command uses when none are named (`defaults.measures`)."""
        return self.defaults.measures

    @property
    def sites(self) -> tuple[str, ...]:
        return tuple(self.site_modules)

    @property
    def device(self) -> torch.device:
        p = next(self.module.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def to(self, device) -> Generator:
        """This model on `device` (auto | cpu | cuda | cuda:N, or a torch.device): itself when already there, else a
        copy whose module, sites and tensors live on the device (the original stays where it was)."""
        from ..devices import resolve_device

        dev = resolve_device(device)
        return self if dev == self.device else self._moved(dev)

    def fresh(self) -> Generator:
        """A copy with its own module objects whose parameters and buffers share this one's storage: hooks,
        options, `requires_grad` flags and `.module.to(...)` on the copy leave this one alone; the weights are not
        copied (an in-place change of a weight reaches both: change weights on `clone()`). Parameters are frozen
        (requires_grad False). TorchScript modules hold their tensors in C++ and are shared as they are."""
        if isinstance(self.module, torch.jit.ScriptModule):
            g = copy.copy(self)
        else:
            memo: dict = {}
            for t in (*self.module.parameters(), *self.module.buffers()):
                if id(t) not in memo:
                    memo[id(t)] = nn.Parameter(t.detach(), requires_grad=False) if isinstance(t, nn.Parameter) else t
            try:
                g = copy.deepcopy(self, memo)
            except Exception:  # noqa: BLE001 - a user module that refuses copying is shared as it is
                g = copy.copy(self)
        g._origin = weakref.ref(self)
        return g

    def __getstate__(self):  # copies and pickles leave out the link to the cached original (a weakref)
        state = dict(self.__dict__)
        state.pop("_origin", None)
        return state

    def clone(self) -> Generator:
        """An independent copy: own module and own weights (for callers that train or modify it)."""
        return self._copy("clone it", "build a new one in your factory instead")

    def _copy(self, why: str, fix: str) -> Generator:
        try:
            g = copy.deepcopy(self)
        except Exception as e:  # noqa: BLE001 - user modules may refuse copying
            raise ModelError(
                f"model {self.name!r} cannot be copied to {why} ({type(e).__name__}: {e}); {fix}"
            ) from None
        g._origin = None
        g._range_checked = self._checked()
        return g

    def _moved(self, dev: torch.device) -> Generator:
        g = self._copy(f"move it to {dev}", "build it on that device in your factory or use --device cpu")
        g.module.to(dev)
        for k, v in vars(g).items():
            if isinstance(v, torch.Tensor):
                setattr(g, k, v.to(dev))
        return g

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

    def options(self) -> dict:
        """Rendering settings chosen at load (truncation_psi, noise_mode, class); {} for plain z -> img models."""
        return {}

    def with_options(
        self, truncation_psi: float = 1.0, noise_mode: str = "const", class_idx: int | None = None, c=None
    ) -> Generator:
        """This model with rendering options; a plain z -> img model takes only the defaults."""
        for option, v, default in (
            ("truncation_psi", truncation_psi, 1.0),
            ("noise_mode", noise_mode, "const"),
            ("class_idx", class_idx, None),
            ("c", c, None),
        ):
            if v != default:
                raise ModelError(
                    f"{option}: model {self.name!r} is a plain z -> img network without a mapping "
                    f"network, noise inputs or classes; remove {option}"
                )
        return self

    def describe(self) -> dict:
        """Identity and provenance (recorded as a study's `model_info`); `default_measures` only when the model
        declares its own defaults (a zoo entry, or a factory setting them), not the generic ones."""
        own = {"default_measures": list(self.defaults.measures)} if self.defaults != GENERIC else {}
        return {
            "name": self.name,
            "z_dim": self.z_dim,
            "w_dim": self.w_dim,
            "num_ws": self.num_ws,
            "resolution": self.resolution,
            "spaces": list(self.spaces),
            "sites": list(self.sites),
            "weights_hash": self.weights_hash,
            **own,
            **self.options(),
            **dict(self.info),
        }

    # ---- checks ---------------------------------------------------------------------------
    def check_space(self, space: str) -> None:
        if space not in self.spaces:
            raise ModelError(
                f"space {space!r} is not available for model {self.name!r}; use one of {list(self.spaces)}"
            )

    def check_site(self, site: str) -> nn.Module:
        if site not in self.site_modules:
            raise ModelError(
                f"site {site!r} does not exist in model {self.name!r}; use one of {list(self.site_modules)}"
            )
        return self.site_modules[site]

    def check_latent(self, latent: torch.Tensor, space: str) -> torch.Tensor:
        self.check_space(space)
        want = self.shape(space)
        latent = torch.as_tensor(latent, dtype=torch.float32)
        if latent.dim() == len(want):
            latent = latent.unsqueeze(0)
        if tuple(latent.shape[1:]) != want:
            raise ModelError(
                f"latent for space {space!r} must have shape [N, {', '.join(map(str, want))}], got {list(latent.shape)}"
            )
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
            raise ModelError(
                f"cannot map from {src!r} back to {dst!r}: the mapping network is not invertible; "
                f"invert an image instead (probe invert)"
            )
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
        """Render images.  # latent [N, *shape(space)] -> img [N, 3, H, W] in [-1, 1]

        The first call also checks the output range on seeded samples (ModelError for [0, 1] outputs).
        """
        latent = self.check_latent(latent, space)
        if not self._checked():
            self.check_range()
            origin = self._origin() if self._origin is not None else None
            if origin is not None:  # fresh copies of one cached model check its output range once
                origin._range_checked = True
        return self._render(latent, space).clamp(-1, 1)

    def _checked(self) -> bool:
        if not self._range_checked and self._origin is not None:
            origin = self._origin()
            self._range_checked = origin is not None and origin._range_checked
        return self._range_checked

    def check_range(self, n: int | None = None, seed: int = 0) -> None:
        """Refuse a model whose raw output looks like [0, 1] images (probe measures expect [-1, 1]).

        Renders n seeded samples (default 8 up to 128 px, fewer above, at least 2: about 8 x 128^2 pixels)."""
        if n is None:
            n = max(2, min(8, (8 * 128 * 128) // max(1, int(getattr(self, "resolution", 128))) ** 2))
        self._range_checked, self._hooks_off = True, True
        try:
            with torch.no_grad():
                img = self._render(self.sample(n, seed), "z")
        finally:
            self._hooks_off = False
        check_output_range(img, self.name)

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
                h = mod.register_forward_hook(
                    lambda _m, _i, o, s=s: None if self._hooks_off else out.__setitem__(s, _first(o))
                )
                stack.callback(h.remove)
            yield out

    @contextmanager
    def edit(self, site: str, fn: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
        """Replace a site's output by fn(output) during the block; hook removed on exit."""

        def hook(_m, _i, o):  # NVlabs-style blocks return (x, img): edit the features x
            if self._hooks_off:
                return None
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
                raise ModelError(
                    f"offset for site {site!r} must have shape [1, {', '.join(map(str, want))}], got {list(d.shape)}"
                )
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
