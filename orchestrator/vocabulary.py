"""The words every layer shares: a task's status, an attempt's error class, the exit codes.

Each is a ``StrEnum`` (or ``IntEnum``), so a value compares equal to the plain string (or number)
written in result files, the journal and ``--json`` output, and reads back from them unchanged.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class TaskStatus(StrEnum):
    """Where a task stands. The first four are live states; the rest are written in its result file."""

    PENDING = "pending"  # ready to start: every dependency completed
    WAITING = "waiting"  # a dependency has not completed yet (or a usage-limit pause is on)
    RUNNING = "running"
    RETRYING = "retrying"  # its last attempt failed; the next waits for its backoff
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"  # never started: an upstream task did not complete, or the run stopped
    INTERRUPTED = "interrupted"  # Ctrl-C, SIGTERM or SIGHUP, or its runner died
    CANCELLED = "cancelled"  # `orchestrator cancel`: stays so (later runs too) until `retry` or --rerun
    BLOCKED = "blocked"  # held by a person (its row's Blocked cell): it and its dependents wait until released
    AWAITING_APPROVAL = "awaiting_approval"  # an Approval gate: a person approves (or rejects) it
    REJECTED = "rejected"  # `orchestrator reject`: what depends on it is skipped, until approved or retried
    BYPASSED = "bypassed"  # its Condition was false: not run, and not a failure

    @property
    def icon(self) -> str:
        return _ICONS[self]

    @property
    def label(self) -> str:
        """``"✅ Completed"``: what status tables and the plan's status section show."""
        return f"{_ICONS[self]} {self.value.replace('_', ' ').capitalize()}"

    @property
    def finished(self) -> bool:
        """Whether a result file says so (the task will not run again in this run)."""
        return self in _FINISHED

    def to(self, new: TaskStatus) -> TaskStatus:
        """``new``, where a task in this state may move to it (``TRANSITIONS``: the one state
        machine, drawn in workflow.md); ``IllegalTransition`` where it may not."""
        if new != self and new not in TRANSITIONS[self]:
            raise IllegalTransition(f"a task cannot go from {self} to {new}")
        return new

    @classmethod
    def read(cls, value: object) -> TaskStatus | None:
        """The status a word a person may have written names (``Completed`` too), or ``None``."""
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            return None


_ICONS = {
    TaskStatus.PENDING: "🟡",
    TaskStatus.WAITING: "⏸️",
    TaskStatus.RUNNING: "🔵",
    TaskStatus.RETRYING: "🔄",
    TaskStatus.COMPLETED: "✅",
    TaskStatus.FAILED: "❌",
    TaskStatus.SKIPPED: "⏭️",
    TaskStatus.INTERRUPTED: "⏹️",
    TaskStatus.CANCELLED: "⏹️",
    TaskStatus.BLOCKED: "🚧",
    TaskStatus.AWAITING_APPROVAL: "✋",
    TaskStatus.REJECTED: "🚫",
    TaskStatus.BYPASSED: "↪️",
}
_FINISHED = frozenset(
    {
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
        TaskStatus.SKIPPED,
        TaskStatus.INTERRUPTED,
        TaskStatus.CANCELLED,
        TaskStatus.REJECTED,
        TaskStatus.BYPASSED,
    }
)


# The words a filter (``list --status``) takes beyond a state's own name, each with the states it
# names. ``pending`` is what every task manager means by it (``tm``, taskwarrior): not started, a task
# that waits for its upstream included; the narrower set, ready to start now, is ``ready`` (a view's
# status is still ``pending`` for it: ``--json`` and the status table keep the states as they are).
# ``todo`` is ``pending`` as GitHub's and Jira's boards say it; ``open`` is every task not finished
# (gh's ``--state open``): not started, running, held by a person or at a gate, what
# ``list --status open | wc -l`` counts as left. The others: `tm`'s, GitHub's and Jira's words.
STATUS_ALIASES: dict[str, frozenset[TaskStatus]] = {
    "pending": frozenset({TaskStatus.PENDING, TaskStatus.WAITING}),  # not started: ready, or waiting for its upstream
    "ready": frozenset({TaskStatus.PENDING}),  # not started, and nothing it waits for
    "todo": frozenset({TaskStatus.PENDING, TaskStatus.WAITING}),
    "open": frozenset(TaskStatus) - _FINISHED,  # not finished: not started, running, or held
    "in_progress": frozenset({TaskStatus.RUNNING}),
    "done": frozenset({TaskStatus.COMPLETED}),
    "canceled": frozenset({TaskStatus.CANCELLED}),
}


