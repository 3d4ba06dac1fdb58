"""`probe run SPEC.toml --out DIR [--resume] [--executor ray --address auto --workers N]`: run a scripted study."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app


@app.command("run")
def run_cmd(
    spec: Path = typer.Argument(..., help="study spec (TOML); see docs: Studies"),
    out: Path = typer.Option(None, "--out", "-o", help="study directory (default studies/<spec name>)"),
    resume: bool = typer.Option(False, "--resume", help="continue an interrupted study in --out"),
    yes: bool = typer.Option(False, "--yes", help="run a plan of more than 5,000,000 intervention rows"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show progress bars"),
    executor: str = typer.Option("inproc", "--executor", help="where parts are computed: inproc | ray"),
    address: str = typer.Option(None, "--address", help="Ray cluster: auto or HOST:PORT (default: local)"),
    workers: int = typer.Option(None, "--workers", help="Ray actors, one model each (default 2)"),
    device: str = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N (default: the spec's device, auto)"),
) -> None:
    """Run a study: perturb latents, render, measure, write Parquet tables."""
    from ..errors import printable
    from ..executors import make_executor
    from ..query import Query, study_alpha_summary

    ex = make_executor(executor, address, workers)
    from ..study import PLAIN_NAME, SpecError, load_spec, run_study

    s = load_spec(spec)
    if out is None:
        if not PLAIN_NAME.match(s.name) or set(s.name) == {"."}:
            raise SpecError(
                f"{s._source}: name {printable(s.name)!r} is the default --out studies/<name>, so it "
                f"must be a plain name (letters, digits, '.', '_', '-'; no '/', '..' or absolute "
                f"path); rename it or pass --out"
            )
        out = Path("studies") / s.name
    with ex:
        st = run_study(s, out, resume=resume, progress=progress, yes=yes, executor=ex, device=device)
    study_alpha_summary(st, write=True)  # the dashboard's and report's per-(target, alpha) summary
    n = Query(st).count()
    typer.echo(
        f"study {printable(st.name)!r} complete: {st.manifest['n_samples']} samples, "
        f"{len(st.target_names)} targets, {n} intervention rows -> {printable(st.path)}"
    )
