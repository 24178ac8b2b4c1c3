"""A failure a fallback took over leaves the run a success; a task that runs whatever the
outcome (a clean-up) takes nothing over: the run that failed says so (exit 1)."""

from __future__ import annotations

from pathlib import Path

from runner_helpers import cli

PLAN = """---
backend: shell
retries: 0
---
## Task Decomposition
| Task ID | Command | Dependencies | Condition |
|---------|---------|--------------|-----------|
| T-01 | exit 3 | None | |
{row}
"""


def _run(project: Path, row: str) -> int:
    path = project / ".orchestrator" / "master_plan.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PLAN.format(row=row), encoding="utf-8")
    return cli(project, "run").code


def test_a_fallback_takes_the_failure_over(tmp_path: Path) -> None:
    assert _run(tmp_path, "| T-02 | echo plan B | T-01 | T-01 failed |") == 0


def test_a_task_that_runs_whatever_the_outcome_takes_nothing_over(tmp_path: Path) -> None:
    assert _run(tmp_path, "| T-02 | echo clean up | T-01 | T-01 failed or T-01 completed |") == 1


def test_a_task_that_runs_when_its_upstream_did_not_complete_is_a_fallback(tmp_path: Path) -> None:
    assert _run(tmp_path, "| T-02 | echo plan B | T-01 | not T-01 completed |") == 0
