"""Drag benchmarks: FreeDrag ms/step with and without the partial forward, and the face-landmark protocol with the
quality columns for several drag settings side by side.

    python -m benchmarks.bench_drag speed [--model tiny-stylegan] [--steps 30]
    python -m benchmarks.bench_drag chin [--steps 100]
    python -m benchmarks.bench_drag quality [--pairs 8] [--seed 1] [--steps 200] [--points 1]
        [--variant 'label=draggan:local=3,extend="b3"' ...]

`speed`: the same FreeDrag run (official defaults, 30 steps) with partial=True and partial=False; reports ms per
optimisation step and whether the trajectories are identical. `quality`: `probe.edit.evaluate.drag_eval` on the
face model with the tuned DragGAN and FreeDrag, and FreeDrag with an extended latent (a b3 feature offset optimised
with z) and a locality term; prints the summary table (Markdown) with the quality columns. `chin`: a 10 px drag
of the chin, (32, 56) -> (32, 46), on faces of seeds 0-2, with DragGAN on z alone (no guard, then guarded) and the
face default (z + b3 offset + locality, guarded): status, distance, change outside and largest measure drift.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def speed(model_name: str, steps: int) -> None:
    from probe.edit import FreeDrag
    from probe.models import load_model

    g = load_model(model_name)
    z = g.sample(1, 3)
    res = g.resolution
    h, t = [[res * 0.3, res * 0.4]], [[res * 0.6, res * 0.5]]
    out = {}
    for partial in (False, True, False, True):  # interleaved: load on a shared machine hits both alike
        d = FreeDrag(max_steps=steps, partial=partial)
        t0 = time.perf_counter()
        r = d.run(g, z, "z", h, t)
        ms = (time.perf_counter() - t0) * 1000 / max(r.steps, 1)
        out.setdefault(partial, []).append((ms, r))
    for partial, runs in out.items():
        print(
            f"{model_name} FreeDrag partial={partial}: {min(m for m, _ in runs):.1f} ms/step "
            f"(best of {len(runs)}), {runs[0][1].steps} steps"
        )
    same = np.array_equal(out[True][0][1].trajectory, out[False][0][1].trajectory) and torch.equal(
        out[True][0][1].latent, out[False][0][1].latent
    )
    print(f"identical trajectory and latent: {same}")


def _variant(text: str, steps: int):
    """'label=method:key=value,key=value' -> (label, drag); values are Python literals."""
    import ast

    from probe.edit import make_drag

    label, rest = text.split("=", 1)
    method, _, kw = rest.partition(":")
    params = {k: ast.literal_eval(v) for k, v in (item.split("=", 1) for item in kw.split(",") if item)}
    return label, make_drag(method, max_steps=steps, **params)


def quality(pairs: int, seed: int, steps: int, points: int, variants: list[str], checked: bool = True) -> None:
    from probe.edit import DragGAN, FreeDrag
    from probe.edit.evaluate import drag_eval, summarize, to_markdown
    from probe.models import load_model

    g = load_model("faces")
    drags = (
        dict(_variant(v, steps) for v in variants)
        if variants
        else {
            "draggan": DragGAN(max_steps=steps),
            "freedrag": FreeDrag(max_steps=steps),
            "freedrag-local": FreeDrag(max_steps=steps, extend="b3", local=10),
        }
    )
    t0 = time.perf_counter()
    edits = drag_eval(
        g,
        n_pairs=pairs,
        seed=seed,
        settings=(points,),
        drags=drags,
        checked=checked,
        progress=lambda r: print(
            f"pair {r['pair']} {r['method']}: MD {r['md_before']:.2f} -> "
            f"{r['md_after']:.2f}, {r['status']}, outside "
            f"{r['outside_change']:.1f}",
            flush=True,
        ),
    )
    print(to_markdown(summarize(edits)))
    print(f"{time.perf_counter() - t0:.0f} s wall")


def chin(steps: int) -> None:
    from probe.edit import DragGAN
    from probe.edit.quality import QualityGuard
    from probe.models import load_model

    g = load_model("faces")
    h, t = [[32, 56]], [[32, 46]]
    runs = {
        "z only, no guard": (dict(extend="none", local=0.0), False),
        "z only, guarded": (dict(extend="none", local=0.0), True),
        "face default, guarded": ({}, True),
    }
    for seed in (0, 1, 2):
        z = g.sample(1, seed)
        with torch.no_grad():
            before = g.synthesize(z, "z")[0]
        for label, (kw, guarded) in runs.items():
            d = DragGAN(max_steps=steps, **kw)
            if guarded:
                r = d.run(g, z, "z", h, t, guard=QualityGuard())
                q = r.quality
            else:  # the drag's own verdict, scored afterwards
                r = d.run(g, z, "z", h, t)
                q = QualityGuard().bind(g, before, h, t).check(r.img, r.points)
            print(
                f"seed {seed} {label:<22} {r.status:<9} {r.steps:>3} steps, {r.distances[0]:4.1f} px left, "
                f"outside {q.outside_change:5.1f}/255, drift {q.max_drift:.2f}; {r.reason}",
                flush=True,
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--model", default="tiny-stylegan")
    s.add_argument("--steps", type=int, default=30)
    c = sub.add_parser("chin")
    c.add_argument("--steps", type=int, default=100)
    q = sub.add_parser("quality")
    q.add_argument("--pairs", type=int, default=8)
    q.add_argument("--seed", type=int, default=1)
    q.add_argument("--steps", type=int, default=200)
    q.add_argument("--points", type=int, default=1)
    q.add_argument(
        "--variant",
        action="append",
        default=[],
        help="label=method:key=value,... (repeatable; default: the three settings above)",
    )
    q.add_argument("--unchecked", action="store_true", help="no quality guard: the drags' own status")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.cmd == "speed":
        speed(a.model, a.steps)
    elif a.cmd == "chin":
        chin(a.steps)
    else:
        quality(a.pairs, a.seed, a.steps, a.points, a.variant, not a.unchecked)


if __name__ == "__main__":
    main()
