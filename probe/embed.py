"""UMAP embedding of the sample latents; walk points placed with `transform`; results cached on disk.

The cache holds only coordinates (npz, no pickle), keyed by a sha256 of the data, the UMAP parameters and the
umap-learn version, so a repeated fit / transform on the same data returns identical coordinates without UMAP.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from . import schema
from .errors import ProbeError

CACHE_VERSION = 1


@contextlib.contextmanager
def _umap_call():
    """Warnings off (n_jobs / spectral-init notices on tiny data) and torch's CPU thread count kept: numba's
    start-up inside UMAP can reset it to one thread per core, and two threads sum float32 in another order."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        if threads is not None and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


class EmbedError(ProbeError):
    """An embedding was asked for wrongly; the message names the fix."""


def _flat(latents) -> np.ndarray:
    if hasattr(latents, "detach"):
        latents = latents.detach().cpu().numpy()
    x = np.asarray(latents, dtype=np.float32)
    if x.ndim < 2:
        raise EmbedError(f"latents must be [N, *shape]; got shape {list(x.shape)}")
    x = np.ascontiguousarray(x.reshape(len(x), -1))
    if not np.isfinite(x).all():
        raise EmbedError("latents contain NaN or inf; pass finite latent codes")
    return x


def _umap_version() -> str:
    from importlib.metadata import version

    return version("umap-learn")


class LatentEmbedding:
    """UMAP of latents (flattened to [N, D]) to 2-d, scikit-learn style.

    fit(latents [N, *shape]) -> self with embedding_ [N, 2]; transform(x [M, *shape]) -> [M, 2].
    cache_dir: folder for the coordinate cache (None = no cache); cache_hit_ tells whether fit came from it.
    """

    def __init__(
        self,
        n_neighbors: int = 15,
        min_dist: float = 0.1,
        metric: str = "euclidean",
        random_state: int = 0,
        cache_dir: str | os.PathLike | None = None,
    ):
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric
        self.random_state = random_state
        self.cache_dir = cache_dir

    # ---- cache -------------------------------------------------------------------------------
    def _params(self) -> dict:
        return {
            "n_neighbors": int(self.n_neighbors),
            "min_dist": float(self.min_dist),
            "metric": self.metric,
            "random_state": int(self.random_state),
            "umap": _umap_version(),
            "v": CACHE_VERSION,
        }

    def _key(self, *arrays: np.ndarray) -> str:
        h = hashlib.sha256(json.dumps(self._params(), sort_keys=True).encode())
        for a in arrays:
            h.update(str(a.shape).encode())
            h.update(a.tobytes())
        return h.hexdigest()[:24]

    def _cache_file(self, key: str) -> Path | None:
        return None if self.cache_dir is None else Path(self.cache_dir) / f"umap-{key}.npz"

    def _load(self, key: str) -> np.ndarray | None:
        f = self._cache_file(key)
        if f is None or not f.is_file():
            return None
        try:
            with np.load(f, allow_pickle=False) as z:
                return z["xy"].astype(np.float64)
        except Exception:  # noqa: BLE001 - a damaged cache entry is recomputed
            return None

    def _save(self, key: str, xy: np.ndarray) -> None:
        f = self._cache_file(key)
        if f is None:
            return
        from .io import atomic_write_bytes

        buf = io.BytesIO()
        np.savez(buf, xy=np.asarray(xy, np.float64))
        atomic_write_bytes(f, buf.getvalue())

    # ---- fit / transform -----------------------------------------------------------------------
    def _fit_umap(self) -> None:
        import umap

        n = len(self._x)
        with _umap_call():
            self.umap_ = umap.UMAP(
                n_neighbors=min(int(self.n_neighbors), n - 1),
                min_dist=self.min_dist,
                metric=self.metric,
                random_state=self.random_state,
                n_components=2,
                init="spectral" if n > int(self.n_neighbors) + 2 else "random",
            ).fit(self._x)
        self.embedding_ = np.asarray(self.umap_.embedding_, np.float64)
        self._save(self.key_, self.embedding_)

    def fit(self, latents) -> LatentEmbedding:
        """Fit UMAP on latents [N, *shape] (or load the cached coordinates).  embedding_: [N, 2]"""
        if not 0 <= float(self.min_dist) <= 1:
            raise EmbedError(f"min_dist must be in [0, 1]; got {self.min_dist}")
        if int(self.n_neighbors) < 2:
            raise EmbedError(f"n_neighbors must be >= 2; got {self.n_neighbors}")
        self._x = _flat(latents)
        if len(self._x) < 4:
            raise EmbedError(f"UMAP needs at least 4 latents; got {len(self._x)} (run the study with more samples)")
        self.key_ = self._key(self._x)
        self.umap_ = None
        cached = self._load(self.key_)
        self.cache_hit_ = cached is not None and cached.shape == (len(self._x), 2)
        if self.cache_hit_:
            self.embedding_ = cached
        else:
            self._fit_umap()
        return self

    def transform(self, latents) -> np.ndarray:
        """Place new latents in the fitted embedding.  # [M, *shape] -> [M, 2]"""
        if not hasattr(self, "key_"):
            raise EmbedError("LatentEmbedding.transform before fit; call fit(latents) first")
        y = _flat(latents)
        if y.shape[1] != self._x.shape[1]:
            raise EmbedError(
                f"transform got latents of dimension {y.shape[1]}, the embedding was fitted on "
                f"{self._x.shape[1]}; pass latents of the same space"
            )
        if len(y) == 0:
            return np.zeros((0, 2))
        key = self._key(self._x, y)
        cached = self._load(key)
        if cached is not None and cached.shape == (len(y), 2):
            return cached
        if self.umap_ is None:  # fit came from the cache: refit (deterministic for the seed)
            self._fit_umap()
        with _umap_call():
            xy = np.asarray(self.umap_.transform(y), np.float64)
        self._save(key, xy)
        return xy


