"""Best of N: a task with ``best_of: N`` runs N attempts of itself at once (each in a worktree of its
own when isolated), and its ``judge`` (``run/races/judges.py``) chooses the one whose result becomes the
task's.

    the task's attempt starts ──▶ N-1 more, each as a slot frees (before the ready queue's)
    judge: first ──▶ the first to complete wins, the others are stopped
    any other judge ──▶ all end, then the judge chooses among those that completed
    the winner ──▶ the task's attempt (its result, its branch: only it merges); every other
        candidate's result kept beside the task's, ``<result>.candidate-<attempt>.md``, listed in
        the result's ``best_of`` with the judge's reason; their lanes removed unmerged, what each
        committed kept on ``refs/orchestrator/lost/<task>/attempt-<n>`` (``git/lanes``);
        what every candidate (and an agent judge) spent counted in the task's cost

None completed: the task's outcome is its own attempt's (its retries as always), the others'
spend counted too.

A runner killed before the race's result is written leaves the task's branch where the race took
it (its winner adopted, or its own attempt's work): the next run keeps that aside, never merged,
and races again from where this race began (``git/lanes``, ``Lanes.mark``): one winner merges.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from orchestrator.backends.base import AgentResult
from orchestrator.machine.stimuli import LaneEnded
from orchestrator.moments import iso_at
from orchestrator.run.attempts import Attempt, Judged, Outcome
from orchestrator.run.races.judges import choose
from orchestrator.run.races.lanes import Lane, Racing, run_lane
from orchestrator.run.recorder import attempt_record
from orchestrator.run.telling import Desk, Verdict
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.tasks import TaskJudged
from orchestrator.state.results import write_result
from orchestrator.vocabulary import TaskStatus

POLL = 0.1  # seconds between looks for a free slot for the next candidate


class BestOf:
    """The best-of-N races of one run."""

    def __init__(self, racing: Racing, emit: Callable[[EventRecord], None], desk: Desk) -> None:
        self.racing = racing
        self.emit = emit
        self.desk = desk  # the run's machine: its ``best-of`` rule: whether a race waits on, or its judge is asked

    async def race(self, attempt: Attempt, run: Callable[[], Awaitable[Outcome]]) -> Outcome:
        await anyio.to_thread.run_sync(self.racing.mark, attempt)
        send, receive = anyio.create_memory_object_stream[Lane](attempt.settings.best_of)
        lanes = [Lane(attempt, anyio.CancelScope(), attempt.started or time.time())]
        ended: list[Lane] = []
        short: list[str] = []  # why fewer candidates than asked for ran, if they did
        try:
            async with anyio.create_task_group() as group, send, receive:
                group.start_soon(run_lane, lanes[0], run, send.clone())
                await self._gather(attempt, lanes, ended, (group, send, receive), short)
                for lane in lanes:
                    if lane not in ended:
                        lane.scope.cancel()  # (judge: first, and one completed)
                while len(ended) < len(lanes):
                    ended.append(await receive.receive())
            return await self._choose(attempt, lanes, ended, short[0] if short else None)
        finally:
            self.racing.abandon(lanes, attempt)  # (stopped from outside: their slots back)

    async def _gather(
        self,
        attempt: Attempt,
        lanes: list[Lane],
        ended: list[Lane],
        streams: tuple[TaskGroup, MemoryObjectSendStream[Lane], MemoryObjectReceiveStream[Lane]],
        short: list[str],
    ) -> None:
        """Start the other candidates as slots free, until every one has ended (judge ``first``: until
        one completed). A race waits for its slots while other attempts of the run hold them; once
        nothing else runs and no slot is free (``max_parallel`` too small, a cap, the cost limit),
        the candidates left are not run, and ``short`` says how many ran and why."""
        group, send, receive = streams
        admission, wanted = self.racing.admission, attempt.settings.best_of - 1
        admission.reserved += wanted
        try:
            while len(ended) < len(lanes) or wanted:
                if wanted:
                    lane = self.racing.start(attempt, attempt.settings.backend)
                    if lane is not None:
                        wanted, admission.reserved = wanted - 1, admission.reserved - 1
                        lanes.append(lane)
                        group.start_soon(run_lane, lane, functools.partial(self.racing.run, lane), send.clone())
                        continue
                    if len(ended) == len(lanes) and admission.running <= 1:  # (its own slot alone: none frees)
                        short.append(_short(attempt, len(lanes), self.racing.held.get(attempt.task.id)))
                        return
                with anyio.move_on_after(POLL if wanted else math.inf):
                    done = await receive.receive()
                    ended.append(done)
                    if done.attempt is not attempt:
                        self.racing.release(done.attempt)  # (its slot free for the next candidate)
                    if not self._ended(done, lanes, ended, wanted).racing:
                        return
        finally:
            admission.reserved -= wanted

    def _ended(self, done: Lane, lanes: list[Lane], ended: list[Lane], unstarted: int) -> Verdict:
        """What the machine says of ``done``, a candidate that ended: wait on, or ask the judge."""
        own = lanes[0].attempt
        running = tuple(lane.attempt.number for lane in lanes if lane not in ended)
        told = LaneEnded(id=self.desk.stamp(), task=own.task.id, attempt=done.attempt.number,
                         completed=done.completed, running=running, unstarted=unstarted,
                         judge=own.settings.judge)  # fmt: skip
        return self.desk.tell(told)

    async def _choose(self, own: Attempt, lanes: list[Lane], ended: list[Lane], short: str | None) -> Outcome:
        judge = own.settings.judge
        verdict = await choose(judge, lanes, ended, self.racing.launcher)
        if short is not None:
            verdict = dataclasses.replace(verdict, reason=f"{short}; {verdict.reason}")
        winner = verdict.winner or lanes[0]  # (none completed: the task's own attempt's outcome)
        if winner.outcome is None:  # (its own attempt stopped: the last to end speaks for the task)
            winner = next(lane for lane in reversed(ended) if lane.outcome is not None)
        spending = {id(lane): self.racing.spent(lane) for lane in lanes}
        spent = tuple((spending[id(lane)], lane.attempt.job.resume_session) for lane in lanes if lane is not winner)
        candidates = tuple(self._keep(lane, winner, verdict.reason) for lane in lanes)
        task = own.task
        told = [{**c, **_times(lane), **_spend(spending[id(lane)])} for c, lane in zip(candidates, lanes, strict=True)]
        self.emit(TaskJudged(task=task.id, agent=task.agent, attempt=winner.attempt.number, judge=judge,
                             reason=verdict.reason, candidates=tuple(told)))  # fmt: skip
        for lane in lanes:
            if lane is not winner:
                self.racing.ended(lane, own)
        if winner.attempt is not own:
            self.racing.release(winner.attempt)
        judged = Judged(judge, verdict.reason, candidates, spent + verdict.spent)
        outcome = await self.racing.settle(own, winner, lanes)
        return dataclasses.replace(outcome, judged=judged)

    def _keep(self, lane: Lane, winner: Lane, reason: str) -> dict[str, object]:
        """A candidate as the task's result lists it; one not chosen that ended, its result kept
        beside the task's (``<result>.candidate-<attempt>.md``)."""
        attempt, outcome = lane.attempt, lane.outcome
        state = "stopped" if outcome is None else "completed" if outcome.result.completed else "failed"
        found: dict[str, object] = {"attempt": attempt.number, "status": state, "chosen": lane is winner}
        if outcome is not None:
            found["chars"] = len(outcome.result.text)
        if lane is winner or outcome is None:
            return found
        ws = self.racing.launcher.workspace
        path = ws.result(attempt.task)
        path = path.with_name(f"{path.stem}.candidate-{attempt.number}.md")
        status = TaskStatus.COMPLETED if outcome.result.completed else TaskStatus.FAILED
        record = attempt_record(ws, outcome, status, f"a candidate not chosen: {reason}", None)
        heading = f"# {attempt.task.id}: candidate attempt {attempt.number}, not chosen"
        body = f"{heading}\n\n{outcome.result.text.rstrip()}\n"
        write_result(path, record, body, durable=False, exists=path.exists())
        found["result"] = ws.relative(path)
        return found


def _times(lane: Lane) -> dict[str, object]:
    """When a candidate started and ended, as the event log writes moments (``history`` reads them)."""
    return {"started": iso_at(lane.started), "ended": iso_at(lane.ended or time.time())}


def _spend(result: AgentResult) -> dict[str, object]:
    """What a candidate spent: its own cost and tokens (``history`` shows them)."""
    return {"cost_usd": result.cost_usd, "tokens": sum(result.tokens.values()) if result.tokens else None}


def _short(attempt: Attempt, ran: int, held: str | None) -> str:
    """Why only ``ran`` of a race's candidates ran: what held the others (``held``: the setting that
    left no slot, or why a candidate could not start)."""
    asked = attempt.settings.best_of
    return f"ran short: {ran} of {asked} candidates, {held or 'no slot came free for the others'}"
