"""`probe drag`, `probe invert`, `probe drag-eval`: point-drag editing and GAN inversion."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import typer

from ..errors import ProbeError
from . import app
from .model_options import class_option, device_option, noise_option, on_device, options, psi_option

_EDITS_STUDY = typer.Option(  # drag and invert
    None,
    "--study",
    help="also record the run in this study's edits table (edits.parquet + edits/<run_id>_before|after.png)",
)


_POINT = re.compile(
    r"^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*->\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$"
)


def parse_point(text: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """'x,y->x,y' -> ((hx, hy), (tx, ty)) in pixel coordinates."""
    m = _POINT.match(text or "")
    if not m:
        hint = (
            "; quote it, the shell reads > as a redirect: --point '20,30->26,30'" if (text or "").endswith("-") else ""
        )
        raise ProbeError(f"--point: expected x,y->x,y (handle -> target pixels, e.g. 20,30->26,30), got {text!r}{hint}")
    hx, hy, tx, ty = map(float, m.groups())
    return (hx, hy), (tx, ty)


def _load_latent(path: Path, space: str | None) -> tuple[np.ndarray, str]:
    if not path.is_file():
        raise ProbeError(f"--latent: file {str(path)!r} does not exist (probe invert writes DIR/latent.npy)")
    try:
        lat = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001
        raise ProbeError(f"--latent: {path.name} is not a readable .npy array ({type(e).__name__})") from None
    meta = path.with_name("inversion.json")
    if space is None and meta.is_file():
        space = json.loads(meta.read_text()).get("space")
    if space is None:
        raise ProbeError(f"--space: say which space {path.name} is in (z, w or ws)")
    return lat, space


def _load_offsets(path: Path | None) -> dict:
    """offsets.npz (from probe invert --offset-site) -> {site: array [1, C, h, w]}."""
    if path is None:
        return {}
    if not path.is_file():
        raise ProbeError(
            f"--offsets: file {str(path)!r} does not exist (probe invert --offset-site writes DIR/offsets.npz)"
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001
        raise ProbeError(f"--offsets: {path.name} is not a readable .npz of arrays ({type(e).__name__})") from None


def _open_study(path: Path | None):
    """The --study to record a run in, opened before the run so that a wrong path fails at once (None: none)."""
    if path is None:
        return None
    from ..store import Study

    return Study(path)


def _record_edit(st, row: dict, before, after) -> str:
    """Add one edits row with its before / after images [3, H, W] in [-1, 1] -> run_id."""
    from ..figures import img_to_png_bytes

    return st.add_edit(row, img_to_png_bytes(before), img_to_png_bytes(after))


@app.command("drag")
def drag_cmd(
    model: str = typer.Option("faces", "--model", help="zoo name, file.py:factory or .pt"),
    point: list[str] = typer.Option(..., "--point", help="handle -> target as x,y->x,y (repeatable)"),
    seed: int = typer.Option(0, "--seed", help="seed of the sample to edit (ignored with --latent)"),
    latent: Path | None = typer.Option(None, "--latent", help=".npy latent to edit (e.g. from probe invert)"),
    space: str | None = typer.Option(None, "--space", help="space of --latent (z, w, ws)"),
    offsets: Path | None = typer.Option(
        None,
        "--offsets",
        help="offsets.npz of an extended inversion (probe invert --offset-site), rendered with --latent",
    ),
    method: str = typer.Option("draggan", "--method", help="draggan | freedrag"),
    site: str | None = typer.Option(None, "--site", help="feature site (default: per model)"),
    steps: int = typer.Option(200, "--steps", help="max optimisation steps"),
    lr: float | None = typer.Option(None, "--lr", help="Adam learning rate (default: the method's)"),
    out: Path = typer.Option(Path("drag.png"), "--out", help="PNG: before | after; latent saved as .npy"),
    study: Path | None = _EDITS_STUDY,
    truncation_psi: float | None = psi_option(),
    noise_mode: str | None = noise_option(),
    class_idx: int | None = class_option(),
    device: str = device_option(),
) -> None:
    """Drag handle points to targets (DragGAN or FreeDrag) and save before | after."""
    from ..edit import comparison_png, make_drag
    from ..models import load_model

    pairs = [parse_point(p) for p in point]
    st = _open_study(study)
    g = on_device(load_model(model, **options(truncation_psi, noise_mode, class_idx)), device)
    if latent is not None:
        lat, space = _load_latent(latent, space)
    else:
        lat, space = g.sample(1, seed), "z"
    kw = {"max_steps": steps, "site": site} | ({"lr": lr} if lr is not None else {})
    d = make_drag(method, **kw)
    offs = g.check_offsets(_load_offsets(offsets))
    from ..edit.quality import QualityGuard, edit_record

    res = d.run(g, lat, space, [h for h, _ in pairs], [t for _, t in pairs], offsets=offs, guard=QualityGuard())
    with g.offsets(offs):
        before = g.synthesize(g.check_latent(lat, space), space)[0]
    comparison_png([before, res.img], out)
    np.save(out.with_suffix(".npy"), res.latent.cpu().numpy())
    typer.echo(
        f"{method}: {res.status} ({res.reason}), {res.steps} steps in {res.seconds:.2f} s, "
        f"points {res.points.round(1).tolist()} (targets {res.targets.round(1).tolist()})"
    )
    q = res.quality
    typer.echo(
        f"quality: handle {q.handle_px:.1f} px from target, change outside {q.outside_change:.1f}/255, "
        f"largest measure drift {q.max_drift:.2f} of its range"
    )
    typer.echo(f"wrote {out} and {out.with_suffix('.npy')} (space {res.space})")
    if st is not None:
        from ..edit.drag import default_site

        points = {"handles": res.handles.tolist(), "targets": res.targets.tolist(), "final": res.points.tolist()}
        row = {
            "kind": "drag",
            "method": method,
            "model": model,
            "site": site or default_site(g, method),
            "space": res.space,
            "steps": res.steps,
            "seed": seed if latent is None else None,
            "points": points,
            "handle_dist_px": float(res.distances.mean()) if len(res.distances) else None,
            "params": {
                "max_steps": steps,
                "lr": lr,
                "latent": str(latent) if latent else None,
                "offsets": str(offsets) if offsets else None,
            },
            "status": res.status,
            "seconds": res.seconds,
        }
        rec = edit_record(res)
        row.update(outside_change=rec["outside_change"], quality=rec["quality"])
        typer.echo(f"recorded {_record_edit(st, row, before, res.img)} in {st.path}/edits.parquet")


@app.command("invert")
def invert_cmd(
    image: Path = typer.Argument(..., help="image file (PNG/JPEG)"),
    model: str = typer.Option("faces", "--model"),
    out: Path = typer.Option(Path("inversion"), "--out", help="output folder"),
    space: str | None = typer.Option(None, "--space", help="z, w or ws (default: w if any, else z)"),
    steps: int = typer.Option(400, "--steps"),
    align: bool | None = typer.Option(
        None, "--align/--no-align", help="align faces to the model framing (default: face models)"
    ),
    seed: int = typer.Option(0, "--seed"),
    offset_site: str | None = typer.Option(
        None, "--offset-site", help="extended inversion: also fit a feature offset at this site (e.g. b2 on faces)"
    ),
    offset_steps: int = typer.Option(200, "--offset-steps"),
    study: Path | None = _EDITS_STUDY,
    truncation_psi: float | None = psi_option(),
    noise_mode: str | None = noise_option(),
    class_idx: int | None = class_option(),
    device: str = device_option(),
) -> None:
    """Invert an image into the model's latent: writes latent.npy, inversion.json, comparison.png (+ offsets.npz)."""
    from ..edit import comparison_png, invert
    from ..models import load_model

    st = _open_study(study)
    g = on_device(load_model(model, **options(truncation_psi, noise_mode, class_idx)), device)
    res = invert(
        g, image, space=space, steps=steps, align=align, seed=seed, offset_site=offset_site, offset_steps=offset_steps
    )
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "latent.npy", res.latent.cpu().numpy())
    wrote = ["latent.npy", "inversion.json", "comparison.png"]
    if res.offsets:
        np.savez(out / "offsets.npz", **{k: v.cpu().numpy() for k, v in res.offsets.items()})
        wrote.append("offsets.npz")
    (out / "inversion.json").write_text(
        json.dumps(
            {
                "model": model,
                "model_options": g.options(),
                "space": res.space,
                "psnr": res.psnr,
                "psnr_init": res.psnr_init,
                "psnr_latent": res.psnr_latent,
                "offset_sites": list(res.offsets),
                "steps": steps,
                "offset_steps": offset_steps if res.offsets else 0,
                "aligned": res.aligned,
                "seconds": res.seconds,
                "image": str(image),
            },
            indent=2,
        )
    )
    comparison_png([res.target, res.img], out / "comparison.png")
    extra = f", latent alone {res.psnr_latent:.2f}" if res.offsets else ""
    typer.echo(
        f"PSNR {res.psnr:.2f} dB (start {res.psnr_init:.2f}{extra}) in {res.seconds:.1f} s, space {res.space}; "
        f"wrote {', '.join(f'{out}/{w}' for w in wrote)}"
    )
    if st is not None:
        row = {
            "kind": "invert",
            "method": "invert",
            "model": model,
            "site": offset_site,
            "space": res.space,
            "steps": steps + (offset_steps if res.offsets else 0),
            "psnr": res.psnr,
            "quality": {"psnr_init": res.psnr_init, "psnr_latent": res.psnr_latent},
            "params": {
                "steps": steps,
                "offset_steps": offset_steps if res.offsets else 0,
                "seed": seed,
                "aligned": res.aligned,
                "image": str(image),
                "out": str(out),
            },
            "status": "ok",
            "seconds": res.seconds,
        }
        typer.echo(f"recorded {_record_edit(st, row, res.target, res.img)} in {st.path}/edits.parquet")


