"""Fallback backends: a circuit breaker per backend, and where a task's next attempt goes.

A backend's breaker opens when the backend itself is down, never on a failure of a task:

    an auth failure                         open for the rest of the run
    a usage limit whose reset is past the   open until the reset (``deadline``: the run's, when a
    run's deadline, or more than            plan sets one, a duration counted from ``Breakers``'
                                            ``run_started``; else ``USAGE_FAILOVER`` from now)
    ``USAGE_FAILOVER`` away (or unsaid)
    ``SERVER_ERRORS`` transient errors in   open for ``OPEN_FOR``; a success in between starts
    a row (5xx, connection lost)            the count again

While a backend's breaker is open, an attempt of a task that names ``fallback`` backends goes to
the first of them whose breaker is closed (and that is not blocked), recorded as such: the
result's ``backend`` and ``fallback_from``, and a ``task_failover`` event. A task with no
fallback meets its backend's failure as it always did (blocked, paused, retried). Pure: fed
plain values, reading no clock.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

from orchestrator.backends.base import AgentResult
from orchestrator.plan.config.settings import Settings
from orchestrator.vocabulary import ErrorClass

SERVER_ERRORS = 3  # transient errors in a row that open a backend's breaker
OPEN_FOR = 300.0  # seconds a breaker opened by server errors stays open
USAGE_FAILOVER = 900.0  # seconds: a usage limit resetting later than this (or past the deadline) fails over


def run_deadline(settings: Settings, run_started: float | None) -> float | None:
    """The run's deadline (seconds since the epoch), if the plan sets one (``deadline:``): its
    moment, or its duration from ``run_started`` (``None`` for a duration with no start known)."""
    deadline = settings.deadline
    return deadline.moment(run_started) if deadline is not None else None


@dataclass(slots=True)
class Breaker:
    open_until: float = 0.0  # wall clock; math.inf: for the rest of the run
    errors: int = 0  # transient errors in a row
    why: str = ""


class Breakers:
    def __init__(self, run_started: float | None = None) -> None:
        self.of: dict[str, Breaker] = {}
        self.run_started = run_started  # (wall clock) what a ``deadline:`` given as a duration counts from

    def is_open(self, backend: str, wall: float) -> bool:
        breaker = self.of.get(backend)
        return breaker is not None and breaker.open_until > wall

    def record(self, backend: str, result: AgentResult, wall: float, deadline: float | None = None) -> str | None:
        """The outcome of an attempt on ``backend`` at ``wall``: why its breaker is open now, if it is."""
        breaker = self.of.setdefault(backend, Breaker())
        error, message = result.error_class, result.message or ""
        if result.completed or error not in (ErrorClass.AUTH, ErrorClass.USAGE_LIMIT, ErrorClass.TRANSIENT):
            breaker.errors = 0  # (a failure of the task itself says nothing of the backend)
            return None
        if error is ErrorClass.AUTH:
            breaker.open_until, breaker.why = math.inf, f"{backend}: not authenticated ({message or 'auth failure'})"
        elif error is ErrorClass.USAGE_LIMIT:
            reset = result.reset_at
            late = reset is None or reset - wall > USAGE_FAILOVER or (deadline is not None and reset > deadline)
            if not late:
                return None
            breaker.open_until = reset if reset is not None else wall + USAGE_FAILOVER
            breaker.why = f"{backend}: usage limit ({message or 'no reset time'})"
        else:
            breaker.errors += 1
            if breaker.errors < SERVER_ERRORS:
                return None
            breaker.open_until, breaker.why = wall + OPEN_FOR, f"{backend}: {breaker.errors} server errors in a row"
        return breaker.why

    def choose(self, settings: Settings, wall: float, blocked: Collection[str] = ()) -> tuple[str, str | None]:
        """The backend a task's next attempt goes to, and the one it falls back from (None: its own)."""
        own = settings.backend
        if not settings.fallback or not (self.is_open(own, wall) or own in blocked):
            return own, None
        for name in settings.fallback:
            if name != own and not self.is_open(name, wall) and name not in blocked:
                return name, own
        return own, None

    def why(self, backend: str) -> str:
        breaker = self.of.get(backend)
        return breaker.why if breaker is not None else ""


def breaker_facts(
    breakers: Breakers, settings: Settings, result: AgentResult, wall: float, blocked: Collection[str] = ()
) -> tuple[str | None, str | None]:
    """What the breakers say once they learned ``result`` (an attempt on ``settings.backend``):
    why its backend's breaker is open now (``None``: it is closed), and the backend a next attempt
    would go to instead (``None``: no fallback is up). Whether the attempt fails over is the
    machine's (``machine/policy.fails_over``)."""
    opened = breakers.record(settings.backend, result, wall, run_deadline(settings, breakers.run_started))
    if not breakers.is_open(settings.backend, wall):
        return None, None
    target, _ = breakers.choose(settings, wall, blocked)
    return opened or breakers.why(settings.backend), None if target == settings.backend else target
