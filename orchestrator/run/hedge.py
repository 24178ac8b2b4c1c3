"""Hedging a straggler: an attempt that has run past its bound (the ``hedge`` setting: a factor of
the p90 of its kind's learned durations, or a duration) gets a second attempt beside it, once a
slot is free; the first of the two to complete wins, the other is stopped.

    attempt starts ──▶ bound passed? ──▶ the next slot that frees (before the ready queue's: a
        straggler holds up what comes after it) ──▶ the hedge starts (a fallback backend
        where the task lists one; its own worktree, a lane, for ``isolation: worktree``)
    first to complete ──▶ the other stopped (its process group killed), what it spent counted
        ├─ the first won:  the hedge's lane removed, its work never merged
        └─ the hedge won:  the task's branch moved to the lane's commit (the first's work dropped)
    both fail ──▶ the one that ended last is the task's outcome (its retries as always)

The bound is relative to the task's cohort: ``2x`` is twice the p90 of the durations of the
completed attempts of its kind (``estimates.kind_of``: its type, else profile and backend), learned
from the event log as the run starts. A kind with fewer than ``MIN_COHORT`` of them has no history:
then only the timeout's 80% (when a task has a timeout) hedges it, the moment ``task_stuck`` warns.
A hedge never starts for work not safe to do twice (``refusal``): an agent that may edit files
outside a worktree, or a shell task whose own row or type does not ask for it.

The race runs on the attempt's own task, inside its cancel scope (``Scheduler._attempt``): a cancel
or the run's stop stops both. The scheduler sees one outcome, the winner's, with ``Outcome.raced``.
"""

from __future__ import annotations

import dataclasses
import functools
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from orchestrator import backends
from orchestrator.backends.base import CannotInvoke
from orchestrator.errors import GitError, OrchestratorError
from orchestrator.executors.base import Handle
from orchestrator.executors.worktree import WorktreeExecutor
from orchestrator.git.lanes import Lanes
from orchestrator.git.lanes import lane as lane_name
from orchestrator.git.work import Work
from orchestrator.plan.model import Plan, Task
from orchestrator.plan.settings import Settings, format_duration
from orchestrator.run.admission import Admission, Slot
from orchestrator.run.attempts import Attempt, Launcher, Outcome, Raced
from orchestrator.run.books import SessionCosts, TaskSpend
from orchestrator.run.estimates import kind_of
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.log import read_all
from orchestrator.state.events.tasks import TaskHedged, TaskHedgeWon
from orchestrator.state.history import attempts_of, seconds
from orchestrator.state.journal import Journal

MIN_COHORT = 3  # completed attempts of a kind before its p90 is trusted
STUCK_SHARE = 0.8  # with no history: the timeout's share at which a task is stuck (``run.notify``)
POLL = 0.1  # seconds between looks for a free slot, once the bound is passed
_SHELL = ("shell", "command")


def refusal(plan: Plan, task: Task, settings: Settings) -> str | None:
    """Why ``task`` may not be hedged (``None``: it may, when its ``hedge`` is set): work that is
    not safe to do twice at once."""
    if settings.backend in _SHELL:
        kind = plan.type_of(task)
        if not (task.hedge_set or (kind is not None and kind.sets("hedge"))):
            return "a shell task is hedged only when its own Hedge cell or type says so"
        return None
    if settings.isolation == "worktree":
        return None
    try:
        read_only = backends.get(settings.backend).read_only(settings)
    except OrchestratorError:
        read_only = False
    return None if read_only else "it may edit files outside a worktree (two attempts would edit the same files)"


def cohorts(all_events: list[dict[str, Any]], kinds: Mapping[str, str]) -> dict[str, list[float]]:
    """Each kind's durations: its completed attempts (not simulated), as ``task_started`` recorded
    their kind (else the plan's kind of their task)."""
    found: dict[str, list[float]] = {}
    for attempt in attempts_of(all_events):
        if attempt["outcome"] != "completed" or attempt.get("simulated"):
            continue
        kind = attempt.get("kind") or kinds.get(attempt["task"])
        took = seconds(attempt)
        if kind and took is not None:
            found.setdefault(str(kind), []).append(took)
    return found


