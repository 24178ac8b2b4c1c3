"""Resume: what a run does again after another, and what it leaves as it was: edits, a hand-edited
brief, a task added later, --only, --rerun, reset, attempt numbers across runs. (Ctrl-C, kill -9
of the runner, orphans and the lock are test_runner_crashes.py's.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from runner_helpers import (
    Spec,
    cli,
    cli_in_process,
    kill_leftovers,
    read_pids,
    results,
    run,
    statuses,
    workspace,
    write_plan,
)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """The test's project directory; runners and task processes it leaves are killed at the end."""
    yield tmp_path
    kill_leftovers(tmp_path, read_pids(tmp_path).values())
    kill_leftovers(tmp_path, read_pids(tmp_path / "pids", "*").values() if (tmp_path / "pids").is_dir() else [])


# --- what runs again -----------------------------------------------------------------------------


def _chain_plan(project: Path) -> list[Spec]:
    specs = [
        Spec("T-01", "echo one", inline=True),
        Spec("T-02", "echo two", deps=["T-01"], inline=True),
        Spec("T-03", "echo three", deps=["T-02"], inline=True),
        Spec("T-04", "echo four"),  # in Task Details
        Spec("T-05", "echo five", deps=["T-01"], inline=True),
    ]
    write_plan(project, specs, {"cache": True})  # (their answers are their work: reused, as --rerun's test counts)
    return specs


def test_nothing_runs_again_when_nothing_changed(project: Path) -> None:
    _chain_plan(project)
    assert run(project).code == 0
    again = run(project)
    assert again.code == 0
    assert again.tasks("task_started") == []
    assert again.events[0]["already_done"] == 5


def test_edited_task_reruns_with_its_dependents_only(project: Path) -> None:
    _chain_plan(project)
    first = run(project)
    assert first.code == 0, first.stderr
    plan = workspace(project) / "master_plan.md"
    text = plan.read_text()
    assert text.count("| echo two |") == 1
    plan.write_text(text.replace("| echo two |", "| echo two, edited |"))  # T-02's Description cell
    again = run(project)
    assert again.code == 0, again.stderr
    assert sorted(again.tasks("task_started")) == ["T-02", "T-03"]
    assert "two, edited" in (workspace(project) / "results" / "agent-02-result.md").read_text()
    # The same for a script in Task Details; T-04 has no dependents.
    text = plan.read_text()
    assert text.count("echo four\n") == 1
    plan.write_text(text.replace("echo four\n", "echo four, edited\n"))
    again = run(project)
    assert again.tasks("task_started") == ["T-04"]


def test_hand_edited_brief_reruns_that_task(project: Path) -> None:
    specs = [Spec("T-01", "unused"), Spec("T-02", "unused", deps=["T-01"]), Spec("T-03", "unused")]
    write_plan(project, specs, {"backend": "command", "command": ["cat"]})
    assert run(project).code == 0
    brief = workspace(project) / "agent_tasks" / "agent-01.md"
    brief.write_text(brief.read_text() + "\nAlso: HAND-EDITED LINE\n")
    again = run(project)
    assert again.code == 0, again.stderr
    # T-01 sees the edit (its brief is its stdin); T-02 runs again because its input changed.
    assert sorted(again.tasks("task_started")) == ["T-01", "T-02"]
    assert "HAND-EDITED LINE" in (workspace(project) / "results" / "agent-01-result.md").read_text()
    assert brief.read_text().endswith("HAND-EDITED LINE\n")  # the hand edit is kept


def test_task_added_later_runs_alone(project: Path) -> None:
    specs = _chain_plan(project)
    assert run(project).code == 0
    write_plan(project, [*specs, Spec("T-06", "cat $ORCHESTRATOR_INPUTS\necho six", deps=["T-01"])])
    again = run(project)
    assert again.code == 0, again.stderr
    assert again.tasks("task_started") == ["T-06"]
    assert "one" in (workspace(project) / "results" / "agent-06-result.md").read_text()


def test_only_runs_just_the_named_task(project: Path) -> None:
    _chain_plan(project)
    assert run(project).code == 0
    again = run(project, "--only", "T-03")
    assert again.code == 0, again.stderr
    assert again.tasks("task_started") == ["T-03"]


def test_only_with_dependencies_not_completed_is_a_usage_error(project: Path) -> None:
    _chain_plan(project)
    refused = cli(project, "run", "--only", "T-03")
    assert refused.code == 2
    assert "--only T-03" in refused.stderr and "T-02" in refused.stderr and "not completed" in refused.stderr
    assert not (workspace(project) / "results").is_dir() or not list((workspace(project) / "results").iterdir())
    assert cli(project, "run", "--only", "T-99").code == 2
    assert cli(project, "run", "--only", "T-01", "--rerun", "T-02").code == 2


