"""What an attempt's outcome means for its task: a pure function of plain values.

    decide(result, attempt=…, retries_used=…, settings=…, rng=…, limited=…, waited=…) -> Decision

    Complete              the task is done (a warning, such as denied tool calls, may ride along)
    Retry(after)          run it again in ``after`` seconds (backoff with full jitter, at least
                          what a rate limit asked for); a rate limit spends no retry while the
                          task has waited on limits for less than its ``timeout``
    Pause(until)          a usage limit: stop starting anything until then; retries are kept
    Block(backend)        not logged in: fail the task and start nothing more on that backend
    Fail                  the task failed for good: everything downstream of it is skipped

    condition(judged) -> (status, cause) | None     what a task's Condition decides, on its facts
    fails_over(result, settings, breaker, fallback) whether an attempt goes to a fallback backend

The runner only acts on these; every rule about outcomes lives here, and its tests need no process.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import msgspec

from orchestrator.plan.config.settings import Settings
from orchestrator.plan.table.conditions import ConditionError, NotDone
from orchestrator.state.causes import Cause
from orchestrator.vocabulary import ErrorClass, TaskStatus

if TYPE_CHECKING:  # (a type only: the views replay the machine, and import no backend for it)
    from orchestrator.backends.base import AgentResult
    from orchestrator.machine.stimuli import Judged


class Complete(msgspec.Struct, frozen=True):
    warning: str | None = None


class Retry(msgspec.Struct, frozen=True):
    after: float  # seconds
    reason: str
    error_class: ErrorClass
    rate_limited: bool = False  # admission starts fewer at once for a while
    spends_retry: bool = True  # counts against the task's ``retries`` (a rate limit's wait does not)


class Pause(msgspec.Struct, frozen=True):
    until: float | None  # seconds since the epoch when work may go on; None: not said
    reason: str


class Block(msgspec.Struct, frozen=True):
    backend: str
    reason: str  # this task's reason; the backend's is ``blocked``

    @property
    def blocked(self) -> str:
        return f"{self.backend} is not logged in ({self.reason})"


class Fail(msgspec.Struct, frozen=True):
    reason: str
    error_class: ErrorClass | None


Decision = Complete | Retry | Pause | Block | Fail


def decide(
    result: AgentResult,
    *,
    attempt: int,
    retries_used: int,
    settings: Settings,
    rng: random.Random,
    limited: int = 0,
    waited: float = 0.0,
) -> Decision:
    """What to do about ``result``, the outcome of attempt number ``attempt`` of a task that has
    used ``retries_used`` of its ``settings.retries`` retries, and whose ``limited`` attempts
    before this one were rate-limited in a row, the first of them ``waited`` seconds ago."""
    if result.completed:
        return Complete(result.message)
    error = result.error_class
    reason = result.message or "failed"
    if error is ErrorClass.USAGE_LIMIT:
        return Pause(result.reset_at, result.message or "usage limit reached")
    if error is ErrorClass.AUTH:
        return Block(settings.backend, result.message or f"{settings.backend}: not authenticated")
    if error is ErrorClass.RATE_LIMIT and (settings.timeout is None or waited < settings.timeout):
        # The API's limit is no fault of the task: waiting it out spends no retry, for as long as
        # one attempt may take (then the task's retries are spent as for any other failure).
        delay = _after_limit(backoff(limited + 1, settings, rng), result, rng)
        return Retry(delay, reason, error, rate_limited=True, spends_retry=False)
    if result.retryable and retries_used < settings.retries:
        delay = backoff(retries_used + 1, settings, rng)
        if error is ErrorClass.RATE_LIMIT:
            delay = _after_limit(delay, result, rng)
        assert error is not None
        return Retry(delay, reason, error, rate_limited=error is ErrorClass.RATE_LIMIT)
    if error not in (ErrorClass.START, None) and attempt > 1:
        reason += f" (after {attempt} attempts)"
    return Fail(reason, error)


def _after_limit(delay: float, result: AgentResult, rng: random.Random) -> float:
    """At least what the API asked, plus up to a fifth more: tasks told the same wait together do
    not all come back in the same instant."""
    if result.retry_after:
        return max(delay, result.retry_after * (1 + rng.uniform(0.0, 0.2)))
    return delay


def backoff(retry: int, settings: Settings, rng: random.Random) -> float:
    """Seconds before retry number ``retry`` (1 for the first): exponential with full jitter, so
    that tasks failing together do not come back together."""
    ceiling = min(settings.backoff_cap, settings.backoff_base * settings.backoff_factor ** (retry - 1))
    return rng.uniform(0.0, ceiling)


def condition(judged: Judged) -> tuple[TaskStatus, Cause] | None:
    """What a task's Condition decides on the facts ``judged`` holds: ``None`` (it runs),
    bypassed (false: with what it saw), skipped or bypassed for an upstream task whose field it
    reads and that did not complete (as a plain dependent is), or failed (it cannot be read or
    decided: never a false condition)."""
    text, read = judged.text, judged.read
    if read is None:
        return TaskStatus.FAILED, Cause.undecided(text, judged.problem)
    try:
        if read.evaluate(judged.outcomes, judged.outputs):
            return None
    except NotDone as exc:  # (one failure told once: the task is given up for it, as a plain dependent is)
        outcome = TaskStatus.read(exc.outcome)
        status = TaskStatus.BYPASSED if outcome == TaskStatus.BYPASSED else TaskStatus.SKIPPED
        return status, Cause.upstream(exc.task, outcome)
    except ConditionError as exc:
        return TaskStatus.FAILED, Cause.undecided(text, str(exc))
    return TaskStatus.BYPASSED, Cause.condition_false(text, read.seen(judged.outcomes, judged.outputs))


def fails_over(result: AgentResult, settings: Settings, breaker: str | None, fallback: str | None) -> str | None:
    """Why an attempt that ended with ``result`` goes to a fallback backend now, or ``None``: its
    backend's breaker is open (``breaker``: why) and its task names fallbacks, of which one is up
    (``fallback``), and it did not complete."""
    if result.completed or not settings.fallback or breaker is None or fallback is None:
        return None
    return f"failing over to {fallback}: {breaker}"
