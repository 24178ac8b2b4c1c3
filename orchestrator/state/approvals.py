"""``state/approvals.jsonl``: what a person decided at a task's Approval gate, one line each,
appended (``orchestrator approve T-03``, ``orchestrator reject T-03 --reason ...``).

The latest line of a task is its decision; it holds for the task's next start (a gate
``before``) or for the result it completed with (a gate ``after``). ``retry`` of a rejected task
(``reopened``) and ``reset --approvals`` (``withdrawn``) take a decision back with a line of their
own: nothing in the file is ever rewritten or deleted. A decision made with the
task's inputs known (``inputs``: ``run/resume/basis``'s digest of its row, settings and upstream
results, as `approve` found them) stands while they are the same: a gate decided stays decided
until its task's inputs change, and is asked again then. One made without (given ahead of its
gate, or by a version before) holds until the task next completes. A run reads the file as a gate
is reached, so a decision made between two runs, or while one goes on, is taken; only ``approve``,
``reject``, ``retry`` and ``reset --approvals`` write there.
"""

from __future__ import annotations

import json
import os
import pwd
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from orchestrator import documents
from orchestrator.moments import now_iso
from orchestrator.plan.model import Task
from orchestrator.state import store
from orchestrator.state.causes import Cause, CauseKind
from orchestrator.state.results import ResultRecord, write_result
from orchestrator.state.transitions import moved
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import TaskStatus

APPROVED, REJECTED = "approved", "rejected"
REOPENED = "reopened"  # `orchestrator retry` of a rejected task: asked again, no decision in force
WITHDRAWN = "withdrawn"  # `reset --approvals`: the word in force taken back, its gate asks again
_GATE_WORDS = (APPROVED, REJECTED, REOPENED, WITHDRAWN)  # (the other lines are questions': ``state/words/questions``)


@dataclass(frozen=True, slots=True)
class Decision:
    task: str
    decision: str  # approved or rejected
    reason: str
    time: str  # ISO 8601, UTC
    by: str  # the user who said it
    inputs: str | None = None  # the task's inputs it was made on (``run/resume/basis``), when known
    via: str | None = None  # where it was said, beside a terminal: dashboard, github, link
    url: str | None = None  # where it can be read: a GitHub comment's

    def after(self, moment: str | None) -> bool:
        """Whether it was made after ``moment`` (an ISO time; ``None``: ever)."""
        return moment is None or _at(self.time) > _at(moment)

    def stands(self, inputs: str | None, done: str | None) -> bool:
        """Whether it holds for the task now: its ``inputs`` now the same as it was made on
        (``same_inputs``); else, with either unknown, made after ``done`` (its last completed result)."""
        if self.inputs is not None and inputs is not None:
            return same_inputs(self.inputs, inputs)
        return self.after(done)


def standing(decision: Decision | None, inputs: str | None, record: ResultRecord | None) -> Decision | None:
    """The word that stands at a task's gate before it starts, of its latest ``decision``: made on
    the ``inputs`` it has now (``Decision.stands``), else, with either unknown, made since its last
    completed result (``record``, its result file); ``None`` when none does. The one rule `approve`
    and `reject` (``run/inflight/decisions.standing``) read, and the machine's ``approve-before``
    rule by ``standing_on`` (which the run's gate and ``status`` tell the word and what it stands
    on), so that what a view says the run does."""
    return standing_on(decision, inputs, completed_at(record))


def standing_on(decision: Decision | None, inputs: str | None, done: str | None) -> Decision | None:
    """``standing``, told when its task's last completed result finished (``done``) rather than
    the result itself: how the machine's ``approve-before`` rule judges the word it is told."""
    return decision if decision is not None and decision.stands(inputs, done) else None


def completed_at(record: ResultRecord | None) -> str | None:
    """When a task's last completed result (``record``) finished: a word said since stands, where
    its inputs are not known (``None``: it has none)."""
    return record.finished if record is not None and record.status == TaskStatus.COMPLETED else None


def same_inputs(made: str, now: str) -> bool:
    """Whether two ``inputs`` digests (``v2-<plan>-<task>-<upstream>``: ``run/resume/basis``) say the
    task's own inputs are the same: its row and settings, and its upstream results (what else
    of the plan changed is no concern of its gate)."""
    first, second = made.split("-"), now.split("-")
    return len(first) == len(second) == 4 and [first[i] for i in (0, 2, 3)] == [second[i] for i in (0, 2, 3)]


def path(workspace: Workspace) -> Path:
    return workspace.root / "state" / "approvals.jsonl"


def record(
    workspace: Workspace,
    task: str,
    decision: str,
    reason: str = "",
    inputs: str | None = None,
    *,
    by: str | None = None,
    via: str | None = None,
    url: str | None = None,
) -> Decision:
    """Append ``decision`` on ``task`` (durably: a person's word is not lost to a crash), made on
    its ``inputs`` when known; ``by`` whom (default: this user), ``via`` where and its ``url``
    when it came from elsewhere (a GitHub comment, a link, the dashboard)."""
    who = by if by is not None else local_user()
    made = Decision(task, decision, reason, now_iso(), who, inputs, via, url)
    data = {"task": task, "decision": decision, "reason": reason, "time": made.time, "by": made.by}
    extra = {key: value for key, value in (("inputs", inputs), ("via", via), ("url", url)) if value}
    append_line(workspace, {**data, **extra})
    return made