def test_only_accepts_a_set_closed_under_its_own_dependencies(project: Path) -> None:
    """``--only T-02,T-03`` where T-03 depends on T-02: both were asked for, so both run, T-02
    first; T-01, which they need and which is not asked for, must be completed already."""
    _chain_plan(project)
    assert run(project, "--only", "T-01").code == 0
    both = run(project, "--only", "T-03,T-02")
    assert both.code == 0, both.stderr
    assert [(e["event"], e["task"]) for e in both.events if e["event"].startswith("task_")] == [
        ("task_started", "T-02"),
        ("task_completed", "T-02"),
        ("task_started", "T-03"),
        ("task_completed", "T-03"),
    ]
    assert statuses(project) == {"T-01": "completed", "T-02": "completed", "T-03": "completed"}


def test_rerun_runs_the_task_and_everything_downstream(project: Path) -> None:
    # The named task runs for real; what is downstream of it runs too, through the cache: each
    # prints what it printed before, so they are reused (early cutoff), told completed as such.
    _chain_plan(project)
    assert run(project).code == 0
    again = run(project, "--rerun", "T-02")
    assert again.code == 0, again.stderr
    assert again.tasks("task_started") == ["T-02"] and sorted(again.tasks("task_completed")) == ["T-02", "T-03"]
    assert again.events[0]["to_run"] == 2
    all_of_them = run(project, "--rerun", "T-01")
    assert all_of_them.tasks("task_started") == ["T-01"]
    assert sorted(all_of_them.tasks("task_completed")) == ["T-01", "T-02", "T-03", "T-05"]
    named = run(project, "--rerun", "T-01,T-02,T-03,T-05")  # each named: each for real
    assert sorted(named.tasks("task_started")) == ["T-01", "T-02", "T-03", "T-05"]


@pytest.mark.slow
def test_reset_forgets_results(project: Path) -> None:
    specs = [
        Spec("T-01", "echo one"),
        Spec("T-02", "exit 4"),
        Spec("T-03", "echo three", deps=["T-02"]),
        Spec("T-04", "echo four", deps=["T-01"]),
    ]
    write_plan(project, specs)
    assert run(project).code == 1
    assert statuses(project) == {"T-01": "completed", "T-02": "failed", "T-03": "skipped", "T-04": "completed"}

    reset = cli(project, "reset", "T-04")
    assert reset.code == 0 and "Reset 1 task: T-04" in reset.stdout
    assert "T-04" not in statuses(project)
    status = json.loads(cli_in_process(project, "status", "--json").stdout)
    assert {t["id"]: t["status"] for t in status["tasks"]}["T-04"] == "pending"

    reset = cli(project, "reset", "--failed", "--json")
    assert reset.code == 0 and json.loads(reset.stdout)["reset"] == ["T-02", "T-03"]
    assert statuses(project) == {"T-01": "completed"}

    again = run(project)
    assert sorted(again.tasks("task_started")) == ["T-02", "T-04"]  # T-01 kept; T-03 skipped again
    reset = cli(project, "reset", "--all", "--json")
    assert json.loads(reset.stdout)["reset"] == ["T-01", "T-02", "T-03", "T-04"]
    assert statuses(project) == {}
    assert cli(project, "reset", "T-99").code == 2
    assert cli(project, "reset").code == 2


def test_reset_lets_a_failed_task_run_again_after_a_fix(project: Path) -> None:
    write_plan(project, [Spec("T-01", "[ -e fixed ] || exit 1\necho ok"), Spec("T-02", "echo two", deps=["T-01"])])
    assert run(project).code == 1
    (project / "fixed").touch()
    # Unchanged plan: a failed task is not completed, so it runs again without any reset.
    again = run(project)
    assert again.code == 0
    assert again.tasks("task_started") == ["T-01", "T-02"]


def test_attempt_numbers_go_on_across_runs_and_no_log_is_overwritten(project: Path) -> None:
    """A task fails twice in one run, is fixed, and runs again: its new attempt is number 3, and
    the first run's logs stay as they were."""
    write_plan(project, [Spec("T-01", "echo try >&2; test -e fixed; echo done", retries=1)], {"backoff_base": 0.01})
    assert run(project).code == 1
    logs = workspace(project) / "logs"
    first = {path.name: path.read_bytes() for path in logs.iterdir()}
    assert sorted(first) == ["agent-01.attempt-1.err", "agent-01.attempt-2.err"]
    (project / "fixed").touch()
    again = run(project)
    assert again.code == 0, again.stderr
    assert [e["attempt"] for e in again.events if e["event"] == "task_started"] == [3]
    assert {name: (logs / name).read_bytes() for name in first} == first
    assert (logs / "agent-01.attempt-3.out").read_text() == "done\n"
    assert results(project)["T-01"]["attempts"] == 3
