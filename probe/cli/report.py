"""`probe report STUDY -o report.html [--cdn]`: one self-contained HTML file of a study."""
from __future__ import annotations

from pathlib import Path

import typer

from . import app


@app.command("report")
def report_cmd(study: Path = typer.Argument(..., help="study directory (made by probe run)"),
               out: Path = typer.Option(None, "-o", "--out", help="report file (default STUDY/report.html)"),
               cdn: bool = typer.Option(False, "--cdn", help="load plotly.js from the CDN: a small file that "
                                        "needs a network (default: plotly.js inlined, opens offline)")) -> None:
    """Write a self-contained HTML report of a study (figures, tables, walk strips, provenance)."""
    from reports.build import timed_build
    r = timed_build(study, out or Path(study) / "report.html", cdn=cdn)
    typer.echo(f"wrote {r['path']} ({r['bytes'] / 1e6:.2f} MB, {r['seconds']:.1f} s)")
