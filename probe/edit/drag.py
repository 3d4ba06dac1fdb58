"""Point-drag editing: DragGAN (motion supervision + point tracking) and FreeDrag (adaptive template + line search).

Both work on any `Generator` that exposes a feature `site`, and optimise the latent with Adam (z for z-only
models; the first `layers` rows of ws for StyleGAN-like models, the rest held fixed), optionally together with an
additive feature offset at a site (`extend`, an extended latent) and a locality term that holds the image outside
the handle region. Points are (x, y) pixel coordinates of the image. Radii and steps are given at 512 px, as in
the papers, and scaled by H/512 (at least 1 px).

Every parameter left as None takes the model's tuned value (`model.defaults.drag_params(method)`), else the
official implementation's default. Where this toolkit differs from the official code, the difference is an option
whose default is the official behaviour (DragGAN: `viz/renderer.py` `_render_drag_impl`; FreeDrag:
`functions.py` `free_drag`, `get_each_point`, `update_signs`, `get_position_for_feature`, `get_features_plus`).
With the defaults both reproduce the official trajectories step for step (`scripts/compare_official_drag.py`;
`tests/edit/test_official_drag.py` replays the official runs).

`.drag(...)` (alias `.steps(...)`) is a generator: it yields a `DragStep` per optimisation step and finally a
`DragResult`. Stop it by not iterating further, or call `.stop()`: the generator then ends after the current step
and yields the `DragResult` of the current latent with status "stopped". Resume by dragging again from
`result.latent` (space `result.space`, handles `result.points`). `.run(...)` drains it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ProbeError
from ..models.base import Generator

STATUSES = ("ok", "degraded", "stopped")


class DragError(ProbeError):
    """A drag could not run as asked; the message names the field and the fix."""


@dataclass
class DragStep:
    """State at one optimisation step: points [K, 2] (x, y), loss, img [3, H, W] in [-1, 1] (the latest render
    before the step), latent [1, *shape(space)] after the step; quality: filled by a quality guard, else None."""

    step: int
    points: np.ndarray
    loss: float
    img: torch.Tensor
    latent: torch.Tensor | None = None
    quality: object = None


@dataclass
class DragResult:
    """Final state. latent [1, *shape(space)]; trajectory [S + 1, K, 2] (x, y) per handle; img [3, H, W].

    status: "ok" (every handle reached its target) | "degraded" (it did not, or a quality guard flagged the
    image: see `reason`) | "stopped" (`stop()` ended it); offsets: {site: [1, C, h, w]} rendered with the latent
    (the fixed offsets given plus the optimised `extend` offset); quality: an `EditQuality` when a guard ran.
    """

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
    status: str = "ok"
    reason: str = ""
    method: str = ""
    site: str = ""
    params: dict = field(default_factory=dict)
    offsets: dict = field(default_factory=dict)
    quality: object = None

    @property
    def points(self) -> np.ndarray:
        """Final handle positions.  # [K, 2]"""
        return self.trajectory[-1]

    @property
    def distances(self) -> np.ndarray:
        """Final distance of each handle to its target (px).  # [K]"""
        return np.linalg.norm(self.points - self.targets, axis=1)


def _model_params(model: Generator, method: str) -> dict:
    """The model's tuned parameters for a drag method (its zoo entry's `defaults.drag`), {} when none."""
    d = getattr(model, "defaults", None)
    return dict(d.drag_params(method)) if d is not None and hasattr(d, "drag_params") else {}


def default_site(model: Generator, method: str = "draggan") -> str:
    """The site used when none is given: the model's tuned site, else the site whose feature size is closest to H/2."""
    tuned = _model_params(model, method).get("site")
    if tuned in model.sites:
        return tuned
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
        raise DragError(
            f"{name}: points must lie inside the {resolution}x{resolution} image "
            f"(0 <= x, y <= {resolution - 1}); got {p.tolist()}"
        )
    return p


def _sample(feat: torch.Tensor, pts: torch.Tensor, padding: str = "border") -> torch.Tensor:
    """Bilinear feature reads at (x, y) pixel centres.  # feat [1, C, H, W], pts [P, 2] -> [P, C]"""
    h, w = feat.shape[-2:]
    g = torch.stack([(2 * pts[:, 0] + 1) / w - 1, (2 * pts[:, 1] + 1) / h - 1], -1)
    out = F.grid_sample(feat, g[None, None].to(feat.dtype), mode="bilinear", padding_mode=padding, align_corners=False)
    return out[0, :, 0].T


