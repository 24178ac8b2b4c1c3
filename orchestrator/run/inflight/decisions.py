"""`orchestrator approve T-03` and `reject T-03 --reason ...`: a person's word at a task's
Approval gate, from any terminal (or the dashboard).

The word is written to ``state/approvals.jsonl`` first (durable: a restart of the runner loses
nothing), then the run going on, if any, is asked to act on it now (``run/inflight/live``: within a
second); with none, the next run does (``approvals.settle``, ``run/held/gates``).
"""

from __future__ import annotations

from orchestrator import timing
from orchestrator.errors import UsageError
from orchestrator.machine.core import Machine
from orchestrator.machine.stimuli import WordAsked
from orchestrator.plan.model import Plan, Task
from orchestrator.run.inflight.requests import Answer, asking, wait_for
from orchestrator.run.telling import Between, Desk
from orchestrator.state import approvals, events
from orchestrator.state.events.base import event_name
from orchestrator.state.events.runs import ApproveRequested, RejectRequested
from orchestrator.state.events.tasks import ApprovalGiven, ApprovalNoted, ApprovalRefused
from orchestrator.state.results import ResultRecord
from orchestrator.state.status import TaskView
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import TaskStatus

_ANSWERS = (ApprovalGiven, ApprovalRefused, ApprovalNoted)  # the run's answers to a word


def decide(
    workspace: Workspace,
    plan: Plan,
    task: Task,
    approve: bool,
    reason: str = "",
    *,
    by: str | None = None,
    via: str | None = None,
    url: str | None = None,
    inputs_seen: str | None = None,
) -> Answer:
    """Approve (or reject) ``task`` at its gate. ``UsageError`` for a task with no Approval gate;
    a refusal (``Answer.ok`` false) for one with nothing left to decide; the same word said again
    while the first still stands (``standing``) is no new decision: nothing is written, and the
    answer says so (``Answer.already``), as a second ``cancel`` of a cancelled task does."""
    from orchestrator.run.resume.basis import inputs_now
    from orchestrator.run.resume.freshness import current_view, upstream_of
    from orchestrator.state.status import read_records

    word = "approve" if approve else "reject"
    if task.approval is None:
        raise UsageError(
            f"{word} {task.id}: it has no Approval gate — give its row an Approval cell (before or after) first"
        )
    view = current_view(plan, workspace, task.id)  # (asked of the task alone: what it depends on)
    records = read_records(upstream_of(plan, task.id), workspace)  # (its inputs: the plan's, and its upstream's)
    now = inputs_now(plan, workspace, records)(task) if task.approval == "before" else None
    said = approvals.APPROVED if approve else approvals.REJECTED
    again = standing(workspace, task, view, said, now, records.get(task.id))
    if again is not None:
        return again
    # The machine's ``word-asked`` rule, on the task as its view reads now: is there anything left to decide?
    desk = Desk(Machine(tasks={task.id: view.state}), Between())
    told = WordAsked(id=desk.stamp(), task=task.id, approve=approve, gate=task.approval,
                     out_of_date=view.out_of_date is not None)  # fmt: skip
    refused = desk.tell(told).refused
    if refused is not None:
        return _refused(task, word, refused)
    # At its gate now, the word is on the inputs it has now, and stands while they are the same;
    # given ahead of it (its upstream still to run), it holds for when it gets there.
    inputs = None
    if (view.status == TaskStatus.AWAITING_APPROVAL and task.approval == "before") or inputs_seen is not None:
        inputs = now if now is not None else inputs_now(plan, workspace, records)(task)
    if inputs_seen is not None and (inputs is None or not approvals.same_inputs(inputs_seen, inputs)):
        return _refused(task, word, f"{task.id}'s inputs changed since this was asked: it is asked again")
    if inputs_seen is not None and task.approval == "after":
        inputs = None  # (its word is on the result that awaits it, as `approve` at the terminal gives it)
    word_of = approvals.APPROVED if approve else approvals.REJECTED
    live = events.live_run(workspace.events_file)
    said = "👍 approved" if approve else "👎 rejected"
    gate = "before it starts" if task.approval == "before" else "of its result"
    if live is None:
        decision = approvals.record(workspace, task.id, word_of, reason, inputs, by=by, via=via, url=url)
        then = "the next `orchestrator run` takes it" if approve else "what depends on it is skipped"
        return Answer(True, task.id, None, None, decision.reason or None, f"{said} {task.id} ({gate}): {then}")
    asked = ApproveRequested if approve else RejectRequested
    wait = timing.current().answer_wait
    # The word and the run's request of it written under one hold of the event log's lock: a run
    # stopped inside it gets neither, never a word it is not told of (``asking``).
    with asking(workspace, live, f"the {'approval' if approve else 'rejection'} of {task.id}", wait) as put:
        decision = approvals.record(workspace, task.id, word_of, reason, inputs, by=by, via=via, url=url)
        offset = events.size(workspace.events_file)
        put([asked(run=live.run, task=task.id, request=f"{word}-{decision.time}", reason=reason)])
    got = wait_for(
        workspace, live, lambda e: isinstance(e, _ANSWERS) and e.task == task.id, offset=offset, wait=wait
    )  # fmt: skip
    if isinstance(got, ApprovalNoted):
        said += f" {task.id} ({gate}): kept for when the run going on (pid {live.pid}) gets to it"
    else:
        said += f" {task.id} ({gate}): the run going on (pid {live.pid}) takes it now"
    return Answer(True, task.id, live.run, event_name(got) if got else None, decision.reason or None, said)


