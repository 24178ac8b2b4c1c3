"""What ``policy.decide`` needs to know of each task's past: the retries it has spent, and its
rate-limited attempts in a row, read from and booked in the task's state the machine holds
(``TaskState.retries``, ``limited``). Plain counts, no clock read."""

from __future__ import annotations

import random
from collections.abc import MutableMapping
from typing import TYPE_CHECKING

from orchestrator.machine import policy
from orchestrator.plan.config.settings import Settings
from orchestrator.state.taskstate import TaskState
from orchestrator.vocabulary import TaskStatus

if TYPE_CHECKING:  # (a type only: the views replay the machine, and import no backend for it)
    from orchestrator.backends.base import AgentResult


class RetryBook:
    """Each task's retries, in the machine's table of tasks (``tasks``)."""

    def __init__(self, tasks: MutableMapping[str, TaskState] | None = None) -> None:
        self.tasks: MutableMapping[str, TaskState] = tasks if tasks is not None else {}

    def used(self, task: str) -> int:
        """The retries ``task`` has spent in this run."""
        state = self.tasks.get(task)
        return state.retries if state is not None else 0

    def afresh(self, task: str) -> None:
        """``task``'s retries afresh (a person's retry revives it)."""
        if (state := self.tasks.get(task)) is not None:
            state.retries, state.limited = 0, None

    def decide(
        self, task: str, result: AgentResult, *, attempt: int, settings: Settings, rng: random.Random, now: float
    ) -> policy.Decision:
        """``policy.decide`` on the outcome of attempt ``attempt`` (in this run) of ``task``,
        ended at loop time ``now``; what it spends is booked."""
        state = self.tasks.get(task)
        if state is None:  # (a task the machine meets first at its end: a unit test's)
            state = self.tasks[task] = TaskState(TaskStatus.RUNNING)
        limited, since = state.limited or (0, now)
        state.limited = None
        decision = policy.decide(
            result, attempt=attempt, retries_used=state.retries, settings=settings, rng=rng, limited=limited,
            waited=now - since,
        )  # fmt: skip
        if isinstance(decision, policy.Retry):
            if decision.spends_retry:
                state.retries += 1
            if decision.rate_limited:
                state.limited = (limited + 1, since)
        return decision
