"""T-04: nested loops, string concatenation in loops, files opened inside loops."""

from __future__ import annotations

import ast

from common import functions, modules, table

LOOPS = (ast.For, ast.While)
findings: set[tuple[str, str]] = set()
for path, tree, _ in modules():
    for func in functions(tree):
        for loop in (n for n in ast.walk(func) if isinstance(n, LOOPS)):
            for inner in ast.walk(loop):
                where = f"{path}:{getattr(inner, 'lineno', loop.lineno)}"
                if inner is not loop and isinstance(inner, LOOPS):
                    findings.add((where, f"nested loop in `{func.name}`: quadratic in the input size"))
                if (
                    isinstance(inner, ast.AugAssign)
                    and isinstance(inner.op, ast.Add)
                    and isinstance(inner.value, ast.JoinedStr | ast.Constant)
                ):
                    findings.add((where, f"string built with `+=` in a loop in `{func.name}` (use join)"))
                if isinstance(inner, ast.Call) and getattr(inner.func, "id", "") == "open":
                    findings.add((where, f"`open()` inside a loop in `{func.name}`: open the file once"))
table(sorted(findings))
