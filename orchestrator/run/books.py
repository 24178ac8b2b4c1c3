"""What the run's loop keeps count of as it goes: what is handed to it (``Inbox``), what each
session and each task has spent (``SessionCosts``, ``TaskSpend``), and the retries each task has
spent (``RetryBook``). Plain bookkeeping, apart from the loop (``run.scheduler``) that reads it."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable

import anyio

from orchestrator.backends.base import AgentResult
from orchestrator.plan.settings import Settings
from orchestrator.run import policy
from orchestrator.run.attempts import Outcome


class Inbox:
    """Outcomes handed to the loop, changes asked from outside (``run.live``: a task added, one
    cancelled), and a wake-up for it. Each waits in its deque whatever happens to the wake-up (a
    deadline that passes as it comes), so none is ever lost."""

    def __init__(self) -> None:
        self.outcomes: deque[Outcome] = deque()
        self.changes: deque[Callable[[], object]] = deque()
        self._arrived = anyio.Event()

    def put(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        self._arrived.set()

    def change(self, apply: Callable[[], object]) -> None:
        """``apply()`` on the loop's own task, before it next decides what starts."""
        self.changes.append(apply)
        self._arrived.set()

    async def wait(self, timeout: float) -> None:
        """Until an outcome or a change is there, or ``timeout`` seconds have passed."""
        if not self.outcomes and not self.changes:
            with anyio.move_on_after(timeout):
                await self._arrived.wait()
        self._arrived = anyio.Event()  # (no await between the wait and this: no put is missed)


class SessionCosts:
    """What each attempt spent, where the agent reports a session's running total: claude's
    ``total_cost_usd`` counts the whole session, the turns of the earlier attempts a resumed one
    continues included, which this run has counted already."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}  # session -> the total its agent last reported

    def own(self, resumed: str | None, result: AgentResult) -> None:
        """Make ``result.cost_usd`` the attempt's own spend; ``resumed``: the session it continued."""
        session = result.session_id
        if result.cost_usd is None or not session:
            return
        earlier = self._last.get(session, 0.0) if resumed == session else 0.0
        self._last[session] = result.cost_usd
        result.cost_usd = round(max(0.0, result.cost_usd - earlier), 10)


class TaskSpend:
    """What each task has spent in this run of it: its attempts' own costs and tokens added up.
    Its result, its line, ``status``, ``report``, final_output.md and the dashboard all show that
    one figure, and the run's total is what its attempts spent; ``history`` shows each attempt's."""

    def __init__(self) -> None:
        self._spent: dict[str, tuple[float | None, dict[str, int] | None]] = {}

    def add(self, task: str, first: bool, result: AgentResult) -> None:
        """Add what ``result``'s attempt spent (its own: ``SessionCosts.own`` first) to ``task``'s,
        afresh at the first attempt of a run of the task; ``result`` then holds the task's totals,
        and its own spend in ``attempt_cost_usd``."""
        cost, tokens = (None, None) if first else self._spent.get(task, (None, None))
        result.attempt_cost_usd = result.cost_usd
        if result.cost_usd is not None:
            cost = round((cost or 0.0) + result.cost_usd, 10)
        if result.tokens:
            before = tokens or {}
            tokens = {key: before.get(key, 0) + result.tokens.get(key, 0) for key in {*before, *result.tokens}}
        self._spent[task] = (cost, tokens)
        result.cost_usd, result.tokens = cost, tokens


class RetryBook:
    """What ``policy.decide`` needs to know of each task's past: the retries it has spent, and
    its rate-limited attempts in a row (how many, and when the first of them ended)."""

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
