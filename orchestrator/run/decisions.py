"""`orchestrator approve T-03` and `reject T-03 --reason ...`: a person's word at a task's
Approval gate, from any terminal (or the dashboard).

The word is written to ``state/approvals.jsonl`` first (durable: a restart of the runner loses
nothing), then the run going on, if any, is asked to act on it now (``run.live``: within a
second); with none, the next run does (``approvals.settle``, ``run.gates``).
"""

from __future__ import annotations

from orchestrator import timing
from orchestrator.errors import UsageError
from orchestrator.plan.model import Plan, Task
from orchestrator.run.requests import Answer, wait_for
from orchestrator.state import approvals, events
from orchestrator.state.journal import now_iso
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import TaskStatus

_ANSWERS = ("approval_given", "approval_refused", "approval_noted")


def decide(workspace: Workspace, plan: Plan, task: Task, approve: bool, reason: str = "") -> Answer:
    """Approve (or reject) ``task`` at its gate. ``UsageError`` for a task with no Approval gate;
    a refusal (``Answer.ok`` false) for one with nothing left to decide."""
    from orchestrator.run.freshness import current_views

    word = "approve" if approve else "reject"
    if task.approval is None:
        raise UsageError(
            f"{word} {task.id}: it has no Approval gate — give its row an Approval cell (before or after) first"
        )
    view = next(v for v in current_views(plan, workspace) if v.id == task.id)
    if view.status in (TaskStatus.RUNNING, TaskStatus.RETRYING) and task.approval == "before":
        return _refused(task, word, f"{task.id} is {view.status}: its gate before it starts was passed")
    if view.status == TaskStatus.COMPLETED and view.out_of_date is None:
        return _refused(task, word, f"{task.id} is completed: there is nothing to decide")
    if view.status in (TaskStatus.REJECTED, TaskStatus.CANCELLED):
        return _refused(task, word, f"{task.id} is {view.status}: `orchestrator retry {task.id}` asks again")
    decision = approvals.record(workspace, task.id, approvals.APPROVED if approve else approvals.REJECTED, reason)
    live = events.live_run(workspace.events_file)
    said = "👍 approved" if approve else "👎 rejected"
    gate = "before it starts" if task.approval == "before" else "of its result"
    if live is None:
        then = "the next `orchestrator run` takes it" if approve else "what depends on it is skipped"
        return Answer(True, task.id, None, None, decision.reason or None, f"{said} {task.id} ({gate}): {then}")
    request = f"{word}-{decision.time}"
    offset = events.size(workspace.events_file)
    asked = {"event": f"{word}_requested", "run": live["run"], "task": task.id, "request": request}
    events.append(workspace.events_file, [{**asked, "reason": reason, "time": now_iso()}])
    got = wait_for(
        workspace, live, lambda e: e["event"] in _ANSWERS and e.get("task") == task.id, offset=offset,
        wait=timing.current().answer_wait,
    )  # fmt: skip
    if got is not None and got["event"] == "approval_noted":
        said += f" {task.id} ({gate}): kept for when the run going on (pid {live['pid']}) gets to it"
    else:
        said += f" {task.id} ({gate}): the run going on (pid {live['pid']}) takes it now"
    return Answer(True, task.id, live["run"], got["event"] if got else None, decision.reason or None, said)


def _refused(task: Task, word: str, why: str) -> Answer:
    return Answer(False, task.id, None, None, why, f"{word} {task.id}: {why}")
