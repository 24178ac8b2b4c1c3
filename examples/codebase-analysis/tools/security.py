"""T-03: eval/exec, shell=True, SQL built from strings, hard-coded secrets."""

from __future__ import annotations

import ast
import re

from common import modules, table

SECRET = re.compile(r"password|passwd|secret|token|api_key", re.I)
findings: list[tuple[str, str]] = []
for path, tree, _ in modules():
    for node in ast.walk(tree):
        where = f"{path}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in {"eval", "exec"}:
                findings.append((where, f"**high**: `{name}()` runs arbitrary code"))
            if any(k.arg == "shell" and isinstance(k.value, ast.Constant) and k.value.value for k in node.keywords):
                findings.append((where, "**high**: `shell=True` with a command built from input"))
            if name == "execute" and node.args and not isinstance(node.args[0], ast.Constant):
                findings.append((where, "**high**: SQL passed as a built string (use `?` parameters)"))
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name) and SECRET.search(target.id):
                    findings.append((where, f"**medium**: hard-coded secret in `{target.id}`"))
table(sorted(findings, key=lambda f: ("**high**" not in f[1], f[0])))
