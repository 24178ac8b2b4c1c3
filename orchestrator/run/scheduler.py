"""The loop of a run: it reads what happens into stimuli, asks the machine (``machine``) what
each leads to, and has the interpreter (``run/interpreter``) carry that out, until nothing is left
to start or wait for. What an outcome means, and whether a ready task starts, is the machine's.

Every attempt runs as a task of one anyio task group and hands its ``Outcome`` back through an
``Inbox``; all state (the queue, admission, what runs, what waits for a retry) changes on
the loop's own task only. Cancelling the loop (Ctrl-C) cancels every attempt, and each executor
stops and reaps its processes before the group exits; ``finish`` then records what the run
left undone.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping

import anyio

from orchestrator.backends.base import AgentResult
from orchestrator.machine.stimuli import Offered, RowAdded, Stimulus, Taken, Tick, WordSaid
from orchestrator.run.attempts import Attempt, Outcome
from orchestrator.run.forecasts.forecast import Forecast
from orchestrator.run.held.holds import Holds
from orchestrator.run.held.not_before import Timed
from orchestrator.run.interpreter import Interpreter
from orchestrator.run.limits.admission import Admission
from orchestrator.run.parts import Parts
from orchestrator.run.spawner import Spawner
from orchestrator.run.telling import Scene, Verdict
from orchestrator.state.approvals import Decision
from orchestrator.state.causes import Cause


class Scheduler:
    """The loop over a run's ``parts`` (``run/parts.assemble``); ``rng``: the retries' jitter."""

    def __init__(self, parts: Parts, rng: random.Random | None = None) -> None:
        self.parts, self.board, self.stop, self.holds = parts, parts.board, parts.stop, parts.holds
        self.inbox, self.admission, self.pause, self.merges = parts.inbox, parts.admission, parts.pause, parts.merges
        self.recorder = parts.recorder
        self.desk = parts.desk  # the machine, told what happens
        if rng is not None:
            self.desk.machine.rng = rng
        self.spawner = Spawner(parts, lambda attempt: self.cancelled(attempt, None))  # (``run/spawner``)
        # What the machine says, carried out (what a start finds told to it in turn)
        self.interpreter = Interpreter(parts, self.spawner.spawn, self._tell, self.desk.stamp)
        self.desk.carrier = self.interpreter
        self.started = anyio.Event()  # set once the first tasks have started
        # ``run/inflight/live``: whether an attempt that ended (``None``: stopped by its cancel) was cancelled;
        # if so it is recorded so, and its outcome is not acted on.
        self.cancelled: Callable[[Attempt, AgentResult | None], bool] = lambda attempt, result: False

    # --- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        self.holds.tell(self.recorder.blocked)
        async with anyio.create_task_group() as self.spawner.group:
            while True:
                self._tell(Tick(id=self.desk.stamp(), now=(now := anyio.current_time()), waiting=self.board.delayed))
                self.admission.tick(now, time.time())  # (the windows' slots due given back)
                self.parts.forecast.tell(self.board.queue.finished_count)  # (at the start; each hundredth finished)
                self._fill()
                self.parts.budget.hold(self.board.queue.ready, bool(self.board.running))  # (at its budget: a pause)
                self.started.set()
                if not self.board.running and (
                    self.stop.why or (not self.board.delayed and not self.holds.goes_on(self.board.queue))
                ):
                    break  # once stopped, a retry still waiting will not start; held tasks wait (run --wait) or not
                self.recorder.reporter.flush()  # what this turn had to tell, in one write
                await self.inbox.wait(
                    _until_next(self.board.delayed, self.admission, self.parts.timed, self.parts.forecast, self.holds)
                )
                self._handle_waiting()

    def _handle_waiting(self) -> None:
        """Every outcome and change already there, one at a time, before deciding what starts next."""
        outcomes, changes = self.inbox.outcomes, self.inbox.changes
        while outcomes or changes:
            if changes:
                changes.popleft()()
            else:
                self._handle(outcomes.popleft())

    def _tell(self, stimulus: Stimulus, scene: Scene | None = None) -> Verdict:
        """``stimulus`` told to the machine, and what it says carried out (``Desk.tell``)."""
        return self.desk.tell(stimulus, scene)

    # --- starting ---------------------------------------------------------------------------------

    def _may_start(self, task_id: str) -> bool:
        """Whether the queue hands ``task_id`` out now (one held, or whose Not before has not come,
        or with no room in admission, waits)."""
        admitted = self.admission.admits(self.parts.starts.slot(task_id))
        task = self.parts.plan.tasks.get(task_id)
        offered = Offered(id=self.desk.stamp(), task=task_id, not_before=task.not_before if task else None,
                          now=time.time(), admitted=admitted)  # fmt: skip
        return self._tell(offered).take

    def _fill(self) -> None:
        self.parts.timed.update(self.parts.plan, self.board.queue.queued, self._tell, self.desk.stamp, time.time())
        if self.stop.interrupted:
            return
        while not self.stop.why and not self.admission.full():
            task_id = self.board.queue.pop(self._may_start)
            if task_id is None:
                return
            blocked = self.admission.blocked.get(self.parts.starts.slot(task_id).backend)
            taken = Taken(id=self.desk.stamp(), task=task_id, blocked=blocked)
            self._tell(taken if blocked is not None else self.parts.gates.taken(task_id, taken.id))

    # --- what happens, told to the machine --------------------------------------------------------

    def _handle(self, outcome: Outcome) -> None:
        attempt = outcome.attempt
        if self.board.running.get(attempt.task.id) is not attempt or self.cancelled(attempt, outcome.result):
            return
        self._tell(*self.interpreter.ended(outcome, self.desk.stamp()))

    def decide(self, task_id: str, decision: Decision) -> bool:
        """A person's word on ``task_id`` (`approve`, `reject`): acted on if it waits at its gate
        (``True``), else kept for when it gets there."""
        word = WordSaid(id=self.desk.stamp(), task=task_id, decision=decision)
        return not self._tell(word).noted

    def cancelled_attempt(self, attempt: Attempt, reason: Cause, result: AgentResult | None) -> None:
        """``attempt``, stopped by a cancel (``result``: what it did, if it ended first; ``None``:
        its processes gone), recorded cancelled for ``reason`` with what it spent until then,
        counted as an ended attempt's is (what it spent may be what reaches the cost limit: the
        others are stopped); what depends on its task skipped."""
        self._tell(*self.interpreter.cancelled(attempt, reason, result, self.desk.stamp()))

    def added(self, task_id: str) -> None:
        """``task_id``, a row added while the run goes on (``run/inflight/live``), joins the queue."""
        self._tell(RowAdded(id=self.desk.stamp(), task=task_id))

    def finish(self) -> None:
        """Record what the run leaves undone: attempts that were running when it was stopped
        (their outcome already in counts), retries that will not come, tasks never started."""
        self._handle_waiting()
        self.board.undone(self.stop, self.parts.journal, self.parts.purse, self.holds)


def _until_next(
    delayed: Mapping[str, float],
    admission: Admission,
    timed: Timed,
    forecast: Forecast | None = None,
    holds: Holds | None = None,
) -> float:
    """Seconds until something changes without an attempt ending: a retry due, a slot given
    back after a rate limit, a pause over, a task's Not before come, the deadlines to be judged
    again (``Forecast.wake_at``: a deadline's moment passed), the end of ``run --wait``'s wait
    for a person (``Holds.wake_at``)."""
    now = anyio.current_time()
    times = list(delayed.values())
    moments = [*timed.held.values(), *([ends] if holds is not None and (ends := holds.wake_at()) is not None else [])]
    if moments:
        times.append(now + max(0.0, min(moments) - time.time()))
    judge = forecast.wake_at() if forecast is not None else None
    if judge is not None:
        times.append(now + max(0.0, judge - time.time()))
    if admission.ramp_at is not None:
        times.append(admission.ramp_at)
    paused = admission.next_unpause(time.time())
    if paused is not None:
        times.append(now + paused)
    return max(0.0, min(times) - now) if times else math.inf
