"""The package's shape, read from the source with :mod:`ast` (nothing is imported).

* no import cycles among ``geo_protect`` modules;
* one-way layering: foundation ← osm ← analysis ← assess ← live | outputs (:data:`LAYERS`),
  the store on the foundation only (read by live and outputs), and the surfaces
  (``geo_protect.pipeline``, ``geo_protect.cli``) on top, imported by no library module;
* no module over :data:`MAX_MODULE_LINES` lines and no function over
  :data:`MAX_FUNCTION_LINES` lines (docstring included);
* library modules never read the environment (``os.environ``, ``os.getenv``,
  ``Settings(...)``): only ``geo_protect.settings`` and the surfaces do.

Every check is a function of a source folder, so each is also run on a small bad tree
written to ``tmp_path`` to show that it can fail.

Also here: the CI guard of ``tests/conftest.py`` for modules skipped at collection.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from textwrap import indent

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = REPO_ROOT / "geo_protect"
PACKAGE = "geo_protect"

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80

#: Top-level modules every layer may use; they import no subpackage.
FOUNDATION = frozenset(
    {"errors", "settings", "cities", "reference", "schema", "citydata", "atomic", "access"}
)
#: The surfaces: free to import anything, imported by no library module.
SURFACES = frozenset({"pipeline", "cli", "service"})
#: Which layers (besides the foundation and itself) each subpackage may import.
#: Order: foundation ← osm ← analysis ← assess ← live | outputs (siblings); the store sits on
#: the foundation only, and the top layers (live, outputs) may read through it.
LAYERS: dict[str, frozenset[str]] = {
    "store": frozenset(),
    "osm": frozenset(),
    "analysis": frozenset({"osm"}),
    "assess": frozenset({"osm", "analysis"}),
    "scenario": frozenset({"osm", "analysis", "assess"}),
    "live": frozenset({"osm", "analysis", "assess", "store"}),
    "outputs": frozenset({"osm", "analysis", "assess", "scenario", "store"}),
}
#: Modules allowed to read the environment.
READS_ENVIRONMENT = frozenset({f"{PACKAGE}.settings"} | {f"{PACKAGE}.{s}" for s in SURFACES})
#: Not part of the import graph: Alembic's runtime scripts (loaded by path, not imported).
EXCLUDED = (f"{PACKAGE}.store.migrations.env", f"{PACKAGE}.store.migrations.versions")


# -- reading the source ---------------------------------------------------------------------


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    tree: ast.Module
    is_package: bool


def modules(root: Path, package: str = PACKAGE) -> dict[str, Module]:
    """Every module of the package in ``root`` (a folder named after it), parsed."""
    found: dict[str, Module] = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join((package, *(parts[:-1] if is_package else parts)))
        if name.startswith(EXCLUDED) or not all(p.isidentifier() for p in parts):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found[name] = Module(name, path, tree, is_package)
    return found


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except the bodies of ``if TYPE_CHECKING:`` blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking(node.test):
            for child in node.orelse:
                yield child
                yield from _runtime_nodes(child)
            continue
        yield node
        yield from _runtime_nodes(node)


def _resolve(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports(module: Module, known: set[str] | dict[str, Module]) -> set[str]:
    """The package modules ``module`` imports at run time.

    ``from X import Y`` counts as importing ``X.Y`` only, when ``X.Y`` is a module (importing
    a submodule runs its package's ``__init__``, but that is not a dependency of the code).
    """
    found: set[str] = set()
    for node in _runtime_nodes(module.tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in known:
                    found.add(sub)
                elif source in known:
                    found.add(source)
    found.discard(module.name)
    return found


def import_graph(root: Path, package: str = PACKAGE) -> dict[str, set[str]]:
    mods = modules(root, package)
    return {name: imports(mod, mods) for name, mod in mods.items()}


# -- the checks (each returns its offenders) ------------------------------------------------


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(cycles)


def _layer(name: str) -> str:
    """The top-level module or subpackage ``name`` lives in (``""`` for the package itself)."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
    """Imports against the one-way order, as ``importer -> imported: rule``."""
    bad: list[str] = []
    for importer, targets in sorted(graph.items()):
        here = _layer(importer)
        for target in sorted(targets):
            there = _layer(target)
            rule = None
            if here == there or here in SURFACES or here == "":
                pass
            elif there in SURFACES:
                rule = "surfaces are imported by nobody"
            elif there in FOUNDATION or there == "":
                pass
            elif here in FOUNDATION:
                rule = "the foundation imports no subpackage"
            elif here not in LAYERS:
                rule = f"{here!r} is not a known layer"
            elif there not in LAYERS[here]:
                allowed = ", ".join(sorted(LAYERS[here])) or "nothing"
                rule = f"{here} may import the foundation and {allowed}"
            if rule:
                bad.append(f"{importer} -> {target}: {rule}")
    return bad


def _lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    return (node.end_lineno or node.lineno) - start + 1


def size_offenders(root: Path, package: str = PACKAGE) -> list[str]:
    """Modules over :data:`MAX_MODULE_LINES` and functions over :data:`MAX_FUNCTION_LINES`.

    A function's lines run from its first decorator (or ``def``) to its last line, docstring
    included.
    """
    bad: list[str] = []
    for mod in modules(root, package).values():
        rel = mod.path.relative_to(root.parent)
        total = len(mod.path.read_text(encoding="utf-8").splitlines())
        if total > MAX_MODULE_LINES:
            bad.append(f"{rel}: module has {total} lines (> {MAX_MODULE_LINES})")
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = _lines(node)
                if n > MAX_FUNCTION_LINES:
                    bad.append(
                        f"{rel}:{node.lineno}: {node.name}() has {n} lines (> {MAX_FUNCTION_LINES})"
                    )
    return bad


def environment_readers(root: Path, package: str = PACKAGE) -> list[str]:
    """Library code that reads the environment: ``os.environ``, ``os.getenv``, ``Settings(``."""
    allowed = {m.replace(PACKAGE, package, 1) for m in READS_ENVIRONMENT}
    bad: list[str] = []
    for mod in modules(root, package).values():
        if mod.name in allowed or any(mod.name.startswith(f"{m}.") for m in allowed):
            continue  # settings, the surfaces and, when a surface is a package, its modules
        rel = mod.path.relative_to(root.parent)
        for node in ast.walk(mod.tree):
            what: str | None = None
            if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "environb"}:
                what = f"os.{node.attr}"
            elif isinstance(node, ast.ImportFrom) and node.module == "os":
                names = {a.name for a in node.names} & {"environ", "getenv", "environb"}
                what = ", ".join(f"os.{n}" for n in sorted(names)) or None
            elif isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                what = "Settings(...)" if name == "Settings" else None
            if what:
                bad.append(f"{rel}:{getattr(node, 'lineno', 0)}: {what}")
    return bad


