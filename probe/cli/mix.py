"""`probe mix`: the style-mixing grid (rows = A seeds, columns = B seeds, ws layers START-END from B)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import ProbeError
from . import app
from .model_options import class_option, device_option, noise_option, on_device, options, psi_option


def _seeds(text: str, flag: str) -> list[int]:
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ProbeError(f"{flag}: write comma-separated integer seeds, e.g. 1,2,3; got {text!r}") from None
    if not out:
        raise ProbeError(f"{flag}: name at least one seed, e.g. 1,2,3")
    return out


@app.command("mix")
def mix_cmd(
    model: str = typer.Option("sprites", "--model", help="a style-based model (zoo name, file.py:factory)"),
    a: str = typer.Option("1,2,3", "--a", help="seeds of the A samples (rows), comma-separated"),
    b: str = typer.Option("4,5", "--b", help="seeds of the B samples (columns), comma-separated"),
    layers: str = typer.Option("0-6", "--layers", help="ws layers taken from B: START-END, end exclusive"),
    cell: int = typer.Option(96, "--cell", help="pixels per grid cell in the PNG"),
    out: Path = typer.Option(Path("mix.png"), "--out", help="PNG of the mixing grid"),
    transfer: bool = typer.Option(
        False,
        "--transfer",
        help="also measure which factors the ws layers of each "
        "synthesis block carry from B (table printed, and written next to --out)",
    ),
    measures: str = typer.Option(
        None,
        "--measures",
        help="--transfer: measures (comma list; default the model's own, from its zoo entry; image for other models)",
    ),
    n: int = typer.Option(64, "--n", help="--transfer: sample pairs"),
    truncation_psi: float = psi_option(),
    noise_mode: str = noise_option(),
    class_idx: int = class_option(),
    device: str = device_option(),
) -> None:
    """Style mixing: each cell takes ws layers START-END from its column's sample, the rest from its row's."""
    from ..edit.mix import check_style_model, grid_png, mix_transfer, mixing_grid, parse_layers, transfer_markdown
    from ..models import load_model

    sa, sb = _seeds(a, "--a"), _seeds(b, "--b")
    lay = parse_layers(layers)
    g = on_device(load_model(model, **options(truncation_psi, noise_mode, class_idx)), device)
    check_style_model(g)
    grid = mixing_grid(g, sa, sb, lay)
    grid_png(grid, out, cell=cell)
    typer.echo(
        f"mixed ws layers {lay[0]}..{lay[1] - 1} of {g.num_ws} from B {sb} into A {sa}; wrote {out} "
        f"({len(sa) + 1} x {len(sb) + 1} cells)"
    )
    if transfer:
        ms = [m.strip() for m in measures.split(",") if m.strip()] if measures else None
        table = transfer_markdown(mix_transfer(g, ms, n=n))
        md = out.with_name(out.stem + "_transfer.md")
        md.write_text(table + "\n")
        typer.echo(table)
        typer.echo(f"wrote {md} (transfer: 0 = the factor stays A's, 1 = it becomes B's; median over {n} pairs)")
