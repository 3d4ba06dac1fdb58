"""How far one and two torch threads drift apart in a short training run of the full-size sprites networks.

Reproduces the "one and two threads differ by up to X in the weights" sentence of docs/readme/80-sprites.md:
`train_gan("stylegan", iters=3, batch=16, seed=0)` is run once with `threads=1` and once with `threads=2`, each
into its own temporary folder, and the largest absolute difference of every network in `checkpoint.pt`
(G, D, G_ema) is printed. `--threads 1 1` runs the same thread count twice (the determinism check).

    python scripts/docs_thread_determinism.py                 # 1 against 2 threads
    python scripts/docs_thread_determinism.py --threads 1 1   # same threads twice
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def main(iters: int = 3, threads: tuple[int, int] = (1, 2)) -> dict[str, float]:
    import torch

    from probe.train.trainer import train_gan

    nets = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, n in enumerate(threads):
            out = Path(tmp) / f"run{i}"
            train_gan("stylegan", iters=iters, batch=16, seed=0, out=out, threads=n, log=lambda *_: None)
            ck = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
            nets.append({k: ck[k] for k in ("G", "D", "G_ema")})
    a, b = nets
    diff = {k: max((a[k][p].float() - b[k][p].float()).abs().max().item() for p in a[k]) for k in a}
    print(
        f"{iters} iterations, batch 16, seed 0: max |weights({threads[0]} threads) - weights({threads[1]} threads)|: "
        + ", ".join(f"{k} {v:.1e}" for k, v in diff.items())
    )
    return diff


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=3, help="training iterations per run")
    ap.add_argument("--threads", type=int, nargs=2, default=[1, 2], metavar=("A", "B"), help="the two thread counts")
    a = ap.parse_args()
    main(a.iters, tuple(a.threads))
