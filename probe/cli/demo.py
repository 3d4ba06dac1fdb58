"""`probe demo`: the main job on the embedded face model, then the dashboard."""
from __future__ import annotations

from pathlib import Path

import typer

from . import app


@app.command("demo")
def demo_cmd(out: Path = typer.Option(Path("studies/faces-demo"), "--out", help="study directory (resumable)"),
             spec: Path = typer.Option(Path("examples/faces_demo.toml"), "--spec", help="demo study spec"),
             n_fit: int = typer.Option(5000, "--n-fit", help="faces sampled to fit InterFaceGAN and GANSpace"),
             dplase_steps: int = typer.Option(600, "--dplase-steps", help="DP-LaSE training iterations"),
             dash: bool = typer.Option(True, "--dash/--no-dash", help="open the dashboard on the study at the end"),
             port: int = typer.Option(8050, "--port"),
             device: str = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N (default: the spec's "
                                        "device, auto)")) -> None:
    """Fit directions, run the face study, statistics, evaluation, UMAP and the report; then open the dashboard."""
    from ..demo import run_demo
    from ..devices import resolve_device
    from ..io import study_lock
    if device is not None:
        resolve_device(device)  # before the study directory is created
    with study_lock(out):
        run_demo(out, spec, n_fit=n_fit, dplase_steps=dplase_steps, log=typer.echo, device=device)
    if dash:
        from dashboards.app import create_app
        typer.echo(f"dashboard on http://127.0.0.1:{port}/ (Ctrl-C to stop)")
        dash_app = create_app(out)
        dash_app.probe_ctx.study.device = device or "auto"
        dash_app.run(host="127.0.0.1", port=port, debug=False)
