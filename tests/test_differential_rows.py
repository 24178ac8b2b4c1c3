"""A row run once per item, as people use it between runs, and ``status`` (issue 74's differential
test, over rows): a row of drawn items, some failing, then a drawn history of what a person does
between runs (fixes an item's cause, breaks another, `retry T-01 --failed`, `retry 'T-01[2]'`,
`reset`, `cancel` and `retry` of the row and of its dependent) and of runs.

After every step, what ``status`` shows of the row is one story: its item counts are its
instances' states, counted (``status T-01 --json``: the row's ``items`` against its
``instances``); a finished row's reason names as many items not completed as its instances show;
the one-shot command and a long-lived process's view (whose memo is warm from the step before)
answer alike. After every run, the run's own ``run_finished`` (its counts, its failed and
cancelled) is what ``status`` and ``list --status failed`` then derive. At the end every cause is
fixed and the person retries what did not complete: the row completes with no item missing, and
its dependent ran on that result (issue 74: a row stayed "5 of 5,000 items did not complete" after
its items were fixed and rerun, and its dependent never reran).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from runner_helpers import cli, cli_in_process, kill_attempts
from test_fixed_point import QUICK

from orchestrator.state import memo

ITEMS = ("a", "b", "c", "d", "e")
ROW, AFTER = "T-01", "T-02"
EXAMPLES = int(os.environ.get("DIFFERENTIAL_ROW_EXAMPLES", "6"))
FINISHED = ("completed", "failed", "cancelled", "skipped", "interrupted", "rejected", "bypassed")

PLAN = f"""---
backend: shell
retries: 0
on_item_failure: continue
max_parallel: 3
---
## Task Decomposition
| Task ID | Command | Each | Dependencies |
|---|---|---|---|
| {ROW} | `test ! -e "bad/{{{{ item }}}}" && echo "did {{{{ item }}}}"` | {", ".join(ITEMS)} | None |
| {AFTER} | `cat .orchestrator/results/agent-01-result.md > /dev/null && echo after` |  | {ROW} |
"""


def _write(project: Path, bad: frozenset[str]) -> None:
    (project / ".orchestrator").mkdir(parents=True)
    (project / ".orchestrator" / "master_plan.md").write_text(PLAN, encoding="utf-8")
    (project / "bad").mkdir()
    for item in bad:
        (project / "bad" / item).touch()


def _json(project: Path, *args: str) -> dict[str, Any]:
    shown = cli_in_process(project, *args, "--json")
    assert shown.code == 0, (args, shown.stderr)
    data: dict[str, Any] = json.loads(shown.stdout)
    return data


def _seen(project: Path) -> dict[str, Any]:
    """What status shows of the plan and of the row's instances, and what `list --status failed` lists."""
    status = _json(project, "status")
    status.pop("eta", None)  # (its moment is the clock's now plus what is left: a second apart, two moments)
    return {
        "status": status,
        "row": _json(project, "status", ROW, "--tasks", "all"),
        "failed": sorted(task["id"] for task in _json(project, "list", "--status", "failed")["tasks"]),
    }


def _differing(one: Any, other: Any, path: str = "") -> list[str]:
    """Where two answers differ: each path, and what each says there."""
    if isinstance(one, dict) and isinstance(other, dict):
        return [
            d
            for key in sorted(set(one) | set(other))
            for d in _differing(one.get(key), other.get(key), f"{path}.{key}")
        ]
    if isinstance(one, list) and isinstance(other, list) and len(one) == len(other):
        return [d for n, (a, b) in enumerate(zip(one, other, strict=True)) for d in _differing(a, b, f"{path}[{n}]")]
    return [] if one == other else [f"{path}: {one!r} against {other!r}"]


def _one_story(project: Path, when: str) -> dict[str, Any]:
    """The row's counts are its instances', its reason names as many items not done, and a
    long-lived process's view says what the one-shot command does."""
    memo.enable()
    try:
        warm = _seen(project)
    finally:
        memo.enable(False)
    seen = _seen(project)
    assert warm == seen, f"{when}: a long-lived process's view differs from status: {_differing(warm, seen)}"
    row = seen["row"]
    states = Counter(instance["status"] for instance in row["instances"])
    items = row["task"]["items"]
    assert items is not None and items["counts"] == dict(states), f"{when}: {items['counts']} against {states}"
    assert items["items"] == len(ITEMS) == row["listed"]["total"], when
    reason = row["task"]["reason"] or ""
    named = re.search(r"(\d+) of (\d+) items did not complete", reason)
    if row["task"]["status"] in FINISHED and row["task"]["status"] != "cancelled":
        short = len(ITEMS) - states.get("completed", 0)
        assert (int(named.group(1)) if named else 0) == short, f"{when}: the row says {reason!r}, its items {states}"
    failed_instances = sorted(i["id"] for i in row["instances"] if i["status"] == "failed")
    failed_tasks = sorted(t["id"] for t in seen["status"]["tasks"] if t["status"] == "failed")
    assert seen["failed"] == sorted(failed_tasks + failed_instances), when
    return seen


