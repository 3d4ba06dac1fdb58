"""Helpers shared by test modules (importable as tests.helpers; pytest's pythonpath holds the repo root)."""
from __future__ import annotations

import sys


def cli(args: list, capsys) -> tuple[int, str, str]:
    """Run the real `probe` entry point (probe.cli.main) in-process -> (exit code, stdout, stderr)."""
    from probe.cli import main
    old = sys.argv
    sys.argv = ["probe", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err
