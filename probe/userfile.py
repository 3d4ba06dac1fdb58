"""User extension points named as `path/to/file.py:factory` (models, measures)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import ProbeError


def call_factory(spec: str, kind: str, error: type[ProbeError] = ProbeError):
    """Import path/to/file.py and return factory() for `spec` = "path/to/file.py:factory".

    Every failure is one `error` line naming the spec: missing file, import error, missing callable, factory error.
    """
    path, _, fn = spec.rpartition(":")
    p = Path(path)
    if not p.is_file():
        raise error(f"{kind} file {path!r} does not exist; name it as path/to/file.py:factory")
    where = f"{kind} {spec!r} failed to load"
    s = importlib.util.spec_from_file_location(f"probe_user_{kind}_{p.stem}", p)
    mod = importlib.util.module_from_spec(s)
    try:
        s.loader.exec_module(mod)
    except Exception as e:  # noqa: BLE001 - user code, one-line report
        raise error(f"{where}: file failed to import: {type(e).__name__}: {e}") from None
    factory = getattr(mod, fn, None)
    if not callable(factory):
        names = [n for n in dir(mod) if callable(getattr(mod, n)) and not n.startswith("_")]
        raise error(f"{where}: file has no callable {fn!r}; functions there: {names}")
    try:
        return factory()
    except Exception as e:  # noqa: BLE001
        raise error(f"{where}: factory raised {type(e).__name__}: {e}") from None
