"""rcsa's import layers, checked from the source (AST only: nothing is imported).

Every module under ``src/rcsa`` is parsed and every ``import`` / ``from ... import`` in it is
collected, at module level and inside functions (lazy imports count: they are dependencies
too) and under ``if TYPE_CHECKING:``. ``from rcsa.x import y`` is an edge to ``rcsa.x.y`` when
that is a module, else to ``rcsa.x``. ``importlib.import_module`` with a computed name (the lazy
``__getattr__`` of ``rcsa.segment``, ``rcsa.batch``, ``rcsa.pacs``) is not seen; those only
load the package's own submodules.

Two rules:

1. **No cycles** between modules: the import graph has no strongly connected component of more
   than one module. A package's ``__init__`` importing (or re-exporting) its own submodules is
   not a cycle and is left out.
2. **Layers.** Each top-level unit (a subpackage such as ``rcsa.measure`` or a module such as
   ``rcsa.errors``; ``rcsa`` itself is the package ``__init__``) sits in one layer of
   :data:`LAYERS`, lowest first, and may import only from its own unit or from units in lower
   layers: never upwards, never sideways into another unit of its own layer.

   ======  =====================================  ==========================================
   layer   units                                  what it is
   ======  =====================================  ==========================================
   0       ``rcsa``, ``errors``, ``anatomy``,      version, error types, the class map, the
           ``cases``                              batch case types; no rcsa imports
   1       ``outputs``, ``io``                    atomic writes; image formats -> volumes
   2       ``levels``                             vertebral levels (classical, torch-free)
   3       ``config``                             defaults.toml (knows the level names)
   4       ``measure``, ``nomogram``, ``spine``   measurements; model specs and scoring;
                                                  vertebral heights, grades, bone HU
   5       ``segment``                            the model (the only torch importer)
   6       ``pipeline``                           load -> levels -> segment -> measure
   7       ``report``, ``pacs``                   screening reports; DICOMweb, SEG / SR
   8       ``batch``                              many cases, local workers or Dask
   9       ``cli_help``                           Click-style help rendering
   10      ``cli``                                the command line
   ======  =====================================  ==========================================

An import that must go against these rules needs an entry in :data:`ALLOWED`, with its reason;
there is none today. See ``docs/architecture.md``, "Layers".
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Lowest first. A unit may import from its own unit and from units of lower layers only.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("rcsa", "errors", "anatomy", "cases", "_lazy", "logs"),
    ("outputs", "io"),
    ("levels",),
    ("config",),
    ("measure", "nomogram", "spine"),
    ("segment",),
    ("pipeline",),
    ("report", "pacs"),
    ("batch",),
    ("cli_help",),
    ("cli",),
)

#: ``(importer, imported) -> reason`` for imports that may break the rules above. Keep it
#: empty unless there is no better place for the code; every entry must still exist.
ALLOWED: dict[tuple[str, str], str] = {}

Graph = dict[str, set[str]]


def find_modules(src: Path, top: str = "rcsa") -> dict[str, tuple[Path, bool]]:
    """``{dotted name: (file, is_package)}`` for every ``.py`` under ``src/top``."""
    out: dict[str, tuple[Path, bool]] = {}
    for path in sorted((src / top).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_package)
    return out


def _nearest(name: str, modules: Mapping[str, object]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(src: Path, top: str = "rcsa") -> Graph:
    """``{module: {rcsa modules it imports}}``, module-level and function-level imports."""
    modules = find_modules(src, top)
    graph: Graph = {}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            wanted: list[str] = []
            if isinstance(node, ast.Import):
                wanted = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    if node.level > 1:
                        anchor = anchor[: -(node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                wanted = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                    for a in node.names
                ]
            for w in wanted:
                if w == top or w.startswith(top + "."):
                    target = _nearest(w, modules)
                    if target is not None and target != name:
                        targets.add(target)
        graph[name] = targets
    return graph


def _is_own_child(importer: str, imported: str, graph_packages: set[str]) -> bool:
    return importer in graph_packages and imported.startswith(importer + ".")


def cycles(graph: Graph, packages: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), without the edges from
    a package ``__init__`` to its own submodules."""
    edges = {a: {b for b in bs if not _is_own_child(a, b, packages)} for a, bs in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def unit_of(module: str, top: str = "rcsa") -> str:
    """``rcsa.measure.table`` -> ``measure``; ``rcsa.cli`` -> ``cli``; ``rcsa`` -> ``rcsa``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else top


def layer_violations(
    graph: Graph,
    layers: Iterable[Iterable[str]],
    allowed: Mapping[tuple[str, str], str],
    top: str = "rcsa",
) -> list[str]:
    """Imports into a unit of the same or a higher layer (other than ``allowed``)."""
    rank = {unit: i for i, group in enumerate(layers) for unit in group}
    problems = []
    for importer, imported_all in sorted(graph.items()):
        for imported in sorted(imported_all):
            a, b = unit_of(importer, top), unit_of(imported, top)
            if a == b or (importer, imported) in allowed:
                continue
            if a not in rank or b not in rank:
                continue  # reported by test_every_unit_has_a_layer
            if rank[b] >= rank[a]:
                where = "same layer as" if rank[b] == rank[a] else "higher layer than"
                problems.append(f"{importer} imports {imported} ({b!r} is in the {where} {a!r})")
    return problems


@pytest.fixture(scope="module")
def graph() -> Graph:
    return import_graph(SRC)


@pytest.fixture(scope="module")
def packages() -> set[str]:
    return {name for name, (_, is_pkg) in find_modules(SRC).items() if is_pkg}


def test_the_graph_sees_the_code(graph: Graph) -> None:
    """Guards the checker itself: it found the modules and their imports, lazy ones included."""
    assert len(graph) > 50
    assert {"rcsa.measure", "rcsa.measure.table"} <= graph["rcsa.pipeline"]
    assert "rcsa.nomogram.score" in graph["rcsa.cli"]  # imported inside a command function
    # `from rcsa.nomogram import metrics` names a submodule
    assert "rcsa.nomogram.metrics" in graph["rcsa.nomogram.evaluate"]


def test_no_import_cycles(graph: Graph, packages: set[str]) -> None:
    assert cycles(graph, packages) == []


def test_every_unit_has_a_layer(graph: Graph) -> None:
    placed = {unit for group in LAYERS for unit in group}
    units = {unit_of(m) for m in graph}
    assert units - placed == set(), "new top-level module or package: give it a layer in LAYERS"
    assert placed - units == set(), "LAYERS names a unit that no longer exists"


def test_no_upward_or_sideways_imports(graph: Graph) -> None:
    assert layer_violations(graph, LAYERS, ALLOWED) == []


def test_allowed_exceptions_still_exist(graph: Graph) -> None:
    stale = [edge for edge in ALLOWED if edge[1] not in graph.get(edge[0], set())]
    assert stale == [], "remove ALLOWED entries for imports that are gone"


def test_checker_catches_a_cycle_and_an_upward_import(tmp_path: Path) -> None:
    """The same functions on a small fake package with one cycle and one upward import."""
    files = {
        "pkg/__init__.py": "",
        "pkg/low/__init__.py": "from pkg.low import a\n",  # a package importing its child: allowed
        "pkg/low/a.py": "from pkg.low import b\n",
        "pkg/low/b.py": "def f():\n    from pkg.low.a import x\n",  # lazy import: a cycle
        "pkg/high.py": "from . import low\n",
        "pkg/low/c.py": "import pkg.high\n",  # upward
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    g = import_graph(tmp_path, top="pkg")
    pkgs = {n for n, (_, p) in find_modules(tmp_path, "pkg").items() if p}
    assert g["pkg.high"] == {"pkg.low"}
    assert cycles(g, pkgs) == [["pkg.low.a", "pkg.low.b"]]
    problems = layer_violations(g, [("pkg", "low"), ("high",)], {}, top="pkg")
    assert problems == ["pkg.low.c imports pkg.high ('high' is in the higher layer than 'low')"]
    assert layer_violations(g, [("pkg", "low"), ("high",)], {("pkg.low.c", "pkg.high"): "x"},
                            top="pkg") == []
