"""What the machine is told (its stimuli): each a frozen record of the facts its rules need, and an
``id`` the loop numbers them by, which every instruction answering it carries (Dask's ``stimulus_id``).

    Offered(task, not_before, ...)              the ready queue weighs a task: may it be taken now?
    Scheduled(task, not_before, now)            a queued task with a Not before, at a turn of the loop
    Taken(task, blocked, awaits_word, ...)      a task taken from the queue: does it start?
    Starting(task, row, conflict, cached)       one past its gates: what its start finds
    AttemptEnded(task, result, attempt, ...)    an attempt's outcome, booked (the run's spend: Budget)
    AttemptCancelled(task, cause, ...)          an attempt a cancel (or the run's stop) stopped
    Straggling(task, elapsed, bound)            an attempt that may be hedged, against its kind's bound
    LaneEnded(task, attempt, completed, ...)    one of a race's attempts ended (a hedge's, best of N's)
    MergeConflicted(task, on_conflict)          a completed task's branch conflicts with the integration branch
    WordSaid(task, decision)                    a person's word: `approve`, `reject`
    CancelAsked / RetryAsked(task, ...)         `orchestrator cancel`, `retry`: of the run going on, or between runs
    WordAsked(task, approve, gate)              `approve`, `reject` asked, before the word is written
    AnswerAsked(task, named, asked, now)        `answer` asked: which question a word answers, or why none
    Found(task, recorded, attempt, ...)         what a workspace's files say of a task between runs (a view)
    Tick(now, waiting)                          the loop's clock, and the retries waiting: which are due
    RowAdded(task)                              a row added to the plan while the run goes on

The loop reads the world (files, clocks, the board) into these; the machine never reads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from orchestrator.plan.config.settings import Settings
from orchestrator.state.approvals import Decision
from orchestrator.state.causes import Cause
from orchestrator.vocabulary import TaskStatus

if TYPE_CHECKING:  # (a type only: the views replay the machine, and import no backend for it)
    from collections.abc import Mapping
    from datetime import datetime

    from orchestrator.backends.base import AgentResult
    from orchestrator.plan.table.conditions import Condition
    from orchestrator.state.words.questions import Question, Reply


class Stimulus(msgspec.Struct, frozen=True, kw_only=True):
    id: int  # numbered by the loop: every instruction says which stimulus it answers


class Offered(Stimulus, frozen=True, kw_only=True):
    """The ready queue weighs ``task`` (``ReadyQueue.pop``'s question); whether a person holds
    it is the machine's to know (``TaskState.hold``)."""

    task: str
    not_before: float | None = None  # its Not before (epoch seconds), come or not: the rule judges it on ``now``
    now: float = 0.0  # the wall clock as it is offered (epoch seconds)
    # Its dependencies not done with yet: the run's queue offers none such, a view's replay may
    # (``views/replay``: a task of a plan read between runs)
    waiting_on: tuple[str, ...] = ()
    admitted: bool = True  # admission has room for it (caps, windows, pauses, cost)


class Judged(msgspec.Struct, frozen=True, kw_only=True):
    """A task's Condition and the facts it is decided on: its ``text`` as the plan writes it, as
    read against the plan (``read``; ``None``: it could not be, ``problem`` says why), its
    dependencies' ``outcomes`` (``completed``, ``failed``...) and the output fields of each task
    it reads a field of (``outputs``; ``None``: that task has none). What it decides is the
    ``condition`` rule's (``policy.condition``)."""

    text: str
    read: Condition | None
    problem: str = ""
    outcomes: Mapping[str, str] = msgspec.field(default_factory=dict)
    outputs: Mapping[str, Mapping[str, object] | None] = msgspec.field(default_factory=dict)


class Scheduled(Stimulus, frozen=True, kw_only=True):
    """A task in the ready queue with a Not before (``not_before``, epoch seconds), at a turn of
    the loop at wall-clock ``now``: whether it waits for its time, or its time came."""

    task: str
    not_before: float
    now: float


class Taken(Stimulus, frozen=True, kw_only=True):
    """``task``, taken from the queue: what its backend and its gates say (``run/held/gates.Gates.taken``);
    the last word said at its gate before it starts is the machine's (``TaskState.word``), and what
    it stands on, told here."""

    task: str
    blocked: str | None = None  # its backend is blocked (not logged in): why
    awaits_word: bool = False  # its result from an earlier run awaits a person's word (a gate after)
    condition: Judged | None = None  # its Condition, and what it is decided on
    gate: str | None = None  # its Approval cell: before, after
    inputs: str | None = None  # its inputs now (``run/resume/basis``; None: not known): a word made on them stands
    done: str | None = None  # when its last completed result finished: a word said since stands, inputs unknown


class Starting(Stimulus, frozen=True, kw_only=True):
    """``task``, past its gates: what its start finds (``run/starts.Starts.facts``)."""

    task: str
    row: bool = False  # a row run once per item: its instances are what runs (``run/rows``)
    conflict: str | None = None  # its merge conflict (``on_conflict: fail``) not resolved yet: why
    cached: bool = False  # the cache keeps a completed result for the inputs it has now (``run/resume/reuse``)


class Budget(msgspec.Struct, frozen=True, kw_only=True):
    """The run's spend against its ``max_cost`` (``limit``), and whether it stops what runs once
    it is reached (``at_budget: stop``; else it finishes, and waits for a higher budget)."""

    spent: float
    limit: float
    stop: bool = True


class AttemptEnded(Stimulus, frozen=True, kw_only=True):
    """An attempt of ``task`` ended with ``result`` (its spend booked: the task's totals)."""

    task: str
    result: AgentResult
    attempt: int  # its number in this run of the task (retries count in it)
    settings: Settings  # the attempt's: its backend (a fallback's, when it fell over), its retries
    now: float  # loop time it ended at
    breaker: str | None = None  # its backend's breaker is open: why (``run/limits/failover``)
    fallback: str | None = None  # the fallback backend a next attempt would go to (none up: None)
    down: str = ""  # why its backend's breaker is open (blocked for the rest of the run on an auth failure)
    resumed: str | None = None  # the agent session it continued
    approval: str | None = None  # its task's Approval cell: its result awaits a word when ``after``
    fail_fast: bool = False  # the run stops at its first failure
    stopped: bool = False  # the run has stopped already (fail-fast, the cost limit)
    budget: Budget | None = None  # the run's spend against its max_cost (none: it has no max_cost)
    added: tuple[str, ...] = ()  # the tasks its merge wrote into the plan: its conflict's resolution


class AttemptCancelled(Stimulus, frozen=True, kw_only=True):
    """An attempt of ``task``, stopped by a cancel for ``cause`` (its spend booked)."""

    task: str
    cause: Cause
    stopped: bool = False
    budget: Budget | None = None


class Straggling(Stimulus, frozen=True, kw_only=True):
    """An attempt of ``task`` that may be hedged (``run/races/hedge``), ``elapsed`` seconds in,
    against the ``bound`` of its kind (``run/races/bounds``; ``None``: none known yet)."""

    task: str
    elapsed: float
    bound: float | None


class LaneEnded(Stimulus, frozen=True, kw_only=True):
    """One of ``task``'s raced attempts ended: ``attempt``, whether it ``completed``; ``running``:
    the race's attempts still running; ``unstarted``: its candidates waiting for a slot; ``judge``:
    best of N's (``None``: a hedge's race)."""

    task: str
    attempt: int
    completed: bool
    running: tuple[int, ...] = ()
    unstarted: int = 0
    judge: str | None = None


class MergeConflicted(Stimulus, frozen=True, kw_only=True):
    """``task`` completed, and its branch conflicts with the integration branch (``run/worktrees/merges``):
    nothing merged; its ``on_conflict`` setting."""

    task: str
    on_conflict: str  # fail, resolve


class WordSaid(Stimulus, frozen=True, kw_only=True):
    """A person's word on ``task`` (`approve`, `reject`), at the gate it waits at now, as the
    machine holds it (``TaskState.gate``; none: the word is kept for when it gets there)."""

    task: str
    decision: Decision


class CancelAsked(Stimulus, frozen=True, kw_only=True):
    """`orchestrator cancel` (the dashboard's button, the API) asks to cancel ``task``, for
    ``cause``: whether an attempt of it ``running`` now, whether it is ``busy`` (waiting for its
    next attempt); ``live``: asked of the run going on (else between runs, of what the next run
    does: ``run/inflight/requests``). Its status is the machine's (``Machine.tasks``)."""

    task: str
    cause: Cause
    running: bool
    busy: bool = False
    live: bool = True


class RetryAsked(Stimulus, frozen=True, kw_only=True):
    """`orchestrator retry` asks to run ``task`` again (its status the machine's): whether it is
    ``busy`` (in the queue, running, or waiting for its next attempt), whether the run is
    ``stopping`` (why);
    ``live``: asked of the run going on, else between runs, where ``settled`` says the next run
    leaves it as it is (a fallback took its failure over; a skip or a bypass that stays) and
    ``cancelled_upstream`` names a dependency of it cancelled."""

    task: str
    busy: bool = False
    stopping: str | None = None
    live: bool = True
    settled: bool = False
    cancelled_upstream: str | None = None


class WordAsked(Stimulus, frozen=True, kw_only=True):
    """`orchestrator approve` or `reject` (``approve``) of ``task``, whose Approval cell is
    ``gate`` (before, after): whether its completed result is ``out_of_date`` (its status the
    machine's). Asked before the word is written, with a run going on or none."""

    task: str
    approve: bool
    gate: str
    out_of_date: bool = False


class AnswerAsked(Stimulus, frozen=True, kw_only=True):
    """`orchestrator answer` of ``task`` (the dashboard's Allow or Deny, a link's, a comment's):
    the question it names (``named``: ``Q2``, or a link's own id; none: the one it asks now), the
    ``word`` a refusal's form shows (``comment``: as a GitHub comment says it), and the task's
    questions, oldest first, each with its answer (``asked``), at ``now``."""

    task: str
    named: str | None = None
    word: str = "allow|deny"
    comment: bool = False
    asked: tuple[tuple[Question, Reply | None], ...] = ()
    now: datetime


class Found(Stimulus, frozen=True, kw_only=True):
    """What a workspace's files say of ``task`` between runs (``views/replay``): the state its
    result records (``recorded``, with its ``cause`` or an attempt's own words, ``note``; none: no
    result), whether the journal has an attempt of it open (``attempt``), one waiting for its
    retry (``retrying``), or, of a row run per item, an item's attempt open (``row_running``);
    whether the run that opened them is ``alive`` (its pid: ``runner``); and why its result file
    cannot be read (``unreadable``: a hand edit broke it)."""

    task: str
    recorded: TaskStatus | None = None
    cause: Cause | None = None
    note: str | None = None
    attempt: bool = False
    retrying: bool = False
    row_running: bool = False
    alive: bool = False
    runner: int | None = None
    unreadable: str | None = None


class Tick(Stimulus, frozen=True, kw_only=True):
    """The loop's clock at ``now``, and the tasks waiting for their next attempt with the loop time
    each may start at (``waiting``): which are due is the ``retry-due`` rule's."""

    now: float
    waiting: Mapping[str, float] = msgspec.field(default_factory=dict)


class RowAdded(Stimulus, frozen=True, kw_only=True):
    """``task``, a row added to the plan while the run goes on (``run/inflight/live``)."""

    task: str
