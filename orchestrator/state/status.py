"""What state each task is in, read from the workspace files (results and the attempt journal)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator import documents
from orchestrator.plan.graph import dependencies_first
from orchestrator.plan.model import Plan, Task
from orchestrator.plan.times import not_before_reason, spoken_in
from orchestrator.state import approvals, journal
from orchestrator.state.pause import paused
from orchestrator.state.procs import pid_alive
from orchestrator.state.results import ResultRecord, read_record
from orchestrator.state.transitions import moved
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import TaskStatus

_UPSTREAM = "upstream "  # how the reason of a task skipped for its upstream begins (``upstream_reason``)
# What keeps a task that depends on it from running (a skip for it holds while one of these
# does), as a dependent's reason says it: ``upstream T-01 was cancelled``.
GIVEN_UP = {
    TaskStatus.FAILED: "failed",
    TaskStatus.CANCELLED: "was cancelled",
    TaskStatus.SKIPPED: "was skipped",
    TaskStatus.INTERRUPTED: "was interrupted",
    TaskStatus.REJECTED: "was rejected",
}
_VAGUE = "did not run"  # what a run says of an upstream it gave up without a word of its own


@dataclass(slots=True)
class TaskView:
    """One task's state as a person (or ``--json``) sees it."""

    id: str
    agent: str
    name: str
    status: TaskStatus
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
    reason: str | None = None
    backend: str | None = None
    cost_usd: float | None = None
    tokens: int | None = None
    session_id: str | None = None
    result_file: str | None = None
    simulated: bool = False
    worker: str | None = None  # on a cluster: the worker that ran its last attempt
    reused: str | None = None  # its result reused from the cache, no process started: why (``run/reuse.py``)
    out_of_date: str | None = None  # completed, but run would do it again: why (``run.freshness``)
    type: str | None = None  # its task type (``plan/tasktypes.py``)

    @classmethod
    def of(cls, task: Task, status: TaskStatus = TaskStatus.PENDING) -> TaskView:
        return cls(task.id, task.agent, task.title, status, list(task.dependencies), task.priority_name, type=task.type)

    def move(self, new: TaskStatus) -> None:
        """The task's state made ``new`` by the run: only along an arrow of the state machine
        (``transitions.moved``: ``IllegalTransition`` off them)."""
        self.status = moved(self.id, self.status, new)

    def take(self, record: ResultRecord, result_file: str) -> None:
        """What ``record`` (this task's result) says (as read: a run's own move to it is ``move``'s)."""
        self.status = record.status
        self.started = record.started
        self.finished = record.finished
        self.duration = record.duration
        self.attempts = record.attempts
        self.run_attempts = record.attempts if record.run_attempts is None else record.run_attempts  # (older file)
        self.reason = record.reason
        self.backend = record.backend
        self.cost_usd = record.cost_usd
        self.tokens = record.total_tokens
        self.session_id = record.session_id
        self.result_file = result_file
        self.simulated = record.simulated
        self.worker = record.worker
        self.reused = record.reused

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
    from them, as from any upstream task's (``run.selection.upstream_of``). Apart from
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
        if problem is not None and views[task.id].reason is None:
            views[task.id].reason = f"its result file cannot be read ({problem}); the next run keeps it aside"


