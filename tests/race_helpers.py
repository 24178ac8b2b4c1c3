"""What the tests of raced attempts share (tests/test_hedge.py, tests/test_best_of.py): a plan of
shell tasks whose race is set by one column of their row, their scripts in Task Details."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def write_race_plan(project: Path, column: str, rows: list[tuple[str, str, str]], **settings: Any) -> None:
    """A plan of shell tasks: (id, ``column``'s cell, script); scripts in Task Details."""
    front = {"backend": "shell", "max_parallel": 4, "retries": 0, "kill_grace": 1, "timeout": 120,
             "inactivity_timeout": "none", **settings}  # fmt: skip
    lines = ["---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", f"# {column} test", "",
             "## Task Decomposition", f"| Task ID | Task Name | Description | Dependencies | {column} |",
             "|---|---|---|---|---|"]  # fmt: skip
    lines += [f"| {tid} | Task {tid} | Run it | None | {cell} |" for tid, cell, _ in rows]
    lines += ["", "## Task Details"]
    for tid, _, script in rows:
        lines += ["", f"### {tid} Task {tid}", "```bash", script, "```"]
    path = project / ".orchestrator" / "master_plan.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
