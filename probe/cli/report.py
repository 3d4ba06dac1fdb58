"""`probe report STUDY -o report.html [--cdn]`: one self-contained HTML file of a study."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app, echo
from .model_options import device_option


@app.command("report")
def report_cmd(
    study: Path = typer.Argument(..., help="study directory (made by probe run)"),
    out: Path = typer.Option(None, "-o", "--out", help="report file (default STUDY/report.html)"),
    cdn: bool = typer.Option(
        False,
        "--cdn",
        help="load plotly.js from the CDN: a small file that "
        "needs a network (default: plotly.js inlined, opens offline)",
    ),
    model: str = typer.Option(
        None,
        "--model",
        help="the study's model, when it is a file.py:factory or "
        "TorchScript file: naming it allows its code to run to render images",
    ),
    trust_model: bool = typer.Option(
        False, "--trust-model", help="run the study's file.py:factory or TorchScript model without naming it"
    ),
    device: str = device_option(),
) -> None:
    """Write a self-contained HTML report of a study (figures, tables, walk strips, provenance)."""
    from contextlib import nullcontext

    from reports.build import timed_build

    from ..devices import resolve_device
    from ..restudy import ModelTrustError, check_model
    from ..store import StoreError, Study

    resolve_device(device)
    st = Study(study, model=model, trust_model=trust_model)
    st.device = device
    try:
        check_model(st)  # refuses code the user did not name and changed model files, before anything runs
    except ModelTrustError:
        raise
    except StoreError:
        pass  # a missing model file: the report is written without images, saying why
    path = out or Path(study) / "report.html"
    inside = Path(path).absolute().resolve().is_relative_to(st.path.absolute().resolve())
    with st.lock() if inside else nullcontext():
        r = timed_build(st, path, cdn=cdn)
    echo(f"wrote {r['path']} ({r['bytes'] / 1e6:.2f} MB, {r['seconds']:.1f} s)")
