"""A command's peak memory stays under 10 x the plan's size + 12 KB a task + 150 MB: a plan just under
``PLAN_LIMIT`` runs within it, one just over is refused before anything is written.

``bench/memory.py`` measures every command on plans of every shape; ``PLAN_LIMIT`` comes from it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from runner_helpers import CLI, HANG_GUARD, workspace

from orchestrator.plan.model import PLAN_LIMIT

MB = 1024 * 1024
TASKS = 20

# Linux counts the address space a child was forked with in its peak RSS, so the command is
# started from a small Python process (not from pytest, which may be big by now) that reports it.
_MEASURE = """
import os, subprocess, sys
process = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(process.pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _plan(size: int) -> str:
    """A plan of exactly ``size`` bytes: ``TASKS`` tasks, each with a long Task Details section,
    and an emoji in its title (the plan's text then takes 4 bytes a character in memory, as every
    plan does once a run wrote its status blocks: the worst case of a size)."""
    head = "---\nbackend: shell\nmax_parallel: 4\n---\n# 🎯 Large plan\n\n## Task Decomposition\n"
    head += "| Task ID | Task Name | Command | Dependencies |\n|---|---|---|---|\n"
    head += "".join(
        f"| T-{n:02d} | Part {n} | true | {f'T-{n - 1:02d}' if n > 1 else 'None'} |\n" for n in range(1, TASKS + 1)
    )
    head += "\n## Task Details\n"
    line = "Read the module and write down what each function does, and who calls it.\n"
    room = size - len(head.encode("utf-8"))
    sections = []
    for n in range(1, TASKS + 1):
        heading = f"\n### T-{n:02d} Part {n}\n"
        share = room // (TASKS - n + 1)
        filler = share - len(heading) - 1
        body = (line * (filler // len(line) + 1))[:filler] + "\n"
        sections.append(heading + body)
        room -= share
    text = head + "".join(sections)
    assert len(text.encode("utf-8")) == size
    return text


def _peak_mb(project: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    rss = project / "rss"
    completed = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(rss), *CLI, *args],
        cwd=project,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )
    peak = int(rss.read_text()) / 1024  # ru_maxrss is in KiB on Linux
    rss.unlink()
    return completed, peak


def test_a_plan_just_under_the_limit_runs_within_the_memory_rule(tmp_path: Path) -> None:
    size = PLAN_LIMIT - 1024
    plan = workspace(tmp_path) / "master_plan.md"
    plan.parent.mkdir(parents=True)
    plan.write_text(_plan(size), encoding="utf-8")
    completed, peak = _peak_mb(tmp_path, "run", "--executor", "fake")
    assert completed.returncode == 0, completed.stderr[-3000:]
    limit = 10 * size / MB + 12 * TASKS / 1024 + 150
    assert peak < limit, f"run on a {size:,}-byte plan peaked at {peak:.0f} MB, over the rule's {limit:.0f}"
    assert len(list((workspace(tmp_path) / "results").iterdir())) == TASKS
    # The status blocks the run wrote took the file over the limit: they are the tool's, not counted.
    assert plan.stat().st_size > PLAN_LIMIT
    completed, peak = _peak_mb(tmp_path, "status")
    assert completed.returncode == 0, completed.stderr
    assert peak < limit


def test_a_plan_over_the_limit_is_refused_with_one_line_and_nothing_written(tmp_path: Path) -> None:
    plan = workspace(tmp_path) / "master_plan.md"
    plan.parent.mkdir(parents=True)
    plan.write_text(_plan(PLAN_LIMIT + 1), encoding="utf-8")
    for command in ("validate", "run", "render", "status"):
        completed, _ = _peak_mb(tmp_path, command)
        assert completed.returncode == 2, completed.stderr
        problem, count = completed.stderr.strip().splitlines()
        assert problem == (
            f".orchestrator/master_plan.md: holds {PLAN_LIMIT + 1:,} bytes outside its status blocks, more than "
            f"the {PLAN_LIMIT:,} a plan may have (a command's memory stays under 10 x the plan's size + 12 KB a task "
            "+ 150 MB) — "
            "split it into smaller plans, and put large text in files the tasks read"
        )
        assert count == "1 problem; nothing was written."
        assert sorted(path.name for path in workspace(tmp_path).iterdir()) == ["master_plan.md"]
