"""Adapter for the NVlabs StyleGAN2-ADA / StyleGAN3 interface, without knowing the network class.

Duck-typed: the network needs `mapping(z, c, truncation_psi=...) -> ws [N, num_ws, w_dim]`,
`synthesis(ws, noise_mode=...) -> img`, and attributes `z_dim`, `w_dim`, `num_ws` (and `c_dim`, default 0).
Sites are the children of `synthesis` (NVlabs names such as `b4`, `b8`, `L3_52_1024`); a block that makes its own
ToRGB output (`torgb` child) is read and edited at the features that ToRGB reads (its last conv), so an edit at
the last block changes the image too.

Rendering options (fixed per adapter, see `with_options`): `truncation_psi` (1 = none), `noise_mode`
(`const` default: deterministic; `random`: per-pixel noise drawn from a generator seeded by the batch's latents,
so the same batch renders the same images; `none`), and the class of a conditional network (`class_idx` or a
raw `c` vector of length c_dim).
"""

from __future__ import annotations

import copy
import inspect
import math
import zlib

import numpy as np
import torch
from torch import nn

from .base import Generator, ModelError, check_image_shape

_REQUIRED = ("mapping", "synthesis", "z_dim", "w_dim", "num_ws")
NOISE_MODES = ("const", "random", "none")
MAX_PSI = 2.0


def _site_module(block: nn.Module) -> nn.Module:
    """The module whose output holds a block's features: the last conv before the block's own ToRGB."""
    if isinstance(getattr(block, "torgb", None), nn.Module):
        convs = [n for n, _ in block.named_children() if n.startswith("conv")]
        if convs:
            return getattr(block, sorted(convs)[-1])
    return block


def check_options(
    name: str, c_dim: int, truncation_psi: float = 1.0, noise_mode: str = "const", class_idx: int | None = None, c=None
) -> tuple[float, str, int | None, tuple[float, ...] | None]:
    """Validate rendering options for a model with `c_dim` classes; ModelError names the field and the fix."""
    try:
        psi = float(truncation_psi)
    except (TypeError, ValueError):
        raise ModelError(f"truncation_psi: expected a number, got {truncation_psi!r}") from None
    if not math.isfinite(psi) or not 0 <= psi <= MAX_PSI:
        raise ModelError(
            f"truncation_psi: {truncation_psi!r} is out of range; use a number in [0, {MAX_PSI:g}] (1 = no truncation)"
        )
    if noise_mode not in NOISE_MODES:
        raise ModelError(f"noise_mode: {noise_mode!r} unknown; use one of {list(NOISE_MODES)}")
    if class_idx is not None and c is not None:
        raise ModelError("class_idx and c both given; name the class once (class_idx = N or c = [...])")
    if c_dim == 0 and (class_idx is not None or c is not None):
        field = "class_idx / --class" if class_idx is not None else "c"
        raise ModelError(f"model {name!r} is not conditional (c_dim=0); remove {field}")
    if c_dim > 0 and class_idx is None and c is None:
        raise ModelError(
            f"model {name!r} is conditional (c_dim={c_dim}); pick a class with class_idx = N (spec) or --class N"
        )
    if class_idx is not None:
        if (
            isinstance(class_idx, bool)
            or not isinstance(class_idx, (int, np.integer))
            or not 0 <= int(class_idx) < c_dim
        ):
            raise ModelError(
                f"class_idx: {class_idx!r} out of range for model {name!r} with c_dim={c_dim}; use 0..{c_dim - 1}"
            )
        class_idx = int(class_idx)
    if c is not None:
        try:
            c = tuple(float(x) for x in c)
        except (TypeError, ValueError):
            raise ModelError(f"c: expected a list of {c_dim} numbers, got {c!r}") from None
        if len(c) != c_dim or not all(math.isfinite(x) for x in c):
            raise ModelError(f"c: model {name!r} takes c of length {c_dim} with finite numbers; got {len(c)} values")
    return psi, noise_mode, class_idx, c


