"""The records of a run as a whole (started, paused, waiting, its expected end, its deadlines,
its notices, finished), of the requests commands make of it from outside, and of what commands
write with or without one: the channels' lines and checkpoints.

Each record's fields are the keys of its line (cli-integration.md, "JSON output", tells them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from orchestrator.state.events.base import OPTIONAL, EventKind, EventRecord, added


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted(EventRecord):
    """A run began: what it runs (``to_run``) and found done; ``kept``: the finished tasks it leaves
        as they are; ``simulated``: the fake executor, nothing runs; ``params``: the values a plan with
        parameters was read with, and (``untrusted``) those of them from outside, with where from;
        ``read_only``: every agent task with Access: read (``run --read-only``, a trigger's ``access``);
        ``overrides`` and ``limits``: what the command line changed, and what
        the run stops attempts by; ``pid`` and ``pid_start``: the runner (0, ``None``: not said, as
    ``max_parallel``, by a version before)."""

    event: ClassVar[EventKind] = EventKind.RUN_STARTED
    to_run: int
    already_done: int
    kept: int | None = field(default=None, metadata=OPTIONAL)
    simulated: bool = field(metadata=added(False))
    params: dict[str, Any] | None = field(default=None, metadata=OPTIONAL)
    untrusted: dict[str, str] | None = field(default=None, metadata=OPTIONAL)
    read_only: bool | None = field(default=None, metadata=OPTIONAL)
    max_parallel: int | None = field(metadata=added(None))
    overrides: dict[str, Any] = field(metadata=added({}))
    limits: dict[str, Any] = field(metadata=added({}))
    workspace: str = field(metadata=added(""))
    pid: int = field(metadata=added(0))
    pid_start: int | None = field(metadata=added(None))


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFinished(EventRecord):
    """A run ended: how many tasks are in each state (``counts``), how many results are simulated,
    which failed, are cancelled, blocked or await approval; ``stopped``: why it stopped early (an
    error that ended it: ``error: ...``, and then no ``simulated``, ``wall_seconds`` nor lists)."""

    event: ClassVar[EventKind] = EventKind.RUN_FINISHED
    counts: dict[str, int]
    simulated: int | None = field(default=None, metadata=OPTIONAL)
    failed: tuple[str, ...] | None = field(default=None, metadata=OPTIONAL)
    cancelled: tuple[str, ...] | None = field(default=None, metadata=OPTIONAL)
    blocked: tuple[str, ...] | None = field(default=None, metadata=OPTIONAL)
    awaiting_approval: tuple[str, ...] | None = field(default=None, metadata=OPTIONAL)
    budget: tuple[str, ...] | None = field(default=None, metadata=OPTIONAL)  # waiting for a higher budget
    wall_seconds: float | None = field(default=None, metadata=OPTIONAL)
    exit_code: int
    cost_usd: float | None = field(metadata=added(None))
    stopped: str | None = field(metadata=added(None))
    final_output: str | None
    integration_branch: str | None = field(metadata=added(None))


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPaused(EventRecord):
    """``task`` met a usage limit: the tasks of its ``limit_group`` wait ``until`` its reset."""

    event: ClassVar[EventKind] = EventKind.RUN_PAUSED
    task: str = field(metadata=added(""))
    until: str
    reason: str
    limit_group: str | None = field(metadata=added(None))


@dataclass(frozen=True, slots=True, kw_only=True)
class RunWaiting(EventRecord):
    """``run --wait``: nothing left to start, the run waits for a person's word on ``tasks`` (those
    at a gate: ``gates``; why each: ``reasons``), ``until`` its ``--wait-timeout`` (``None``: no end)."""

    event: ClassVar[EventKind] = EventKind.RUN_WAITING
    tasks: tuple[str, ...] = field(metadata=added(()))
    gates: dict[str, str] = field(metadata=added({}))
    until: str | None = field(metadata=added(None))
    reasons: dict[str, str] = field(metadata=added({}))


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetReached(EventRecord):
    """The run has spent its budget (``limit``, dollars; ``spent`` so far), or what is left of it
    fits no task ready to start (``next``: the cheapest, ``expected`` its forecast): it starts nothing
    new, and its ``tasks`` not started wait for a higher budget (``orchestrator budget +USD``)."""

    event: ClassVar[EventKind] = EventKind.BUDGET_REACHED
    spent: float
    limit: float
    tasks: tuple[str, ...] = field(metadata=added(()))
    next: str | None = field(metadata=added(None))
    expected: float | None = field(metadata=added(None))
    message: str = field(metadata=added(""))


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetRaised(EventRecord):
    """The run's budget is ``limit`` now (``was`` before), as ``request`` asked (``by``: who,
    ``via``: which door); the tasks it held go on."""

    event: ClassVar[EventKind] = EventKind.BUDGET_RAISED
    limit: float
    was: float | None = field(metadata=added(None))
    spent: float = field(metadata=added(0.0))
    request: str = field(metadata=added(""))
    by: str | None = field(metadata=added(None))
    via: str | None = field(metadata=added(None))
    released: tuple[str, ...] = field(metadata=added(()))


@dataclass(frozen=True, slots=True, kw_only=True)
class RunEstimate(EventRecord):
    """What the run expects of its end, as ``status --json``'s ``eta`` says it: ``finished`` of
    ``total`` tasks, ``seconds_left``, ``expected_end`` (ISO), ``expected_cost``."""

    event: ClassVar[EventKind] = EventKind.RUN_ESTIMATE
    finished: int = field(metadata=added(0))
    total: int = field(metadata=added(0))
    seconds_left: float
    expected_end: str = field(metadata=added(""))
    expected_cost: float | None = field(metadata=added(None))
    tasks_left: int = field(metadata=added(0))
    learned: int = field(metadata=added(0))
    given: int = field(metadata=added(0))


@dataclass(frozen=True, slots=True, kw_only=True)
class _Deadline(EventRecord):
    """A deadline of ``task`` (none: the run's own) at ``deadline`` (ISO; ``written`` as the plan
    says it), and when the estimates say it is done, or it ended (``expected_end``); ``message``:
    its line."""

    task: str | None = field(default=None, metadata=OPTIONAL)
    message: str
    deadline: str = field(metadata=added(""))
    expected_end: str | None = field(metadata=added(None))
    written: str = field(metadata=added(""))


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadlineAtRisk(_Deadline):
    """The estimates say the deadline will be missed."""

    event: ClassVar[EventKind] = EventKind.DEADLINE_AT_RISK


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadlineMissed(_Deadline):
    """The deadline was missed."""

    event: ClassVar[EventKind] = EventKind.DEADLINE_MISSED


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice(EventRecord):
    """Something a person should know that changes no task's state: ``message``."""

    event: ClassVar[EventKind] = EventKind.NOTICE
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanFile(EventRecord):
    """master_plan.md was deleted or renamed while the run goes on (``present``: false), or is back."""

    event: ClassVar[EventKind] = EventKind.PLAN_FILE
    present: bool
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanHeld(EventRecord):
    """master_plan.md changed while a run from outside goes on (``source``: where its values came
    from): the change is held for a person, not taken into that run, whose plan stays the one it
    started with."""

    event: ClassVar[EventKind] = EventKind.PLAN_HELD
    source: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _Request(EventRecord):
    """A command asks the run going on (``run``) something of ``task``, and waits for its answer to
    ``request`` (the run's ``task_cancelled``, ``task_requeued``, ``approval_*``, or a ``request_refused``)."""

    task: str
    request: str = field(metadata=added(""))
    reason: str | None = field(metadata=added(None))


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelRequested(_Request):
    """``cancel``."""

    event: ClassVar[EventKind] = EventKind.CANCEL_REQUESTED


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryRequested(_Request):
    """``retry``."""

    event: ClassVar[EventKind] = EventKind.RETRY_REQUESTED


