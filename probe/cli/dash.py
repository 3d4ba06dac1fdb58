"""`probe dash STUDY_DIR`: serve the Dash app for one study (binds 127.0.0.1 by default; any other address needs
the access token it prints)."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from ..errors import ProbeError, printable
from . import app
from .model_options import device_option

_HOST = re.compile(r"[A-Za-z0-9.:%\[\]-]{1,253}")
_TOKEN = re.compile(r"[A-Za-z0-9._~-]{16,256}")


@app.command("dash")
def dash_cmd(
    study_dir: Path = typer.Argument(..., help="study directory (made by probe run)"),
    port: int = typer.Option(8050, "--port", help="TCP port"),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="interface to bind; any non-loopback address (e.g. 0.0.0.0) needs the access token printed at start",
    ),
    token: str = typer.Option(
        None, "--token", help="access token to require (default: generated when --host is not loopback)"
    ),
    model: str = typer.Option(
        None,
        "--model",
        help="the study's model when it is user code "
        "(file.py:factory or a TorchScript file): name it to allow re-rendering",
    ),
    trust_model: bool = typer.Option(
        False, "--trust-model", help="re-render with the model the study names even when it is user code"
    ),
    debug: bool = typer.Option(False, "--debug", help="Dash dev tools and reloader (loopback only)"),
    device: str = device_option(),
) -> None:
    """Open the dashboard: overview, correlations, embedding, walks, edits, drag."""
    from dashboards.security import is_loopback, new_token

    if not 1 <= port <= 65535:
        raise ProbeError(f"--port must be in 1..65535; got {port}")
    if not _HOST.fullmatch(host):
        raise ProbeError(f"--host must be an IP address or a host name (e.g. 127.0.0.1); got '{printable(host)}'")
    loopback = is_loopback(host)
    if debug and not loopback:
        raise ProbeError(
            f"--debug serves the Werkzeug debugger, which runs code; use it on 127.0.0.1 only, not --host {host}"
        )
    if token is not None and not _TOKEN.fullmatch(token):
        raise ProbeError(
            "--token must be 16..256 URL-safe characters (letters, digits, - _ . ~); or leave it out "
            "to get a generated one"
        )
    if token is None and not loopback:
        token = new_token()
    from ..devices import resolve_device

    resolve_device(device)
    from dashboards.app import create_app

    dash_app = create_app(study_dir, token=token, model=model, trust_model=trust_model)
    dash_app.probe_ctx.study.device = device
    url = f"http://{f'[{host}]' if ':' in host and not host.startswith('[') else host}:{port}/"
    typer.echo(f"latent-probe dashboard for '{printable(dash_app.probe_ctx.study.name)}': {url}")
    if token is not None:
        why = (
            ""
            if loopback
            else (
                f"access token required on {host} (the dashboard serves a model, uploads and "
                "compute without other authentication): "
            )
        )
        typer.echo(f"{why}open {url}?token={token}")
    dash_app.run(host=host, port=port, debug=debug)