def statuses_named(word: str) -> frozenset[TaskStatus] | None:
    """The states ``word`` names: a state (``awaiting-approval`` too), or one of ``STATUS_ALIASES``
    (``in-progress`` too); ``None`` when it names none."""
    key = "_".join(word.strip().lower().replace("-", " ").split())
    if key in STATUS_ALIASES:
        return STATUS_ALIASES[key]
    status = TaskStatus.read(key)
    return frozenset({status}) if status is not None else None


# What each of ``STATUS_ALIASES`` means, as a message lists it (where it is not one state's name).
_ALIASES_SAID = {
    "pending": "not started, waiting included",
    "ready": "not started, nothing to wait for",
    "todo": "as pending",
    "open": "not finished",
}


def status_words() -> str:
    """Every word ``statuses_named`` takes, as a message lists them."""
    states = [status.value for status in TaskStatus if status.value not in STATUS_ALIASES]
    aliases = ", ".join(
        f"{word} ({_ALIASES_SAID.get(word) or ' and '.join(sorted(s.value for s in named))})"
        for word, named in STATUS_ALIASES.items()
    )
    return f"{', '.join(states)}; or {aliases}"


class IllegalTransition(RuntimeError):
    """A move of a task's state the state machine has no arrow for: a bug of ours, never the plan's."""


_S = TaskStatus
# Where a task may go from each state: within a run (the scheduler, the recorder) and between runs
# (a next run takes up what is not completed; `retry`, `approve`, a Blocked cell emptied). Only
# along these does a run change a task's state (``TaskView.move``, through ``state.transitions``:
# ``TaskStatus.to``); tests/test_state_machine.py has real runs walk every arrow a run takes, and
# names those no run takes (how `status` reads a workspace between runs, and the few not reached).
_AGAIN = frozenset({_S.PENDING, _S.WAITING, _S.BLOCKED})  # a later run, or a person, takes it up again
TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    _S.WAITING: frozenset({_S.PENDING, _S.SKIPPED, _S.BYPASSED, _S.BLOCKED, _S.CANCELLED, _S.INTERRUPTED}),
    _S.PENDING: frozenset(
        {
            _S.RUNNING,
            _S.WAITING,
            _S.BLOCKED,
            _S.AWAITING_APPROVAL,
            _S.REJECTED,
            _S.BYPASSED,
            _S.SKIPPED,
            _S.FAILED,
            _S.CANCELLED,
            _S.INTERRUPTED,
            _S.COMPLETED,
        }
    ),  # (completed: a result kept from the logs of a dead runner's attempt, or reused from the cache;
    # rejected: at a gate before it starts, refused by a word given while no run went on)
    _S.BLOCKED: frozenset({_S.PENDING, _S.WAITING, _S.CANCELLED}),
    _S.AWAITING_APPROVAL: frozenset({_S.PENDING, _S.WAITING, _S.COMPLETED, _S.REJECTED, _S.CANCELLED}),
    _S.RUNNING: frozenset(
        {_S.COMPLETED, _S.FAILED, _S.RETRYING, _S.WAITING, _S.INTERRUPTED, _S.CANCELLED, _S.AWAITING_APPROVAL}
    ),
    _S.RETRYING: frozenset({_S.RUNNING, _S.FAILED, _S.CANCELLED, _S.INTERRUPTED}),
    _S.COMPLETED: _AGAIN | {_S.AWAITING_APPROVAL},  # (re-run; after approval: a result awaits it)
    _S.FAILED: _AGAIN,
    _S.SKIPPED: _AGAIN,
    _S.INTERRUPTED: _AGAIN | {_S.COMPLETED, _S.FAILED},  # (a dead runner's attempt: kept from its logs)
    _S.CANCELLED: _AGAIN,
    _S.REJECTED: _AGAIN | {_S.COMPLETED},  # (`approve` after all: an after-gate's result counts)
    _S.BYPASSED: _AGAIN,
}


