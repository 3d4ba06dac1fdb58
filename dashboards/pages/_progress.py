"""The progress banner of a study that `probe demo` is still filling (STUDY/progress.json, probe.demo)."""
from __future__ import annotations

from dash import Input, Output, dcc, html

from probe.demo import progress_text

TICK_MS = 2000


def banner(ctx) -> html.Div:
    """A note saying which demo steps are done and which are coming (hidden when no demo is running), refreshed
    every TICK_MS while it shows."""
    text = progress_text(ctx.root)
    return html.Div([html.Div(text or "", id="demo-progress", className="probe-note", hidden=text is None),
                     dcc.Interval(id="demo-progress-tick", interval=TICK_MS, disabled=text is None)])


def register(app, ctx) -> None:
    @app.callback(Output("demo-progress", "children"), Output("demo-progress", "hidden"),
                  Output("demo-progress-tick", "disabled"), Input("demo-progress-tick", "n_intervals"),
                  prevent_initial_call=True)
    def tick(_n):
        live = progress_text(ctx.root)
        text = live or progress_text(ctx.root, finished=True)
        return text or "", text is None, live is None
