"""How often dlib's HOG face detector finds a face in the `faces` model's 64 px images.

Reproduces the "found a face in K of N generated images" sentence of docs/readme/10-foundation.md, the reason
the face measures take landmarks on the whole-image rectangle instead of a detected box. Samples N faces
(`model.sample(N, seed)`), converts them to uint8 as the face measures do, and runs
`dlib.get_frontal_face_detector()` with upsample 0 on each.

    python scripts/docs_dlib_detector.py            # 256 faces, seed 0
    python scripts/docs_dlib_detector.py --n 1000 --seed 1
"""

from __future__ import annotations

import argparse


def main(n: int = 256, seed: int = 0, upsample: int = 0) -> int:
    import dlib
    import numpy as np
    import torch

    from probe.measures.base import to_uint8
    from probe.models import load_model

    model = load_model("faces")
    with torch.no_grad():
        img = model.synthesize(model.sample(n, seed=seed))  # [n, 3, 64, 64] in [-1, 1]
    u8 = to_uint8(img)  # [n, 64, 64, 3]
    detector = dlib.get_frontal_face_detector()
    found = sum(len(detector(np.ascontiguousarray(im), upsample)) > 0 for im in u8)
    print(f"dlib HOG detector (upsample {upsample}) found a face in {found} of {n} generated images (seed {seed})")
    return found


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256, help="generated faces")
    ap.add_argument("--seed", type=int, default=0, help="sampling seed")
    ap.add_argument("--upsample", type=int, default=0, help="detector upsampling steps")
    a = ap.parse_args()
    main(a.n, a.seed, a.upsample)