def collect(plan: Plan, workspace: Workspace, records: Mapping[str, ResultRecord] | None = None) -> list[TaskView]:
    """The state of every task, in table order.

    A result file of the task's own decides completed/failed/skipped/interrupted; an attempt the
    journal has open means running while its runner is alive (retrying while it waits for a
    backoff), interrupted once the runner is gone; otherwise a task is pending when its
    dependencies are completed and waiting when they are not, or while a usage-limit pause
    (``state/pause.json``) is in force: nothing starts until it ends.
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
                view.status = TaskStatus.RUNNING
            else:
                view.status = TaskStatus.INTERRUPTED
                view.reason = f"runner (pid {attempts.runner_pid}) is gone; attempt left behind"
        elif runner_alive and task.id in attempts.retrying:
            view.status = TaskStatus.RETRYING
        views[task.id] = view
    _tell_unreadable(plan, workspace, records, views)
    _unskip(plan, views)
    hold_blocked(plan, views)
    decisions = approvals.latest(workspace) if any(t.approval for t in plan.tasks.values()) else {}
    decided_after(views, records, decisions)
    settle_waiting(views.values(), views)
    at_gates(plan, views, records, decisions)
    if paused(workspace):
        for view in views.values():
            if view.status == TaskStatus.PENDING:
                view.status = TaskStatus.WAITING
    _not_before(plan, views, time.time())
    return list(views.values())


# What a Blocked cell holds back: a task that would start, or start again, in the next run.
_HOLDABLE = frozenset({TaskStatus.PENDING, TaskStatus.WAITING, TaskStatus.FAILED, TaskStatus.SKIPPED,
                       TaskStatus.INTERRUPTED})  # fmt: skip


def blocked_reason(task: Task) -> str:
    """What a blocked task's reason says: the person's words, and how it is released."""
    why = f"blocked: {task.blocked}" if task.blocked else "blocked by hand (its Blocked cell)"
    return f"{why} — `orchestrator update {task.id} --status pending` releases it"


def hold_blocked(plan: Plan, views: Mapping[str, TaskView]) -> None:
    """A task its row says is blocked is, unless it is done, running or cancelled; what depends
    on it waits (``settle_waiting``)."""
    for task in plan.tasks.values():
        view = views[task.id]
        if task.blocked is not None and view.status in _HOLDABLE:
            view.status, view.reason = TaskStatus.BLOCKED, blocked_reason(task)


def decided_after(
    views: Mapping[str, TaskView], records: Mapping[str, ResultRecord], decisions: Mapping[str, approvals.Decision]
) -> None:
    """A result awaiting approval that a person has decided on since: completed, or rejected."""
    for task_id, view in views.items():
        decision, record = decisions.get(task_id), records.get(task_id)
        if view.status != TaskStatus.AWAITING_APPROVAL or decision is None or record is None:
            continue
        if decision.after(record.finished):
            approved = decision.decision == approvals.APPROVED
            view.status = TaskStatus.COMPLETED if approved else TaskStatus.REJECTED
            view.reason = None if approved else approvals.rejected_reason(decision)


def at_gates(
    plan: Plan,
    views: Mapping[str, TaskView],
    records: Mapping[str, ResultRecord],
    decisions: Mapping[str, approvals.Decision],
) -> None:
    """A task whose gate is before it starts, due to start (pending): awaiting approval, unless a
    person decided since its last completed result (approved: it starts; rejected: rejected)."""
    for task in plan.tasks.values():
        view = views[task.id]
        if task.approval != "before" or view.status != TaskStatus.PENDING:
            continue
        record, decision = records.get(task.id), decisions.get(task.id)
        done = record.finished if record is not None and record.status == TaskStatus.COMPLETED else None
        if decision is not None and decision.after(done):
            if decision.decision == approvals.REJECTED:
                view.status, view.reason = TaskStatus.REJECTED, approvals.rejected_reason(decision)
            continue
        view.status, view.reason = TaskStatus.AWAITING_APPROVAL, approvals.awaiting_reason(task.id, "before")


def _not_before(plan: Plan, views: Mapping[str, TaskView], now: float) -> None:
    """A task whose Not before has not come waits for it, whatever else it waits for: told."""
    for task in plan.tasks.values():
        view = views[task.id]
        if task.not_before is not None and task.not_before > now and view.status in _NOT_STARTED:
            view.status = TaskStatus.WAITING
            view.reason = view.reason or not_before_reason(task.not_before)


_NOT_STARTED = (TaskStatus.PENDING, TaskStatus.WAITING)


def upstream_reason(dependency: str, what: str) -> str:
    """Why a task is skipped for a task it depends on, ``upstream T-01 was cancelled``: the one
    wording a run records, which ``collect`` knows again."""
    return f"{_UPSTREAM}{dependency} {what}"


def _unskip(plan: Plan, views: dict[str, TaskView]) -> None:
    """A task skipped for its upstream, none of whose dependencies is given up any more (a
    ``retry`` with no run going on put the cancelled one back; a run since completed it), is
    what the next run makes of it: it runs once they complete. Its skip no longer holds, and
    saying it does (``upstream T-01 was cancelled`` beside a pending T-01) would be stale.

    One whose upstream is given up still, for another cause than its reason says (T-01 was
    cancelled, put back, and has failed since in a ``run --only T-01``), says the cause that
    holds now, as the run that skipped it then would have: ``upstream T-01 failed``."""
    if not any(_for_upstream(v) for v in views.values()):
        return  # (no order to work out: most workspaces, most of the time)
    for task_id in dependencies_first({task_id: task.dependencies for task_id, task in plan.tasks.items()}):
        view = views[task_id]
        if not _for_upstream(view):
            continue
        # (dependencies first: one that was skipped for the same cause is judged already)
        held = next((dep for dep in view.dependencies if views[dep].status in GIVEN_UP), None)
        if held is not None:
            if not _holds(view.reason or "", views):
                view.reason = views[held].reason if _for_upstream(views[held]) else _because(held, views)
            continue
        fresh = TaskView.of(plan.tasks[task_id])  # pending, and waiting once ``settle_waiting`` looks
        fresh.attempts, fresh.run_attempts = view.attempts, view.run_attempts  # (numbers go on across runs)
        views[task_id] = fresh


def _for_upstream(view: TaskView) -> bool:
    return view.status == TaskStatus.SKIPPED and (view.reason or "").startswith(_UPSTREAM)


def _because(dependency: str, views: Mapping[str, TaskView]) -> str:
    return upstream_reason(dependency, GIVEN_UP.get(views[dependency].status, _VAGUE))


def _holds(reason: str, views: Mapping[str, TaskView]) -> bool:
    """Whether the upstream ``reason`` names is given up still, as it says (or it says no more
    than that it did not run)."""
    named, _, what = reason.removeprefix(_UPSTREAM).partition(" ")
    view = views.get(named)
    return view is not None and view.status in GIVEN_UP and what in (GIVEN_UP[view.status], _VAGUE)


def settle_waiting(views: Iterable[TaskView], by_id: dict[str, TaskView]) -> None:
    """Pending tasks with a dependency not completed are waiting."""
    for view in views:
        if view.status == TaskStatus.PENDING and any(
            by_id[d].status != TaskStatus.COMPLETED for d in view.dependencies
        ):
            view.status = TaskStatus.WAITING


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


def outcome_counts(views: Iterable[TaskView]) -> dict[str, object]:
    """What ``run_finished`` says of the tasks: how many are in each state, how many of their
    results are simulated (made up by the fake executor, this run or an earlier one), and which
    failed, which are cancelled and which blocked (the run's last line says what to do about them)."""
    shown = list(views)
    return {
        "counts": counts(shown),
        "simulated": sum(1 for view in shown if view.simulated),
        "failed": sorted(view.id for view in shown if view.status == TaskStatus.FAILED),
        "cancelled": sorted(view.id for view in shown if view.status == TaskStatus.CANCELLED),
        "blocked": sorted(view.id for view in shown if view.status == TaskStatus.BLOCKED),
        "awaiting_approval": sorted(view.id for view in shown if view.status == TaskStatus.AWAITING_APPROVAL),
    }
