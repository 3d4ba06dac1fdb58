"""`probe demo`: the main job on the embedded face model, with the dashboard open as soon as the base samples are
scored (before the direction fits)."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("studies/faces-demo"), "--out", help="study directory (resumable)"),
    spec: Path = typer.Option(Path("examples/faces_demo.toml"), "--spec", help="demo study spec"),
    n_fit: int = typer.Option(5000, "--n-fit", help="faces sampled to fit InterFaceGAN and GANSpace"),
    dplase_steps: int = typer.Option(600, "--dplase-steps", help="DP-LaSE training iterations"),
    dash: bool = typer.Option(
        True,
        "--dash/--no-dash",
        help="serve the dashboard on the study as soon as "
        "its samples are scored (before the direction fits), while the demo goes on",
    ),
    port: int = typer.Option(8050, "--port"),
    device: str = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N (default: the spec's device, auto)"),
) -> None:
    """Score the base samples, fit directions, run the study's interventions, statistics, evaluation, UMAP and the
    report; the dashboard opens on the study once its samples are scored and fills in as the rest is made (progress
    on the Overview page)."""
    from ..demo import DemoRunner, run_demo
    from ..devices import resolve_device
    from ..io import study_lock

    if device is not None:
        resolve_device(device)  # before the study directory is created
    if not spec.is_file():
        from ..demo import DemoError

        raise DemoError(f"--spec {str(spec)!r} does not exist; run from the repository root or pass --spec")
    kw = dict(spec=spec, n_fit=n_fit, dplase_steps=dplase_steps, log=typer.echo, device=device)
    if not dash:
        with study_lock(out):
            run_demo(out, **kw)
        return
    # the dashboard's imports (dash, plotly -> narwhals) before the worker's (sklearn -> narwhals): two threads
    # importing the same package at once can raise a module-lock deadlock
    from dashboards.app import create_app

    runner = DemoRunner(out, **kw).start()
    runner.wait_first_table()
    dash_app = create_app(out)
    dash_app.probe_ctx.study.device = device or "auto"
    typer.echo(
        f"dashboard on http://127.0.0.1:{port}/ (Ctrl-C to stop); the demo goes on, progress on the Overview page"
    )
    try:
        dash_app.run(host="127.0.0.1", port=port, debug=False)
    finally:
        if not runner.finished:
            typer.echo("stopped before the demo finished; run probe demo again to resume it (finished steps are kept)")