def walk_latents(study, max_samples: int | None = 16, targets=None) -> tuple[pd.DataFrame, np.ndarray]:
    """Walked latents of a study's latent walks (channel walks leave the latent unchanged and are skipped).

    Uses the first `max_samples` sample_ids and the given targets (default all). -> rows (sample_id, target,
    alpha) and latents [R, *shape] in the study's space, recomputed with probe.walks exactly as the engine did.
    """
    from .query import Query
    from .walks import apply_rows

    q = Query(study)
    where = {"!target_kind": "channel"}
    if targets is not None:
        have = set(q.targets().query("target_kind != 'channel'")["target"])
        unknown = sorted(set(targets) - have)
        if unknown:
            raise EmbedError(
                f"targets {unknown} have no latent walks in study {study.name!r}; use some of {sorted(have)[:8]}"
            )
        where["target"] = list(targets)
    if max_samples is not None:
        where["sample_id"] = q.sample_ids(where, limit=int(max_samples))
    iv = q.interventions(["sample_id", "target", "alpha"], where=where, distinct=True)
    iv = iv.sort_values(["target", "sample_id", "alpha"], kind="stable")
    from .restudy import study_target

    lat = study.latents()
    out = []
    for t, g in iv.groupby("target", sort=False):
        out.append(
            apply_rows(
                lat[g["sample_id"].to_numpy()],
                study.space,
                study_target(study, t),
                g["alpha"].to_numpy().copy(),
                study.density(),
            ).numpy()
        )
    x = np.concatenate(out) if out else np.zeros((0, *lat.shape[1:]), np.float32)
    return iv.reset_index(drop=True), x


def embed_study(
    study,
    walks: bool = True,
    max_samples: int | None = 16,
    targets=None,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    random_state: int = 0,
    cache: bool = True,
    anchor: bool = True,
) -> pd.DataFrame:
    """UMAP of the study's base latents + walk points; writes and returns embedding.parquet.

    UMAP's transform does not map a training latent exactly onto its own embedding point; with anchor=True each
    sample's walk points are shifted by (embedding_[sample] - transform(latent[sample])), so alpha = 0 sits on
    its sample and the trajectories show the displacement transform gives.

    kind "sample" rows (target "", alpha 0) come first, then kind "walk" rows; point_id numbers them.
    The coordinate cache lives in STUDY/.cache/embed.
    """
    emb = LatentEmbedding(
        n_neighbors, min_dist, random_state=random_state, cache_dir=study.path / ".cache" / "embed" if cache else None
    ).fit(study.latents())
    walk = None
    if walks and study.has("interventions"):
        rows, x = walk_latents(study, max_samples, targets)
        sids = np.unique(rows["sample_id"].to_numpy())
        xy = emb.transform(np.concatenate([x, study.latents()[sids]]))  # a refit after a cache hit renews embedding_
        xy, base = xy[: len(x)], xy[len(x) :]
        if anchor:  # shift each sample's walks so its base latent sits on its sample
            shift = emb.embedding_[sids] - base
            xy = xy + shift[np.searchsorted(sids, rows["sample_id"].to_numpy())]
        walk = rows.assign(kind="walk", x=xy[:, 0], y=xy[:, 1])
    n = len(emb.embedding_)
    frames = [
        pd.DataFrame(
            {
                "kind": "sample",
                "sample_id": np.arange(n),
                "target": "",
                "alpha": 0.0,
                "x": emb.embedding_[:, 0],
                "y": emb.embedding_[:, 1],
            }
        ),
        walk,
    ]
    df = pd.concat(frames, ignore_index=True)
    df.insert(0, "point_id", np.arange(len(df)))
    df = df[list(schema.EMBEDDING_COLUMNS)].astype(schema.EMBEDDING_COLUMNS)
    study.write_table("embedding", df)
    return df