@dataclass(frozen=True, slots=True, kw_only=True)
class ApproveRequested(_Request):
    """``approve``: the word itself is in state/approvals.jsonl already."""

    event: ClassVar[EventKind] = EventKind.APPROVE_REQUESTED


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectRequested(_Request):
    """``reject``: the word itself is in state/approvals.jsonl already."""

    event: ClassVar[EventKind] = EventKind.REJECT_REQUESTED


@dataclass(frozen=True, slots=True, kw_only=True)
class PermissionRequested(_Request):
    """An agent's question, asked by ``orchestrator mcp --permission-tool`` for the run to tell
    (``request``: the question's id); the question itself is in state/approvals.jsonl already."""

    event: ClassVar[EventKind] = EventKind.PERMISSION_REQUESTED


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerRequested(_Request):
    """``answer`` (or a link, a comment, no answer in time): the answer to question ``request`` is in
    state/approvals.jsonl already, for the run to tell."""

    event: ClassVar[EventKind] = EventKind.ANSWER_REQUESTED


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetRequested(EventRecord):
    """``orchestrator budget``: the run going on (``run``) is asked to make its budget ``limit``
    dollars (``add``: raise it by so much instead); answered by its ``budget_raised``, or a
    ``request_refused``."""

    event: ClassVar[EventKind] = EventKind.BUDGET_REQUESTED
    request: str
    limit: float | None = field(metadata=added(None))
    add: float | None = field(metadata=added(None))
    by: str | None = field(metadata=added(None))
    via: str | None = field(metadata=added(None))


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRefused(EventRecord):
    """The run refused ``request`` (a ``cancel``, ``retry``, ``decide``: ``request_kind``) for ``reason``."""

    event: ClassVar[EventKind] = EventKind.REQUEST_REFUSED
    task: str = field(metadata=added(""))
    request: str = field(metadata=added(""))
    request_kind: str = field(metadata=added("request"))
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _Channel(EventRecord):
    """A line a task (or a person) wrote to a channel: its ``text``, and its ``author`` when named."""

    task: str | None = field(metadata=added(None))
    text: str = field(metadata=added(""))
    author: str | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True, slots=True, kw_only=True)
