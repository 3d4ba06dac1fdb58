"""Timings of the analysis layer on synthetic tables: effects, correlations, controlling, UMAP (JIT and cache).

Reproduces the "Measured" list of docs/readme/30-analysis.md:

- `effects_from_table` on 64 variables x 300 samples x 7 alphas x 7 measures (134,400 rows, 448 tests) and on
  2,000 targets x 20 samples x 7 alphas (280,000 rows, 14,000 tests);
- `correlations_from_arrays` for 300 samples x 100 variables x 7 measures; `controlling` on the first set;
- `LatentEmbedding`: the first fit in this process (numba JIT included) of 300 latents x 100-d, a second fit,
  `transform` of 7,168 points, and a cached fit + transform from a fresh cache folder.

    python scripts/time_analysis.py                  # the UMAP JIT dominates: about a minute or two on a CPU
    python scripts/time_analysis.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import pandas as pd

MEASURES = [f"m{i}" for i in range(7)]


def interventions(n_targets: int, n_samples: int, alphas, seed: int = 0) -> pd.DataFrame:
    """Synthetic interventions rows: d_<measure> = slope * alpha + noise per target.  # -> [T * N * A rows]"""
    rng = np.random.default_rng(seed)
    t = np.repeat(np.arange(n_targets), n_samples * len(alphas))
    a = np.tile(np.asarray(alphas, float), n_targets * n_samples)
    df = pd.DataFrame({"method": "variable", "target": [f"z[{i}]" for i in t], "alpha": a})
    for m in MEASURES:
        slope = rng.normal(0, 0.05, n_targets)[t]
        df[f"d_{m}"] = slope * a + rng.normal(0, 0.1, len(a))
    return df


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, round(time.perf_counter() - t0, 3)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)

    from probe.embed import LatentEmbedding
    from probe.stats import controlling, correlations_from_arrays, effects_from_table

    alphas = [-3, -2, -1, 0, 1, 2, 3]
    res = {}
    small, big = interventions(64, 300, alphas), interventions(2000, 20, alphas)
    eff, res["effects, 134,400 rows (448 tests)"] = _timed(lambda: effects_from_table(small, MEASURES))
    _, res["effects, 280,000 rows (14,000 tests)"] = _timed(lambda: effects_from_table(big, MEASURES))
    rng = np.random.default_rng(1)
    lat = rng.standard_normal((300, 100)).astype(np.float32)
    samples = pd.DataFrame(
        {"sample_id": np.arange(300), **{m: lat[:, i] * 0.3 + rng.standard_normal(300) for i, m in enumerate(MEASURES)}}
    )
    cor, res["correlations, 300 samples x 100 variables x 7 measures"] = _timed(
        lambda: correlations_from_arrays(lat, samples, MEASURES, "z")
    )
    _, res["controlling"] = _timed(lambda: controlling(eff, cor))
    walk = rng.standard_normal((7168, 100)).astype(np.float32)
    _, res["UMAP first fit in the process (JIT), 300 x 100"] = _timed(lambda: LatentEmbedding().fit(lat))
    emb, res["UMAP second fit"] = _timed(lambda: LatentEmbedding().fit(lat))
    _, res["UMAP transform, 7,168 points"] = _timed(lambda: emb.transform(walk))
    with tempfile.TemporaryDirectory() as d:
        LatentEmbedding(cache_dir=d).fit(lat).transform(walk)
        _, res["UMAP cached fit + transform"] = _timed(lambda: LatentEmbedding(cache_dir=d).fit(lat).transform(walk))
    for k, s in res.items():
        print(f"{k:<56} {s:8.3f} s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == "__main__":
    main()
