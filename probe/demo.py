"""The main job on the embedded face model: samples -> directions -> interventions -> statistics -> evaluation ->
UMAP -> report.

`run_demo` writes STUDY/progress.json (atomically, after every change) so that a dashboard opened on the study
while the demo runs can say what is done and what is still coming (dashboards/pages/_progress.py reads it). `DemoRunner` runs the demo in a worker
thread that holds the study's write lock throughout; `probe demo` serves the dashboard from the main thread as
soon as the first table (samples: the base latents rendered and measured, which do not depend on the directions)
exists, while the worker goes on (direction fits, interventions, statistics, evaluation, UMAP, report). The dashboard only reads, and re-reads tables whose files changed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from .errors import ProbeError

DEFAULT_SPEC = Path("examples/faces_demo.toml")
PROGRESS = "progress.json"
STEPS = (
    ("samples", "rendering and measuring the base samples"),
    ("directions", "fitting direction sets (InterFaceGAN, DP-LaSE, GANSpace, SeFa, random)"),
    ("study", "running the study's interventions"),
    ("statistics", "statistics (effects, correlations, controlling variables)"),
    ("evaluation", "direction evaluation (specificity, density drift)"),
    ("embedding", "UMAP embedding of samples and walks"),
    ("report", "the HTML report"),
)
# the study tables each step writes (progress.json lists them, so that a page can say "being computed")
STEP_TABLES = {
    "samples": ["samples"],
    "study": ["interventions", "alpha_summary"],
    "statistics": ["effects", "correlations", "controlling"],
    "evaluation": ["evaluation"],
    "embedding": ["embedding"],
}
FIRST_TABLE = "samples.parquet"  # the dashboard opens once this exists


class DemoError(ProbeError):
    """The demo could not run as asked; the message names the fix."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Progress:
    """STUDY/progress.json: the demo's steps (name, label, state pending | running | done | failed, seconds, the
    tables it writes), its state (running | done | failed), the error of a failed step, and when the first table
    appeared."""

    def __init__(self, out: str | Path, steps=STEPS):
        import os

        self.path = Path(out) / PROGRESS
        self.t0 = time.perf_counter()
        self.data = {
            "command": "probe demo",
            "pid": os.getpid(),
            "started": _now(),
            "updated": _now(),
            "state": "running",
            "error": None,
            "first_table_s": None,
            "steps": [
                {"name": n, "label": lab, "state": "pending", "seconds": None, "tables": STEP_TABLES.get(n, [])}
                for n, lab in steps
            ],
        }
        self._lock = threading.Lock()

    def _step(self, name: str) -> dict:
        return next(s for s in self.data["steps"] if s["name"] == name)

    def _write(self) -> None:
        from .io import atomic_write_json

        self.data["updated"] = _now()
        self.data["elapsed_s"] = round(time.perf_counter() - self.t0, 1)
        atomic_write_json(self.path, self.data)

    def start(self, name: str) -> None:
        with self._lock:
            s = self._step(name)
            s["state"], s["started_s"] = "running", round(time.perf_counter() - self.t0, 1)
            self._write()

    def done(self, name: str, seconds: float) -> None:
        with self._lock:
            s = self._step(name)
            s["state"], s["seconds"] = "done", round(seconds, 1)
            self._write()

    def first_table(self) -> None:
        with self._lock:
            if self.data["first_table_s"] is None:
                self.data["first_table_s"] = round(time.perf_counter() - self.t0, 1)
                self._write()

    def fail(self, name: str | None, error: BaseException) -> None:
        with self._lock:
            if name is not None:
                self._step(name)["state"] = "failed"
            self.data["state"], self.data["error"] = "failed", f"{type(error).__name__}: {error}"[:500]
            self._write()

    def finish(self) -> None:
        with self._lock:
            self.data["state"] = "done"
            self._write()


