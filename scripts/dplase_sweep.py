"""DP-LaSE sweep: site, steps, step size, loss and subspace options, over seeds, on two benchmarks.

- sprites ground truth (model `sprites`, measures `sprites`, in w): per config and seed, DP-LaSE (k directions) and
  random (k orthonormal, the baseline) walked in ONE study as `probe gt-score` walks them (unit vectors, alpha in
  units of the RMS std of w, alphas -2..2), scored by probe.directions.groundtruth.GroundTruthScore:
  disentanglement, completeness, MIG gap, purity, and DP-LaSE's D minus random's D in the same study;
- faces (model `faces`, measures `faces`, in z): DP-LaSE walked isodensity (as the demo), scored by
  probe.directions.evaluate: the mean and the median specificity and the mean |dlogp| (density drift) over the
  directions.

Configs change one setting of today's defaults at a time (site, steps, step_size, step_distribution,
directions_per_latent, decorrelation, final_qr, subspace with per-group refine: n_groups, affinity_threshold,
group_assignment), plus `authors-code`, the
reference's choices together. Writes <out>/dplase_sweep_runs.csv (one row per benchmark, config, seed) and
<out>/dplase_sweep.csv + .md (mean and std over seeds), each run merged in as it finishes (a rerun replaces its
row, other runs stay). Resumable: fitted sets and studies are kept under <out>.

Step sizes: `step_std=S` in a config means step_size = S x the walked space's spread (w: the RMS std of w, the
alpha unit of `probe gt-score`; z: 1, the prior's std), so training steps are comparable with the scored walks.
`--configs NAME,...` runs only the named configs (any of the full list or REDUCED); `--configs reduced` is the
short sprites sweep in REDUCED (step size against w's spread, site, linear walks, subspace refine, the authors'
loss at a matched step).

  python scripts/dplase_sweep.py --out runs/dplase-sweep              (the sweep, 3 seeds; long on a CPU)
  python scripts/dplase_sweep.py --out runs/dplase-reduced --benchmarks sprites --configs reduced
  python scripts/dplase_sweep.py --out /tmp/dplase-quick --quick      (tiny models, one seed: a smoke run)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REFERENCE = {
    "step_distribution": "uniform",
    "step_size": 10.0,
    "directions_per_latent": "one",
    "decorrelation": "flat-dot2",
    "variation_scale": "none",
    "variation_weight": 0.1,
    "lambda_corr": 10.0,
    "final_qr": False,
}
RUN_COLUMNS = [
    "benchmark",
    "config",
    "seed",
    "fit_seconds",
    "step_size",
    "train_walk_std",
    "disentanglement",
    "completeness",
    "mig",
    "purity",
    "strength",
    "random_disentanglement",
    "d_minus_random",
    "top_factors",
    "specificity",
    "specificity_median",
    "dlogp_abs_mean",
]
BENCHMARK_METRICS = {  # the scores each benchmark reports, in table order
    "sprites-gt": ["train_walk_std", "disentanglement", "completeness", "mig", "purity", "strength", "d_minus_random"],
    "faces": ["specificity", "specificity_median", "dlogp_abs_mean"],
}
METRICS = [m for ms in BENCHMARK_METRICS.values() for m in ms]
BENCHMARKS = {"sprites-gt": "sprites-gt", "sprites": "sprites-gt", "faces": "faces"}
# the short sprites sweep: today's defaults, the training step against w's spread (the default 3.0 is ~28 RMS
# stds of w on `sprites`, the scored walks reach 2), then at a 2-std step: a coarser site, linear walks (as the
# scored walks), the per-group refine, the authors' loss choices with the same largest step, and one loss option
# at a time (one direction per latent, per-channel decorrelation, no final QR, a denser affinity)
REDUCED = [
    ("default", {}),
    ("step_std=0.5", {"step_std": 0.5}),
    ("step_std=2", {"step_std": 2.0}),
    ("step_std=2+site=b8", {"step_std": 2.0, "site": "b8"}),
    ("step_std=2+linear", {"step_std": 2.0, "density": False}),
    (
        "step_std=2+self-expression-refine:6",
        {"step_std": 2.0, "subspace": "self-expression", "n_groups": 6, "subspace_refine": True},
    ),
    ("authors-code+step_std=2", {**REFERENCE, "step_std": 2.0}),
    ("step_std=2+one-per-latent", {"step_std": 2.0, "directions_per_latent": "one"}),
    ("step_std=2+channel-cos2", {"step_std": 2.0, "decorrelation": "channel-cos2"}),
    ("step_std=2+no-final-qr", {"step_std": 2.0, "final_qr": False}),
    (
        "step_std=2+self-expression-refine:6,threshold=0.5",
        {
            "step_std": 2.0,
            "subspace": "self-expression",
            "n_groups": 6,
            "affinity_threshold": 0.5,
            "subspace_refine": True,
        },
    ),
]


def configs(sites, default_site: str, quick: bool = False) -> list[tuple[str, dict]]:
    """(name, DPLaSE keyword arguments) of the sweep for a model with `sites`; names are unique."""
    if quick:
        return [
            ("default", {}),
            (f"site={sites[-1]}", {"site": sites[-1]}),
            ("step_size=10", {"step_size": 10.0}),
            ("uniform", {"step_distribution": "uniform"}),
            ("self-expression-refine:2", {"subspace": "self-expression", "n_groups": 2, "subspace_refine": True}),
        ]
    out = [("default", {})]
    out += [(f"site={s}", {"site": s}) for s in sites if s != default_site]
    out += [(f"steps={n}", {"steps": n}) for n in (600, 2000)]
    out += [(f"step_size={v:g}", {"step_size": v}) for v in (1.0, 10.0)]
    out += [
        ("uniform", {"step_distribution": "uniform"}),
        ("uniform,step_size=10", {"step_distribution": "uniform", "step_size": 10.0}),
    ]
    out += [
        ("one-per-latent", {"directions_per_latent": "one"}),
        ("channel-cos2", {"decorrelation": "channel-cos2"}),
        ("no-final-qr", {"final_qr": False}),
    ]
    out += [
        (f"self-expression-refine:{n}", {"subspace": "self-expression", "n_groups": n, "subspace_refine": True})
        for n in (4, 6, 8)
    ]
    out += [
        (
            "self-expression-refine:6,threshold=0.5",
            {"subspace": "self-expression", "n_groups": 6, "affinity_threshold": 0.5, "subspace_refine": True},
        ),
        (
            "self-expression-refine:6,absolute",
            {"subspace": "self-expression", "n_groups": 6, "group_assignment": "absolute", "subspace_refine": True},
        ),
    ]
    out += [("authors-code", dict(REFERENCE))]
    return out


def select_configs(all_configs: list[tuple[str, dict]], names) -> list[tuple[str, dict]]:
    """The configs named in `names` (None: all; "reduced": REDUCED), in the order given."""
    from probe.errors import ProbeError

    if names is None:
        return all_configs
    known = dict(all_configs)
    for n, kw in REDUCED:
        known.setdefault(n, kw)
    names, out, i = list(names), [], 0
    while i < len(names):  # names split at commas: rejoin the pieces of a name holding commas (longest first)
        j = next((j for j in range(len(names), i + 1, -1) if ",".join(names[i:j]) in known), i + 1)
        n, i = ",".join(names[i:j]), j
        if n == "reduced":
            out += [c for c in REDUCED if c[0] not in dict(out)]
        elif n not in known:
            raise ProbeError(f"--configs: {n!r} unknown; use 'reduced' or some of {list(known)}")
        elif n not in dict(out):
            out.append((n, known[n]))
    if not out:
        raise ProbeError("--configs: name at least one config, e.g. --configs default,step_std=2")
    return out


def resolve(kw: dict, unit: float) -> dict:
    """DPLaSE keyword arguments of a config: `step_std` becomes step_size = step_std * unit."""
    kw = dict(kw)
    if "step_std" in kw:
        kw["step_size"] = float(f"{kw.pop('step_std') * unit:.4g}")
    return kw


def train_walk_std(model, vectors, kw: dict, unit: float, n: int = 512, seed: int = 0) -> float:
    """Mean length of DP-LaSE's training walks in w, ||dp(w0 + t g) - w0|| / unit, over n w0, every direction
    and t drawn as in training: comparable with the scored walks' |alpha| (at most 2)."""
    import torch

    from probe.density import GaussianDensity
    from probe.directions.dplase import density_preserve, draw_steps

    g = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        w = model.to_space(torch.randn(4096 + n, model.z_dim, generator=g).to(model.device), "z", "w")
        w = w.double().cpu()
    dens = GaussianDensity().fit(w[:4096])
    w0 = w[4096:]
    gam = torch.as_tensor(np.asarray(vectors), dtype=torch.float64)
    t = draw_steps(n, float(kw.get("step_size", 3.0)), kw.get("step_distribution", "signed-uniform"), g).double()
    x0 = w0.repeat_interleave(len(gam), 0)
    x1 = x0 + t.repeat_interleave(len(gam))[:, None] * gam.repeat(n, 1)
    if kw.get("density", True):
        x1 = density_preserve(x0, x1, dens)
    return float((x1 - x0).norm(dim=1).mean() / unit)


