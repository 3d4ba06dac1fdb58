"""Plain z -> img networks: the adapter for any torch module mapping z to images (the zoo's `faces` model is one:
`probe.models.faces`)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .base import Generator, ModelError, check_image_shape


def _resolve(module: nn.Module, path: str) -> nn.Module:
    try:
        return module.get_submodule(path)
    except AttributeError:
        names = [n for n, _ in module.named_modules() if n]
        raise ModelError(
            f"site path {path!r} is not a submodule of {type(module).__name__}; "
            f"choose among {names[:20]}{' ...' if len(names) > 20 else ''}"
        ) from None


class TorchGenerator(Generator):
    """Adapter for any torch module mapping z [N, z_dim] (or [N, z_dim, 1, 1]) to img [N, 3, H, W] in [-1, 1].

    `sites` maps site names to dotted submodule paths; by default every top-level child of a Sequential
    `main`/root that changes resolution or channels is offered under its dotted path.
    """

    def __init__(
        self,
        module: nn.Module,
        z_dim: int,
        *,
        name: str = "torch",
        sites: Mapping[str, str] | None = None,
        conv_input: bool | None = None,
    ):
        self.module = module.eval()
        for p in module.parameters():  # (ScriptModules refuse module.requires_grad_)
            p.requires_grad_(False)
        self.name, self.z_dim = name, int(z_dim)
        self.conv_input = self._probe_input() if conv_input is None else conv_input
        if isinstance(module, torch.jit.ScriptModule):
            if sites:
                raise ModelError(
                    f"model {name!r} is TorchScript: forward hooks do not run inside it, so it has no "
                    f"sites; load the Python module through path/to/file.py:factory for site reads"
                )
            sites = {}  # hooks never fire in scripted code: offer no sites rather than silently empty reads
        elif sites is None:
            sites = {
                n: n
                for n, m in module.named_modules()
                if n and isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.SiLU, nn.GELU))
            }
        self.site_modules = {s: _resolve(module, p) for s, p in sites.items()}
        with torch.no_grad():
            img = self._render(torch.zeros(1, self.z_dim, device=self.device), "z")
        self.resolution = check_image_shape(img, name)

    def _probe_input(self) -> bool:
        z = torch.zeros(1, self.z_dim, device=self.device)
        with torch.no_grad():
            try:
                self.module(z)
                return False
            except Exception:  # noqa: BLE001 - try the DCGAN layout next
                pass
            try:
                self.module(z[:, :, None, None])
                return True
            except Exception as e:  # noqa: BLE001
                raise ModelError(
                    f"model {self.name!r} accepts neither z [N, {self.z_dim}] nor "
                    f"[N, {self.z_dim}, 1, 1]: {type(e).__name__}: {e}; check z_dim"
                ) from None

    def _render(self, latent: torch.Tensor, space: str) -> torch.Tensor:
        z = latent[:, :, None, None] if self.conv_input else latent
        return self.module(z)
