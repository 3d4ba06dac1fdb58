"""DuckDB over a study's interventions.parquet: filtered reads, distinct targets, counts and grouped aggregates.

Nothing here loads the whole table: DuckDB pushes the column list and the predicates into the Parquet scan (row
groups whose min/max exclude a filter are skipped), and group-bys run in DuckDB with a memory limit. Column names
are checked against the file's schema before they are quoted into SQL; every value is a bound parameter (`?`).
duckdb connections are not thread-safe: each thread gets its own (thread-local).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ProbeError

MEMORY_LIMIT = "1GB"  # per connection; DuckDB spills larger group-bys to its temp directory
STRING_COLUMNS = ("target_kind", "target", "method", "walk")


class QueryError(ProbeError):
    """A query names a column the interventions table lacks, or a filter of the wrong shape."""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Query:
    """Queries over the interventions table of a complete study.

    Query(study) raises the study's StoreError (incomplete, missing table) at once. Results come back as pandas
    frames with the schema dtypes of probe.schema (strings as "string")."""

    def __init__(self, study):
        self.study = study
        if not study.has("interventions"):
            study.table("interventions")  # raises the one-line StoreError naming the fix
            raise QueryError(f"study {str(study.path)!r} has no interventions table")  # pragma: no cover
        self.path = Path(study.path) / "interventions.parquet"
        self._local = threading.local()
        self._columns: list[str] | None = None
        self.columns  # noqa: B018             a damaged file fails here, in one line

    # ---- plumbing -------------------------------------------------------------------------------------------
    def _con(self):
        con = getattr(self._local, "con", None)
        if con is None:
            import duckdb

            con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "enable_object_cache": True})
            try:
                con.execute("SET enable_progress_bar = false")  # never draw on the user's terminal
            except duckdb.InvalidInputException:  # a Jupyter kernel without ipywidgets: DuckDB draws no bar there
                pass
            self._local.con = con
        return con

    def _src(self) -> str:
        return "read_parquet(?)"

    def _unreadable(self, e: Exception):
        from .store import MAKERS, StoreError

        return StoreError(f"{self.path} is unreadable ({type(e).__name__}); re-make it with {MAKERS['interventions']}")

    def sql(self, sql: str, params: Sequence = ()) -> pd.DataFrame:
        """Run `sql` in which `{src}` stands for the interventions table; params bind the `?` after it."""
        import duckdb

        con = self._con()
        try:
            cur = con.execute(sql.replace("{src}", self._src()), [str(self.path), *params])
        except (duckdb.IOException, duckdb.InvalidInputException) as e:
            raise self._unreadable(e) from None
        return cur.df()

    @property
    def columns(self) -> list[str]:
        """Column names of the interventions table (from the Parquet footer)."""
        if self._columns is None:
            import pyarrow.parquet as pq

            try:
                self._columns = list(pq.read_schema(self.path).names)
            except Exception as e:  # noqa: BLE001 - truncated or corrupt file: one line
                raise self._unreadable(e) from None
        return self._columns

    def _check(self, cols: Sequence[str], what: str = "columns") -> list[str]:
        cols = list(cols)
        bad = [c for c in cols if c not in self.columns]
        if bad:
            raise QueryError(
                f"{what}: {bad} not in the interventions table of study {self.study.name!r}; columns are {self.columns}"
            )
        return cols

    def _where(self, where: Mapping | None, alpha=None) -> tuple[str, list]:
        """-> (" WHERE ...", params). where: {column: value or list of values}; `!column`: not in the values."""
        parts, params = [], []
        for k, v in (where or {}).items():
            neg = k.startswith("!")
            col = self._check([k[1:] if neg else k], "where")[0]
            vals = list(v) if isinstance(v, (list, tuple, set, np.ndarray, pd.Series, pd.Index)) else [v]
            vals = [x.item() if isinstance(x, np.generic) else x for x in vals]
            if not vals:
                parts.append("TRUE" if neg else "FALSE")
                continue
            parts.append(f"{'NOT ' if neg else ''}list_contains(?, {_ident(col)})")
            params.append(vals)
        if alpha is not None:
            parts.append("alpha = ?")
            params.append(float(alpha))
        return (" WHERE " + " AND ".join(parts) if parts else ""), params

    @staticmethod
    def _types(df: pd.DataFrame) -> pd.DataFrame:
        from . import schema

        for c in df.columns:
            t = schema.INTERVENTION_COLUMNS.get(c)
            if t is not None and str(df[c].dtype) != t:
                df[c] = df[c].astype(t)
        return df

    # ---- reads ----------------------------------------------------------------------------------------------
    def interventions(
        self,
        columns: Sequence[str] | None = None,
        where: Mapping | None = None,
        alpha=None,
        distinct: bool = False,
        order_by: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Rows of the interventions table (file order unless order_by), only `columns` (default all).

        where: {column: value | [values]}; a key "!column" excludes the values. alpha: one alpha value."""
        cols = self._check(columns if columns is not None else self.columns)
        w, params = self._where(where, alpha)
        sel = ", ".join(_ident(c) for c in cols)
        order = f" ORDER BY {', '.join(_ident(c) for c in self._check(order_by, 'order_by'))}" if order_by else ""
        return self._types(self.sql(f"SELECT {'DISTINCT ' if distinct else ''}{sel} FROM {{src}}{w}{order}", params))

    def count(self, where: Mapping | None = None) -> int:
        """Number of rows (matching `where`); from the Parquet footer when unfiltered."""
        if not where:
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(self.path).metadata.num_rows)
        w, params = self._where(where)
        return int(self.sql(f"SELECT count(*) AS n FROM {{src}}{w}", params)["n"].iloc[0])

    def targets(self) -> pd.DataFrame:
        """Distinct targets with their kind, method and walk, sorted by target.  -> [T rows]"""
        return self._types(
            self.sql(
                "SELECT target, first(target_kind) AS target_kind, first(method) AS method, "
                "first(walk) AS walk FROM {src} GROUP BY target ORDER BY target"
            )
        )

    def sample_ids(self, where: Mapping | None = None, limit: int | None = None) -> np.ndarray:
        """Sorted distinct sample_ids (matching `where`), the first `limit` of them.  # [N] int64"""
        w, params = self._where(where)
        lim = ""
        if limit is not None:
            lim, params = " LIMIT ?", [*params, int(limit)]
        d = self.sql(f"SELECT DISTINCT sample_id FROM {{src}}{w} ORDER BY sample_id{lim}", params)
        return d["sample_id"].to_numpy(np.int64)

    def alphas(self) -> list[float]:
        """Sorted distinct alpha values."""
        return [float(a) for a in self.sql("SELECT DISTINCT alpha FROM {src} ORDER BY alpha")["alpha"]]

    # ---- aggregates -----------------------------------------------------------------------------------------
    def alpha_summary(
        self, values: Sequence[str], by: Sequence[str] = ("target",), where: Mapping | None = None, level: float = 0.95
    ) -> pd.DataFrame:
        """Mean, sd and t CI of each column of `values` per (*by, alpha), NaN dropped (as probe.stats.alpha_summary).

        -> long frame [*by, value (the column name), alpha, n, mean, sd, lo, hi], groups with n = 0 left out."""
        from scipy import stats as sst

        values = self._check(values, "values")
        by = [b for b in self._check(by, "by") if b != "alpha"]
        w, params = self._where(where)
        keys = ", ".join(_ident(b) for b in [*by, "alpha"])
        aggs = []
        for i, v in enumerate(values):  # one scan for all the columns
            f = f"FILTER (WHERE isfinite({_ident(v)}))"
            aggs += [
                f"count({_ident(v)}) {f} AS n{i}",
                f"avg({_ident(v)}) {f} AS mean{i}",
                f"stddev_samp({_ident(v)}) {f} AS sd{i}",
            ]
        frames = []
        if values:
            d = self.sql(f"SELECT {keys}, {', '.join(aggs)} FROM {{src}}{w} GROUP BY {keys}", params)
            for i, v in enumerate(values):
                r = d[[*by, "alpha"]].assign(n=d[f"n{i}"], mean=d[f"mean{i}"], sd=d[f"sd{i}"], value=v)
                frames.append(r[r["n"] > 0])
        s = (
            pd.concat(frames, ignore_index=True)
            if frames
            else pd.DataFrame(columns=[*by, "alpha", "n", "mean", "sd", "value"])
        )
        s = self._types(s.sort_values(["value", *by, "alpha"], kind="stable").reset_index(drop=True))
        s["value"] = s["value"].astype("string")
        s["n"] = s["n"].astype(np.int64)
        s["mean"] = s["mean"].astype(float)
        s["sd"] = s["sd"].astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            half = sst.t.ppf(0.5 + level / 2, s["n"] - 1) * s["sd"] / np.sqrt(s["n"])
        half = np.where(s["n"] > 1, half, 0.0)
        s["sd"] = s["sd"].fillna(0.0)
        s["lo"], s["hi"] = s["mean"] - half, s["mean"] + half
        return s[[*by, "value", "alpha", "n", "mean", "sd", "lo", "hi"]]

    def ols_sums(
        self, measures: Sequence[str], where: Mapping | None = None, by: Sequence[str] = ("method", "target")
    ) -> pd.DataFrame:
        """Sufficient statistics of the OLS d_<measure> ~ 1 + alpha per group, non-finite rows dropped.

        -> one row per (group, measure) with n > 0: *by, measure, n, sxx, sxy, syy (centred sums), yy (sum y^2)."""
        cols = self._check([f"d_{m}" for m in measures], "measures")
        by = self._check(by, "by")
        w, params = self._where(where)
        keys = ", ".join(_ident(b) for b in by)
        aggs = []
        for i, c in enumerate(cols):
            y, f = _ident(c), f"FILTER (WHERE isfinite({_ident(c)}) AND isfinite(alpha))"
            aggs += [
                f"regr_count({y}, alpha) {f} AS n{i}",
                f"regr_sxx({y}, alpha) {f} AS sxx{i}",
                f"regr_sxy({y}, alpha) {f} AS sxy{i}",
                f"regr_syy({y}, alpha) {f} AS syy{i}",
                f"sum({y} * {y}) {f} AS yy{i}",
            ]
        if not cols:
            return pd.DataFrame(columns=[*by, "measure", "n", "sxx", "sxy", "syy", "yy"])
        d = self.sql(f"SELECT {keys}, {', '.join(aggs)} FROM {{src}}{w} GROUP BY {keys}", params)
        out = []
        for i, m in enumerate(measures):
            r = d[[*by]].copy()
            r["measure"] = m
            for k in ("n", "sxx", "sxy", "syy", "yy"):
                r[k] = d[f"{k}{i}"].to_numpy(float)
            out.append(r[r["n"] > 0])
        return pd.concat(out, ignore_index=True)