def standing(
    workspace: Workspace, task: Task, view: TaskView, word: str, inputs: str | None, record: ResultRecord | None
) -> Answer | None:
    """The answer to ``word`` (approved or rejected) said again of ``task`` while its latest
    decision, the same word, still stands: for a gate before, by the rule the run's gate and
    ``status`` read it by (``approvals.standing``: made on the ``inputs`` it has now, else since
    ``record``, its last completed result; and not used up by a result completed since); made on
    the result that awaits it (a gate after); or acted on already (the task running past its
    gate, or rejected). ``None`` when there is none: a new word is written."""
    decision = approvals.latest(workspace).get(task.id)
    if decision is None or decision.decision != word:
        return None
    on_result = view.status in (TaskStatus.COMPLETED, TaskStatus.AWAITING_APPROVAL) and view.out_of_date is None
    if task.approval == "after":  # (made on the result that awaits it, or that it made count)
        holds = on_result and decision.after(view.finished)
        acted = holds and view.status == TaskStatus.COMPLETED
    else:  # (the run's own rule, ``approvals.standing``; and not used up by a result completed since)
        done = view.finished if view.status == TaskStatus.COMPLETED else None
        holds = approvals.standing(decision, inputs, record) is not None and decision.after(done)
        acted = view.status in (TaskStatus.RUNNING, TaskStatus.RETRYING)
    if word == approvals.REJECTED:
        acted = view.status == TaskStatus.REJECTED
        holds = holds or acted
    if not holds:
        return None
    by = f" by {decision.by}" if decision.by else ""
    why = f": {decision.reason}" if decision.reason else ""
    if acted:
        then = f"it is {view.status}" + (": its result counts" if view.status == TaskStatus.COMPLETED else "")
    elif events.live_run(workspace.events_file) is not None:
        then = "the run going on takes it"
    else:
        then = "the next `orchestrator run` takes it" if word == approvals.APPROVED else "what depends on it is skipped"
    said = f"{task.id} is {word} already ({decision.time}{by}{why}): nothing written; {then}"
    return Answer(True, task.id, None, None, decision.reason or None, said, already=True)


def _refused(task: Task, word: str, why: str) -> Answer:
    return Answer(False, task.id, None, None, why, f"{word} {task.id}: {why}")
