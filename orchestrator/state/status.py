"""A task as the views show it (``TaskView``, which reads its state from the ``TaskState`` the
machine holds of it; ``States``, those records as a machine holds them), and the result records it
is read from; ``views/replay.collect`` makes every task's, by the machine's rules."""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from orchestrator.plan.table.times import spoken_in
from orchestrator.state.causes import Cause, CauseKind
from orchestrator.state.results import ResultRecord, read_record
from orchestrator.state.taskstate import TaskState
from orchestrator.state.transitions import moved
from orchestrator.vocabulary import TaskStatus

if TYPE_CHECKING:
    from orchestrator.plan.model import Plan, Task
    from orchestrator.state.workspace import Workspace


class States(MutableMapping[str, TaskState]):
    """The states of ``views``' tasks, as a machine holds them: each the very record its view
    reads (a run's views, a view's replay's), so what the machine moves is what they show."""

    def __init__(self, views: Mapping[str, TaskView]) -> None:
        self._views = views

    def __getitem__(self, task: str) -> TaskState:
        return self._views[task].state

    def __setitem__(self, task: str, state: TaskState) -> None:
        self._views[task].state = state

    def __delitem__(self, task: str) -> None:
        raise TypeError(f"{task}: a task's state is never forgotten while its view stands")

    def __iter__(self) -> Iterator[str]:
        return iter(self._views)

    def __len__(self) -> int:
        return len(self._views)


@dataclass(slots=True)
class TaskView:
    """One task's state as a person (or ``--json``) sees it.

    Its status is read as ``status``, from the machine's record of it (``state``), and changed in
    two ways only: ``move``, a move along an arrow of the state machine, with its cause; and a view
    between runs joining the machine in the state its files leave it in (``views/replay``: the
    ``found`` rule's ``Shows``). Its ``reason`` is rendered from its cause, or is the words of an
    attempt (``note``: a failure's message, a warning)."""

    id: str
    agent: str
    name: str
    state: TaskState  # (the machine's record of it: its status, cause and retries)
    dependencies: list[str]
    priority: str
    started: str | None = None
    finished: str | None = None
    duration: float | None = None  # its last attempt's time (its result's ``duration``)
    # From its first attempt's start to its last's end, in the run of it that made its result
    # (retries and the waits between them in it): ``output/final.as_spent`` sets it; None: not known.
    span: float | None = None
    run_attempts: int = 0  # how many attempts the run of it that made its state made: 1 + its retries
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
        state = TaskState(status)
        return cls(task.id, task.agent, task.title, state, list(task.dependencies), task.priority_name, type=task.type)

    @property
    def status(self) -> TaskStatus:
        return self.state.status

    @property
    def attempts(self) -> int:
        """The number of its last attempt (numbers go on across runs), as the machine holds it
        (``TaskState.attempt``: what a run numbers its next attempt from)."""
        return self.state.attempt

    @attempts.setter
    def attempts(self, number: int) -> None:
        self.state.attempt = number

    @property
    def cause(self) -> Cause | None:
        """Why it is in its state (``state/causes.py``)."""
        return self.state.cause

    @property
    def note(self) -> str | None:
        """An attempt's own words on it, where it has no cause: a failure's message, a warning."""
        return self.state.note

    @property
    def reason(self) -> str | None:
        """Why it is in its state, as a person reads it."""
        return self.cause.sentence(self.id) if self.cause is not None else self.note

    def move(self, new: TaskStatus, cause: Cause | None = None, *, note: str | None = None) -> None:
        """The task's state made ``new`` by the run, for ``cause``: only along an arrow of the
        state machine (``transitions.moved``: ``IllegalTransition`` off them, before anything
        is changed)."""
        state = self.state
        state.status, state.cause, state.note = moved(self.id, state.status, new, cause), cause, note

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
    present = set(workspace.result_names())
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


def blocked_cause(task: Task) -> Cause:
    """Why a blocked task is held: the person's words, in its Blocked cell."""
    return Cause(CauseKind.HELD, said=task.blocked or None)


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
    budget: tuple[str, ...] | None


def outcome_counts(views: Iterable[TaskView], counted: Container[str]) -> Outcomes:
    """What ``run_finished`` says of the tasks: how many of those ``counted`` (the plan's tasks as
    written: a row run per item once, as ``status`` counts it) are in each state, how many of their
    results are simulated (made up by the fake executor, this run or an earlier one), and which
    failed, which are cancelled, which blocked by a person and which wait for a higher budget
    (the run's last line says what to do about them: an item of a row among them, ``T-03[2]``)."""
    shown = list(views)
    budget = tuple(sorted(v.id for v in shown if v.status == TaskStatus.BLOCKED and _for_budget(v.cause)))
    return {
        "counts": counts(view for view in shown if view.id in counted),
        "simulated": sum(1 for view in shown if view.simulated),
        "failed": _ids(shown, TaskStatus.FAILED),
        "cancelled": _ids(shown, TaskStatus.CANCELLED),
        "blocked": tuple(t for t in _ids(shown, TaskStatus.BLOCKED) if t not in budget),
        "awaiting_approval": _ids(shown, TaskStatus.AWAITING_APPROVAL),
        "budget": budget or None,  # (held for a higher budget: ``run/held/budget``)
    }


def _for_budget(cause: Cause | None) -> bool:
    return cause is not None and cause.kind == CauseKind.BUDGET


def _ids(views: list[TaskView], status: TaskStatus) -> tuple[str, ...]:
    return tuple(sorted(view.id for view in views if view.status == status))
