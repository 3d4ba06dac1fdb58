"""`probe gt-score`: fit every registered direction method (InterFaceGAN, DP-LaSE, GANSpace, SeFa, random), walk
them all in one study, and score which ground-truth factor each direction controls and how purely
(groundtruth.parquet + .md)."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app


@app.command("gt-score")
def gt_score_cmd(
    model: str = typer.Option("sprites", "--model", help="a style-based model (w space)"),
    out: Path = typer.Option(Path("studies/sprites-gt"), "--out", help="study directory (resumable)"),
    spec: Path | None = typer.Option(
        None, "--spec", help="study spec (default: examples/sprites_gt.toml of the repository)"
    ),
    measures: str | None = typer.Option(
        None, "--measures", help="comma list of factor measures (default: the spec's, ['sprites'])"
    ),
    k: int = typer.Option(6, "--k", help="directions per unsupervised method"),
    n_fit: int = typer.Option(2000, "--n-fit", help="samples for InterFaceGAN labels and GANSpace PCA"),
    dplase_steps: int = typer.Option(200, "--dplase-steps", help="DP-LaSE training iterations"),
    n_samples: int | None = typer.Option(None, "--n-samples", help="study samples (default: spec)"),
    seed: int | None = typer.Option(
        None, "--seed", help="seed of the samples and fits (default: the spec's samples, 0 for the fits)"
    ),
    seeds: str | None = typer.Option(
        None,
        "--seeds",
        help="comma list, e.g. 0,1,2: one run per seed in OUT/seed-<s>/ and mean ± std in OUT/groundtruth_seeds.md",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    device: str = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N (default: the spec's device, auto)"),
) -> None:
    """Ground-truth scores of discovered directions (DCI disentanglement/completeness, MIG gap, purity)."""
    from ..devices import resolve_device
    from ..directions import DirectionError
    from ..directions.groundtruth import DEFAULT_SPEC, run_groundtruth, run_groundtruth_seeds
    from ..io import study_lock

    if device is not None:
        resolve_device(device)  # before the study directory is created
    ms = [m.strip() for m in measures.split(",") if m.strip()] if measures else None
    from reports.groundtruth_md import seed_markdown, to_markdown

    kw = dict(
        model=model,
        spec=spec or DEFAULT_SPEC,
        measures=ms,
        k=k,
        n_fit=n_fit,
        dplase_steps=dplase_steps,
        n_samples=n_samples,
        progress=progress,
        log=typer.echo,
        device=device,
        markdown=to_markdown,
    )
    if seeds is None:
        with study_lock(out):
            run_groundtruth(out, seed=seed, **kw)
        return
    if seed is not None:
        raise DirectionError("--seed and --seeds: give one of them (--seeds runs one study per seed)")
    try:
        parsed = [int(x) for x in seeds.split(",") if x.strip()]
    except ValueError:
        raise DirectionError(f"--seeds: expected a comma list of integers such as 0,1,2; got {seeds!r}") from None
    with study_lock(out):
        run_groundtruth_seeds(out, parsed, seeds_markdown=seed_markdown, **kw)
