"""The study directory: the ONLY writer of tables. Every file is written atomically (tmp + fsync + os.replace).

Layout and columns: see `probe.schema`. `Study(path)` opens a directory and refuses a newer schema_version.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import time
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from . import schema
from .errors import ProbeError, printable

MANIFEST = "manifest.json"
LOCK = ".lock"
DENSITY = "density.json"
LATENTS = "latents.npy"
PARTS = "parts"
# Rows per row group of the merged interventions.parquet (pyarrow's default size): DuckDB scans row groups in
# parallel and skips those whose min/max exclude a filter (rows are in plan order, so one target's rows span few
# groups); the merge holds at most one pending group (~1M rows x the columns, ~100-200 MB) besides one part.
ROW_GROUP_ROWS = 1 << 20

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


class StudyBusyError(StoreError):
    """Another live process holds the study's write lock."""


class ModelTrustError(StoreError):
    """A study's model is code (file.py:factory, TorchScript) the user did not name, or its file changed."""


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


# ---- the study lock ------------------------------------------------------------------------------
_HELD: dict[str, list] = {}   # realpath -> [fd, depth] of the locks this process holds
_THREADS: dict[str, threading.RLock] = {}
_THREADS_GUARD = threading.Lock()
_TMP = re.compile(r"^\..+\.(\d+)\.tmp$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_tmp(path: str | os.PathLike) -> list[Path]:
    """Remove `.<name>.<pid>.tmp` files of dead processes in a study (top level, parts/, directions/, .cache/embed/)."""
    path = Path(path)
    gone = []
    for d in (path, path / PARTS, path / "directions", path / ".cache" / "embed"):
        if not d.is_dir():
            continue
        for f in d.glob(".*.tmp"):
            m = _TMP.match(f.name)
            if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
                _discard(f)
                gone.append(f)
    return gone


def _holder(fd: int, wait: float = 1.0) -> str:
    """The PID the lock holder wrote; it writes it just after taking the lock, so wait up to `wait` s for it."""
    t0 = time.monotonic()
    while True:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            pid = os.read(fd, 32).decode("ascii", "replace").strip()
        except OSError:
            pid = ""
        if pid.isdigit() or time.monotonic() - t0 > wait:
            return pid if pid.isdigit() else "unknown"
        time.sleep(0.01)


@contextmanager
def study_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold the exclusive write lock of a study directory (flock on `<path>/.lock`, holding the PID as text).

    Re-entrant within a thread; other threads of the process wait for it. Another live holder process ->
    StudyBusyError naming its PID; the OS drops the lock of a process that dies, so a killed holder never blocks.
    Creates `path` if needed (removed again, with the parents it made, if still empty on exit); sweeps the tmp
    files of dead writers once the lock is held."""
    path = Path(path)
    key = os.path.realpath(path)
    with _THREADS_GUARD:
        rlock = _THREADS.setdefault(key, threading.RLock())
    with rlock:
        held = _HELD.get(key)
        if held is not None:
            held[1] += 1
            try:
                yield path
            finally:
                held[1] -= 1
            return
        made = [p for p in [path, *path.parents] if not p.exists()]
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise write_error(e, path) from None
        try:
            fd = _acquire(path)
        except BaseException:
            _rmdir_empty(made)
            raise
        _HELD[key] = [fd, 1]
        try:
            sweep_stale_tmp(path)
            yield path
        finally:
            _HELD.pop(key, None)
            _discard(path / LOCK)
            os.close(fd)
            _rmdir_empty(made)


def _acquire(path: Path) -> int:
    lock = path / LOCK
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise write_error(e, lock) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            pid = _holder(fd)
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise write_error(e, lock) from None
            raise StudyBusyError(f"study {str(path)!r} is in use by another probe process (PID {pid}); "
                                 f"wait for it to finish or use another --out") from None
        try:  # a holder that released meanwhile unlinked the file we opened: lock the new one
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


def _rmdir_empty(made: list[Path]) -> None:
    """Remove the directories the lock created (deepest first) while they are empty."""
    for d in made:
        try:
            d.rmdir()
        except OSError:
            return


def _after_fork_in_child() -> None:
    _HELD.clear()     # the parent's locks are not this process's
    _THREADS.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def holds_lock(path: str | os.PathLike) -> bool:
    """Whether this process holds the study's lock."""
    return os.path.realpath(path) in _HELD


def _flush(writer, pending: list, n: int) -> int:
    """Write the first n rows of the pending arrow tables as one row group; keep the rest -> rows left."""
    import pyarrow as pa
    t = pa.concat_tables(pending)
    writer.write_table(t.slice(0, n), row_group_size=n)
    rest = t.slice(n)
    pending[:] = [rest] if len(rest) else []
    return len(rest)


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


_MANIFEST_TYPES = {"model": (str, "a string"), "measures": (dict, "an object"), "name": (str, "a string"),
                   "space": (str, "a string"), "status": (str, "a string"), "alphas": (list, "a list"),
                   "targets": (list, "a list"), "parts_done": (list, "a list"), "spec": (dict, "an object"),
                   "n_samples": (int, "an integer")}
_MANIFEST_REQUIRED = ("model", "measures")
_JSON_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number",
               bool: "true/false", type(None): "null"}


