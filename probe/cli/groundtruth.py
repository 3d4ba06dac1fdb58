"""`probe gt-score`: fit InterFaceGAN, DP-LaSE, GANSpace, SeFa and random directions, walk them all in one study,
and score which ground-truth factor each direction controls and how purely (groundtruth.parquet + .md)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import app


@app.command("gt-score")
def gt_score_cmd(model: str = typer.Option("sprites", "--model", help="a style-based model (w space)"),
                 out: Path = typer.Option(Path("studies/sprites-gt"), "--out", help="study directory (resumable)"),
                 spec: Optional[Path] = typer.Option(None, "--spec", help="study spec (default: "
                                                     "examples/sprites_gt.toml of the repository)"),
                 measures: Optional[str] = typer.Option(None, "--measures", help="comma list of factor measures "
                                                        "(default: the spec's, ['sprites'])"),
                 k: int = typer.Option(6, "--k", help="directions per unsupervised method"),
                 n_fit: int = typer.Option(2000, "--n-fit", help="samples for InterFaceGAN labels and GANSpace PCA"),
                 dplase_steps: int = typer.Option(200, "--dplase-steps", help="DP-LaSE training iterations"),
                 n_samples: Optional[int] = typer.Option(None, "--n-samples", help="study samples (default: spec)"),
                 progress: bool = typer.Option(True, "--progress/--no-progress")) -> None:
    """Ground-truth scores of discovered directions (DCI disentanglement/completeness, MIG gap, purity)."""
    from ..directions.groundtruth import DEFAULT_SPEC, run_groundtruth
    ms = [m.strip() for m in measures.split(",") if m.strip()] if measures else None
    run_groundtruth(out, model=model, spec=spec or DEFAULT_SPEC, measures=ms, k=k, n_fit=n_fit,
                    dplase_steps=dplase_steps, n_samples=n_samples, progress=progress, log=typer.echo)
