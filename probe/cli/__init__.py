"""`probe` command line. Each area registers its commands in its own module of this package."""

from __future__ import annotations

import sys

import typer

from ..errors import ProbeError, printable

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="latent-probe: interpret and edit the latent spaces of GAN image generators.",
)


def echo(line: str) -> None:
    """Print one output line, terminal-safe (names from study files may hold control or bidi characters)."""
    typer.echo(printable(line))


def main() -> None:
    """Entry point: ProbeErrors print as one line `error: ...` and exit with status 2."""
    try:
        app()
    except ProbeError as e:
        print(f"error: {printable(e)}", file=sys.stderr)
        sys.exit(2)


from . import analyze as _analyze  # noqa: E402,F401  (probe stats, probe embed)
from . import dash as _dash  # noqa: E402,F401  (probe dash)
from . import demo as _demo  # noqa: E402,F401
from . import discover as _discover  # noqa: E402,F401  (probe discover, probe evaluate)
from . import edit as _edit  # noqa: E402,F401  (probe drag, probe invert, probe drag-eval)
from . import groundtruth as _groundtruth  # noqa: E402,F401  (probe gt-score)
from . import mix as _mix  # noqa: E402,F401  (probe mix)
from . import models as _models  # noqa: E402,F401  (registers commands)
from . import report as _report  # noqa: E402,F401  (probe report)
from . import run as _run  # noqa: E402,F401  (probe run)
from . import train as _train  # noqa: E402,F401  (probe train gan|factors|quality)
