"""What an attempt's outcome means for its task: a pure function of plain values.

    decide(result, attempt=…, retries_used=…, settings=…, rng=…) -> Decision

    Complete              the task is done (a warning, such as denied tool calls, may ride along)
    Retry(after)          run it again in ``after`` seconds (backoff with full jitter, at least
                          what a rate limit asked for)
    Pause(until)          a usage limit: stop starting anything until then; retries are kept
    Block(backend)        not logged in: fail the task and start nothing more on that backend
    Fail                  the task failed for good: everything downstream of it is skipped

The runner only acts on these; every rule about outcomes lives here, and its tests need no process.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from orchestrator.backends.base import AgentResult
from orchestrator.plan.settings import Settings
from orchestrator.vocabulary import ErrorClass


@dataclass(frozen=True, slots=True)
class Complete:
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    after: float  # seconds
    reason: str
    error_class: ErrorClass
    rate_limited: bool = False  # admission starts fewer at once for a while


@dataclass(frozen=True, slots=True)
class Pause:
    until: float | None  # seconds since the epoch when work may go on; None: not said
    reason: str


@dataclass(frozen=True, slots=True)
class Block:
    backend: str
    reason: str  # this task's reason; the backend's is ``blocked``

    @property
    def blocked(self) -> str:
        return f"{self.backend} is not logged in ({self.reason})"


@dataclass(frozen=True, slots=True)
class Fail:
    reason: str
    error_class: ErrorClass | None


Decision = Complete | Retry | Pause | Block | Fail


def decide(result: AgentResult, *, attempt: int, retries_used: int, settings: Settings, rng: random.Random) -> Decision:
    """What to do about ``result``, the outcome of attempt number ``attempt`` of a task that has
    used ``retries_used`` of its ``settings.retries`` retries."""
    if result.completed:
        return Complete(result.message)
    error = result.error_class
    reason = result.message or "failed"
    if error is ErrorClass.USAGE_LIMIT:
        return Pause(result.reset_at, result.message or "usage limit reached")
    if error is ErrorClass.AUTH:
        return Block(settings.backend, result.message or f"{settings.backend}: not authenticated")
    if result.retryable and retries_used < settings.retries:
        delay = backoff(retries_used + 1, settings, rng)
        if error is ErrorClass.RATE_LIMIT and result.retry_after:
            # At least what the API asked, plus up to a fifth more: tasks told the same wait
            # together do not all come back in the same instant.
            delay = max(delay, result.retry_after * (1 + rng.uniform(0.0, 0.2)))
        assert error is not None
        return Retry(delay, reason, error, rate_limited=error is ErrorClass.RATE_LIMIT)
    if error not in (ErrorClass.START, None) and attempt > 1:
        reason += f" (after {attempt} attempts)"
    return Fail(reason, error)


def backoff(retry: int, settings: Settings, rng: random.Random) -> float:
    """Seconds before retry number ``retry`` (1 for the first): exponential with full jitter, so
    that tasks failing together do not come back together."""
    ceiling = min(settings.backoff_cap, settings.backoff_base * settings.backoff_factor ** (retry - 1))
    return rng.uniform(0.0, ceiling)
