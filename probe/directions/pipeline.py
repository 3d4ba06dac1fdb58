"""Fit several direction methods into one directions/ folder: the pipeline the demo and `probe gt-score` share."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .base import DirectionError, fit_once
from .registry import ORDER, FitContext, get


def fit_methods(
    model,
    ddir: str | Path,
    methods: Sequence[str] | None = None,
    measures: Sequence[str] = (),
    k: int | None = 6,
    n_fit: int | None = 2000,
    seed: int = 0,
    space: str | None = None,
    options: Mapping[str, dict] | None = None,
    density=None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Path]:
    """Fit each method into ddir/<method>.npz, skipping files that exist (resumable). -> {method: path}

    methods: registry names (default all, in registry order); measures: what supervised methods fit boundaries
    for; k, n_fit, seed, space: the common arguments every method's registry defaults read (space None: w when
    the model has it, else z); options: {method: {parameter: value}} overriding those defaults; density: the
    fitted w density for methods that take one.
    """
    names = list(ORDER if methods is None else methods)
    infos = [get(n) for n in names]  # unknown names fail before anything is fitted
    if len(set(names)) != len(names):
        raise DirectionError(f"methods: list each method once; got {names}")
    opts = dict(options or {})
    extra = sorted(set(opts) - set(names))
    if extra:
        raise DirectionError(f"options for {extra}, which are not among the methods fitted {names}; drop them")
    ctx = FitContext(model, k, n_fit, int(seed), space, tuple(measures), progress)
    for m in infos:  # parameters checked before the first (slow) fit
        m.params(ctx, opts.get(m.name))
    ddir = Path(ddir)
    ddir.mkdir(parents=True, exist_ok=True)
    out = {}
    for m in infos:

        def make(m=m):
            est = m.make(ctx, opts.get(m.name))
            est.fit(model, **({"density": density} if m.takes_density and density is not None else {}))
            for name, acc in getattr(est, "accuracy_", {}).items():
                log(f"    boundary {name:<16} held-out accuracy {acc:.3f}")
            return est.directions_

        out[m.name] = ddir / f"{m.name}.npz"
        fit_once(out[m.name], make, log)
    return out


__all__ = ["fit_methods"]
