"""The loop of a run: start what admission allows from the ready queue, then act on what each
attempt's outcome means (``policy.decide``), until nothing is left to start or wait for.

Every attempt runs as a task of one anyio task group and hands its ``Outcome`` back through an
``Inbox``; all state (the queue, admission, what runs, what waits for a retry) changes on
the loop's own task only. Cancelling the loop (Ctrl-C) cancels every attempt, and each executor
stops and reaps its processes before the group exits; ``finish`` then records what the run
left undone.
"""

from __future__ import annotations

import functools
import math
import random
import time
from collections.abc import Callable, Mapping, MutableMapping

import anyio
from anyio.abc import TaskGroup

from orchestrator.backends.base import AgentResult
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.graph import ReadyQueue
from orchestrator.plan.model import Plan
from orchestrator.run.attempts import Attempt, Launcher, Outcome, Resumable
from orchestrator.run.board import Board
from orchestrator.run.books import Inbox, Purse, Stop
from orchestrator.run.forecasts.estimates import Estimate, for_run
from orchestrator.run.forecasts.forecast import Forecast
from orchestrator.run.held.gates import Gates
from orchestrator.run.held.holds import Holds
from orchestrator.run.held.not_before import Timed
from orchestrator.run.interpreter import Interpreter, Parts, Scene
from orchestrator.run.limits.admission import Admission
from orchestrator.run.limits.failover import Breakers
from orchestrator.run.machine import Machine
from orchestrator.run.machine.instructions import Instruction, Noted, Take
from orchestrator.run.machine.stimuli import Offered, RowAdded, Stimulus, Taken, Tick, WordSaid
from orchestrator.run.races.hedge import Hedger
from orchestrator.run.recorder import Recorder
from orchestrator.run.resume.reuse import Reuse
from orchestrator.run.starts import Starts
from orchestrator.run.worktrees.merges import MergeQueue
from orchestrator.state.approvals import Decision
from orchestrator.state.causes import Cause
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.runs import Notice
from orchestrator.state.journal import Journal, Trace
from orchestrator.state.pause import Pause
from orchestrator.state.results import ResultRecord


