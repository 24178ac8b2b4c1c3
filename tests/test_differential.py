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
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from runner_helpers import cli, cli_in_process, kill_attempts
from test_fixed_point import GATE_AFTER_A_FALLBACK, QUICK, RUNS, TAKEN_OVER, Row, person, plans, write

from orchestrator.state import memo

EXAMPLES = int(os.environ.get("DIFFERENTIAL_EXAMPLES", "4"))
# Found by this test's draw: a fallback gated before it starts (T-02 runs because T-01 failed). The
# run stopped it at its gate and asked a person; status said it waited for T-01 to run again.
FALLBACK_AT_ITS_GATE = [
    Row("T-01", "flaky", 0, 1, (), "", "", 0, True),
    Row("T-02", "flaky", 2, 2, ("T-01",), "T-01 failed", "before", 1, True),
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


def _to_the_end(project: Path, rows: list[Row]) -> int:
    """Run the plan until a run leaves the person nothing to do, each run's end held to status's
    view of it (the one-shot command's, and a long-lived process's, whose memo is warm from the
    run before). How many runs it took."""
    memo.enable()
    try:
        for number in range(1, RUNS + 1):
            done = cli(project, "run", "--json")
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
def test_every_run_ends_where_status_says_it_did(tmp_path_factory: Any, drawn: Any) -> None:
    rows, cache, cancelled = drawn
    _check(tmp_path_factory.mktemp("plan"), rows, cache, cancelled)
