"""Plain-torch equivalents of the NVlabs custom ops (FIR resampling, bias + activation, modulated convolution).

Semantics follow StyleGAN2-ADA's reference (non-CUDA) paths so that networks loaded by NVlabs parameter names give
the same outputs: `upfirdn2d` = zero-insertion upsampling, padding (negative crops), FIR filtering, decimation;
filters from `setup_filter` are normalised to sum 1 and applied as convolution (flipped) unless `flip_filter`.
Used by `probe.models.stylegan2` and `probe.models.stylegan3`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

# activation name -> (function(x, alpha), default alpha, default gain)
ACTIVATIONS = {
    "linear": (lambda x, a: x, 0.0, 1.0),
    "relu": (lambda x, a: F.relu(x), 0.0, math.sqrt(2)),
    "lrelu": (lambda x, a: F.leaky_relu(x, a), 0.2, math.sqrt(2)),
    "tanh": (lambda x, a: torch.tanh(x), 0.0, 1.0),
    "sigmoid": (lambda x, a: torch.sigmoid(x), 0.0, 1.0),
    "elu": (lambda x, a: F.elu(x), 0.0, 1.0),
    "selu": (lambda x, a: F.selu(x), 0.0, 1.0),
    "softplus": (lambda x, a: F.softplus(x), 0.0, 1.0),
    "swish": (lambda x, a: torch.sigmoid(x) * x, 0.0, math.sqrt(2)),
}


def check_activation(name: str) -> str:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation {name!r} is not one of {sorted(ACTIVATIONS)}")
    return name


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """x + b (broadcast along `dim`), activation, times gain (default: the activation's), clamp to +-clamp."""
    fn, def_alpha, def_gain = ACTIVATIONS[check_activation(act)]
    alpha = def_alpha if alpha is None else float(alpha)
    gain = def_gain if gain is None else float(gain)
    if b is not None:
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = fn(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """x / rms(x) along dim."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def setup_filter(
    f: Sequence | torch.Tensor,
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1,
    separable: bool | None = None,
) -> torch.Tensor:
    """FIR taps -> filter tensor: 1-D taps become their outer product unless separable (default: >= 8 taps);
    normalised to sum 1.  # [fh, fw] or [taps]"""
    f = torch.as_tensor(f if f is not None else 1, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    return f * (gain ** (f.ndim / 2))


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (int, float)):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def _padding4(p) -> list[int]:
    if isinstance(p, (int, float)):
        return [int(p)] * 4
    p = [int(v) for v in p]
    return p * 2 if len(p) == 2 else p


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(fw, fh) of a filter (1, 1 for None)."""
    if f is None:
        return 1, 1
    return (int(f.shape[-1]), int(f.shape[0])) if f.ndim == 2 else (int(f.shape[0]), int(f.shape[0]))


def _axis_pad(x: torch.Tensor, dim: int, p0: int, p1: int) -> torch.Tensor:
    if p0 == 0 and p1 == 0:
        return x
    if p0 <= 0 and p1 <= 0:
        return x.narrow(dim, -p0, x.shape[dim] + p0 + p1)
    return F.pad(x, [p0, p1] if dim == 3 else [0, 0, p0, p1])


def _resample(
    x: torch.Tensor, k: torch.Tensor, up: tuple[int, int], down: tuple[int, int], pad: tuple[int, int, int, int]
) -> torch.Tensor:
    # Zero-insert, pad/crop, correlate with k [kh, kw] (per channel) computing only the kept samples (stride down).
    # A transposed convolution (polyphase upsampling) measured slower than zero insertion + conv2d on CPU.
    n, c, h, w = x.shape
    (uy, ux), (dy, dx), (px0, px1, py0, py1) = up, down, pad
    if uy > 1 or ux > 1:
        x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, ux - 1, 0, 0, 0, uy - 1]).reshape(n, c, h * uy, w * ux)
    x = _axis_pad(_axis_pad(x, 2, py0, py1), 3, px0, px1)
    return F.conv2d(x, k[None, None].expand(c, 1, *k.shape).contiguous(), stride=(dy, dx), groups=c)


def upfirdn2d(
    x: torch.Tensor, f: torch.Tensor | None, up=1, down=1, padding=0, flip_filter: bool = False, gain: float = 1
) -> torch.Tensor:
    """Upsample by zero insertion, pad [x0, x1, y0, y1] (negative crops), FIR filter, keep every `down`-th
    sample (only the kept samples are computed); a 1-D filter as two 1-D passes (horizontal, then vertical).
    # [N, C, H, W] -> [N, C, H', W']"""
    upx, upy = _pair(up)
    downx, downy = _pair(down)
    px0, px1, py0, py1 = _padding4(padding)
    if f is None:
        if upx > 1 or upy > 1:
            n, c, h, w = x.shape
            x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, upx - 1, 0, 0, 0, upy - 1]).reshape(n, c, h * upy, w * upx)
        x = _axis_pad(_axis_pad(x, 2, py0, py1), 3, px0, px1)
        x = x[:, :, ::downy, ::downx] if downx > 1 or downy > 1 else x
        return x * gain if gain != 1 else x
    f = (f * (gain ** (f.ndim / 2))).to(device=x.device, dtype=x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        return _resample(x, f, (upy, upx), (downy, downx), (px0, px1, py0, py1))
    x = _resample(x, f[None, :], (1, upx), (1, downx), (px0, px1, 0, 0))
    return _resample(x, f[:, None], (upy, 1), (downy, 1), (0, 0, py0, py1))


def upsample2d(
    x: torch.Tensor, f: torch.Tensor | None, up=2, padding=0, flip_filter: bool = False, gain: float = 1
) -> torch.Tensor:
    """FIR upsampling by `up` that keeps the signal centred.  # [N, C, H, W] -> [N, C, H*up, W*up]"""
    upx, upy = _pair(up)
    px0, px1, py0, py1 = _padding4(padding)
    fw, fh = filter_size(f)
    p = [px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2, py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=(upx, upy), padding=p, flip_filter=flip_filter, gain=gain * upx * upy)


def downsample2d(
    x: torch.Tensor, f: torch.Tensor | None, down=2, padding=0, flip_filter: bool = False, gain: float = 1
) -> torch.Tensor:
    """FIR downsampling by `down`.  # [N, C, H, W] -> [N, C, H/down, W/down]"""
    downx, downy = _pair(down)
    px0, px1, py0, py1 = _padding4(padding)
    fw, fh = filter_size(f)
    p = [px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2, py0 + (fh - downy + 1) // 2, py1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=(downx, downy), padding=p, flip_filter=flip_filter, gain=gain)


def filter2d(
    x: torch.Tensor, f: torch.Tensor | None, padding=0, flip_filter: bool = False, gain: float = 1
) -> torch.Tensor:
    """FIR filtering at the same size.  # [N, C, H, W] -> [N, C, H, W]"""
    px0, px1, py0, py1 = _padding4(padding)
    fw, fh = filter_size(f)
    p = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain)


def _conv(x, w, stride=1, padding=0, groups=1, transpose=False, flip_weight=True):
    if not flip_weight and (w.shape[-1] > 1 or w.shape[-2] > 1):
        w = w.flip([2, 3])
    op = F.conv_transpose2d if transpose else F.conv2d
    return op(x, w, stride=stride, padding=padding, groups=groups)


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding=0,
    groups: int = 1,
    flip_weight: bool = True,
    flip_filter: bool = False,
) -> torch.Tensor:
    """2-D convolution with FIR up/downsampling (transposed conv + filter for up, filter + strided conv for
    down).  # x [N, C_in, H, W], w [C_out, C_in/groups, kh, kw] -> [N, C_out, H*up/down, W*up/down]"""
    out_ch, in_per_group, kh, kw = w.shape
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = _padding4(padding)
    if up > 1:
        px0, px1, py0, py1 = (
            px0 + (fw + up - 1) // 2,
            px1 + (fw - up) // 2,
            py0 + (fh + up - 1) // 2,
            py1 + (fh - up) // 2,
        )
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up**2, flip_filter=flip_filter)
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)
    if up > 1:
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, out_ch // groups, in_per_group, kh, kw).transpose(1, 2)
            w = w.reshape(groups * in_per_group, out_ch // groups, kh, kw)
        px0, px1, py0, py1 = px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up)
        pxt, pyt = max(min(-px0, -px1), 0), max(min(-py0, -py1), 0)
        x = _conv(x, w, stride=up, padding=[pyt, pxt], groups=groups, transpose=True, flip_weight=not flip_weight)
        x = upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up**2, flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return x
    if up == 1 and down == 1 and px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)
    x = upfirdn2d(x, f if up > 1 else None, up=up, padding=[px0, px1, py0, py1], gain=up**2, flip_filter=flip_filter)
    x = _conv(x, w, groups=groups, flip_weight=flip_weight)
    if down > 1:
        x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
    return x


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused_modconv: bool = True,
) -> torch.Tensor:
    """StyleGAN2 weight modulation (per-sample input-channel scales) and demodulation (unit output norm, eps 1e-8),
    then conv2d_resample; `noise` is added after demodulation.
    # x [N, C_in, H, W], weight [C_out, C_in, kh, kw], styles [N, C_in] -> [N, C_out, H', W']"""
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    dcoefs = None
    if demodulate:  # |weight * styles| per output channel, without the [N, C_out, C_in, kh, kw] product
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [N, C_out]
    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        x = conv2d_resample(
            x, weight.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding, flip_weight=flip_weight
        )
        if demodulate and noise is not None:
            return torch.addcmul(noise.to(x.dtype), x, dcoefs.to(x.dtype).reshape(n, -1, 1, 1))
        if demodulate:
            return x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
        return x + noise.to(x.dtype) if noise is not None else x
    scale = styles.reshape(n, 1, -1, 1, 1)
    if demodulate:
        scale = scale * dcoefs.reshape(n, -1, 1, 1, 1)
    w = weight.unsqueeze(0) * scale  # [N, C_out, C_in, kh, kw]
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_ch, kh, kw)
    x = conv2d_resample(
        x, w.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding, groups=n, flip_weight=flip_weight
    )
    x = x.reshape(n, -1, *x.shape[2:])
    return x + noise if noise is not None else x