def _read_manifest(mf: Path, path: Path) -> dict:
    """manifest.json as a dict, its shape checked (one line naming the field otherwise)."""
    try:
        m = json.loads(mf.read_text())
    except (OSError, ValueError) as e:
        raise StoreError(f"{mf} is unreadable ({type(e).__name__}: {e}); re-run the study") from None
    return _check_manifest(m, mf, path)


def _check_manifest(m, mf: Path, path: Path) -> dict:
    fix = "it was not written by latent-probe or is damaged; re-run the study"
    if not isinstance(m, dict):
        raise StoreError(f"{mf}: expected a JSON object, got {_JSON_NAMES.get(type(m), type(m).__name__)}; {fix}")
    v = m.get("schema_version")
    if not isinstance(v, int) or isinstance(v, bool):
        raise StoreError(f"{mf} has no integer schema_version; it was not written by latent-probe")
    if v > schema.SCHEMA_VERSION:
        raise StoreError(f"study {str(path)!r} has schema_version {v}, newer than this latent-probe reads "
                         f"({schema.SCHEMA_VERSION}); upgrade latent-probe")
    for k in _MANIFEST_REQUIRED:
        if k not in m:
            raise StoreError(f"{mf}: field {k!r} is missing; {fix}")
    for k, (t, what) in _MANIFEST_TYPES.items():
        if k in m and (not isinstance(m[k], t) or isinstance(m[k], bool)):
            got = _JSON_NAMES.get(type(m[k]), type(m[k]).__name__)
            raise StoreError(f"{mf}: field {k!r} must be {what}, got {got}; {fix}")
    if not all(isinstance(x, dict) and isinstance(x.get("name"), str) and isinstance(x.get("kind"), str)
               for x in m.get("targets", [])):
        raise StoreError(f"{mf}: field 'targets' must list objects with a name and a kind; {fix}")
    if not all(isinstance(x, dict) for x in m["measures"].values()):
        raise StoreError(f"{mf}: field 'measures' must map each measure to an object of its info; {fix}")
    return m


def _shown(name: str) -> str:
    """A model name or path for messages: relative to the working directory when inside it."""
    path, sep, fn = name.rpartition(":") if ".py:" in name else (name, "", "")
    p = Path(path)
    if p.is_absolute():
        try:
            path = str(p.relative_to(Path.cwd()))
        except ValueError:
            pass
    return printable(path + sep + fn)


