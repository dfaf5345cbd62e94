"""The layout holds: each package imports only the layers below it, and no module imports
itself back through others (function-level imports included: hiding a circle inside a function
keeps it a circle)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "app", "adapters", "workers", "loadtest")
INFRASTRUCTURE = {"celery", "kombu", "redis", "sqlalchemy", "alembic", "psycopg", "httpx", "starlette", "uvicorn", "tenacity"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _runtime_imports(tree: ast.AST) -> list[str]:
    """Every module named by an import statement, wherever it stands (inside a function, or
    under `if TYPE_CHECKING:`: a circle of types is still a circle a reader must untangle)."""
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
            names.append(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def _resolve(name: str) -> str | None:
    """The project module an imported name lives in (`from a.b import c`: a.b.c if it is a
    module, else a.b), or None for a third-party or standard module."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


IMPORTS = {
    module: {_resolve(n) for n in _runtime_imports(ast.parse(path.read_text(), filename=str(path)))} - {None, module}
    for module, path in MODULES.items()
}
THIRD_PARTY = {
    module: {n.split(".")[0] for n in _runtime_imports(ast.parse(path.read_text()))} for module, path in MODULES.items()
}


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in IMPORTS[v]:
            if w not in index:
                connect(w)
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

    for module in sorted(IMPORTS):
        if module not in index:
            connect(module)
    return found


def test_the_check_sees_the_whole_project():
    assert {"app.pipeline", "adapters.db.unit_of_work", "workers.tasks", "loadtest.bench", "domain.decide"} <= MODULES.keys()
    assert "app.applying" in IMPORTS["app.pipeline"]


def test_no_import_circle():
    assert _cycles() == []


# The command modules of the load tools (`generate`, `replay`, `bench`, `profile`, `simulate`,
# `report`; `chaos`).
LOAD_COMMANDS = {"workers.cli.load", "workers.cli.chaos"}


def _project_packages(module: str) -> set[str]:
    return {m.split(".")[0] for m in IMPORTS[module]}


@pytest.mark.parametrize("layer, allowed", [
    ("domain", {"domain"}),
    ("app", {"app", "domain"}),
    ("adapters", {"adapters", "app", "domain"}),
    ("workers", {"workers", "adapters", "app", "domain"}),
])
def test_a_layer_imports_only_the_layers_below_it(layer, allowed):
    wrong = {m: _project_packages(m) - allowed for m in IMPORTS if m.split(".")[0] == layer and m not in LOAD_COMMANDS}
    assert {m: w for m, w in wrong.items() if w} == {}


def test_only_the_load_commands_reach_into_the_load_tools():
    """The runtime ships without depending on its load tooling; `intercept generate|replay|bench`
    and `simulate` reach it through their command modules."""
    users = {m for m in IMPORTS if m.startswith("workers") and "loadtest" in _project_packages(m)}
    assert users <= LOAD_COMMANDS


def test_the_application_layer_touches_no_infrastructure():
    touched = {m: THIRD_PARTY[m] & INFRASTRUCTURE for m in MODULES if m.split(".")[0] in ("app", "domain")}
    assert {m: t for m, t in touched.items() if t} == {}
