"""The views replay the machine (``views/replay``): every task's state a person reads is the
facts on disk answered by the run's own rules, so a view says what the run does.

Before it, ``status`` derived states in passes of its own, which a run did not share: a gated task
whose Not before had not come read "awaiting approval" (and `approve` was asked for it) while the
run held it waiting for its time and asked nobody."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from runner_helpers import cli, modules_calling, start, wait_until

from orchestrator.machine import RULES
from orchestrator.machine import stimuli as on
from orchestrator.plan import parse_plan
from orchestrator.state.workspace import Workspace
from orchestrator.views.replay import collect
from orchestrator.vocabulary import TaskStatus

PLAN = """---
backend: shell
kill_grace: 1
---
# Replay

## Task Decomposition
| Task ID | Description | Dependencies | Command | Approval | Not before | Blocked |
|---|---|---|---|---|---|---|
| T-01 | later | None | echo one | before | 2030-01-01T00:00:00Z | |
| T-02 | gated | None | echo two | before | | |
| T-03 | after both | T-01, T-02 | echo three | | | |
| T-04 | held | None | echo four | | | waiting for the lawyers |
"""


RELEASES = "`orchestrator update {} --status pending` releases it"


def shown(project: Path) -> dict[str, tuple[str, str | None]]:
    done = cli(project, "status", "--json")
    assert done.code == 0, done.stderr
    return {task["id"]: (task["status"], task["reason"]) for task in json.loads(done.stdout)["tasks"]}


def test_status_says_of_each_task_what_the_run_going_on_does_with_it(tmp_path: Path) -> None:
    """While a run goes on, each task's state in ``status`` is what that run made of it: T-01
    waits for its time (nobody is asked yet), T-02 awaits a word, T-03 waits for both, T-04 is
    held by its Blocked cell. The same after the run is stopped."""
    (tmp_path / ".orchestrator").mkdir()
    (tmp_path / ".orchestrator" / "master_plan.md").write_text(PLAN, encoding="utf-8")
    runner = start(tmp_path)
    try:
        wait_until(lambda: any(e["event"] == "approval_requested" for e in runner.events()), "T-02 asked about")
        events = runner.events()
        # The run asked about T-02 alone: T-01 waits for its Not before, as it says.
        assert [e["task"] for e in events if e["event"] == "approval_requested"] == ["T-02"]
        assert any(e["event"] == "notice" and "T-01 waits: not before" in e["message"] for e in events)
        expected = {
            "T-01": ("waiting", "not before 2030-01-01T00:00:00+00:00"),
            "T-02": ("awaiting_approval", "awaiting approval before it starts: `orchestrator approve T-02` "
                     "(or `reject T-02 --reason ...`)"),
            "T-03": ("waiting", None),
            "T-04": ("blocked", f"blocked: waiting for the lawyers — {RELEASES.format('T-04')}"),
        }  # fmt: skip
        assert shown(tmp_path) == expected
        runner.kill(signal.SIGINT)
        runner.wait()
        assert shown(tmp_path) == expected
    finally:
        runner.stop_all()


def test_a_word_on_a_result_awaiting_it_and_a_blocked_failure_read_as_the_run_takes_them(tmp_path: Path) -> None:
    """The replay's other stimuli: a word said on a result that awaits it (the ``word`` rule: it
    counts), and a task that failed whose row a person blocked since (``hold``: the next run
    holds it), its dependent, skipped for its failure, waiting on it now."""
    (tmp_path / ".orchestrator").mkdir()
    path = tmp_path / ".orchestrator" / "master_plan.md"
    path.write_text(
        PLAN.replace("| before | 2030-01-01T00:00:00Z |", "| after | |")
        .replace("echo two | before", "exit 3 |")
        .replace("| waiting for the lawyers |", "| |"),
        encoding="utf-8",
    )
    assert cli(tmp_path, "run").code == 1
    assert shown(tmp_path)["T-01"][0] == "awaiting_approval"
    assert shown(tmp_path)["T-02"][0] == "failed"
    assert cli(tmp_path, "approve", "T-01").code == 0
    path.write_text(path.read_text(encoding="utf-8").replace("| exit 3 | | | |", "| exit 3 | | | not now |"))
    now = shown(tmp_path)
    assert now["T-01"][0] == "completed"
    assert now["T-02"] == ("blocked", f"blocked: not now — {RELEASES.format('T-02')}")
    assert now["T-03"] == ("waiting", None)
    plan = parse_plan(path.read_text(encoding="utf-8"))
    views = {view.id: view.status for view in collect(plan, Workspace(tmp_path / ".orchestrator"))}
    assert views["T-02"] == TaskStatus.BLOCKED  # (the library's face: the same reading)


def test_no_view_gives_a_task_a_state_but_by_the_machine_or_from_what_a_run_wrote() -> None:
    """A view between runs gets its state only from the machine: the files' facts told to it
    (``Found``) and what it says carried out (``views/replay.ViewDesk``: a task joins in the state
    the ``found`` rule says, or moves as a rule's instruction leaves it, each move the rule's).
    No state is read in by hand anywhere: nothing calls ``read_as`` (it is gone), and the views'
    desk is where what the machine says is carried out."""
    assert modules_calling("read_as") == set()
    assert "views/replay.py" in modules_calling("carry") and "views/replay.py" in modules_calling("move")
    assert [rule.name for rule in RULES if on.Found in rule.stimuli] == ["found"]
