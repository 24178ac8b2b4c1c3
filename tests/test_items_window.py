"""A run over many items holds a window of each row's instances in its plan, not every item
(``plan/instances.Later``, ``run/items.expand_known``, ``run/rows``): the first start within
moments whatever the row's size, the others joining as those end, and every door acting on an item
still outside the plan as on one inside it.

Real runs of the CLI as a subprocess on shell tasks, real files in ``tmp_path``; the window set
small (``ORCHESTRATOR_ITEMS_WINDOW``) where a row of a few items stands for one of 100,000.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import test_each
from runner_helpers import Background, cli, results, run, start, wait_until
from test_each import write
from test_spend_forecast import runs_of

from orchestrator.executors.fake import FakeExecutor
from orchestrator.plan.parser import parse_plan
from orchestrator.run.forecasts.spend import learn
from orchestrator.run.items import WINDOW, expand_known
from orchestrator.run.prepare import RunOptions, checked
from orchestrator.state.workspace import Workspace


def many_items(project: Path, count: int) -> int:
    """A plan of one row over ``count`` items (``items.txt``'s lines, ``i1``...) that echoes each, 8 at once."""
    (project / "items.txt").write_text("".join(f"i{n}\n" for n in range(1, count + 1)))
    write(project, [("T-01", "", "lines: items.txt", "echo {{ item }}")], parallel=8)
    return count


def test_a_runs_plan_holds_a_rows_first_items_and_the_rest_join_as_they_end(tmp_path: Path) -> None:
    count = many_items(tmp_path, WINDOW + 300)
    plan, _ = checked(Workspace(tmp_path / ".orchestrator"), RunOptions(), FakeExecutor())
    held = [task_id for task_id in plan.tasks if task_id.startswith("T-01[")]
    assert held == [f"T-01[{n}]" for n in range(1, WINDOW + 1)]  # (not 812 tasks made: the first 512)
    assert list(plan.later["T-01"].left) == list(range(WINDOW + 1, count + 1))
    named, _ = checked(Workspace(tmp_path / ".orchestrator"), RunOptions(only=["T-01"]), FakeExecutor())
    assert not named.later and sum(t.startswith("T-01[") for t in named.tasks) == count  # (--only: every one)

    ran = run(tmp_path)
    assert ran.code == 0, ran.stderr[-2000:]
    done = results(tmp_path)
    assert all(done[f"T-01[{n}]"]["status"] == "completed" for n in range(1, count + 1))
    assert done["T-01"]["status"] == "completed"
    answers = json.loads(test_each.output(tmp_path, "T-01").rsplit("```json\n", 1)[1].split("\n```")[0])
    assert answers["items"] == [f"i{n}" for n in range(1, count + 1)] and answers["failed"] == []
    events = [json.loads(line) for line in (tmp_path / ".orchestrator/state/events.jsonl").read_text().splitlines()]
    started = next(event for event in events if event["event"] == "run_started")
    assert started["to_run"] == count + 1  # (those outside the plan counted: what the run will run)


def one_waits(project: Path, monkeypatch: pytest.MonkeyPatch, items: list[str], slow: int) -> Background:
    """A run of one row over ``items``, one at a time with a window of 2, ``continue`` on failure:
    started, and item number ``slow``, which sleeps 30 s, begun."""
    monkeypatch.setenv("ORCHESTRATOR_ITEMS_WINDOW", "2")
    command = f"[ {{{{ item }}}} = {items[slow - 1]} ] && sleep 30; echo {{{{ item }}}}"
    write(project, [("T-01", "", ", ".join(items), command)], parallel=1, on_item_failure="continue", min_success="0.5")
    runner = start(project)
    brief = project / ".orchestrator" / "agent_tasks" / f"agent-01[{slow}].md"
    wait_until(brief.exists, f"{items[slow - 1]} to start")
    return runner


def test_an_item_outside_the_run_is_cancelled_in_it_and_the_others_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = one_waits(tmp_path, monkeypatch, ["a", "b", "c", "d", "e", "f"], 1)
    try:
        outside = cli(tmp_path, "cancel", "T-01[5]")  # (not in the run's plan yet: it joins, to be cancelled)
        assert outside.code == 0, outside.stdout + outside.stderr
        assert results(tmp_path)["T-01[5]"]["status"] == "cancelled"
        running = cli(tmp_path, "cancel", "T-01[1]")
        assert running.code == 0, running.stdout + running.stderr
        runner.wait()
    finally:
        runner.stop_all()
    done = results(tmp_path)
    states = [done[f"T-01[{n}]"]["status"] for n in range(1, 7)]
    assert states == ["cancelled", "completed", "completed", "completed", "cancelled", "completed"]
    assert done["T-01"]["status"] == "completed"
    assert done["T-01"]["reason"] == "2 of 6 items did not complete: T-01[1], T-01[5]"


def test_the_forecast_counts_a_rows_items_outside_the_runs_plan(tmp_path: Path) -> None:
    """What a run is held to (``max_cost``) is the forecast of every item, not of the window's."""
    (tmp_path / ".orchestrator").mkdir()
    text = "---\nbackend: shell\n---\n## Tasks\n| Task ID | Command | Dependencies | Each |\n|---|---|---|---|\n"
    plan = parse_plan(text + "| T-03 | echo {{ item }} | None | a, b, c, d, e, f |\n")
    plan.path = tmp_path / ".orchestrator" / "master_plan.md"
    expand_known(plan, Workspace(tmp_path / ".orchestrator"), window=2)
    assert len(plan.later["T-03"].left) == 4
    history = runs_of({"T-03[1]": [0.01], "T-03[2]": [0.01]}, kind="shell")
    found = learn(history, plan, {}, tasks=["T-03[1]", "T-03[2]", "T-03"])
    assert sorted(found.tasks) == sorted(f"T-03[{n}]" for n in range(1, 7))
    assert found.cost is not None and found.cost.p50 == pytest.approx(0.06)
    assert found.tasks["T-03[6]"].basis == "row"


# What a row over items does, run again with a window of 2: every item but the first two waits
# outside the run's plan, and joins it as the others end.
WINDOWED: list[Callable[[Path], None]] = [
    test_each.test_the_first_failed_item_stops_those_not_started_and_fails_the_row,
    test_each.test_a_killed_run_loses_no_completed_item_and_runs_none_again,
    test_each.test_status_counts_a_rows_items_while_they_run,
    test_each.test_continue_completes_the_row_listing_its_failed_items_unless_too_few_completed,
    test_each.test_items_from_an_upstreams_answer_are_known_when_it_completes_and_quoted_as_data,
    test_each.test_an_items_brief_is_made_as_it_starts_and_one_never_started_has_none,
    test_each.test_a_rows_result_counts_and_dependents_follow_its_items_when_they_are_fixed_reset_or_cancelled,
    test_each.test_instances_work_in_worktrees_of_their_own_and_each_merges_once,
]


@pytest.mark.parametrize("case", WINDOWED, ids=[case.__name__.removeprefix("test_") for case in WINDOWED])
def test_a_rows_items_behave_the_same_when_most_wait_outside_the_run(
    case: Callable[[Path], None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCHESTRATOR_ITEMS_WINDOW", "2")
    case(tmp_path)


def test_items_that_completed_leave_the_runs_plan_and_their_row_keeps_what_they_spent(tmp_path: Path) -> None:
    """The run holds a window of the row's items, not each item that ran: one that completed leaves
    its plan (``run/itemtable``), and the row's result still lists every answer and sums every
    item's time."""
    from orchestrator.executors.local import LocalExecutor
    from orchestrator.run.runner import Runner

    count = many_items(tmp_path, WINDOW + 200)
    runner = Runner(Workspace(tmp_path / ".orchestrator"), RunOptions(), executor=LocalExecutor())
    assert runner.run().exit_code == 0
    assert runner.scheduler is not None
    held = [t for t in runner.scheduler.parts.plan.tasks if t.startswith("T-01[")]
    assert len(held) < WINDOW // 2, len(held)  # (those that completed in the last flush's second, at most)
    done = results(tmp_path)
    assert [done[f"T-01[{n}]"]["status"] for n in range(1, count + 1)] == ["completed"] * count
    row = done["T-01"]
    assert row["status"] == "completed"
    assert row["duration"] == pytest.approx(sum(done[f"T-01[{n}]"]["duration"] for n in range(1, count + 1)), abs=0.01)
    answers = json.loads(test_each.output(tmp_path, "T-01").rsplit("```json\n", 1)[1].split("\n```")[0])
    assert answers["items"] == [f"i{n}" for n in range(1, count + 1)]


def test_an_item_that_left_the_runs_plan_is_answered_as_a_completed_task_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = one_waits(tmp_path, monkeypatch, ["a", "b", "c", "d"], 4)
    try:
        wait_until(lambda: {"T-01[1]", "T-01[2]", "T-01[3]"} <= set(results(tmp_path)), "a, b and c to complete")
        time.sleep(1.0)  # (a few of the run's flushes: out of its plan by now, and answered the same either way)
        retried = cli(tmp_path, "retry", "T-01[1]")  # (completed, and out of the run's plan by now)
        assert retried.code != 0 and "T-01[1] is completed" in retried.stdout + retried.stderr, retried
        cancelled = cli(tmp_path, "cancel", "T-01[2]")
        assert cancelled.code != 0 and "T-01[2] is completed: there is nothing to cancel" in (
            cancelled.stdout + cancelled.stderr
        ), cancelled
        assert cli(tmp_path, "cancel", "T-01[4]").code == 0
        runner.wait()
    finally:
        runner.stop_all()
    done = results(tmp_path)
    assert [done[f"T-01[{n}]"]["status"] for n in range(1, 5)] == ["completed"] * 3 + ["cancelled"]


def test_the_first_failed_item_stops_the_rest_when_those_before_it_left_the_runs_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCHESTRATOR_ITEMS_WINDOW", "2")
    write(tmp_path, [("T-01", "", "a, b, c, d, e, f", "[ {{ item }} = d ] && { sleep 1.5; exit 3; }; echo {{ item }}")],
          parallel=1)  # fmt: skip
    ran = run(tmp_path)  # (a, b and c out of the run's plan by the time d fails: it stops e and f all the same)
    assert ran.code == 1, ran.stdout + ran.stderr
    done = results(tmp_path)
    states = [done[f"T-01[{n}]"]["status"] for n in range(1, 7)]
    assert states == ["completed"] * 3 + ["failed", "skipped", "skipped"]
    assert done["T-01"]["status"] == "failed" and done["T-01"]["reason"].startswith("T-01[4] did not complete")
