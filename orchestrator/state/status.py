"""What state each task is in, read from the workspace files (results and the attempt journal)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from orchestrator import documents
from orchestrator.plan.graph import dependencies_first
from orchestrator.plan.table.times import spoken_in
from orchestrator.state import approvals, fallbacks, journal
from orchestrator.state.causes import GIVEN_UP, Cause, CauseKind, holds
from orchestrator.state.pause import paused
from orchestrator.state.procs import pid_alive
from orchestrator.state.results import ResultRecord, read_record
from orchestrator.state.transitions import moved
from orchestrator.vocabulary import TaskStatus

if TYPE_CHECKING:
    from orchestrator.plan.model import Plan, Task
    from orchestrator.state.workspace import Workspace


@dataclass(slots=True)
class TaskView:
    """One task's state as a person (or ``--json``) sees it.

    Its status is read as ``status`` and changed in two ways only: ``move``, a run's move along an
    arrow of the state machine, with its cause; and ``read_as`` (and ``take``), how a workspace's
    files read between runs (``collect``), which is no move. Its ``reason`` is rendered from its
    cause, or is the words of an attempt (``note``: a failure's message, a warning)."""

    id: str
    agent: str
    name: str
    _status: TaskStatus
    dependencies: list[str]
    priority: str
    started: str | None = None
    finished: str | None = None
    duration: float | None = None  # its last attempt's time (its result's ``duration``)
    # From its first attempt's start to its last's end, in the run of it that made its result
    # (retries and the waits between them in it): ``output/final.as_spent`` sets it; None: not known.
    span: float | None = None
    attempts: int = 0  # the number of its last attempt (numbers go on across runs)
    run_attempts: int = 0  # how many attempts the run of it that made its state made: 1 + its retries
    note: str | None = None  # an attempt's own words on it, where it has no cause: a failure's message, a warning
    cause: Cause | None = None  # why it is in its state (``state/causes.py``)
    backend: str | None = None
    cost_usd: float | None = None
    tokens: int | None = None
    session_id: str | None = None
    result_file: str | None = None
    simulated: bool = False
    worker: str | None = None  # on a cluster: the worker that ran its last attempt
    reused: str | None = None  # its result reused from the cache, no process started: why (``run/resume/reuse.py``)
    out_of_date: str | None = None  # completed, but run would do it again: why (``run/resume/freshness``)
    settled: bool | None = None  # finished, and the next run leaves it so (``run/resume/settled``); None: not judged
    type: str | None = None  # its task type (``plan/config/tasktypes.py``)
    raced: str | None = None  # what a hedge or best of N did (``ResultRecord.raced``)

    @classmethod
    def of(cls, task: Task, status: TaskStatus = TaskStatus.PENDING) -> TaskView:
        return cls(task.id, task.agent, task.title, status, list(task.dependencies), task.priority_name, type=task.type)

    @property
    def status(self) -> TaskStatus:
        return self._status

    @property
    def reason(self) -> str | None:
        """Why it is in its state, as a person reads it."""
        return self.cause.sentence(self.id) if self.cause is not None else self.note

    def move(self, new: TaskStatus, cause: Cause | None = None, *, note: str | None = None) -> None:
        """The task's state made ``new`` by the run, for ``cause``: only along an arrow of the
        state machine (``transitions.moved``: ``IllegalTransition`` off them, before anything
        is changed)."""
        self._status = moved(self.id, self._status, new, cause)
        self.cause, self.note = cause, note

    def read_as(self, status: TaskStatus, cause: Cause | None = None, *, note: str | None = None) -> None:
        """The state the workspace's files say it is in (``collect``, between runs): no move of a run."""
        self._status, self.cause, self.note = status, cause, note

    def take(self, record: ResultRecord, result_file: str) -> None:
        """What ``record`` (this task's result) says, as read (a run's move to it is ``move``'s)."""
        self.take_details(record, result_file)
        self.read_as(record.status, record.cause, note=record.reason if record.cause is None else None)

    def take_details(self, record: ResultRecord, result_file: str) -> None:
        """What ``record`` says of the task but its state: times, attempts, spend, its file."""
        self.started = record.started
        self.finished = record.finished
        self.duration = record.duration
        self.attempts = record.attempts
        self.run_attempts = record.attempts if record.run_attempts is None else record.run_attempts  # (older file)
        self.backend = record.backend
        self.cost_usd = record.cost_usd
        self.tokens = record.total_tokens
        self.session_id = record.session_id
        self.result_file = result_file
        self.simulated = record.simulated
        self.worker = record.worker
        self.reused = record.reused
        self.raced = record.raced

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent": self.agent,
            "name": self.name,
            "status": str(self.status),
            "dependencies": self.dependencies,
            "priority": self.priority,
            "type": self.type,
            "started": self.started,
            "finished": self.finished,
            "duration": self.duration,
            "attempts": self.attempts,
            "run_attempts": self.run_attempts,
            "reason": self.reason,
            "cause": self.cause.as_json() if self.cause is not None else None,
            "backend": self.backend,
            "cost_usd": self.cost_usd,
            "tokens": self.tokens,
            "session_id": self.session_id,
            "result_file": self.result_file,
            "simulated": self.simulated,
            "worker": self.worker,
            "reused": self.reused,
            "reused_said": spoken_in(self.reused) if self.reused else None,  # (as status says it: 25 Nov 14:02)
            "up_to_date": self.out_of_date is None if self.status == TaskStatus.COMPLETED else None,
            "out_of_date": self.out_of_date,
            "settled": self.settled,
            "raced": self.raced,
        }


