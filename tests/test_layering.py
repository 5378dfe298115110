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
   3       ``config``, ``cli_options``            defaults.toml (knows the level names); the
                                                  option declarations every sub-CLI shares
   4       ``measure``, ``nomogram``, ``spine``   measurements; model specs and scoring;
                                                  vertebral heights, grades, bone HU
   5       ``runfolder``                          the run folder: file names, writer, reader
   6       ``segment``                            the model (the only torch importer)
   7       ``pipeline``                           load -> levels -> segment -> measure
   8       ``report``, ``pacs``                   screening reports; DICOMweb, SEG / SR
   9       ``batch``                              many cases, local workers or Dask
   10      ``cli_help``                           Click-style help rendering
   11      ``cli``                                the command line (a package: app, exit codes,
                                                  info, levels, run / measure)
   ======  =====================================  ==========================================

An import that must go against these rules needs an entry in :data:`ALLOWED`, with its reason;
there is none today. See ``docs/architecture.md``, "Layers".

Three owner checks follow: ``rcsa.io`` is used through its public API (the package and its
types module ``rcsa.io.volume``, never another submodule), only ``rcsa.io`` opens image files
(no ``pydicom.dcmread`` / ``sitk.ReadImage`` / ``nib.load`` / highdicom reader elsewhere), and
only ``rcsa.runfolder`` spells the run folder's file names in string literals.
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
    ("config", "cli_options"),
    ("measure", "nomogram", "spine"),
    ("runfolder",),
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
    assert "rcsa.nomogram.score" in graph["rcsa.nomogram.cli"]  # inside a command function
    assert {"rcsa.cli.main", "rcsa.nomogram.cli", "rcsa.segment.cli"} <= graph["rcsa.cli"]
    assert "rcsa.cli_options" in graph["rcsa.segment.cli"]
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


# ------------------------------------------------------------------------------------------
# owners: io's public API, the run folder's file names
# ------------------------------------------------------------------------------------------
#: What other packages may import of ``rcsa.io``: the package (its ``__all__``), the volume
#: types module and the loader options (``LoadOptions``; both are light, so that ``rcsa
#: --help`` and the option declarations do not import the image readers).
IO_PUBLIC = {"rcsa.io", "rcsa.io.volume", "rcsa.io.options"}


def io_private_imports(src: Path, top: str = "rcsa") -> list[str]:
    """``from rcsa.io.<sub> import ...`` / ``import rcsa.io.<sub>`` outside io, where ``<sub>``
    is not in :data:`IO_PUBLIC` (``from rcsa.io import load`` names the package's API, even
    though ``load`` is also a submodule's name)."""
    problems = []
    for name, (path, _) in find_modules(src, top).items():
        if unit_of(name, top) == "io":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            written: list[str] = []
            if isinstance(node, ast.Import):
                written = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                written = [node.module]
            written = [w.replace(top + ".", "rcsa.", 1) for w in written]
            problems += [f"{name} imports {w}" for w in written
                         if w.startswith("rcsa.io.") and w not in IO_PUBLIC]
    return problems


def test_io_is_used_through_its_public_api(tmp_path: Path) -> None:
    assert io_private_imports(SRC) == []
    (tmp_path / "pkg" / "io").mkdir(parents=True)
    (tmp_path / "pkg" / "batch").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "io" / "__init__.py").write_text("from pkg.io.dicom import x\n")
    (tmp_path / "pkg" / "batch" / "__init__.py").write_text(
        "from pkg.io import load\nfrom pkg.io.volume import CTVolume\n"
        "def f():\n    from pkg.io.dicom import _judge\n")
    assert io_private_imports(tmp_path, "pkg") == ["pkg.batch imports rcsa.io.dicom"]


