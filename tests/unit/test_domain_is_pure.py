"""CONVENTIONS habit 1: domain/ imports none of the infrastructure, reads no clock, draws no dice."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
FORBIDDEN_PACKAGES = {"celery", "kombu", "redis", "sqlalchemy", "tenacity", "httpx", "psycopg", "random", "secrets", "time", "uuid", "os", "socket", "requests"}
FORBIDDEN_CALLS = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"), ("time", "time"), ("time", "monotonic")}

DOMAIN_FILES = sorted(DOMAIN.rglob("*.py"))


def test_there_are_domain_files_to_check():
    assert len(DOMAIN_FILES) > 5


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=lambda p: str(p.relative_to(DOMAIN)))
def test_domain_module_imports_no_infrastructure(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN_PACKAGES


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=lambda p: str(p.relative_to(DOMAIN)))
def test_domain_module_reads_no_clock_and_no_randomness(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else None
            assert (name, node.func.attr) not in FORBIDDEN_CALLS, f"{path.name}:{node.lineno} calls {name}.{node.func.attr}"


def test_domain_file_handles_no_io():
    for path in DOMAIN_FILES:
        tree = ast.parse(path.read_text())
        calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert not calls & {"open", "input", "print", "exec", "eval"}, path.name