# -- the package ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(PACKAGE_DIR)


def test_the_graph_sees_the_package(graph: dict[str, set[str]]) -> None:
    # sanity: the walk finds the layers and resolves absolute and relative imports
    assert {f"{PACKAGE}.{m}" for m in FOUNDATION | SURFACES} <= set(graph)
    assert f"{PACKAGE}.cities" in graph[f"{PACKAGE}.pipeline"] | set().union(*graph.values())
    assert not any(name.startswith(EXCLUDED) for name in graph)


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    cycles = import_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_layers_import_one_way(graph: dict[str, set[str]]) -> None:
    bad = layering_violations(graph)
    assert not bad, f"{len(bad)} import(s) against the layering:\n" + "\n".join(bad)


def test_modules_and_functions_are_short() -> None:
    bad = size_offenders(PACKAGE_DIR)
    assert not bad, f"{len(bad)} too long:\n" + "\n".join(bad)


def test_library_never_reads_the_environment() -> None:
    bad = environment_readers(PACKAGE_DIR)
    assert not bad, "the environment is read outside settings and the surfaces:\n" + "\n".join(bad)


def imports_of_test_modules(folder: Path) -> list[str]:
    """``file: module`` for each import of a ``test_*`` module by another file of ``folder``."""
    found = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            found += [
                f"{path.name}: {n}" for n in names if n.rpartition(".")[2].startswith("test_")
            ]
    return found


