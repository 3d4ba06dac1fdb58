"""Dashboard pages, one module each: KEY, PATH, NAME, layout(ctx) -> component, register(app, ctx)."""

from . import correlations, drag, edits, embedding, overview, walks

PAGES = (overview, correlations, embedding, walks, edits, drag)