class Scheduler:
    """The loop: it reads the world into stimuli, asks the machine (``run/machine``) what each
    leads to, and has the interpreter (``run/interpreter``) carry that out."""

    def __init__(
        self,
        *,
        plan: Plan,
        selected: list[str],
        done: set[str],
        settings: Mapping[str, Settings],
        signatures: Mapping[str, str],
        records: MutableMapping[str, ResultRecord],
        sessions: dict[str, Resumable],
        attempts: Mapping[str, int],
        launcher: Launcher,
        recorder: Recorder,
        admission: Admission,
        pause: Pause,
        journal: Journal,
        fail_fast: bool,
        rng: random.Random | None = None,
        merges: MergeQueue | None = None,
        reuse: Reuse | None = None,
    ) -> None:
        self.plan, self.recorder, self.admission, self.pause = plan, recorder, admission, pause
        self.merges = merges  # with isolation: worktree, what merges each completed task's branch
        self.records, self.launcher, self.journal = records, launcher, journal
        estimates = for_run(plan, recorder.workspace, signatures, selected)  # from the runs before
        self.forecast = Forecast(plan, recorder.views, selected, estimates, admission.limit, recorder.emit)
        # The queue, what runs and what waits: every move of a task made there (``run/board``).
        queue = _ready_queue(plan, selected, done, estimates, admission.limit)
        self.board = board = Board(plan, queue, recorder, attempts)
        self.machine = Machine(retries=board.retries, rng=rng)  # what each stimulus leads to
        self.stop = Stop()  # why nothing new starts (fail-fast, the cost limit, a signal)
        self.holds = Holds(plan, selected)  # tasks a person holds (a Blocked cell): never started
        self.inbox, self.timed = Inbox(), Timed()  # timed: the ready tasks whose Not before has not come
        self.started = anyio.Event()  # set once the first tasks have started
        # ``run/inflight/live``: whether an attempt that ended (``None``: stopped by its cancel) was cancelled;
        # if so it is recorded so, and its outcome is not acted on.
        self.cancelled: Callable[[Attempt, AgentResult | None], bool] = lambda attempt, result: False
        breakers = Breakers(self.forecast.started)  # per backend: open while it is down (``run/limits/failover``)
        self.starts = Starts(plan=plan, settings=settings, signatures=signatures, records=records, sessions=sessions,
                             launcher=launcher, recorder=recorder, journal=journal, admission=admission,
                             breakers=breakers, board=board, expected=self.forecast.expected, merges=merges,
                             reuse=reuse)  # fmt: skip
        self.hedger = Hedger(plan, launcher, admission, journal, self._on_loop, board.attempts)  # (``run/races/hedge``)
        purse = Purse(recorder.workspace, {t: r.session_id for t, r in sessions.items()}, admission)
        self.gates = Gates(plan, self.holds, recorder, records)  # conditions and approval gates
        self.interpreter = Interpreter(Parts(plan, board, recorder, records, sessions, admission, pause, self.stop,
                                             self.gates, self.starts, breakers, purse, self.hedger, launcher, journal,
                                             merges, reuse, fail_fast), self._spawn)  # fmt: skip
        self._group: TaskGroup | None = None

    # --- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        self.holds.tell(self.recorder.blocked)
        async with anyio.create_task_group() as self._group:
            while True:
                self._tell(Tick(id=self.machine.stamp(), now=(now := anyio.current_time()), due=self.board.due(now)))
                self.admission.tick(now, time.time())  # (the windows' slots due given back)
                self.forecast.tell(self.board.queue.finished_count)  # (at the start; then at each hundredth finished)
                self._fill()
                self.started.set()
                if not self.board.running and (
                    self.stop.why or (not self.board.delayed and not self.holds.goes_on(self.board.queue))
                ):
                    break  # once stopped, a retry still waiting will not start; held tasks wait (run --wait) or not
                self.recorder.reporter.flush()  # what this turn had to tell, in one write
                await self.inbox.wait(
                    _until_next(self.board.delayed, self.admission, self.timed, self.forecast, self.holds)
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

    def _tell(self, stimulus: Stimulus, scene: Scene | None = None) -> list[Instruction]:
        """``stimulus`` told to the machine, and what it says carried out."""
        said = self.machine.handle(stimulus)
        self.interpreter.carry(said, scene)
        return said

    # --- starting ---------------------------------------------------------------------------------

    def _may_start(self, task_id: str) -> bool:
        """Whether the queue hands ``task_id`` out now (one held, or whose Not before has not come,
        or with no room in admission, waits)."""
        admitted = self.admission.admits(self.starts.slot(task_id))
        offered = Offered(id=self.machine.stamp(), task=task_id, held=self.holds.causes.get(task_id),
                          not_before=self.timed.held.get(task_id), admitted=admitted)  # fmt: skip
        return isinstance(self.machine.handle(offered)[-1], Take)

    def _fill(self) -> None:
        self.timed.update(self.plan, self.board.queue.queued, self.recorder, time.time())
        if self.stop.interrupted:
            return
        while not self.stop.why and not self.admission.full():
            task_id = self.board.queue.pop(self._may_start)
            if task_id is None:
                return
            blocked = self.admission.blocked.get(self.starts.slot(task_id).backend)
            taken = Taken(id=self.machine.stamp(), task=task_id, blocked=blocked)
            self._tell(taken if blocked is not None else self.gates.taken(task_id, taken.id))

    def _spawn(self, attempt: Attempt) -> None:
        assert self._group is not None
        self._group.start_soon(self._attempt, attempt, name=f"{attempt.task.id} attempt {attempt.number}")

    async def _attempt(self, attempt: Attempt) -> None:
        task = attempt.task
        trace = Trace(self.journal, task.id, task.agent, attempt.number, self.launcher.executor.name,
                      lambda: attempt.observer.session_id)  # fmt: skip
        with attempt.stoppable():  # `orchestrator cancel` and the run's stop cancel it (``run/inflight/live``)
            try:
                ran = self.hedger.wrap(attempt, on_start=trace.started, on_line=trace.line, tell=self._notice)
                outcome = await (self.merges.landed(attempt, self.records.get(task.id), ran) if self.merges else ran())
            except Exception as exc:  # a bug of ours (a parser, a callback): this task fails, not the run
                outcome = self.launcher.internal_error(attempt, exc)
            self.inbox.put(outcome)
        if attempt.scope and attempt.scope.cancelled_caught:  # its processes are gone: now it is recorded cancelled
            self.inbox.change(functools.partial(self.cancelled, attempt, None))

    # --- what happens, told to the machine --------------------------------------------------------

    def _handle(self, outcome: Outcome) -> None:
        attempt = outcome.attempt
        if self.board.running.get(attempt.task.id) is not attempt or self.cancelled(attempt, outcome.result):
            return
        self._tell(*self.interpreter.ended(outcome, self.machine.stamp()))

    def decide(self, task_id: str, decision: Decision) -> bool:
        """A person's word on ``task_id`` (`approve`, `reject`): acted on if it waits at its gate
        (``True``), else kept for when it gets there."""
        word = WordSaid(id=self.machine.stamp(), task=task_id, gate=self.holds.gates.get(task_id), decision=decision)
        return not isinstance(self._tell(word)[0], Noted)

    def cancelled_attempt(self, attempt: Attempt, reason: Cause, result: AgentResult | None) -> None:
        """``attempt``, stopped by a cancel (``result``: what it did, if it ended first; ``None``:
        its processes gone), recorded cancelled for ``reason`` with what it spent until then,
        counted as an ended attempt's is (what it spent may be what reaches the cost limit: the
        others are stopped); what depends on its task skipped."""
        self._tell(*self.interpreter.cancelled(attempt, reason, result, self.machine.stamp()))

    def added(self, task_id: str) -> None:
        """``task_id``, a row added while the run goes on (``run/inflight/live``), joins the queue."""
        self._tell(RowAdded(id=self.machine.stamp(), task=task_id))

    def finish(self) -> None:
        """Record what the run leaves undone: attempts that were running when it was stopped
        (their outcome already in counts), retries that will not come, tasks never started."""
        self._handle_waiting()
        self.board.undone(self.stop, self.journal, self.interpreter.parts.purse, self.holds)

    # --- small parts ---------------------------------------------------------------------------------

    def _on_loop(self, event: EventRecord) -> None:
        """What emits an event an attempt's task has for the run: on the loop, before its outcome."""
        self.inbox.change(functools.partial(self.recorder.emit, event))

    def _notice(self, message: str) -> None:
        """What tells a notice an attempt has for the run (``Launcher.run``'s ``tell``): on the loop."""
        self.inbox.change(functools.partial(self.recorder.emit, Notice(message=message)))


def _ready_queue(
    plan: Plan, selected: list[str], done: set[str], estimates: Mapping[str, Estimate], slots: int | None
) -> ReadyQueue:
    """The queue of this run's tasks: by priority, then the longest remaining path of work first,
    each task weighing what it is expected to take (``run/forecasts/estimates``: learned from the runs before);
    when every task's is known, that list improved by playing the run out on ``slots`` (``plan.listorder``)."""
    took = {task: estimate.seconds for task, estimate in estimates.items()}
    if not all(t in estimates and estimates[t].source != "default" for t in selected):
        slots = None  # (a 60 s guess is no duration to play a run out on)
    priority = {task.id: task.priority for task in plan.tasks.values()}
    queue = ReadyQueue(plan.graph, priority=priority, order=plan.order, selected=selected, done=done, took=took,
                       slots=slots)  # fmt: skip
    queue.deciding = {task.id for task in plan.tasks.values() if task.condition}
    return queue


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
