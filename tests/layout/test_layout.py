"""The house rules, checked on the source: no import circles, no upward imports, and wings of
`exchange` that meet only through each other's `__init__`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("govex", "catalog", "contracts", "connectors", "quality", "lineage", "records",
            "exchange")
# Lower floors may import only floors below them (and each other's public API, never exchange).
FLOORS = {
    "govex": set(),
    "contracts": {"govex"},
    "connectors": {"govex", "contracts"},
    "catalog": {"govex", "contracts"},
    "quality": {"govex", "contracts"},
    "lineage": {"govex", "contracts", "catalog"},
    "records": {"govex", "contracts", "catalog", "connectors"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts and "versions" in path.parts:
                continue
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path, *, top_level_only: bool) -> set[str]:
    """The govex modules `name` imports (a `from package import sub` counts as `package.sub`
    when that is a module)."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # `if TYPE_CHECKING:` blocks import nothing at run time
        nodes = [n for n in nodes if isinstance(n, ast.Import | ast.ImportFrom)]
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [node.module]
            targets += [f"{node.module}.{a.name}" for a in node.names
                        if f"{node.module}.{a.name}" in MODULES]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _is_package_init(module: str, importer: str) -> bool:
    """`exchange.cli/__init__` importing its own `exchange.cli.main` is a facade, not a
    circle: a package re-exporting its submodules."""
    return importer == module.rpartition(".")[0] or MODULES[importer].name == "__init__.py"


def test_no_import_circles() -> None:
    graph = {
        name: {t for t in _imports(name, path, top_level_only=True)
               if not (MODULES[name].name == "__init__.py" and t.startswith(name + "."))
               and not (MODULES[t].name == "__init__.py" and name.startswith(t + "."))}
        for name, path in MODULES.items()
    }
    assert _cycles(graph) == []


@pytest.mark.parametrize("floor", sorted(FLOORS))
def test_lower_floors_import_only_below(floor: str) -> None:
    allowed = FLOORS[floor] | {floor}
    wrong = sorted(
        f"{name} imports {target}"
        for name, path in MODULES.items() if name.split(".")[0] == floor
        for target in _imports(name, path, top_level_only=False)
        if target.split(".")[0] not in allowed
    )
    assert wrong == []


def test_wings_meet_through_their_init() -> None:
    """A wing of `exchange` imports another wing by its public face: `exchange.run` or one of
    the modules its docstring names (`from exchange.run import bookkeeping`), never deeper."""
    wrong = []
    for name, path in MODULES.items():
        parts = name.split(".")
        if parts[0] != "exchange" or len(parts) < 2:
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
                continue
            target = node.module.split(".")
            if target[0] != "exchange" or len(target) < 2 or target[1] == parts[1]:
                continue
            if len(target) > 2 and "migrations" not in parts:
                wrong.append(f"{name}: from {node.module} import …")
    assert wrong == []



def test_settings_are_read_in_one_place() -> None:
    """Every `GOVEX_*` variable is read by govex/settings.py; a variable read in two modules
    will one day be read two ways."""
    reads = re.compile(r"""(environ\.get|getenv|env\.get|environ\[)\(?\s*["']GOVEX_""")
    wrong = [name for name, path in MODULES.items()
             if name != "govex.settings" and reads.search(path.read_text())]
    assert wrong == []


def test_no_path_reaches_back_into_the_repository() -> None:
    """Data the program needs is package data; nothing walks up out of the package."""
    wrong = [str(path.relative_to(ROOT)) for path in MODULES.values()
             if "parents[" in path.read_text()]
    assert wrong == []
