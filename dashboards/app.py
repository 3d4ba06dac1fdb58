"""Dash app factory: `create_app(study_dir)` -> a multi-page dash.Dash reading one study directory.

Pages live in `dashboards/pages/` (one module per page: PATH, NAME, layout(ctx), register(app, ctx)); an
explicit router maps the URL path to a page, so several apps can be built in one process (tests). Figures come
from `probe.figures` only. Every callback answers bad input with a one-line message (`ctx.guard`), never a
traceback. The app reads only from the study root it was given; every request is bounded (`dashboards.limits`)
and, on a non-loopback bind, needs the access token (`dashboards.security`).
"""

from __future__ import annotations

import functools
import gc
import json
import os
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path

import dash
import numpy as np
from dash import Input, Output, dcc, html
from dash.development.base_component import Component
from flask import send_file

from probe.errors import ProbeError
from probe.schema import TABLES
from probe.store import Study

from . import security
from .limits import LIMITS, Limits
from .pages import PAGES
from .pages import _util as page_util

ASSETS = Path(__file__).parent / "assets"
STUDY_FILES = ("manifest.json", "directions", *(f"{t}.parquet" for t in TABLES))  # what page layouts read


class PathError(ProbeError):
    """A path asked for by the browser lies outside the study root."""


class SummaryPending(ProbeError):
    """The per-alpha summary of an older study is still being computed (shown as a note, not an error)."""


class JobBusy(ProbeError):
    """A second background job asked for while one runs (per browser session and per model)."""


def within(root: str | os.PathLike, rel: str) -> Path:
    """Resolve `rel` inside `root`; PathError if it escapes (.., absolute paths, symlinks out)."""
    root = Path(root).resolve()
    p = (root / rel).resolve()
    if p != root and root not in p.parents:
        raise PathError(f"path {rel!r} lies outside the study root {str(root)!r}; name a file inside it")
    return p


def error_box(msg: str, id: str | None = None) -> html.Div:
    """One-line error message (red box) shown in place of a figure or table."""
    kw = {"id": id} if id else {}
    return html.Div(str(msg), className="probe-error", **kw)


def note_box(msg: str) -> html.Div:
    return html.Div(str(msg), className="probe-note")


def _is_view(v) -> bool:
    from plotly.basedatatypes import BaseFigure

    return isinstance(v, (BaseFigure, Component)) or (isinstance(v, dict) and "data" in v and "layout" in v)


class Wired(dict):
    """A view already in its JSON form: wire() passes it through (memos that hold memoised views)."""


def wire(v):
    """A figure, component tree or figure dict (or a tuple of values with some) -> the JSON-native form Dash sends
    (plotly's encoder run once: numpy arrays as typed-array dicts, NaN as null); anything else unchanged."""
    from plotly.io.json import to_json_plotly

    if isinstance(v, tuple) and any(_is_view(x) for x in v):
        return tuple(wire(x) for x in v)
    if isinstance(v, Wired) or not _is_view(v):
        return v
    out = json.loads(to_json_plotly(v))
    return Wired(out) if isinstance(out, dict) else out


def settle() -> None:
    """Collect the cyclic garbage made since the last call, then move every object alive now (the memoised
    views' JSON among them) to the GC's permanent generation: later collections scan only newer objects. Without
    it a full collection walks every memoised list and dict, and each request waits for it (about 0.4 s at 400k
    objects on the shared 2-core VM). Frozen objects are still freed when their last reference goes."""
    gc.collect()
    gc.freeze()


