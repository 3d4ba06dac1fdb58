"""`probe dash STUDY_DIR`: serve the Dash app for one study (binds 127.0.0.1 by default)."""
from __future__ import annotations

from pathlib import Path

import typer

from . import app
from ..errors import ProbeError


@app.command("dash")
def dash_cmd(study_dir: Path = typer.Argument(..., help="study directory (made by probe run)"),
             port: int = typer.Option(8050, "--port", help="TCP port"),
             host: str = typer.Option("127.0.0.1", "--host", help="interface to bind; 0.0.0.0 exposes the study "
                                      "to the network"),
             debug: bool = typer.Option(False, "--debug", help="Dash dev tools and reloader (never on a shared host)")
             ) -> None:
    """Open the dashboard: overview, correlations, embedding, walks, edits, drag."""
    if not 1 <= port <= 65535:
        raise ProbeError(f"--port must be in 1..65535; got {port}")
    from dashboards.app import create_app
    dash_app = create_app(study_dir)
    typer.echo(f"latent-probe dashboard for {dash_app.probe_ctx.study.name!r}: http://{host}:{port}/")
    dash_app.run(host=host, port=port, debug=debug)