def _run(project: Path, when: str) -> dict[str, Any]:
    done = cli(project, "run", "--json")
    assert "Traceback" not in done.stderr and "IllegalTransition" not in done.stderr, done.stderr
    finished = done.finished()
    seen = _one_story(project, when)
    assert seen["status"]["counts"] == finished["counts"], (
        f"{when}: status {seen['status']['counts']}, the run {finished['counts']}"
    )
    assert seen["failed"] == sorted(finished["failed"]), (
        f"{when}: failed: status {seen['failed']}, the run {finished['failed']}"
    )
    cancelled = sorted(t["id"] for t in seen["status"]["tasks"] if t["status"] == "cancelled")
    cancelled += sorted(i["id"] for i in seen["row"]["instances"] if i["status"] == "cancelled")
    assert sorted(cancelled) == sorted(finished["cancelled"]), when
    return finished


STEPS = st.one_of(
    st.tuples(st.just("run")),
    st.tuples(st.sampled_from(["fix", "break"]), st.sampled_from(ITEMS)),
    st.tuples(st.just("retry-failed")),
    st.tuples(st.just("retry-item"), st.integers(1, len(ITEMS))),
    st.tuples(st.sampled_from(["reset", "cancel", "retry"]), st.sampled_from([ROW, AFTER])),
)


def _step(project: Path, step: tuple[Any, ...], number: int) -> None:
    when = f"step {number} {step}"
    kind = step[0]
    if kind == "run":
        _run(project, when)
        return
    if kind in ("fix", "break"):
        marker = project / "bad" / step[1]
        marker.unlink(missing_ok=True) if kind == "fix" else marker.touch()
        return
    if kind == "retry-failed":
        said = cli_in_process(project, "retry", ROW, "--failed")
    elif kind == "retry-item":
        said = cli_in_process(project, "retry", f"{ROW}[{step[1]}]")
    else:
        said = cli_in_process(project, kind, step[1])
    assert "Traceback" not in said.stderr and said.code in (0, 1, 2), (when, said.code, said.stderr)
    _one_story(project, when)


def _to_the_end(project: Path) -> None:
    """Every cause fixed, and the person retries what did not complete until a run says all is done."""
    for item in ITEMS:
        (project / "bad" / item).unlink(missing_ok=True)
    for task in (ROW, AFTER):
        if cli_in_process(project, "status", task, "--json").stdout.count('"status": "cancelled"'):
            cli_in_process(project, "retry", task)
    cli_in_process(project, "retry", ROW, "--failed")
    finished = _run(project, "the end")
    if finished["exit_code"] != 0:  # (a cancelled item, or one skipped for the cancelled row: asked again)
        cli_in_process(project, "retry", ROW, "--failed")
        finished = _run(project, "the end, again")
    assert finished["exit_code"] == 0 and finished["failed"] == [], finished
    row = _json(project, "status", ROW, "--tasks", "all")
    assert row["task"]["status"] == "completed" and row["task"]["reason"] is None, row["task"]
    assert {i["status"] for i in row["instances"]} == {"completed"}
    after = _json(project, "status", AFTER)["task"]
    assert after["status"] == "completed" and after["finished"] >= row["task"]["finished"], (after, row["task"])


def _check(project: Path, bad: frozenset[str], steps: list[tuple[Any, ...]]) -> None:
    try:
        _write(project, bad)
        _run(project, "the first run")
        for number, step in enumerate(steps, 1):
            _step(project, step, number)
        _to_the_end(project)
    finally:
        kill_attempts(project)


def test_a_row_whose_failed_items_are_fixed_and_retried_completes_and_its_dependent_runs_again(tmp_path: Path) -> None:
    _check(tmp_path, frozenset({"b", "d"}), [("fix", "b"), ("retry-failed",), ("run",)])


def test_a_reset_an_instance_retried_and_a_cancel_between_runs_keep_the_row_one_story(tmp_path: Path) -> None:
    steps = [("reset", ROW), ("retry-item", 2), ("cancel", AFTER), ("run",), ("retry", AFTER), ("break", "a"),
             ("retry-item", 1), ("run",)]  # fmt: skip
    _check(tmp_path, frozenset({"c"}), steps)


@pytest.mark.timeout(300)
@settings(max_examples=EXAMPLES, **QUICK)  # type: ignore[arg-type]
@given(bad=st.frozensets(st.sampled_from(ITEMS), max_size=3), steps=st.lists(STEPS, max_size=6))
def test_a_drawn_history_of_a_row_between_runs_is_one_story_in_status(
    tmp_path_factory: pytest.TempPathFactory, bad: frozenset[str], steps: list[tuple[Any, ...]]
) -> None:
    _check(tmp_path_factory.mktemp("row"), bad, steps)