class Context:
    """What pages share: the study, a lazily loaded model, small caches, the background job registry."""

    MEMO_SIZE = 256  # memoised views kept (least recently used dropped)
    WIRE = True  # memoise views in their JSON form (False: as built, encoded on every request)
    # keep memoised views out of the cyclic GC's full collections (False: as before, A/B; PROBE_GC_FREEZE=0 for
    # long-lived processes that host many apps, such as the test suite: frozen cyclic garbage is never freed)
    FREEZE = os.environ.get("PROBE_GC_FREEZE", "1") != "0"
    JOBS_KEPT = 32  # finished jobs kept for their results (oldest dropped)

    def __init__(self, study: Study, limits: Limits = LIMITS):
        self.study = study
        self.limits = limits
        self.root = study.path.resolve()
        self._lock = threading.Lock()
        self._tables: dict = {}
        self._thumbs: dict = {}
        self._memo: OrderedDict = OrderedDict()
        self._memo_lock = threading.Lock()
        self._flight: dict = {}  # memo key -> lock held while one request computes it (the others wait for it)
        self._summary_lock = threading.Lock()
        self._summary_job: dict | None = None
        self.jobs: dict[str, dict] = {}
        self._jobs_lock = threading.Lock()
        self._manifest_key = self._manifest_stamp()

    # ---- data ----------------------------------------------------------------------------------
    def _manifest_stamp(self):
        try:
            st = os.stat(self.root / "manifest.json")
            return st.st_mtime_ns, st.st_size
        except OSError:
            return None

    def sync(self) -> None:
        """Re-read manifest.json when a writer changed it (status, parts done: a study that probe demo is still
        filling); tables follow their own file stamps."""
        key = self._manifest_stamp()
        if key != self._manifest_key:
            try:
                self.study.manifest = Study(self.root).manifest
            except ProbeError:
                return
            self._manifest_key = key

    def stamp(self, *files: str) -> tuple:
        """(name, mtime_ns, size) of files / folders in the study root: the key that invalidates caches when
        a table is rewritten (probe stats, probe embed, probe discover) while the dashboard runs."""
        self.sync()
        out = []
        for f in files:
            try:
                st = os.stat(self.root / f)
                out.append((f, st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((f, None, None))
        return tuple(out)

    def table(self, name: str):
        """Study table, cached per file version (path + mtime + size); a StoreError names the command that
        makes it when absent."""
        key = self.stamp(f"{name}.parquet", "manifest.json")
        hit = self._tables.get(name)
        if hit is None or hit[0] != key:
            hit = (key, self.study.table(name))
            self._tables[name] = hit
        return hit[1]

    IV = ("interventions.parquet", "manifest.json")

    def query(self):
        """probe.query.Query over the interventions table, renewed when the file changes (the whole table is
        never loaded into the dashboard: views ask for the rows, columns or aggregates they show)."""
        from probe.query import Query

        key = self.stamp(*self.IV)
        hit = self._tables.get("query")
        if hit is None or hit[0] != key:
            hit = (key, Query(self.study))
            self._tables["query"] = hit
        return hit[1]

    def iv_targets(self):
        """Distinct targets of the interventions (target, target_kind, method, walk) sorted by target, cached per
        file version: from the per-alpha summary when it is ready, else a DuckDB scan of the target columns."""

        def make():
            try:
                full = self._summary(wait=self.SUMMARY_WAIT_S)
            except SummaryPending:
                return self.query().targets()
            d = full[["target", "target_kind", "method", "walk"]].drop_duplicates("target")
            return d.sort_values("target", kind="stable").reset_index(drop=True)

        return self.memo(("iv-targets",), make, *self.IV)

    def iv_count(self) -> int:
        return self.memo(("iv-count",), lambda: self.query().count(), *self.IV)

    def iv_summary(self, values, by=("target",), targets=None):
        """Per-alpha mean / CI of interventions columns `values` (d_<measure>, dlogp, logp, norm) for `targets`
        (default all), per target (by=("target",)) or for one target (by=()): rows of one cached summary of every
        target x alpha x column (Query.alpha_summary, one DuckDB scan per file version)."""
        full = self._summary(wait=self.SUMMARY_WAIT_S)
        s = full[full["value"].isin(list(values))]
        if targets is not None:
            s = s[s["target"].isin([str(t) for t in targets])]
        s = s.drop(columns=["target_kind", "method", "walk"]).reset_index(drop=True)
        return s if tuple(by) == ("target",) else s.drop(columns="target")

    SUMMARY_WAIT_S = 2.0  # a request waits this long for a summary being computed, then shows a note

    def _summary(self, wait: float):
        """The study's per-(target, alpha) summary (probe.query.study_alpha_summary: alpha_summary.parquet when
        it is fresh, else one DuckDB scan in a background thread, stored for the next open), cached per version
        of interventions.parquet. SummaryPending (one line) when the scan takes longer than `wait` seconds."""
        key = self.stamp(*self.IV)
        with self._summary_lock:  # concurrent first requests share one computation
            job = self._summary_job
            if job is None or job["key"] != key or job["error"] is not None:
                job = {"key": key, "done": threading.Event(), "value": None, "error": None}
                self._summary_job = job

                def run(job=job):
                    from probe.query import study_alpha_summary

                    try:
                        job["value"] = study_alpha_summary(self.study, write=True)
                    except Exception as e:  # noqa: BLE001 - raised in the requests that wait for it
                        job["error"] = e
                    job["done"].set()

                threading.Thread(target=run, name="probe-summary", daemon=True).start()
        if not job["done"].wait(wait):
            raise SummaryPending(
                f"summarising {self.iv_count():,} rows of interventions.parquet (once per study, "
                f"then stored in alpha_summary.parquet); choose again in a few seconds"
            )
        if job["error"] is not None:
            raise job["error"]
        return job["value"]

    def directions(self) -> dict:
        """The study's DirectionSets by stem, cached until directions/ changes."""
        return self.memo(("directions",), self.study.directions, "directions")

    def memo(self, key: tuple, fn, *files: str):
        """fn() memoised under `key` and the stamps of `files` (pure views only: figures from tables, never
        rendering). Exceptions are not cached. Figures and component trees (alone or in a tuple) are kept in
        their JSON form (`wire`), so a repeated request only re-encodes plain lists and dicts."""
        k = (key, self.stamp(*files))
        with self._memo_lock:
            if k in self._memo:
                self._memo.move_to_end(k)
                return self._memo[k]
            gate = self._flight.setdefault(k, threading.Lock())
        with gate:  # one computation per key: concurrent requests for a view being built wait for it
            with self._memo_lock:
                if k in self._memo:
                    self._memo.move_to_end(k)
                    return self._memo[k]
            try:
                v = wire(fn()) if self.WIRE else fn()
            except BaseException:
                with self._memo_lock:
                    self._flight.pop(k, None)
                raise
            with self._memo_lock:
                self._memo[k] = v
                while len(self._memo) > self.MEMO_SIZE:
                    self._memo.popitem(last=False)
                self._flight.pop(k, None)
            if self.FREEZE:
                settle()
        return v

    def has(self, name: str) -> bool:
        self.sync()
        return self.study.has(name)

    def latents(self) -> np.ndarray:
        """Base latents (cached; a study's latents.npy never changes once written)."""
        if "latents" not in self._tables:
            self._tables["latents"] = self.study.latents()
        return self._tables["latents"]

    def model(self):
        from probe.restudy import study_model

        with self._lock:
            return study_model(self.study)

    def images(self, sample_ids) -> np.ndarray:
        """Base images of samples.  # [N, 3, H, W] in [-1, 1] (torch tensor)"""
        import torch

        from probe.restudy import study_model

        ids = np.asarray(sample_ids, dtype=np.int64)
        lat = self.latents()
        if len(ids) and (ids.min() < 0 or ids.max() >= len(lat)):
            raise ProbeError(f"sample_id must lie in 0..{len(lat) - 1}")
        with self._lock, torch.no_grad():
            return study_model(self.study).synthesize(torch.from_numpy(lat[ids]), self.study.space)

    def render(self, sample_ids, target, alphas):
        """probe.restudy.rerender under the model lock.  # -> img [N, A, 3, H, W]"""
        from probe.restudy import rerender

        with self._lock:
            return rerender(self.study, sample_ids, target, alphas)

    def thumb(self, sample_id: int, size: int = 96) -> str:
        """Data URI of one sample's image (cached)."""
        from probe.figures import img_to_data_uri

        key = (int(sample_id), size)
        if key not in self._thumbs:
            self._thumbs[key] = img_to_data_uri(self.images([int(sample_id)])[0], size)
        return self._thumbs[key]

    def alphas(self) -> list[float]:
        a = self.study.alphas
        return a if a else [-2.0, -1.0, 0.0, 1.0, 2.0]

    # ---- jobs ----------------------------------------------------------------------------------
    def start_job(self, fn, **info) -> str:
        """Run fn(job) in a daemon thread; job is a dict with 'stop' (threading.Event) the fn must poll.
        JobBusy (one line) while another job of this browser session or on this model runs; the job is stopped
        at `limits.job_time_limit_s` (state 'error' with a message)."""
        session, model = security.session_id(), self.study.model_name
        limit = float(self.limits.job_time_limit_s)
        with self._jobs_lock:
            for j in self.jobs.values():
                if j["state"] != "running":
                    continue
                if j["session"] == session:
                    raise JobBusy(f"a job is already running (started {j['started']}); press Stop or wait")
                if j["model"] == model:
                    raise JobBusy(
                        f"a job of another browser session is running on this model (started "
                        f"{j['started']}); wait until it ends"
                    )
            done = [k for k, j in self.jobs.items() if j["state"] != "running"]
            for k in done[: max(0, len(done) - self.JOBS_KEPT + 1)]:
                del self.jobs[k]
            jid = uuid.uuid4().hex[:12]
            job = {
                "id": jid,
                "stop": threading.Event(),
                "state": "running",
                "step": 0,
                "error": None,
                "session": session,
                "model": model,
                "started": time.strftime("%H:%M:%S"),
                **info,
            }
            self.jobs[jid] = job

        def expire():
            job["timed_out"] = True
            job["stop"].set()

        timer = threading.Timer(limit, expire)
        timer.daemon = True

        def run():
            try:
                fn(job)
                state, error = ("stopped" if job["stop"].is_set() else "done"), None
            except ProbeError as e:
                state, error = "error", str(e)
            except Exception as e:  # noqa: BLE001 - shown as one line in the page
                state, error = "error", f"{type(e).__name__}: {e}"
            finally:
                timer.cancel()
            if job.get("timed_out"):
                state, error = "error", f"stopped at the time limit of {limit:g} s per job; use fewer steps"
            job.update(state=state, error=error)

        job["thread"] = threading.Thread(target=run, name=f"probe-job-{jid}", daemon=True)
        timer.start()
        job["thread"].start()
        return jid

    def job(self, jid: str | None) -> dict | None:
        """The job `jid` if it belongs to the current browser session (any job outside a request), else None."""
        j = self.jobs.get(jid) if isinstance(jid, str) else None
        s = security.session_id()
        return None if j is None or (s is not None and j["session"] not in (None, s)) else j

    # ---- callbacks -----------------------------------------------------------------------------
    def guard(self, n_out: int = 1, err_index: int = 0):
        """Decorator: a callback's ProbeError/other exception becomes an error box at output `err_index`."""

        def deco(fn):
            @functools.wraps(fn)
            def wrapped(*a, **k):
                try:
                    return fn(*a, **k)
                except dash.exceptions.PreventUpdate:
                    raise
                except Exception as e:  # noqa: BLE001
                    msg = str(e) if isinstance(e, ProbeError) else f"{type(e).__name__}: {e}"
                    out = [dash.no_update] * n_out
                    out[err_index] = note_box(msg) if isinstance(e, SummaryPending) else error_box(msg)
                    return out[0] if n_out == 1 else tuple(out)

            return wrapped

        return deco


def _nav() -> html.Nav:
    return html.Nav(
        [dcc.Link(p.NAME, href=p.PATH, id=f"nav-{p.KEY}", className="nav-link") for p in PAGES], className="probe-nav"
    )


def create_app(
    study_dir: str | os.PathLike,
    title: str | None = None,
    *,
    token: str | None = None,
    limits: Limits = LIMITS,
    model: str | None = None,
    trust_model: bool = False,
) -> dash.Dash:
    """Build the dashboard for one study directory; ProbeError (one line) if it is not a study.

    token: required on every request when set (`?token=` once, then an HttpOnly cookie); `probe dash` sets one
    for non-loopback binds. limits: the request bounds (`dashboards.limits`). model / trust_model: `--model` /
    `--trust-model` from the command line, for a study whose model is code (`probe.restudy.check_model` checks them)."""
    study = Study(study_dir, model=model, trust_model=trust_model)
    ctx = Context(study, limits)
    app = security.EscapedDash(
        __name__,
        title=title or f"latent-probe: {study.name}",
        assets_folder=str(ASSETS),
        suppress_callback_exceptions=True,
        update_title=None,
    )
    security.install(app.server, token, limits.max_request_bytes)
    app.layout = html.Div(
        [
            dcc.Location(id="url"),
            html.Header([html.H1(f"latent-probe: {study.name}", id="title"), _nav()], className="probe-header"),
            html.Main(id="page", className="probe-page"),
            page_util.csv_store(),
        ]
    )
    by_path = {p.PATH: p for p in PAGES}

    @app.callback(Output("page", "children"), Input("url", "pathname"))
    @ctx.guard()
    def route(path):
        page = by_path.get((path or "/").rstrip("/") or "/")
        if page is None:
            return error_box(f"no page at {path!r}; pages: {', '.join(by_path)}", id="page-error")
        return ctx.memo(("layout", page.PATH), lambda: page.layout(ctx), *STUDY_FILES)

    for p in PAGES:
        p.register(app, ctx)
    page_util.register(app)

    @app.server.route("/study-file/<path:rel>")
    def study_file(rel):  # only files inside the study root; never a listing
        if "\0" in rel:
            return security.plain("bad study-file path: it contains a NUL byte", 400)
        try:
            p = within(ctx.root, rel)
            ok = p.is_file() and p.suffix in (".json", ".parquet", ".npz", ".npy", ".html")
        except PathError:
            return security.plain("study-file path lies outside the study root", 403)
        except (OSError, ValueError):  # name too long, ...
            ok = False
        if not ok:
            return security.plain("no such file in this study (served: .json .parquet .npz .npy .html)", 404)
        if p.suffix == ".json":
            return send_file(p, mimetype="application/json", download_name=security.ascii_name(p.name))
        resp = send_file(p, mimetype="application/octet-stream", download_name=security.ascii_name(p.name))
        resp.headers["Content-Disposition"] = security.attachment(p.name)
        return resp

    app.server.config["PROBE_CSP"] = security.csp(app.csp_hashes())  # after every inline script is known
    app.probe_ctx = ctx
    return app
