"""Intervention engine: renders a plan (samples x targets x alphas) in batches, measures whole batches.

The plan is a flat list of rows in plan order: row g = t * (N * A) + n * A + a (target t, sample n, alpha a).
It is cut into parts of `part_rows` rows; a part is rendered in batches of `batch_size` rows that may span
several targets (each target's rows are walked by its own walk, channel edits hook only their rows). A part's
contents depend only on the plan, never on what ran before, so a resumed study recomputes exactly the parts
that are missing and gets the same numbers. Channel edits run inside scoped `Generator.edit` hooks, removed
after every batch (also on error).

Devices: latents, walks and density statistics stay on the CPU (float64 statistics, tiny next to rendering);
the model renders on its own device (`Generator.to`); scores come back as CPU numpy. With `overlap`, a worker
thread measures batch k while the generator renders batch k+1 (at most 2 batches wait, order kept, a measure's
exception is raised in the caller); the default overlaps when the model is not on the CPU and some measure computes
on the CPU (faces, sprites, user measures). Results are identical with and without overlap.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import torch

from .density import latent_stats
from .walks import Target, apply_rows, channel_fn


@dataclass
class PartResult:
    """One part of the plan, computed.  Arrays are [R] (R = rows of the part); `target` indexes the targets."""

    k: int
    target: np.ndarray
    sample_id: np.ndarray
    step: np.ndarray
    alpha: np.ndarray
    norm: np.ndarray
    logp: np.ndarray
    scores: dict[str, np.ndarray]


def plan_parts(n_samples: int, n_targets: int, n_alphas: int, part_rows: int) -> list[tuple[int, int]]:
    """Cut the plan's n_targets * n_samples * n_alphas rows into parts [(lo, hi)] of part_rows rows."""
    rows = n_targets * n_samples * n_alphas
    return [(lo, min(lo + part_rows, rows)) for lo in range(0, rows, part_rows)]


def render_mixed(model, latent: torch.Tensor, space: str, targets: Sequence[Target], tidx, alpha, density=None):
    """Render one batch whose rows belong to several targets (contiguous runs of `tidx`).

    latent [R, *shape] base latents per row, tidx [R] target index per row, alpha [R] -> edited [R, *shape], img
    """
    tidx = np.asarray(tidx)
    alpha = np.asarray(alpha, dtype=np.float32)
    cuts = np.flatnonzero(np.diff(tidx)) + 1
    segs = list(zip(np.r_[0, cuts], np.r_[cuts, len(tidx)]))
    edited = (
        torch.cat(
            [
                apply_rows(latent[lo:hi], space, targets[tidx[lo]], torch.from_numpy(alpha[lo:hi]), density)
                for lo, hi in segs
            ]
        )
        if segs
        else torch.as_tensor(latent, dtype=torch.float32)
    )
    by_site: dict[str, list] = {}
    for lo, hi in segs:
        t = targets[tidx[lo]]
        if t.walk == "channel":
            by_site.setdefault(t.site, []).append((lo, hi, channel_fn(t, torch.from_numpy(alpha[lo:hi]))))

    def site_fn(edits):
        def fn(x):
            out = x.clone()
            for lo, hi, f in edits:
                out[lo:hi] = f(x[lo:hi])
            return out

        return fn

    with torch.no_grad(), ExitStack() as stack:
        for site, edits in by_site.items():
            stack.enter_context(model.edit(site, site_fn(edits)))
        img = model.synthesize(edited, space)
    return edited, img


def render_rows(model, latent: torch.Tensor, space: str, target: Target, alpha, density=None):
    """Render one batch, each row walked by its own alpha.  # latent [R, *shape], alpha [R] -> latent', img [R,3,H,W]"""
    alpha = np.asarray(alpha, dtype=np.float32).reshape(-1)
    return render_mixed(model, latent, space, [target], np.zeros(len(alpha), np.int64), alpha, density)


