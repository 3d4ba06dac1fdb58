"""Style mixing: swap a range of ws layers between two samples (StyleGAN paper, section 3.1).

`style_mix(model, ws_a, ws_b, layers=(start, end))` takes rows start..end-1 of every sample's ws from b and the
rest from a. Early layers (coarse resolutions) carry layout and shape, late layers colour and fine detail.
`mixing_grid` renders the paper's figure from seeds: rows = A samples, columns = B samples, the first row and
column show the sources; `grid_png` writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import ProbeError


class MixError(ProbeError):
    """Style mixing was asked for wrongly; the message names the field and the fix."""


def check_style_model(model) -> None:
    """Raise MixError unless the model has a ws space (one w per synthesis layer)."""
    if "ws" not in getattr(model, "spaces", ()) or not getattr(model, "num_ws", None):
        raise MixError(
            f"model {model.name!r} has no ws space; style mixing needs a style-based model such as 'sprites'"
        )


def check_layers(layers, num_ws: int) -> tuple[int, int]:
    """Validate a ws layer range (start, end), end exclusive, 0 <= start <= end <= num_ws."""
    try:
        s, e = (int(x) for x in layers)
    except (TypeError, ValueError):
        raise MixError(f"layers: expected (start, end) with end exclusive, got {layers!r}") from None
    if not 0 <= s <= e <= num_ws:
        raise MixError(f"layers: ({s}, {e}) out of range for num_ws={num_ws}; use 0 <= start <= end <= {num_ws}")
    return s, e


def parse_layers(text: str) -> tuple[int, int]:
    """'0-6' -> (0, 6) (end exclusive)."""
    try:
        a, b = (int(x) for x in str(text).split("-"))
    except ValueError:
        raise MixError(f"--layers: write START-END (end exclusive), e.g. 0-6; got {text!r}") from None
    return a, b


def style_mix(model, ws_a, ws_b, layers: tuple[int, int]) -> torch.Tensor:
    """Rows start..end-1 of ws from b, the rest from a.  # ws_a, ws_b [N, num_ws, w_dim] -> ws [N, num_ws, w_dim]

    A batch of 1 on either side is broadcast against the other.
    """
    check_style_model(model)
    want = (model.num_ws, model.w_dim)
    out = []
    for name, ws in (("ws_a", ws_a), ("ws_b", ws_b)):
        ws = torch.as_tensor(ws, dtype=torch.float32)
        if ws.dim() == 2:
            ws = ws[None]
        if ws.dim() != 3 or tuple(ws.shape[1:]) != want:
            raise MixError(
                f"{name}: expected ws [N, {want[0]}, {want[1]}] (num_ws, w_dim of model {model.name!r}), "
                f"got {list(ws.shape)}"
            )
        if not torch.isfinite(ws).all():
            raise MixError(f"{name}: contains NaN or inf values")
        out.append(ws)
    a, b = out
    if len(a) != len(b) and 1 not in (len(a), len(b)):
        raise MixError(f"ws_b: batch {len(b)} does not match ws_a batch {len(a)}; pass equal batches or one of 1")
    s, e = check_layers(layers, model.num_ws)
    n = max(len(a), len(b))
    a, b = a.expand(n, *want), b.expand(n, *want)
    mixed = a.clone()
    mixed[:, s:e] = b[:, s:e]
    return mixed


def seeds_to_ws(model, seeds: Sequence[int]) -> torch.Tensor:
    """One sample per seed (model.sample(1, seed)) mapped to ws.  # -> [len(seeds), num_ws, w_dim]"""
    check_style_model(model)
    if len(seeds) == 0:
        raise MixError("seeds: name at least one seed")
    with torch.no_grad():
        z = torch.cat([model.sample(1, int(s)) for s in seeds])
        return model.to_space(z, "z", "ws")


@torch.no_grad()
def mixing_grid(
    model, seeds_a: Sequence[int], seeds_b: Sequence[int], layers: tuple[int, int], batch_size: int = 64
) -> torch.Tensor:
    """The style-mixing figure.  # -> img [R + 1, C + 1, 3, H, W] (R = len(seeds_a), C = len(seeds_b))

    Cell [0, 0] is white; row 0 holds the B sources, column 0 the A sources, cell [r, c] = mix(A_r, B_c).
    """
    check_style_model(model)
    s, e = check_layers(layers, model.num_ws)
    wa, wb = seeds_to_ws(model, seeds_a), seeds_to_ws(model, seeds_b)
    R, C = len(wa), len(wb)
    mixed = style_mix(model, wa.repeat_interleave(C, 0), wb.repeat(R, 1, 1), (s, e))
    lat = torch.cat([wa, wb, mixed])
    img = torch.cat([model.synthesize(lat[i : i + batch_size], "ws") for i in range(0, len(lat), batch_size)]).cpu()
    grid = torch.ones(R + 1, C + 1, *img.shape[1:])
    grid[1:, 0] = img[:R]
    grid[0, 1:] = img[R : R + C]
    grid[1:, 1:] = img[R + C :].reshape(R, C, *img.shape[1:])
    return grid


