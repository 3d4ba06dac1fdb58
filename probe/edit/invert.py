"""GAN inversion: find the latent whose image matches a given image, with no downloaded perceptual network.

Loss: L1 + MSE over an image pyramid (full size down to 8 px), plus an optional SSIM term. Schedule as in the
StyleGAN2-ADA projector: Adam, learning rate ramped up over the first 5 % of steps and cosine-down over the last
25 %, Gaussian noise added to the latent that decays to zero at 75 % of the steps. Start: w_avg for w / ws
(mean of 10,000 mapped z), or the best of `n_init` z (z = 0 and seeded draws) for z-only models, with a norm
regulariser that keeps z near the prior's shell (|z| ~ sqrt(z_dim)).

Photographs are first aligned to a face model's framing (models whose zoo entry sets `defaults.align_faces`): a
similarity transform that maps the 5 dlib landmarks onto `FACE_TEMPLATE`, the mean landmarks of generated faces
(`probe.measures.face_align`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ProbeError
from ..measures.face_align import FACE_TEMPLATE, FaceAlignError  # noqa: F401 - FACE_TEMPLATE re-exported
from ..measures.face_align import align_face as _align_face
from ..models.base import Generator


class InversionError(ProbeError):
    """An image could not be inverted as asked; the message names the field and the fix."""


@dataclass
class InversionResult:
    """latent [1, *shape(space)]; img (reconstruction) and target [3, H, W] in [-1, 1]; psnr in dB (peak = 2).

    offsets: {site: [1, C, h, w]} feature offsets of an extended inversion (empty otherwise); render with
    `with model.offsets(res.offsets): model.synthesize(res.latent, res.space)`. psnr_latent: PSNR of the latent
    alone (before the offsets). status: "ok" (ran every step) | "stopped" (`Inversion.stop()` ended it early).
    """

    latent: torch.Tensor
    space: str
    img: torch.Tensor
    target: torch.Tensor
    psnr: float
    psnr_init: float
    history: list = field(default_factory=list)
    seconds: float = 0.0
    aligned: bool = False
    offsets: dict = field(default_factory=dict)
    psnr_latent: float | None = None
    status: str = "ok"


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two images in [-1, 1] (peak-to-peak 2).  # a, b [..., 3, H, W]"""
    mse = float(F.mse_loss(a.float(), b.float()))
    return float("inf") if mse == 0 else 10 * math.log10(4.0 / mse)


def _to_uint8(img) -> np.ndarray:
    """A PIL image, path or uint8 array -> [H, W, 3] uint8."""
    from PIL import Image

    if isinstance(img, (str, Path)):
        p = Path(img)
        if not p.is_file():
            raise InversionError(f"image file {str(p)!r} does not exist")
        try:
            img = Image.open(p)
            img.load()
        except Exception as e:  # noqa: BLE001 - any decoder failure reads the same to the user
            raise InversionError(
                f"image file {p.name!r} could not be read as an image ({type(e).__name__}); pass a PNG or JPEG"
            ) from None
    if isinstance(img, Image.Image):
        img = np.asarray(img.convert("RGB"))
    a = np.asarray(img)
    if a.dtype != np.uint8:
        raise InversionError(
            f"img: numpy images must be uint8 [H, W, 3] (0..255), got dtype {a.dtype}; pass a "
            f"torch tensor [3, H, W] in [-1, 1] for float data"
        )
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, -1)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise InversionError(f"img: expected an RGB image [H, W, 3], got shape {list(a.shape)}")
    if min(a.shape[:2]) < 16:
        raise InversionError(f"img: image is too small ({a.shape[1]}x{a.shape[0]}); give at least 16x16 pixels")
    return np.ascontiguousarray(a[..., :3])


def _from_uint8(a: np.ndarray) -> torch.Tensor:  # [H, W, 3] -> [3, H, W] in [-1, 1]
    return torch.from_numpy(a.astype(np.float32) / 127.5 - 1).permute(2, 0, 1).contiguous()


