"""The run and ``status`` agree (issue 65's differential test): for drawn histories, the state each
task is in when a run ends, as the run itself holds it, is the state ``status`` derives for it
from the files on disk at the same point.

The plans are ``test_fixed_point``'s draws (shell tasks that answer, fail, or fail first and then
answer; Conditions on what their dependencies did and found; Approval gates before and after;
retries; the cache on or off; a task a person cancels before the first run), each run to its end
with real processes and a scripted person deciding every gate, as there. After every run, its
``run_finished`` (the runner's own count of each state, and the tasks failed, cancelled, blocked
and awaiting approval, from its own views of the tasks) is held to ``status --json`` read then, by
the one-shot command and by a long-lived process's view (``serve``'s and ``mcp``'s, which keep
what they read while the files are the same). A view that derives a state its own way shows up
as a task counted in another state (a gate asked again, a skip shown waiting): issue 65's fifth
race was one.

The same over races in worktrees: those plans with ``isolation: worktree``, each row drawn raced
or not (best of 2 or 3, judged ``first`` or ``longest``; a hedge beside a first attempt that
stalls), and a runner or two killed -9 at a drawn moment: after a drawn time, or held by a git
hook at the moment a drawn ref moves (a lane's attempt committed, a task's own attempt committed,
a race's winner adopted onto its task's branch, a branch merged into the integration branch),
the next run resuming. Each run that ends is held to ``status`` as above (a killed one says
nothing of its own). ``DIFFERENTIAL_RACED_EXAMPLES`` raises their number.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from kill_helpers import Kill, kill_at, killed
from runner_helpers import cli, cli_in_process, kill_attempts
from test_fixed_point import GATE_AFTER_A_FALLBACK, QUICK, RUNS, TAKEN_OVER, Row, person, plans, write
from worktree_helpers import repository

from orchestrator.state import memo

EXAMPLES = int(os.environ.get("DIFFERENTIAL_EXAMPLES", "4"))
RACED_EXAMPLES = int(os.environ.get("DIFFERENTIAL_RACED_EXAMPLES", "5"))
# Found by this test's draw: a fallback gated before it starts (T-02 runs because T-01 failed). The
# run stopped it at its gate and asked a person; status said it waited for T-01 to run again.
FALLBACK_AT_ITS_GATE = [
    Row("T-01", "flaky", 0, 1, (), "", "", 0, True),
    Row("T-02", "flaky", 2, 2, ("T-01",), "T-01 failed", "before", 1, True),
]
# And a fallback gated before it starts whose other upstream failed too (T-04 runs because T-01
# failed; T-02, which it needs as well, failed): the run decided its Condition once both had ended,
# stopped it at its gate and asked; status said it waited for T-02 to run again.
GATED_AFTER_TWO_FAILURES = [
    Row("T-01", "fail", 2, 2, (), "", "", 0, True),
    Row("T-02", "fail", 2, 1, ("T-01",), "T-01 failed", "", 0, False),
    Row("T-03", "flaky", 2, 2, (), "", "after", 0, False),
    Row("T-04", "ok", 2, 2, ("T-01", "T-02"), "T-01 failed", "before", 0, False),
]
LISTED = ("failed", "cancelled", "blocked", "awaiting_approval")


def _status(project: Path) -> dict[str, Any]:
    shown = cli_in_process(project, "status", "--json")
    assert shown.code == 0, shown.stderr
    data: dict[str, Any] = json.loads(shown.stdout)
    return data


def _agree(project: Path, finished: dict[str, Any], when: str) -> None:
    """``status --json`` now says what the run that just ended held at its end."""
    shown = _status(project)
    assert shown["counts"] == finished["counts"], f"{when}: status {shown['counts']}, the run {finished['counts']}"
    for state in LISTED:
        derived = sorted(task["id"] for task in shown["tasks"] if task["status"] == state)
        assert derived == sorted(finished[state]), f"{when}: {state}: status {derived}, the run {finished[state]}"
    _one_alone(project, when)


def _one_alone(project: Path, when: str) -> None:
    """Each task's view derived alone (from it and what it depends on: what `approve T-04` asks)
    is the one derived with every task: its state, why, whether it is out of date, its times."""
    from orchestrator.plan.model import Plan
    from orchestrator.run.resume.basis import inputs_now
    from orchestrator.run.resume.freshness import current_view, current_views, upstream_of
    from orchestrator.state.plans import plan_of
    from orchestrator.state.status import read_records
    from orchestrator.state.workspace import Workspace

    workspace = Workspace(project / ".orchestrator")
    plan: Plan = plan_of(workspace)
    every = inputs_now(plan, workspace, read_records(plan, workspace))
    for whole in current_views(plan, workspace):
        alone = current_view(plan, workspace, whole.id)
        seen = (alone.status, alone.reason, alone.out_of_date, alone.finished, alone.attempts)
        assert seen == (whole.status, whole.reason, whole.out_of_date, whole.finished, whole.attempts), (when, whole.id)
        assert alone.settled in (whole.settled, None), (when, whole.id)
        part = upstream_of(plan, whole.id)  # (the inputs a word at its gate is given on: the same)
        inputs = inputs_now(plan, workspace, read_records(part, workspace))(plan.tasks[whole.id])
        assert inputs == every(plan.tasks[whole.id]), (when, whole.id)


def _to_the_end(project: Path, rows: list[Row], kills: tuple[Kill, ...] = ()) -> int:
    """Run the plan until a run leaves the person nothing to do, each run's end held to status's
    view of it (the one-shot command's, and a long-lived process's, whose memo is warm from the
    run before); ``kills``: runs killed -9 on the way, each followed by the next. How many runs it
    took."""
    memo.enable()
    try:
        for number in range(1, RUNS + 1):
            kill = next((k for k in kills if k.run == number), None)
            done = killed(project, kill) if kill is not None else cli(project, "run", "--json")
            if done is None:
                continue
            assert "Traceback" not in done.stderr and "IllegalTransition" not in done.stderr, done.stderr
            finished = done.finished()
            _agree(project, finished, f"run {number}, a long-lived process's status")  # (what it kept before the run)
            memo.enable(False)
            _agree(project, finished, f"run {number}, status")
            memo.enable()  # (kept afresh: the person's commands, and the next run's look, fill it)
            if not person(project, rows):
                return number
    finally:
        memo.enable(False)
    raise AssertionError(f"the plan did not come to an end in {RUNS} runs")


def _check(tmp_path: Path, rows: list[Row], cache: bool, cancelled: frozenset[str]) -> None:
    from orchestrator.cli.main import main

    try:
        write(tmp_path, rows, cache)
        for task_id in cancelled:
            assert main(["cancel", str(tmp_path / ".orchestrator"), task_id]) == 0
        _to_the_end(tmp_path, rows)
    finally:
        kill_attempts(tmp_path)


def test_a_failure_taken_over_and_a_gate_behind_it_are_seen_alike(tmp_path: Path) -> None:
    _check(tmp_path / "taken", TAKEN_OVER, False, frozenset())
    _check(tmp_path / "gate", GATE_AFTER_A_FALLBACK, True, frozenset({"T-02"}))


@settings(max_examples=EXAMPLES, **QUICK)  # type: ignore[arg-type]
@given(drawn=plans())
@example(drawn=(FALLBACK_AT_ITS_GATE, False, frozenset()))
@example(drawn=(GATED_AFTER_TWO_FAILURES, True, frozenset()))
def test_every_run_ends_where_status_says_it_did(tmp_path_factory: Any, drawn: Any) -> None:
    rows, cache, cancelled = drawn
    _check(tmp_path_factory.mktemp("plan"), rows, cache, cancelled)


# --- races in worktrees, and runners killed -9 ----------------------------------------------------


@dataclass(frozen=True)
class Race:
    kind: str  # "", "best of", "hedge"
    count: int = 1  # best of


def _command(row: Row, race: Race) -> str:
    if race.kind == "best of":  # (a later attempt answers longer: ``longest`` has a choice, a lane wins)
        return f'seq "$ORCHESTRATOR_ATTEMPT"; {row.command()}'
    if race.kind == "hedge":  # (its first attempt a straggler)
        return f'if [ "$ORCHESTRATOR_ATTEMPT" = 1 ]; then sleep 3; fi; {row.command()}'
    return row.command()


def _write_raced(project: Path, rows: list[Row], races: dict[str, Race], judge: str, cache: bool) -> None:
    lines = ["---", "backend: shell", "isolation: worktree", f"judge: {judge}", "retries: 0", "backoff_base: 0.05",
             "max_parallel: 4", "kill_grace: 1", f"cache: {'true' if cache else 'false'}", "---",
             "## Task Decomposition",
             "| Task ID | Command | Dependencies | Condition | Approval | Output | Retries | Best of | Hedge |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        race = races[row.id]
        cells = [row.id, _command(row, race), ", ".join(row.deps) or "None", row.condition, row.approval,
                 "v:int" if row.kind != "fail" else "", str(row.retries),
                 str(race.count) if race.kind == "best of" else "", "0.3s" if race.kind == "hedge" else ""]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    path = project / ".orchestrator" / "master_plan.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# A raced history: the rows, each one's race, the judge, the cache, the tasks cancelled first, the kills.
Drawn = tuple[list[Row], dict[str, Race], str, bool, frozenset[str], tuple[Kill, ...]]


@st.composite
def raced_histories(draw: st.DrawFn) -> Drawn:
    rows, cache, cancelled = draw(plans())
    races = {
        row.id: draw(st.sampled_from([Race(""), Race("best of", 2), Race("best of", 3), Race("hedge")])) for row in rows
    }
    kills = draw(st.lists(kill_at(), min_size=1, max_size=2, unique_by=lambda k: k.run))
    return rows, races, draw(st.sampled_from(["first", "longest"])), cache, cancelled, tuple(kills)


# Two races, one behind the other: the first run killed once T-01's winner is merged, before its
# result; the second at its first ``reset -q --hard`` of a task's branch, which is that run setting
# T-01's unrecorded race back (after taking its merge out of the integration branch): a runner
# killed while it recovers from one killed before.
RACED_AND_KILLED: Drawn = (
    [Row("T-01", "ok", 1, 1, (), "", "", 0, True), Row("T-02", "ok", 1, 1, ("T-01",), "T-01.v > 0", "after", 0, True)],
    {"T-01": Race("best of", 3), "T-02": Race("best of", 2)},
    "longest",
    False,
    frozenset(),
    (Kill(1, "merged", 1), Kill(2, "winner adopted", 1)),
)


@pytest.mark.timeout(300)  # (a hang guard: runs in worktrees killed and resumed, slow on 2 busy cores)
@settings(max_examples=RACED_EXAMPLES, **QUICK)  # type: ignore[arg-type]
@given(drawn=raced_histories())
@example(drawn=RACED_AND_KILLED)
def test_every_raced_run_in_worktrees_ends_where_status_says_it_did(tmp_path_factory: Any, drawn: Any) -> None:
    from orchestrator.cli.main import main

    rows, races, judge, cache, cancelled, kills = drawn
    project = repository(tmp_path_factory.mktemp("raced"), {"README.md": "a project\n"})
    try:
        _write_raced(project, rows, races, judge, cache)
        for task_id in cancelled:
            assert main(["cancel", str(project / ".orchestrator"), task_id]) == 0
        _to_the_end(project, rows, kills)
    finally:
        kill_attempts(project)
