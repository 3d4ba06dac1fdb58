"""StyleGAN2-ADA generator (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN" and
"Training Generative Adversarial Networks with Limited Data"), built from an NVlabs `init_kwargs` dict and
loading NVlabs parameter names unchanged (`mapping.fc0.weight`, `synthesis.b8.conv0.affine.weight`, ...).

- Mapping: z (and a class embedding for c_dim > 0) normalised to unit second moment, FC layers with equalised
  learning rate (weights scaled by lr_multiplier / sqrt(fan_in) at run time), broadcast to num_ws, truncation
  towards the tracked `w_avg` with truncation_psi (only the first truncation_cutoff ws when given).
- Synthesis: a learned 4x4 constant, per resolution a block of modulated/demodulated 3x3 convolutions (the first
  one upsampling with the stored FIR `resample_filter`), per-pixel noise scaled by `noise_strength`, bias +
  leaky ReLU (gain sqrt 2, clamped to conv_clamp), and RGB outputs: `skip` sums upsampled toRGB outputs of every
  block, `orig` uses the last block's only, `resnet` adds a 1x1 upsampling skip path scaled by sqrt(1/2).
- Blocks marked use_fp16 by num_fp16_res are computed in float32 here (NVlabs' `force_fp32=True`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .nvlabs_ops import (
    ACTIVATIONS,
    bias_act,
    check_activation,
    conv2d_resample,
    modulated_conv2d,
    normalize_2nd_moment,
    setup_filter,
    upsample2d,
)

NOISE_MODES = ("const", "random", "none")
ARCHITECTURES = ("orig", "skip", "resnet")


def check_noise_mode(noise_mode: str) -> str:
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {list(NOISE_MODES)}, got {noise_mode!r}")
    return noise_mode


class FullyConnectedLayer(nn.Module):
    """Equalised-lr dense layer: y = act(x @ (weight * lr_multiplier / sqrt(in)).T + bias * lr_multiplier).
    # [N, in_features] -> [N, out_features]"""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1,
        bias_init: float = 0,
    ):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.activation = check_activation(activation)
        self.weight = nn.Parameter(torch.zeros([self.out_features, self.in_features]))
        self.bias = nn.Parameter(torch.full([self.out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class MappingNetwork(nn.Module):
    """z [N, z_dim], c [N, c_dim] -> ws [N, num_ws, w_dim] (or w [N, w_dim] when num_ws is None)."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        num_layers: int = 8,
        embed_features: int | None = None,
        layer_features: int | None = None,
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.995,
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = int(z_dim), int(c_dim), int(w_dim), num_ws
        self.num_layers, self.w_avg_beta = int(num_layers), w_avg_beta
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for i in range(num_layers):
            setattr(
                self,
                f"fc{i}",
                FullyConnectedLayer(features[i], features[i + 1], activation=activation, lr_multiplier=lr_multiplier),
            )
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        skip_w_avg_update: bool = False,
        update_emas: bool = True,
    ) -> torch.Tensor:
        x = normalize_2nd_moment(z.to(torch.float32)) if self.z_dim > 0 else None
        if self.c_dim > 0:
            if c is None or c.shape[-1] != self.c_dim:
                raise ValueError(
                    f"c must have shape [N, {self.c_dim}] (one-hot class), got {None if c is None else list(c.shape)}"
                )
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if self.w_avg_beta is not None and self.training and update_emas and not skip_w_avg_update:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x = x.clone()
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x


class SynthesisLayer(nn.Module):
    """Modulated conv (optionally upsampling x2) + noise + bias + activation.  # [N, C_in, r/up, r/up] -> [N, C_out, r, r]"""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter=(1, 3, 3, 1),
        conv_clamp: float | None = None,
        channels_last: bool = False,
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.w_dim = int(in_channels), int(out_channels), int(w_dim)
        self.resolution, self.up, self.use_noise = int(resolution), int(up), bool(use_noise)
        self.activation, self.conv_clamp = check_activation(activation), conv_clamp
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATIONS[activation][2]
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.weight = nn.Parameter(torch.zeros([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.zeros([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", fused_modconv: bool = True, gain: float = 1
    ) -> torch.Tensor:
        check_noise_mode(noise_mode)
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = (
                torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device) * self.noise_strength
            )
        if self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        x = modulated_conv2d(
            x,
            self.weight,
            styles,
            noise=noise,
            up=self.up,
            padding=self.padding,
            resample_filter=self.resample_filter,
            flip_weight=(self.up == 1),
            fused_modconv=fused_modconv,
        )
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class ToRGBLayer(nn.Module):
    """Modulated (not demodulated) 1x1 conv to img_channels + bias.  # [N, C, r, r] -> [N, img_channels, r, r]"""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        kernel_size: int = 1,
        conv_clamp: float | None = None,
        channels_last: bool = False,
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.conv_clamp = int(in_channels), int(out_channels), conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.zeros([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / np.sqrt(in_channels * (kernel_size**2))

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


class Conv2dLayer(nn.Module):
    """Equalised-lr conv with optional FIR up/downsampling (the resnet skip path).  # [N, C_in, h, w] -> [N, C_out, h', w']"""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
        resample_filter=(1, 3, 3, 1),
        conv_clamp: float | None = None,
        channels_last: bool = False,
        trainable: bool = True,
    ):
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.activation, self.up, self.down, self.conv_clamp = check_activation(activation), up, down, conv_clamp
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / np.sqrt(in_channels * (kernel_size**2))
        self.act_gain = ACTIVATIONS[activation][2]
        weight = torch.zeros([out_channels, in_channels, kernel_size, kernel_size])
        b = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = nn.Parameter(weight)
            self.bias = nn.Parameter(b) if b is not None else None
        else:
            self.register_buffer("weight", weight)
            if b is not None:
                self.register_buffer("bias", b)
            else:
                self.bias = None

    def forward(self, x: torch.Tensor, gain: float = 1) -> torch.Tensor:
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = conv2d_resample(
            x,
            w.to(x.dtype),
            f=self.resample_filter,
            up=self.up,
            down=self.down,
            padding=self.padding,
            flip_weight=(self.up == 1),
        )
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class SynthesisBlock(nn.Module):
    """One resolution: (const | conv0 up x2) -> conv1 -> toRGB; returns (x, img).
    Consumes num_conv + num_torgb ws [N, k, w_dim]; the toRGB w is shared with the next block's conv0."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",
        resample_filter=(1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,
        **layer_kwargs,
    ):
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {list(ARCHITECTURES)}, got {architecture!r}")
        super().__init__()
        self.in_channels, self.out_channels, self.w_dim = int(in_channels), int(out_channels), int(w_dim)
        self.resolution, self.img_channels, self.is_last = int(resolution), int(img_channels), bool(is_last)
        self.architecture, self.use_fp16, self.channels_last = architecture, bool(use_fp16), False
        self.num_conv = self.num_torgb = 0
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        if in_channels == 0:
            self.const = nn.Parameter(torch.zeros([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(
                in_channels,
                out_channels,
                w_dim=w_dim,
                resolution=resolution,
                up=2,
                resample_filter=resample_filter,
                conv_clamp=conv_clamp,
                **layer_kwargs,
            )
            self.num_conv += 1
        self.conv1 = SynthesisLayer(
            out_channels, out_channels, w_dim=w_dim, resolution=resolution, conv_clamp=conv_clamp, **layer_kwargs
        )
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(
                in_channels, out_channels, kernel_size=1, bias=False, up=2, resample_filter=resample_filter
            )

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        noise_mode: str = "random",
        fused_modconv: bool | None = None,
        force_fp32: bool = True,
        update_emas: bool = False,
        **_ignored,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        w_iter = iter(ws.unbind(dim=1))
        if fused_modconv is None:
            fused_modconv = not self.training
        if self.in_channels == 0:
            x = self.const.to(torch.float32).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused_modconv)
        elif self.architecture == "resnet":
            x = x.to(torch.float32)
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused_modconv)
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused_modconv, gain=np.sqrt(0.5))
            x = y + x
        else:
            x = x.to(torch.float32)
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused_modconv)
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused_modconv)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv).to(torch.float32)
            img = img + y if img is not None else y
        return x, img

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}"


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> img [N, img_channels, img_resolution, img_resolution] (blocks b4 ... b{res})."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        **block_kwargs,
    ):
        log2 = int(np.log2(img_resolution)) if img_resolution > 0 else 0
        if img_resolution < 4 or img_resolution != 2**log2:
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = int(w_dim), int(img_resolution), int(img_channels)
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        channels = {r: min(channel_base // r, channel_max) for r in self.block_resolutions}
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for r in self.block_resolutions:
            block = SynthesisBlock(
                channels[r // 2] if r > 4 else 0,
                channels[r],
                w_dim=w_dim,
                resolution=r,
                img_channels=img_channels,
                is_last=(r == img_resolution),
                use_fp16=(r >= fp16_resolution),
                **block_kwargs,
            )
            self.num_ws += block.num_conv + (block.num_torgb if r == img_resolution else 0)
            setattr(self, f"b{r}", block)

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", **block_kwargs) -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        check_noise_mode(noise_mode)
        ws = ws.to(torch.float32)
        x = img = None
        idx = 0
        for r in self.block_resolutions:
            block = getattr(self, f"b{r}")
            x, img = block(
                x, img, ws.narrow(1, idx, block.num_conv + block.num_torgb), noise_mode=noise_mode, **block_kwargs
            )
            idx += block.num_conv
        return img


class Generator(nn.Module):
    """StyleGAN2-ADA generator from NVlabs init_kwargs: z [N, z_dim], c [N, c_dim] -> img [N, C, res, res]."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: dict | None = None,
        synthesis_kwargs: dict | None = None,
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = int(z_dim), int(c_dim), int(w_dim)
        self.img_resolution, self.img_channels = int(img_resolution), int(img_channels)
        self.synthesis = SynthesisNetwork(
            w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, **dict(synthesis_kwargs or {})
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **dict(mapping_kwargs or {})
        )

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        **synthesis_kwargs,
    ) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)


__all__ = [
    "Generator",
    "MappingNetwork",
    "SynthesisNetwork",
    "SynthesisBlock",
    "SynthesisLayer",
    "ToRGBLayer",
    "Conv2dLayer",
    "FullyConnectedLayer",
    "NOISE_MODES",
    "ARCHITECTURES",
]