def _docstring_nodes(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def spelled_file_names(source: str, names: Iterable[str]) -> list[str]:
    """String literals (docstrings and comments aside) of ``source`` that hold one of
    ``names``."""
    tree = ast.parse(source)
    skip = _docstring_nodes(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                id(node) not in skip:
            hits += [n for n in names if n in node.value]
    return hits


def test_only_runfolder_spells_the_run_folder_file_names() -> None:
    """Every reader and writer of a run folder takes the file names from
    ``rcsa.runfolder.names`` (docstrings may mention them)."""
    from rcsa.runfolder.names import ALL_FILE_NAMES

    problems = []
    for name, (path, _) in find_modules(SRC).items():
        if name == "rcsa.runfolder" or name.startswith("rcsa.runfolder."):
            continue
        for hit in spelled_file_names(path.read_text(encoding="utf-8"), ALL_FILE_NAMES):
            problems.append(f"{name} spells {hit!r}")
    assert problems == []
    assert spelled_file_names('"""levels.json"""\nx = f"{a}/levels.json"\n',
                              ALL_FILE_NAMES) == ["levels.json"]


# ------------------------------------------------------------------------------------------
# owner: io reads the input files
# ------------------------------------------------------------------------------------------
#: Functions that open an image file, by library; outside ``rcsa.io`` none may be called or
#: passed on (io reads every input with its own damaged-file, duplicate and orientation rules,
#: and raises the typed errors). ``dcmread`` and ``ReadImage`` are refused under any name.
FILE_READERS: dict[str, frozenset[str]] = {
    "pydicom": frozenset({"dcmread", "read_file"}),
    "SimpleITK": frozenset({"ReadImage", "ImageFileReader", "ImageSeriesReader"}),
    "nibabel": frozenset({"load"}),
    "highdicom": frozenset({"imread", "segread", "srread"}),
}
ALWAYS_READERS = frozenset({"dcmread", "ReadImage"})


def _dotted(node: ast.AST) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def file_reader_uses(source: str) -> list[str]:
    """The library file readers (:data:`FILE_READERS`) that ``source`` names in an expression
    (a call or a reference), through ``import lib [as x]``, ``import lib.sub`` or ``from lib[.sub]
    import name [as y]``, anywhere in the module (lazy imports included)."""
    tree = ast.parse(source)
    aliases: dict[str, str] = {}  # local name -> dotted name it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    aliases[a.asname] = a.name
                else:
                    top = a.name.partition(".")[0]
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    hits: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Name, ast.Attribute)) or \
                not isinstance(node.ctx, ast.Load):
            continue
        parts = _dotted(node)
        if parts is None:
            continue
        full = ".".join([aliases.get(parts[0], parts[0]), *parts[1:]])
        lib, last = full.partition(".")[0], full.rpartition(".")[2]
        if last in FILE_READERS.get(lib, frozenset()) or \
                (last in ALWAYS_READERS and len(parts) == 1 and parts[0] not in aliases) or \
                (isinstance(node, ast.Attribute) and node.attr in ALWAYS_READERS):
            hits.append(full)
    return hits


def test_only_io_reads_image_files() -> None:
    """No module outside ``rcsa.io`` opens a DICOM / NIfTI / ITK image file itself (tests may:
    they check rcsa's outputs with an independent reader)."""
    problems = [f"{name} uses {hit}" for name, (path, _) in find_modules(SRC).items()
                if unit_of(name) != "io"
                for hit in file_reader_uses(path.read_text(encoding="utf-8"))]
    assert problems == []


def test_file_reader_check_catches_every_spelling() -> None:
    bad = (
        "import pydicom\nds = pydicom.dcmread(p, stop_before_pixels=True)\n"
        "def f(p):\n    from pydicom import dcmread as rd\n    return rd(p)\n"
        "import SimpleITK as sitk\nimg = sitk.ReadImage(str(p))\n"
        "import nibabel as nib\nnii = nib.load(p)\n"
        "from nibabel import load\nload(p)\n"
        "import pydicom.filereader\nread = pydicom.filereader.dcmread\n"
        "import highdicom as hd\nhd.seg.segread(p)\n"
        "x = other.dcmread(p)\n"
    )
    assert sorted(file_reader_uses(bad)) == [
        "SimpleITK.ReadImage", "highdicom.seg.segread", "nibabel.load", "nibabel.load",
        "other.dcmread", "pydicom.dcmread", "pydicom.dcmread", "pydicom.filereader.dcmread",
    ]
    fine = (
        "import json\nfrom rcsa.io import load\nload(p)\njson.load(fh)\n"
        "import SimpleITK as sitk\nsitk.WriteImage(img, p)\n"
        "from pydicom.dataset import Dataset\nds = Dataset()\nds.save_as(p)\n"
    )
    assert file_reader_uses(fine) == []
