"""The study directory: the ONLY writer of tables. Every file is written atomically (tmp + fsync + os.replace).

Layout and columns: see `probe.schema`. `Study(path)` opens a directory and refuses a newer schema_version.
"""
from __future__ import annotations

import errno
import io
import json
import os
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from . import schema
from .errors import ProbeError

MANIFEST = "manifest.json"
DENSITY = "density.json"
LATENTS = "latents.npy"
PARTS = "parts"

TABLE_COLUMNS = {"samples": schema.SAMPLE_COLUMNS, "interventions": schema.INTERVENTION_COLUMNS,
                 "effects": schema.EFFECT_COLUMNS, "correlations": schema.CORRELATION_COLUMNS,
                 "controlling": schema.CONTROLLING_COLUMNS, "embedding": schema.EMBEDDING_COLUMNS,
                 "evaluation": schema.EVALUATION_COLUMNS, "groundtruth": schema.GROUNDTRUTH_COLUMNS}
MAKERS = {"samples": "probe run SPEC.toml --out STUDY", "interventions": "probe run SPEC.toml --out STUDY",
          "effects": "probe stats STUDY", "correlations": "probe stats STUDY", "controlling": "probe stats STUDY",
          "embedding": "probe embed STUDY", "evaluation": "probe discover STUDY (probe.directions.evaluate)",
          "groundtruth": "probe gt-score --out STUDY (probe.directions.groundtruth)"}


class StoreError(ProbeError):
    """A study directory or table is missing, incomplete or unreadable; the message names the fix."""


class StoreWriteError(StoreError, OSError):
    """A write into a study failed at the OS level (disk full, read-only, no permission); the file it would have
    replaced is intact. Also an OSError, so callers that catch OSError keep working."""


_WRITE_FIX = {
    errno.ENOSPC: ("no space left on device", "free disk space"),
    errno.EDQUOT: ("disk quota exceeded", "free disk space or raise the quota"),
    errno.EROFS: ("read-only file system", "make the directory writable (or copy the study to a writable place)"),
    errno.EACCES: ("permission denied", "make the directory writable by this user"),
    errno.EPERM: ("operation not permitted", "make the directory writable by this user"),
}


def write_error(e: OSError, path: str | os.PathLike) -> StoreWriteError:
    """One-line StoreWriteError for an OSError while writing `path`: the reason, the path and the fix."""
    reason, fix = _WRITE_FIX.get(e.errno, (e.strerror or type(e).__name__, "check the disk and the directory"))
    return StoreWriteError(f"cannot write {str(path)!r}: {reason} [{errno.errorcode.get(e.errno, e.errno)}]; "
                           f"{fix}, then run the command again (probe run continues with --resume); "
                           f"files already written are intact")


# ---- atomic writes -------------------------------------------------------------------------------
def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _discard(path: Path) -> None:
    """Remove a leftover tmp file; a failure to remove it must not hide the error being reported."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def _write_file(path: Path, data: bytes) -> None:
    """The one low-level write of the store: write + flush + fsync (tests simulate ENOSPC / EROFS here)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write bytes to `path` via a tmp file, fsync and os.replace: readers see the old or the new file, never half.

    An OSError (disk full, read-only, permission) removes the tmp file, leaves the old file as it was and raises
    a one-line StoreWriteError naming the path and the fix."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_file(tmp, data)
        os.replace(tmp, path)
    except OSError as e:
        _discard(tmp)
        raise write_error(e, path) from None
    _fsync_dir(path.parent)
    return path


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    return atomic_write_bytes(path, (json.dumps(obj, indent=1, default=_json_default) + "\n").encode())


def atomic_write_parquet(path: str | os.PathLike, df: pd.DataFrame) -> Path:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_save_npy(path: str | os.PathLike, arr: np.ndarray) -> Path:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return atomic_write_bytes(path, buf.getvalue())


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.ndarray,)):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def conform(table: str, df: pd.DataFrame, measures: Sequence[str] = ()) -> pd.DataFrame:
    """Check a table's required columns and cast them to the schema dtypes (measure columns float64)."""
    cols = dict(TABLE_COLUMNS[table])
    if table == "samples":
        cols.update({m: "float64" for m in measures})
    elif table == "interventions":
        cols.update({m: "float64" for m in measures})
        cols.update({f"d_{m}": "float64" for m in measures})
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise StoreError(f"table {table!r} lacks required columns {missing}; see probe.schema "
                         f"(schema_version {schema.SCHEMA_VERSION})")
    out = {}
    for c in df.columns:
        col = df[c].reset_index(drop=True)
        t = cols.get(c)
        if t is not None and str(col.dtype) != t:
            try:
                col = col.astype(t)
            except (TypeError, ValueError) as e:
                raise StoreError(f"table {table!r}: column {c!r} cannot be stored as {t} ({e})") from None
        out[c] = col
    return pd.DataFrame(out, columns=list(df.columns))


