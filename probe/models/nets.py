"""Generator networks that `probe train gan` trains and the zoo loads: StyleGAN-lite (NVlabs interface) and a plain
DCGAN, built from the JSON-able config a checkpoint stores."""

from __future__ import annotations

from torch import nn

from .stylegan_lite import StyleGANLite


class DCGANNet(nn.Module):
    """Plain DCGAN generator: z [N, z_dim] -> img [N, 3, 64, 64] in [-1, 1] (ConvTranspose + BatchNorm + ReLU)."""

    def __init__(self, z_dim: int = 64, resolution: int = 64, ch: int = 32):
        super().__init__()
        if resolution != 64:
            raise ValueError("DCGANNet renders 64x64 only")
        self.z_dim = z_dim
        c = [ch * 8, ch * 4, ch * 2, ch]
        layers = [nn.ConvTranspose2d(z_dim, c[0], 4, 1, 0, bias=False), nn.BatchNorm2d(c[0]), nn.ReLU()]
        for a, b in zip(c, c[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU()]
        layers += [nn.ConvTranspose2d(c[-1], 3, 4, 2, 1), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z):  # [N, z_dim] -> [N, 3, 64, 64]
        return self.main(z[:, :, None, None])


DCGAN_SITES = {"b4": "main.2", "b8": "main.5", "b16": "main.8", "b32": "main.11"}  # ReLU outputs


def build_generator(arch: str, config: dict, fused: bool = False) -> nn.Module:
    """StyleGANLite (NVlabs interface) or DCGANNet from a JSON-able config."""
    if arch == "stylegan":
        return StyleGANLite(**config, fused=fused)
    if arch == "dcgan":
        return DCGANNet(**config)
    raise ValueError(f"unknown arch {arch!r}; use 'stylegan' or 'dcgan'")