def _sample_native(feat: torch.Tensor, pts: torch.Tensor, res: int) -> torch.Tensor:
    """Bilinear reads of native features at p * h / H, index-aligned (index i at coordinate i), as FreeDrag's
    `get_features_plus`.  # feat [1, C, h, w], pts [P, 2] image (x, y) -> [P, C]"""
    h, w = feat.shape[-2:]
    c = pts * (w / res)
    g = torch.stack([2 * c[:, 0] / max(w - 1, 1) - 1, 2 * c[:, 1] / max(h - 1, 1) - 1], -1)
    out = F.grid_sample(feat, g[None, None].to(feat.dtype), mode="bilinear", padding_mode="border", align_corners=True)
    return out[0, :, 0].T


def handle_region(res: int, handles: np.ndarray, targets: np.ndarray, radius: float) -> np.ndarray:
    """Pixels within `radius` of any handle -> target segment.  # -> bool [H, W]"""
    yy, xx = np.mgrid[0:res, 0:res].astype(np.float64)
    near = np.zeros((res, res), bool)
    for (hx, hy), (tx, ty) in zip(np.asarray(handles, float), np.asarray(targets, float)):
        dx, dy = tx - hx, ty - hy
        n2 = dx * dx + dy * dy
        t = np.clip(((xx - hx) * dx + (yy - hy) * dy) / n2, 0, 1) if n2 > 0 else np.zeros_like(xx)
        near |= (xx - hx - t * dx) ** 2 + (yy - hy - t * dy) ** 2 <= radius**2
    return near


class _Truncated(Exception):
    """Raised by the partial-forward hook once the feature site has run."""


class _Latent:
    """The optimised part of a latent, the optional optimised feature offset, fixed offsets, and the full code."""

    def __init__(self, model: Generator, latent, space: str, layers: int, offsets=None, extend: str | None = None):
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
        extend = None if extend in (None, "", "none") else extend
        self.extend, self.delta, self.power = extend, None, 1.0
        if extend is not None:
            if extend not in model.sites:
                raise DragError(
                    f"extend: site {extend!r} does not exist in model {model.name!r}; use one of "
                    f"{list(model.sites)} or None"
                )
            with torch.no_grad(), model.offsets(self.offsets):
                f = model.features(self.full(), self.space, [extend])[extend]
            self.power = float(f.square().mean()) + 1e-12
            self.delta = torch.zeros_like(f).requires_grad_(True)

    def params(self) -> list:
        return [self.param] + ([self.delta] if self.delta is not None else [])

    @torch.no_grad()
    def project(self) -> None:
        """z-space: keep |z| at its starting value (the prior's shell), as iso-density walks do."""
        n0, n = self.start.norm(dim=-1, keepdim=True), self.param.norm(dim=-1, keepdim=True)
        if self.space == "z" and float(n0.min()) > 0:
            self.param.mul_(n0 / n.clamp_min(1e-12))

    def full(self) -> torch.Tensor:
        return self.param if self.fixed is None else torch.cat([self.param, self.fixed], 1)

    def all_offsets(self, detach: bool = False) -> dict:
        """Fixed offsets plus the optimised one (summed where they share a site).  # {site: [1, C, h, w]}"""
        out = dict(self.offsets)
        if self.delta is not None:
            d = self.delta.detach().clone() if detach else self.delta
            out[self.extend] = out[self.extend] + d if self.extend in out else d
        return out

    def forward(self, model: Generator, sites):
        """Render with the offsets.  # -> img, {site: feat}"""
        with model.offsets(self.all_offsets()):
            return model.forward(self.full(), self.space, sites)

    def partial(self, model: Generator, site: str) -> torch.Tensor:
        """Render only up to `site` (the layers after it are skipped).  # -> feat [1, C, h, w]"""
        got = {}

        def hook(_m, _i, o):
            if model._hooks_off:
                return None
            got["f"] = o[0] if isinstance(o, tuple) else o
            raise _Truncated

        with model.offsets(self.all_offsets()):
            h = model.check_site(site).register_forward_hook(hook)
            try:
                model.synthesize(self.full(), self.space)
            except _Truncated:
                pass
            finally:
                h.remove()
        if "f" not in got:
            raise DragError(f"site {site!r} did not run while rendering; pick another site")
        return got["f"]