@app.command("drag-eval")
def drag_eval_cmd(
    model: str = typer.Option("faces", "--model"),
    pairs: int = typer.Option(20, "--pairs", help="number of face pairs"),
    seed: int = typer.Option(0, "--seed"),
    points: list[int] = typer.Option([1, 5], "--points", help="landmark settings: 1 and/or 5"),
    steps: int = typer.Option(200, "--steps", help="max optimisation steps per edit"),
    oracles: bool = typer.Option(
        True, "--oracles/--no-oracles", help="also score ideal drags done as warps (metric calibration)"
    ),
    out: Path | None = typer.Option(None, "--out", help="folder for drag_eval.csv and drag_eval.md"),
    protocol: str | None = typer.Option(
        None, "--protocol", help="landmarks (DragGAN face landmarks) | centres (object centres); default: the model's"
    ),
    summarize_csv: Path | None = typer.Option(
        None,
        "--summarize",
        help="print the table of a landmark run's drag_eval.csv (or the drag_eval.part.csv of a stopped run); "
        "runs nothing",
    ),
) -> None:
    """Drag evaluation: MD before/after, time, steps, change outside, per method (DragGAN face-landmark protocol,
    or the object-centre protocol the model's zoo entry names)."""
    if summarize_csv is not None:
        from ..edit.evaluate import read_edits, summarize, to_markdown

        typer.echo(to_markdown(summarize(read_edits(summarize_csv))))
        return
    from ..models import load_model
    from ..models.base import DRAG_EVAL_PROTOCOLS

    g = load_model(model)
    protocol = g.defaults.drag_eval if protocol is None else protocol
    if protocol not in DRAG_EVAL_PROTOCOLS:
        raise ProbeError(f"--protocol: {protocol!r} unknown; use one of {', '.join(DRAG_EVAL_PROTOCOLS)}")
    if protocol == "centres":  # object-centre protocol: probe/edit/sprites_eval.py
        from ..edit.sprites_eval import drag_eval_cli

        return drag_eval_cli(model, pairs=pairs, seed=seed, steps=steps, out=out, echo=typer.echo, oracles=oracles)
    import pandas as pd

    from ..edit.evaluate import EDIT_COLUMNS, drag_eval, summarize, to_markdown

    part = None if out is None else out / "drag_eval.part.csv"  # rows as they come: a stopped run keeps its table
    if part is not None:
        out.mkdir(parents=True, exist_ok=True)
        part.unlink(missing_ok=True)

    def show(row):
        typer.echo(
            f"pair {row['pair']:>3} {row['points']}-point {row['method']:<9} MD {row['md_before']:5.2f} -> "
            f"{row['md_after']:5.2f} px, {row['steps']:>3} steps, {row['seconds']:5.2f} s",
            err=True,
        )
        if part is not None:
            pd.DataFrame([row], columns=EDIT_COLUMNS).to_csv(part, mode="a", header=not part.exists(), index=False)

    edits = drag_eval(
        g,
        n_pairs=pairs,
        seed=seed,
        settings=tuple(points),
        progress=show,
        oracles=oracles,
        drag_kwargs={m: {"max_steps": steps} for m in ("draggan", "freedrag")},
    )
    table = to_markdown(summarize(edits))
    typer.echo(table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        edits.to_csv(out / "drag_eval.csv", index=False)
        (out / "drag_eval.md").write_text(table + "\n")
        part.unlink(missing_ok=True)
        typer.echo(f"wrote {out}/drag_eval.csv and {out}/drag_eval.md")
