"""What the run's loop keeps count of as it goes: what is handed to it (``Inbox``), what each
session and each task has spent (``SessionCosts``, ``TaskSpend``, booked together with the run's
total by ``Purse``), and why the run stops (``Stop``). Plain bookkeeping, apart from the loop
(``run.scheduler``) that reads it; the retries each task has spent are the machine's own
(``machine/retries``)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping

import anyio

from orchestrator.backends.base import AgentResult
from orchestrator.machine.stimuli import Budget
from orchestrator.run.attempts import Outcome
from orchestrator.run.limits.admission import Admission
from orchestrator.state.causes import Cause
from orchestrator.state.kept.history import Carried, carried
from orchestrator.state.workspace import Workspace


class Inbox:
    """Outcomes handed to the loop, changes asked from outside (``run/inflight/live``: a task added, one
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


class Stop:
    """Why nothing new starts any more: the run's own stop (fail-fast, the cost limit: ``why``,
    what its end says) or a signal (``interrupted``); and what stops the attempts running when
    the run halts (``attempts``: ``run/inflight/live``'s, handed in by the runner)."""

    def __init__(self) -> None:
        self.why: str | None = None
        self.interrupted = False
        self.attempts: Callable[[Cause], None] = lambda cause: None

    @property
    def stopping(self) -> str | None:
        """Why nothing new starts (``interrupted`` for a signal), or ``None`` while the run goes on."""
        return self.why or ("interrupted" if self.interrupted else None)

    def halt(self, why: str, reason: Cause) -> None:
        """The run stops (fail-fast, the cost limit): nothing new starts, and what runs now spends no
        more: each attempt is stopped as `orchestrator cancel` stops one (its process group SIGTERM,
        ``kill_grace``, SIGKILL; on a worker, there) and ends cancelled with ``reason``, its
        dependents skipped (``Answers.stop_running``)."""
        self.why = why
        self.attempts(reason)


class SessionCosts:
    """What each attempt spent, where the agent reports a session's running total: claude's
    ``total_cost_usd`` counts the whole session (since claude 2.1.277), codex's ``usage`` the
    whole thread, the turns of the earlier attempts a resumed one continues included, which this
    run has counted already. A figure the backend says covers the attempt alone
    (``AgentResult.cost_covers``, ``tokens_cover``) is its own already."""

    def __init__(
        self, counted: dict[str, float] | None = None, tokens: dict[str, dict[str, int]] | None = None
    ) -> None:
        # session -> the total its agent last reported; ``counted``, ``tokens``: for a session an
        # earlier run began (an interrupted attempt's, resumed now), what the runs before counted of it
        self._last: dict[str, float] = dict(counted or {})
        self._last_tokens: dict[str, dict[str, int]] = {k: dict(v) for k, v in (tokens or {}).items()}

    def own(self, resumed: str | None, result: AgentResult) -> None:
        """Make ``result.cost_usd`` and ``result.tokens`` the attempt's own spend; ``resumed``:
        the session it continued."""
        session = result.session_id
        if not session:
            return
        again = resumed == session
        if result.cost_usd is not None and result.cost_covers == "session":
            earlier = self._last.get(session, 0.0) if again else 0.0
            self._last[session] = result.cost_usd
            result.cost_usd = round(max(0.0, result.cost_usd - earlier), 10)
        if result.tokens and result.tokens_cover == "session":
            before = self._last_tokens.get(session, {}) if again else {}
            self._last_tokens[session] = dict(result.tokens)
            result.tokens = {key: max(0, value - before.get(key, 0)) for key, value in result.tokens.items()}


class TaskSpend:
    """What each task has spent in this run of it: its attempts' own costs and tokens added up.
    Its result, its line, ``status``, ``report``, final_output.md and the dashboard all show that
    one figure, and the run's total is what its attempts spent; ``history`` shows each attempt's.
    ``carried``: for a task whose first attempt here takes up the session an interrupted attempt
    of an earlier run left, what that run of the task spent before (``history.carried``)."""

    def __init__(self, carried: Mapping[str, Carried] | None = None) -> None:
        self._spent: dict[str, tuple[float | None, dict[str, int] | None]] = {}
        self._carried = dict(carried or {})

    def carried(self, task: str, first: bool, session: str | None) -> float | None:
        """What ``task``'s earlier runs' attempts spent, for its ``first`` attempt in this run when
        it goes on with their ``session`` (one that starts afresh carries nothing)."""
        told = self._carried.get(task)
        return told.cost_usd if told is not None and first and session == told.session else None

    def add(self, task: str, first: bool, result: AgentResult, session: str | None = None) -> None:
        """Add what ``result``'s attempt spent (its own: ``SessionCosts.own`` first) to ``task``'s,
        afresh at the first attempt of a run of the task (from what is ``carried``, when it resumed
        ``session``); ``result`` then holds the task's totals, and its own spend in
        ``attempt_cost_usd`` and ``attempt_tokens``."""
        cost, tokens = (self.carried(task, first, session), None) if first else self._spent.get(task, (None, None))
        result.attempt_cost_usd, result.attempt_tokens = result.cost_usd, result.tokens
        if result.cost_usd is not None:
            cost = round((cost or 0.0) + result.cost_usd, 10)
        if result.tokens:
            before = tokens or {}
            tokens = {key: before.get(key, 0) + result.tokens.get(key, 0) for key in {*before, *result.tokens}}
        self._spent[task] = (cost, tokens)
        result.cost_usd, result.tokens = cost, tokens

    def so_far(self, task: str, first: bool, session: str | None) -> float | None:
        """What ``task`` has spent in this run of it, its attempt (``first``: the first here, which
        added nothing yet; ``session``: the one it resumed) stopped before it ended."""
        return self.carried(task, first, session) if first else self._spent.get(task, (None, None))[0]


class Purse:
    """What the run spends, booked in one place: each attempt's own cost and tokens
    (``SessionCosts``), added to its task's in this run of it (``TaskSpend``) and to the run's
    total, which admission holds against the cost limit (``Admission.spend``)."""

    def __init__(self, workspace: Workspace, sessions: Mapping[str, str], admission: Admission) -> None:
        """``sessions``: task -> the session an interrupted attempt of an earlier run left, which this
        run takes up: claude reports a resumed session's whole cost, so what the runs before counted
        of it is not counted again, and the task's figure goes on from what that run of it spent
        (``history.carried``)."""
        told = carried(workspace.events_file, workspace.journal_file, sessions)
        counted = {spent.session: spent.counted for spent in told.values()}
        tokens = {spent.session: dict(spent.counted_tokens) for spent in told.values()}
        self.sessions, self.tasks = SessionCosts(counted, tokens), TaskSpend(told)
        self.admission = admission
        self.stop_at_budget = False  # ``at_budget: stop``: at the limit, what runs is stopped and the run ends

    def book(self, task: str, first: bool, result: AgentResult, resumed: str | None) -> None:
        """What ``result``'s attempt of ``task`` spent (``first``: its first in this run of the task;
        ``resumed``: the session it continued), booked: ``result`` then holds the task's totals, and
        the attempt's own in ``attempt_cost_usd`` and ``attempt_tokens``."""
        self.sessions.own(resumed, result)
        self.admission.spend(result.cost_usd)
        self.tasks.add(task, first, result, resumed)

    def so_far(self, task: str, first: bool, session: str | None) -> float | None:
        return self.tasks.so_far(task, first, session)

    def budget(self) -> Budget | None:
        """The run's spend against its ``max_cost`` (and whether it stops at it), as the machine
        judges it (the ``budget`` rule); ``None``: the run has no max_cost."""
        limit = self.admission.max_cost
        return None if limit is None else Budget(spent=self.admission.cost, limit=limit, stop=self.stop_at_budget)
