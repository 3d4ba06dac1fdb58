"""Drag results of a study for the report, from STUDY/drag/ (written by `probe drag` / `probe drag-eval`):

- `drag_eval.csv` (`probe drag-eval --out STUDY/drag`): per-edit rows, summarised per method and point setting with
  probe.edit.evaluate.summarize.
- `*.json`, one object per drag run: a table row per file with its scalar fields (method, sample_id, steps,
  seconds, converged, mean final handle distance ...) and thumbnails for image fields (a `data:image/png|jpeg;base64`
  URI or the name of a .png / .jpg file inside STUDY/drag/, never a path outside it).
- other `*.png` / `*.jpg` (`probe drag --out STUDY/drag/run1.png`: before | after), downscaled and inlined.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

IMAGE_KEYS = ("img_before", "img_after", "before", "after", "img", "image", "png")
ROW_KEYS = ("method", "sample_id", "space", "site", "steps", "seconds", "converged", "loss", "psnr")
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def _image_src(value, folder: Path) -> str | None:
    if not isinstance(value, str):
        return None
    if value.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")):
        return value
    p = (folder / value).resolve()
    if p.parent != folder.resolve() or p.suffix.lower() not in _MIME or not p.is_file():
        return None
    return f"data:{_MIME[p.suffix.lower()]};base64," + base64.b64encode(p.read_bytes()).decode("ascii")


def _row(name: str, d: dict) -> dict:
    r = {"run": name}
    for k in ROW_KEYS:
        if k in d and not isinstance(d[k], (list, dict)):
            r[k] = d[k]
    for k in ("handles", "targets"):
        if isinstance(d.get(k), list):
            r[k] = "; ".join(",".join(f"{float(c):g}" for c in p) for p in d[k] if isinstance(p, list))
    dist = d.get("distances")
    if dist is None and isinstance(d.get("trajectory"), list) and isinstance(d.get("targets"), list):
        try:
            dist = np.linalg.norm(np.asarray(d["trajectory"], float)[-1] - np.asarray(d["targets"], float), axis=1)
        except (ValueError, IndexError):
            dist = None
    if dist is not None:
        try:
            r["final_distance_px"] = float(np.mean(np.asarray(dist, float)))
        except (TypeError, ValueError):
            pass
    return r


def read_drag_runs(study_path) -> list[tuple[str, dict]]:
    """[(file stem, parsed JSON dict)] of STUDY/drag/*.json; unreadable files come back as {"error": ...}."""
    folder = Path(study_path) / "drag"
    out = []
    for p in sorted(folder.glob("*.json")):
        try:
            d = json.loads(p.read_text())
            if not isinstance(d, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as e:
            d = {"error": f"unreadable ({type(e).__name__})"}
        out.append((p.stem, d))
    return out


def _png_thumb(path: Path, max_w: int) -> dict | None:
    """A downscaled inline PNG of an image file.  -> {src, width, height} or None if unreadable."""
    import io
    from PIL import Image, UnidentifiedImageError
    try:
        im = Image.open(path).convert("RGB")
    except (OSError, UnidentifiedImageError):
        return None
    if im.width > max_w:
        im = im.resize((max_w, max(1, round(im.height * max_w / im.width))), Image.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return {"src": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii"),
            "width": im.width, "height": im.height}


def drag_blocks(study, sec, thumb: int = 96) -> None:
    """Fill the report's drag section (reports.build.Section) from STUDY/drag/, or say it is absent."""
    import pandas as pd
    from reports.build import _table
    folder = Path(study.path) / "drag"
    runs = read_drag_runs(study.path)
    ev = folder / "drag_eval.csv"
    used = set()
    if ev.is_file():
        try:
            from probe.edit.evaluate import summarize
            _table(sec, summarize(pd.read_csv(ev)), "Drag evaluation per method (probe drag-eval)",
                   source="drag/drag_eval.csv")
        except Exception as e:  # noqa: BLE001 - a foreign CSV: say so, keep the report
            sec.add("text", "Drag evaluation", text=f"drag/drag_eval.csv not readable as a drag-eval table "
                                                    f"({type(e).__name__}: {e})")
    if runs:
        rows = [_row(n, d) if "error" not in d else {"run": n, "error": d["error"]} for n, d in runs]
        _table(sec, pd.DataFrame(rows), "Drag runs", source="drag/*.json")
    for n, d in runs:
        ims = []
        for k in IMAGE_KEYS:
            src = _image_src(d.get(k), folder)
            if src:
                used.add(d[k])
                ims.append({"src": src, "caption": f"{n}: {k}", "width": thumb, "height": thumb})
        if ims:
            sec.add("images", f"Drag run {n}", images=ims)
    loose = [p for p in sorted(folder.glob("*")) if p.suffix.lower() in _MIME and p.name not in used]
    ims = [dict(t, caption=p.name) for p in loose if (t := _png_thumb(p, 4 * thumb)) is not None]
    if ims:
        sec.add("images", "Drag images (before | after)", images=ims)
    if not sec.blocks:
        sec.absent(f"No drag results in this study (nothing in {folder.name}/).",
                   f"probe drag --out {folder / 'run1.png'} ... or probe drag-eval --out {folder}")