class Study:
    """A study directory: manifest.json, latents.npy, Parquet tables, directions/.  See probe.schema."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        mf = self.path / MANIFEST
        if not mf.is_file():
            what = "does not exist" if not self.path.exists() else "is not a study (no manifest.json)"
            raise StoreError(f"study directory {str(self.path)!r} {what}; make one with "
                             f"probe run SPEC.toml --out {self.path}")
        try:
            self.manifest = json.loads(mf.read_text())
        except (OSError, ValueError) as e:
            raise StoreError(f"{mf} is unreadable ({type(e).__name__}: {e}); re-run the study") from None
        v = self.manifest.get("schema_version")
        if not isinstance(v, int):
            raise StoreError(f"{mf} has no integer schema_version; it was not written by latent-probe")
        if v > schema.SCHEMA_VERSION:
            raise StoreError(f"study {str(self.path)!r} has schema_version {v}, newer than this latent-probe reads "
                             f"({schema.SCHEMA_VERSION}); upgrade latent-probe")
        self._model = None
        self._density = None

    @classmethod
    def create(cls, path: str | os.PathLike, manifest: dict) -> "Study":
        """Make a new study directory with this manifest (schema_version and status are filled in)."""
        path = Path(path)
        if (path / MANIFEST).exists():
            raise StoreError(f"{str(path)!r} already holds a study; open it with Study(path) or choose a new path")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise write_error(e, path) from None
        m = {"schema_version": schema.SCHEMA_VERSION, "status": "running", "parts_done": [], **manifest}
        m["schema_version"] = schema.SCHEMA_VERSION
        atomic_write_json(path / MANIFEST, m)
        return cls(path)

    # ---- manifest ------------------------------------------------------------------------------
    def save_manifest(self) -> None:
        atomic_write_json(self.path / MANIFEST, self.manifest)

    @property
    def name(self) -> str:
        return self.manifest.get("name", self.path.name)

    @property
    def model_name(self) -> str:
        return self.manifest["model"]

    @property
    def space(self) -> str:
        return self.manifest.get("space", "z")

    @property
    def measures(self) -> list[str]:
        return list(self.manifest.get("measures", {}))

    @property
    def measure_info(self) -> dict[str, dict]:
        """{measure: {unit, lo, hi, description}}"""
        return {k: dict(v) for k, v in self.manifest.get("measures", {}).items()}

    @property
    def status(self) -> str:
        return self.manifest.get("status", "running")

    @property
    def alphas(self) -> list[float]:
        return list(self.manifest.get("alphas", []))

    @property
    def target_names(self) -> list[str]:
        """Targets in plan order."""
        return [t["name"] for t in self.manifest.get("targets", [])]

    # ---- tables --------------------------------------------------------------------------------
    def _table_path(self, table: str) -> Path:
        if table not in TABLE_COLUMNS:
            raise StoreError(f"unknown table {table!r}; use one of {list(TABLE_COLUMNS)}")
        return self.path / f"{table}.parquet"

    def has(self, table: str) -> bool:
        """Whether the table exists (interventions only once the study is complete)."""
        p = self._table_path(table)
        return p.is_file() and not (table == "interventions" and self.status != "complete")

    def table(self, table: str) -> pd.DataFrame:
        """Read a table; a StoreError names the command that makes it when absent."""
        p = self._table_path(table)
        if table == "interventions" and self.status != "complete":
            raise StoreError(f"study {str(self.path)!r} is incomplete (status {self.status!r}); finish it with "
                             f"probe run SPEC.toml --out {self.path} --resume")
        if not p.is_file():
            raise StoreError(f"study {str(self.path)!r} has no {table} table yet; make it with "
                             f"{MAKERS[table].replace('STUDY', str(self.path))}")
        try:
            return pd.read_parquet(p)
        except Exception as e:  # noqa: BLE001 - corrupt file: one line
            raise StoreError(f"{p} is unreadable ({type(e).__name__}); re-make it with {MAKERS[table]}") from None

    def write_table(self, table: str, df: pd.DataFrame) -> Path:
        """Check required columns (probe.schema), cast dtypes, write atomically."""
        ms = self.measures if table in ("samples", "interventions") else ()
        return atomic_write_parquet(self._table_path(table), conform(table, df, ms))

    # ---- parts (resume) ------------------------------------------------------------------------
    def part_path(self, k: int) -> Path:
        return self.path / PARTS / f"interventions-{k:05d}.parquet"

    @property
    def parts_done(self) -> list[int]:
        return sorted(int(k) for k in self.manifest.get("parts_done", []))

    def write_part(self, k: int, df: pd.DataFrame) -> None:
        """Write part k atomically, then record it in the manifest (a kill in between only recomputes it)."""
        atomic_write_parquet(self.part_path(k), conform("interventions", df, self.measures))
        self.manifest["parts_done"] = sorted(set(self.parts_done) | {int(k)})
        self.save_manifest()

    def finish(self, n_parts: int) -> None:
        """Merge parts 0..n_parts-1 (plan order) into interventions.parquet, mark the study complete."""
        missing = [k for k in range(n_parts) if k not in set(self.parts_done) or not self.part_path(k).is_file()]
        if missing:
            raise StoreError(f"study {str(self.path)!r}: parts {missing[:5]} are missing; resume with --resume")
        frames = [pd.read_parquet(self.part_path(k)) for k in range(n_parts)]
        df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            {c: pd.Series(dtype=t) for c, t in schema.INTERVENTION_COLUMNS.items()})
        atomic_write_parquet(self._table_path("interventions"), conform("interventions", df, self.measures))
        self.manifest["status"] = "complete"
        self.save_manifest()
        self.clean_parts()

    def clean_parts(self) -> None:
        shutil.rmtree(self.path / PARTS, ignore_errors=True)
        for tmp in self.path.glob(".*.tmp"):
            _discard(tmp)

    # ---- latents, density, directions ----------------------------------------------------------
    def latents(self) -> np.ndarray:
        """Base latents, row = sample_id.  # [N, *shape(space)] float32"""
        p = self.path / LATENTS
        if not p.is_file():
            raise StoreError(f"study {str(self.path)!r} has no latents.npy; resume it with probe run ... --resume")
        try:
            lat = np.load(p, allow_pickle=False)
        except Exception as e:  # noqa: BLE001 - corrupt, truncated or pickled file: one line
            raise StoreError(f"{p} is unreadable ({type(e).__name__}: {str(e).splitlines()[0][:120]}); it is "
                             f"written by probe run: re-run the study") from None
        n = self.manifest.get("n_samples")
        if lat.dtype.kind != "f" or lat.ndim < 2 or (n is not None and len(lat) != int(n)):
            raise StoreError(f"{p} holds {lat.dtype} {list(lat.shape)}, not the study's {n} float latents "
                             f"[N, *shape]; re-run the study")
        if not np.isfinite(lat).all():
            raise StoreError(f"{p} holds NaN or inf latents (corrupted); re-run the study")
        return lat

    def density(self):
        """The GaussianDensity fitted on sampled w (spaces w / ws), or None for z."""
        if self._density is None and (self.path / DENSITY).is_file():
            from .density import GaussianDensity
            try:
                self._density = GaussianDensity.from_dict(json.loads((self.path / DENSITY).read_text()))
            except Exception as e:  # noqa: BLE001 - corrupt file: one line
                raise StoreError(f"{self.path / DENSITY} is unreadable ({type(e).__name__}); it is written by "
                                 f"probe run: re-run the study") from None
        return self._density

    def directions(self) -> dict:
        """{file stem: DirectionSet} from directions/*.npz."""
        from .directions.base import DirectionSet
        return {p.stem: DirectionSet.load(p) for p in sorted((self.path / "directions").glob("*.npz"))}

    def save_directions(self, ds, stem: str | None = None) -> Path:
        """Save a DirectionSet as directions/<stem or ds.method>.npz (atomic)."""
        return ds.save(self.path / "directions" / f"{stem or ds.method}.npz")

    def model(self):
        """The study's Generator; StoreError if its weights changed since the study ran."""
        if self._model is None:
            from .models import load_model
            m = load_model(self.model_name)
            want = self.manifest.get("weights_hash")
            if want and m.weights_hash != want:
                raise StoreError(f"model {self.model_name!r} now has weights hash {m.weights_hash}, but the study "
                                 f"was run with {want}; restore those weights or re-run the study")
            self._model = m
        return self._model

    def target(self, target: str):
        """Rebuild a walks.Target from its table string (e.g. 'z[17]', 'random/d0', 'b2:c41')."""
        from .walks import Target
        recs = {t["name"]: t for t in self.manifest.get("targets", [])}
        if target not in recs:
            raise StoreError(f"target {target!r} is not in study {self.name!r}; targets are e.g. "
                             f"{list(recs)[:6]}")
        rec = recs[target]
        vec = None
        if rec["kind"] == "direction":
            from .directions.base import DirectionSet
            p = self.path / "directions" / f"{rec['source']}.npz"
            ds = DirectionSet.load(p)
            vec = ds.vector(rec["name"].split("/", 1)[1])
        return Target.from_dict(rec, vec)

    def render(self, sample_ids, target, alphas):
        """Re-render rows exactly as the engine did.  # sample_ids [N], alphas [A] -> img [N, A, 3, H, W]"""
        from .engine import render
        from .walks import Target
        t = target if isinstance(target, Target) else self.target(target)
        lat = self.latents()
        ids = np.atleast_1d(np.asarray(sample_ids, dtype=np.int64))
        if len(ids) and (ids.min() < 0 or ids.max() >= len(lat)):
            raise StoreError(f"sample_ids must lie in 0..{len(lat) - 1}")
        bs = int(self.manifest.get("spec", {}).get("batch_size", 64))
        return render(self.model(), lat[ids], self.space, t, alphas, self.density(), batch_size=bs)

    def __repr__(self) -> str:
        return f"Study({str(self.path)!r}, name={self.name!r}, status={self.status!r})"
