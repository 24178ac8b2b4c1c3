"""``orchestrator budget``: what the run going on may spend, read, and raised while it goes on.

A raise is asked of the run going on as a cancel is (``run/inflight/requests``): a
``budget_requested`` appended to the event log, taken by the run within a second
(``run/inflight/live``), which raises its limit (``run/held/budget``) and answers
``budget_raised``, or refuses (a ``request_refused``: a limit under what it has spent already).
With no run going on there is nothing to raise: the next run's budget is the plan's ``max_cost``
(or ``run --max-cost``), and the refusal says so.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator import timing
from orchestrator.errors import NoAnswerError, UsageError
from orchestrator.run.inflight.requests import submit, wait_for
from orchestrator.state import events
from orchestrator.state.events import EventRecord
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import money

if TYPE_CHECKING:  # (the records: imported as a run is asked, or its events read; `status` with no run needs none)
    from orchestrator.state.events.runs import BudgetRaised


@dataclass(frozen=True, slots=True)
class Change:
    """What ``budget`` asks: ``+5`` (``add``), or ``12.5`` (``limit``)."""

    limit: float | None = None
    add: float | None = None

    @classmethod
    def read(cls, word: str) -> Change:
        text = word.strip().removeprefix("$")
        raising = text.startswith("+")
        try:
            amount = float(text.lstrip("+").removeprefix("$"))
        except ValueError:
            amount = -1.0
        if not amount >= 0 or amount == float("inf"):
            raise UsageError(f"budget {word[:40]!r}: give dollars — +5 raises the budget by $5, 12.50 makes it $12.50")
        return cls(add=amount) if raising else cls(limit=amount)

    def applied(self, limit: float | None) -> float:
        return (limit or 0.0) + self.add if self.add is not None else float(self.limit or 0.0)


def standing(workspace: Workspace, plan_limit: float | None) -> dict[str, Any]:
    """The budget of the run going on (``run`` its id; ``None``: no run goes on, and ``limit`` is the
    plan's ``max_cost``, a next run's): its limit, what it has spent, what is left, whether it
    waits for a higher one and which tasks wait."""
    live = events.live_run(workspace.events_file)
    if live is None:
        return {"run": None, "limit": plan_limit, "spent": None, "left": None, "reached": False, "waiting": []}
    from orchestrator.state.events.runs import BudgetRaised, BudgetReached
    from orchestrator.state.kept.history import ended

    limit = live.overrides.get("max_cost", plan_limit)
    since = events.Cursor(events.last_run_start(workspace.events_file) or 0)
    ran = [e for e in events.read_new(workspace.events_file, since) if e.run == live.run]
    # What its attempts spent, each its own, as ``history`` reads them (a hedge's, a cancelled one's too)
    spent = sum(float(attempt["cost_usd"] or 0.0) for attempt in ended(ran) if attempt["run"] == live.run)
    reached, waiting = False, list[str]()
    for event in ran:
        if isinstance(event, BudgetReached):
            reached, waiting = True, list(event.tasks)
        elif isinstance(event, BudgetRaised):
            limit, reached, waiting = event.limit, False, []
    left = None if limit is None else round(max(0.0, limit - spent), 6)
    return {"run": live.run, "pid": live.pid, "limit": limit, "spent": round(spent, 6), "left": left,
            "reached": reached, "waiting": waiting}  # fmt: skip


def ask(workspace: Workspace, change: Change, *, by: str | None, via: str | None) -> BudgetRaised:
    """The budget of the run going on changed as ``change`` says: its ``budget_raised``.
    ``UsageError`` with no run going on, or when the run refuses (under what it spent);
    ``NoAnswerError`` when it did not answer in time."""
    from orchestrator.state.events.runs import BudgetRaised, BudgetRequested, RequestRefused

    live = events.live_run(workspace.events_file)
    if live is None:
        raise UsageError(
            "budget: no run is going on — a run's budget is the plan's max_cost (or `run --max-cost USD`); "
            "`orchestrator run --max-cost USD` starts one with more"
        )
    request = uuid.uuid4().hex[:12]
    offset = events.size(workspace.events_file)
    asked = BudgetRequested(run=live.run, request=request, limit=change.limit, add=change.add, by=by, via=via)
    submit(workspace, live, [asked], "the budget's change", timing.current().answer_wait)

    def answer(event: EventRecord) -> bool:
        return isinstance(event, BudgetRaised | RequestRefused) and event.request == request

    got = wait_for(workspace, live, answer, offset=offset, wait=timing.current().answer_wait)
    if isinstance(got, BudgetRaised):
        return got
    if isinstance(got, RequestRefused):
        raise UsageError(f"budget: {got.reason}")
    raise NoAnswerError(
        f"the run going on (pid {live.pid}) did not answer the budget's change in time; it may still take it: "
        "`orchestrator watch` shows what it does"
    )


def raised_line(raised: BudgetRaised) -> str:
    went_on = f"; {len(raised.released)} waiting task(s) go on" if raised.released else ""
    was = f" (was {money(raised.was)})" if raised.was is not None else ""
    return f"💰 the run's budget is {money(raised.limit)} now{was}, ${raised.spent:.4f} spent{went_on}"
