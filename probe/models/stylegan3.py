"""StyleGAN3 generator (configs T and R), written from "Alias-Free Generative Adversarial Networks" (Karras et al.
2021). Module tree, parameter names and init kwargs follow NVlabs `training.networks_stylegan3.Generator`, so its
`state_dict` loads strictly and, on CPU in float32, the outputs equal NVlabs' for the same z, c and psi.

Layers: a Fourier-feature input (`input`, with its learned rotation/translation and a user `transform`), then
`num_layers` modulated convolutions, each followed by a filtered leaky ReLU (upsample with `up_filter`, bias,
lrelu, clamp, downsample with `down_filter`), and a final ToRGB layer (no demodulation, no lrelu). Each layer divides
its input by sqrt(`magnitude_ema`). Always computed in float32 (`num_fp16_res` is accepted and ignored).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.signal
import scipy.special
import torch
import torch.nn.functional as F
from torch import nn

from . import stylegan2 as sg2
from .base import ModelError
from .nvlabs_ops import bias_act, filter_size, modulated_conv2d, upfirdn2d

_LAYER_KEYS = (
    "conv_kernel",
    "filter_size",
    "lrelu_upsampling",
    "use_radial_filters",
    "conv_clamp",
    "magnitude_ema_beta",
)
_SYNTH_KEYS = (
    "channel_base",
    "channel_max",
    "num_layers",
    "num_critical",
    "first_cutoff",
    "first_stopband",
    "last_stopband_rel",
    "margin_size",
    "output_scale",
    "num_fp16_res",
) + _LAYER_KEYS
_CHUNK_BYTES = 64 << 20  # filtered_lrelu: bytes of upsampled intermediate per channel group
_MAPPING_KEYS = ("num_layers", "lr_multiplier", "w_avg_beta", "freeze_layers", "freeze_embed")


def _init_rng() -> torch.Generator:
    return torch.Generator().manual_seed(0)


# ---- ops -----------------------------------------------------------------------------------
def filtered_lrelu(
    x: torch.Tensor,
    fu: torch.Tensor | None,
    fd: torch.Tensor | None,
    b: torch.Tensor,
    *,
    up: int,
    down: int,
    padding: tuple[int, int, int, int],
    gain: float,
    slope: float,
    clamp: float | None,
) -> torch.Tensor:
    """Bias, zero-insert upsample by `up` + pad (x0, x1, y0, y1) + FIR `fu`, leaky ReLU times `gain`, clamp to
    +-`clamp`, FIR `fd` + keep every `down`-th pixel; run over groups of channels so that the upsampled
    intermediate stays small (about `_CHUNK_BYTES`).  # [N, C, H, W] -> [N, C, H', W']"""
    n, c, h, w = x.shape
    if fu is None and fd is None and up == 1 and down == 1 and not any(padding):
        return bias_act(x, b.to(x.dtype), act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    fw, fh = filter_size(fu)
    tmp_h, tmp_w = h * up + padding[2] + padding[3] - fh + 1, w * up + padding[0] + padding[1] - fw + 1
    x = x.reshape(1, n * c, h, w)
    b = b.to(x.dtype).repeat(n).reshape(1, -1, 1, 1)
    step = max(1, _CHUNK_BYTES // (tmp_h * tmp_w * x.element_size()))
    parts = []
    for i in range(0, n * c, step):
        y = upfirdn2d(x[:, i : i + step] + b[:, i : i + step], fu, up=up, padding=list(padding), gain=up**2)
        if slope != 1:
            y = F.leaky_relu(y, slope, inplace=True)
        if gain != 1:
            y.mul_(gain)
        if clamp is not None and clamp >= 0:
            y.clamp_(-clamp, clamp)
        parts.append(upfirdn2d(y, fd, down=down))
    y = torch.cat(parts, 1) if len(parts) > 1 else parts[0]
    return y.reshape(n, c, *y.shape[2:])


def design_lowpass_filter(
    numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False
) -> torch.Tensor | None:
    """Kaiser-windowed low-pass FIR: separable [numtaps] (firwin) or radially symmetric jinc [numtaps, numtaps];
    None for a single tap (identity)."""
    if numtaps == 1:
        return None
    if not radial:
        return torch.as_tensor(
            scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs), dtype=torch.float32
        )
    t = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(t, t))
    f = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    win = np.kaiser(numtaps, beta)
    f = f * np.outer(win, win)
    return torch.as_tensor(f / f.sum(), dtype=torch.float32)