def local_user() -> str:
    """Who a word said at this machine is by: its user, as ``$USER`` (``$LOGNAME``) says, or the
    system's account of the process's user where neither is set (cron, a container, ``env -i``)."""
    named = os.environ.get("USER") or os.environ.get("LOGNAME")
    if named:
        return named
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # (a user id with no account: a container's, say)
        return f"uid {os.getuid()}"


def append_line(workspace: Workspace, data: Mapping[str, object]) -> None:
    """One line appended to the file, durably (``state/questions`` writes its lines here too)."""
    target = path(workspace)
    target.parent.mkdir(parents=True, exist_ok=True)
    store.append(target, (json.dumps(data) + "\n").encode(), create=True, sync=True)


def latest(workspace: Workspace) -> dict[str, Decision]:
    """Each task's latest decision; a line that is not one (cut by a crash, edited) is passed over."""
    found: dict[str, Decision] = {}
    for decision in _lines(workspace):
        if decision.decision in (APPROVED, REJECTED):
            found[decision.task] = decision
        elif decision.decision in (REOPENED, WITHDRAWN):
            found.pop(decision.task, None)
    return found


def every(workspace: Workspace) -> list[Decision]:
    """Every word said at a gate, oldest first (those taken back since included): who approved or
    rejected what, for ``history``."""
    return [decision for decision in _lines(workspace) if decision.decision in (APPROVED, REJECTED)]


def _lines(workspace: Workspace) -> Iterator[Decision]:
    try:
        text = path(workspace).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    for line in text.splitlines():
        try:
            data = json.loads(line)
            decision = Decision(
                str(data["task"]), str(data["decision"]), str(data.get("reason") or ""), str(data["time"]),
                str(data.get("by") or ""), str(data["inputs"]) if data.get("inputs") else None,
                _word(data.get("via")), _word(data.get("url")),
            )  # fmt: skip
            _at(decision.time)
        except (ValueError, KeyError, TypeError):
            continue
        yield decision


def _word(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def withdraw(workspace: Workspace, tasks: Iterable[Task], why: str) -> list[Decision]:
    """Take back the word in force at each of ``tasks``' gates, and the links a notification sent
    for them (``reset --approvals``): a ``withdrawn`` line each, appended after the decision it
    takes back, which stays in the file as history; for a task with a gate and no word in force
    too, so that a link made before answers nothing (``since``). The next run asks at the gate
    again, with new links. The decisions taken back."""
    found = latest(workspace)
    chosen = [task.id for task in tasks if task.id in found or task.approval is not None]
    for task_id in chosen:
        record(workspace, task_id, WITHDRAWN, why)
    return [found[task_id] for task_id in chosen if task_id in found]


def since(workspace: Workspace, task: str, moment: float) -> Decision | None:
    """The first word said or taken back at ``task``'s gate at or after ``moment`` (epoch
    seconds), if one was: a link made at ``moment`` answers nothing since (``state/words/links``)."""
    for decision in _lines(workspace):
        if decision.task == task and decision.decision in _GATE_WORDS and _at(decision.time).timestamp() >= moment:
            return decision
    return None


def said(decision: Decision) -> str:
    """``approved by ann at 25 Nov 14:02``: a decision as a line tells it."""
    from orchestrator.plan.table.times import spoken_in

    by = f" by {decision.by}" if decision.by else ""
    via = f" ({decision.via})" if decision.via else ""
    return f"{decision.decision}{by}{via} at {spoken_in(decision.time)}"


def _at(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def rejected_cause(decision: Decision, gate: str) -> Cause:
    """Why a task a person refused at its ``gate`` is rejected: who, and their words."""
    return Cause(CauseKind.REJECTED, gate=gate, by=decision.by or None, said=decision.reason or None)


def restate(workspace: Workspace, task: Task, record: ResultRecord, decision: Decision) -> ResultRecord:
    """A result that awaited approval, made what ``decision`` says: completed, or rejected (its
    output kept: the work is there for a person to see, and not passed on). The word is told in
    the event log as taken, with the result written again (its digest: ``verify`` checks it)."""
    from orchestrator.state import events
    from orchestrator.state.events.tasks import ApprovalGiven, ApprovalRefused  # (written when one is)

    approved = decision.decision == APPROVED
    status = moved(task.id, record.status, TaskStatus.COMPLETED if approved else TaskStatus.REJECTED)
    cause = None if approved else rejected_cause(decision, "after")
    reason = record.reason if approved else cause.sentence(task.id) if cause else None
    new = replace(record, status=status, reason=reason, cause=cause)
    path = workspace.result(task)
    body = documents.read_output(path) or ""  # (its first line's indentation kept)
    written = write_result(path, new, body)
    word = ApprovalGiven if approved else ApprovalRefused
    told = word(
        task=task.id,
        agent=task.agent,
        gate="after",
        by=decision.by,
        reason=decision.reason,
        via=decision.via,
        url=decision.url,
        result=workspace.result_name(task),
        result_digest=written.digest,
    )
    events.append(workspace.events_file, [told])
    return new


def settle(workspace: Workspace, tasks: Mapping[str, Task], records: dict[str, ResultRecord]) -> None:
    """As a run begins: each result that awaited approval and has been decided on since (between
    runs, by `approve` or `reject`) made completed or rejected, in ``records`` too."""
    waiting = [t for t, r in records.items() if r.status == TaskStatus.AWAITING_APPROVAL and t in tasks]
    if not waiting:
        return
    decisions = latest(workspace)
    for task_id in waiting:
        decision = decisions.get(task_id)
        if decision is not None and decision.after(records[task_id].finished):
            records[task_id] = restate(workspace, tasks[task_id], records[task_id], decision)
