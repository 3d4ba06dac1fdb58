"""How far dlib's 5-point landmarks follow a known move on 64 px faces (why the drag metric is coarse).

Reproduces the "Why the metric is coarse at 64 px" numbers of docs/readme/50-editing.md, on 32 generated faces
of `faces` (seed 0), with the drag evaluation's oracle warps (probe.edit.evaluate.oracle_warp):

- the whole image shifted right by 4 px: how far each landmark is read to move (mean over faces, per landmark);
- a local 4 px warp (Gaussian falloff, sigma 6 px) of the nose base: how far the nose base is read to move;
- the same local warp read on the image upsampled 4x (landmarks scaled back).

    python scripts/landmark_sensitivity.py
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F

SHIFT = 4.0


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)

    import probe
    from probe.edit.evaluate import oracle_warp
    from probe.measures.faces import face_landmarks

    faces = probe.load_model("faces")
    with torch.no_grad():
        img = faces.synthesize(faces.sample(a.n, 0), "z")  # [N, 3, 64, 64]
    p0 = face_landmarks(img)  # [N, 5, 2]
    ok = np.isfinite(p0).all((1, 2))
    shifted = torch.stack([oracle_warp(x, np.zeros((1, 2)), np.array([[SHIFT, 0.0]]), None) for x in img])
    d_shift = np.linalg.norm(face_landmarks(shifted) - p0, axis=2)  # [N, 5]
    nose = p0[:, 4]
    local = torch.stack(
        [
            oracle_warp(x, nose[i : i + 1], nose[i : i + 1] + [SHIFT, 0.0], 6.0) if ok[i] else x
            for i, x in enumerate(img)
        ]
    )
    d_local = np.linalg.norm(face_landmarks(local)[:, 4] - nose, axis=1)
    up = F.interpolate(local, scale_factor=4, mode="bilinear", align_corners=False)
    p_up = (face_landmarks(up) + 0.5) / 4 - 0.5  # pixel centres back to 64 px
    d_up = np.linalg.norm(p_up[:, 4] - nose, axis=1)
    res = {
        "faces_with_landmarks": int(ok.sum()),
        "n": a.n,
        "whole_shift_read_per_landmark": [round(float(v), 2) for v in np.nanmean(d_shift[ok], 0)],
        "local_warp_read_nose": round(float(np.nanmean(d_local[ok])), 2),
        "local_warp_read_nose_upsampled_4x": round(float(np.nanmean(d_up[ok])), 2),
    }
    print(f"{res['faces_with_landmarks']} of {a.n} faces with landmarks")
    print(f"whole image shifted {SHIFT:g} px: landmarks read to move {res['whole_shift_read_per_landmark']} px")
    print(
        f"nose base warped {SHIFT:g} px (sigma 6): read to move {res['local_warp_read_nose']} px; "
        f"at 4x upsampling {res['local_warp_read_nose_upsampled_4x']} px"
    )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == "__main__":
    main()
