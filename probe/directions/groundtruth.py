"""The ground-truth pipeline (`probe gt-score`): fit every registered direction method on a model with known
factors, walk all of them in ONE study, evaluate, and score each direction against the factors.

The metrics and their estimator are in probe.directions.disentanglement; the fits go through the shared pipeline
probe.directions.pipeline.fit_methods; Markdown tables are written by the caller's `markdown` function
(reports.groundtruth_md for the CLI), so this module never imports the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from ..errors import ProbeError
from .base import DirectionError
from .disentanglement import GroundTruthScore, seed_summary

DEFAULT_SPEC = Path(__file__).resolve().parents[2] / "examples" / "sprites_gt.toml"  # the repository's


def groundtruth(
    study,
    factors: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    circular: dict[str, float] | None = None,
    write: bool = True,
) -> GroundTruthScore:
    """Fit GroundTruthScore on a study; with write, store its importance table as the study's `groundtruth`."""
    est = GroundTruthScore(factors, categorical, circular).fit(study)
    if write:
        write_groundtruth(study, est.importance_)
    return est


def write_groundtruth(study, df: pd.DataFrame) -> Path:
    """Write groundtruth.parquet through probe.store (the table contract is schema.GROUNDTRUTH_COLUMNS)."""
    return study.write_table("groundtruth", df)


