"""What the tests of raced attempts share (tests/test_hedge.py, tests/test_best_of.py): a plan of
shell tasks whose race is set by one column of their row, their scripts in Task Details; a run
killed -9 at the moment its git moves a ref."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import yaml
from runner_helpers import start, wait_until


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


# Armed, it holds the runner's git in the moment after ``$REF`` moved (or was deleted: its new value
# all zeroes, as its old one is when the deletion named none) by a git command whose line holds
# ``$COMMAND`` (a winner's merge into the integration branch: ``merge --no-ff``; a merge's mark
# cleared once its result is written: ``update-ref -d``).
_HOLD_AT = """#!/bin/sh
[ "$1" = committed ] && [ -e "$HOLD_DIR/armed" ] || exit 0
awk '$3 == "$REF" && ($1 != $2 || $2 ~ /^0+$/) {f = 1} END {exit !f}' || exit 0
tr '\\0' ' ' < /proc/$PPID/cmdline | grep -q -- '$COMMAND' || exit 0
echo $$ > "$HOLD_DIR/held.pid"
exec sleep 60
"""


def killed_at(tmp_path: Path, project: Path, ref: str, command: str) -> None:
    """A run of ``project`` killed -9 once its git moved ``ref`` by ``command``."""
    hook = project / ".git" / "hooks" / "reference-transaction"
    text = _HOLD_AT.replace("$HOLD_DIR", str(tmp_path)).replace("$REF", ref).replace("$COMMAND", command)
    hook.write_text(text, encoding="utf-8")
    hook.chmod(0o755)
    (tmp_path / "armed").touch()
    held = tmp_path / "held.pid"
    held.unlink(missing_ok=True)
    runner = start(project)
    try:
        wait_until(lambda: held.exists() and held.read_text().strip() != "", f"{ref} moved by{command}", timeout=90)
        runner.kill()
    finally:
        if runner.process.poll() is None:
            runner.kill()
        if held.exists() and held.read_text().strip():
            os.kill(int(held.read_text()), signal.SIGKILL)
    (tmp_path / "armed").unlink()
    wait_until(lambda: not list((project / ".git").rglob("*.lock")), "the git it held to end")
