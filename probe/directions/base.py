"""DirectionSet: K named directions in one latent space, saved as a single .npz without pickle."""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ProbeError

FORMAT_VERSION = 1


class DirectionError(ProbeError):
    """A direction file or set is unusable as asked; the message names the fix."""


@dataclass
class DirectionSet:
    """names [K]; vectors [K, D] (unit rows; D = flat dim of `space`); `space` in z | w | ws.

    layers: per-direction (start, end) ws layer range (end exclusive) or None for all layers.
    site + channel_masks [K, C]: per-direction channel subspace at a named site (DP-LaSE), or None.
    scales [K]: a natural step unit per direction (e.g. GANSpace latent std), default 1.
    info: per-direction metrics (e.g. held-out accuracy); provenance: method params, model, hash.
    """

    names: list[str]
    vectors: np.ndarray
    space: str
    method: str
    model: str = ""
    weights_hash: str = ""
    layers: list[tuple[int, int] | None] | None = None
    site: str | None = None
    channel_masks: np.ndarray | None = None
    scales: np.ndarray | None = None
    info: list[dict] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        if self.vectors.ndim != 2 or len(self.names) != len(self.vectors):
            raise DirectionError(
                f"DirectionSet needs vectors [K, D] with K = len(names) = {len(self.names)}; "
                f"got {list(self.vectors.shape)}"
            )
        if len(set(self.names)) != len(self.names):
            raise DirectionError(f"direction names must be unique: {self.names}")
        if self.space not in ("z", "w", "ws"):
            raise DirectionError(f"direction space must be z, w or ws; got {self.space!r}")
        if not np.isfinite(self.vectors).all():
            raise DirectionError("direction vectors contain NaN or inf")
        k = len(self.names)
        self.layers = list(self.layers) if self.layers is not None else [None] * k
        self.scales = np.ones(k, np.float32) if self.scales is None else np.asarray(self.scales, np.float32)
        self.info = list(self.info) or [{} for _ in range(k)]
        if self.channel_masks is not None:
            self.channel_masks = np.asarray(self.channel_masks, dtype=np.float32)
            if self.site is None or self.channel_masks.shape[0] != k:
                raise DirectionError("channel_masks need a site and one row per direction")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def target(self, i: int) -> str:
        """Table name of direction i: `<method>/<name>`."""
        return f"{self.method}/{self.names[i]}"

    def vector(self, name: str) -> np.ndarray:
        return self.vectors[self.names.index(name)]

    def subset(self, names: list[str]) -> DirectionSet:
        idx = [self.names.index(n) for n in names]
        return DirectionSet(
            [self.names[i] for i in idx],
            self.vectors[idx],
            self.space,
            self.method,
            self.model,
            self.weights_hash,
            [self.layers[i] for i in idx],
            self.site,
            None if self.channel_masks is None else self.channel_masks[idx],
            self.scales[idx],
            [self.info[i] for i in idx],
            dict(self.provenance),
        )

    def check_for(self, model) -> None:
        """Raise a DirectionError unless this set fits `model` (space available, dimension right)."""
        if self.space not in model.spaces:
            raise DirectionError(
                f"directions of {self.method!r} live in space {self.space!r}, which model "
                f"{model.name!r} does not have (spaces {list(model.spaces)})"
            )
        ok = (model.w_dim, model.dim("ws")) if self.space == "ws" else (model.dim(self.space),)
        if self.dim not in ok:
            raise DirectionError(
                f"directions of {self.method!r} have dimension {self.dim}, but space "
                f"{self.space!r} of model {model.name!r} takes {' or '.join(map(str, ok))}; "
                f"fit the directions on this model"
            )

    # ---- io ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write one .npz (arrays + JSON metadata; no pickle), atomically."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        meta = {
            "format_version": FORMAT_VERSION,
            "names": self.names,
            "space": self.space,
            "method": self.method,
            "model": self.model,
            "weights_hash": self.weights_hash,
            "layers": [list(l) if l is not None else None for l in self.layers],
            "site": self.site,
            "info": self.info,
            "provenance": self.provenance,
        }
        arrays = {
            "vectors": self.vectors,
            "scales": self.scales,
            "meta": np.frombuffer(json.dumps(meta, default=float).encode(), dtype=np.uint8),
        }
        if self.channel_masks is not None:
            arrays["channel_masks"] = self.channel_masks
        from ..io import atomic_write_bytes  # the one atomic writer (one-line errors, no tmp left)

        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> DirectionSet:
        """Read a .npz written by `save` (no pickle); DirectionError (one line) for anything else."""
        path = Path(path)
        if not path.is_file():
            raise DirectionError(f"direction file {str(path)!r} does not exist")
        if not zipfile.is_zipfile(path):
            raise DirectionError(
                f"{path.name} is not a DirectionSet .npz (not a zip archive); give a file written "
                f"by probe discover or DirectionSet.save"
            )
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in ("meta", "vectors", "scales") if k not in z.files]
                if missing:
                    raise DirectionError(
                        f"{path.name} is not a DirectionSet .npz (no {missing[0]!r} array); give a "
                        f"file written by probe discover or DirectionSet.save"
                    )
                meta = json.loads(bytes(z["meta"]).decode())
                vectors, scales = z["vectors"], z["scales"]
                masks = z["channel_masks"] if "channel_masks" in z.files else None
        except DirectionError:
            raise
        except Exception as e:  # noqa: BLE001
            reason = next((ln for ln in str(e).splitlines() if ln.strip()), "")[:160]
            raise DirectionError(
                f"{path.name} is not a readable DirectionSet .npz ({type(e).__name__}: "
                f"{reason}); re-save it with DirectionSet.save"
            ) from None
        if not isinstance(meta, dict):
            raise DirectionError(
                f"{path.name}: DirectionSet metadata is not a JSON object; re-save it with DirectionSet.save"
            )
        if meta.get("format_version", 0) > FORMAT_VERSION:
            raise DirectionError(
                f"{path.name} has format version {meta['format_version']}, newer than this "
                f"latent-probe reads ({FORMAT_VERSION}); upgrade latent-probe"
            )
        for k, t in (("names", list), ("space", str), ("method", str)):
            if not isinstance(meta.get(k), t):
                raise DirectionError(
                    f"{path.name}: DirectionSet metadata lacks {k!r}"
                    + ("" if k not in meta else f" as {'a list' if t is list else 'a string'}")
                    + "; re-save it with DirectionSet.save"
                )
        if not all(isinstance(n, str) for n in meta["names"]):
            raise DirectionError(f"{path.name}: DirectionSet names must be strings; re-save it with DirectionSet.save")
        layers = meta.get("layers")
        try:
            layers = None if layers is None else [tuple(int(x) for x in l) if l is not None else None for l in layers]
            info = list(meta.get("info") or [])
            prov = dict(meta.get("provenance") or {})
        except (TypeError, ValueError):
            raise DirectionError(
                f"{path.name}: DirectionSet metadata 'layers', 'info' or 'provenance' is malformed; "
                f"re-save it with DirectionSet.save"
            ) from None
        return cls(
            meta["names"],
            vectors,
            meta["space"],
            meta["method"],
            str(meta.get("model", "")),
            str(meta.get("weights_hash", "")),
            layers,
            meta.get("site"),
            masks,
            scales,
            info,
            prov,
        )


def fit_once(path: str | os.PathLike, make, log=print) -> None:
    """Fit and save a DirectionSet unless `path` exists (resumable pipelines): make() -> DirectionSet."""
    import time

    path = Path(path)
    if path.is_file():
        log(f"  {path.stem:<12} exists ({path})")
        return
    t = time.perf_counter()
    ds = make()
    ds.save(path)
    log(f"  {path.stem:<12} {len(ds)} directions in {time.perf_counter() - t:.1f} s -> {path}")
