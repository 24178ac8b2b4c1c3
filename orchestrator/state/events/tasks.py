"""The records of a task's life in a run: started, retried, ended (completed, failed, not run),
held and released, changed in the queue, and the approval gates.

Each record's fields are the keys of its line (cli-integration.md, "JSON output", tells them);
``agent`` and the other keys a version before may not have written read as empty (``added``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from orchestrator.state.causes import Cause
from orchestrator.state.events.base import OPTIONAL, EventKind, EventRecord, added


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskStarted(EventRecord):
    """An attempt started. ``attempt``: its number, which its files carry (on across runs);
    ``in_run`` of ``of``: its place in this run of the task, of how many it may make (0: not
    said, a line of a version before); ``kind``: what the estimates count it under."""

    event: ClassVar[EventKind] = EventKind.TASK_STARTED
    task: str
    agent: str = field(metadata=added(""))
    name: str = field(metadata=added(""))
    attempt: int = field(metadata=added(1))
    in_run: int = field(metadata=added(0))
    of: int = field(metadata=added(0))
    backend: str | None = field(metadata=added(None))
    kind: str | None = field(metadata=added(None))
    log: str | None = field(metadata=added(None))
    brief: str | None = field(default=None, metadata=OPTIONAL)
    estimate: float | None = field(default=None, metadata=OPTIONAL)
    expected_cost: float | None = field(default=None, metadata=OPTIONAL)  # dollars, its forecast's p50
    model: str | None = field(default=None, metadata=OPTIONAL)  # its model, when its settings name one


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRetrying(EventRecord):
    """An attempt failed and another comes after ``delay`` seconds: ``attempt`` is the next one;
    ``cost_usd`` and ``tokens``, what the one that failed spent."""

    event: ClassVar[EventKind] = EventKind.TASK_RETRYING
    task: str
    agent: str = field(metadata=added(""))
    attempt: int
    delay: float
    reason: str
    error_class: str | None = field(metadata=added(None))
    cost_usd: float | None = field(metadata=added(None))
    tokens: int | None = field(metadata=added(None))


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskCompleted(EventRecord):
    """A task completed: ``cost_usd`` and ``tokens`` its attempts' in this run of it, the
    ``attempt_`` ones its last attempt's own; ``worker``: the Dask worker that ran it;
    ``reused``: why its result came from the cache (no process started); ``result_digest``: the
    digest of its ``result`` file's bytes as written (``verify`` compares the file with it);
    ``cause``: told late, by the next run (its ``run`` the one that wrote the result), as the
    runner died between writing it and telling of it (``state/events/untold``)."""

    event: ClassVar[EventKind] = EventKind.TASK_COMPLETED
    task: str
    agent: str = field(metadata=added(""))
    name: str = field(metadata=added(""))
    duration: float | None = field(metadata=added(None))
    attempts: int = field(metadata=added(0))
    cost_usd: float | None = field(metadata=added(None))
    attempt_cost_usd: float | None = field(metadata=added(None))
    tokens: int | None = field(metadata=added(None))
    attempt_tokens: int | None = field(metadata=added(None))
    result: str = field(metadata=added(""))
    warning: str | None = field(metadata=added(None))
    simulated: bool = field(metadata=added(False))
    worker: str | None = field(default=None, metadata=OPTIONAL)
    reused: str | None = field(default=None, metadata=OPTIONAL)
    result_digest: str | None = field(default=None, metadata=OPTIONAL)
    cause: Cause | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskFailed(EventRecord):
    """A task failed: its last attempt (``attempt``, ``stderr_tail``: the last lines of its
    stderr, ``simulated``, ``worker``), or before any attempt could start (``cause``), or it stays
    failed as a run before left it (its conflict not resolved: no ``result`` written)."""

    event: ClassVar[EventKind] = EventKind.TASK_FAILED
    task: str
    agent: str = field(metadata=added(""))
    attempt: int | None = field(default=None, metadata=OPTIONAL)
    reason: str
    cause: Cause | None = field(default=None, metadata=OPTIONAL)
    stderr_tail: tuple[str, ...] | None = field(default=None, metadata=OPTIONAL)
    simulated: bool | None = field(default=None, metadata=OPTIONAL)
    cost_usd: float | None = field(metadata=added(None))
    attempt_cost_usd: float | None = field(metadata=added(None))
    tokens: int | None = field(metadata=added(None))
    attempt_tokens: int | None = field(metadata=added(None))
    worker: str | None = field(default=None, metadata=OPTIONAL)
    result: str | None = field(default=None, metadata=OPTIONAL)  # its result file, when this wrote it
    result_digest: str | None = field(default=None, metadata=OPTIONAL)  # (as ``task_completed``'s)


@dataclass(frozen=True, slots=True, kw_only=True)
class _NotRun(EventRecord):
    """A task that ends this run without an attempt of its own to show: ``reason`` is ``cause``
    as a sentence (``Cause.sentence``); ``result`` and ``result_digest``: the result file written
    for it and the digest of its bytes (as ``task_completed``'s)."""

    task: str
    agent: str = field(metadata=added(""))
    reason: str
    cause: Cause | None = field(metadata=added(None))
    result: str | None = field(default=None, metadata=OPTIONAL)
    result_digest: str | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSkipped(_NotRun):
    """Not run: what it depends on will not complete (failed, cancelled...), or the run stopped."""

    event: ClassVar[EventKind] = EventKind.TASK_SKIPPED


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskInterrupted(_NotRun):
    """Its attempt was stopped before its end (Ctrl-C, a signal, its runner gone): a later run goes on."""

    event: ClassVar[EventKind] = EventKind.TASK_INTERRUPTED


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskBypassed(_NotRun):
    """Not run, and no failure: its Condition was false, or what it depends on was bypassed."""

    event: ClassVar[EventKind] = EventKind.TASK_BYPASSED


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRejected(_NotRun):
    """Refused at its approval gate: what depends on it is skipped."""

    event: ClassVar[EventKind] = EventKind.TASK_REJECTED


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskCancelled(_NotRun):
    """Cancelled (``cancel``, the run's own stop): ``duration`` from the start of its attempt to
    the cancel (``None``: it had not started); what its attempts spent, when they spent anything."""

    event: ClassVar[EventKind] = EventKind.TASK_CANCELLED
    duration: float | None = field(metadata=added(None))
    cost_usd: float | None = field(default=None, metadata=OPTIONAL)
    attempt_cost_usd: float | None = field(default=None, metadata=OPTIONAL)
    tokens: int | None = field(default=None, metadata=OPTIONAL)
    attempt_tokens: int | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskBlocked(EventRecord):
    """A person holds the task back (its Blocked cell): it does not start, and what needs it waits."""

    event: ClassVar[EventKind] = EventKind.TASK_BLOCKED
    task: str
    agent: str = field(metadata=added(""))
    name: str = field(metadata=added(""))
    reason: str
    cause: Cause | None = field(metadata=added(None))


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskReleased(EventRecord):
    """Its Blocked cell was emptied while the run goes on: it starts once what it depends on is done."""

    event: ClassVar[EventKind] = EventKind.TASK_RELEASED
    task: str
    agent: str = field(metadata=added(""))


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskStuck(EventRecord):
    """The attempt has run 80% of its timeout, or printed nothing for half its inactivity limit: ``why``."""

    event: ClassVar[EventKind] = EventKind.TASK_STUCK
    task: str
    agent: str = field(metadata=added(""))
    attempt: int = field(metadata=added(1))
    why: str = field(metadata=added(""))


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskFailover(EventRecord):
    """An attempt starts on ``backend``, its fallback, instead of ``fallback_from``, which is down: ``reason``."""

    event: ClassVar[EventKind] = EventKind.TASK_FAILOVER
    task: str
    backend: str
    fallback_from: str
    attempt: int = field(metadata=added(1))
    reason: str = field(metadata=added(""))


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskHedged(EventRecord):
    """A straggling attempt (``first``) got a second one beside it (``attempt``, on ``backend``),
    ``after`` seconds into it, past its ``bound`` (``why``: where the bound comes from)."""

    event: ClassVar[EventKind] = EventKind.TASK_HEDGED
    task: str
    agent: str = field(metadata=added(""))
    attempt: int
    first: int
    backend: str
    after: float
    bound: float
    why: str = field(metadata=added(""))
    log: str | None = field(default=None, metadata=OPTIONAL)  # its logs' stem, as ``task_started``'s


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskHedgeWon(EventRecord):
    """Of a hedged task's two attempts, ``attempt`` completed first (``hedge``: the second one
    did) and ``lost`` was stopped; ``won_by``: how much longer the stopped one had run than the
    winner took (negative: less, a hedge stopped early); ``cost_usd`` and ``tokens``: what the
    stopped one spent, counted in the task's."""

    event: ClassVar[EventKind] = EventKind.TASK_HEDGE_WON
    task: str
    agent: str = field(metadata=added(""))
    attempt: int
    lost: int
    hedge: bool
    won_by: float
    cost_usd: float | None = field(metadata=added(None))
    tokens: int | None = field(metadata=added(None))


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskHedgeFailed(EventRecord):
    """Neither of a hedged task's two attempts completed: ``attempt``, the one that ended last, is
    the task's outcome (``hedge``: the second one), and ``lost`` ended before it; ``cost_usd`` and
    ``tokens``: what ``lost`` spent, counted in the task's. ``stopped``: both were stopped from
    outside (a cancel, the run's stop), ``lost`` the hedge stopped with the task's attempt."""

    event: ClassVar[EventKind] = EventKind.TASK_HEDGE_FAILED
    task: str
    agent: str
    attempt: int
    lost: int
    hedge: bool
    cost_usd: float | None
    tokens: int | None
    stopped: bool | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskJudged(EventRecord):
    """Best of N decided: ``attempt`` chosen by ``judge`` for ``reason``; ``candidates``: each one's
    ``attempt``, ``status`` (completed, failed, stopped), ``chosen``, ``started`` and ``ended``, and
    what it spent (``cost_usd``, ``tokens``), counted in the task's."""

    event: ClassVar[EventKind] = EventKind.TASK_JUDGED
    task: str
    agent: str = field(metadata=added(""))
    attempt: int
    judge: str
    reason: str
    candidates: tuple[dict[str, Any], ...] = field(metadata=added(()))


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskAdded(EventRecord):
    """A task added to the plan: taken by the run going on (``agent``; ``limits`` when it runs by
    other limits than the run's), or by ``add`` with no run going on."""

    event: ClassVar[EventKind] = EventKind.TASK_ADDED
    task: str
    agent: str | None = field(default=None, metadata=OPTIONAL)
    name: str = field(metadata=added(""))
    after: tuple[str, ...] = field(metadata=added(()))
    limits: dict[str, Any] | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemsFailed(EventRecord):
    """Items of the row ``task`` failed since it last told (``run/notices/digest``): ``failed`` of
    them, the first ``items`` named, the first one's ``reason``; ``total``, its items failed so far
    in the run. What a notification tells of a row's failures: one a row at most each
    ``timing.notify_digest`` seconds, not one an item."""

    event: ClassVar[EventKind] = EventKind.ITEMS_FAILED
    task: str
    failed: int
    items: tuple[str, ...] = field(metadata=added(()))
    reason: str = field(metadata=added(""))
    total: int = field(metadata=added(0))


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemsKnown(EventRecord):
    """A row run once per item (its Each cell, ``each``) has its ``items``: instances ``task[1]``
    to ``task[items]``; ``joined``: they joined the run going on (its items came from an answer of
    this run), else they were in it from its start."""

    event: ClassVar[EventKind] = EventKind.ITEMS_KNOWN
    task: str
    items: int
    each: str = ""
    joined: bool | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskChanged(EventRecord):
    """A task not started yet takes its row as edited while the run goes on: ``name`` its title
    now, ``was`` before; ``changed``: what of its row; ``limits``: what it is judged by now."""

    event: ClassVar[EventKind] = EventKind.TASK_CHANGED
    task: str
    agent: str = field(metadata=added(""))
    name: str = field(metadata=added(""))
    was: str = field(metadata=added(""))
    changed: tuple[str, ...] = field(metadata=added(()))
    limits: dict[str, Any] | None = field(metadata=added(None))


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRequeued(EventRecord):
    """Back in the queue after ``retry`` (``was``: its state before); ``request``: the request it answers."""

    event: ClassVar[EventKind] = EventKind.TASK_REQUEUED
    task: str
    agent: str = field(metadata=added(""))
    was: str = field(metadata=added("retry"))
    request: str | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSpawned(EventRecord):
    """A task ``spawn`` added, with its ``labels``; ``detach``: left to run in the background."""

    event: ClassVar[EventKind] = EventKind.TASK_SPAWNED
    task: str
    labels: tuple[str, ...] = field(metadata=added(()))
    detach: bool = field(metadata=added(False))


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRequested(EventRecord):
    """The task waits at its approval ``gate`` (``before`` it starts, or ``after``: its result) for a person."""

    event: ClassVar[EventKind] = EventKind.APPROVAL_REQUESTED
    task: str
    agent: str = field(metadata=added(""))
    name: str = field(metadata=added(""))
    gate: str = field(metadata=added(""))
    reason: str
    cause: Cause | None = field(metadata=added(None))
    inputs: str | None = field(default=None, metadata=OPTIONAL)  # the inputs a person is asked on
    result: str | None = field(default=None, metadata=OPTIONAL)  # a gate after: the result it awaits
    result_digest: str | None = field(default=None, metadata=OPTIONAL)  # (as ``task_completed``'s)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Word(EventRecord):
    """A person's word at a task's ``gate``, taken by the run going on: ``by`` whom, and why. One
    given between runs on a result that awaited it is taken as the next run begins (``run``
    null): ``result`` and ``result_digest``, the result written again (as ``task_completed``'s)."""

    task: str
    agent: str = field(metadata=added(""))
    gate: str = field(metadata=added(""))
    by: str | None = field(metadata=added(None))
    reason: str | None = field(metadata=added(None))
    via: str | None = field(default=None, metadata=OPTIONAL)  # dashboard, github, link: said elsewhere
    url: str | None = field(default=None, metadata=OPTIONAL)  # where it can be read (a GitHub comment)
    result: str | None = field(default=None, metadata=OPTIONAL)
    result_digest: str | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalGiven(_Word):
    """Approved at its gate."""

    event: ClassVar[EventKind] = EventKind.APPROVAL_GIVEN


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRefused(_Word):
    """Rejected at its gate."""

    event: ClassVar[EventKind] = EventKind.APPROVAL_REFUSED


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalNoted(EventRecord):
    """A word given before the task reached its gate, kept for then: ``decision``, for ``request``."""

    event: ClassVar[EventKind] = EventKind.APPROVAL_NOTED
    task: str
    request: str = field(metadata=added(""))
    decision: str = field(metadata=added(""))


@dataclass(frozen=True, slots=True, kw_only=True)
class PermissionAsked(EventRecord):
    """The running agent of ``task`` (its ``attempt``) asks a person for a tool call its Access does
    not give it (``ask: true``): ``said`` is the call as a person reads it (``Bash(npm install)``),
    ``question`` its id, which a link names, and ``number`` its count among the task's questions,
    which a person names (``Q2``: ``answer T-03 Q2 allow``)."""

    event: ClassVar[EventKind] = EventKind.PERMISSION_ASKED
    task: str
    agent: str = field(metadata=added(""))
    name: str = field(metadata=added(""))
    attempt: int = field(metadata=added(0))
    question: str
    number: int = field(metadata=added(0))
    tool: str
    said: str
    until: str | None = field(default=None, metadata=OPTIONAL)  # when no answer is a deny


@dataclass(frozen=True, slots=True, kw_only=True)
class PermissionAnswered(EventRecord):
    """A question of ``task``'s agent (its ``number``: ``Q2``) answered: ``answer`` allow or deny,
    ``by`` whom (``timeout``: no one in time), ``via`` where (the terminal: none); ``always``: the
    same question of the task is answered so from now on, while its inputs are the same."""

    event: ClassVar[EventKind] = EventKind.PERMISSION_ANSWERED
    task: str
    agent: str = field(metadata=added(""))
    question: str
    number: int = field(metadata=added(0))
    said: str = field(metadata=added(""))
    answer: str
    by: str | None = field(metadata=added(None))
    via: str | None = field(default=None, metadata=OPTIONAL)
    url: str | None = field(default=None, metadata=OPTIONAL)
    always: bool = field(metadata=added(False))
    reason: str | None = field(default=None, metadata=OPTIONAL)
