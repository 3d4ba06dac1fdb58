"""Point-drag editing: DragGAN (motion supervision + point tracking) and FreeDrag (adaptive template + line search).

Both work on any `Generator` that exposes a feature `site`: the site's features are bilinearly resized to the
image size, and the latent is optimised with Adam (z for z-only models; the first `layers` rows of ws for
StyleGAN-like models, the rest held fixed). Points are (x, y) pixel coordinates of the image. Radii and steps are
given at 512 px, as in the papers, and scaled by H/512 (at least 1 px).

`.drag(...)` is a generator: it yields a `DragStep` per optimisation step (stop iterating to stop the edit) and
finally a `DragResult`. `.run(...)` drains it and returns the `DragResult`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ProbeError
from ..models.base import Generator

# Per-(model name, method) defaults for parameters left as None. faces: tuned on pairs of seed 0, checked on held-out
# pairs of seed 1 (docs/readme/50-editing.md); sprites: b16 beat b8 and b32 in the sprite-centre protocol
# (docs/readme/82-sprites-groundtruth.md). Radii are px at 512, as in the papers.
MODEL_DEFAULTS = {("faces", "draggan"): {"site": "b2", "r1": 48, "r2": 24}, ("faces", "freedrag"): {"site": "b4"},
                  ("sprites", "draggan"): {"site": "b16", "layers": 3},   # ws 0-2: the 4x4 block carries position
                  ("sprites", "freedrag"): {"site": "b16", "layers": 3}}
DEFAULT_SITES = {k: v["site"] for k, v in MODEL_DEFAULTS.items()}


class DragError(ProbeError):
    """A drag could not run as asked; the message names the field and the fix."""


@dataclass
class DragStep:
    """State after one optimisation step: points [K, 2] (x, y), loss, img [3, H, W] in [-1, 1] (before the step)."""

    step: int
    points: np.ndarray
    loss: float
    img: torch.Tensor


@dataclass
class DragResult:
    """Final state. latent [1, *shape(space)]; trajectory [S + 1, K, 2] (x, y) per handle; img [3, H, W]."""

    latent: torch.Tensor
    space: str
    handles: np.ndarray
    targets: np.ndarray
    trajectory: np.ndarray
    steps: int
    seconds: float
    img: torch.Tensor
    converged: bool
    losses: list = field(default_factory=list)

    @property
    def points(self) -> np.ndarray:
        """Final handle positions.  # [K, 2]"""
        return self.trajectory[-1]

    @property
    def distances(self) -> np.ndarray:
        """Final distance of each handle to its target (px).  # [K]"""
        return np.linalg.norm(self.points - self.targets, axis=1)


def default_site(model: Generator, method: str = "draggan") -> str:
    """The site used when none is given: a per-model default, else the site whose feature size is closest to H/2."""
    if DEFAULT_SITES.get((model.name, method)) in model.sites:
        return DEFAULT_SITES[(model.name, method)]
    if not model.sites:
        raise DragError(f"model {model.name!r} exposes no feature site; drag needs one (Generator.site_modules)")
    lat = model.to_space(model.sample(1, 0), "z", "ws") if "ws" in model.spaces else model.sample(1, 0)
    feats = model.features(lat, "ws" if "ws" in model.spaces else "z", model.sites)
    sizes = {s: f.shape[-1] for s, f in feats.items() if f.dim() == 4}
    if not sizes:
        raise DragError(f"model {model.name!r}: no site returns a [N, C, h, w] feature map; pass site=")
    goal = model.resolution / 2
    return min(sizes, key=lambda s: (abs(math.log(sizes[s] / goal)), -sizes[s]))


def scaled(r: float, resolution: int) -> int:
    """A radius given at 512 px, at this resolution: round(r * H / 512), at least 1."""
    return max(1, int(round(r * resolution / 512)))


