"""StyleGAN-lite: a small style-based generator with the NVlabs interface (mapping z -> ws, synthesis ws -> img).

Modulated/demodulated 3x3 convolutions, a learned constant input, optional per-pixel noise, one ToRGB per
resolution with skip connections. Small enough to train on CPU (`probe.train` trains the zoo model "sprites"). `fused=False` computes the same
modulated convolution as one batched conv (input scaled by the styles, output by the demodulation
coefficients), which is faster to train on CPU; the default (grouped conv) is kept for existing models.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class MappingNetwork(nn.Module):
    def __init__(self, z_dim: int, w_dim: int, num_ws: int, layers: int = 4):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws = z_dim, w_dim, num_ws
        dims = [z_dim] + [w_dim] * layers
        self.net = nn.Sequential(*[m for a, b in zip(dims, dims[1:]) for m in (nn.Linear(a, b), nn.LeakyReLU(0.2))])
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z, c=None, truncation_psi: float = 1.0):  # [N, z_dim] -> [N, num_ws, w_dim]
        z = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        w = self.net(z)
        if truncation_psi != 1:
            w = self.w_avg.lerp(w, truncation_psi)
        return w.unsqueeze(1).repeat(1, self.num_ws, 1)


class ModConv(nn.Module):
    def __init__(
        self, cin: int, cout: int, w_dim: int, k: int = 3, demod: bool = True, noise: bool = True, fused: bool = True
    ):
        super().__init__()
        self.fused = fused
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.affine = nn.Linear(w_dim, cin)
        nn.init.ones_(self.affine.bias)
        self.demod, self.pad = demod, k // 2
        self.noise_strength = nn.Parameter(torch.zeros(())) if noise else None

    def forward(self, x, w, noise_mode: str = "const"):  # x [N, cin, h, w], w [N, w_dim]
        n, cin, h, wd = x.shape
        s = self.affine(w)  # [N, cin]
        if not self.fused:
            fan = cin * self.weight[0, 0].numel()
            out = F.conv2d(x * s[:, :, None, None], self.weight / math.sqrt(fan), padding=self.pad)
            if self.demod:  # same coefficients as the fused path: sum over (cin, k, k) of (weight * s)^2 / fan
                d = (s.square() @ self.weight.square().sum((2, 3)).T / fan + 1e-8).rsqrt()  # [N, cout]
                out = out * d[:, :, None, None]
            return self._finish(out, noise_mode)
        wt = self.weight[None] * s[:, None, :, None, None] / math.sqrt(cin * self.weight[0, 0].numel())
        if self.demod:
            wt = wt * (wt.square().sum((2, 3, 4), keepdim=True) + 1e-8).rsqrt()
        out = F.conv2d(x.reshape(1, n * cin, h, wd), wt.reshape(-1, cin, *wt.shape[3:]), padding=self.pad, groups=n)
        return self._finish(out.reshape(n, -1, h, wd), noise_mode)

    def _finish(self, out, noise_mode):
        n, _, h, wd = out.shape
        if self.noise_strength is not None and noise_mode == "random":
            out = out + torch.randn(n, 1, h, wd, device=out.device) * self.noise_strength
        return F.leaky_relu(out + self.bias[None, :, None, None], 0.2) * math.sqrt(2)


class SynthesisBlock(nn.Module):
    """One resolution: (upsample) conv, conv, ToRGB. Consumes 3 ws (conv0, conv1, torgb)."""

    def __init__(self, cin: int, cout: int, w_dim: int, first: bool, noise: bool = True, fused: bool = True):
        super().__init__()
        self.first = first
        self.conv0 = ModConv(cin, cout, w_dim, noise=noise, fused=fused)
        self.conv1 = ModConv(cout, cout, w_dim, noise=noise, fused=fused)
        self.torgb = ModConv(cout, 3, w_dim, k=1, demod=False, noise=False, fused=fused)

    def forward(self, x, img, ws, noise_mode="const"):  # ws [N, 3, w_dim]
        if not self.first:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = self.conv0(x, ws[:, 0], noise_mode)
        x = self.conv1(x, ws[:, 1], noise_mode)
        y = self.torgb(x, ws[:, 2], noise_mode) / math.sqrt(2)
        img = y if img is None else F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False) + y
        return x, img


class SynthesisNetwork(nn.Module):
    def __init__(self, w_dim: int, resolution: int, channels: dict[int, int], noise: bool = True, fused: bool = True):
        super().__init__()
        self.w_dim, self.resolution = w_dim, resolution
        res = [2**i for i in range(2, int(math.log2(resolution)) + 1)]
        self.const = nn.Parameter(torch.randn(channels[4], 4, 4))
        cin = channels[4]
        for r in res:
            setattr(self, f"b{r}", SynthesisBlock(cin, channels[r], w_dim, first=(r == 4), noise=noise, fused=fused))
            cin = channels[r]
        self.block_res = res
        self.num_ws = 3 * len(res)

    def forward(self, ws, noise_mode: str = "const"):  # [N, num_ws, w_dim] -> [N, 3, H, W]
        x = self.const[None].repeat(ws.shape[0], 1, 1, 1)
        img = None
        for i, r in enumerate(self.block_res):
            x, img = getattr(self, f"b{r}")(x, img, ws[:, 3 * i : 3 * i + 3], noise_mode)
        return img


class StyleGANLite(nn.Module):
    """z [N, z_dim] -> ws [N, num_ws, w_dim] -> img [N, 3, R, R]; NVlabs-compatible attributes."""

    def __init__(
        self,
        z_dim: int = 64,
        w_dim: int = 64,
        resolution: int = 64,
        channels: dict[int, int] | None = None,
        mapping_layers: int = 4,
        noise: bool = True,
        fused: bool = True,
    ):
        super().__init__()
        channels = {int(k): int(v) for k, v in (channels or {4: 128, 8: 128, 16: 64, 32: 32, 64: 16}).items()}
        self.z_dim, self.w_dim, self.c_dim, self.img_resolution = z_dim, w_dim, 0, resolution
        self.synthesis = SynthesisNetwork(w_dim, resolution, channels, noise=noise, fused=fused)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, w_dim, self.num_ws, mapping_layers)

    def forward(self, z, c=None, truncation_psi=1.0, noise_mode="const"):
        return self.synthesis(self.mapping(z, c, truncation_psi), noise_mode=noise_mode)