def p90(durations: list[float] | None) -> float | None:
    """The 90th percentile of ``durations`` (``None``: fewer than ``MIN_COHORT``)."""
    if not durations or len(durations) < MIN_COHORT:
        return None
    return statistics.quantiles(durations, n=10, method="inclusive")[8]


@dataclass(frozen=True, slots=True)
class Bound:
    seconds: float
    why: str  # where it comes from, for the event's line


def bound_of(settings: Settings, kind_p90: float | None) -> Bound | None:
    """When an attempt with ``settings`` is a straggler (``None``: never)."""
    hedge = settings.hedge
    if hedge is None:
        return None
    if hedge.seconds is not None:
        return Bound(hedge.seconds, f"hedge: {hedge}")
    found = hedge.bound(kind_p90)
    if found is not None:
        return Bound(found, f"{hedge} the p90 of its kind ({format_duration(kind_p90)})")
    if settings.timeout:  # no history: as late as the stuck warning
        return Bound(settings.timeout * STUCK_SHARE, "80% of its timeout (its kind has no history yet)")
    return None


@dataclass(slots=True)
class _Lane:
    attempt: Attempt
    scope: anyio.CancelScope
    started: float  # wall clock
    outcome: Outcome | None = None
    ended: float = 0.0


class Hedger:
    """The races of one run: which attempts may be hedged, and the race of each that is."""

    def __init__(
        self,
        plan: Plan,
        launcher: Launcher,
        admission: Admission,
        journal: Journal,
        emit: Callable[[EventRecord], None],
        numbers: dict[str, int],
    ) -> None:
        self.plan, self.launcher, self.admission, self.journal = plan, launcher, admission, journal
        self.emit = emit
        self.numbers = numbers  # task -> its last attempt's number (the scheduler's)
        kinds = {
            t.id: kind_of(t, launcher.settings[t.id].backend) for t in plan.tasks.values() if t.id in launcher.settings
        }
        self.cohorts = (
            cohorts(read_all(launcher.workspace.events_file), kinds)
            if any(s.hedge for s in launcher.settings.values())
            else {}
        )

    def count(self, outcome: Outcome, first: bool, books: tuple[SessionCosts, TaskSpend, Admission]) -> bool:
        """What the stopped attempt of ``outcome``'s race spent, counted (in the run's total and the
        task's) before the winner's; whether the winner is still its run of the task's ``first``."""
        raced = outcome.raced
        if raced is None:
            return first
        sessions, spend, admission = books
        spent = dataclasses.replace(raced.spent)
        sessions.own(raced.resumed, spent)
        admission.spend(spent.cost_usd)
        spend.add(outcome.attempt.task.id, first, spent, raced.resumed)
        return False

    def slot(self, task_id: str, backend: str) -> Slot:
        """The slot an attempt of ``task_id`` on ``backend`` takes."""
        return Slot(self.plan.tasks[task_id].profile, backend, self.launcher.settings[task_id].limit_group)

    def bound(self, attempt: Attempt) -> Bound | None:
        """When ``attempt`` becomes a straggler to hedge (``None``: it is never hedged)."""
        settings = attempt.settings
        if settings.hedge is None or refusal(self.plan, attempt.task, settings) is not None:
            return None
        return bound_of(settings, p90(self.cohorts.get(kind_of(attempt.task, settings.backend))))

    def wrap(self, attempt: Attempt, **hooks: Any) -> Callable[[], Awaitable[Outcome]]:
        """``attempt`` run to its end (``Launcher.run``, with ``hooks``), raced by a hedge once it straggles."""
        run = functools.partial(self.launcher.run, attempt, **hooks)
        bound = self.bound(attempt)
        return run if bound is None else functools.partial(self.race, attempt, run, bound)

    async def race(self, attempt: Attempt, run: Callable[[], Awaitable[Outcome]], bound: Bound) -> Outcome:
        send, receive = anyio.create_memory_object_stream[_Lane](2)
        first = _Lane(attempt, anyio.CancelScope(), attempt.started or time.time())
        async with anyio.create_task_group() as group, send, receive:
            group.start_soon(self._lane, first, run, send.clone())
            with anyio.move_on_after(max(0.0, first.started + bound.seconds - time.time())):
                return (await receive.receive()).outcome or _gone(first)
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
            self.admission.started(_key(hedge.attempt), self.slot(attempt.task.id, hedge.attempt.settings.backend))
            try:
                group.start_soon(self._lane, hedge, functools.partial(self._run_hedge, hedge), send.clone())
                return await self._decide(first, hedge, receive)
            finally:
                self.admission.ended(_key(hedge.attempt))
        return _gone(first)  # (a task group that swallowed what ended it)

    async def _lane(self, lane: _Lane, run: Callable[[], Awaitable[Outcome]], send: ObjectSendStream[_Lane]) -> None:
        async with send:
            with lane.scope:
                lane.outcome = await run()
            lane.ended = time.time()
            with anyio.CancelScope(shield=True):
                await send.send(lane)

    async def _decide(self, first: _Lane, hedge: _Lane, receive: ObjectReceiveStream[_Lane]) -> Outcome:
        """The first to complete wins, the other is stopped; both failed: the later one's outcome."""
        ended = await receive.receive()
        if ended.outcome is None or not ended.outcome.result.completed:
            ended = await receive.receive()  # the other one's chance
            if ended.outcome is None or not ended.outcome.result.completed:
                return await self._lost_both(first, hedge, ended)
        loser = hedge if ended is first else first
        loser.scope.cancel()
        await receive.receive()  # (its processes reaped, its worktree committed)
        return await self._won(first, hedge, ended, loser)

    async def _won(self, first: _Lane, hedge: _Lane, winner: _Lane, loser: _Lane) -> Outcome:
        assert winner.outcome is not None
        spent = loser.outcome.result if loser.outcome is not None else self.launcher.stopped(loser.attempt)
        won_by = winner.started - loser.started  # the loser's head start, which did not make it first
        raced = Raced(loser.attempt.number, spent, loser.attempt.job.resume_session, winner is hedge,
                      hedge.started - first.started, won_by)  # fmt: skip
        self.journal.ended(loser.attempt.task.id, loser.attempt.number)
        task = first.attempt.task
        tokens = sum(spent.tokens.values()) if spent.tokens else None
        self.emit(TaskHedgeWon(task=task.id, agent=task.agent, attempt=winner.attempt.number,
                               lost=loser.attempt.number, hedge=winner is hedge, won_by=round(won_by, 3),
                               cost_usd=spent.cost_usd, tokens=tokens))  # fmt: skip
        outcome = dataclasses.replace(winner.outcome, raced=raced)
        if winner is not hedge:
            await anyio.to_thread.run_sync(self._drop, hedge.attempt)
            return outcome
        self._take_over(first.attempt, hedge.attempt)
        moved = await anyio.to_thread.run_sync(self._adopt, first.attempt.task.id, hedge.attempt, outcome.run.work)
        return dataclasses.replace(outcome, attempt=first.attempt, run=dataclasses.replace(outcome.run, work=moved))

    async def _lost_both(self, first: _Lane, hedge: _Lane, last: _Lane) -> Outcome:
        """Neither completed: the task's outcome is the one that ended last, the other's spend counted."""
        other = hedge if last is first else first
        assert last.outcome is not None
        spent = other.outcome.result if other.outcome is not None else self.launcher.stopped(other.attempt)
        self.journal.ended(other.attempt.task.id, other.attempt.number)
        raced = Raced(other.attempt.number, spent, other.attempt.job.resume_session, last is hedge,
                      hedge.started - first.started, 0.0)  # fmt: skip
        outcome = dataclasses.replace(last.outcome, raced=raced)
        if last is hedge:
            self._take_over(first.attempt, hedge.attempt)
            outcome = dataclasses.replace(outcome, attempt=first.attempt)
        await anyio.to_thread.run_sync(self._drop, hedge.attempt)  # (a failed lane's work is not merged either)
        return outcome

    def _hedge(self, attempt: Attempt, bound: Bound, first: _Lane) -> _Lane | None:
        """The hedge of ``attempt``, started now if a slot is free (``None``: not yet)."""
        task, settings = attempt.task, attempt.settings
        usable = [b for b in settings.fallback if b not in self.admission.blocked and b != settings.backend]
        backend = usable[0] if usable else settings.backend
        slot = self.slot(task.id, backend)
        if not self.admission.room_for_hedge() or not self.admission.allows(slot):
            return None
        number = self.numbers[task.id] = self.numbers.get(task.id, attempt.number) + 1
        try:
            twin = self.launcher.prepare(task, number, lambda _: attempt.fingerprint, on=backend,
                                         brief_key=lambda _: attempt.brief)  # fmt: skip
        except CannotInvoke:
            return None
        if isinstance(self.launcher.executor, WorktreeExecutor) and task.id in self.launcher.executor.isolated:
            twin.launch = dataclasses.replace(twin.launch, lane=lane_name(task.id, number))
        twin.started, twin.in_run, twin.estimate = time.time(), attempt.in_run, attempt.estimate
        self.journal.spawning(task.id, task.agent, number, self.launcher.executor.name, twin.fingerprint, twin.told,
                              twin.in_run)  # fmt: skip
        after, ws = twin.started - first.started, self.launcher.workspace
        log = str(ws.log_stem(task, number).relative_to(ws.root))
        self.emit(TaskHedged(task=task.id, agent=task.agent, attempt=number, first=attempt.number, backend=backend,
                             after=round(after, 3), bound=round(bound.seconds, 3), why=bound.why, log=log))  # fmt: skip
        return _Lane(twin, anyio.CancelScope(), twin.started)

    async def _run_hedge(self, lane: _Lane) -> Outcome:
        attempt = lane.attempt

        def started(handle: Handle) -> None:
            self.journal.started(
                attempt.task.id, attempt.task.agent, attempt.number, self.launcher.executor.name, handle
            )

        return await self.launcher.run(attempt, on_start=started)

    # --- worktrees: the winner's work kept, the loser's never merged --------------------------------

    def _adopt(self, task_id: str, hedge: Attempt, work: Work | None) -> Work | None:
        """The hedge won: its work moved onto the task's branch (what the stopped first attempt
        left there dropped, never merged), its lane removed; the work as the merge queue takes it."""
        executor, name = self.launcher.executor, hedge.launch.lane
        if name is None or work is None or work.commit is None or not isinstance(executor, WorktreeExecutor):
            return work
        try:
            Lanes(executor.trees).adopt(task_id, name, work.commit)
        except GitError as exc:  # its work stays on the lane's branch: said, never lost
            return dataclasses.replace(work, problem=f"the hedge's work could not be moved to its branch ({exc})")
        return dataclasses.replace(work, branch=executor.trees.branch(task_id))

    def _drop(self, hedge: Attempt) -> None:
        executor = self.launcher.executor
        if hedge.launch.lane is not None and isinstance(executor, WorktreeExecutor):
            Lanes(executor.trees).drop(hedge.launch.lane)

    @staticmethod
    def _take_over(first: Attempt, hedge: Attempt) -> None:
        """The task's attempt (the one the loop knows) becomes the hedge that won: its number, its
        backend, its job and logs; its start stays the task's."""
        first.number, first.settings, first.backend = hedge.number, hedge.settings, hedge.backend
        first.job, first.launch, first.observer = hedge.job, hedge.launch, hedge.observer
        first.fallback_from, first.session = hedge.fallback_from, hedge.session


def _key(attempt: Attempt) -> str:
    """The hedge's place in admission's books (the task's own attempt holds its id)."""
    return f"{attempt.task.id}+{attempt.number}"


def _gone(lane: _Lane) -> Outcome:
    raise RuntimeError(f"{lane.attempt.task.id}: its attempt ended with no outcome")  # (cancelled: never sent)
