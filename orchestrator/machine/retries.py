"""What ``policy.decide`` needs to know of each task's past: the retries it has spent, and its
rate-limited attempts in a row. The machine's own memory: plain counts, no clock read."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from orchestrator.machine import policy
from orchestrator.plan.config.settings import Settings

if TYPE_CHECKING:  # (a type only: the views replay the machine, and import no backend for it)
    from orchestrator.backends.base import AgentResult


class RetryBook:
    """The retries each task has spent (``used``), and its rate-limited attempts in a row (how
    many, and when the first of them ended)."""

    def __init__(self) -> None:
        self.used: dict[str, int] = {}
        self._limited: dict[str, tuple[int, float]] = {}

    def decide(
        self, task: str, result: AgentResult, *, attempt: int, settings: Settings, rng: random.Random, now: float
    ) -> policy.Decision:
        """``policy.decide`` on the outcome of attempt ``attempt`` (in this run) of ``task``,
        ended at loop time ``now``; what it spends is booked."""
        limited, since = self._limited.pop(task, (0, now))
        used = self.used.get(task, 0)
        decision = policy.decide(
            result, attempt=attempt, retries_used=used, settings=settings, rng=rng, limited=limited, waited=now - since
        )
        if isinstance(decision, policy.Retry):
            if decision.spends_retry:
                self.used[task] = used + 1
            if decision.rate_limited:
                self._limited[task] = (limited + 1, since)
        return decision