# ---- mapping -------------------------------------------------------------------------------
class MappingNetwork(sg2.MappingNetwork):
    """The StyleGAN2 mapping with StyleGAN3's defaults (2 layers, w_avg_beta 0.998); the training-only
    `freeze_layers` / `freeze_embed` are accepted and ignored.
    z [N, z_dim], c [N, c_dim] -> ws [N, num_ws, w_dim]"""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int,
        num_layers: int = 2,
        lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.998,
        freeze_layers: int = 0,
        freeze_embed: bool = False,
    ):
        super().__init__(
            z_dim, c_dim, w_dim, num_ws, num_layers=num_layers, lr_multiplier=lr_multiplier, w_avg_beta=w_avg_beta
        )

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> torch.Tensor:
        """The first `truncation_cutoff` (default all) rows become w_avg + truncation_psi * (w - w_avg).
        z [N, z_dim], c [N, c_dim] -> ws [N, num_ws, w_dim]"""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ModelError(f"z has shape {list(z.shape)}; StyleGAN3 expects [N, {self.z_dim}]")
        if self.c_dim > 0 and (c is None or tuple(c.shape) != (z.shape[0], self.c_dim)):
            raise ModelError(
                f"c has shape {None if c is None else list(c.shape)}; this conditional StyleGAN3 "
                f"expects [{z.shape[0]}, {self.c_dim}]"
            )
        return super().forward(z, c, truncation_psi, truncation_cutoff, update_emas=update_emas)


# ---- synthesis -----------------------------------------------------------------------------
class SynthesisInput(nn.Module):
    """w [N, w_dim] -> Fourier features [N, channels, size, size]: `channels` sinusoids of frequencies `freqs`
    (inside a disc of radius `bandwidth`) and `phases`, rotated and translated by affine(w) and by the inverse
    user `transform` [3, 3], sampled at `sampling_rate` on a size x size grid, mixed by `weight`."""

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float):
        super().__init__()
        self.w_dim, self.channels, self.size = w_dim, channels, int(size)
        self.sampling_rate, self.bandwidth = float(sampling_rate), float(bandwidth)
        g = _init_rng()
        freqs = torch.randn(channels, 2, generator=g)
        radii = freqs.square().sum(1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        self.weight = nn.Parameter(torch.randn(channels, channels, generator=g))
        self.affine = sg2.FullyConnectedLayer(w_dim, 4)  # starts as the identity transform (1, 0, 0, 0)
        with torch.no_grad():
            self.affine.bias[0] = 1
        self.register_buffer("transform", torch.eye(3))
        self.register_buffer("freqs", freqs)  # [channels, 2]
        self.register_buffer("phases", torch.rand(channels, generator=g) - 0.5)  # [channels]

    def forward(self, w: torch.Tensor) -> torch.Tensor:  # [N, w_dim] -> [N, channels, size, size]
        n = w.shape[0]
        t = self.affine(w)  # (cos, sin, tx, ty), rotation part normalised
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        rot = torch.eye(3, device=w.device).repeat(n, 1, 1)
        rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1] = t[:, 0], -t[:, 1], t[:, 1], t[:, 0]
        tra = torch.eye(3, device=w.device).repeat(n, 1, 1)
        tra[:, 0, 2], tra[:, 1, 2] = -t[:, 2], -t[:, 3]
        m = rot @ tra @ self.transform.unsqueeze(0)  # [N, 3, 3]
        phases = self.phases.unsqueeze(0) + (self.freqs.unsqueeze(0) @ m[:, :2, 2:]).squeeze(2)  # [N, C]
        freqs = self.freqs.unsqueeze(0) @ m[:, :2, :2]  # [N, C, 2]
        amp = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        s = self.size
        grid1d = (torch.arange(s, device=w.device, dtype=torch.float32) + 0.5 - s / 2) / self.sampling_rate
        grid = torch.stack(torch.meshgrid(grid1d, grid1d, indexing="xy"), dim=-1)  # [H, W, (x, y)]
        x = torch.einsum("hwk,nck->nhwc", grid, freqs) + phases.view(n, 1, 1, -1)
        x = torch.sin(x * (2 * math.pi)) * amp.view(n, 1, 1, -1)
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)