def _resize(a: np.ndarray, res: int) -> np.ndarray:  # centre square crop, then resize
    from PIL import Image

    h, w = a.shape[:2]
    s = min(h, w)
    a = a[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    return np.asarray(Image.fromarray(a).resize((res, res), Image.LANCZOS))


def align_face(photo, resolution: int, iterations: int = 2) -> torch.Tensor:
    """Crop and align a face photo (PIL, uint8 [H, W, 3] or path) to the face model's framing
    (`probe.measures.face_align`).  # -> img [3, R, R] in [-1, 1]"""
    try:
        return _align_face(_to_uint8(photo), resolution, iterations)
    except FaceAlignError as e:
        raise InversionError(str(e)) from None


def prepare_image(model: Generator, img, align: bool | None = None) -> tuple[torch.Tensor, bool]:
    """Turn a tensor / PIL image / uint8 array / path into the model's framing.  # -> img [3, R, R], aligned

    Tensors must be [3, R, R] (or [1, 3, R, R]) in [-1, 1] at the model's resolution R; pictures are aligned
    (face models, align=None or True) or centre-cropped and resized.
    """
    res = model.resolution
    if isinstance(img, torch.Tensor):
        t = img.detach().float().cpu()
        if t.dim() == 4 and t.shape[0] == 1:
            t = t[0]
        if t.dim() != 3 or t.shape[0] != 3 or tuple(t.shape[1:]) != (res, res):
            raise InversionError(
                f"img: expected a tensor [3, {res}, {res}] in [-1, 1] for model {model.name!r}, got "
                f"{list(img.shape)}; pass a PIL image or uint8 array to have it cropped and resized"
            )
        if not torch.isfinite(t).all() or t.min() < -1.001 or t.max() > 1.001:
            raise InversionError("img: tensor values must be finite and in [-1, 1] (x / 127.5 - 1 for 0..255 data)")
        return t, False
    if not isinstance(img, (np.ndarray, str, Path)) and not hasattr(img, "convert"):
        raise InversionError(
            f"img: expected a torch tensor [3, H, W], a PIL image, a uint8 array [H, W, 3] or a "
            f"file path, got {type(img).__name__}"
        )
    a = _to_uint8(img)
    if align is None:
        align = model.defaults.align_faces
    if align:
        return align_face(a, res), True
    return _from_uint8(_resize(a, res)), False


def _gauss(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None]).expand(3, 1, size, size)


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Mean SSIM of images in [-1, 1] (Gaussian window, sigma 1.5).  # x, y [N, 3, H, W] -> scalar"""
    k = _gauss(window, 1.5).to(x)
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    f = lambda t: F.conv2d(t, k, groups=3)  # noqa: E731
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
    return (((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).mean()


def image_loss(x: torch.Tensor, y: torch.Tensor, ssim_weight: float = 0.0) -> torch.Tensor:
    """L1 + MSE summed over a pyramid (halving down to 8 px) + ssim_weight * (1 - SSIM).  # per batch item [N]"""
    total = x.new_zeros(x.shape[0])
    if ssim_weight:
        total = total + ssim_weight * torch.stack([1 - ssim(a[None], b[None]) for a, b in zip(x, y)])
    while True:
        total = total + (x - y).abs().mean((1, 2, 3)) + (x - y).square().mean((1, 2, 3))
        if min(x.shape[-2:]) < 16:
            return total
        x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)


def _start(model: Generator, space: str, target: torch.Tensor, n_init: int, seed: int, ssim_weight: float):
    """Initial latent [1, *shape] and its per-dimension noise scale."""
    if space == "z":
        z = torch.cat([torch.zeros(1, model.z_dim, device=model.device), model.sample(max(n_init - 1, 0), seed)])
        with torch.no_grad():
            imgs = torch.cat([model.synthesize(c, "z") for c in z.split(32)])
            loss = image_loss(imgs, target.expand_as(imgs), ssim_weight)
        return z[int(loss.argmin())][None], math.sqrt(model.z_dim)
    with torch.no_grad():
        w = model.to_space(model.sample(10_000, 123), "z", "w")
        avg = model.w_avg() if hasattr(model, "w_avg") else w.mean(0)
        std = float((w - avg).square().sum(1).mean().sqrt())
    w0 = avg.reshape(1, -1).to(model.device)
    return (w0 if space == "w" else w0[:, None].repeat(1, model.num_ws, 1)), std


@dataclass
class InversionStep:
    """State after one optimisation step. stage: "latent" | "offset"; latent [1, *shape(space)] after the step;
    img [3, H, W] in [-1, 1]: the render the step's loss was computed on (before the update)."""

    step: int
    stage: str
    loss: float
    latent: torch.Tensor
    img: torch.Tensor


class Inversion:
    """GAN inversion as an editing method: construct with parameters, iterate `steps(model, img)`.

    Parameters: space (None: w where the model has a mapping network, else z; "ws" optimises W+), max_steps,
    lr, ssim_weight, noise, reg (z norm regulariser (|z|/sqrt(z_dim) - 1)^2), n_init, seed, align (None: the
    model's `defaults.align_faces`), offset_site (an extended inversion: after the latent, an additive offset
    to that site's features [1, C, h, w] is optimised with the latent fixed, for offset_steps with Adam(offset_lr),
    penalised by offset_reg * mean(offset^2) / mean(feature^2)).

    `steps(...)` yields an `InversionStep` per optimisation step and finally the `InversionResult`, like the drag
    methods: stop early by not iterating further, or call `stop()` (the generator then yields the result of the
    current latent, status "stopped", and skips any remaining stage). `run(...)` drains it. Resume a stopped run
    with `steps(model, img, start=result.latent)` (start replaces the initial latent; the schedule restarts).
    """

    method = "invert"

    def __init__(
        self,
        space: str | None = None,
        max_steps: int = 400,
        lr: float = 0.1,
        ssim_weight: float = 0.5,
        noise: float = 0.05,
        reg: float = 0.1,
        n_init: int = 32,
        seed: int = 0,
        align: bool | None = None,
        offset_site: str | None = None,
        offset_steps: int = 200,
        offset_lr: float = 0.01,
        offset_reg: float = 1.0,
    ):
        if max_steps < 1 or lr <= 0:
            raise InversionError(f"steps must be >= 1 and lr > 0; got steps={max_steps}, lr={lr}")
        if offset_site is not None and (offset_steps < 1 or offset_lr <= 0 or offset_reg < 0):
            raise InversionError(
                f"offset_steps must be >= 1, offset_lr > 0 and offset_reg >= 0; got "
                f"{offset_steps}, {offset_lr}, {offset_reg}"
            )
        self.space, self.max_steps, self.lr, self.ssim_weight = space, int(max_steps), float(lr), float(ssim_weight)
        self.noise, self.reg, self.n_init, self.seed, self.align = (
            float(noise),
            float(reg),
            int(n_init),
            int(seed),
            align,
        )
        self.offset_site, self.offset_steps = offset_site, int(offset_steps)
        self.offset_lr, self.offset_reg = float(offset_lr), float(offset_reg)
        self._stop = False

    def params(self) -> dict:
        """The constructor parameters (JSON-serialisable)."""
        return {
            k: getattr(self, k)
            for k in (
                "space",
                "max_steps",
                "lr",
                "ssim_weight",
                "noise",
                "reg",
                "n_init",
                "seed",
                "align",
                "offset_site",
                "offset_steps",
                "offset_lr",
                "offset_reg",
            )
        }

    def stop(self) -> None:
        """Ask a running `steps` generator to finish after the current step (thread-safe: a flag)."""
        self._stop = True

    def run(self, model: Generator, img, start: torch.Tensor | None = None) -> InversionResult:
        """Drain `steps` and return the InversionResult."""
        for item in self.steps(model, img, start):
            pass
        return item

    def steps(self, model: Generator, img, start: torch.Tensor | None = None) -> Iterator:
        """Yield InversionStep per step, then InversionResult.  # img [3, H, W] | PIL | uint8 [H, W, 3] | path"""
        self._stop = False
        t0 = time.perf_counter()
        space = self.space or ("w" if "w" in model.spaces else "z")
        model.check_space(space)
        site = self.offset_site
        if site is not None and site not in model.sites:
            raise InversionError(
                f"offset_site: site {site!r} does not exist in model {model.name!r}; use one of {list(model.sites)}"
            )
        target, aligned = prepare_image(model, img, self.align)
        target = target.to(model.device)[None]
        steps, lr, sw = self.max_steps, self.lr, self.ssim_weight
        lat0, std = _start(model, space, target, self.n_init, self.seed, sw)
        if start is not None:
            lat0 = model.check_latent(torch.as_tensor(start), space).detach().clone().to(model.device)
        lat = lat0.clone().requires_grad_(True)
        opt = torch.optim.Adam([lat], lr=lr, betas=(0.9, 0.999))
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        with torch.no_grad():
            p_init = psnr(model.synthesize(lat0, space), target)
        history, status = [], "ok"
        for i in range(steps):
            if self._stop:
                status = "stopped"
                break
            t = i / steps
            ramp = 0.5 - 0.5 * math.cos(min(1.0, (1.0 - t) / 0.25) * math.pi)
            for g in opt.param_groups:
                g["lr"] = lr * ramp * min(1.0, (i + 1) / (0.05 * steps))
            sigma = std * self.noise * max(0.0, 1.0 - t / 0.75) ** 2
            x = lat + torch.randn(lat.shape, generator=gen).to(lat.device) * sigma
            rendered = model.synthesize(x, space)
            loss = image_loss(rendered, target, sw).sum()
            if space == "z" and self.reg:
                loss = loss + self.reg * (lat.norm(dim=1) / math.sqrt(model.z_dim) - 1).square().sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            history.append(float(loss.detach()))
            yield InversionStep(i, "latent", history[-1], lat.detach().clone(), rendered[0].detach())
        lat = lat.detach().clone()
        with torch.no_grad():
            out = model.synthesize(lat, space)
        p_lat, offsets = psnr(out, target), {}
        if site is not None and status == "ok":
            delta = yield from self._offset_steps(model, lat, space, target, site, history)
            offsets = {site: delta}
            if self._stop:
                status = "stopped"
            with torch.no_grad(), model.offsets(offsets):
                out = model.synthesize(lat, space)
        yield InversionResult(
            lat,
            space,
            out[0].cpu(),
            target[0].cpu(),
            psnr(out, target),
            p_init,
            history,
            time.perf_counter() - t0,
            aligned,
            offsets,
            p_lat,
            status,
        )

    def _offset_steps(self, model, lat, space, target, site, history):
        """Stage 2 of an extended inversion: yields steps, returns the offset [1, C, h, w] (latent held fixed)."""
        with torch.no_grad():
            f = model.features(lat, space, [site])[site]
        power = float(f.square().mean()) + 1e-12
        delta = torch.zeros_like(f).requires_grad_(True)
        opt = torch.optim.Adam([delta], lr=self.offset_lr)
        for _ in range(self.offset_steps):
            if self._stop:
                break
            with model.offsets({site: delta}):
                x = model.synthesize(lat, space)
            loss = image_loss(x, target, self.ssim_weight).sum() + self.offset_reg * delta.square().mean() / power
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            history.append(float(loss.detach()))
            yield InversionStep(len(history) - 1, "offset", history[-1], lat, x[0].detach())
        return delta.detach().clone()


def invert(model: Generator, img, steps: int = 400, **params) -> InversionResult:
    """`Inversion(max_steps=steps, **params).run(model, img)` in one call; params as `Inversion` takes them (space,
    lr, ssim_weight, noise, reg, n_init, seed, align, offset_site, offset_steps, offset_lr, offset_reg).
    # -> InversionResult, latent [1, *shape]"""
    return Inversion(max_steps=steps, **params).run(model, img)


def comparison_png(panels: list[torch.Tensor], path, size: int = 256) -> Path:
    """Save images [3, H, W] in [-1, 1] side by side, each resized to `size` px (nearest), as a PNG."""
    from PIL import Image

    tiles = [
        Image.fromarray(((p.detach().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()).resize(
            (size, size), Image.NEAREST
        )
        for p in panels
    ]
    canvas = Image.new("RGB", (size * len(tiles) + 4 * (len(tiles) - 1), size), (255, 255, 255))
    for i, t in enumerate(tiles):
        canvas.paste(t, (i * (size + 4), 0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path