def as_points(points, name: str, resolution: int | None = None) -> np.ndarray:
    """Validate (x, y) points.  # -> [K, 2] float64"""
    try:
        p = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise DragError(f"{name}: expected a list of (x, y) pairs, got {points!r}") from None
    if p.ndim == 1 and p.size == 2:
        p = p[None]
    if p.ndim != 2 or p.shape[1] != 2 or len(p) == 0:
        raise DragError(f"{name}: expected a list of (x, y) pairs, got shape {list(p.shape)}")
    if not np.isfinite(p).all():
        raise DragError(f"{name}: points must be finite numbers")
    if resolution is not None and ((p < 0) | (p > resolution - 1)).any():
        raise DragError(f"{name}: points must lie inside the {resolution}x{resolution} image "
                        f"(0 <= x, y <= {resolution - 1}); got {p.tolist()}")
    return p


def _sample(feat: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    """Bilinear feature reads at (x, y) pixel positions.  # feat [1, C, H, W], pts [P, 2] -> [P, C]"""
    h, w = feat.shape[-2:]
    g = torch.stack([(2 * pts[:, 0] + 1) / w - 1, (2 * pts[:, 1] + 1) / h - 1], -1)
    out = F.grid_sample(feat, g[None, None].to(feat.dtype), mode="bilinear", padding_mode="border", align_corners=False)
    return out[0, :, 0].T


class _Latent:
    """The optimised part of a latent, fixed feature offsets, and how to rebuild the full code."""

    def __init__(self, model: Generator, latent, space: str, layers: int, offsets=None):
        lat = model.check_latent(latent, space)
        if lat.shape[0] != 1:
            raise DragError(f"latent: drag edits one image at a time; pass one latent [1, ...], got {lat.shape[0]}")
        if "ws" in model.spaces:
            ws = model.to_space(lat, space, "ws").detach()
            k = max(1, min(int(layers), ws.shape[1]))
            self.space, self.fixed = "ws", ws[:, k:].clone()
            self.param = ws[:, :k].clone().requires_grad_(True)
        else:
            self.space, self.fixed = space, None
            self.param = lat.detach().clone().requires_grad_(True)
        self.start = self.param.detach().clone()
        self.offsets = model.check_offsets(offsets)

    @torch.no_grad()
    def project(self) -> None:
        """z-space: keep |z| at its starting value (the prior's shell), as iso-density walks do."""
        n0, n = self.start.norm(dim=-1, keepdim=True), self.param.norm(dim=-1, keepdim=True)
        if self.space == "z" and float(n0.min()) > 0:
            self.param.mul_(n0 / n.clamp_min(1e-12))

    def full(self) -> torch.Tensor:
        return self.param if self.fixed is None else torch.cat([self.param, self.fixed], 1)

    def forward(self, model: Generator, sites):
        """Render with the fixed feature offsets (if any).  # -> img, {site: feat}"""
        with model.offsets(self.offsets):
            return model.forward(self.full(), self.space, sites)


class _DragBase:
    def __init__(self, site: str | None, lr: float, max_steps: int, d_stop: float, layers: int | None, lam: float,
                 reg: float = 0.0, keep_norm: bool = False):
        if lr <= 0 or max_steps < 0 or d_stop < 0:
            raise DragError(f"lr must be > 0, max_steps >= 0 and d_stop >= 0; got lr={lr}, max_steps={max_steps}, "
                            f"d_stop={d_stop}")
        self.site, self.lr, self.max_steps, self.d_stop = site, float(lr), int(max_steps), float(d_stop)
        self.layers, self.lam, self.reg = None if layers is None else int(layers), float(lam), float(reg)
        self.keep_norm = bool(keep_norm)

    def run(self, model: Generator, latent, space: str, handles, targets, mask=None, offsets=None) -> DragResult:
        """Drain `drag` and return the final DragResult."""
        for item in self.drag(model, latent, space, handles, targets, mask, offsets):
            pass
        return item

    def _setup(self, model, latent, space, handles, targets, mask, offsets):
        res = model.resolution
        h = as_points(handles, "handles", res)
        t = as_points(targets, "targets", res)
        if len(h) != len(t):
            raise DragError(f"handles and targets must pair up; got {len(h)} handles and {len(t)} targets")
        site = self.site or default_site(model, self.method)
        model.check_site(site)
        m = None
        if mask is not None:
            m = torch.as_tensor(np.asarray(mask), dtype=torch.float32)
            if m.shape != (res, res):
                raise DragError(f"mask: expected a [{res}, {res}] array (1 = may change), got {list(m.shape)}")
            m = m.to(model.device)[None, None]
        return h, t, site, m, _Latent(model, latent, space, self.setting(model, "layers", 6), offsets)

    @staticmethod
    def _render(model, lat: _Latent, site: str, scale: float | None = None):
        img, feats = lat.forward(model, [site])
        f = feats[site]
        if f.dim() != 4:
            raise DragError(f"site {site!r} returns shape {list(f.shape)}, not a [N, C, h, w] feature map; pick another")
        f = F.interpolate(f, size=img.shape[-2:], mode="bilinear", align_corners=False)
        return img, f if scale is None else f / scale

    def setting(self, model: Generator, name: str, paper: float):
        """A parameter's value: as given, else the per-model default (MODEL_DEFAULTS), else the paper's."""
        given = getattr(self, name)
        return given if given is not None else MODEL_DEFAULTS.get((model.name, self.method), {}).get(name, paper)

    def _opt_step(self, opt, loss, lat, losses: list) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if self.keep_norm:
            lat.project()
        losses.append(float(loss.detach()))

    def _mask_loss(self, f, f0, m, lat: _Latent):
        """lam * |(F - F0) * (1 - M)| (mask given) + reg * |latent - latent0| (mean L1)."""
        out = self.lam * ((f - f0).abs() * (1 - m)).mean() if m is not None and self.lam > 0 else f.new_zeros(())
        return out + self.reg * (lat.param - lat.start).abs().mean() if self.reg > 0 else out


class DragGAN(_DragBase):
    """DragGAN: shifted-patch L1 motion supervision in a disc of radius r1 + nearest-neighbour tracking in radius r2.

    Parameters: r1, r2 (px at 512, scaled to the model; None: the per-model default, else the paper's 3 and 12),
    lam (mask weight), lr (Adam), max_steps, d_stop (px: stop when every handle is this close to its target),
    site (None: per-model default), layers (ws rows optimised; None: the per-model default, else 6),
    reg (weight of mean |latent - latent0|), keep_norm (z: hold |z| at its start value).
    """

    method = "draggan"

    def __init__(self, r1: float | None = None, r2: float | None = None, lam: float = 20, lr: float = 0.02,
                 max_steps: int = 200, d_stop: float = 1.0, site: str | None = None, layers: int | None = None,
                 reg: float = 0.0, keep_norm: bool = False):
        super().__init__(site, lr, max_steps, d_stop, layers, lam, reg, keep_norm)
        self.r1, self.r2 = r1, r2

    def drag(self, model: Generator, latent, space: str, handles, targets, mask=None, offsets=None) -> Iterator:
        """Yield DragStep per step, then DragResult.  # latent [1, *shape(space)]; handles/targets [K, 2] (x, y)

        offsets: fixed feature offsets {site: [1, C, h, w]} rendered with the latent (from an extended inversion).
        """
        h0, t, site, m, lat = self._setup(model, latent, space, handles, targets, mask, offsets)
        t0 = time.perf_counter()
        res = model.resolution
        r1, r2 = (scaled(self.setting(model, k, paper), res) for k, paper in (("r1", 3), ("r2", 12)))
        dev = model.device
        off = torch.stack(torch.meshgrid(torch.arange(-r1, r1 + 1.0), torch.arange(-r1, r1 + 1.0), indexing="xy"), -1)
        disc = off.reshape(-1, 2)[off.reshape(-1, 2).norm(dim=1) <= r1].to(dev)  # [Q, 2]
        win = torch.arange(-r2, r2 + 1.0, device=dev)
        tt = torch.as_tensor(t, dtype=torch.float32, device=dev)
        opt = torch.optim.Adam([lat.param], lr=self.lr)
        pts, traj, losses = h0.copy(), [h0.copy()], []
        f0 = f_init = scale = None
        step = 0
        while True:
            img, f = self._render(model, lat, site, scale)
            if f0 is None:
                scale = float(f.detach().abs().mean()) + 1e-8
                f = f / scale
                f0 = f.detach()
                f_init = _sample(f0, torch.as_tensor(h0, dtype=torch.float32, device=dev))  # [K, C]
            else:
                pts = self._track(f.detach(), f_init, pts, win, res)
                traj.append(pts.copy())
            dist = np.linalg.norm(pts - t, axis=1)
            if (dist <= self.d_stop).all() or step >= self.max_steps:
                break
            p = torch.as_tensor(pts, dtype=torch.float32, device=dev)
            loss = self._mask_loss(f, f0, m, lat)
            for i in np.flatnonzero(dist > self.d_stop):
                u = (tt[i] - p[i]) / (tt[i] - p[i]).norm()
                q = p[i] + disc
                loss = loss + F.l1_loss(_sample(f, q + u), _sample(f, q).detach())
            self._opt_step(opt, loss, lat, losses)
            yield DragStep(step, pts.copy(), losses[-1], img[0].detach())
            step += 1
        return_img = img[0].detach()
        yield DragResult(lat.full().detach().clone(), lat.space, h0, t, np.stack(traj), step,
                         time.perf_counter() - t0, return_img, bool((dist <= self.d_stop).all()), losses)

    @staticmethod
    def _track(f, f_init, pts, win, res):
        out = pts.copy()
        for i, (x, y) in enumerate(pts):
            xs = (round(x) + win).clamp(0, res - 1).unique()
            ys = (round(y) + win).clamp(0, res - 1).unique()
            patch = f[0][:, ys.long()][:, :, xs.long()]  # [C, hy, hx]
            d = (patch - f_init[i][:, None, None]).norm(dim=0)
            j = int(d.argmin())
            out[i] = (float(xs[j % len(xs)]), float(ys[j // len(xs)]))
        return out


class FreeDrag(_DragBase):
    """FreeDrag: adaptive template feature + line search with backtracking along each handle -> target line.

    Parameters: r (template half-size, px at 512), l (expected feature distance per sub-drag, in units of the mean
    |feature| at the site), d (line-search range, px at 512, scaled), sub_steps (optimisation steps per sub-drag),
    lam (mask weight), lr, max_steps (total optimisation steps), d_stop (px), site, layers (ws rows optimised),
    reg, keep_norm (as in DragGAN).
    """

    method = "freedrag"

    def __init__(self, r: float = 3, l: float = 0.3, d: float = 24, sub_steps: int = 5, lam: float = 10,
                 lr: float = 0.02, max_steps: int = 200, d_stop: float = 1.0, site: str | None = None,
                 layers: int | None = None, reg: float = 0.0, keep_norm: bool = False):
        super().__init__(site, lr, max_steps, d_stop, layers, lam, reg, keep_norm)
        if l <= 0 or d <= 0 or sub_steps < 1:
            raise DragError(f"FreeDrag needs l > 0, d > 0 and sub_steps >= 1; got l={l}, d={d}, sub_steps={sub_steps}")
        self.r, self.l, self.d, self.sub_steps = r, float(l), d, int(sub_steps)

    def drag(self, model: Generator, latent, space: str, handles, targets, mask=None, offsets=None) -> Iterator:
        """Yield DragStep per step, then DragResult.  # latent [1, *shape(space)]; handles/targets [K, 2] (x, y)

        offsets: fixed feature offsets {site: [1, C, h, w]} rendered with the latent (from an extended inversion).
        """
        h0, t, site, m, lat = self._setup(model, latent, space, handles, targets, mask, offsets)
        t0 = time.perf_counter()
        res, dev, l = model.resolution, model.device, self.l
        r, dd = scaled(self.r, res), float(scaled(self.d, res))
        g = torch.arange(-r, r + 1.0, device=dev)
        grid = torch.stack(torch.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2)  # [(2r+1)^2, 2]
        alpha, beta = math.log(9) / (0.6 * l), 0.2 * l
        lam_max = 1 / (1 + math.exp(-alpha * beta))
        span = np.linalg.norm(t - h0, axis=1)  # [K] length of each line
        u = np.where(span[:, None] > 0, (t - h0) / np.maximum(span[:, None], 1e-12), 0.0)
        s = np.zeros(len(h0))  # position of each handle along its line (px)

        def pos(sv):
            return h0 + sv[:, None] * u

        def fr(f, p):  # [K, C]: template read, mean over a (2r+1)^2 grid around each point
            p = torch.as_tensor(p, dtype=torch.float32, device=dev)
            return _sample(f, (p[:, None] + grid).reshape(-1, 2)).reshape(len(p), len(grid), -1).mean(1)

        def search(f, i, lo, hi, goal):  # best s on [lo, hi] (10 candidates), clamped to the segment
            cand = np.clip(lo + (hi - lo) * np.arange(1, 11) / 10, 0, span[i])
            pts = h0[i] + cand[:, None] * u[i]
            dist = (fr(f, pts) - templ[i]).abs().mean(1).cpu().numpy()
            return float(cand[int(np.argmin(np.abs(dist - goal)))])

        opt = torch.optim.Adam([lat.param], lr=self.lr)
        with torch.no_grad():
            img, f = self._render(model, lat, site)
            scale = float(f.abs().mean()) + 1e-8
            f0 = f / scale
            templ = fr(f0, h0)  # [K, C]
        traj, losses = [h0.copy()], []
        step = 0
        active = span > self.d_stop
        for i in np.flatnonzero(active):
            s[i] = search(f0, i, 0.0, dd, l)
        traj.append(pos(s))
        while active.any() and step < self.max_steps:
            l_in = None
            for k in range(self.sub_steps):
                img, f = self._render(model, lat, site, scale)
                per = (fr(f, pos(s)) - templ).abs().mean(1)  # [K]
                if l_in is None:
                    l_in = per.detach().cpu().numpy()
                if per[active].max() < 0.5 * l or step >= self.max_steps:
                    break
                loss = per[active].sum() + self._mask_loss(f, f0, m, lat)
                self._opt_step(opt, loss, lat, losses)
                yield DragStep(step, pos(s), losses[-1], img[0].detach())
                step += 1
            with torch.no_grad():
                img, f = self._render(model, lat, site, scale)
                p = pos(s)
                cur = fr(f, p)
                l_en = (cur - templ).abs().mean(1).cpu().numpy()
                for i in np.flatnonzero(active):
                    lam_i = min(lam_max, 1 / (1 + math.exp(alpha * (l_en[i] - beta))))
                    templ[i] = lam_i * cur[i] + (1 - lam_i) * templ[i]
                    if l_en[i] <= 0.5 * l:
                        if span[i] - s[i] <= self.d_stop:
                            s[i], active[i] = span[i], False  # arrived and matched
                        else:
                            s[i] = search(f, i, s[i], s[i] + dd, l)
                    elif l_en[i] > l_in[i]:  # got worse: step back by d, closest match over 2d
                        s[i] = search(f, i, s[i] - dd, s[i] + dd, 0.0)
            traj.append(pos(s))
        with torch.no_grad():
            img, _ = self._render(model, lat, site)
        pts = pos(s)
        done = bool((np.linalg.norm(pts - t, axis=1) <= self.d_stop).all())
        yield DragResult(lat.full().detach().clone(), lat.space, h0, t, np.stack(traj), step,
                         time.perf_counter() - t0, img[0].detach(), done, losses)


METHODS = {"draggan": DragGAN, "freedrag": FreeDrag}


def make_drag(method: str, **kw) -> DragGAN | FreeDrag:
    """DragGAN or FreeDrag by name ("draggan" | "freedrag")."""
    if method not in METHODS:
        raise DragError(f"--method: unknown drag method {method!r}; use one of {list(METHODS)}")
    return METHODS[method](**kw)