def read_records(plan: Plan, workspace: Workspace) -> dict[str, ResultRecord]:
    """Each task's result record, for the tasks that have one of their own."""
    present = set(_names(workspace.results_dir))
    found: dict[str, ResultRecord] = {}
    for task in plan.tasks.values():
        if workspace.result_file(task) in present:  # a name: most tasks of a big plan have no result yet
            record = read_record(workspace.result(task), task.id)
            if record is not None:
                found[task.id] = record
    return found


def archived_records(plan: Plan, workspace: Workspace, *, every: bool = False) -> dict[str, ResultRecord]:
    """The result records of the archived completed tasks a row depends on (``every``: of all of
    them, for a run, which may take a row that names any): what a dependent's fingerprint takes
    from them, as from any upstream task's (``run/resume/selection.upstream_of``). Apart from
    ``read_records``, whose keys are the plan's tasks."""
    wanted = plan.archived if every else {dep for task in plan.tasks.values() for dep in task.archived_upstream}
    found: dict[str, ResultRecord] = {}
    for dep in wanted:
        entry = plan.archived.get(dep)
        if entry is not None and entry.status == TaskStatus.COMPLETED:
            record = read_record(workspace.result(entry.task), dep)
            if record is not None:
                found[dep] = record
    return found


def _tell_unreadable(
    plan: Plan, workspace: Workspace, records: Mapping[str, ResultRecord], views: Mapping[str, TaskView]
) -> None:
    """A task whose result file is there but cannot be read as its result (a hand edit broke the
    frontmatter) is not done, and its view says why, as the next run will before it runs it."""
    if len(records) == len(plan.tasks):
        return
    present = set(_names(workspace.results_dir))
    for task in plan.tasks.values():
        if task.id in records or workspace.result_file(task) not in present:
            continue
        problem = documents.metadata_problem(workspace.result(task))
        view = views[task.id]
        if problem is not None and view.reason is None:
            view.read_as(view.status, note=f"its result file cannot be read ({problem}); the next run keeps it aside")