# ---- the stored per-(target, alpha) summary ---------------------------------------------------------------------
SUMMARY_TABLE = "alpha_summary"
SUMMARY_EXTRA = ("dlogp", "logp", "norm")  # summarised besides d_<measure>
SUMMARY_BY = ("target", "target_kind", "method", "walk")  # one target per group: kind, method, walk ride along


def summary_values(study, columns: Sequence[str]) -> list[str]:
    """The interventions columns the stored summary covers: d_<measure> per study measure, then dlogp, logp, norm
    (those present in `columns`)."""
    cols = set(columns)
    return [*(f"d_{m}" for m in study.measures if f"d_{m}" in cols), *(c for c in SUMMARY_EXTRA if c in cols)]


def compute_alpha_summary(study, q: Query | None = None) -> pd.DataFrame:
    """Query.alpha_summary of every summary column per (target, alpha): one DuckDB scan of interventions.parquet.

    -> [target, target_kind, method, walk, value, alpha, n, mean, sd, lo, hi], one row per (column, target,
    alpha) with n > 0, sorted by value, target, alpha."""
    q = q if q is not None else Query(study)
    return q.alpha_summary(summary_values(study, q.columns), by=list(SUMMARY_BY))


def summary_fresh(study) -> bool:
    """Whether alpha_summary.parquet exists and is not older than interventions.parquet (mtime)."""
    p, iv = Path(study.path) / f"{SUMMARY_TABLE}.parquet", Path(study.path) / "interventions.parquet"
    try:
        return p.stat().st_mtime_ns >= iv.stat().st_mtime_ns
    except OSError:
        return False


