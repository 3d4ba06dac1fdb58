"""Image statistics measures (no model): brightness, contrast, saturation, hue, luminance centroid."""

from __future__ import annotations

import math

import numpy as np
import torch

from .base import Measure, MeasureInfo, check_img


class ImageStats(Measure):
    device = "any"  # computes on the images' device
    infos = (
        MeasureInfo("brightness", "fraction", 0.0, 1.0, "mean luma (Rec. 601) of the image, 0 = black, 1 = white"),
        MeasureInfo("contrast", "fraction", 0.0, 0.5, "standard deviation of luma over pixels"),
        MeasureInfo("saturation", "fraction", 0.0, 1.0, "mean HSV saturation"),
        MeasureInfo(
            "hue", "degrees", 0.0, 360.0, "saturation-weighted circular mean HSV hue", kind="circular", period=360.0
        ),
        MeasureInfo("centroid_x", "fraction of width", 0.0, 1.0, "luma-weighted centre of mass, x (0 = left)"),
        MeasureInfo("centroid_y", "fraction of height", 0.0, 1.0, "luma-weighted centre of mass, y (0 = top)"),
    )

    def __call__(self, img: torch.Tensor) -> dict[str, np.ndarray]:
        x = (check_img(img, keep_device=True).clamp(-1, 1) + 1) / 2  # [N, 3, H, W] in [0, 1]
        r, g, b = x[:, 0], x[:, 1], x[:, 2]
        luma = 0.299 * r + 0.587 * g + 0.114 * b
        mx, mn = x.max(1).values, x.min(1).values
        chroma = mx - mn
        sat = torch.where(mx > 0, chroma / mx.clamp_min(1e-12), torch.zeros_like(mx))
        safe = chroma.clamp_min(1e-12)
        h = torch.where(mx == r, ((g - b) / safe) % 6, torch.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4))
        ang = h * (math.pi / 3)
        wgt = sat * (chroma > 0)
        hue = torch.rad2deg(torch.atan2((wgt * ang.sin()).sum((1, 2)), (wgt * ang.cos()).sum((1, 2)))) % 360
        H, W = luma.shape[1:]
        tot = luma.sum((1, 2)).clamp_min(1e-12)
        dark = luma.sum((1, 2)) <= 1e-12
        xs = (torch.arange(W, device=x.device) + 0.5) / W
        ys = (torch.arange(H, device=x.device) + 0.5) / H
        out = {
            "brightness": luma.mean((1, 2)),
            "contrast": luma.flatten(1).std(1, unbiased=False),
            "saturation": sat.mean((1, 2)),
            "hue": hue,
            "centroid_x": torch.where(dark, 0.5, (luma.sum(1) * xs).sum(1) / tot),  # black image: centre
            "centroid_y": torch.where(dark, 0.5, (luma.sum(2) * ys).sum(1) / tot),
        }
        return {k: v.double().cpu().numpy() for k, v in out.items()}