def collect(
    plan: Plan,
    workspace: Workspace,
    records: Mapping[str, ResultRecord] | None = None,
    *,
    inputs: Callable[[Task], str | None] | None = None,
) -> list[TaskView]:
    """The state of every task, in table order.

    A result file of the task's own decides completed/failed/skipped/interrupted; an attempt the
    journal has open means running while its runner is alive (retrying while it waits for a
    backoff), interrupted once the runner is gone; otherwise a task is pending when its
    dependencies are completed and waiting when they are not, or while a usage-limit pause
    (``state/pause.json``) is in force: nothing starts until it ends. ``inputs``: each task's
    inputs now (``run/resume/basis``), against which a person's word at its gate is judged
    (``Decision.stands``; without it, the word holds until the task next completes).
    """
    if records is None:  # (``records``: read already, as ``read_records`` reads them)
        records = read_records(plan, workspace)
    attempts = journal.read(workspace.journal_file)
    runner_alive = attempts.runner_pid is not None and pid_alive(attempts.runner_pid, attempts.runner_start)
    views: dict[str, TaskView] = {}
    for task in plan.tasks.values():
        view = TaskView.of(task)
        record = records.get(task.id)
        if record is not None:
            view.take(record, workspace.result_name(task))
        attempt = attempts.open.get(task.id)
        if attempt is not None:  # the attempt the journal has open is the task's last, left behind or not
            view.started, view.finished, view.duration = attempt.started, None, None  # (not its result's)
            view.attempts, view.run_attempts = attempt.attempt, attempt.in_run
            worker = (attempt.handle or {}).get("worker")  # on a cluster, once a worker runs it
            view.worker = worker if isinstance(worker, str) else None
            if runner_alive:
                view.read_as(TaskStatus.RUNNING)
            else:
                view.read_as(TaskStatus.INTERRUPTED, Cause(CauseKind.INTERRUPTED, pid=attempts.runner_pid))
        elif runner_alive and task.id in attempts.retrying:
            view.read_as(TaskStatus.RETRYING)
        views[task.id] = view
    _tell_unreadable(plan, workspace, records, views)
    _unskip(plan, views)
    hold_blocked(plan, views)
    decisions = approvals.latest(workspace) if any(t.approval for t in plan.tasks.values()) else {}
    decided_after(views, records, decisions)
    settle_waiting(views.values(), views, plan)
    at_gates(plan, views, records, decisions, inputs)
    if paused(workspace):
        for view in views.values():
            if view.status == TaskStatus.PENDING:
                view.read_as(TaskStatus.WAITING)
    _not_before(plan, views, time.time())
    return list(views.values())


# What a Blocked cell holds back: a task that would start, or start again, in the next run.
_HOLDABLE = frozenset({TaskStatus.PENDING, TaskStatus.WAITING, TaskStatus.FAILED, TaskStatus.SKIPPED,
                       TaskStatus.INTERRUPTED})  # fmt: skip


def blocked_cause(task: Task) -> Cause:
    """Why a blocked task is held: the person's words, in its Blocked cell."""
    return Cause(CauseKind.HELD, said=task.blocked or None)


def hold_blocked(plan: Plan, views: Mapping[str, TaskView]) -> None:
    """A task its row says is blocked is, unless it is done, running or cancelled; what depends
    on it waits (``settle_waiting``)."""
    for task in plan.tasks.values():
        view = views[task.id]
        if task.blocked is not None and view.status in _HOLDABLE:
            view.read_as(TaskStatus.BLOCKED, blocked_cause(task))


def decided_after(
    views: Mapping[str, TaskView], records: Mapping[str, ResultRecord], decisions: Mapping[str, approvals.Decision]
) -> None:
    """A result awaiting approval that a person has decided on since: completed, or rejected."""
    for task_id, view in views.items():
        decision, record = decisions.get(task_id), records.get(task_id)
        if view.status != TaskStatus.AWAITING_APPROVAL or decision is None or record is None:
            continue
        if decision.after(record.finished):
            if decision.decision == approvals.APPROVED:
                view.read_as(TaskStatus.COMPLETED, note=record.reason if record.cause is None else None)
            else:
                view.read_as(TaskStatus.REJECTED, approvals.rejected_cause(decision, "after"))


