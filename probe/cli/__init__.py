"""`probe` command line. Each area registers its commands in its own module of this package."""
from __future__ import annotations

import sys

import typer

from ..errors import ProbeError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="latent-probe: interpret and edit the latent spaces of GAN image generators.")


def main() -> None:
    """Entry point: ProbeErrors print as one line `error: ...` and exit with status 2."""
    try:
        app()
    except ProbeError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


from . import models as _models  # noqa: E402,F401  (registers commands)
