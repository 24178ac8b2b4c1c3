"""T-02: long functions, missing docstrings, bare excepts and TODO markers."""

from __future__ import annotations

import ast

from common import functions, modules, table

MAX_LINES = 25
findings: list[tuple[str, str]] = []
for path, tree, lines in modules():
    for func in functions(tree):
        where = f"{path}:{func.lineno}"
        length = (func.end_lineno or func.lineno) - func.lineno + 1
        if length > MAX_LINES:
            findings.append((where, f"`{func.name}` is {length} lines long (over {MAX_LINES})"))
        if ast.get_docstring(func) is None:
            findings.append((where, f"`{func.name}` has no docstring"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler) and node.type is None:
            findings.append((f"{path}:{node.lineno}", "bare `except:` hides every error"))
    for number, line in enumerate(lines, start=1):
        if "TODO" in line or "FIXME" in line:
            findings.append((f"{path}:{number}", f"open `{line.split('#', 1)[-1].strip()}`"))
table(findings)