def render(
    model, latent: torch.Tensor, space: str, target: Target, alphas, density=None, batch_size: int = 64
) -> torch.Tensor:
    """Render every alpha for every sample (images returned on CPU).  # latent [N, *shape], alphas [A] -> img [N, A, 3, H, W]"""
    latent = torch.as_tensor(latent, dtype=torch.float32)
    alphas = np.asarray(alphas, dtype=np.float32).reshape(-1)
    n, na = len(latent), len(alphas)
    rows = np.arange(n * na)
    out = []
    for lo in range(0, len(rows), batch_size):
        r = rows[lo : lo + batch_size]
        out.append(render_rows(model, latent[r // na], space, target, alphas[r % na], density)[1])
    img = torch.cat(out).cpu() if out else torch.empty(0, 3, model.resolution, model.resolution)
    return img.reshape(n, na, *img.shape[1:])


def use_overlap(model, measures, overlap: bool | None = None) -> bool:
    """Whether the engine measures on a worker thread: `overlap` when given, else when the model is not on the CPU
    and some measure computes on the CPU (MeasureSet.device / Measure.device == "cpu")."""
    if overlap is not None:
        return bool(overlap)
    return model.device.type != "cpu" and getattr(measures, "device", "cpu") == "cpu"


def measured(batches: Iterable[tuple], measures, overlap: bool = False) -> Iterator[tuple]:
    """Score rendered batches in order.  batches yields (img | None, meta) -> yields (scores | {}, meta).

    With overlap, measures(img) runs on one worker thread while the caller renders the next batch; at most 2
    batches wait (then the caller waits for the oldest), and a measure's exception is raised here."""
    if not overlap:
        for img, meta in batches:
            yield (measures(img) if img is not None else {}), meta
        return
    host = getattr(measures, "device", "cpu") == "cpu"
    pending: deque = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="probe-measures") as pool:
        try:
            for img, meta in batches:
                if img is not None and host:
                    img = img.cpu()  # copy here: the next render does not wait behind it on the device
                pending.append((pool.submit(measures, img) if img is not None else None, meta))
                while len(pending) > 2 or (pending and pending[0][0] is None):
                    fut, m = pending.popleft()
                    yield (fut.result() if fut is not None else {}), m
            while pending:
                fut, m = pending.popleft()
                yield (fut.result() if fut is not None else {}), m
        finally:
            for fut, _ in pending:
                if fut is not None:
                    fut.cancel()


def measure_base(
    model,
    latent: torch.Tensor,
    space: str,
    measures,
    density=None,
    batch_size: int = 64,
    progress: bool = False,
    overlap: bool | None = None,
) -> dict[str, np.ndarray]:
    """Scores and density stats of the base latents.  # [N, *shape] -> {name: [N]} (measures + norm, logp)

    overlap: measure on a worker thread while the next batch renders (default: see `use_overlap`)."""
    from tqdm.auto import tqdm

    out: dict[str, list] = {}

    def batches():
        for lo in range(0, len(latent), batch_size):
            x = latent[lo : lo + batch_size]
            with torch.no_grad():
                img = model.synthesize(x, space)
            yield img, latent_stats(torch.as_tensor(x).cpu(), space, density)

    with tqdm(total=len(latent), desc="base samples", unit="img", disable=not progress, leave=False) as bar:
        for scores, stats in measured(batches(), measures, use_overlap(model, measures, overlap)):
            for k, v in {**scores, **stats}.items():
                out.setdefault(k, []).append(np.asarray(v, dtype=np.float64))
            bar.update(len(stats["norm"]))
    return {k: np.concatenate(v) for k, v in out.items()}


def identity_at_zero(target: Target) -> bool:
    """Whether alpha = 0 leaves the latent and image unchanged (all walks but variable `set` and distance)."""
    return target.identity_at_zero


def run_plan(
    model,
    latent: torch.Tensor,
    space: str,
    targets: Sequence[Target],
    alphas,
    measures,
    density=None,
    batch_size: int = 64,
    part_rows: int = 1024,
    skip: Sequence[int] = (),
    base: dict[str, np.ndarray] | None = None,
    progress: bool = False,
    desc: str = "interventions",
    overlap: bool | None = None,
) -> Iterator[PartResult]:
    """Run the plan part by part, skipping parts in `skip`; yields one PartResult per computed part.

    latent [N, *shape] base latents (row = sample_id); alphas [A]; measures: a MeasureSet (img -> {name: [R]}).
    base: the base samples' scores, norm and logp ({name: [N]}); when given, alpha = 0 rows of walks that are
    the identity at 0 take the base values instead of being rendered again (their d_ is exactly 0).
    overlap: measure on a worker thread while the next batch renders, also across parts (default: `use_overlap`).
    """
    from tqdm.auto import tqdm

    latent = torch.as_tensor(latent, dtype=torch.float32).cpu()
    alphas64 = np.asarray(alphas, dtype=np.float64).reshape(-1)
    alphas = alphas64.astype(np.float32)
    n, na = len(latent), len(alphas)
    parts = plan_parts(n, len(targets), na, part_rows)
    skip = set(skip)
    ident = np.array([identity_at_zero(t) for t in targets], bool)
    todo = sum(hi - lo for k, (lo, hi) in enumerate(parts) if k not in skip)

    def layout(lo, hi):
        g = np.arange(lo, hi)
        tidx, r = g // (n * na), g % (n * na)
        sid, step = r // na, r % na
        reuse = (alphas64[step] == 0) & ident[tidx] if base is not None else np.zeros(len(g), bool)
        return g, tidx, sid, step, reuse

    def batches():  # (img, (k, rows, stats)) per rendered batch; (None, (k, None, None)) closes part k
        for k, (lo, hi) in enumerate(parts):
            if k in skip:
                continue
            _, tidx, sid, step, reuse = layout(lo, hi)
            todo_idx = np.flatnonzero(~reuse)
            for b in range(0, len(todo_idx), batch_size):
                i = todo_idx[b : b + batch_size]
                edited, img = render_mixed(model, latent[sid[i]], space, targets, tidx[i], alphas[step[i]], density)
                yield img, (k, i, latent_stats(edited.cpu(), space, density))
            yield None, (k, None, None)

    with tqdm(total=todo, desc=desc, unit="img", disable=not progress) as bar:
        acc: dict[str, list] = {}
        for scores, (k, i, stats) in measured(batches(), measures, use_overlap(model, measures, overlap)):
            if i is not None:
                for key, v in {**scores, **stats}.items():
                    acc.setdefault(key, []).append(np.asarray(v, dtype=np.float64))
                bar.update(len(i))
                continue
            g, tidx, sid, step, reuse = layout(*parts[k])
            todo_idx = np.flatnonzero(~reuse)
            cat = {key: np.concatenate(v) for key, v in acc.items()}
            acc = {}
            if reuse.any():
                keys = list(cat) or [*measures.names, "norm", "logp"]
                full = {key: np.empty(len(g), np.float64) for key in keys}
                for key in keys:
                    full[key][reuse] = base[key][sid[reuse]]
                    if len(todo_idx):
                        full[key][todo_idx] = cat[key]
                cat = full
                bar.update(int(reuse.sum()))
            norm, logp = cat.pop("norm"), cat.pop("logp")
            yield PartResult(
                k, tidx.astype(np.int64), sid.astype(np.int64), step.astype(np.int64), alphas64[step], norm, logp, cat
            )