def test_tests_share_helpers_not_test_modules(tmp_path: Path) -> None:
    here = Path(__file__).resolve().parent
    assert imports_of_test_modules(here) == []
    (tmp_path / "test_a.py").write_text("from tests.test_b import helper\n", encoding="utf-8")
    (tmp_path / "test_c.py").write_text(
        "import test_b\nfrom tests import cases\n", encoding="utf-8"
    )
    assert imports_of_test_modules(tmp_path) == [
        "test_a.py: tests.test_b",
        "test_c.py: test_b",
    ]


# -- every check can fail -------------------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for rel, text in {"__init__.py": "", **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not (path.parent / "__init__.py").exists():
            (path.parent / "__init__.py").write_text("", encoding="utf-8")
        path.write_text(text, encoding="utf-8")
    return root


def test_cycle_is_found(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "a.py": "from pkg import b\n",
            "b.py": "from . import c\n",
            "c.py": "import pkg.a\n",
            "d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n",
            "e.py": "from pkg.a import something\n",
        },
    )
    graph = import_graph(root, "pkg")
    assert graph["pkg.d"] == set()  # type-checking imports are not dependencies
    assert graph["pkg.e"] == {"pkg.a"}
    assert import_cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_from_package_import_submodule_is_not_a_cycle(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "osm/__init__.py": "from pkg.osm.ingest import ingest\n",
            "osm/ingest.py": "from pkg.osm import tags\n",
            "osm/tags.py": "",
        },
    )
    graph = import_graph(root, "pkg")
    assert graph["pkg.osm.ingest"] == {"pkg.osm.tags"}
    assert import_cycles(graph) == []


def test_layering_violations_are_found(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "schema.py": "from pkg.osm import tags\n",
            "osm/tags.py": "from pkg.analysis.crowd import capacity\n",
            "analysis/crowd.py": "from pkg.osm import tags\nfrom pkg import schema\n",
            "store/base.py": "from pkg.analysis import crowd\n",
            "outputs/maps.py": "from pkg.pipeline import run\nfrom pkg.assess import scores\n",
            "live/risk.py": "from pkg.outputs import maps\n",
            "assess/scores.py": "",
            "pipeline.py": "from pkg.outputs import maps\nfrom pkg.store import base\n",
        },
    )
    assert layering_violations(import_graph(root, "pkg")) == [
        "pkg.live.risk -> pkg.outputs.maps: live may import the foundation and analysis, "
        "assess, osm, store",
        "pkg.osm.tags -> pkg.analysis.crowd: osm may import the foundation and nothing",
        "pkg.outputs.maps -> pkg.pipeline: surfaces are imported by nobody",
        "pkg.schema -> pkg.osm.tags: the foundation imports no subpackage",
        "pkg.store.base -> pkg.analysis.crowd: store may import the foundation and nothing",
    ]


