"""The progress banner of a study that `probe demo` is still filling: STUDY/progress.json, written by
`probe.demo.Progress` (steps with their state pending | running | done | failed, the demo's state, its error)."""

from __future__ import annotations

import os
from pathlib import Path

from dash import Input, Output, dcc, html

PROGRESS = "progress.json"  # the file probe.demo.Progress writes (the demo sits above the dashboard)
TICK_MS = 2000


def read_progress(study_path: str | Path) -> dict | None:
    """STUDY/progress.json as a dict, or None when the study has none (or it is unreadable)."""
    import json

    try:
        d = json.loads((Path(study_path) / PROGRESS).read_text())
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) and isinstance(d.get("steps"), list) else None


def _study_parts(study_path: Path) -> tuple[int, int] | None:
    """(parts written, parts planned) of a study whose interventions are being computed, from its manifest."""
    import json

    from probe.engine import plan_parts

    try:
        m = json.loads((study_path / "manifest.json").read_text())
        spec = m.get("spec") or {}
        total = len(
            plan_parts(int(m["n_samples"]), len(m["targets"]), len(m["alphas"]), int(spec.get("part_rows", 1024)))
        )
        return len(m.get("parts_done") or []), total
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:
        return True
    return True


def progress_text(study_path: str | Path, finished: bool = False) -> str | None:
    """One line on what a running (or failed) demo has done and is doing, for the dashboard; None when the study
    has no progress.json, or the demo finished (finished=True: a line saying so instead)."""
    study_path = Path(study_path)
    p = read_progress(study_path)
    if p is None:
        return None
    steps = p["steps"]
    if p.get("state") == "done":
        return (
            (
                f"probe demo finished: all {len(steps)} steps done in {p.get('elapsed_s', 0):.0f} s; reload the page "
                f"to see every table."
            )
            if finished
            else None
        )
    done = [s["name"] for s in steps if s.get("state") == "done"]
    cur = next((s for s in steps if s.get("state") == "running"), None)
    if p.get("state") == "running" and not _alive(p.get("pid")):
        at = f" during step {steps.index(cur) + 1}, {cur['name']}" if cur else ""
        return (
            f"probe demo (PID {p.get('pid')}) is no longer running: it stopped{at}. Re-run probe demo to "
            f"resume it; finished steps are kept."
        )
    if p.get("state") == "failed":
        bad = next((s for s in steps if s.get("state") == "failed"), None)
        return (
            f"probe demo stopped at {'step ' + str(steps.index(bad) + 1) + ', ' + bad['name'] if bad else 'a step'}"
            f": {p.get('error')}. Re-run probe demo to resume it; finished steps are kept."
        )
    i = steps.index(cur) + 1 if cur else len(done)
    now = f"step {i} of {len(steps)}: {cur['label']}" if cur else f"step {i} of {len(steps)}"
    if cur is not None and cur["name"] == "study":
        parts = _study_parts(study_path)
        if parts is not None and parts[1]:
            now += f", interventions part {parts[0]} of {parts[1]}"
    left = [s["name"] for s in steps if s.get("state") == "pending"]
    return (
        f"probe demo is still running ({now}). Done: {', '.join(done) or 'nothing yet'}. "
        f"Still to come: {', '.join(left) or 'nothing'}. Pages fill in as their tables appear."
    )


def computing(study_path: str | Path, table: str) -> str | None:
    """ "being computed: <step>" when a running demo has yet to write `table` (a step of progress.json lists it),
    else None (no demo, it finished or stopped, or no step makes that table)."""
    p = read_progress(study_path)
    if p is None or p.get("state") != "running" or not _alive(p.get("pid")):
        return None
    step = next((s for s in p["steps"] if table in (s.get("tables") or [])), None)
    if step is None or step.get("state") not in ("pending", "running"):
        return None
    return (
        f"being computed: {step.get('label', step['name'])} (probe demo, step {p['steps'].index(step) + 1} of "
        f"{len(p['steps'])}); this page fills in when it is done"
    )


def banner(ctx) -> html.Div:
    """A note saying which demo steps are done and which are coming (hidden when no demo is running), refreshed
    every TICK_MS while it shows."""
    text = progress_text(ctx.root)
    return html.Div(
        [
            html.Div(text or "", id="demo-progress", className="probe-note", hidden=text is None),
            dcc.Interval(id="demo-progress-tick", interval=TICK_MS, disabled=text is None),
        ]
    )


def register(app, ctx) -> None:
    @app.callback(
        Output("demo-progress", "children"),
        Output("demo-progress", "hidden"),
        Output("demo-progress-tick", "disabled"),
        Input("demo-progress-tick", "n_intervals"),
        prevent_initial_call=True,
    )
    def tick(_n):
        live = progress_text(ctx.root)
        text = live or progress_text(ctx.root, finished=True)
        return text or "", text is None, live is None
