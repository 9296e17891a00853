"""The collector's packages depend one way (docs/architecture.md): storage below processors and query,
which never import each other; receivers and the WAL never import processors. Read from the source's
own import statements (module level and inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import llmscope_collector

ROOT = Path(llmscope_collector.__file__).parent
FORBIDDEN = {
    "storage": ("processors", "query", "api", "alerts", "receiver"),
    "query": ("processors", "api", "receiver"),
    "processors": ("query", "api", "receiver"),
    "receiver": ("processors", "query", "api"),
    "wal": ("processors", "query", "api", "receiver", "storage"),
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_downwards(package: str) -> None:
    banned = tuple(f"llmscope_collector.{name}" for name in FORBIDDEN[package])
    wrong = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / package).rglob("*.py")
        for name in _imports(path)
        if name.startswith(banned)
    }
    assert not wrong, sorted(wrong)