class _DragBase:
    method = ""
    OFFICIAL: dict = {}
    CHOICES: dict = {}

    def __init__(self, **params):
        self._given = params
        for k, v in params.items():
            setattr(self, k, v)
        self._stop = False
        for k in ("lr", "max_steps", "d_stop"):
            v = params.get(k)
            if v is not None and (v < 0 or (k == "lr" and v == 0)):
                raise DragError(f"lr must be > 0, max_steps >= 0 and d_stop >= 0; got {k}={v}")
        for k, allowed in self.CHOICES.items():
            v = params.get(k)
            if v is not None and v not in allowed:
                raise DragError(f"{k}: {v!r} is not an option; use one of {list(allowed)}")

    def stop(self) -> None:
        """Ask a running drag generator to end after the current step (thread-safe: a flag)."""
        self._stop = True

    def steps(self, model: Generator, latent, space: str, handles, targets, mask=None, offsets=None) -> Iterator:
        """The same generator as `drag` (one editing contract with `Inversion.steps`)."""
        return self.drag(model, latent, space, handles, targets, mask, offsets)

    def run(
        self, model: Generator, latent, space: str, handles, targets, mask=None, offsets=None, guard=None
    ) -> DragResult:
        """Drain `drag` and return the final DragResult. guard: a `probe.edit.quality.QualityGuard` (early stop on
        image degradation; the result then carries `quality`)."""
        it = self.drag(model, latent, space, handles, targets, mask, offsets)
        if guard is not None:
            it = guard.watch(self, model, latent, space, handles, targets, it, offsets=offsets)
        for item in it:
            pass
        return item

    def setting(self, model: Generator, name: str, paper=None):
        """A parameter's value: as given, else the model's tuned value, else the official default (or `paper`)."""
        given = getattr(self, name, None)
        if given is not None:
            return given
        tuned = _model_params(model, self.method)
        if name in tuned:
            return tuned[name]
        return self.OFFICIAL.get(name, paper)

    def resolved(self, model: Generator) -> dict:
        """Every parameter as this model runs it (given > tuned > official).  # {name: value}"""
        out = {k: self.setting(model, k) for k in self.OFFICIAL}
        if out.get("d_stop") is None and "d_stop" in out:
            out["d_stop"] = self._official_stop(model.resolution)
        return out

    @staticmethod
    def _official_stop(res: int) -> float:
        return 1.0

    def _setup(self, model, latent, space, handles, targets, mask, offsets, p):
        self._stop = False
        res = model.resolution
        h = as_points(handles, "handles", res)
        t = as_points(targets, "targets", res)
        if len(h) != len(t):
            raise DragError(f"handles and targets must pair up; got {len(h)} handles and {len(t)} targets")
        site = p["site"] or default_site(model, self.method)
        p["site"] = site
        model.check_site(site)
        m = None
        if mask is not None:
            m = torch.as_tensor(np.asarray(mask), dtype=torch.float32)
            if m.shape != (res, res):
                raise DragError(f"mask: expected a [{res}, {res}] array (1 = may change), got {list(m.shape)}")
            m = m.to(model.device)[None, None]
        lat = _Latent(model, latent, space, p["layers"], offsets, p.get("extend"))
        local = None
        if p.get("local", 0) > 0:
            near = handle_region(res, h, t, scaled(p["local_radius"], res))
            local = torch.as_tensor(~near, dtype=torch.float32, device=model.device)[None, None]
        return h, t, site, m, lat, local

    @staticmethod
    def _render(model, lat: _Latent, site: str, scale: float | None = None):
        img, feats = lat.forward(model, [site])
        f = feats[site]
        if f.dim() != 4:
            raise DragError(
                f"site {site!r} returns shape {list(f.shape)}, not a [N, C, h, w] feature map; pick another"
            )
        f = F.interpolate(f, size=img.shape[-2:], mode="bilinear", align_corners=False)
        return img, f if scale is None else f / scale

    def _opt_step(self, opt, loss, lat, losses: list, p) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if p["keep_norm"]:
            lat.project()
        losses.append(float(loss.detach()))

    def _extra_loss(self, f, f0, m, lat: _Latent, p, img=None, img0=None, local=None, mean_region=False):
        """lam * mask term + reg * |latent - latent0| + extend_reg * |offset|^2 + local * |img - img0| outside.

        mask term: |(F - F0)| over the fixed region (1 - M): the mean over that region (mean_region, FreeDrag's
        official) or over the whole map (DragGAN's official `F.l1_loss` of the masked maps)."""
        out = f.new_zeros(())
        if m is not None and p["lam"] > 0:
            fixed = (1 - m).expand_as(f)
            diff = (f - f0).abs() * fixed
            out = out + p["lam"] * (diff.sum() / fixed.sum().clamp_min(1) if mean_region else diff.mean())
        if p["reg"] > 0:
            out = out + p["reg"] * (lat.param - lat.start).abs().mean()
        if lat.delta is not None and p["extend_reg"] > 0:
            out = out + p["extend_reg"] * lat.delta.square().mean() / lat.power
        if local is not None and img is not None:
            out = out + p["local"] * ((img - img0).abs() * local).sum() / (3 * local.sum()).clamp_min(1)
        return out

    def _result(self, lat, h0, t, traj, step, t0, img, done, losses, p, stopped):
        status = "stopped" if stopped else ("ok" if done else "degraded")
        reason = "stopped" if stopped else ("arrived" if done else f"handles short of their targets after {step} steps")
        return DragResult(
            lat.full().detach().clone(),
            lat.space,
            h0,
            t,
            np.stack(traj),
            step,
            time.perf_counter() - t0,
            img,
            done,
            losses,
            status,
            reason,
            self.method,
            p["site"],
            {k: v for k, v in p.items()},
            lat.all_offsets(detach=True),
        )