class StyleGANGenerator(Generator):
    spaces = ("z", "w", "ws")

    def __init__(
        self,
        module: nn.Module,
        *,
        name: str = "stylegan",
        truncation_psi: float = 1.0,
        noise_mode: str = "const",
        class_idx: int | None = None,
        c=None,
        info: dict | None = None,
    ):
        missing = [a for a in _REQUIRED if not hasattr(module, a)]
        if missing:
            raise ModelError(
                f"model {name!r} lacks {missing} of the NVlabs interface (mapping, synthesis, z_dim, w_dim, num_ws)"
            )
        self.module = module.eval()
        for p in module.parameters():  # (ScriptModules refuse module.requires_grad_)
            p.requires_grad_(False)
        self.name = name
        self.z_dim, self.w_dim, self.num_ws = int(module.z_dim), int(module.w_dim), int(module.num_ws)
        self.c_dim = int(getattr(module, "c_dim", 0) or 0)
        self.info = dict(info or {})
        self._opts = (1.0, "const", None, None)
        if (truncation_psi, noise_mode, class_idx, c) != (1.0, "const", None, None) or self.c_dim == 0:
            self._opts = check_options(name, self.c_dim, truncation_psi, noise_mode, class_idx, c)
        self._noise_kw = "noise_mode" in inspect.signature(module.synthesis.forward).parameters
        self.site_modules = {n: _site_module(m) for n, m in module.synthesis.named_children()}
        with torch.no_grad():
            z = torch.zeros(1, self.z_dim, device=self.device)
            ws = self.module.mapping(z, torch.zeros(1, self.c_dim, device=self.device))
            img = self._synthesis(ws)
        self.resolution = check_image_shape(img, name)

    # ---- options -------------------------------------------------------------------------------
    @property
    def truncation_psi(self) -> float:
        return self._opts[0]

    @property
    def noise_mode(self) -> str:
        return self._opts[1]

    @property
    def class_idx(self) -> int | None:
        return self._opts[2]

    @property
    def c(self) -> tuple[float, ...] | None:
        return self._opts[3]

    def options(self) -> dict:
        return {
            "c_dim": self.c_dim,
            "truncation_psi": self.truncation_psi,
            "noise_mode": self.noise_mode,
            "class_idx": self.class_idx,
            "c": list(self.c) if self.c is not None else None,
        }

    def with_options(
        self, truncation_psi: float = 1.0, noise_mode: str = "const", class_idx: int | None = None, c=None
    ) -> StyleGANGenerator:
        """A copy rendering with these options; it shares the (frozen) module with this adapter."""
        opts = check_options(self.name, self.c_dim, truncation_psi, noise_mode, class_idx, c)
        g = copy.copy(self)
        g._opts, g._range_checked = opts, False
        return g

    def _cond(self, n: int, device) -> torch.Tensor:  # [n, c_dim]
        if self.c_dim == 0:
            return torch.zeros(n, 0, device=device)
        if self.class_idx is None and self.c is None:
            check_options(self.name, self.c_dim)  # raises: a conditional model needs its class
        if self.c is not None:
            return torch.tensor(self.c, dtype=torch.float32, device=device).expand(n, -1)
        c = torch.zeros(n, self.c_dim, device=device)
        c[:, self.class_idx] = 1
        return c

    # ---- rendering -----------------------------------------------------------------------------
    def _map(self, z: torch.Tensor) -> torch.Tensor:
        ws = self.module.mapping(z, self._cond(len(z), z.device), truncation_psi=self.truncation_psi)
        return ws[:, 0]

    def _synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        kw = {"noise_mode": self.noise_mode} if self._noise_kw else {}
        if self.noise_mode != "random" or not self._noise_kw:
            return self.module.synthesis(ws, **kw)
        seed = zlib.crc32(ws.detach().cpu().float().numpy().tobytes())
        devices = [ws.device] if ws.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # the same batch draws the same noise
            torch.manual_seed(seed)
            return self.module.synthesis(ws, **kw)

    def _render(self, latent: torch.Tensor, space: str) -> torch.Tensor:
        ws = self.to_space(latent, space, "ws") if space != "ws" else latent
        return self._synthesis(ws)

    @torch.no_grad()
    def w_avg(self, n: int = 10_000, seed: int = 123) -> torch.Tensor:
        """Mean w over n samples (or the network's tracked `mapping.w_avg`).  # [w_dim]"""
        tracked = getattr(self.module.mapping, "w_avg", None)
        if isinstance(tracked, torch.Tensor) and tracked.shape == (self.w_dim,):
            return tracked.clone()
        return self.to_space(self.sample(n, seed), "z", "w").mean(0)

    # ---- structure: which ws row each style affine reads ---------------------------------------
    def style_affines(self) -> list[dict]:
        """Every style affine of the synthesis network in module order: name, module, ws (the ws row it reads),
        block (synthesis child), conv (True when it modulates a convolution), torgb (True for ToRGB layers).

        The ws row is found by running the synthesis once on ws with distinct rows and matching each affine's
        input, so no block layout is assumed.
        """
        if getattr(self, "_affines", None) is None:
            found = []
            for n, m in self.module.synthesis.named_modules():
                w = getattr(m, "weight", None)
                if (
                    n.split(".")[-1] == "affine"
                    and isinstance(w, torch.Tensor)
                    and w.dim() == 2
                    and w.shape[1] == self.w_dim
                ):
                    parent = self.module.synthesis.get_submodule(n.rpartition(".")[0]) if "." in n else None
                    pw = getattr(parent, "weight", None)
                    torgb = bool(getattr(parent, "is_torgb", False)) or "torgb" in n.split(".")
                    found.append(
                        {
                            "name": n,
                            "module": m,
                            "block": n.split(".")[0],
                            "torgb": torgb,
                            "conv": isinstance(pw, torch.Tensor) and pw.dim() == 4,
                        }
                    )
            g = torch.Generator().manual_seed(0)
            ws = torch.randn(1, self.num_ws, self.w_dim, generator=g).to(self.device)
            seen: dict[int, torch.Tensor] = {}

            def keep(k, x):
                seen.setdefault(k, x.detach().reshape(-1, self.w_dim)[0].float())

            hooks = [
                a["module"].register_forward_hook(lambda _m, i, _o, k=k: keep(k, i[0])) for k, a in enumerate(found)
            ]
            try:
                with torch.no_grad():
                    self._synthesis(ws)
            finally:
                for h in hooks:
                    h.remove()
            for k, a in enumerate(found):
                x = seen.get(k)
                if x is None:
                    raise ModelError(f"model {self.name!r}: style affine {a['name']!r} did not run during synthesis")
                a["ws"] = int((ws[0].float() - x.to(ws.device)).norm(dim=1).argmin())
            self._affines = found
        return self._affines

    def ws_blocks(self) -> list[tuple[str, int, int]]:
        """ws row ranges per synthesis child, in order: (site, start, end), end exclusive; ranges tile 0..num_ws.

        A block owns the rows from the first one it reads to the first one the next block reads (NVlabs StyleGAN2
        shares a ToRGB row with the next block's first conv; StyleGAN-lite reads 3 rows per block).
        """
        first: dict[str, int] = {}
        for a in self.style_affines():
            first[a["block"]] = min(first.get(a["block"], self.num_ws), a["ws"])
        order = sorted(first.items(), key=lambda kv: kv[1])
        out = []
        for j, (b, s) in enumerate(order):
            e = order[j + 1][1] if j + 1 < len(order) else self.num_ws
            if e > s:
                out.append((b, s if j else 0, e))
        return out


@torch.no_grad()
def seeded_init_(module: nn.Module, seed: int = 0) -> nn.Module:
    """NVlabs-style random init, in place, for a network built without weights (benchmarks, tests): all-zero
    `weight` / `const` / `noise_const` tensors become N(0, 1) draws from `seed`, all-zero affine biases become 1
    (NVlabs' bias_init); filters, transforms and other buffers stay. Returns the module."""
    g = torch.Generator().manual_seed(int(seed))
    for n, t in [*module.named_parameters(), *module.named_buffers()]:
        leaf = n.rsplit(".", 1)[-1]
        if t.is_floating_point() and not t.any():
            if leaf in ("weight", "const", "noise_const"):
                t.copy_(torch.randn(t.shape, generator=g))
            elif n.endswith("affine.bias"):
                t.fill_(1.0)
    return module
