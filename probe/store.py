"""The study directory: the ONLY writer of tables. Every file is written atomically (`probe.io`: tmp + fsync +
os.replace) under the study lock.

Layout and columns: see `probe.schema`. `Study(path)` opens a directory and refuses a newer schema_version. The
store reads and writes files only; it never loads a model (re-rendering a study's rows is `probe.restudy`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from . import schema
from .errors import printable
from .io import (
    StoreError,
    _discard,
    _fsync_dir,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_parquet,
    json_default,
    study_lock,
    write_error,
)

MANIFEST = "manifest.json"
DENSITY = "density.json"
LATENTS = "latents.npy"
PARTS = "parts"
# Rows per row group of the merged interventions.parquet (pyarrow's default size): DuckDB scans row groups in
# parallel and skips those whose min/max exclude a filter (rows are in plan order, so one target's rows span few
# groups); the merge holds at most one pending group (~1M rows x the columns, ~100-200 MB) besides one part.
ROW_GROUP_ROWS = 1 << 20

TABLE_COLUMNS = {
    "samples": schema.SAMPLE_COLUMNS,
    "interventions": schema.INTERVENTION_COLUMNS,
    "effects": schema.EFFECT_COLUMNS,
    "correlations": schema.CORRELATION_COLUMNS,
    "controlling": schema.CONTROLLING_COLUMNS,
    "embedding": schema.EMBEDDING_COLUMNS,
    "evaluation": schema.EVALUATION_COLUMNS,
    "groundtruth": schema.GROUNDTRUTH_COLUMNS,
    "edits": schema.EDIT_COLUMNS,
    "alpha_summary": schema.ALPHA_SUMMARY_COLUMNS,
}
MAKERS = {
    "samples": "probe run SPEC.toml --out STUDY",
    "interventions": "probe run SPEC.toml --out STUDY",
    "effects": "probe stats STUDY",
    "correlations": "probe stats STUDY",
    "controlling": "probe stats STUDY",
    "embedding": "probe embed STUDY",
    "evaluation": "probe discover STUDY (probe.directions.evaluate)",
    "groundtruth": "probe gt-score --out STUDY (probe.directions.groundtruth)",
    "edits": "probe drag --study STUDY, probe invert IMAGE --study STUDY or the dashboard's Drag page",
    "alpha_summary": "probe run SPEC.toml --out STUDY (or probe.query.write_alpha_summary(study))",
}
EDITS = "edits"  # folder of the edits table's images: <run_id>_before.png, <run_id>_after.png
_PNG = b"\x89PNG\r\n\x1a\n"
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


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
        raise StoreError(
            f"table {table!r} lacks required columns {missing}; see probe.schema "
            f"(schema_version {schema.SCHEMA_VERSION})"
        )
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


_MANIFEST_TYPES = {
    "model": (str, "a string"),
    "measures": (dict, "an object"),
    "name": (str, "a string"),
    "space": (str, "a string"),
    "status": (str, "a string"),
    "alphas": (list, "a list"),
    "targets": (list, "a list"),
    "parts_done": (list, "a list"),
    "spec": (dict, "an object"),
    "n_samples": (int, "an integer"),
}
_MANIFEST_REQUIRED = ("model", "measures")
_JSON_NAMES = {
    dict: "an object",
    list: "a list",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true/false",
    type(None): "null",
}


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
        raise StoreError(
            f"study {str(path)!r} has schema_version {v}, newer than this latent-probe reads "
            f"({schema.SCHEMA_VERSION}); upgrade latent-probe"
        )
    for k in _MANIFEST_REQUIRED:
        if k not in m:
            raise StoreError(f"{mf}: field {k!r} is missing; {fix}")
    for k, (t, what) in _MANIFEST_TYPES.items():
        if k in m and (not isinstance(m[k], t) or isinstance(m[k], bool)):
            got = _JSON_NAMES.get(type(m[k]), type(m[k]).__name__)
            raise StoreError(f"{mf}: field {k!r} must be {what}, got {got}; {fix}")
    if not all(
        isinstance(x, dict) and isinstance(x.get("name"), str) and isinstance(x.get("kind"), str)
        for x in m.get("targets", [])
    ):
        raise StoreError(f"{mf}: field 'targets' must list objects with a name and a kind; {fix}")
    if not all(isinstance(x, dict) for x in m["measures"].values()):
        raise StoreError(f"{mf}: field 'measures' must map each measure to an object of its info; {fix}")
    return m


def _edit_json(field: str, v, fix: str):
    """A JSON text column: dict/list -> text; text must parse; None stays None."""
    if v is None:
        return None
    if isinstance(v, str):
        try:
            json.loads(v)
        except ValueError:
            raise StoreError(f"edits row: {field!r} is not valid JSON text; {fix}") from None
        return v
    if isinstance(v, (dict, list)):
        try:
            return json.dumps(v, default=json_default)
        except (TypeError, ValueError) as e:
            raise StoreError(f"edits row: {field!r} cannot be written as JSON ({e}); {fix}") from None
    raise StoreError(f"edits row: {field!r} must be a dict, a list or JSON text, got {type(v).__name__}; {fix}")


def _edit_number(field: str, v, integer: bool = False, lo: float | None = None):
    """A nullable number column (NaN reads as null for floats)."""
    what = "an integer" if integer else "a number"
    if v is None or (not integer and isinstance(v, float) and v != v):
        return None
    if isinstance(v, bool) or not isinstance(
        v, (int, np.integer) if integer else (int, float, np.integer, np.floating)
    ):
        raise StoreError(f"edits row: {field!r} must be {what} or None, got {type(v).__name__} {v!r}")
    v = int(v) if integer else float(v)
    if lo is not None and v < lo:
        raise StoreError(f"edits row: {field!r} must be >= {lo:g}, got {v!r}")
    return v


def edit_row(row: dict, n_samples: int | None = None) -> dict:
    """Check one edits row (see `schema.EDIT_COLUMNS`) -> its column values, JSON columns as text.

    run_id and created may be left out (add_edit fills them); before and after are always set by add_edit."""
    if not isinstance(row, dict):
        raise StoreError(f"edits row: expected a dict of columns, got {_JSON_NAMES.get(type(row), type(row).__name__)}")
    cols = schema.EDIT_COLUMNS
    unknown = [k for k in row if k not in cols]
    if unknown:
        raise StoreError(
            f"edits row: unknown column {unknown[0]!r}; columns are {list(cols)} (put further named "
            f"scores in 'quality', e.g. {{'drift_age': 0.4}})"
        )
    for k in ("before", "after"):
        if row.get(k) is not None:
            raise StoreError(f"edits row: {k!r} is set by Study.add_edit (edits/<run_id>_{k}.png); leave it out")
    out = {c: None for c in cols}
    for k, allowed in (("kind", schema.EDIT_KINDS), ("status", schema.EDIT_STATUSES)):
        if row.get(k) not in allowed:
            raise StoreError(f"edits row: {k!r} must be one of {list(allowed)}, got {row.get(k)!r}")
        out[k] = row[k]
    for k in ("method", "model"):
        v = row.get(k)
        if not isinstance(v, str) or not v.strip():
            raise StoreError(f"edits row: {k!r} must be a non-empty string, got {v!r}")
        out[k] = v
    for k in ("site", "space", "run_id", "created"):
        v = row.get(k)
        if v is not None and not isinstance(v, str):
            raise StoreError(f"edits row: {k!r} must be a string or None, got {type(v).__name__} {v!r}")
        out[k] = v
    if out["space"] is not None and out["space"] not in ("z", "w", "ws"):
        raise StoreError(f"edits row: 'space' must be one of ['z', 'w', 'ws'] or None, got {out['space']!r}")
    if out["run_id"] is not None and not _RUN_ID.match(out["run_id"]):
        raise StoreError(
            f"edits row: 'run_id' {printable(out['run_id'])!r} must be 1-64 letters, digits, '_', '.' "
            f"or '-' (it names the image files); leave it out for a generated one"
        )
    if out["created"] is not None:
        try:
            datetime.fromisoformat(out["created"])
        except ValueError:
            raise StoreError(
                f"edits row: 'created' must be an ISO 8601 time (e.g. 2026-01-31T12:00:00+00:00), got "
                f"{printable(out['created'])!r}; leave it out for now"
            ) from None
    if "steps" not in row:
        raise StoreError("edits row: 'steps' is missing; give the number of steps the run took")
    out["steps"] = _edit_number("steps", row["steps"], integer=True, lo=0)
    if out["steps"] is None:
        raise StoreError("edits row: 'steps' must be an integer, got None; give the number of steps the run took")
    out["seed"] = _edit_number("seed", row.get("seed"), integer=True, lo=0)
    out["sample_id"] = _edit_number("sample_id", row.get("sample_id"), integer=True, lo=0)
    if out["sample_id"] is not None and n_samples is not None and out["sample_id"] >= n_samples:
        raise StoreError(f"edits row: 'sample_id' {out['sample_id']} is not a sample of the study (0..{n_samples - 1})")
    for k in ("handle_dist_px", "outside_change", "seconds"):
        out[k] = _edit_number(k, row.get(k), lo=0)
    out["psnr"] = _edit_number("psnr", row.get("psnr"))
    out["points"] = _edit_json(
        "points", row.get("points"), 'give {"handles": [[x, y], ...], "targets": [[x, y], ...], "final": [[x, y], ...]}'
    )
    out["params"] = _edit_json("params", row.get("params"), "give the method's parameters as a dict")
    out["quality"] = _edit_json("quality", row.get("quality"), "give named scores as a dict") or "{}"
    return out


def _empty(columns: dict) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})


class Study:
    """A study directory: manifest.json, latents.npy, Parquet tables, directions/.  See probe.schema."""

    device = "cpu"  # where the study's model computes: auto | cpu | cuda | cuda:N (commands set their --device)

    def __init__(self, path: str | os.PathLike, model: str | None = None, trust_model: bool = False):
        """Open a study. `model`: the model the user named on the command line (`--model`), `trust_model`: the
        user's `--trust-model`, kept as `model_arg` / `trust_model`. The store never loads a model:
        `probe.restudy` does, and without either a study whose model is code (file.py:factory, TorchScript)
        never loads it (see `probe.restudy.check_model`)."""
        self.path = Path(path)
        mf = self.path / MANIFEST
        if not mf.is_file():
            what = "does not exist" if not self.path.exists() else "is not a study (no manifest.json)"
            raise StoreError(
                f"study directory {str(self.path)!r} {what}; make one with probe run SPEC.toml --out {self.path}"
            )
        self.manifest = _read_manifest(mf, self.path)
        self._density = None
        self.model_arg = model
        self.trust_model = bool(trust_model)

    @classmethod
    def create(cls, path: str | os.PathLike, manifest: dict) -> Study:
        """Make a new study directory with this manifest (schema_version and status are filled in)."""
        path = Path(path)
        with study_lock(path):
            if (path / MANIFEST).exists():
                raise StoreError(f"{str(path)!r} already holds a study; open it with Study(path) or choose a new path")
            m = {"schema_version": schema.SCHEMA_VERSION, "status": "running", "parts_done": [], **manifest}
            m["schema_version"] = schema.SCHEMA_VERSION
            _check_manifest(json.loads(json.dumps(m, default=json_default)), path / MANIFEST, path)
            atomic_write_json(path / MANIFEST, m)
            return cls(path)

    @contextmanager
    def lock(self) -> Iterator[Study]:
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
            raise StoreError(
                f"study {str(self.path)!r} is incomplete (status {self.status!r}); finish it with "
                f"probe run SPEC.toml --out {self.path} --resume"
            )
        if not p.is_file():
            raise StoreError(
                f"study {str(self.path)!r} has no {table} table yet; make it with "
                f"{MAKERS[table].replace('STUDY', str(self.path))}"
            )
        try:
            return pd.read_parquet(p)
        except Exception as e:  # noqa: BLE001 - corrupt file: one line
            raise StoreError(f"{p} is unreadable ({type(e).__name__}); re-make it with {MAKERS[table]}") from None

    def write_table(self, table: str, df: pd.DataFrame) -> Path:
        """Check required columns (probe.schema), cast dtypes, write atomically."""
        ms = self.measures if table in ("samples", "interventions") else ()
        with study_lock(self.path):
            return atomic_write_parquet(self._table_path(table), conform(table, df, ms))

    # ---- edits: drag and inversion runs ---------------------------------------------------------
    def edits(self) -> pd.DataFrame:
        """The edits table (`schema.EDIT_COLUMNS`, one row per drag or inversion run, oldest first); an empty
        frame with those columns when the study has none."""
        if not self._table_path("edits").is_file():
            return _empty(schema.EDIT_COLUMNS)
        return conform("edits", self.table("edits"))

    def add_edit(self, row: dict, before_png: bytes, after_png: bytes) -> str:
        """Record one drag or inversion run -> its run_id.

        row: the columns of `schema.EDIT_COLUMNS` (run_id and created are filled in when left out; points,
        quality and params may be dicts). before_png / after_png: PNG bytes (e.g. `probe.figures.img_to_png_bytes`)
        saved as edits/<run_id>_before.png and _after.png. Under the study lock, the images are written first,
        then the table (each atomically): a crash leaves at most unreferenced images, never a row without them."""
        for name, data in (("before_png", before_png), ("after_png", after_png)):
            if not isinstance(data, (bytes, bytearray)) or not bytes(data[:8]) == _PNG:
                got = type(data).__name__ if not isinstance(data, (bytes, bytearray)) else "bytes that are not a PNG"
                raise StoreError(
                    f"add_edit: {name} must be PNG bytes (e.g. probe.figures.img_to_png_bytes(img)), got {got}"
                )
        n = self.manifest.get("n_samples")
        out = edit_row(row, int(n) if n is not None else None)
        with study_lock(self.path):
            df = self.edits()
            taken = set(df["run_id"].dropna())
            if out["run_id"] is None:
                k = len(df) + 1
                while f"{out['kind']}-{k:04d}" in taken:
                    k += 1
                out["run_id"] = f"{out['kind']}-{k:04d}"
            elif out["run_id"] in taken:
                raise StoreError(
                    f"edits row: run_id {out['run_id']!r} is already in study {printable(self.name)!r}; "
                    f"leave it out for a generated one"
                )
            if out["created"] is None:
                out["created"] = datetime.now(UTC).isoformat(timespec="seconds")
            rid = out["run_id"]
            for which, data in (("before", before_png), ("after", after_png)):
                out[which] = f"{EDITS}/{rid}_{which}.png"
                atomic_write_bytes(self.path / out[which], bytes(data))
            new = conform("edits", pd.DataFrame([out], columns=list(schema.EDIT_COLUMNS)))
            self.write_table("edits", pd.concat([df, new], ignore_index=True) if len(df) else new)
        return rid

    def edit_png(self, run_id: str, which: str = "after") -> bytes:
        """PNG bytes of an edits row's image; which: before | after. Only files inside STUDY/edits/ are read (a
        table naming another path is refused as damaged)."""
        if which not in ("before", "after"):
            raise StoreError(f"edit_png: which must be 'before' or 'after', got {which!r}")
        df = self.edits()
        rows = df[df["run_id"] == run_id]
        if not len(rows):
            raise StoreError(
                f"run_id {printable(str(run_id))!r} is not in the edits table of study "
                f"{printable(self.name)!r}; run ids are e.g. {list(df['run_id'])[-5:]}"
            )
        name = str(rows.iloc[-1][which])
        p = self.path / name
        if not p.resolve().is_relative_to((self.path / EDITS).resolve()):
            raise StoreError(
                f"edits row {printable(str(run_id))!r}: {which} image {printable(name)!r} is not in "
                f"{EDITS}/ of the study; the edits table is damaged: re-record the run"
            )
        try:
            return p.read_bytes()
        except OSError as e:
            raise StoreError(f"{p} is unreadable ({e.strerror}); the edits row {run_id!r} lost its image") from None

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
                    empty = conform(
                        "interventions",
                        pd.DataFrame({c: pd.Series(dtype=t) for c, t in schema.INTERVENTION_COLUMNS.items()}),
                        (),
                    )
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
            raise StoreError(
                f"study {str(self.path)!r} has no latents.npy; rebuild it from the seed with "
                f"probe run SPEC.toml --out {self.path} --resume (the study's spec)"
            )
        try:
            with open(p, "rb") as f:
                head = f.read(6)
        except OSError as e:
            raise StoreError(f"{p} is unreadable ({e.strerror}); check its permissions") from None
        if head != b"\x93NUMPY":
            raise StoreError(
                f"{p} is not a .npy array (no NUMPY header); it is written by probe run: rebuild it "
                f"with probe run SPEC.toml --out {self.path} --resume after removing it"
            )
        try:
            lat = np.load(p, allow_pickle=False)
        except Exception as e:  # noqa: BLE001 - corrupt, truncated or pickled file: one line
            raise StoreError(
                f"{p} is unreadable ({type(e).__name__}: {str(e).splitlines()[0][:120]}); it is "
                f"written by probe run: re-run the study"
            ) from None
        n = self.manifest.get("n_samples")
        if lat.dtype.kind != "f" or lat.ndim < 2 or (n is not None and len(lat) != int(n)):
            raise StoreError(
                f"{p} holds {lat.dtype} {list(lat.shape)}, not the study's {n} float latents "
                f"[N, *shape]; re-run the study"
            )
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
                raise StoreError(
                    f"{self.path / DENSITY} is unreadable ({type(e).__name__}); it is written by "
                    f"probe run: re-run the study"
                ) from None
        return self._density

    def directions(self) -> dict:
        """{file stem: DirectionSet} from directions/*.npz."""
        from .directions.base import DirectionSet

        return {p.stem: DirectionSet.load(p) for p in sorted((self.path / "directions").glob("*.npz"))}

    def save_directions(self, ds, stem: str | None = None) -> Path:
        """Save a DirectionSet as directions/<stem or ds.method>.npz (atomic)."""
        with study_lock(self.path):
            return ds.save(self.path / "directions" / f"{stem or ds.method}.npz")

    def __repr__(self) -> str:
        return f"Study({str(self.path)!r}, name={self.name!r}, status={self.status!r})"
