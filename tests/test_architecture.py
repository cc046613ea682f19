"""The house's rules that import-linter does not state (its contracts are in
pyproject.toml and run in .ci/run): no module of aftercall imports another inside a
function. With the layers of docs/architecture.md no import loop exists to dodge, and an
import hidden in a function hides a dependency from the contracts' readers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("aftercall", "core", "dialer", "ivr", "scoring", "sms")
OURS = (*PRODUCT, "phonesim")


def product_modules() -> list[Path]:
    return sorted(
        path
        for package in PRODUCT
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    )


def imports_inside_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [f"{path.relative_to(ROOT)}:{node.lineno} {name}" for name in names
                      if name.split(".")[0] in OURS]  # fmt: skip
    return found


def test_the_product_has_modules_to_check():
    assert len(product_modules()) > 50


@pytest.mark.parametrize("path", product_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_aftercall_inside_a_function(path):
    assert imports_inside_functions(path) == []
