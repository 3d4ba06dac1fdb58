"""DirectionSet: K named directions in one latent space, saved as a single .npz without pickle."""
from __future__ import annotations

import io
import json
import os
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
            raise DirectionError(f"DirectionSet needs vectors [K, D] with K = len(names) = {len(self.names)}; "
                                 f"got {list(self.vectors.shape)}")
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

    def subset(self, names: list[str]) -> "DirectionSet":
        idx = [self.names.index(n) for n in names]
        return DirectionSet([self.names[i] for i in idx], self.vectors[idx], self.space, self.method, self.model,
                            self.weights_hash, [self.layers[i] for i in idx], self.site,
                            None if self.channel_masks is None else self.channel_masks[idx], self.scales[idx],
                            [self.info[i] for i in idx], dict(self.provenance))

    def check_for(self, model) -> None:
        """Raise a DirectionError unless this set fits `model` (space available, dimension right)."""
        if self.space not in model.spaces:
            raise DirectionError(f"directions of {self.method!r} live in space {self.space!r}, which model "
                                 f"{model.name!r} does not have (spaces {list(model.spaces)})")
        ok = (model.w_dim, model.dim("ws")) if self.space == "ws" else (model.dim(self.space),)
        if self.dim not in ok:
            raise DirectionError(f"directions of {self.method!r} have dimension {self.dim}, but space "
                                 f"{self.space!r} of model {model.name!r} takes {' or '.join(map(str, ok))}; "
                                 f"fit the directions on this model")

    # ---- io ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write one .npz (arrays + JSON metadata; no pickle), atomically."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        meta = {"format_version": FORMAT_VERSION, "names": self.names, "space": self.space, "method": self.method,
                "model": self.model, "weights_hash": self.weights_hash,
                "layers": [list(l) if l is not None else None for l in self.layers], "site": self.site,
                "info": self.info, "provenance": self.provenance}
        arrays = {"vectors": self.vectors, "scales": self.scales,
                  "meta": np.frombuffer(json.dumps(meta, default=float).encode(), dtype=np.uint8)}
        if self.channel_masks is not None:
            arrays["channel_masks"] = self.channel_masks
        from ..store import atomic_write_bytes  # the store's one atomic writer (one-line errors, no tmp left)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "DirectionSet":
        path = Path(path)
        if not path.is_file():
            raise DirectionError(f"direction file {str(path)!r} does not exist")
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                vectors, scales = z["vectors"], z["scales"]
                masks = z["channel_masks"] if "channel_masks" in z.files else None
        except Exception as e:  # noqa: BLE001
            raise DirectionError(f"{path.name} is not a DirectionSet file ({type(e).__name__}: {e})") from None
        if meta.get("format_version", 0) > FORMAT_VERSION:
            raise DirectionError(f"{path.name} has format version {meta['format_version']}, newer than this "
                                 f"latent-probe reads ({FORMAT_VERSION}); upgrade latent-probe")
        return cls(meta["names"], vectors, meta["space"], meta["method"], meta["model"], meta["weights_hash"],
                   [tuple(l) if l is not None else None for l in meta["layers"]], meta["site"], masks, scales,
                   meta["info"], meta["provenance"])


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