class Shared(_Channel):
    """``share``: an update every task may read (context/shared.md)."""

    event: ClassVar[EventKind] = EventKind.SHARED


@dataclass(frozen=True, slots=True, kw_only=True)
class Discovered(_Channel):
    """``discover``: a finding for every task after it (context/discoveries.md)."""

    event: ClassVar[EventKind] = EventKind.DISCOVERED


@dataclass(frozen=True, slots=True, kw_only=True)
class Synced(_Channel):
    """``sync``: a point every task reached."""

    event: ClassVar[EventKind] = EventKind.SYNCED


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckpointSaved(EventRecord):
    """``checkpoint save``: the checkpoint ``name``."""

    event: ClassVar[EventKind] = EventKind.CHECKPOINT_SAVED
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckpointRestored(EventRecord):
    """``checkpoint restore`` of ``name``; ``before``: the checkpoint that keeps what it replaced;
    ``results``: each result file it brought back (its name in results/) and the digest of its
    bytes, which ``verify`` holds the file to (``None``: a line of a version before, which said none)."""

    event: ClassVar[EventKind] = EventKind.CHECKPOINT_RESTORED
    name: str
    before: str = field(metadata=added(""))
    results: dict[str, str] | None = field(metadata=added(None))


@dataclass(frozen=True, slots=True, kw_only=True)
class _Effect(EventRecord):
    """An outward effect (``state/events/effects``): ``key``, what it is for (its kind, where it goes, the
    work it carries), which no retry, rerun or resume does twice; ``kind``: push, pr, pr_update,
    comment, notify; ``target``: where it goes (a remote's branch, ``OWNER/NAME#7``); ``commit``: the work."""

    key: str
    kind: str
    target: str
    commit: str | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True, slots=True, kw_only=True)
class EffectIntended(_Effect):
    """An effect about to be attempted: written, and on disk, before it is. ``message``: a
    notification's (``run/notices``), what it carries, to be sent again, under the same
    idempotency key, by the next run when this one died before its outcome was known."""

    event: ClassVar[EventKind] = EventKind.EFFECT_INTENDED
    message: dict[str, Any] | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True, slots=True, kw_only=True)
class EffectDone(_Effect):
    """An effect done, with the remote's answer: a pull request's or a comment's ``number`` and
    ``url``; ``found``: not done again, found done on the remote (``reconciled``: an intent a crash
    left without its outcome)."""

    event: ClassVar[EventKind] = EventKind.EFFECT_DONE
    number: int | None = field(default=None, metadata=OPTIONAL)
    url: str | None = field(default=None, metadata=OPTIONAL)
    found: bool | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True, slots=True, kw_only=True)
class EffectFailed(_Effect):
    """An effect the remote refused or never answered (``error``): not done, tried again by the next run."""

    event: ClassVar[EventKind] = EventKind.EFFECT_FAILED
    error: str
