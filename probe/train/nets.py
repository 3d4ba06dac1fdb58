"""Networks trained by `probe.train`: training configs and discriminators (the generators live in
`probe.models.nets`, which the zoo loads from; they are re-exported here).

Discriminator layers use equalized learning rate (weights ~ N(0, 1), scaled by 1/sqrt(fan_in) at run time),
as StyleGAN2 does, so one Adam learning rate suits every layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..models.nets import DCGAN_SITES, DCGANNet, build_generator

SPRITES_STYLEGAN = {
    "z_dim": 64,
    "w_dim": 64,
    "resolution": 64,
    "mapping_layers": 4,
    "noise": False,
    "channels": {4: 64, 8: 64, 16: 32, 32: 16, 64: 8},
}
SPRITES_DCGAN = {"z_dim": 64, "resolution": 64, "ch": 32}
D_CHANNELS = {64: 8, 32: 16, 16: 32, 8: 64, 4: 64}
TINY = {
    "stylegan": {
        "z_dim": 8,
        "w_dim": 8,
        "resolution": 64,
        "mapping_layers": 2,
        "noise": False,
        "channels": {4: 8, 8: 8, 16: 4, 32: 4, 64: 4},
    },
    "dcgan": {"z_dim": 8, "resolution": 64, "ch": 4},
    "d": {64: 4, 32: 4, 16: 8, 8: 8, 4: 8},
}
__all__ = [
    "DCGANNet",
    "DCGAN_SITES",
    "build_generator",
    "build_discriminator",
    "ResidualD",
    "DCGAND",
    "SPRITES_STYLEGAN",
    "SPRITES_DCGAN",
    "D_CHANNELS",
    "TINY",
]


class EqConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.scale, self.pad = 1 / math.sqrt(cin * k * k), k // 2

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.pad)


class EqLinear(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale = 1 / math.sqrt(cin)

    def forward(self, x):
        return F.linear(x, self.weight * self.scale, self.bias)


def _act(x):
    return F.leaky_relu(x, 0.2) * math.sqrt(2)


class DBlock(nn.Module):
    """Residual block: conv, conv, 2x average-pool; skip = pool + 1x1 conv; sum / sqrt(2)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv0, self.conv1 = EqConv2d(cin, cin, 3), EqConv2d(cin, cout, 3)
        self.skip = EqConv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        y = F.avg_pool2d(_act(self.conv1(_act(self.conv0(x)))), 2)
        return (y + self.skip(F.avg_pool2d(x, 2))) / math.sqrt(2)


class ResidualD(nn.Module):
    """Small StyleGAN2-style residual discriminator: img [N, 3, R, R] -> logit [N]."""

    def __init__(self, resolution: int = 64, channels: dict[int, int] | None = None, mbstd_group: int = 4):
        super().__init__()
        ch = {int(k): int(v) for k, v in (channels or D_CHANNELS).items()}
        res = [2**i for i in range(int(math.log2(resolution)), 2, -1)]  # 64, 32, 16, 8
        self.fromrgb = EqConv2d(3, ch[resolution], 1)
        self.blocks = nn.Sequential(*[DBlock(ch[r], ch[r // 2]) for r in res])
        self.mbstd_group = mbstd_group
        self.conv = EqConv2d(ch[4] + 1, ch[4], 3)
        self.fc = EqLinear(ch[4] * 16, ch[4])
        self.out = EqLinear(ch[4], 1)

    def forward(self, img):  # [N, 3, R, R] -> [N]
        x = self.blocks(_act(self.fromrgb(img)))
        n, c, h, w = x.shape
        g = math.gcd(n, self.mbstd_group)  # minibatch standard deviation over groups of g
        y = x.reshape(g, -1, c, h, w)
        y = (y.var(0, unbiased=False) + 1e-8).sqrt().mean((1, 2, 3))  # [n / g]
        y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
        x = _act(self.conv(torch.cat([x, y], 1)))
        return self.out(_act(self.fc(x.flatten(1))))[:, 0]


class DCGAND(nn.Module):
    """Plain DCGAN discriminator (strided 4x4 convs, LeakyReLU; no BatchNorm, so R1 applies per sample)."""

    def __init__(self, resolution: int = 64, ch: int = 32):
        super().__init__()
        c = [ch, ch * 2, ch * 4, ch * 8]
        layers, cin = [], 3
        for b in c:
            layers += [nn.Conv2d(cin, b, 4, 2, 1), nn.LeakyReLU(0.2)]
            cin = b
        layers += [nn.Conv2d(cin, 1, 4, 1, 0)]
        self.main = nn.Sequential(*layers)

    def forward(self, img):  # [N, 3, 64, 64] -> [N]
        return self.main(img).flatten()


def build_discriminator(arch: str, resolution: int = 64, channels: dict | None = None, ch: int | None = None):
    """ResidualD for stylegan, DCGAND for dcgan."""
    if arch == "stylegan":
        return ResidualD(resolution, channels)
    return DCGAND(resolution, ch or 32)