def top_factors(assignments) -> str:
    """Count of each factor as a direction's top factor, most frequent first, e.g. 'scale:4 y:1 x:1'."""
    counts = assignments["factor"][assignments["factor"] != ""].value_counts(sort=False)
    counts = counts.sort_values(ascending=False, kind="stable")
    return " ".join(f"{f}:{int(c)}" for f, c in counts.items())


def _fit(path: Path, make) -> float:
    """Fit and save unless the file exists; -> the fit's training seconds (from its provenance)."""
    from probe.directions.base import DirectionSet, fit_once

    fit_once(path, make, log=lambda s: None)
    return float(DirectionSet.load(path).provenance.get("seconds", np.nan))


def _study(model_name, measures, seed, n_samples, alphas, space, targets, out: Path):
    from probe.study import parse_spec, run_study

    spec = parse_spec(
        {
            "name": out.name,
            "model": model_name,
            "measures": list(measures),
            "n_samples": n_samples,
            "seed": seed,
            "space": space,
            "alphas": list(alphas),
            "targets": targets,
        },
        base=out,
    )
    return run_study(spec, out, resume=(out / "manifest.json").is_file(), progress=False)


def merge_runs(out: Path, rows: list[dict]) -> pd.DataFrame:
    """Merge `rows` into <out>/dplase_sweep_runs.csv (one row per benchmark, config, seed: a new row replaces the
    old one) and rewrite it with dplase_sweep.csv and .md; -> all runs. Processes sharing `out` take turns."""
    import fcntl

    from probe.io import atomic_write_bytes

    out.mkdir(parents=True, exist_ok=True)
    path = out / "dplase_sweep_runs.csv"
    with open(out / ".dplase_sweep.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = pd.read_csv(path, dtype={"top_factors": str}) if path.is_file() else None
        new = pd.DataFrame(rows).reindex(columns=RUN_COLUMNS)
        runs = new if old is None else pd.concat([old.reindex(columns=RUN_COLUMNS), new], ignore_index=True)
        runs = runs.astype({"seed": int})
        # first appearance of each benchmark, and of each config within its benchmark (reruns too)
        bench = {v: i for i, v in enumerate(pd.unique(runs["benchmark"]))}
        pairs = list(zip(runs["benchmark"], runs["config"], strict=True))
        config = {v: i for i, v in enumerate(dict.fromkeys(pairs))}
        runs = runs.drop_duplicates(["benchmark", "config", "seed"], keep="last")
        rank = [(bench[b], config[(b, c)], s) for b, c, s in zip(runs["benchmark"], runs["config"], runs["seed"])]
        runs = runs.iloc[sorted(range(len(runs)), key=rank.__getitem__)].reset_index(drop=True)
        summary = summarise(runs)
        atomic_write_bytes(path, runs.to_csv(index=False).encode())
        atomic_write_bytes(out / "dplase_sweep.csv", summary.to_csv(index=False).encode())
        atomic_write_bytes(out / "dplase_sweep.md", (to_markdown(summary) + "\n").encode())
    return runs


def sprites_runs(
    out: Path, model_name: str, measures, seeds, k: int, steps: int, n_samples: int, quick: bool, log, names=None
) -> list[dict]:
    """Ground-truth scores of DP-LaSE per config and seed (random walked in the same study)."""
    from probe.directions import DirectionSet, DPLaSE, RandomDirections
    from probe.directions.groundtruth import GroundTruthScore, w_spread
    from probe.directions.registry import quarter_site
    from probe.measures import MeasureSet
    from probe.models import load_model

    model = load_model(model_name)
    unit = w_spread(model, seed=0)
    factors = MeasureSet(list(measures)).names
    site0 = quarter_site(model)
    rows = []
    for seed in seeds:
        for name, kw in select_configs(configs(list(model.sites), site0, quick), names):
            d = (
                out
                / "sprites"
                / f"seed-{seed}"
                / name.replace("=", "-").replace(",", "_").replace(":", "-").replace("+", "_")
            )
            kw = {"steps": steps, "site": site0, **resolve(kw, unit)}
            sec = _fit(
                d / "directions" / "dplase.npz",
                lambda seed=seed, kw=kw: DPLaSE(k, space="w", seed=seed, progress=False, **kw).fit(model).directions_,
            )
            walk = train_walk_std(
                model, DirectionSet.load(d / "directions" / "dplase.npz").vectors, kw, unit, seed=seed
            )
            _fit(
                d / "directions" / "random.npz",
                lambda seed=seed: RandomDirections(k, seed=seed, space="w").fit(model).directions_,
            )
            targets = [{"kind": "directions", "file": f, "walk": "linear", "scale": unit} for f in ("dplase", "random")]
            study = _study(model_name, measures, seed, n_samples, [-2, -1, 0, 1, 2], "w", targets, d)
            gts = GroundTruthScore(factors).fit(study)
            sc = gts.scores_.set_index("method")
            r = sc.loc["dplase"]
            rows.append(
                {
                    "benchmark": "sprites-gt",
                    "config": name,
                    "seed": seed,
                    "fit_seconds": sec,
                    "step_size": kw.get("step_size", 3.0),
                    "train_walk_std": walk,
                    "disentanglement": r["disentanglement"],
                    "completeness": r["completeness"],
                    "mig": r["mig"],
                    "purity": r["purity"],
                    "strength": r["strength"],
                    "random_disentanglement": sc.loc["random", "disentanglement"],
                    "d_minus_random": r["disentanglement"] - sc.loc["random", "disentanglement"],
                    "top_factors": top_factors(gts.assignments_[gts.assignments_["method"] == "dplase"]),
                }
            )
            merge_runs(out, rows[-1:])
            log(
                f"  sprites-gt {name:<40} seed {seed}: D {r['disentanglement']:.3f} "
                f"(random {sc.loc['random', 'disentanglement']:.3f}), top {rows[-1]['top_factors']}"
            )
    return rows


def faces_runs(
    out: Path, model_name: str, measures, seeds, k: int, steps: int, n_samples: int, quick: bool, log, names=None
) -> list[dict]:
    """Specificity and density drift of DP-LaSE per config and seed (isodensity walks in z)."""
    from probe.directions import DPLaSE
    from probe.directions.evaluate import evaluate_study
    from probe.models import load_model

    model = load_model(model_name)
    site0 = model.sites[0]
    rows = []
    for seed in seeds:
        for name, kw in select_configs(configs(list(model.sites), site0, quick), names):
            d = (
                out
                / "faces"
                / f"seed-{seed}"
                / name.replace("=", "-").replace(",", "_").replace(":", "-").replace("+", "_")
            )
            kw = {"steps": steps, "site": site0, **resolve(kw, 1.0)}
            sec = _fit(
                d / "directions" / "dplase.npz",
                lambda seed=seed, kw=kw: DPLaSE(k, space="z", seed=seed, progress=False, **kw).fit(model).directions_,
            )
            targets = [{"kind": "directions", "file": "dplase", "walk": "isodensity"}]
            ev = evaluate_study(_study(model_name, measures, seed, n_samples, [-3, -1.5, 0, 1.5, 3], "z", targets, d))
            per = ev[ev["method"] == "dplase"].drop_duplicates("target")
            rows.append(
                {
                    "benchmark": "faces",
                    "config": name,
                    "seed": seed,
                    "fit_seconds": sec,
                    "step_size": kw.get("step_size", 3.0),
                    "specificity": float(per["specificity"].mean()),
                    "specificity_median": float(per["specificity"].median()),
                    "dlogp_abs_mean": float(per["dlogp_abs_mean"].mean()),
                }
            )
            merge_runs(out, rows[-1:])
            log(
                f"  faces      {name:<40} seed {seed}: specificity {rows[-1]['specificity']:.3f}, "
                f"|dlogp| {rows[-1]['dlogp_abs_mean']:.2e}"
            )
    return rows


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and std (ddof 1) over seeds per benchmark and config, in the sweep's order."""
    rows = []
    for (bench, cfg), g in runs.groupby(["benchmark", "config"], sort=False):
        r = {
            "benchmark": bench,
            "config": cfg,
            "seeds": len(g),
            "fit_seconds": float(g["fit_seconds"].mean()),
            "step_size": float(g["step_size"].iloc[0]),
        }
        if bench == "sprites-gt":
            r["beats_random"] = int((g["d_minus_random"].astype(float) > 0).sum())
        for m in METRICS:
            v = g[m].astype(float) if m in g else pd.Series(dtype=float)
            r[f"{m}_mean"] = float(v.mean()) if v.notna().any() else np.nan
            r[f"{m}_std"] = float(v.std(ddof=1)) if v.notna().sum() > 1 else np.nan
        rows.append(r)
    return pd.DataFrame(rows)


def to_markdown(summary: pd.DataFrame) -> str:
    """One table per benchmark: mean +- std over seeds of its scores."""
    out = []
    for bench, g in summary.groupby("benchmark", sort=False):
        ms = BENCHMARK_METRICS.get(bench, METRICS)
        gt = bench == "sprites-gt"
        out += [
            f"### {bench}",
            "",
            "| config | seeds | step_size | fit s | "
            + " | ".join(ms)
            + (" | D above random (seeds) |" if gt else " |"),
            "|" + "---|" * (4 + len(ms) + gt),
        ]
        for r in g.to_dict("records"):
            cells = []
            for m in ms:
                mean, sd = r[f"{m}_mean"], r[f"{m}_std"]
                fmt = ".2e" if m == "dlogp_abs_mean" else ".3f"
                cells.append("–" if np.isnan(mean) else f"{mean:{fmt}}" + ("" if np.isnan(sd) else f" ± {sd:{fmt}}"))
            if gt:
                cells.append(f"{int(r['beats_random'])} of {r['seeds']}")
            out.append(
                f"| {r['config']} | {r['seeds']} | {r['step_size']:.4g} | {r['fit_seconds']:.1f} | "
                + " | ".join(cells)
                + " |"
            )
        out.append("")
    return "\n".join(out)


def run_sweep(
    out,
    seeds=(0, 1, 2),
    quick: bool = False,
    k: int | None = None,
    steps: int | None = None,
    gt_model: str | None = None,
    gt_measures=None,
    faces_model: str | None = None,
    faces_measures=None,
    n_samples: int | None = None,
    benchmarks=("sprites-gt", "faces"),
    config_names=None,
    log=print,
) -> pd.DataFrame:
    """Run the sweep into `out`, merged with the runs already tabled there (each written as it finishes); returns
    the summary table of all of them (also written as CSV and Markdown)."""
    from probe.errors import ProbeError

    out = Path(out)
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ProbeError(f"--seeds: give distinct seeds, e.g. 0,1,2; got {seeds}")
    bad = [b for b in benchmarks if b not in BENCHMARKS]
    if bad or not benchmarks:
        raise ProbeError(f"--benchmarks: {bad or 'none'} unknown; use sprites (or sprites-gt) and/or faces")
    benchmarks = [BENCHMARKS[b] for b in benchmarks]
    k = k or (2 if quick else 6)
    steps = steps or (2 if quick else 200)
    n = n_samples or (8 if quick else 96)
    runs = []
    if "sprites-gt" in benchmarks:
        runs += sprites_runs(
            out,
            gt_model or ("tiny-stylegan" if quick else "sprites"),
            gt_measures or (["image"] if quick else ["sprites"]),
            seeds,
            k,
            steps,
            n,
            quick,
            log,
            config_names,
        )
    if "faces" in benchmarks:
        runs += faces_runs(
            out,
            faces_model or ("tiny-dcgan" if quick else "faces"),
            faces_measures or (["image"] if quick else ["faces"]),
            seeds,
            k,
            steps,
            n if quick else max(n, 128),
            quick,
            log,
            config_names,
        )
    return summarise(merge_runs(out, runs))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output directory (resumable)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--quick", action="store_true", help="tiny models, 5 configs, few steps (a smoke run)")
    p.add_argument("--k", type=int, default=None, help="directions per set (default 6; quick 2)")
    p.add_argument("--steps", type=int, default=None, help="DP-LaSE steps of the default config (200; quick 2)")
    p.add_argument("--n-samples", type=int, default=None, help="study samples (96 sprites, 128 faces; quick 8)")
    p.add_argument("--benchmarks", default="sprites-gt,faces", help="sprites (or sprites-gt) and/or faces")
    p.add_argument(
        "--configs",
        default=None,
        help="comma-separated config names to run (default all; 'reduced': the short sprites sweep)",
    )
    a = p.parse_args(argv)
    from probe.errors import ProbeError

    try:
        seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    except ValueError:
        print(f"error: --seeds {a.seeds!r}: give integers separated by commas, e.g. 0,1,2", file=sys.stderr)
        return 2
    try:
        summary = run_sweep(
            a.out,
            seeds,
            a.quick,
            a.k,
            a.steps,
            n_samples=a.n_samples,
            benchmarks=[b.strip() for b in a.benchmarks.split(",") if b.strip()],
            config_names=None if a.configs is None else [c.strip() for c in a.configs.split(",") if c.strip()],
        )
    except ProbeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(to_markdown(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
