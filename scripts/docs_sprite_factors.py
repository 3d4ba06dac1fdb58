"""Held-out accuracy of the shipped sprite factor CNN (`probe/measures/weights/sprite_factors.pt`).

Reproduces the held-out table of docs/readme/80-sprites.md without retraining: the shipped weights are scored
on fresh sprites drawn with the held-out seed that `probe train factors` reports on (never seen in training).
Prints shape accuracy, and R2 / MAE per continuous factor (rotation on the 90 degree circle).

    python scripts/docs_sprite_factors.py            # 2,000 sprites, as in the docs
    python scripts/docs_sprite_factors.py --n 500
"""

from __future__ import annotations

import argparse

UNITS = {"scale": "fraction of image", "rotation": "deg", "x": "px", "y": "px", "hue": "deg"}


def main(n: int = 2000) -> dict:
    import torch

    from probe.measures.sprites import load_factor_net
    from probe.train.factor_cnn import HELD_OUT_SEED, evaluate

    torch.set_num_threads(1)
    m = evaluate(load_factor_net(), n)
    print(f"held-out: {n:,} fresh sprites, seed {HELD_OUT_SEED}")
    print(f"shape     accuracy  {m['shape_accuracy']:.3f}")
    for k, unit in UNITS.items():
        print(f"{k:<9} R2 / MAE  {m[k + '_r2']:.4f} / {m[k + '_mae']:.2g} ({unit})")
    return m


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="held-out sprites")
    main(ap.parse_args().n)