class DragGAN(_DragBase):
    """DragGAN: shifted-patch L1 motion supervision in a disc of radius r1 + nearest-neighbour tracking in radius r2.

    Parameters (None: the model's tuned value, else the official default in brackets): r1 [3], r2 [12] (px at 512,
    scaled), lam [20] (mask weight), lr [0.001] (Adam), max_steps [200], d_stop [max(2, 2H/512) px: the run stops
    when every handle is this close], skip [1 px: a handle this close is not supervised], padding ["zeros": the
    shifted reads outside the image read 0; "border" repeats the edge], motion ["official": the disc is the pixels
    whose coordinates on the official `linspace(0, H, H)` grid lie closer than r1 to the handle, and F(q) is pulled
    toward the detached F(q - u) | "paper": the disc |q - p| <= r1, F(q + u) pulled toward the detached F(q)],
    units ["raw": the site's features as they are | "mean": divided by their mean |feature| at the start],
    site, layers [6] (ws rows optimised),
    reg [0] (mean |latent - latent0|), keep_norm [False] (z: hold |z|), extend [None] (a site whose feature
    offset is optimised with the latent; "none" switches off a tuned one), extend_reg [1] (its penalty,
    mean(offset^2) / mean(feature^2)), local [0] (weight of mean |img - img0| outside the handle region, the pixels
    farther than local_radius [64 px at 512] from every handle -> target segment).
    """

    method = "draggan"
    OFFICIAL = {
        "r1": 3,
        "r2": 12,
        "lam": 20,
        "lr": 0.001,
        "max_steps": 200,
        "d_stop": None,
        "skip": 1.0,
        "padding": "zeros",
        "motion": "official",
        "units": "raw",
        "site": None,
        "layers": 6,
        "reg": 0.0,
        "keep_norm": False,
        "extend": None,
        "extend_reg": 1.0,
        "local": 0.0,
        "local_radius": 64,
    }
    CHOICES = {"padding": ("zeros", "border"), "motion": ("official", "paper"), "units": ("raw", "mean")}

    def __init__(
        self,
        r1: float | None = None,
        r2: float | None = None,
        lam: float | None = None,
        lr: float | None = None,
        max_steps: int | None = None,
        d_stop: float | None = None,
        site: str | None = None,
        layers: int | None = None,
        reg: float | None = None,
        keep_norm: bool | None = None,
        skip: float | None = None,
        padding: str | None = None,
        extend: str | None = None,
        extend_reg: float | None = None,
        local: float | None = None,
        local_radius: float | None = None,
        motion: str | None = None,
        units: str | None = None,
    ):
        super().__init__(
            r1=r1,
            r2=r2,
            lam=lam,
            lr=lr,
            max_steps=max_steps,
            d_stop=d_stop,
            site=site,
            layers=layers,
            reg=reg,
            keep_norm=keep_norm,
            skip=skip,
            padding=padding,
            extend=extend,
            extend_reg=extend_reg,
            local=local,
            local_radius=local_radius,
            motion=motion,
            units=units,
        )

    @staticmethod
    def _official_stop(res: int) -> float:
        return max(2.0, 2.0 * res / 512)

    def drag(self, model: Generator, latent, space: str, handles, targets, mask=None, offsets=None) -> Iterator:
        """Yield DragStep per step, then DragResult.  # latent [1, *shape(space)]; handles/targets [K, 2] (x, y)

        offsets: fixed feature offsets {site: [1, C, h, w]} rendered with the latent (from an extended inversion).
        """
        p = self.resolved(model)
        h0, t, site, m, lat, local = self._setup(model, latent, space, handles, targets, mask, offsets, p)
        t0 = time.perf_counter()
        res = model.resolution
        r1, r2 = scaled(p["r1"], res), scaled(p["r2"], res)
        d_stop, skip = float(p["d_stop"]), min(float(p["skip"]), float(p["d_stop"]))
        dev = model.device
        off = torch.stack(torch.meshgrid(torch.arange(-r1, r1 + 1.0), torch.arange(-r1, r1 + 1.0), indexing="xy"), -1)
        disc = off.reshape(-1, 2)[off.reshape(-1, 2).norm(dim=1) <= r1].to(dev)  # [Q, 2]
        grid = torch.linspace(0, res, res, device=dev)  # the official disc's pixel coordinates
        official = p["motion"] == "official"
        win = torch.arange(-r2, r2 + 1.0, device=dev)
        tt = torch.as_tensor(t, dtype=torch.float32, device=dev)
        opt = torch.optim.Adam(lat.params(), lr=p["lr"])
        pts, traj, losses = h0.copy(), [h0.copy()], []
        f0 = f_init = scale = img0 = None
        step, stopped = 0, False
        while True:
            img, f = self._render(model, lat, site, scale)
            if f0 is None:
                scale = float(f.detach().abs().mean()) + 1e-8 if p["units"] == "mean" else 1.0
                f = f / scale
                f0, img0 = f.detach(), img.detach()
                f_init = _sample(f0, torch.as_tensor(h0, dtype=torch.float32, device=dev))  # [K, C]
            else:
                pts = self._track(f.detach(), f_init, pts, win, res)
                traj.append(pts.copy())
            dist = np.linalg.norm(pts - t, axis=1)
            if self._stop:
                stopped = True
                break
            if (dist <= d_stop).all() or step >= p["max_steps"]:
                break
            ptt = torch.as_tensor(pts, dtype=torch.float32, device=dev)
            loss = self._extra_loss(f, f0, m, lat, p, img, img0, local)
            for i in np.flatnonzero(dist > skip):
                if official:  # index coordinates, align_corners=True, as `_render_drag_impl`
                    x, y = ptt[i]
                    near = ((grid[:, None] - y) ** 2 + (grid[None, :] - x) ** 2) ** 0.5 < r1
                    ys, xs = torch.nonzero(near, as_tuple=True)
                    u = (tt[i] - ptt[i]) / ((tt[i] - ptt[i]).norm() + 1e-7)
                    g = torch.stack([(xs - u[0]) / (res - 1) * 2 - 1, (ys - u[1]) / (res - 1) * 2 - 1], -1)
                    ref = F.grid_sample(f, g[None, None], padding_mode=p["padding"], align_corners=True)[:, :, 0]
                    loss = loss + F.l1_loss(f[:, :, ys, xs], ref.detach())
                    continue
                u = (tt[i] - ptt[i]) / (tt[i] - ptt[i]).norm()
                q = ptt[i] + disc
                loss = loss + F.l1_loss(_sample(f, q + u, p["padding"]), _sample(f, q).detach())
            self._opt_step(opt, loss, lat, losses, p)
            yield DragStep(step, pts.copy(), losses[-1], img[0].detach(), lat.full().detach().clone())
            step += 1
        yield self._result(
            lat, h0, t, traj, step, t0, img[0].detach(), bool((dist <= d_stop).all()), losses, p, stopped
        )

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

    Parameters (None: the model's tuned value, else the official default in brackets): l [0.3] (expected feature
    distance per sub-drag, in the units of `units`), d [12] (line-search range, px at 512), sub_steps
    [5], lam [10] (mask weight), lr [0.002], max_steps [200], d_stop [1 px: arrival distance], site, layers [6],
    reg, keep_norm, extend, extend_reg, local, local_radius (as DragGAN), and the choices where this toolkit's
    earlier variant differs from the official code (official first):
    template ["grid": a fixed 3x3 grid at +-3 px, features concatenated | "mean": the mean of a (2r+1)^2 grid,
    r [3] px at 512 scaled], sampling ["native": native features read at p * h / H | "resized": features resized
    to the image], substop ["after": a sub-drag stops when the loss before its last step was < 0.25 l | "before":
    < 0.5 l, checked before stepping], arrival ["official": within d_stop and loss <= 0.25 l, re-checked after each
    sub-drag, template weight 1 | "frozen": within d_stop and loss <= 0.5 l, the point then frozen and left out],
    loss_points ["all" | "active"], search ["end": the range ends at the target, 10 candidates over it, a rollback
    goes back by d and searches 2d | "clip": a fixed range of d, candidates clipped to the segment], extra_steps
    [10: once every point has been placed within d_stop, later sub-drags are cut to one step after 10 more steps;
    None: no cap], mask_mean ["region": the mask loss is a mean over the fixed region | "image": over the whole
    map], partial [True: while optimising, render only up to the feature site; the image shown with each step is
    then the latest full render, at most sub_steps old; off when local > 0], units ["raw": l and the losses in the
    site's own feature units | "mean": in units of the site's mean |feature| at the start].
    """

    method = "freedrag"
    OFFICIAL = {
        "r": 3,
        "l": 0.3,
        "d": 12,
        "sub_steps": 5,
        "lam": 10,
        "lr": 0.002,
        "max_steps": 200,
        "d_stop": 1.0,
        "site": None,
        "layers": 6,
        "reg": 0.0,
        "keep_norm": False,
        "extend": None,
        "extend_reg": 1.0,
        "local": 0.0,
        "local_radius": 64,
        "template": "grid",
        "sampling": "native",
        "substop": "after",
        "arrival": "official",
        "loss_points": "all",
        "search": "end",
        "extra_steps": 10,
        "mask_mean": "region",
        "partial": True,
        "units": "raw",
    }
    CHOICES = {
        "template": ("grid", "mean"),
        "sampling": ("native", "resized"),
        "substop": ("after", "before"),
        "arrival": ("official", "frozen"),
        "loss_points": ("all", "active"),
        "search": ("end", "clip"),
        "mask_mean": ("region", "image"),
        "units": ("raw", "mean"),
    }

    def __init__(
        self,
        r: float | None = None,
        l: float | None = None,
        d: float | None = None,
        sub_steps: int | None = None,
        lam: float | None = None,
        lr: float | None = None,
        max_steps: int | None = None,
        d_stop: float | None = None,
        site: str | None = None,
        layers: int | None = None,
        reg: float | None = None,
        keep_norm: bool | None = None,
        extend: str | None = None,
        extend_reg: float | None = None,
        local: float | None = None,
        local_radius: float | None = None,
        template: str | None = None,
        sampling: str | None = None,
        substop: str | None = None,
        arrival: str | None = None,
        loss_points: str | None = None,
        search: str | None = None,
        extra_steps: int | None = -1,
        mask_mean: str | None = None,
        partial: bool | None = None,
        units: str | None = None,
    ):
        super().__init__(
            r=r,
            l=l,
            d=d,
            sub_steps=sub_steps,
            lam=lam,
            lr=lr,
            max_steps=max_steps,
            d_stop=d_stop,
            site=site,
            layers=layers,
            reg=reg,
            keep_norm=keep_norm,
            extend=extend,
            extend_reg=extend_reg,
            local=local,
            local_radius=local_radius,
            template=template,
            sampling=sampling,
            substop=substop,
            arrival=arrival,
            loss_points=loss_points,
            search=search,
            mask_mean=mask_mean,
            partial=partial,
            units=units,
        )
        self._extra_given = extra_steps != -1
        self.extra_steps = extra_steps if self._extra_given else None
        if (l is not None and l <= 0) or (d is not None and d <= 0) or (sub_steps is not None and sub_steps < 1):
            raise DragError(f"FreeDrag needs l > 0, d > 0 and sub_steps >= 1; got l={l}, d={d}, sub_steps={sub_steps}")

    def setting(self, model: Generator, name: str, paper=None):
        if name == "extra_steps" and self._extra_given:  # None is a value here: no cap
            return self.extra_steps
        return super().setting(model, name, paper)

    def drag(self, model: Generator, latent, space: str, handles, targets, mask=None, offsets=None) -> Iterator:
        """Yield DragStep per step, then DragResult.  # latent [1, *shape(space)]; handles/targets [K, 2] (x, y)

        offsets: fixed feature offsets {site: [1, C, h, w]} rendered with the latent (from an extended inversion).
        """
        p = self.resolved(model)
        h0, t, site, m, lat, local = self._setup(model, latent, space, handles, targets, mask, offsets, p)
        t0 = time.perf_counter()
        res, dev, l = model.resolution, model.device, float(p["l"])
        official = p["arrival"] == "official"
        native, partial = p["sampling"] == "native", bool(p["partial"]) and local is None
        dd, d_stop = float(scaled(p["d"], res)), float(p["d_stop"])
        if p["template"] == "grid":
            g = torch.tensor([-3.0, 0.0, 3.0], device=dev)  # image px, as the official (win_r = 3)
        else:
            r = scaled(p["r"], res)
            g = torch.arange(-r, r + 1.0, device=dev)
        grid = torch.stack(torch.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2)  # [G, 2] (x, y)
        alpha, beta = math.log(9) / (0.6 * l), 0.2 * l
        lam_max = 1 / (1 + math.exp(-alpha * beta))
        span = np.linalg.norm(t - h0, axis=1)  # [K] length of each line
        u = np.where(span[:, None] > 0, (t - h0) / np.maximum(span[:, None], 1e-12), 0.0)
        s = np.zeros(len(h0))  # position of each handle along its line (px)

        def pos(sv):
            return h0 + sv[:, None] * u

        def fr(f, pp):  # [K, D]: template read at each point
            pp = torch.as_tensor(pp, dtype=torch.float32, device=dev)
            q = (pp[:, None] + grid).reshape(-1, 2)
            v = (_sample_native(f, q, res) if native else _sample(f, q)).reshape(len(pp), len(grid), -1)
            return v.reshape(len(pp), -1) if p["template"] == "grid" else v.mean(1)

        def render(full: bool):  # -> img or None, feature map (scaled)
            if full or not partial:
                img, feat = lat.forward(model, [site])
                f = feat[site]
            else:
                img, f = None, lat.partial(model, site)
            if f.dim() != 4:
                raise DragError(
                    f"site {site!r} returns shape {list(f.shape)}, not a [N, C, h, w] feature map; pick another"
                )
            if not native:
                f = F.interpolate(f, size=(res, res), mode="bilinear", align_corners=False)
            return img, f / scale if scale is not None else f

        def search(f, i, lo, hi, goal):  # best s among 10 candidates on (lo, hi]
            cand = lo + (hi - lo) * np.arange(1, 11) / 10
            if p["search"] == "clip":
                cand = np.clip(cand, 0, span[i])
            pts = h0[i] + cand[:, None] * u[i]
            dist = (fr(f, pts) - templ[i]).abs().mean(1).cpu().numpy()
            return float(cand[int(np.argmin(np.abs(dist - goal)))])

        def advance(f, i):
            if p["search"] == "clip":
                return search(f, i, s[i], s[i] + dd, l)
            return search(f, i, s[i], s[i] + min(dd, max(span[i] - s[i], 0.0)), l)

        def rollback(f, i):
            if p["search"] == "clip":
                return search(f, i, s[i] - dd, s[i] + dd, 0.0)
            back = s[i] - min(dd, abs(span[i] - s[i]))
            return search(f, i, back, back + min(2 * dd, max(span[i] - back, 0.0)), 0.0)

        scale = None
        opt = torch.optim.Adam(lat.params(), lr=p["lr"])
        with torch.no_grad():
            img, f = render(True)
            scale = float(f.abs().mean()) + 1e-8 if p["units"] == "mean" else 1.0
            f0, img0 = f / scale, img.detach()
            templ = fr(f0, h0)  # [K, D]
        if m is not None and native:  # the mask at the feature map's size (1 = may change)
            m = (F.interpolate(m, size=f0.shape[-2:], mode="bilinear", align_corners=False) > 0).float()
        shown = img[0].detach()
        traj, losses = [h0.copy()], []
        step = 0
        span_ok = span > d_stop
        active = span_ok.copy()  # "frozen": points still moving
        signed = ~span_ok  # "official": points placed on their target with a matching feature
        l_in, l_en = np.zeros(len(h0)), np.zeros(len(h0))
        threshold_step = None
        for i in np.flatnonzero(span_ok):  # first placement along each line, on the initial features
            s[i] = advance(f0, i)
        traj.append(pos(s))
        while step < p["max_steps"] and not self._stop:
            if signed.all() if official else not active.any():
                break
            at_targets = bool(np.linalg.norm(pos(s) - t, axis=1).max() < d_stop)
            sel = np.ones(len(h0), bool) if p["loss_points"] == "all" else (~signed if official else active)
            l_in = None
            for k in range(int(p["sub_steps"])):
                if self._stop:
                    break
                img, f = render(local is not None)
                per = (fr(f, pos(s)) - templ).abs().mean(1)  # [K]
                if l_in is None:
                    l_in = per.detach().cpu().numpy()
                if p["substop"] == "before" and float(per[sel].detach().max()) < 0.5 * l:
                    break
                if step >= p["max_steps"]:
                    break
                loss = per[sel].sum() + self._extra_loss(
                    f, f0, m, lat, p, img, img0, local, mean_region=p["mask_mean"] == "region"
                )
                self._opt_step(opt, loss, lat, losses, p)
                if img is not None:
                    shown = img[0].detach()
                yield DragStep(step, pos(s), losses[-1], shown, lat.full().detach().clone())
                step += 1
                if p["substop"] == "after" and float(per[sel].detach().max()) < 0.25 * l:
                    break
                if (
                    p["extra_steps"] is not None
                    and threshold_step is not None
                    and step > threshold_step + p["extra_steps"]
                ):
                    break
            if l_in is None:
                l_in = np.zeros(len(h0))
            if at_targets:
                threshold_step = step
            with torch.no_grad():
                img, f = render(True)
                shown = img[0].detach()
                cur = fr(f, pos(s))
                l_en = (cur - templ).abs().mean(1).cpu().numpy()
                if official:  # update_signs, then the template update, then the next placement
                    signed = ((np.linalg.norm(pos(s) - t, axis=1) < d_stop) & (l_en <= 0.25 * l)) | ~span_ok
                    for i in range(len(h0)):
                        w = 1.0 if signed[i] else 1 / (1 + math.exp(alpha * (l_en[i] - beta)))
                        templ[i] = w * cur[i] + (1 - w) * templ[i]
                    if step < p["max_steps"] and not self._stop:
                        for i in np.flatnonzero(~signed):
                            if l_en[i] < 0.5 * l:
                                s[i] = advance(f, i)
                            elif l_en[i] >= l_in[i]:
                                s[i] = rollback(f, i)
                else:
                    for i in np.flatnonzero(active):
                        lam_i = min(lam_max, 1 / (1 + math.exp(alpha * (l_en[i] - beta))))
                        templ[i] = lam_i * cur[i] + (1 - lam_i) * templ[i]
                        if l_en[i] <= 0.5 * l:
                            if span[i] - s[i] <= d_stop:
                                s[i], active[i] = span[i], False  # arrived and matched
                            else:
                                s[i] = advance(f, i)
                        elif l_en[i] > l_in[i]:  # got worse: step back, closest match
                            s[i] = rollback(f, i)
            traj.append(pos(s))
        stopped = self._stop
        with torch.no_grad():
            img, _ = lat.forward(model, [site])
        done = bool((np.linalg.norm(pos(s) - t, axis=1) <= d_stop).all())
        yield self._result(lat, h0, t, traj, step, t0, img[0].detach(), done, losses, p, stopped)


METHODS = {"draggan": DragGAN, "freedrag": FreeDrag}


def make_drag(method: str, **kw) -> DragGAN | FreeDrag:
    """DragGAN or FreeDrag by name ("draggan" | "freedrag")."""
    if method not in METHODS:
        raise DragError(f"--method: unknown drag method {method!r}; use one of {list(METHODS)}")
    return METHODS[method](**kw)
