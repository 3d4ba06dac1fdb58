"""Adapter for the NVlabs StyleGAN2-ADA / StyleGAN3 interface, without knowing the network class.

Duck-typed: the network needs `mapping(z, c, truncation_psi=...) -> ws [N, num_ws, w_dim]`,
`synthesis(ws, noise_mode=...) -> img`, and attributes `z_dim`, `w_dim`, `num_ws` (and `c_dim`, default 0).
Sites are the children of `synthesis` (NVlabs names such as `b4`, `b8`, `L3_52_1024`).
"""
from __future__ import annotations

import inspect

import torch
from torch import nn

from .base import Generator, ModelError

_REQUIRED = ("mapping", "synthesis", "z_dim", "w_dim", "num_ws")


class StyleGANGenerator(Generator):
    spaces = ("z", "w", "ws")

    def __init__(self, module: nn.Module, *, name: str = "stylegan", truncation_psi: float = 1.0,
                 noise_mode: str = "const"):
        missing = [a for a in _REQUIRED if not hasattr(module, a)]
        if missing:
            raise ModelError(f"model {name!r} lacks {missing} of the NVlabs interface "
                             f"(mapping, synthesis, z_dim, w_dim, num_ws)")
        self.module = module.eval()
        for p in module.parameters():  # (ScriptModules refuse module.requires_grad_)
            p.requires_grad_(False)
        self.name = name
        self.z_dim, self.w_dim, self.num_ws = int(module.z_dim), int(module.w_dim), int(module.num_ws)
        self.c_dim = int(getattr(module, "c_dim", 0) or 0)
        self.truncation_psi, self.noise_mode = float(truncation_psi), noise_mode
        self._noise_kw = "noise_mode" in inspect.signature(module.synthesis.forward).parameters
        self.site_modules = {n: m for n, m in module.synthesis.named_children()}
        with torch.no_grad():
            img = self._render(self.to_space(torch.zeros(1, self.z_dim), "z", "ws"), "ws")
        self.resolution = int(img.shape[-1])

    def _map(self, z: torch.Tensor) -> torch.Tensor:
        c = torch.zeros(z.shape[0], self.c_dim, device=z.device)
        ws = self.module.mapping(z, c, truncation_psi=self.truncation_psi)
        return ws[:, 0]

    def _render(self, latent: torch.Tensor, space: str) -> torch.Tensor:
        ws = self.to_space(latent, space, "ws") if space != "ws" else latent
        kw = {"noise_mode": self.noise_mode} if self._noise_kw else {}
        return self.module.synthesis(ws, **kw)

    @torch.no_grad()
    def w_avg(self, n: int = 10_000, seed: int = 123) -> torch.Tensor:
        """Mean w over n samples (or the network's tracked `mapping.w_avg`).  # [w_dim]"""
        tracked = getattr(self.module.mapping, "w_avg", None)
        if isinstance(tracked, torch.Tensor) and tracked.shape == (self.w_dim,):
            return tracked.clone()
        return self.to_space(self.sample(n, seed), "z", "w").mean(0)
