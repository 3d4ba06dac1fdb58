"""`probe discover STUDY --method M`: fit a DirectionSet into STUDY/directions/; `probe evaluate STUDY`."""

from __future__ import annotations

from pathlib import Path

import typer

from ..directions.registry import ORDER
from ..errors import ProbeError
from . import app, echo
from .model_options import device_option, on_device


def _csv(s: str | None) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()] if s else []


def _conditions(spec: list[str]) -> list[tuple[str, list[str]]]:
    out = []
    for c in spec:
        primal, sep, rest = c.partition(":")
        conds = [x for x in rest.split("+") if x]
        if not sep or not primal or not conds:
            raise ProbeError(f"--condition {c!r}: write PRIMAL:COND[+COND...], e.g. gender:age or gender:age+yaw")
        out.append((primal, conds))
    return out


def _ratio(s: str):
    try:
        if "=" not in s:
            return float(s)
        return {k.strip(): float(v) for k, v in (p.split("=", 1) for p in _csv(s))}
    except ValueError:
        raise ProbeError(f"--ratio {s!r}: give a number (0.02) or measure=value pairs (gender=0.1,age=0.3)") from None


@app.command("discover")
def discover_cmd(
    study: Path = typer.Argument(..., help="study directory (made by probe run)"),
    method: str = typer.Option(..., "--method", "-m", help=f"one of {', '.join(ORDER)}"),
    measures: str = typer.Option(None, "--measures", help="interfacegan: comma list (default: the study's)"),
    condition: list[str] = typer.Option(
        [],
        "--condition",
        help="interfacegan: PRIMAL:COND[+COND], e.g. gender:age; adds the conditional direction 'gender|age'",
    ),
    n: int = typer.Option(5000, "--n", help="interfacegan: latents to sample and score; ganspace: PCA samples"),
    ratio: str = typer.Option(
        "0.02",
        "--ratio",
        help="interfacegan: fraction (or count) per side, one value or per measure: gender=0.1,age=0.3",
    ),
    from_study: bool = typer.Option(
        False,
        "--from-study",
        help="interfacegan: fit on the study's own samples and latents instead of sampling --n new ones",
    ),
    k: int = typer.Option(None, "--k", help="number of directions (dplase 8, ganspace/sefa 20, random 8)"),
    site: str = typer.Option(None, "--site", help="dplase / ganspace(z): feature site (default first site)"),
    steps: int = typer.Option(None, "--steps", help="dplase: Adam iterations (default 600)"),
    no_density: bool = typer.Option(False, "--no-density", help="dplase: train with linear walks"),
    layers: str = typer.Option(None, "--layers", help="sefa: ws layer range START-END (end exclusive)"),
    affines: str = typer.Option(
        None,
        "--affines",
        help="sefa: official (default; conv affines + the last "
        "ToRGB, as official SeFa) or all-affines (every ToRGB too)",
    ),
    space: str = typer.Option(
        None, "--space", help="latent space (default: the study's; ws -> w where the method works in w)"
    ),
    seed: int = typer.Option(0, "--seed"),
    stem: str = typer.Option(None, "--name", help="file stem in STUDY/directions/ (default the method)"),
    model_arg: str = typer.Option(
        None,
        "--model",
        help="the study's model, when it is a file.py:factory or TorchScript file: naming it allows its code to run",
    ),
    trust_model: bool = typer.Option(
        False, "--trust-model", help="run the study's file.py:factory or TorchScript model without naming it"
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    device: str = device_option(),
) -> None:
    """Fit directions with one method and save them into the study (then walk them with a spec)."""
    from ..store import Study

    if method not in ORDER:
        raise ProbeError(f"--method {method!r} unknown; use one of {list(ORDER)}")
    for flag, v, lo, hi in (("--n", n, 2, 10_000_000), ("--k", k, 1, 10_000), ("--steps", steps, 1, 1_000_000)):
        if v is not None and not lo <= v <= hi:
            raise ProbeError(f"{flag} must be in {lo}..{hi:,}; got {v}")
    st = Study(study, model=model_arg, trust_model=trust_model)
    with st.lock():
        _discover(
            st,
            method,
            measures,
            condition,
            n,
            ratio,
            from_study,
            k,
            site,
            steps,
            no_density,
            layers,
            space,
            seed,
            stem,
            progress,
            affines,
            device,
        )


def _layers(layers: str | None):
    if not layers:
        return None
    try:
        a, b = (int(x) for x in layers.split("-"))
    except ValueError:
        raise ProbeError(f"--layers {layers!r}: write START-END, e.g. 0-4") from None
    return (a, b)


def _discover(
    st,
    method,
    measures,
    condition,
    n,
    ratio,
    from_study,
    k,
    site,
    steps,
    no_density,
    layers,
    space,
    seed,
    stem,
    progress,
    affines=None,
    device="auto",
) -> None:
    from ..directions.registry import FitContext, get

    m = get(method)
    from ..restudy import study_model

    model = on_device(study_model(st), device)
    sp = space or st.space
    ms = []
    if m.supervised:
        ms = _csv(measures) or st.measures
        files = [x for x in ms if ".py:" in x and not measures]
        if files:
            raise ProbeError(
                f"the study names measure {files[0]!r}, a Python file; it is not run when a study is "
                f"opened: pass --measures with the measures to fit"
            )
    # command-line flags -> estimator parameters; a flag given for a method that has no such parameter is refused
    flags = {
        "--ratio": ("ratio", _ratio(ratio) if m.supervised else ratio),
        "--condition": ("conditions", _conditions(condition) if condition else None),
        "--site": ("site", site),
        "--steps": ("steps", steps),
        "--no-density": ("density", False if no_density else None),
        "--layers": ("layers", _layers(layers)),
        "--affines": ("affines", affines),
    }
    valid = m.cls._get_param_names()
    options = {}
    for flag, (param, value) in flags.items():
        if value is None or (flag == "--ratio" and not m.supervised and value == "0.02"):
            continue
        if param not in valid:
            raise ProbeError(f"{flag} does not apply to --method {method}; drop it")
        options[param] = value
    pairs = options.get("conditions") or []
    missing = sorted({x for p, c in pairs for x in [p, *c]} - set(ms))
    if missing:
        raise ProbeError(f"--condition names {missing}, which are not in --measures {ms}; add them")
    est = m.make(FitContext(model, k, n, seed, sp, ms, progress), options)
    if from_study:
        if not m.supervised:
            raise ProbeError(f"--from-study applies to supervised methods; drop it for --method {method}")
        samples = st.table("samples")
        bad = [x for x in ms if x not in samples]
        if bad:
            raise ProbeError(f"--from-study: the study's samples lack measures {bad}; drop --from-study")
        if sp != st.space:
            raise ProbeError(f"--from-study fits in the study's space {st.space!r}; drop --space")
        est.fit(st.latents(), {x: samples.sort_values("sample_id")[x].to_numpy() for x in ms}, model=model)
    elif m.takes_density and getattr(est, "space", None) == "w":
        est.fit(model, density=st.density())
    else:
        est.fit(model)
    ds = est.directions_
    if m.supervised:
        for name, info in zip(ds.names, ds.info):
            echo(f"  {name:<16} held-out accuracy {info['acc_val']:.3f} (n_val {info['n_val']})")
    if "seconds" in ds.provenance and ds.site:
        echo(f"  trained {ds.provenance['steps']} steps in {ds.provenance['seconds']:.1f} s at site {ds.site!r}")
    p = st.save_directions(ds, stem)
    echo(f"{len(ds)} {ds.method} directions in space {ds.space!r} -> {p}")


@app.command("evaluate")
def evaluate_cmd(study: Path = typer.Argument(..., help="study directory whose spec walked direction targets")) -> None:
    """Per direction: slopes of every measure, specificity, density drift -> STUDY/evaluation.parquet."""
    from ..directions.evaluate import evaluate_study
    from ..store import Study

    st = Study(study)
    with st.lock():
        df = evaluate_study(st)
    top = df[df["is_target"]].sort_values(["method", "target"])
    for r in top.itertuples():
        echo(
            f"  {r.target:<28} {r.measure:<10} slope {r.slope:+.4f}  specificity {r.specificity:.2f}  "
            f"|dlogp| mean {r.dlogp_abs_mean:.3g} max {r.dlogp_abs_max:.3g}"
        )
    echo(f"{len(top)} directions evaluated -> {Path(study) / 'evaluation.parquet'}")
