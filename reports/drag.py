"""The report's "Drag and inversion runs" section, from the study's edits table (`Study.edits()`,
`schema.EDIT_COLUMNS`): one row per drag or inversion run made with `probe drag --study`, `probe invert --study`
or the dashboard's Drag page, its quality columns, a warning for degraded runs, and before / after images
(`Study.edit_png`). The drag-eval summary of `probe drag-eval --out STUDY/drag` (drag/drag_eval.csv) is shown
when present.
"""

from __future__ import annotations

import base64
import io
import json

import pandas as pd

from probe.errors import ProbeError

MAX_IMAGES = 12  # runs whose before / after images are inlined (the most recent ones)
SHOWN = (
    "run_id",
    "kind",
    "method",
    "sample_id",
    "site",
    "steps",
    "seconds",
    "handle_dist_px",
    "outside_change",
    "psnr",
    "status",
)
HEADERS = {
    "handle_dist_px": "handle distance (px)",
    "outside_change": "change outside handles",
    "psnr": "PSNR (dB)",
    "seconds": "seconds",
}


MAX_DRIFT_COLUMNS = 4  # drift_<measure> columns shown: those with the largest |drift| over the runs


def quality_columns(edits: pd.DataFrame, max_drift: int = MAX_DRIFT_COLUMNS) -> pd.DataFrame:
    """The `quality` JSON of each edits row as columns (numbers only; text values joined into `notes`).

    Of the drift_<measure> columns only the `max_drift` with the largest |drift| over the runs are kept, so a study
    with many measures still gives a table that fits the page (all of them stay in edits.parquet)."""
    rows = []
    for q in edits["quality"]:
        try:
            d = json.loads(q) if isinstance(q, str) and q else {}
        except ValueError:
            d = {}
        d = d if isinstance(d, dict) else {}
        num = {k: float(v) for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        txt = [f"{k}: {v}" for k, v in d.items() if isinstance(v, str)]
        rows.append({**num, "notes": "; ".join(txt)})
    out = pd.DataFrame(rows, index=edits.index)
    if "notes" in out.columns and not out["notes"].astype(bool).any():
        out = out.drop(columns="notes")
    drift = [c for c in out.columns if c.startswith("drift_")]
    if len(drift) > max_drift:
        keep = out[drift].abs().max().sort_values(ascending=False, kind="stable").index[:max_drift]
        out = out.drop(columns=[c for c in drift if c not in set(keep)])
    return out


def _thumb(png: bytes, size: int) -> dict | None:
    """{src, width, height} of an inline PNG shown `size` px wide (images smaller than that are shown
    enlarged by the browser; larger ones are downscaled before they are embedded)."""
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(io.BytesIO(png)).convert("RGB")
    except (OSError, UnidentifiedImageError):
        return None
    if im.width > size:
        im = im.resize((size, max(1, round(im.height * size / im.width))), Image.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    h = max(1, round(im.height * size / im.width))
    return {
        "src": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii"),
        "width": size,
        "height": h,
    }


def _drag_eval(study, sec) -> None:
    from reports.build import _table

    ev = study.path / "drag" / "drag_eval.csv"
    if not ev.is_file():
        return
    try:
        from probe.edit.evaluate import summarize

        _table(
            sec, summarize(pd.read_csv(ev)), "Drag evaluation per method (probe drag-eval)", source="drag/drag_eval.csv"
        )
    except (ProbeError, ValueError, KeyError, OSError) as e:
        sec.add(
            "text", "Drag evaluation", text=f"drag/drag_eval.csv is not a drag-eval table ({type(e).__name__}: {e})"
        )


def edit_blocks(study, sec, thumb: int = 96) -> None:
    """Fill the report's edits section (reports.build.Section) from Study.edits(), or say it is absent."""
    from probe.store import MAKERS
    from reports.build import _table

    try:
        df = study.edits()
    except ProbeError as e:
        sec.add("text", text=f"edits table unreadable: {e}")
        df = None
    if df is not None and len(df):
        bad = df[df["status"] != "ok"]
        if len(bad):
            sec.add(
                "warning",
                text=f"{len(bad)} of {len(df)} runs did not end well: "
                + "; ".join(f"{r.run_id} {r.status}" for r in bad.itertuples())
                + " (degraded: the quality checks failed, e.g. the image fell apart or the "
                "handles did not move; stopped: ended before converging).",
            )
        t = df[list(SHOWN)].join(quality_columns(df)).rename(columns=HEADERS)
        _table(sec, t, "Runs (edits table)", source="edits.parquet")
        size = max(128, min(256, 2 * thumb))
        recent = df.tail(MAX_IMAGES)
        for r in recent.itertuples():
            ims = []
            for which in ("before", "after"):
                try:
                    im = _thumb(study.edit_png(r.run_id, which), size)
                except ProbeError as e:
                    sec.add("text", f"Run {r.run_id}", text=str(e))
                    im = None
                if im is not None:
                    ims.append(
                        dict(
                            im,
                            caption=f"{r.run_id} {which}"
                            + (f" ({r.status})" if which == "after" and r.status != "ok" else ""),
                        )
                    )
            if ims:
                sec.add("images", f"Run {r.run_id}: {r.kind} {r.method}", images=ims)
        if len(df) > len(recent):
            sec.add(
                "text",
                text=f"images of the {len(recent)} most recent runs; {len(df) - len(recent)} more "
                f"runs in edits.parquet (images in edits/)",
            )
    _drag_eval(study, sec)
    if not sec.blocks:
        sec.absent("No drag or inversion runs in this study.", MAKERS["edits"].replace("STUDY", str(study.path)))
