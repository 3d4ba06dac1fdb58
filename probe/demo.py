"""The main job on the embedded face model: directions -> study -> statistics -> evaluation -> UMAP -> report."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from .errors import ProbeError

DEFAULT_SPEC = Path("examples/faces_demo.toml")


def fit_demo_directions(model, ddir: Path, n_fit: int = 5000, k: int = 6, dplase_steps: int = 600,
                        progress: bool = True, log: Callable[[str], None] = print) -> None:
    """Fit the demo's DirectionSets into ddir (skipping files that exist): interfacegan, dplase, ganspace, sefa, random."""
    from .directions.base import fit_once
    from .directions.dplase import DPLaSE
    from .directions.ganspace import GANSpace
    from .directions.interfacegan import fit_from_model
    from .directions.random_dirs import RandomDirections
    from .directions.sefa import SeFa

    def fit(stem, make):
        fit_once(ddir / f"{stem}.npz", make, log)

    def interfacegan():
        # age needs a wider split on this model (its scorer is weak): see docs/readme/40-directions.md
        est = fit_from_model(model, ["gender", "age", "yaw"], n=n_fit, seed=1, progress=progress,
                             ratio={"gender": 0.1, "age": 0.3, "yaw": 0.1})
        for name, acc in est.accuracy_.items():
            log(f"    boundary {name:<8} held-out accuracy {acc:.3f}")
        return est.with_conditionals([("gender", ["age"])])

    ddir.mkdir(parents=True, exist_ok=True)
    fit("interfacegan", interfacegan)
    fit("dplase", lambda: DPLaSE(k, site="b1", steps=dplase_steps, seed=0, progress=progress).fit(model).directions_)
    fit("ganspace", lambda: GANSpace(k, n_samples=n_fit, seed=0).fit(model).directions_)
    fit("sefa", lambda: SeFa(k).fit(model).directions_)
    fit("random", lambda: RandomDirections(k, seed=0).fit(model).directions_)


def run_demo(out: str | Path, spec: str | Path = DEFAULT_SPEC, n_fit: int = 5000, dplase_steps: int = 600,
             progress: bool = True, log: Callable[[str], None] = print, device: str | None = None):
    """Run the whole face demo into `out` (resumable: finished steps are kept). Returns the Study.

    device: auto | cpu | cuda | cuda:N for the fits and the study (default the spec's device, auto)."""
    from .directions.evaluate import evaluate_study
    from .embed import embed_study
    from .models import load_model
    from .stats import analyze
    from .study import load_spec, run_study, spec_model
    from reports.build import build_report

    out, spec_path = Path(out), Path(spec)
    if not spec_path.is_file():
        raise ProbeError(f"--spec {str(spec_path)!r} does not exist; run from the repository root or pass --spec")
    spec = load_spec(spec_path)
    t0 = time.perf_counter()
    log(f"[1/6] fitting direction sets on model {spec.model!r}")
    from .models.zoo import model_options
    from .devices import resolve_device
    dev = resolve_device(device or spec.device, field="--device" if device else "device")
    fit_demo_directions(load_model(spec_model(spec), **model_options(spec.dump())).to(dev), out / "directions", n_fit,
                        dplase_steps=dplase_steps, progress=progress, log=log)
    log(f"[2/6] running study {spec.name!r} -> {out}")
    study = run_study(spec, out, resume=(out / "manifest.json").is_file(), progress=progress, device=str(dev))
    log("[3/6] statistics (effects, correlations, controlling variables)")
    tables = analyze(study)
    log("[4/6] direction evaluation (specificity, density drift)")
    ev = evaluate_study(study)
    log("[5/6] UMAP embedding of samples and walks")
    embed_study(study)
    log("[6/6] report")
    report = build_report(study, out / "report.html")
    log(summary(tables, ev))
    log(f"done in {time.perf_counter() - t0:.0f} s: study {out}, report {report}")
    return study


def summary(tables: dict, ev) -> str:
    """A short text digest: controlling variables for gender and age, and the direction comparison."""
    lines = []
    ctl = tables["controlling"]
    for m in ("gender", "age"):
        top = ctl[ctl["measure"] == m].sort_values("rank").head(5)
        items = ", ".join(f"{r.target} ({r.effect:+.3f}, q={r.q:.1e})" for r in top.itertuples())
        lines.append(f"controlling variables for {m}: {items or 'none significant'}")
    best = ev[ev["is_target"]].groupby("method").agg(specificity=("specificity", "median"),
                                                      dlogp=("dlogp_abs_mean", "mean"))
    lines.append("direction methods (median specificity, mean |dlogp|):")
    lines += [f"  {m:<13} {r.specificity:6.2f}  {r.dlogp:.3g}" for m, r in best.iterrows()]
    return "\n".join(lines)
