"""`probe models`, `probe measures`: what is available."""

from __future__ import annotations

import typer

from . import app
from .model_options import class_option, noise_option, options, psi_option


@app.command("models")
def models_cmd(
    describe: str = typer.Option(
        None,
        "--describe",
        help="load this model and print its spaces, dimensions and sites (zoo name, file.py:factory, .pt or .pkl)",
    ),
    truncation_psi: float = psi_option(),
    noise_mode: str = noise_option(),
    class_idx: int = class_option(),
) -> None:
    """List the model zoo, or describe one model."""
    from ..models import list_models, load_model

    if describe:
        info = load_model(describe, **options(truncation_psi, noise_mode, class_idx)).describe()
        width = max(map(len, info), default=0)
        for k, v in info.items():
            typer.echo(f"{k:>{width}}: {v}")
        return
    for m in list_models():
        typer.echo(f"{m['name']:<14} {m['description']}")


@app.command("measures")
def measures_cmd() -> None:
    """List the built-in measures with unit and range."""
    from ..measures import catalog

    rows = [(i.name, f"[{i.lo:g}, {i.hi:g}]", i.unit, i.description) for i in catalog()]
    widths = [max(len(r[k]) for r in [("measure", "range", "unit", "")] + rows) for k in range(3)]
    for r in [("measure", "range", "unit", "description")] + rows:
        typer.echo(" ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + " " + r[3])
