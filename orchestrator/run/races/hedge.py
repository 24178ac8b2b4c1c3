"""Hedging a straggler: an attempt that has run past its bound (the ``hedge`` setting: a factor of
the p90 of its kind's durations, or a duration) gets a second attempt beside it, once a slot is
free; the first of the two to complete wins, the other is stopped.

    attempt starts ──▶ bound passed? ──▶ the next slot that frees (before the ready queue's: a
        straggler holds up what comes after it) ──▶ the hedge starts (a fallback backend
        where the task lists one; on a cluster, another worker than the straggler's where one
        has a thread free; its own worktree, a lane, for ``isolation: worktree``)
    first to complete ──▶ the other stopped (its process group killed), what it spent counted
        ├─ the first won:  the hedge's lane removed, its work never merged
        └─ the hedge won:  the task's branch moved to the lane's commit (the first's work dropped)
    both fail ──▶ the one that ended last is the task's outcome (its retries as always)

The bound is relative to the task's cohort (``run/races/bounds``): ``2x`` is twice the p90 of the
durations of the completed attempts of its kind, in the runs before (learned from the event log as
the run starts) or in this run so far, whichever is sooner; with neither, the timeout's 80%. It is
live: the race waits for it and reads it again whenever an attempt of its kind completes, so an
attempt with no bound when it starts (no history, no timeout) becomes a straggler once its siblings
give one. The loop hands every attempt's outcome to ``count``, which adds a completed one's time.

A hedge never starts for work not safe to do twice (``refusal``): an agent that may edit files
outside a worktree, or a shell task whose own row or type does not ask for it.

The race runs on the attempt's own task, inside its cancel scope (``Scheduler._attempt``): a cancel
or the run's stop stops both. The scheduler sees one outcome, the winner's, with ``Outcome.raced``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
from anyio.abc import ObjectReceiveStream

from orchestrator.backends.base import AgentResult
from orchestrator.machine.stimuli import LaneEnded, Straggling
from orchestrator.plan.model import Plan
from orchestrator.run.attempts import Attempt, Launcher, Outcome, Raced
from orchestrator.run.books import Purse
from orchestrator.run.forecasts.estimates import kind_of
from orchestrator.run.limits.admission import Admission
from orchestrator.run.races.bestof import BestOf
from orchestrator.run.races.bounds import Bound, Cohorts, cohorts
from orchestrator.run.races.lanes import Lane, Racing, noting, run_lane
from orchestrator.run.races.raceable import refusal
from orchestrator.run.telling import Desk, Verdict
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.log import each
from orchestrator.state.events.tasks import TaskHedged, TaskHedgeFailed, TaskHedgeWon
from orchestrator.state.journal import Journal

POLL = 0.1  # seconds between looks for a free slot, once the bound is passed


class Hedger:
    """The races of one run: which attempts may be hedged, and the race of each that is."""

    def __init__(
        self,
        plan: Plan,
        launcher: Launcher,
        admission: Admission,
        journal: Journal,
        emit: Callable[[EventRecord], None],
        numbers: MutableMapping[str, int],
        desk: Desk,
    ) -> None:
        self.plan, self.admission, self.emit = plan, admission, emit
        self.desk = desk  # the run's machine: its ``hedge``, ``race`` and ``best-of`` rules decide a race
        self.racing = Racing(launcher, admission, journal, numbers)
        self.best = BestOf(self.racing, emit, desk)
        own = launcher.settings
        kinds = {t.id: kind_of(t, own[t.id].backend) for t in plan.tasks.values() if t.id in own}
        self.hedged = any(s.hedge for s in own.values())  # (else no cohort is kept: nothing reads one)
        self.cohorts = Cohorts(cohorts(each(launcher.workspace.events_file), kinds) if self.hedged else {})
        self.kinds: dict[str, str] = {}  # task -> the kind its attempt running now started as

    def count(self, outcome: Outcome, first: bool, purse: Purse) -> bool:
        """What the attempts ``outcome``'s beat spent (a race's, best of N's, the judge's), counted
        (in the run's total and the task's) before the winner's; whether the winner is still its
        run of the task's ``first``. The loop hands every attempt's outcome here: one that completed
        joins its kind's cohort in this run (``took``)."""
        self.took(outcome)
        return self.spent(outcome.attempt.task.id, outcome.beaten(), first, purse)

    def took(self, outcome: Outcome) -> None:
        """A completed attempt's time in its kind's cohort (``Cohorts.took``): the winner's own, from
        when it started (a hedge that won, from its start), under the kind its task's attempt started
        as; a simulated one (no process ran) never."""
        kind = self.kinds.pop(outcome.attempt.task.id, None)
        if kind is None or not outcome.result.completed or outcome.run.simulated:
            return
        raced = outcome.raced
        began = outcome.attempt.started + (raced.after if raced is not None and raced.hedge_won else 0.0)
        self.cohorts.took(kind, max(0.0, outcome.finished - began))

    def stopped(self, attempt: Attempt, first: bool, purse: Purse) -> bool:
        """What the attempts raced beside ``attempt`` spent until a cancel or the run's stop stopped
        them with it (``Racing.abandon``), counted as ``count`` counts a race's loser."""
        return self.spent(attempt.task.id, self.racing.abandoned.pop(attempt.task.id, []), first, purse)

    @staticmethod
    def spent(task_id: str, results: list[tuple[AgentResult, str | None]], first: bool, purse: Purse) -> bool:
        """``results`` (each with the session it continued) counted in the run's total and
        ``task_id``'s; whether the next counted is still its run of the task's ``first``."""
        for result, resumed in results:
            purse.book(task_id, first, dataclasses.replace(result), resumed)
            first = False
        return first

    def hedges(self, attempt: Attempt) -> bool:
        """Whether ``attempt`` is hedged once it straggles: its ``hedge`` set, its work safe to do twice."""
        settings = attempt.settings
        return settings.hedge is not None and refusal(self.plan, attempt.task, settings) is None

    def wrap(self, attempt: Attempt, **hooks: Any) -> Callable[[], Awaitable[Outcome]]:
        """``attempt`` run to its end (``Launcher.run``, with ``hooks``): raced by N-1 more for a
        task with ``best_of`` (``run/races/bestof``), else by a hedge once it straggles."""
        launch = self.racing.launcher.run
        kind = kind_of(attempt.task, attempt.settings.backend)
        if self.hedged:
            self.kinds[attempt.task.id] = kind
        if attempt.settings.best_of > 1 and refusal(self.plan, attempt.task, attempt.settings, field="best_of") is None:
            return functools.partial(self.best.race, attempt, functools.partial(launch, attempt, **hooks))
        if not self.hedges(attempt):
            return functools.partial(launch, attempt, **hooks)
        first = Lane(attempt, anyio.CancelScope(), 0.0)  # (the worker it runs on noted, for its hedge's)
        hooks["on_start"] = functools.partial(noting, first, hooks.get("on_start"))
        return functools.partial(self.race, first, functools.partial(launch, attempt, **hooks), kind)

    async def race(self, first: Lane, run: Callable[[], Awaitable[Outcome]], kind: str) -> Outcome:
        attempt = first.attempt
        # (where its branch stands marked before it starts, as best of N's: a hedge that wins, or the
        # first attempt, leaves its work there, and a runner killed before the result leaves it unrecorded)
        await anyio.to_thread.run_sync(self.racing.mark, attempt)
        send, receive = anyio.create_memory_object_stream[Lane](2)
        first.started = attempt.started or time.time()
        async with anyio.create_task_group() as group, send, receive:
            group.start_soon(run_lane, first, run, send.clone())
            while True:  # (its bound read again each time an attempt of its kind completes)
                bound = self.cohorts.bound(kind, attempt.settings)
                if self._straggles(attempt, first, bound):
                    break
                left = math.inf if bound is None else first.started + bound.seconds - time.time()
                with anyio.move_on_after(left) as wait, self.cohorts.waking(kind, wait):
                    return (await receive.receive()).outcome or _gone(first)
            assert bound is not None
            hedge = None
            self.admission.reserved += 1  # past the bound: the next slot that frees is its hedge's
            try:
                while hedge is None:
                    hedge = self._hedge(attempt, bound, first)
                    if hedge is None:
                        with anyio.move_on_after(POLL):
                            return (await receive.receive()).outcome or _gone(first)
            finally:
                self.admission.reserved -= 1
            group.start_soon(run_lane, hedge, functools.partial(self.racing.run, hedge), send.clone())
            try:
                return await self._decide(first, hedge, receive)
            finally:
                self._abandon(first, hedge)  # (stopped from outside: its slot back, what it spent told)
        return _gone(first)  # (a task group that swallowed what ended it)

    async def _decide(self, first: Lane, hedge: Lane, receive: ObjectReceiveStream[Lane]) -> Outcome:
        """Which of the two is the task's, as the machine's ``race`` rule says: the first to
        complete wins, the other is stopped; both failed, the later one's outcome."""
        ended = await receive.receive()
        said = self._ended(ended, first, hedge)
        if said.racing:
            ended = await receive.receive()  # the other one's chance
            said = self._ended(ended, first, hedge)
        loser = hedge if ended is first else first
        if said.stop:
            loser.scope.cancel()
            await receive.receive()  # (its processes reaped, its worktree committed)
        assert said.settle == ended.attempt.number
        assert ended.outcome is not None
        spent = self.racing.spent(loser)
        won_by = ended.started - loser.started if ended.completed else 0.0  # the loser's head start
        raced = Raced(loser.attempt.number, spent, loser.attempt.job.resume_session, ended is hedge,
                      hedge.started - first.started, won_by)  # fmt: skip
        self.racing.ended(loser, first.attempt)
        if ended is hedge:  # (its journal's end is the task's: the loop's)
            self.racing.release(hedge.attempt)
        task, tokens = first.attempt.task, sum(spent.tokens.values()) if spent.tokens else None
        if ended.completed:
            self.emit(TaskHedgeWon(task=task.id, agent=task.agent, attempt=ended.attempt.number,
                                   lost=loser.attempt.number, hedge=ended is hedge, won_by=round(won_by, 3),
                                   cost_usd=spent.cost_usd, tokens=tokens))  # fmt: skip
        else:  # (history: the one that ended first with what it spent, the other the task's outcome)
            self.emit(TaskHedgeFailed(task=task.id, agent=task.agent, attempt=ended.attempt.number,
                                      lost=loser.attempt.number, hedge=ended is hedge, cost_usd=spent.cost_usd,
                                      tokens=tokens))  # fmt: skip
        outcome = await self.racing.settle(first.attempt, ended, [first, hedge])
        return dataclasses.replace(outcome, raced=raced)

    def _straggles(self, attempt: Attempt, first: Lane, bound: Bound | None) -> bool:
        """Whether ``attempt`` straggles now (the machine's ``hedge`` rule): past its kind's bound."""
        told = Straggling(id=self.desk.stamp(), task=attempt.task.id, elapsed=time.time() - first.started,
                          bound=bound.seconds if bound is not None else None)  # fmt: skip
        return self.desk.tell(told).hedge

    def _ended(self, ended: Lane, first: Lane, hedge: Lane) -> Verdict:
        """What the machine says of ``ended``, one of the race's two attempts."""
        other = hedge if ended is first else first
        running = (other.attempt.number,) if other.outcome is None else ()
        told = LaneEnded(id=self.desk.stamp(), task=ended.attempt.task.id, attempt=ended.attempt.number,
                         completed=ended.completed, running=running)  # fmt: skip
        return self.desk.tell(told)

    def _abandon(self, first: Lane, hedge: Lane) -> None:
        """A race stopped from outside (a cancel, the run's stop): the hedge's slot given back, what
        it spent kept for the task's cancel to count (``stopped``) and told, for ``history``."""
        task = first.attempt.task
        before = len(self.racing.abandoned.get(task.id, []))
        self.racing.abandon([hedge], first.attempt)
        for spent, _ in self.racing.abandoned.get(task.id, [])[before:]:
            tokens = sum(spent.tokens.values()) if spent.tokens else None
            self.emit(TaskHedgeFailed(task=task.id, agent=task.agent, attempt=first.attempt.number,
                                      lost=hedge.attempt.number, hedge=False, cost_usd=spent.cost_usd, tokens=tokens,
                                      stopped=True))  # fmt: skip

    def _hedge(self, attempt: Attempt, bound: Bound, first: Lane) -> Lane | None:
        """The hedge of ``attempt``, started now if a slot is free (``None``: not yet): on the
        task's first fallback backend not blocked, else its own; on a cluster, rather on another
        worker than ``first``'s."""
        settings = attempt.settings
        usable = [b for b in settings.fallback if b not in self.admission.blocked and b != settings.backend]
        lane = self.racing.start(attempt, usable[0] if usable else settings.backend, avoid=first.worker)
        if lane is None:
            return None
        task, hedge = attempt.task, lane.attempt
        ws = self.racing.launcher.workspace
        log = str(ws.log_stem(task, hedge.number).relative_to(ws.root))
        self.emit(TaskHedged(task=task.id, agent=task.agent, attempt=hedge.number, first=attempt.number,
                             backend=hedge.settings.backend, after=round(lane.started - first.started, 3),
                             bound=round(bound.seconds, 3), why=bound.why, log=log))  # fmt: skip
        return lane


def _gone(lane: Lane) -> Outcome:
    raise RuntimeError(f"{lane.attempt.task.id}: its attempt ended with no outcome")  # (cancelled: never sent)
