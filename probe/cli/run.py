"""`probe run SPEC.toml --out DIR [--resume]`: run a scripted study."""
from __future__ import annotations

from pathlib import Path

import typer

from . import app


@app.command("run")
def run_cmd(spec: Path = typer.Argument(..., help="study spec (TOML); see docs: Studies"),
            out: Path = typer.Option(None, "--out", "-o", help="study directory (default studies/<spec name>)"),
            resume: bool = typer.Option(False, "--resume", help="continue an interrupted study in --out"),
            progress: bool = typer.Option(True, "--progress/--no-progress", help="show progress bars")) -> None:
    """Run a study: perturb latents, render, measure, write Parquet tables."""
    from ..study import load_spec, run_study
    s = load_spec(spec)
    out = out or Path("studies") / s.name
    st = run_study(s, out, resume=resume, progress=progress)
    n = len(st.table("interventions"))
    typer.echo(f"study {st.name!r} complete: {st.manifest['n_samples']} samples, {len(st.target_names)} targets, "
               f"{n} intervention rows -> {st.path}")
