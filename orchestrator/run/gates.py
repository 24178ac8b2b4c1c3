"""Whether a task that is ready starts: its ``Condition`` (``plan.conditions``), and its
``Approval`` gate (``state.approvals``).

As a ready task is taken from the queue, ``Gates.check`` says what becomes of it:

- a result that awaits a person's word from an earlier run (a gate ``after``): held, told again;
- its condition false: ``bypassed``, with the condition and the values it saw; a condition that
  needs a field of an upstream that did not complete: ``skipped`` for that upstream (``bypassed``
  for a bypassed one), as a plain dependent is; one that cannot be decided otherwise (a completed
  upstream's answer without the field): ``failed``, never a false condition;
- a gate ``before`` with no decision since its last completed result: held, ``awaiting_approval``,
  and a notification; rejected: ``rejected``, and what depends on it is skipped;
- else it starts.

A task whose gate is ``after`` completes its work, and its result awaits approval (``after``):
what depends on it waits. ``decide`` acts on `orchestrator approve` and `reject` while the run
goes on (``run.live`` hands them over); between runs ``approvals.settle`` does, as a run begins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from orchestrator import documents
from orchestrator.plan.conditions import ConditionError, NotDone, compile_condition, false_reason, output_fields
from orchestrator.plan.model import Plan, Task
from orchestrator.run.holds import Holds
from orchestrator.run.recorder import Recorder
from orchestrator.state import approvals
from orchestrator.state.results import ResultRecord
from orchestrator.state.status import GIVEN_UP, upstream_reason
from orchestrator.vocabulary import TaskStatus

HOLD = "hold"  # ``check``: the task waits for a person; it stays ready, and is not started


class Gates:
    def __init__(self, plan: Plan, holds: Holds, recorder: Recorder, records: dict[str, ResultRecord]) -> None:
        self.plan = plan
        self.holds = holds
        self.recorder = recorder
        self.records = records  # the results a run holds: on disk at its start, then its own

    def check(self, task_id: str) -> str | tuple[TaskStatus, str] | None:
        """``None``: it starts; ``HOLD``: it waits for a person (said so); or the state it ends
        in without starting, and why."""
        task = self.plan.tasks[task_id]
        view = self.recorder.views[task_id]
        if view.status == TaskStatus.WAITING:  # (ready: a task with a Condition is, once its upstream is done with)
            view.move(TaskStatus.PENDING)
        record = self.records.get(task_id)
        if record is not None and record.status == TaskStatus.AWAITING_APPROVAL:
            self.await_approval(task, "after")  # (its work is done: it waits for a word, not to run)
            return HOLD
        if task.condition:
            said = self._condition(task)
            if said is not None:
                return said
        if task.approval == "before":
            done = record.finished if record is not None and record.status == TaskStatus.COMPLETED else None
            decision = approvals.latest(self.recorder.workspace).get(task_id)
            if decision is None or not decision.after(done):
                self.await_approval(task, "before")
                return HOLD
            if decision.decision == approvals.REJECTED:
                if self.recorder.views[task_id].status != TaskStatus.AWAITING_APPROVAL:  # (rejected at its gate,
                    self.recorder.views[task_id].move(TaskStatus.AWAITING_APPROVAL)  # between runs: never pending)
                return TaskStatus.REJECTED, approvals.rejected_reason(decision)
        return None

    def _condition(self, task: Task) -> tuple[TaskStatus, str] | None:
        views = self.recorder.views
        outcomes = {dep: str(views[dep].status) for dep in task.dependencies}
        try:
            condition = compile_condition(task.condition or "", self.plan.tasks, task.dependencies)
            outputs = {dep: self._fields(dep) for dep, _ in condition.fields}
            holds = condition.evaluate(outcomes, outputs)
        except NotDone as exc:  # (one failure told once: the task is skipped for it, as a plain dependent is)
            if exc.outcome == TaskStatus.BYPASSED:
                return TaskStatus.BYPASSED, upstream_reason(exc.task, "was bypassed")
            return TaskStatus.SKIPPED, upstream_reason(exc.task, GIVEN_UP.get(TaskStatus(exc.outcome), "did not run"))
        except ConditionError as exc:
            return TaskStatus.FAILED, f"its condition could not be decided: {exc}"
        if holds:
            return None
        return TaskStatus.BYPASSED, false_reason(task.condition or "", condition.seen(outcomes, outputs))

    def _fields(self, task_id: str) -> Mapping[str, Any] | None:
        """The fields of ``task_id``'s output: the JSON object its result's body is or ends with."""
        record = self.records.get(task_id)
        if record is None or record.status != TaskStatus.COMPLETED:
            return None
        body = documents.read_body(self.recorder.workspace.result(self.plan.tasks[task_id]))
        return output_fields(body or "")

    def await_approval(self, task: Task, gate: str) -> None:
        """``task`` waits at its gate: held, its view says so, and a person is told."""
        reason = approvals.awaiting_reason(task.id, gate)
        self.holds.gate(task.id, gate, reason)
        view = self.recorder.views[task.id]
        view.move(TaskStatus.AWAITING_APPROVAL)
        view.reason = reason
        self.recorder.emit("approval_requested", task=task.id, agent=task.agent, name=task.title, gate=gate,
                           reason=reason)  # fmt: skip

    def decide(self, task_id: str, decision: approvals.Decision) -> str | None:
        """A person's word on a task held at its gate: ``"start"`` (approved before it starts),
        ``"complete"`` (approved after: its result counts now), ``"reject"`` (its result, if
        any, rejected and kept); ``None`` when the task is not waiting at a gate (the word is kept
        in the approvals file for when it gets there)."""
        gate = self.holds.gates.get(task_id)
        if gate is None:
            return None
        self.holds.release(task_id)
        task = self.plan.tasks[task_id]
        view = self.recorder.views[task_id]
        approved = decision.decision == approvals.APPROVED
        self.recorder.emit("approval_given" if approved else "approval_refused", task=task_id, agent=task.agent,
                           gate=gate, by=decision.by, reason=decision.reason)  # fmt: skip
        if gate == "before":
            if approved:
                view.move(TaskStatus.PENDING)
                view.reason = None
                return "start"
            return "reject"
        record = self.records[task_id]
        status = TaskStatus.COMPLETED if approved else TaskStatus.REJECTED
        reason = record.reason if approved else approvals.rejected_reason(decision)
        new = replace(record, status=status, reason=reason)
        body = documents.read_body(self.recorder.workspace.result(task)) or ""
        self.recorder.write(task, new, body)
        self.records[task_id] = new
        if approved:
            self.recorder.told_completed(task, new)
            return "complete"
        self.recorder.emit("task_rejected", task=task_id, agent=task.agent, reason=reason)
        return "reject"
