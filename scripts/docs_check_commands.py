"""Check that every `probe ...` command line in the docs names a real command and only real flags.

Scans Markdown files (default: docs/readme/*.md and docs/*.md) for `probe <command> [<subcommand>] ...` in code
spans and fenced code blocks, where a command starts the line or span (after an optional `$ `, `ENV=1 ` or
`.venv/bin/`), and compares each `--flag` / `-f` with the options of the current CLI
(read from the Typer app in-process, no subprocess per command). Prints one line per problem, `file:line:
message`, and exits 1 if there is any. Text after `#` on a line is a comment and is skipped.

    python scripts/docs_check_commands.py                     # all docs pages
    python scripts/docs_check_commands.py docs/readme/20-studies.md
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMAND = re.compile(r"^\s*(?:\$ )?(?:[A-Z_]+=\S+ )*(?:\S*/)?probe ([a-z][a-z-]*)((?: [^#\n]*)?)")
SPAN = re.compile(r"`([^`]+)`")
FLAG = re.compile(r"(?<![\w-])(--?[a-zA-Z][\w-]*)")


def cli_options() -> dict[str, set[str] | dict[str, set[str]]]:
    """{command: its option names} or, for a group, {command: {subcommand: its option names}}."""
    import typer

    from probe.cli import app

    def opts(cmd) -> set[str]:
        return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}

    out: dict = {}
    for name, cmd in typer.main.get_command(app).commands.items():
        sub = getattr(cmd, "commands", None)
        out[name] = {s: opts(c) for s, c in sub.items()} if sub else opts(cmd)
    return out


def check_line(text: str, options: dict) -> list[str]:
    """Problems of the probe command lines in one line of text."""
    problems = []
    for m in COMMAND.finditer(text):  # at most one: a command starts its code line or span
        name, rest = m.group(1), m.group(2)
        if name not in options:
            problems.append(f"'probe {name}' is not a command (probe --help)")
            continue
        known = options[name]
        if isinstance(known, dict):
            words = rest.split()
            if not words:
                continue  # the group itself, named in prose
            if not set(words[0].split("|")) <= set(known):
                problems.append(f"'probe {name}' needs a subcommand: {', '.join(sorted(known))}")
                continue
            if "|" in words[0]:
                continue  # `probe train gan|factors|quality`: the subcommands, listed
            name, known, rest = f"{name} {words[0]}", known[words[0]], " ".join(words[1:])
        for flag in FLAG.findall(rest):
            if flag not in known:
                problems.append(f"'probe {name}' has no option {flag}")
    return problems


def code_segments(lines: list[str]):
    """(line number, code text): whole lines inside fenced blocks, else the inline code spans of a line."""
    fenced = False
    for i, line in enumerate(lines, 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            yield i, line
        else:
            for m in SPAN.finditer(line):
                yield i, m.group(1)


def main(paths: list[str] | None = None) -> int:
    files = [Path(p) for p in paths] if paths else sorted([*ROOT.glob("docs/*.md"), *ROOT.glob("docs/readme/*.md")])
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        print(f"error: paths: {', '.join(missing)} not found; name Markdown files that exist")
        return 2
    options = cli_options()
    n_lines = n_bad = 0
    for f in files:
        for i, code in code_segments(f.read_text(encoding="utf-8").splitlines()):
            problems = check_line(code, options)
            n_lines += bool(COMMAND.search(code))
            for p in problems:
                n_bad += 1
                print(f"{f.relative_to(ROOT) if f.is_relative_to(ROOT) else f}:{i}: {p}")
    print(f"{n_lines} code lines and spans with probe commands in {len(files)} files, {n_bad} problems")
    return 1 if n_bad else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", help="Markdown files (default: docs/*.md, docs/readme/*.md)")
    sys.exit(main(ap.parse_args().paths))
