"""Whether a person's word still stands at a task's gate before it starts: one rule
(``state/approvals.standing``), read by the run's gate (the machine's ``approve-before`` rule,
fed by ``run/held/gates``), by `approve`/`reject` (``run/inflight/decisions.standing``) and by
``status`` (``views/replay``, which asks the machine's rule). Issue 65's fifth race was the run
and `approve` reading two rules: a gate no word could pass."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from runner_helpers import Spec, modules_calling, plan_text

import orchestrator
from orchestrator.machine import Machine
from orchestrator.machine.instructions import AwaitWord, GiveUp, Start
from orchestrator.machine.stimuli import Taken
from orchestrator.plan import parse_plan
from orchestrator.state import approvals
from orchestrator.state.results import ResultRecord
from orchestrator.state.status import TaskView
from orchestrator.state.taskstate import TaskState
from orchestrator.state.workspace import Workspace
from orchestrator.views.replay import Replay
from orchestrator.vocabulary import TaskStatus

NOW = "v2-plan1-row1-up1"  # the task's inputs now (``run/resume/basis``)
EDITED = "v2-plan1-row2-up1"  # after its row was edited
COMPLETED = ResultRecord(task="T-01", agent="agent-01", name="T-01", status=TaskStatus.COMPLETED,
                         finished="2025-11-25T14:00:00+00:00")  # fmt: skip


def word(said: str, inputs: str | None, time: str = "2025-11-25T15:00:00Z") -> approvals.Decision:
    return approvals.Decision(task="T-01", decision=said, reason="", time=time, by="ada", inputs=inputs)


CASES = [
    pytest.param(None, NOW, None, TaskStatus.AWAITING_APPROVAL, id="no-word"),
    pytest.param(word("approved", NOW), NOW, None, TaskStatus.PENDING, id="approved-on-these-inputs"),
    pytest.param(word("approved", NOW), EDITED, COMPLETED, TaskStatus.AWAITING_APPROVAL, id="row-edited-since"),
    pytest.param(word("approved", None), None, COMPLETED, TaskStatus.PENDING, id="unknown-inputs-after-its-result"),
    pytest.param(
        word("approved", None, "2025-11-25T13:00:00Z"),
        None,
        COMPLETED,
        TaskStatus.AWAITING_APPROVAL,
        id="unknown-inputs-used-up-by-a-result",
    ),
    pytest.param(word("rejected", NOW), NOW, None, TaskStatus.REJECTED, id="rejected-on-these-inputs"),
]


@pytest.mark.parametrize(("decision", "inputs", "record", "shown"), CASES)
def test_the_run_and_status_read_one_rule_for_a_word_at_a_gate_before(
    decision: approvals.Decision | None,
    inputs: str | None,
    record: ResultRecord | None,
    shown: TaskStatus,
    tmp_path: Path,
) -> None:
    plan = parse_plan(plan_text([Spec("T-01", "true")]))
    task = plan.tasks["T-01"] = replace(plan.tasks["T-01"], approval="before")
    # The run: what the machine does with the word its gate reads into it, on what it stands on.
    held = Machine(tasks={"T-01": TaskState(TaskStatus.PENDING, word=decision)})
    said = held.handle(Taken(id=1, task="T-01", gate="before", inputs=inputs, done=approvals.completed_at(record)))
    run = {Start: TaskStatus.PENDING, AwaitWord: TaskStatus.AWAITING_APPROVAL, GiveUp: TaskStatus.REJECTED}[
        type(said[0])
    ]
    # status: the view of the same facts on disk.
    views = {"T-01": TaskView.of(task, TaskStatus.PENDING)}
    records = {"T-01": record} if record is not None else {}
    replay = Replay(plan, Workspace(tmp_path), records, lambda _: inputs)
    replay.decisions = {"T-01": decision} if decision else {}
    replay.answer(views)
    assert (run, views["T-01"].status) == (shown, shown)


def test_no_module_but_approvals_judges_a_word_by_its_own_rule() -> None:
    """``Decision.stands`` is called in ``state/approvals`` alone: the machine's ``approve-before``
    rule (which the run's gate and ``status`` tell the word and what it stands on) calls
    ``approvals.standing_on``, `approve` and `reject` ``approvals.standing``, so none of them can
    drift to a rule of its own."""
    package = Path(orchestrator.__file__).parent
    assert modules_calling("stands") == {"state/approvals.py"}
    users = {
        p.relative_to(package).as_posix()
        for p in package.rglob("*.py")
        if "approvals.standing(" in p.read_text(encoding="utf-8") or "standing_on(" in p.read_text(encoding="utf-8")
    }
    assert {"machine/rules.py", "run/inflight/decisions.py"} <= users
