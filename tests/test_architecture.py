"""The import graph of probe/, dashboards/ and reports/ is one-way: no module imports a higher floor.

The graph is read with `ast` from the source files (module-level and function-level imports both count; imports
under `if TYPE_CHECKING:` count too). A module's floor is the floor of the longest matching prefix in FLOORS; a
module may import modules of its own floor and of lower floors only. docs/architecture.md draws these floors.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("probe", "dashboards", "reports")

# (floor, what lives there, module prefixes); a longer prefix wins over a shorter one (probe.directions.base is
# the DirectionSet file format, on the data floor, while the rest of probe.directions fits and scores directions)
FLOORS = [
    (
        0,
        "foundation: errors, user files, devices, atomic I/O and the study lock, table contracts",
        ("probe.errors", "probe.userfile", "probe.devices", "probe.io", "probe.schema"),
    ),
    (
        1,
        "data formats the store reads: the latent density, the DirectionSet file",
        ("probe.density", "probe.directions.base"),
    ),
    (2, "the store: reads and writes a study's files", ("probe.store",)),
    (3, "models: generators, adapters, the zoo", ("probe.models",)),
    (4, "latent walks", ("probe.walks",)),
    (5, "the engine and the measures", ("probe.engine", "probe.measures")),
    (6, "running and re-rendering studies", ("probe.study", "probe.restudy", "probe.executors")),
    (
        7,
        "analyses: directions, editing, embedding, statistics, queries, training",
        ("probe.directions", "probe.edit", "probe.embed", "probe.stats", "probe.query", "probe.train"),
    ),
    (8, "figures", ("probe.figures",)),
    (9, "dashboard and report", ("dashboards", "reports")),
    (
        10,
        "entry points: the command line, the demo, the notebook API (package probe)",
        ("probe.cli", "probe.demo", "probe"),
    ),
]
EXACT = {"probe"}  # prefixes that name one module only (the package's __init__), not everything under it

# Modules of a lower floor that a module may still not import: (importer prefix, imported prefixes, allowed, why)
FORBIDDEN = [
    (
        "probe.store",
        ("probe.models", "probe.walks", "probe.engine", "probe.measures", "probe.restudy"),
        (),
        "the store only reads and writes files; re-rendering lives in probe.restudy",
    ),
    (
        "probe.figures",
        ("probe.directions",),
        ("probe.directions.base", "probe.directions.registry", "probe.directions.disentanglement"),
        "figures draw tables; they may read the direction file format, registry and metrics, not fit directions",
    ),
]

# Edges that break the rules today, each with why it is tolerated: {(importer, imported): reason}. The test fails
# when one of them disappears, so that the list only shrinks.
KNOWN: dict[tuple[str, str], str] = {}


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def floor_of(module: str) -> int | None:
    best, floor = -1, None
    for f, _, prefixes in FLOORS:
        for p in prefixes:
            if (module == p or (p not in EXACT and module.startswith(p + "."))) and len(p) > best:
                best, floor = len(p), f
    return floor


def modules(root: Path = ROOT, packages=PACKAGES) -> dict[str, Path]:
    """{dotted module name: file} of every .py file under the packages (a package is its __init__.py)."""
    out = {}
    for pkg in packages:
        for f in sorted((root / pkg).rglob("*.py")):
            parts = list(f.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = f
    return out


def imports(module: str, source: str, is_package: bool, known: set[str]) -> set[str]:
    """Modules of `known` that `source` imports, anywhere in the file (relative imports resolved). `from p import
    name` counts as importing p.name when that is a module, else p (dunder metadata such as __version__ aside)."""
    out = set()
    here = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            names = [
                f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in known else prefix
                for a in node.names
                if not (a.name.startswith("__") and a.name.endswith("__"))
            ]  # __version__: metadata
        else:
            continue
        for n in names:
            while n and n not in known:
                n = n.rpartition(".")[0]
            if n and n != module:
                out.add(n)
    return out


def graph(root: Path = ROOT, packages=PACKAGES) -> dict[str, set[str]]:
    """{module: modules it imports}."""
    mods = modules(root, packages)
    known = set(mods)
    return {m: imports(m, f.read_text(), f.name == "__init__.py", known) for m, f in mods.items()}


def violations(g: dict[str, set[str]]) -> dict[tuple[str, str], str]:
    """{(importer, imported): why} for every edge that imports a higher floor or a forbidden module."""
    bad = {}
    for a, deps in sorted(g.items()):
        fa = floor_of(a)
        for b in sorted(deps):
            fb = floor_of(b)
            if fa is not None and fb is not None and fb > fa:
                bad[(a, b)] = f"{a} (floor {fa}) -> {b} (floor {fb})"
            for src, targets, allowed, why in FORBIDDEN:
                if _under(a, src) and any(_under(b, t) for t in targets) and b not in allowed:
                    bad[(a, b)] = f"{a} -> {b}: {why}"
    return bad


@pytest.fixture(scope="module")
def g():
    return graph()


def test_every_module_has_a_floor(g):
    missing = sorted(m for m in g if floor_of(m) is None)
    assert not missing, f"modules without a floor (add them to FLOORS in tests/test_architecture.py): {missing}"


def test_no_module_imports_a_higher_floor(g):
    bad = [why for edge, why in violations(g).items() if edge not in KNOWN]
    assert not bad, "imports against the floors (see docs/architecture.md):\n" + "\n".join(bad)


def test_known_exceptions_still_exist(g):
    gone = [edge for edge in KNOWN if edge not in violations(g)]
    assert not gone, f"these edges no longer break the floors: remove them from KNOWN: {gone}"


def test_store_imports_no_model_walk_or_engine(g):
    assert not {d for d in g["probe.store"] if floor_of(d) > 2}, g["probe.store"]
    assert {"probe.io", "probe.schema"} <= g["probe.store"]
    assert {"probe.models", "probe.engine", "probe.walks"} <= g["probe.restudy"]


def test_the_graph_reads_every_kind_of_import(tmp_path):
    """The reader sees relative, absolute, from-package and function-level imports; violations names the edge."""
    (tmp_path / "probe" / "models").mkdir(parents=True)
    for f in ("__init__.py", "errors.py", "walks.py", "models/__init__.py", "models/zoo.py"):
        (tmp_path / "probe" / f).write_text("")
    (tmp_path / "probe" / "store.py").write_text(
        "from . import errors\nfrom .errors import ProbeError\n\n"
        "def f():\n    from .models.zoo import load_model\n    import probe.walks\n"
    )
    (tmp_path / "probe" / "models" / "base.py").write_text("from .. import store\nfrom ..models import zoo\n")
    got = graph(tmp_path, ("probe",))
    assert floor_of("probe") == 10 and floor_of("probe.newthing") is None and floor_of("probe.models.x") == 3
    assert got["probe.store"] == {"probe.errors", "probe.models.zoo", "probe.walks"}
    assert got["probe.models.base"] == {"probe.store", "probe.models.zoo"}
    v = violations(got)
    assert v[("probe.store", "probe.models.zoo")] == (
        "probe.store -> probe.models.zoo: the store only reads and writes files; re-rendering lives in probe.restudy"
    )
    assert sorted(v) == [("probe.store", "probe.models.zoo"), ("probe.store", "probe.walks")]  # models may read it
    assert violations(
        {
            "probe.store": {"probe.density"},
            "probe.models.zoo": {"probe.train.nets"},
            "probe.figures": {"probe.directions.base", "probe.directions.groundtruth"},
        }
    ) == {
        ("probe.models.zoo", "probe.train.nets"): "probe.models.zoo (floor 3) -> probe.train.nets (floor 7)",
        ("probe.figures", "probe.directions.groundtruth"): "probe.figures -> probe.directions.groundtruth: figures "
        "draw tables; they may read the direction file format, registry and metrics, not fit directions",
    }
