"""Whether a task that is ready starts: its ``Condition`` (``plan/table/conditions``), and its
``Approval`` gate (``state.approvals``).

As a ready task is taken from the queue, ``Gates.taken`` reads what the machine's gate rules
(``machine/rules``) decide it by, and they say what becomes of it:

- a result that awaits a person's word from an earlier run (a gate ``after``): held, told again;
- its condition false: ``bypassed``, with the condition and the values it saw; a condition that
  needs a field of an upstream that did not complete: ``skipped`` for that upstream (``bypassed``
  for a bypassed one), as a plain dependent is; one that cannot be decided otherwise (a completed
  upstream's answer without the field): ``failed``, never a false condition;
- a gate ``before`` with no decision that stands for it (``Decision.stands``: made on the inputs
  it has now, or since its last completed result): held, ``awaiting_approval``, and a
  notification; rejected: ``rejected``, and what depends on it is skipped;
- else it starts.

A task whose gate is ``after`` completes its work, and its result awaits approval (``after``):
what depends on it waits. ``take_word`` acts on `orchestrator approve` and `reject` while the run
goes on (``run/inflight/live`` hands them over); between runs ``approvals.settle`` does, as a run begins.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import replace
from typing import Any

import msgspec

from orchestrator import documents
from orchestrator.machine.stimuli import Taken
from orchestrator.plan.model import Plan, Task
from orchestrator.plan.table.conditions import output_fields
from orchestrator.run.held.holds import Holds
from orchestrator.run.recorder import Recorder
from orchestrator.run.resume.settled import judged
from orchestrator.state import approvals
from orchestrator.state.causes import Cause, CauseKind
from orchestrator.state.events.tasks import ApprovalGiven, ApprovalRefused, ApprovalRequested, TaskRejected
from orchestrator.state.results import ResultRecord
from orchestrator.vocabulary import TaskStatus


def awaits_word_on_result(record: ResultRecord) -> bool:
    """Whether ``record`` is a result that awaits a person's word (a gate after), not a task held
    at its gate before it starts."""
    cause = record.cause
    return record.status == TaskStatus.AWAITING_APPROVAL and (cause is None or cause.gate != "before")


class Gates:
    def __init__(
        self, plan: Plan, holds: Holds, recorder: Recorder, records: MutableMapping[str, ResultRecord]
    ) -> None:
        self.plan = plan
        self.holds = holds
        self.recorder = recorder
        self.records = records  # the results a run holds: on disk at its start, then its own

    def taken(self, task_id: str, stimulus: int) -> Taken:
        """What the machine's gate rules read of ``task_id``, taken from the queue: whether its
        result awaits a word, its Condition with what it is decided on, the last word said at its
        gate before it starts with what it stands on (the rules decide; a result awaiting its word
        is judged by neither)."""
        task = self.plan.tasks[task_id]
        view = self.recorder.views[task_id]
        if view.status == TaskStatus.WAITING:  # (ready: a task with a Condition is, once its upstream is done with)
            view.move(TaskStatus.PENDING)
        record = self.records.get(task_id)
        awaits = record is not None and awaits_word_on_result(record)
        condition = None
        if task.condition and not awaits:
            outcomes = {dep: str(self.recorder.views[dep].status) for dep in task.dependencies}
            condition = judged(self.plan, task, outcomes, self._fields)
        taken = Taken(id=stimulus, task=task_id, awaits_word=awaits, condition=condition, gate=task.approval)
        if task.approval != "before" or awaits:
            return taken
        # (the last word said at its gate, read into the machine's state of it, and what it stands
        # on told: the rule judges whether it does)
        word = view.state.word = approvals.latest(self.recorder.workspace).get(task.id)
        inputs = self.recorder.inputs_of(task) if word is not None else None
        return msgspec.structs.replace(taken, inputs=inputs, done=approvals.completed_at(record))

    def _fields(self, task_id: str) -> Mapping[str, Any] | None:
        """The fields of ``task_id``'s output: the JSON object its result's body is or ends with."""
        record = self.records.get(task_id)
        if record is None or record.status != TaskStatus.COMPLETED:
            return None
        body = documents.read_body(self.recorder.workspace.result(self.plan.tasks[task_id]))
        return output_fields(body or "")

    def await_approval(self, task: Task, gate: str) -> None:
        """``task`` waits at its gate: held, its view says so, and a person is told."""
        cause = Cause(CauseKind.HELD, gate=gate)
        self.holds.gate(task.id, gate, cause)
        view = self.recorder.views[task.id]
        view.move(TaskStatus.AWAITING_APPROVAL, cause)
        files = self.recorder.files
        awaited = gate == "after" and files.digest(task.id) is not None  # (the result it awaits)
        written = files.told(task) if awaited else None
        self.recorder.emit(ApprovalRequested(task=task.id, agent=task.agent, name=task.title, gate=gate,
                                             reason=view.reason or "", cause=cause,
                                             inputs=self.recorder.inputs_of(task),
                                             result=written["result"] if written else None,
                                             result_digest=written["result_digest"] if written else None))  # fmt: skip

    def take_word(self, task_id: str, gate: str, decision: approvals.Decision) -> None:
        """A person's word on a task held at its ``gate``, told: approved before it starts, it is
        pending again; after, its result counts now; rejected, its result (if any) is rejected and
        kept. What follows for the queue is the machine's (``machine/rules._word``)."""
        self.holds.release(task_id)
        task = self.plan.tasks[task_id]
        view = self.recorder.views[task_id]
        if gate == "before":
            view.state.word = decision  # (the machine holds the last word said at its gate)
        approved = decision.decision == approvals.APPROVED
        word = ApprovalGiven if approved else ApprovalRefused
        self.recorder.emit(word(task=task_id, agent=task.agent, gate=gate, by=decision.by, reason=decision.reason))
        if gate == "before":
            if approved:
                view.move(TaskStatus.PENDING)
            return
        record = self.records[task_id]
        cause = None if approved else approvals.rejected_cause(decision, "after")
        status = TaskStatus.COMPLETED if approved else TaskStatus.REJECTED
        reason = record.reason if cause is None else cause.sentence(task_id)
        new = replace(record, status=status, reason=reason, cause=cause)
        body = documents.read_output(self.recorder.workspace.result(task)) or ""  # (as it printed it)
        self.recorder.write(task, new, body)
        self.records[task_id] = new
        if approved:
            self.recorder.told_completed(task, new)
            return
        told = self.recorder.files.told(task)
        self.recorder.emit(TaskRejected(task=task_id, agent=task.agent, reason=reason or "", cause=cause, **told))