def fit_gt_directions(
    model,
    ddir: Path,
    factors: Sequence[str],
    k: int = 6,
    n_fit: int = 2000,
    dplase_steps: int = 200,
    ratio: float = 0.1,
    space: str = "w",
    circular: dict | None = None,
    seed: int = 0,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> None:
    """Fit every registered method into ddir (skipping files that exist) with fit_methods.

    InterFaceGAN: one boundary per factor, labels = the factor measures of n_fit samples (top/bottom `ratio`;
    a circular factor {measure: period} is labelled by cos(2 pi m / period): axis-aligned vs diagonal);
    DP-LaSE: k directions at the quarter-resolution site, dplase_steps iterations; GANSpace: PCA of n_fit w;
    SeFa: all style affines (as the published scores); random: k orthonormal. All in `space` (w). seed: of
    DP-LaSE, GANSpace and random; InterFaceGAN's samples and split use seed + 1.
    """
    from .pipeline import fit_methods
    from .registry import quarter_site

    fit_methods(
        model,
        ddir,
        measures=list(factors),
        k=k,
        n_fit=n_fit,
        seed=seed,
        space=space,
        progress=progress,
        log=log,
        options={
            "interfacegan": {"ratio": ratio, "seed": seed + 1, "periods": dict(circular or {})},
            "dplase": {"steps": dplase_steps, "site": quarter_site(model)},
            "sefa": {"affines": "all-affines"},
        },
    )


def w_spread(model, n: int = 4096, seed: int = 0) -> float:
    """RMS std of w over n samples, sqrt(trace(cov(w)) / w_dim), rounded to 4 significant digits."""
    import torch

    with torch.no_grad():
        w = model.to_space(model.sample(int(n), seed), "z", "w").double().cpu()
    s = float(torch.sqrt(torch.trace(torch.cov(w.T)) / w.shape[1]))
    return float(f"{s:.4g}")


def gt_spec(
    spec: str | Path = DEFAULT_SPEC,
    model: str | None = None,
    measures: Sequence[str] | None = None,
    n_samples: int | None = None,
    unit: float | None = None,
    seed: int | None = None,
):
    """Load the ground-truth study spec (TOML), optionally for another model / measures / sample count.

    unit: the step of alpha = 1 for every direction target without its own `scale` (run_groundtruth passes the
    model's w spread, so every unit direction is walked the same distance in units of w's typical std).
    """
    from ..study import SpecError, parse_spec, read_spec_file

    p = Path(spec)
    if not p.is_file():
        raise SpecError(f"--spec {str(p)!r} does not exist; pass --spec path/to/spec.toml")
    data = read_spec_file(p)
    if model is not None:
        from ..models.zoo import resolve_model

        own = data.get("model")
        data["model"] = resolve_model(model, Path.cwd())  # named on the command line: relative to the cwd
        if model != own:  # another model than the spec's: its own study name
            data["name"] = f"{data.get('name', 'gt')}-{model}"
    if measures is not None:
        data["measures"] = list(measures)
    if n_samples is not None:
        data["n_samples"] = int(n_samples)
    if seed is not None:
        data["seed"] = int(seed)
    if unit is not None:
        data["targets"] = [
            dict(t, scale=float(unit))
            if isinstance(t, dict) and t.get("kind") == "directions" and "scale" not in t
            else t
            for t in data.get("targets", [])
        ]
    s = parse_spec(data, p.parent, where=f"{p.name}: ")
    s._source = p.name
    return s


def run_groundtruth(
    out: str | Path,
    model: str | None = None,
    spec: str | Path = DEFAULT_SPEC,
    measures: Sequence[str] | None = None,
    k: int = 6,
    n_fit: int = 2000,
    dplase_steps: int = 200,
    n_samples: int | None = None,
    seed: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    device: str | None = None,
    markdown: Callable[[GroundTruthScore], str] | None = None,
) -> GroundTruthScore:
    """Fit every registered method, run ONE study walking all of them, evaluate, score; writes into `out`:
    directions/, the study tables, evaluation.parquet, groundtruth.parquet, and with `markdown` (est -> text,
    e.g. reports.groundtruth_md.to_markdown) groundtruth.md. Resumable.
    seed: of the study's samples and of the fits (None: the spec's seed for samples, 0 for the fits).
    device: auto | cpu | cuda | cuda:N for the fits and the study (default the spec's device, auto)."""
    from ..devices import resolve_device
    from ..measures import MeasureSet, circular
    from ..models import load_model
    from ..study import run_study, spec_model
    from .evaluate import evaluate_study

    out = Path(out)
    s = gt_spec(spec, model, measures, n_samples, seed=seed)
    t0 = time.perf_counter()
    from ..models.zoo import model_options

    dev = resolve_device(device or s.device, field="--device" if device else "device")
    g = load_model(spec_model(s), **model_options(s.dump())).to(dev)
    if s.space not in ("w", "ws") or "w" not in g.spaces:
        raise ProbeError(
            f"model {g.name!r} has no w space; ground-truth scoring fits the methods in w "
            f"(use a style-based model such as 'sprites')"
        )
    unit = w_spread(g, seed=0)  # a property of the model: the same step for every seed
    s = gt_spec(spec, model, measures, n_samples, unit=unit, seed=seed)
    ms = MeasureSet(list(s.measures))
    factors = ms.names
    log(
        f"[1/3] fitting direction sets on model {s.model!r} (weights {g.weights_hash}), factors {factors}; "
        f"alpha unit = RMS std of w = {unit}"
    )
    fit_gt_directions(
        g,
        out / "directions",
        factors,
        k=k,
        n_fit=n_fit,
        dplase_steps=dplase_steps,
        circular=circular(ms),
        seed=0 if seed is None else int(seed),
        progress=progress,
        log=log,
    )
    log(f"[2/3] running study {s.name!r} -> {out}")
    study = run_study(s, out, resume=(out / "manifest.json").is_file(), progress=progress, device=str(dev))
    evaluate_study(study)
    log("[3/3] ground-truth scores")
    est = groundtruth(study, factors)
    written = [out / "groundtruth.parquet"]
    if markdown is not None:
        from ..io import atomic_write_bytes

        md = markdown(est)
        written.append(atomic_write_bytes(out / "groundtruth.md", (md + "\n").encode()))
        log(md)
    else:
        log(est.scores_.to_string(index=False))
    log(f"done in {time.perf_counter() - t0:.0f} s: " + ", ".join(map(str, written)))
    return est


def run_groundtruth_seeds(
    out: str | Path,
    seeds: Sequence[int],
    log: Callable[[str], None] = print,
    seeds_markdown: Callable[[pd.DataFrame], str] | None = None,
    **kw,
) -> pd.DataFrame:
    """run_groundtruth once per seed into out/seed-<s>/ (each resumable), then the seed summary: writes
    out/groundtruth_seeds.csv, and with `seeds_markdown` (summary -> text, e.g.
    reports.groundtruth_md.seed_markdown) out/groundtruth_seeds.md. kw: run_groundtruth's other arguments
    (markdown among them).  # -> seed_summary table"""
    from ..io import atomic_write_bytes

    seeds = [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds) or not seeds:
        raise DirectionError(f"--seeds: give distinct seeds, e.g. 0,1,2; got {seeds}")
    out = Path(out)
    scores = {}
    for s in seeds:
        log(f"== seed {s} ({seeds.index(s) + 1} of {len(seeds)})")
        scores[s] = run_groundtruth(out / f"seed-{s}", seed=s, log=log, **kw).scores_
    summary = seed_summary(scores)
    atomic_write_bytes(out / "groundtruth_seeds.csv", summary.to_csv(index=False).encode())
    if seeds_markdown is not None:
        md = seeds_markdown(summary)
        atomic_write_bytes(out / "groundtruth_seeds.md", (md + "\n").encode())
        log(md)
    return summary


__all__ = [
    "GroundTruthScore",
    "groundtruth",
    "fit_gt_directions",
    "run_groundtruth",
    "gt_spec",
    "write_groundtruth",
    "w_spread",
    "run_groundtruth_seeds",
    "DEFAULT_SPEC",
]