class ErrorClass(StrEnum):
    """Why an attempt did not complete its task; ``machine/policy.decide`` says what each one leads to."""

    START = "start"  # could not start (command not found, permission denied, an unusable brief)
    EXIT = "exit"  # non-zero exit status
    TIMEOUT = "timeout"  # the wall-clock limit
    HANG = "hang"  # no output for the inactivity limit
    AUTH = "auth"  # not logged in, or a 401: no use trying that backend again in this run
    RATE_LIMIT = "rate_limit"  # 429 / overloaded: retry after the API's wait, with fewer at once
    USAGE_LIMIT = "usage_limit"  # a plan quota with a reset time: pause the queue, keep the retries
    MAX_TURNS = "max_turns"  # the agent reached --max-turns
    MAX_BUDGET = "max_budget"  # the agent reached its own budget
    TRANSIENT = "transient"  # network, 5xx
    REQUEST = "request"  # the API refused the request as it stands (400: prompt too long, ...)
    DENIED = "denied"  # tool calls the agent made were refused: its work is not done as asked
    AGENT_ERROR = "agent_error"  # the agent reported failure for another reason
    INTERRUPTED = "interrupted"  # the run was stopped while it ran
    INTERNAL = "internal"  # the orchestrator could not handle what the attempt did (a bug of ours)
    CONFLICT = "conflict"  # its branch conflicts with the integration branch (``on_conflict: fail``)
    VERIFY = "verify"  # the ``verify`` command failed on the integration branch after its merge

    @property
    def retryable(self) -> bool:
        """Whether another attempt may succeed where this one did not."""
        return self in _RETRYABLE


_RETRYABLE = frozenset(
    {
        ErrorClass.EXIT,
        ErrorClass.TIMEOUT,
        ErrorClass.HANG,
        ErrorClass.RATE_LIMIT,
        ErrorClass.TRANSIENT,
        ErrorClass.AGENT_ERROR,
    }
)


class ExitCode(IntEnum):
    """What every command exits with (documented in cli-integration.md)."""

    OK = 0
    FAILED = 1  # a task failed or was skipped, or an agent call a command needs failed
    USAGE = 2  # a bad plan or bad usage, or a workspace file the system refuses
    LOCKED = 3  # another run, render, reset, aggregate or plan holds the workspace
    HELD = 4  # run: nothing failed, but tasks wait for a person (blocked); a later run goes on with them
    UNDELIVERED = 5  # run: the work is done, but its delivery (push, pull request, comment) failed: it stays local
    INTERNAL = 70  # a defect of ours (sysexits' EX_SOFTWARE): one line, its traceback in errors.log
    INTERRUPTED = 130  # Ctrl-C, SIGTERM or SIGHUP


# The longest one argument (or one environment entry) a process may be given: Linux's
# MAX_ARG_STRLEN (32 pages) less the NUL that ends it. Text longer than this reaches a task through
# a file or its stdin, never its command line.
ARGUMENT_LIMIT = 32 * 4096 - 1


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``3 tasks``, ``1 task``: a count and its noun, as a message says them (``plural`` where
    adding an s will not do: ``dependency``, ``dependencies``)."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def listed(shown: list[str], total: int) -> str:
    """``shown`` (the first few of ``total`` things) as a message lists them: "T-01, T-02 and 3 more"."""
    more = total - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def money(amount: float) -> str:
    """Dollars as the run's lines say them: ``$0.42``, ``$0.0125``, ``$12.00`` (cents at least,
    never rounded past 4 places)."""
    digits = f"{amount:.4f}".rstrip("0")
    return "$" + digits + "0" * max(0, 2 - len(digits.partition(".")[2]))


def ordinal(number: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``... ``11th``, ``12th``, ``13th``, ``21st``."""
    if number % 100 in (11, 12, 13):
        return f"{number}th"
    return f"{number}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(number % 10, 'th') }"


def attempt_said(number: int, in_run: int = 0, of: int = 0) -> str:
    """``attempt 3, retry 1 of 2``: an attempt, named by the one number every line, file and
    command names it by (its log files', which goes on across runs: ``logs --attempt 3``), and, when
    it retries its task in this run, its place among the retries the run may make (``in_run``: its
    place in the run, 1 for the first; ``of``: 1 + its retries; 0 when not known)."""
    if in_run <= 1:
        return f"attempt {number}"
    budget = f" of {of - 1}" if of > 1 else ""
    return f"attempt {number}, retry {in_run - 1}{budget}"


def question_id(number: int) -> str:
    """An agent's question as a person names it, by its count among its task's questions: ``Q2``
    (``answer T-03 Q2 allow``); ``""`` for one an event of a version before told without it."""
    return f"Q{number}" if number > 0 else ""