class SynthesisLayer(nn.Module):
    """One alias-free layer: modulated conv (kernel `conv_kernel`, input scaled by 1/sqrt(magnitude_ema)) and a
    filtered leaky ReLU between sampling rates; `is_torgb` gives the final linear ToRGB layer.
    x [N, in_channels, in_size, in_size], w [N, w_dim] -> [N, out_channels, out_size, out_size]"""

    def __init__(
        self,
        w_dim: int,
        is_torgb: bool,
        is_critically_sampled: bool,
        use_fp16: bool,
        in_channels: int,
        out_channels: int,
        in_size: int,
        out_size: int,
        in_sampling_rate: float,
        out_sampling_rate: float,
        in_cutoff: float,
        out_cutoff: float,
        in_half_width: float,
        out_half_width: float,
        conv_kernel: int = 3,
        filter_size: int = 6,
        lrelu_upsampling: int = 2,
        use_radial_filters: bool = False,
        conv_clamp: float | None = 256,
        magnitude_ema_beta: float = 0.999,
    ):
        super().__init__()
        self.w_dim, self.is_torgb, self.is_critically_sampled = w_dim, is_torgb, is_critically_sampled
        self.use_fp16 = use_fp16
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_size, self.out_size = int(in_size), int(out_size)
        self.in_sampling_rate, self.out_sampling_rate = in_sampling_rate, out_sampling_rate
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.in_cutoff, self.out_cutoff = in_cutoff, out_cutoff
        self.in_half_width, self.out_half_width = in_half_width, out_half_width
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp, self.magnitude_ema_beta = conv_clamp, magnitude_ema_beta

        self.affine = sg2.FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(
            torch.randn(out_channels, in_channels, self.conv_kernel, self.conv_kernel, generator=_init_rng())
        )
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("magnitude_ema", torch.ones([]))

        self.up_factor = int(round(self.tmp_sampling_rate / in_sampling_rate))
        self.down_factor = int(round(self.tmp_sampling_rate / out_sampling_rate))
        if (
            in_sampling_rate * self.up_factor != self.tmp_sampling_rate
            or out_sampling_rate * self.down_factor != self.tmp_sampling_rate
        ):
            raise ModelError(
                f"StyleGAN3 layer sampling rates {in_sampling_rate} -> {out_sampling_rate} are not "
                f"integer fractions of {self.tmp_sampling_rate}; check lrelu_upsampling"
            )
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.down_radial = bool(use_radial_filters) and not is_critically_sampled
        self.register_buffer(
            "up_filter", design_lowpass_filter(self.up_taps, in_cutoff, in_half_width * 2, self.tmp_sampling_rate)
        )
        self.register_buffer(
            "down_filter",
            design_lowpass_filter(
                self.down_taps, out_cutoff, out_half_width * 2, self.tmp_sampling_rate, radial=self.down_radial
            ),
        )

        # Before downsampling we want (out_size - 1) * down + 1 samples; the upsampled conv output has
        # (in_size + k - 1) * up, and the two filters take away up_taps + down_taps - 2. The low side gets half
        # of the total plus up / 2, which centres the output samples between the upsampled input samples.
        total = (
            (self.out_size - 1) * self.down_factor
            + 1
            - (self.in_size + self.conv_kernel - 1) * self.up_factor
            + self.up_taps
            + self.down_taps
            - 2
        )
        lo = (total + self.up_factor) // 2
        self.padding = (lo, total - lo, lo, total - lo)

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise_mode: str = "const",
        force_fp32: bool = True,
        update_emas: bool = False,
    ) -> torch.Tensor:
        if update_emas:
            self.magnitude_ema.copy_(
                x.detach().float().square().mean().lerp(self.magnitude_ema, self.magnitude_ema_beta)
            )
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles / math.sqrt(self.in_channels * self.conv_kernel**2)
        x = modulated_conv2d(
            x.float() * self.magnitude_ema.rsqrt(),
            self.weight,
            styles,
            demodulate=not self.is_torgb,
            padding=self.conv_kernel - 1,
        )
        return filtered_lrelu(
            x,
            self.up_filter,
            self.down_filter,
            self.bias,
            up=self.up_factor,
            down=self.down_factor,
            padding=self.padding,
            gain=1 if self.is_torgb else math.sqrt(2),
            slope=1 if self.is_torgb else 0.2,
            clamp=self.conv_clamp,
        )


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> img [N, img_channels, img_resolution, img_resolution] (num_ws = num_layers + 2).
    Cutoffs and stopbands grow geometrically from `first_cutoff` / `first_stopband` to img_resolution / 2 over
    the first num_layers - num_critical layers; the last `num_critical` layers are critically sampled."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_layers: int = 14,
        num_critical: int = 2,
        first_cutoff: float = 2,
        first_stopband: float = 2**2.1,
        last_stopband_rel: float = 2**0.3,
        margin_size: int = 10,
        output_scale: float = 0.25,
        num_fp16_res: int = 4,
        **layer_kwargs,
    ):
        super().__init__()
        unknown = sorted(set(layer_kwargs) - set(_LAYER_KEYS))
        if unknown:
            raise ModelError(f"unknown StyleGAN3 synthesis kwargs {unknown}; known: {list(_SYNTH_KEYS)}")
        self.w_dim, self.num_ws = w_dim, num_layers + 2
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.num_layers, self.num_critical = num_layers, num_critical
        self.margin_size, self.output_scale, self.num_fp16_res = margin_size, output_scale, num_fp16_res

        last_cutoff = img_resolution / 2
        last_stopband = last_cutoff * last_stopband_rel
        e = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
        cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** e
        stopbands = first_stopband * (last_stopband / first_stopband) ** e
        rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
        half_widths = np.maximum(stopbands, rates / 2) - cutoffs
        sizes = rates + margin_size * 2
        sizes[-2:] = img_resolution
        channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
        channels[-1] = img_channels

        self.input = SynthesisInput(w_dim, int(channels[0]), int(sizes[0]), rates[0], cutoffs[0])
        self.layer_names = []
        for i in range(num_layers + 1):
            p = max(i - 1, 0)
            layer = SynthesisLayer(
                w_dim,
                is_torgb=i == num_layers,
                is_critically_sampled=i >= num_layers - num_critical,
                use_fp16=bool(rates[i] * 2**num_fp16_res > img_resolution),
                in_channels=int(channels[p]),
                out_channels=int(channels[i]),
                in_size=int(sizes[p]),
                out_size=int(sizes[i]),
                in_sampling_rate=int(rates[p]),
                out_sampling_rate=int(rates[i]),
                in_cutoff=cutoffs[p],
                out_cutoff=cutoffs[i],
                in_half_width=half_widths[p],
                out_half_width=half_widths[i],
                **layer_kwargs,
            )
            name = f"L{i}_{layer.out_size}_{layer.out_channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)

    def forward(
        self, ws: torch.Tensor, noise_mode: str = "const", force_fp32: bool = True, update_emas: bool = False
    ) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> img [N, img_channels, img_resolution, img_resolution] (float32; StyleGAN3
        has no noise inputs, `noise_mode` is accepted and ignored)."""
        if ws.ndim != 3 or tuple(ws.shape[1:]) != (self.num_ws, self.w_dim):
            raise ModelError(f"ws has shape {list(ws.shape)}; StyleGAN3 expects [N, {self.num_ws}, {self.w_dim}]")
        rows = ws.float().unbind(1)
        x = self.input(rows[0])
        for name, w in zip(self.layer_names, rows[1:]):
            x = getattr(self, name)(x, w, update_emas=update_emas)
        return x * self.output_scale if self.output_scale != 1 else x


class Generator(nn.Module):
    """NVlabs StyleGAN3 generator: `mapping` z [N, z_dim], c [N, c_dim] -> ws [N, num_ws, w_dim] and `synthesis`
    ws -> img [N, img_channels, img_resolution, img_resolution]. Takes the pickle's `init_kwargs` as stored."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: dict | None = None,
        **synthesis_kwargs,
    ):
        super().__init__()
        mapping_kwargs = dict(mapping_kwargs or {})
        unknown = sorted(set(mapping_kwargs) - set(_MAPPING_KEYS))
        if unknown:
            raise ModelError(f"unknown StyleGAN3 mapping_kwargs {unknown}; known: {list(_MAPPING_KEYS)}")
        unknown = sorted(set(synthesis_kwargs) - set(_SYNTH_KEYS))
        if unknown:
            raise ModelError(
                f"unknown StyleGAN3 init kwargs {unknown}; known: z_dim, c_dim, w_dim, "
                f"img_resolution, img_channels, mapping_kwargs, {', '.join(_SYNTH_KEYS)}"
            )
        self.z_dim, self.c_dim, self.w_dim = int(z_dim), int(c_dim), int(w_dim)
        self.img_resolution, self.img_channels = int(img_resolution), int(img_channels)
        self.synthesis = SynthesisNetwork(self.w_dim, self.img_resolution, self.img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(self.z_dim, self.c_dim, self.w_dim, self.num_ws, **mapping_kwargs)

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        **synthesis_kwargs,
    ) -> torch.Tensor:
        """z [N, z_dim], c [N, c_dim] -> img [N, img_channels, img_resolution, img_resolution]"""
        return self.synthesis(self.mapping(z, c, truncation_psi, truncation_cutoff), **synthesis_kwargs)