def fit_demo_directions(
    model,
    ddir: Path,
    n_fit: int = 5000,
    k: int = 6,
    dplase_steps: int = 600,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> None:
    """Fit the demo's DirectionSets into ddir (skipping files that exist), through the shared pipeline
    (probe.directions.pipeline.fit_methods): the quick ones first (random, SeFa, GANSpace), then InterFaceGAN
    (n_fit scored faces, with the conditional gender|age) and DP-LaSE (dplase_steps training steps at site b1)."""
    from .directions.pipeline import fit_methods

    # age needs a wider split on this model (its scorer is weak): see docs/readme/40-directions.md
    fit_methods(
        model,
        ddir,
        ["random", "sefa", "ganspace", "interfacegan", "dplase"],
        measures=["gender", "age", "yaw"],
        k=k,
        n_fit=n_fit,
        seed=0,
        progress=progress,
        log=log,
        options={
            "interfacegan": {
                "seed": 1,
                "ratio": {"gender": 0.1, "age": 0.3, "yaw": 0.1},
                "conditions": [("gender", ["age"])],
            },
            "dplase": {"site": "b1", "steps": dplase_steps},
        },
    )


def run_demo(
    out: str | Path,
    spec: str | Path = DEFAULT_SPEC,
    n_fit: int = 5000,
    dplase_steps: int = 600,
    progress: bool = True,
    log: Callable[[str], None] = print,
    device: str | None = None,
    on_step: Callable[[str], None] | None = None,
    k: int = 6,
):
    """Run the whole face demo into `out` (resumable: finished steps are kept); returns the Study.

    device: auto | cpu | cuda | cuda:N for the fits and the study (default the spec's device, auto).
    k: directions per unsupervised method. Writes out/progress.json as it goes (`Progress`; the dashboard's
    Overview banner reads it). on_step(name) is called before each step of STEPS starts (tests use it to follow the run)."""
    from .study import load_spec

    out, spec_path = Path(out), Path(spec)
    if not spec_path.is_file():
        raise DemoError(f"--spec {str(spec_path)!r} does not exist; run from the repository root or pass --spec")
    spec = load_spec(spec_path)
    from .devices import resolve_device

    dev = resolve_device(device or spec.device, field="--device" if device else "device")
    out.mkdir(parents=True, exist_ok=True)
    prog = Progress(out)
    t0 = time.perf_counter()
    state: dict = {}

    def samples():
        from .study import run_samples

        run_samples(spec, out, progress=progress, device=str(dev))
        prog.first_table()

    def directions():
        from .models import load_model
        from .models.zoo import model_options
        from .study import spec_model

        log(f"    model {spec.model!r} on {dev}")
        fit_demo_directions(
            load_model(spec_model(spec), **model_options(spec.dump())).to(dev),
            out / "directions",
            n_fit,
            k=k,
            dplase_steps=dplase_steps,
            progress=progress,
            log=log,
        )

    def study():
        from .study import run_study

        state["study"] = run_study(spec, out, resume=True, progress=progress, device=str(dev))
        from .query import study_alpha_summary

        study_alpha_summary(state["study"], write=True)  # what the dashboard's walk views read

    def statistics():
        from .stats import analyze

        state["tables"] = analyze(state["study"])

    def evaluation():
        from .directions.evaluate import evaluate_study

        state["evaluation"] = evaluate_study(state["study"])

    def embedding():
        from .embed import embed_study

        embed_study(state["study"])

    def report():
        from reports.build import build_report

        state["report"] = build_report(state["study"], out / "report.html")

    run = {
        "samples": samples,
        "directions": directions,
        "study": study,
        "statistics": statistics,
        "evaluation": evaluation,
        "embedding": embedding,
        "report": report,
    }
    name = None
    try:
        for i, (name, label) in enumerate(STEPS, 1):
            if on_step is not None:
                on_step(name)
            log(f"[{i}/{len(STEPS)}] {label}")
            prog.start(name)
            t = time.perf_counter()
            run[name]()
            prog.done(name, time.perf_counter() - t)
            log(f"      ({time.perf_counter() - t:.0f} s)")
        name = None
    except BaseException as e:
        prog.fail(name, e)
        raise
    prog.finish()
    log(summary(state["tables"], state["evaluation"]))
    log(f"done in {time.perf_counter() - t0:.0f} s: study {out}, report {state['report']}")
    return state["study"]


class DemoRunner:
    """run_demo in a worker thread that holds the study's write lock; `wait_first_table()` returns once the
    dashboard can open (the samples table exists), raising the demo's error if it failed before that."""

    def __init__(self, out: str | Path, **kw):
        self.out = Path(out)
        self.kw = kw
        self.error: BaseException | None = None
        self.study = None
        self._done = threading.Event()
        self._locked = threading.Event()
        self._serving = False
        self.thread = threading.Thread(target=self._work, name="probe-demo", daemon=True)

    def _work(self) -> None:
        from .io import study_lock

        try:
            with study_lock(self.out):
                self._locked.set()
                self.study = run_demo(self.out, **self.kw)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            self.error = e
            if self._serving:  # the main thread is serving the dashboard: say it here too
                from .errors import printable

                self.kw.get("log", print)(
                    f"error: probe demo stopped: {printable(str(e))}; the dashboard stays up. "
                    f"Run probe demo again to resume it."
                )
        finally:
            self._done.set()

    def start(self) -> DemoRunner:
        self.thread.start()
        return self

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def wait_first_table(self, timeout: float | None = None) -> bool:
        """Block until the samples table exists or the demo ended. -> True when the dashboard can open."""
        t0 = time.monotonic()
        while not self._done.is_set():
            if self._locked.is_set() and (self.out / FIRST_TABLE).is_file() and (self.out / "manifest.json").is_file():
                self._serving = True
                return True
            if timeout is not None and time.monotonic() - t0 > timeout:
                return False
            self._done.wait(0.25)
        if self.error is not None:
            raise self.error
        return True

    def join(self, timeout: float | None = None) -> None:
        """Wait for the demo to end; re-raise its error."""
        self._done.wait(timeout)
        if self.error is not None:
            raise self.error


def summary(tables: dict, ev) -> str:
    """A short text digest: controlling variables for gender and age, and the direction comparison."""
    lines = []
    ctl = tables["controlling"]
    for m in ("gender", "age"):
        top = ctl[ctl["measure"] == m].sort_values("rank").head(5)
        items = ", ".join(f"{r.target} ({r.effect:+.3f}, q={r.q:.1e})" for r in top.itertuples())
        lines.append(f"controlling variables for {m}: {items or 'none significant'}")
    from .directions.evaluate import method_summary  # the one per-method summary (median specificity)

    best = method_summary(ev)
    lines.append("direction methods (median specificity, mean |dlogp|):")
    lines += [f"  {r.method:<13} {r.specificity:6.2f}  {r.dlogp_abs_mean:.3g}" for r in best.itertuples()]
    return "\n".join(lines)
