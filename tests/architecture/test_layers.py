"""The architecture, pinned: layers import downwards only, and no module imports itself
back through others (at run time or for types).

Layers, lowest first: the pure packages ``rules`` (the config language) and ``adapters``
(provider translation and the registry of provider kinds, which may build on ``rules``:
each kind's config class is made of its fields), neither importing any I/O library and
``rules`` never importing ``adapters``; then ``router.upstream``, ``router.traffic``,
``router.routing``, ``router.http`` and ``router.ops``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("adapters", "rules", "router")
ROUTER_LAYERS = ("upstream", "traffic", "routing", "http", "ops")
IO_LIBRARIES = ("trio", "httpx", "httpx2", "h11", "hypercorn", "router")
MAX_MODULE_LINES = 400
# Known debts being paid off (issue 9); strict xfail, so each entry must go once fixed.
PENDING_SIZE: set[str] = set()
PENDING_LAYERS: set[str] = set()
PENDING_CYCLES = False


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports, anywhere in it (functions and TYPE_CHECKING too)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.add(target)
            # ``from . import x`` / ``from pkg import mod``: a submodule import.
            found.update(
                f"{target}.{alias.name}"
                for alias in node.names
                if f"{target}.{alias.name}" in MODULES
            )
    return found


GRAPH = {
    name: {imp for imp in _imports(name, path) if imp in MODULES and imp != name}
    for name, path in MODULES.items()
}


def _layer(module: str) -> int:
    """rules is -1, adapters 0; router's subpackages count up from 1; router itself tops."""
    parts = module.split(".")
    if parts[0] == "rules":
        return -1
    if parts[0] == "adapters":
        return 0
    if len(parts) == 1 or parts[1] not in ROUTER_LAYERS:
        return len(ROUTER_LAYERS) + 1  # router/__init__, __main__: the package's face
    return ROUTER_LAYERS.index(parts[1]) + 1


#: What each pure package must not import: I/O, and (for rules) the layer above it.
FORBIDDEN = {"rules": (*IO_LIBRARIES, "adapters"), "adapters": IO_LIBRARIES}


def test_the_pure_packages_import_no_io_and_rules_not_adapters() -> None:
    for name, path in MODULES.items():
        top = name.split(".")[0]
        if top == "router":
            continue
        bad = {imp for imp in _imports(name, path) if imp.split(".")[0] in FORBIDDEN[top]}
        assert not bad, f"{name} imports {sorted(bad)}"


def _pending(names: set[str], name: str) -> object:
    mark = pytest.mark.xfail(strict=True, reason="known debt (issue 9)")
    return pytest.param(name, marks=mark) if name in names else name


@pytest.mark.parametrize(
    "name", [_pending(PENDING_LAYERS, n) for n in MODULES if n.startswith("router.")]
)
def test_router_layers_import_downwards_only(name: str) -> None:
    upward = {imp for imp in GRAPH[name] if _layer(imp) > _layer(name) and not _same(imp, name)}
    assert not upward, f"{name} imports a higher layer: {sorted(upward)}"


def _same(a: str, b: str) -> bool:
    """Modules of one subpackage may import each other (cycles are checked apart)."""
    return a.split(".")[:2] == b.split(".")[:2]


@pytest.mark.xfail(PENDING_CYCLES, strict=True, reason="known debt (issue 9)")
def test_no_import_cycles() -> None:
    # Package __init__ modules re-export their children: edges into them would make
    # every child "import itself"; the children's own edges are what matter.
    graph = {
        name: {imp for imp in deps if MODULES[imp].name != "__init__.py"}
        for name, deps in GRAPH.items()
    }
    seen: set[str] = set()
    on_path: list[str] = []

    def visit(node: str) -> None:
        if node in on_path:
            cycle = [*on_path[on_path.index(node) :], node]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if node in seen:
            return
        on_path.append(node)
        for dep in sorted(graph[node]):
            visit(dep)
        on_path.pop()
        seen.add(node)

    for name in sorted(graph):
        visit(name)


@pytest.mark.parametrize("name", [_pending(PENDING_SIZE, n) for n in sorted(MODULES)])
def test_modules_stay_small(name: str) -> None:
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{name} has {lines} lines"
