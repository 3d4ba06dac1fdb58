"""InterFaceGAN on the face model: boundary accuracy, the gender walk, conditional manipulation, isodensity walks.

Reproduces the "Measured on the face model" numbers of docs/readme/40-directions.md:

- boundaries: `sample_and_score(faces, ["gender", "age"], 3000, seed=1)`, `InterFaceGAN(ratio=0.1)` per measure
  (and age at ratio 0.2 / 0.3): held-out accuracy, cosine between the gender and age normals;
- the gender walk: 256 fresh samples (seed 2), z + alpha * n for alpha in -3..3, mean P(male) and mean age per
  alpha, for the gender normal and for gender|age (age at ratio 0.3 projected out);
- conditional manipulation: the pooled OLS slope of age on alpha along gender, gender|age(0.3), gender|age(0.2);
- isodensity vs linear: |dlogp| of a random unit direction walked both ways (256 samples, seed 2);
- factorisations: SeFa's top eigenvalues, GANSpace's explained variance at site b1 (5000 samples).

    python scripts/faces_directions.py                 # about 8,000 face renders + scores; minutes on a CPU
    python scripts/faces_directions.py --parts factorisations --json out.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

ALPHAS = [-3, -2, -1, 0, 1, 2, 3]


def _walk_means(model, measures, z: torch.Tensor, normal: np.ndarray) -> dict[str, list[float]]:
    """Mean of each measure per alpha along z + alpha * normal.  # z [N, z_dim], normal [z_dim]"""
    from probe.engine import render
    from probe.walks import Target

    t = Target("direction", "walk", "linear", vector=normal.astype(np.float32))
    img = render(model, z, "z", t, ALPHAS)  # [N, A, 3, H, W]
    out = {m: [] for m in measures.names}
    for a in range(len(ALPHAS)):
        s = measures(img[:, a])
        for m in out:
            out[m].append(float(np.nanmean(s[m])))
    return out


def _slope(alphas, means) -> float:
    """OLS slope of the per-alpha means on alpha (equal samples per alpha: the pooled slope)."""
    return float(np.polyfit(np.asarray(alphas, float), np.asarray(means, float), 1)[0])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=3000, help="latents the boundaries are fitted on (seed 1)")
    ap.add_argument("--walk", type=int, default=256, help="fresh samples walked (seed 2)")
    ap.add_argument("--parts", default="boundaries,factorisations", help="boundaries (with the walks), factorisations")
    ap.add_argument("--json", default=None, help="also write the results here")
    a = ap.parse_args(argv)
    parts = set(a.parts.split(","))

    import probe

    t0 = time.perf_counter()
    faces = probe.load_model("faces")
    res = {}
    if "factorisations" in parts:
        sefa = probe.SeFa(n_components=5).fit(faces)
        gs = probe.GANSpace(n_components=2, n_samples=5000, space="z", site="b1").fit(faces)
        res["sefa_eigenvalues"] = [round(float(e), 1) for e in sefa.eigenvalues_[:5]]
        res["ganspace_b1_explained"] = [round(float(r), 4) for r in gs.explained_variance_ratio_[:2]]
        print(f"SeFa top eigenvalues: {res['sefa_eigenvalues']}")
        print(
            f"GANSpace at b1: PC0 explains {res['ganspace_b1_explained'][0]:.1%}, "
            f"PC1 {res['ganspace_b1_explained'][1]:.1%} of the activation variance"
        )
    if "boundaries" in parts:
        res.update(_boundaries(faces, a.n, a.walk))
    res["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"{res['seconds']} s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return res


def _boundaries(faces, n: int, n_walk: int) -> dict:
    import probe
    from probe.density import logp_normal
    from probe.directions.interfacegan import project, sample_and_score
    from probe.walks import Target, apply

    measures = probe.MeasureSet(["gender", "age"])
    lat, scores = sample_and_score(faces, measures, n, seed=1)
    fits = {r: probe.InterFaceGAN(["gender", "age"], ratio=r).fit(lat, scores) for r in (0.1, 0.2, 0.3)}
    b = fits[0.1].directions_
    gender, age = b.vector("gender"), b.vector("age")
    age2, age3 = fits[0.2].directions_.vector("age"), fits[0.3].directions_.vector("age")
    res = {
        "accuracy": {
            "gender": fits[0.1].accuracy_["gender"],
            "age": fits[0.1].accuracy_["age"],
            "age_ratio_0.3": fits[0.3].accuracy_["age"],
        },
        "cos_gender_age": float(gender @ age),
        "cos_gender_age_ratio_0.3": float(gender @ age3),
    }

    z = faces.sample(n_walk, 2)
    walks = {
        "gender": _walk_means(faces, measures, z, gender),
        "gender|age": _walk_means(faces, measures, z, project(gender, [age3])),
    }
    res["walk"] = {k: {m: [round(v, 3) for v in vals] for m, vals in w.items()} for k, w in walks.items()}
    drift = {
        "gender": _slope(ALPHAS, walks["gender"]["age"]),
        "gender|age(0.3)": _slope(ALPHAS, walks["gender|age"]["age"]),
        "gender|age(0.2)": _slope(ALPHAS, _walk_means(faces, measures, z, project(gender, [age2]))["age"]),
    }
    res["age_slope_per_unit"] = drift

    v = np.random.default_rng(0).standard_normal(faces.z_dim)
    v /= np.linalg.norm(v)
    lp0 = logp_normal(z).repeat_interleave(len(ALPHAS))
    dlogp = {}
    for walk in ("isodensity", "linear"):
        out = apply(z, "z", Target("direction", "random", walk, vector=v.astype(np.float32)), ALPHAS)
        d = (logp_normal(out) - lp0).abs()
        dlogp[walk] = {"mean": float(d.mean()), "max": float(d.max())}
    res["dlogp_random_walk"] = dlogp

    print(
        f"held-out accuracy (ratio 0.1): gender {res['accuracy']['gender']:.3f}, age {res['accuracy']['age']:.3f}"
        f"; age at ratio 0.3: {res['accuracy']['age_ratio_0.3']:.3f}"
    )
    print(f"cos(gender, age) = {res['cos_gender_age']:.2f} (age at ratio 0.3: {res['cos_gender_age_ratio_0.3']:.2f})")
    print("alpha                  " + " ".join(f"{al:>6}" for al in ALPHAS))
    for k, w in res["walk"].items():
        print(f"mean P(male), {k:<9}" + " ".join(f"{x:6.3f}" for x in w["gender"]))
        print(f"mean age, {k:<13}" + " ".join(f"{x:6.2f}" for x in w["age"]))
    print("age drift (years per unit alpha): " + ", ".join(f"{k} {s:.3f}" for k, s in drift.items()))
    print(
        "|dlogp| of a random unit direction: "
        + ", ".join(f"{w} mean {d['mean']:.3g} max {d['max']:.3g}" for w, d in dlogp.items())
    )
    return res


if __name__ == "__main__":
    main()
