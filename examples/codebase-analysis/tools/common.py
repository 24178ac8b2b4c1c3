"""Shared by the analysis scripts: the file list T-01 wrote, parsed once per file."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

FILES = Path("out/files.txt")


def modules() -> Iterator[tuple[str, ast.Module, list[str]]]:
    """(path, syntax tree, source lines) for every file the scan listed."""
    for path in FILES.read_text(encoding="utf-8").split():
        source = Path(path).read_text(encoding="utf-8")
        yield path, ast.parse(source, path), source.splitlines()


def functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def table(findings: list[tuple[str, str]]) -> None:
    """Print the findings as markdown: a count line, then one row per finding."""
    print(f"**{len(findings)} findings**")
    print()
    if findings:
        print("| Where | Finding |")
        print("|-------|---------|")
        for where, what in findings:
            print(f"| `{where}` | {what} |")