def at_gates(
    plan: Plan,
    views: Mapping[str, TaskView],
    records: Mapping[str, ResultRecord],
    decisions: Mapping[str, approvals.Decision],
    inputs: Callable[[Task], str | None] | None = None,
) -> None:
    """A task whose gate is before it starts, due to start (pending): awaiting approval, unless a
    person's word stands for it (``Decision.stands``: approved, it starts in the next run, and
    says so; rejected: rejected), by the rule the run's gate reads (``approvals.standing``)."""
    for task in plan.tasks.values():
        view = views[task.id]
        if task.approval != "before" or view.status != TaskStatus.PENDING:
            continue
        decision = approvals.standing(decisions.get(task.id), inputs(task) if inputs else None, records.get(task.id))
        if decision is not None:
            if decision.decision == approvals.REJECTED:
                view.read_as(TaskStatus.REJECTED, approvals.rejected_cause(decision, "before"))
            else:
                view.read_as(TaskStatus.PENDING, Cause(CauseKind.APPROVED, gate="before", by=decision.by or None))
            continue
        view.read_as(TaskStatus.AWAITING_APPROVAL, Cause(CauseKind.HELD, gate="before"))


def _not_before(plan: Plan, views: Mapping[str, TaskView], now: float) -> None:
    """A task whose Not before has not come waits for it, whatever else it waits for: told."""
    for task in plan.tasks.values():
        view = views[task.id]
        if task.not_before is not None and task.not_before > now and view.status in _NOT_STARTED:
            if view.reason is None:
                view.read_as(TaskStatus.WAITING, Cause(CauseKind.NOT_BEFORE, until=task.not_before))
            else:
                view.read_as(TaskStatus.WAITING, view.cause, note=view.note)


_NOT_STARTED = (TaskStatus.PENDING, TaskStatus.WAITING)


def _unskip(plan: Plan, views: dict[str, TaskView]) -> None:
    """A task skipped (or bypassed) for its upstream, none of whose dependencies is given up any
    more (a ``retry`` with no run going on put the cancelled one back; a run since completed it),
    is what the next run makes of it: it runs once they complete. Its skip no longer holds, and
    saying it does (``upstream T-01 was cancelled`` beside a pending T-01) would be stale.

    One whose upstream is given up still, for another cause than its own names (T-01 was
    cancelled, put back, and has failed since in a ``run --only T-01``), gets the cause that
    holds now, as the run that skipped it then would have: ``upstream T-01 failed``. A skip
    written before causes were recorded (no cause) is judged by its dependencies alone."""
    if not any(_for_upstream(v) for v in views.values()):
        return  # (no order to work out: most workspaces, most of the time)
    statuses = {task_id: view.status for task_id, view in views.items()}
    for task_id in dependencies_first({task_id: task.dependencies for task_id, task in plan.tasks.items()}):
        view = views[task_id]
        if not _for_upstream(view):
            continue
        # (dependencies first: one that was skipped for the same cause is judged already)
        held = next((dep for dep in view.dependencies if views[dep].status in GIVEN_UP), None)
        if held is not None:
            if view.cause is not None and not holds(view.cause, statuses):
                up = views[held]
                cause = up.cause if _for_upstream(up) and up.cause is not None else Cause.upstream(held, up.status)
                view.read_as(view.status, cause)
            continue
        fresh = TaskView.of(plan.tasks[task_id])  # pending, and waiting once ``settle_waiting`` looks
        fresh.attempts, fresh.run_attempts = view.attempts, view.run_attempts  # (numbers go on across runs)
        views[task_id] = fresh
        statuses[task_id] = fresh.status


def _for_upstream(view: TaskView) -> bool:
    """Skipped or bypassed for an upstream task (or skipped, by a version that kept no cause)."""
    if view.status == TaskStatus.SKIPPED and view.cause is None:
        return True
    return view.status in _FOR_UPSTREAM and view.cause is not None and view.cause.kind == CauseKind.UPSTREAM


_FOR_UPSTREAM = (TaskStatus.SKIPPED, TaskStatus.BYPASSED)