def test_long_modules_and_functions_are_all_reported(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    short = "\n".join(f"    y{i} = {i}" for i in range(MAX_FUNCTION_LINES - 2))
    root = _tree(
        tmp_path,
        {
            "long.py": f'def f():\n    """Doc."""\n{body}\n\n\ndef g():\n{short}\n',
            "big.py": "\n".join(f"v{i} = {i}" for i in range(MAX_MODULE_LINES + 1)) + "\n",
            "nested.py": "class C:\n    @staticmethod\n    def h():\n" + indent(body, "    "),
        },
    )
    bad = size_offenders(root, "pkg")
    assert sorted(bad) == [
        f"pkg/big.py: module has {MAX_MODULE_LINES + 1} lines (> {MAX_MODULE_LINES})",
        f"pkg/long.py:1: f() has {MAX_FUNCTION_LINES + 2} lines (> {MAX_FUNCTION_LINES})",
        f"pkg/nested.py:3: h() has {MAX_FUNCTION_LINES + 2} lines (> {MAX_FUNCTION_LINES})",
    ]


def test_environment_readers_are_found(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "settings.py": "import os\nHOME = os.environ['HOME']\n",
            "cli/__init__.py": "from pkg.settings import Settings\nS = Settings()\n",
            "cli/_common.py": "import os\nX = os.environ\n",
            "osm/a.py": "import os\nX = os.getenv('X')\n",
            "osm/b.py": "from os import environ\n",
            "store/c.py": "from pkg.settings import Settings\ndef f():\n    return Settings()\n",
            "store/d.py": '"""Doc: ``Settings(store="gpkg")``, os.environ."""\n',
        },
    )
    assert environment_readers(root, "pkg") == [
        "pkg/osm/a.py:2: os.getenv",
        "pkg/osm/b.py:1: os.environ",
        "pkg/store/c.py:3: Settings(...)",
    ]


# -- the CI guard of tests/conftest.py for modules skipped at collection --------------------

CONFTEST = Path(__file__).with_name("conftest.py")

SKIPPED_MODULES = {
    "test_needs_package": """
import pytest

needed = pytest.importorskip("geo_protect_no_such_package")
pytestmark = pytest.mark.browser


def test_uses_it():
    assert needed
""",
    "test_skips_itself": """
import pytest

pytest.skip("no server here", allow_module_level=True)


def test_never_runs():
    pass
""",
}


@pytest.mark.parametrize(("ci", "code"), [("true", 1), ("", 0), ("false", 0)])
@pytest.mark.parametrize("also_passing", [True, False])
def test_ci_guard_fails_modules_skipped_at_collection(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    ci: str,
    code: int,
    also_passing: bool,
) -> None:
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    pytester.makeini("[pytest]\nmarkers =\n    postgis: db\n    browser: chromium\n")
    pytester.makepyfile(**SKIPPED_MODULES)
    if also_passing:
        pytester.makepyfile(test_fine="def test_fine():\n    pass\n")
    monkeypatch.setenv("CI", ci)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=int(also_passing), skipped=2)
    if not also_passing and not code:
        assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    else:
        assert result.ret == code
    if code:
        result.stdout.fnmatch_lines(
            [
                "*modules skipped at collection in CI*",
                "*CI=true: 2 module(s) were skipped at collection*the session fails*",
                "*test_needs_package.py: could not import 'geo_protect_no_such_package'*",
                "*test_skips_itself.py: no server here*",
            ]
        )
    else:
        result.stdout.no_fnmatch_line("*skipped at collection in CI*")


def test_ci_guard_still_fails_skipped_required_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    pytester.makeini("[pytest]\nmarkers =\n    postgis: db\n    browser: chromium\n")
    pytester.makepyfile(
        "import pytest\n\n"
        "@pytest.mark.browser\n"
        "@pytest.mark.skipif(True, reason='no chromium')\n"
        "def test_browser():\n    pass\n"
    )
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*test_browser [[]browser[]]*no chromium*"])
    result.stdout.no_fnmatch_line("*skipped at collection in CI*")


@pytest.mark.parametrize(("ci", "outcome"), [("true", "failed"), ("", "skipped")])
def test_a_missing_dependency_fails_in_ci_and_skips_elsewhere(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str, outcome: str
) -> None:
    """Even without a required marker, :func:`tests.needs.unavailable` cannot pass in CI."""
    pytester.makepyfile(
        "from tests.needs import unavailable\n\n"
        "def test_needs_a_tool():\n"
        "    unavailable('frobnicator is not installed')\n"
    )
    monkeypatch.setenv("CI", ci)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rfs")
    result.assert_outcomes(**{outcome: 1})
    result.stdout.fnmatch_lines(["*frobnicator is not installed*"])
    if outcome == "failed":
        result.stdout.fnmatch_lines(["*required in CI but unavailable*"])