def read_alpha_summary(study) -> pd.DataFrame | None:
    """The stored summary when it is fresh (`summary_fresh`), with the dtypes of Query.alpha_summary; else None
    (absent, stale or unreadable: callers scan instead)."""
    from .io import StoreError

    if not summary_fresh(study):
        return None
    try:
        s = study.table(SUMMARY_TABLE)
    except StoreError:
        return None
    return s.reset_index(drop=True)


def write_alpha_summary(study, s: pd.DataFrame | None = None) -> pd.DataFrame:
    """Compute (unless given) and store alpha_summary.parquet of a complete study (atomic, under the study lock).
    The runner calls this once the interventions are merged; readers use it while it is fresh.  -> the summary"""
    s = compute_alpha_summary(study) if s is None else s
    study.write_table(SUMMARY_TABLE, s)
    return s


def study_alpha_summary(study, write: bool = False) -> pd.DataFrame:
    """The per-(target, alpha) summary: the stored file when fresh, else one scan (stored when `write`; a study
    directory that cannot be written is left as it is)."""
    from .io import StoreError

    s = read_alpha_summary(study)
    if s is not None:
        return s
    s = compute_alpha_summary(study)
    if write:
        try:
            write_alpha_summary(study, s)
        except (StoreError, OSError):
            pass
    return s