class Study:
    """A study directory: manifest.json, latents.npy, Parquet tables, directions/.  See probe.schema."""

    device = "cpu"   # where model() computes: auto | cpu | cuda | cuda:N (commands set their --device)

    def __init__(self, path: str | os.PathLike, model: str | None = None, trust_model: bool = False):
        """Open a study. `model`: the model the user named on the command line (`--model`), `trust_model`: the
        user's `--trust-model`; without either, a study whose model is code (file.py:factory, TorchScript)
        never loads it (see `check_model`)."""
        self.path = Path(path)
        mf = self.path / MANIFEST
        if not mf.is_file():
            what = "does not exist" if not self.path.exists() else "is not a study (no manifest.json)"
            raise StoreError(f"study directory {str(self.path)!r} {what}; make one with "
                             f"probe run SPEC.toml --out {self.path}")
        self.manifest = _read_manifest(mf, self.path)
        self._model = None
        self._density = None
        self._model_arg = model
        self._trust_model = bool(trust_model)

    @classmethod
    def create(cls, path: str | os.PathLike, manifest: dict) -> "Study":
        """Make a new study directory with this manifest (schema_version and status are filled in)."""
        path = Path(path)
        with study_lock(path):
            if (path / MANIFEST).exists():
                raise StoreError(f"{str(path)!r} already holds a study; open it with Study(path) or choose a new "
                                 f"path")
            m = {"schema_version": schema.SCHEMA_VERSION, "status": "running", "parts_done": [], **manifest}
            m["schema_version"] = schema.SCHEMA_VERSION
            _check_manifest(json.loads(json.dumps(m, default=_json_default)), path / MANIFEST, path)
            atomic_write_json(path / MANIFEST, m)
            return cls(path)

    @contextmanager
    def lock(self) -> Iterator["Study"]:
        """Hold the study's write lock (see `study_lock`) and re-read the manifest under it."""
        with study_lock(self.path):
            self.manifest = _read_manifest(self.path / MANIFEST, self.path)
            yield self

    # ---- manifest ------------------------------------------------------------------------------
    def save_manifest(self) -> None:
        with study_lock(self.path):
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
        with study_lock(self.path):
            return atomic_write_parquet(self._table_path(table), conform(table, df, ms))

    # ---- parts (resume) ------------------------------------------------------------------------
    def part_path(self, k: int) -> Path:
        return self.path / PARTS / f"interventions-{k:05d}.parquet"

    @property
    def parts_done(self) -> list[int]:
        return sorted(int(k) for k in self.manifest.get("parts_done", []))

    def write_part(self, k: int, df: pd.DataFrame) -> None:
        """Write part k atomically, then record it in the manifest (a kill in between only recomputes it)."""
        with study_lock(self.path):
            atomic_write_parquet(self.part_path(k), conform("interventions", df, self.measures))
            self.manifest["parts_done"] = sorted(set(self.parts_done) | {int(k)})
            self.save_manifest()

    def finish(self, n_parts: int) -> None:
        """Merge parts 0..n_parts-1 (plan order) into interventions.parquet, mark the study complete."""
        with study_lock(self.path):
            missing = [k for k in range(n_parts) if k not in set(self.parts_done) or not self.part_path(k).is_file()]
            if missing:
                raise StoreError(f"study {str(self.path)!r}: parts {missing[:5]} are missing; resume with --resume")
            self._merge_parts(n_parts)
            self.manifest["status"] = "complete"
            self.save_manifest()
            self.clean_parts()

    def _merge_parts(self, n_parts: int) -> Path:
        """Stream parts 0..n_parts-1 into interventions.parquet (tmp + fsync + replace): one part in memory at
        a time plus at most one pending row group; the same rows and schema as a pandas concat of the parts."""
        import pyarrow as pa
        import pyarrow.parquet as pq
        path = self._table_path("interventions")
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        writer, sch, pending, rows = None, None, [], 0
        try:
            try:
                for k in range(n_parts):
                    df = conform("interventions", pd.read_parquet(self.part_path(k)), self.measures)
                    t = pa.Table.from_pandas(df, schema=sch, preserve_index=False)
                    if writer is None:
                        sch = t.schema
                        writer = pq.ParquetWriter(tmp, sch)
                    pending.append(t)
                    rows += len(t)
                    while rows >= ROW_GROUP_ROWS:
                        rows = _flush(writer, pending, ROW_GROUP_ROWS)
                if writer is None:
                    empty = conform("interventions", pd.DataFrame(
                        {c: pd.Series(dtype=t) for c, t in schema.INTERVENTION_COLUMNS.items()}), ())
                    writer = pq.ParquetWriter(tmp, pa.Table.from_pandas(empty, preserve_index=False).schema)
                    writer.write_table(pa.Table.from_pandas(empty, preserve_index=False))
                elif rows:
                    _flush(writer, pending, rows)
            finally:
                if writer is not None:
                    writer.close()
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as e:
            _discard(tmp)
            raise write_error(e, path) from None
        except BaseException:
            _discard(tmp)
            raise
        _fsync_dir(path.parent)
        return path

    def clean_parts(self) -> None:
        with study_lock(self.path):
            shutil.rmtree(self.path / PARTS, ignore_errors=True)
            for tmp in self.path.glob(".*.tmp"):
                _discard(tmp)

    # ---- latents, density, directions ----------------------------------------------------------
    def latents(self) -> np.ndarray:
        """Base latents, row = sample_id.  # [N, *shape(space)] float32"""
        p = self.path / LATENTS
        if not p.is_file():
            raise StoreError(f"study {str(self.path)!r} has no latents.npy; rebuild it from the seed with "
                             f"probe run SPEC.toml --out {self.path} --resume (the study's spec)")
        try:
            with open(p, "rb") as f:
                head = f.read(6)
        except OSError as e:
            raise StoreError(f"{p} is unreadable ({e.strerror}); check its permissions") from None
        if head != b"\x93NUMPY":
            raise StoreError(f"{p} is not a .npy array (no NUMPY header); it is written by probe run: rebuild it "
                             f"with probe run SPEC.toml --out {self.path} --resume after removing it")
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
        with study_lock(self.path):
            return ds.save(self.path / "directions" / f"{stem or ds.method}.npz")

    def check_model(self) -> str:
        """Decide, without loading anything, whether the study's model may be loaded; -> the name to load.

        Code (file.py:factory, TorchScript) loads only when the user named it (`model=`, equal to the study's
        after resolving paths, or a file with the recorded sha256) or passed trust_model; a file whose sha256
        differs from the one recorded at run time is refused. ModelTrustError (one line) otherwise."""
        from .models.zoo import model_file, model_file_sha256, model_kind, resolve_model
        name = self.model_name
        kind = model_kind(name)
        f = model_file(name)
        code = ("python", "torchscript")
        if f is not None and not f.is_file() and self.manifest.get("model_kind") in code:
            kind = self.manifest["model_kind"]   # a missing file cannot be inspected: the stricter rule applies
        want = self.manifest.get("model_file_sha256")
        arg = resolve_model(self._model_arg, Path.cwd()) if self._model_arg else None
        if arg is not None and arg != name:
            same_fn = kind != "python" or (".py:" in arg and arg.rpartition(":")[2] == name.rpartition(":")[2])
            if not (want and same_fn and model_file_sha256(arg) == want):
                fix = (f"pass --model {_shown(name)} or --trust-model" if kind in code else
                       "drop --model (only file.py:factory and TorchScript models need it) or give the same file "
                       "moved")
                raise ModelTrustError(f"--model {printable(self._model_arg)!r} is not the model of study "
                                      f"{printable(self.name)!r} ({_shown(name)!r}); {fix}")
            name = arg   # the recorded file, moved: the user named it
        elif arg is None and kind in code and not self._trust_model:
            what = "a Python file" if kind == "python" else "a TorchScript archive (code)"
            raise ModelTrustError(f"study {printable(self.name)!r} was made with model {_shown(name)!r}, "
                                  f"{what}; it is not run when a study is opened: pass --model "
                                  f"{_shown(name)} (or --trust-model) to allow it")
        f = model_file(name)
        if want and f is not None:
            if not f.is_file():
                raise StoreError(f"model file {_shown(str(f))!r} of study {printable(self.name)!r} does not "
                                 f"exist; restore it or pass --model with the moved file")
            have = model_file_sha256(name)
            if have != want:
                raise ModelTrustError(f"model file {_shown(str(f))!r} changed since the study was run (sha256 "
                                      f"{have[:12]}… != {want[:12]}…); re-run the study or restore the file")
        return name

    def model(self):
        """The study's Generator (after `check_model`); StoreError if its weights changed since the study ran."""
        if self._model is None:
            from .models import load_model
            name = self.check_model()
            from .models.zoo import model_options
            m = load_model(name, **model_options(self.manifest.get("spec")))
            want = self.manifest.get("weights_hash")
            if want and m.weights_hash != want:
                raise StoreError(f"model {_shown(name)!r} now has weights hash {m.weights_hash}, but the study "
                                 f"was run with {want}; restore those weights or re-run the study")
            self._model = m.to(self.device)
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