def settle_waiting(views: Iterable[TaskView], by_id: Mapping[str, TaskView], plan: Plan | None = None) -> None:
    """Pending tasks with a dependency not completed are waiting; one with a Condition (of
    ``plan``) decides on its dependencies' outcomes, whatever they are: it waits only while one
    of them is still to run (not finished, or finished as the next run takes up again: a failure
    no fallback took over, ``state/fallbacks``)."""
    taken: set[str] | None = None  # (worked out when a Condition first meets a failure)
    statuses: dict[str, TaskStatus] = {}  # (each task's, read then: what both are worked out from)
    for view in views:
        if view.status != TaskStatus.PENDING:
            continue
        task = plan.tasks.get(view.id) if plan is not None else None
        if plan is not None and task is not None and task.condition:
            open_ = [d for d in view.dependencies if by_id[d].status not in DECIDED]
            if open_ and taken is None and any(by_id[d].status == TaskStatus.FAILED for d in open_):
                statuses = {task_id: other.status for task_id, other in by_id.items()}
                taken = fallbacks.taken_over(plan, statuses)
            if task.approval == "before" and taken is not None:  # (a fallback the run stopped at its gate)
                open_ = [d for d in open_ if not _stopped_at_gate_for(plan, statuses, task, d)]
            if any(d not in (taken or ()) for d in open_):
                view.read_as(TaskStatus.WAITING)
        elif any(by_id[d].status != TaskStatus.COMPLETED for d in view.dependencies):
            view.read_as(TaskStatus.WAITING)


def _stopped_at_gate_for(plan: Plan, statuses: Mapping[str, TaskStatus], task: Task, dep: str) -> bool:
    """Whether ``task``, gated before it starts, is where a run leaves it when ``dep`` fails: a
    failure is the end of its task in that run, so the run decides ``task``'s Condition on it
    and, the Condition holding because it failed, stops ``task`` at its gate and asks. The next
    run may run ``dep`` again; until then, that is where ``task`` is, as the run says (it read
    waiting, and a person was asked about a task ``status`` said waited for another)."""
    if statuses.get(dep) != TaskStatus.FAILED:
        return False
    return fallbacks.runs_because_it_failed(plan, statuses, task, dep)


# The states a task with a Condition decides on (what the next run leaves as they are)
DECIDED = frozenset({TaskStatus.COMPLETED, TaskStatus.BYPASSED, TaskStatus.CANCELLED, TaskStatus.REJECTED,
                     TaskStatus.SKIPPED})  # fmt: skip


def _names(directory: os.PathLike[str]) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError:
        return []


def counts(views: Iterable[TaskView]) -> dict[str, int]:
    """How many tasks are in each state, every state listed (in ``TaskStatus`` order)."""
    found = {str(state): 0 for state in TaskStatus}
    for view in views:
        found[str(view.status)] += 1
    return found


class Outcomes(TypedDict):
    counts: dict[str, int]
    simulated: int
    failed: tuple[str, ...]
    cancelled: tuple[str, ...]
    blocked: tuple[str, ...]
    awaiting_approval: tuple[str, ...]


def outcome_counts(views: Iterable[TaskView]) -> Outcomes:
    """What ``run_finished`` says of the tasks: how many are in each state, how many of their
    results are simulated (made up by the fake executor, this run or an earlier one), and which
    failed, which are cancelled and which blocked (the run's last line says what to do about them)."""
    shown = list(views)
    return {
        "counts": counts(shown),
        "simulated": sum(1 for view in shown if view.simulated),
        "failed": _ids(shown, TaskStatus.FAILED),
        "cancelled": _ids(shown, TaskStatus.CANCELLED),
        "blocked": _ids(shown, TaskStatus.BLOCKED),
        "awaiting_approval": _ids(shown, TaskStatus.AWAITING_APPROVAL),
    }


def _ids(views: list[TaskView], status: TaskStatus) -> tuple[str, ...]:
    return tuple(sorted(view.id for view in views if view.status == status))