def grid_png(grid: torch.Tensor, path, cell: int = 96, pad: int = 4) -> Path:
    """Save img [R, C, 3, H, W] in [-1, 1] as a PNG grid, cells resized to `cell` px (nearest), white gaps."""
    from PIL import Image

    R, C = grid.shape[:2]
    u8 = ((grid.detach().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 1, 3, 4, 2).numpy()
    canvas = Image.new("RGB", (C * cell + (C - 1) * pad, R * cell + (R - 1) * pad), (255, 255, 255))
    for r in range(R):
        for c in range(C):
            tile = Image.fromarray(np.ascontiguousarray(u8[r, c])).resize((cell, cell), Image.NEAREST)
            canvas.paste(tile, (c * (cell + pad), r * (cell + pad)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, optimize=True)
    return path


def default_ranges(num_ws: int, size: int = 3) -> list[tuple[int, int]]:
    """Consecutive ws layer ranges of `size` rows (3 = one StyleGAN-lite block: conv0, conv1, torgb)."""
    return [(s, min(s + size, num_ws)) for s in range(0, num_ws, size)]


def block_ranges(model) -> list[tuple[int, int]]:
    """ws row ranges of the model's synthesis blocks (from the affines each block reads: 3 rows per StyleGAN-lite
    block, 2 per NVlabs StyleGAN2 block, 1 per StyleGAN3 layer); one range per ws row for other models."""
    check_style_model(model)
    if hasattr(model, "ws_blocks"):
        return [(s, e) for _, s, e in model.ws_blocks()]
    return default_ranges(model.num_ws, 1)


@torch.no_grad()
def mix_transfer(
    model, measures=None, ranges=None, n: int = 64, seed: int = 0, categorical=None, circular=None, batch_size: int = 64
):
    """Which measured factors each ws layer range carries from B into A.  -> DataFrame, one row per (layers, measure)

    n pairs (A = model.sample(n, seed), B = model.sample(n, seed + 1)); for each range (default: the model's
    synthesis blocks, `block_ranges`), A takes those rows from B. measures: names or a MeasureSet (default the
    model's `default_measures`).
    transfer: continuous measure: median over pairs of (m(mix) - m(A)) / (m(B) - m(A)), over pairs whose A and B
    differ by more than half the measure's std (0 = stays A, 1 = becomes B); categorical: share of pairs with
    different classes whose mix has B's class; circular: differences wrap at the period. Which measures are
    categorical or circular comes from their MeasureInfo kind; `categorical` (names) and `circular`
    ({measure: period}) override it. Columns: layers, start, end, measure, transfer, pairs.
    """
    import pandas as pd

    from ..measures import MeasureSet, measure_kinds, wrap

    check_style_model(model)
    if measures is None:
        measures = model.defaults.measures
    ms = measures if hasattr(measures, "names") else MeasureSet(list(measures))
    ranges = [check_layers(r, model.num_ws) for r in (ranges or block_ranges(model))]
    kinds = measure_kinds(ms)
    categorical = [m for m, (k, _) in kinds.items() if k == "categorical"] if categorical is None else list(categorical)
    circular = {m: p for m, (k, p) in kinds.items() if k == "circular"} if circular is None else dict(circular)
    if n < 2:
        raise MixError(f"n: need at least 2 pairs, got {n}")
    wa = model.to_space(model.sample(int(n), seed), "z", "ws")
    wb = model.to_space(model.sample(int(n), seed + 1), "z", "ws")

    def score(ws):
        out = {}
        for i in range(0, len(ws), batch_size):
            for k, v in ms(model.synthesize(ws[i : i + batch_size], "ws")).items():
                out.setdefault(k, []).append(np.asarray(v, float))
        return {k: np.concatenate(v) for k, v in out.items()}

    def diff(x, y, m):
        return wrap(x - y, circular[m]) if m in circular else x - y

    sa, sb = score(wa), score(wb)
    rows = []
    for s, e in ranges:
        sm = score(style_mix(model, wa, wb, (s, e)))
        for m in ms.names:
            if m in categorical:
                ok = np.round(sa[m]) != np.round(sb[m])
                t = float((np.round(sm[m][ok]) == np.round(sb[m][ok])).mean()) if ok.any() else np.nan
            else:
                d = diff(sb[m], sa[m], m)
                ok = np.abs(d) > 0.5 * np.std(np.concatenate([sa[m], sb[m]]))
                t = float(np.median(diff(sm[m][ok], sa[m][ok], m) / d[ok])) if ok.any() else np.nan
            rows.append(
                {"layers": f"{s}-{e}", "start": s, "end": e, "measure": m, "transfer": t, "pairs": int(ok.sum())}
            )
    return pd.DataFrame(rows)


def transfer_markdown(df) -> str:
    """mix_transfer as a Markdown table: a row per ws layer range, a column per measure."""
    wide = df.pivot(index="layers", columns="measure", values="transfer")
    wide = wide.reindex(index=list(dict.fromkeys(df["layers"])), columns=list(dict.fromkeys(df["measure"])))
    from ..measures import short_names

    head = ["ws layers from B"] + short_names(wide.columns)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for idx, r in wide.iterrows():
        lines.append(f"| {idx} | " + " | ".join("–" if np.isnan(v) else f"{v:.2f}" for v in r) + " |")
    return "\n".join(lines)


__all__ = [
    "MixError",
    "style_mix",
    "mixing_grid",
    "grid_png",
    "seeds_to_ws",
    "parse_layers",
    "check_layers",
    "mix_transfer",
    "transfer_markdown",
    "default_ranges",
    "block_ranges",
]
