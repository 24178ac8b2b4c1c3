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
from orchestrator.run import policy
from orchestrator.run.attempts import Attempt, Launcher, Outcome, Resumable
from orchestrator.run.board import Board
from orchestrator.run.books import Inbox, Purse, Stop
from orchestrator.run.forecasts.estimates import Estimate, for_run
from orchestrator.run.forecasts.forecast import Forecast
from orchestrator.run.held.gates import HOLD, Gates
from orchestrator.run.held.holds import Holds
from orchestrator.run.held.not_before import Timed
from orchestrator.run.items import Rows
from orchestrator.run.limits.admission import Admission
from orchestrator.run.limits.failover import Breakers, fails_over
from orchestrator.run.races.hedge import Hedger
from orchestrator.run.recorder import Recorder
from orchestrator.run.resume.reuse import Reuse
from orchestrator.run.starts import Starts
from orchestrator.run.worktrees.merges import MergeQueue
from orchestrator.state.approvals import Decision
from orchestrator.state.causes import Cause, CauseKind
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.runs import Notice
from orchestrator.state.journal import Journal, Trace
from orchestrator.state.pause import Pause
from orchestrator.state.results import ResultRecord
from orchestrator.vocabulary import ErrorClass, TaskStatus


class Scheduler:
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
        rows: Rows | None = None,
    ) -> None:
        self.plan = plan
        self.merges = merges  # with isolation: worktree, what merges each completed task's branch
        self.settings = settings
        self.signatures = signatures
        self.records = records  # the results a fingerprint reads: on disk at the start, then this run's
        self.sessions = sessions  # task -> agent session an interrupted attempt left, to resume
        self.purse = Purse(recorder.workspace, {t: r.session_id for t, r in sessions.items()}, admission)
        self.launcher, self.recorder = launcher, recorder
        self.admission = admission
        self.pause, self.journal = pause, journal
        self.fail_fast = fail_fast
        self.rng = rng or random.Random()
        estimates = for_run(plan, recorder.workspace, signatures, selected)  # from the runs before
        self.forecast = Forecast(plan, recorder.views, selected, estimates, admission.limit, recorder.emit)
        # The queue, what runs and what waits: every move of a task made there (``run/board``).
        self.board = board = Board(
            plan, _ready_queue(plan, selected, done, estimates, admission.limit), recorder, attempts
        )
        self.breakers = Breakers(self.forecast.started)  # per backend: open while it is down (``run/limits/failover``)
        self.stop = Stop()  # why nothing new starts (fail-fast, the cost limit, a signal)
        self.holds = Holds(plan, selected)  # tasks a person holds (a Blocked cell): never started
        self.gates = Gates(plan, self.holds, recorder, records)  # conditions and approval gates
        self.inbox, self.timed = Inbox(), Timed()  # timed: the ready tasks whose Not before has not come
        self.started = anyio.Event()  # set once the first tasks have started
        # ``run/inflight/live``: whether an attempt that ended (``None``: stopped by its cancel) was cancelled;
        # if so it is recorded so, and its outcome is not acted on.
        self.cancelled: Callable[[Attempt, AgentResult | None], bool] = lambda attempt, result: False
        self.reuse = reuse  # the cache (``run/resume/reuse``): a result reused instead of a run
        self.starts = Starts(plan=plan, settings=settings, signatures=signatures, records=records, sessions=sessions,
                             launcher=launcher, recorder=recorder, journal=journal, admission=admission,
                             breakers=self.breakers, board=board, expected=self.forecast.expected, merges=merges,
                             reuse=reuse, rows=rows)  # fmt: skip
        self.hedger = Hedger(plan, launcher, admission, journal, self._on_loop, board.attempts)  # (``run/races/hedge``)

    # --- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        self.holds.tell(self.recorder.blocked)
        async with anyio.create_task_group() as attempts:
            while True:
                self._release_due(anyio.current_time())
                self.forecast.tell(self.board.queue.finished_count)  # (at the start; then at each hundredth finished)
                self._fill(attempts)
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

    # --- starting ---------------------------------------------------------------------------------

    def _may_start(self, task_id: str) -> bool:
        slot = self.starts.slot(task_id)  # (one held, or whose Not before has not come, waits)
        return task_id not in self.holds and task_id not in self.timed.held and self.admission.admits(slot)

    def _fill(self, group: TaskGroup) -> None:
        self.timed.update(self.plan, self.board.queue.queued, self.recorder, time.time())
        if self.stop.interrupted:
            return
        while not self.stop.why and not self.admission.full():
            task_id = self.board.queue.pop(self._may_start)
            if task_id is None:
                return
            blocked = self.admission.blocked.get(self.starts.slot(task_id).backend)
            if blocked is not None:
                self.board.give_up(task_id, TaskStatus.SKIPPED, Cause.of(CauseKind.STOPPED, f"not started: {blocked}"))
                continue
            verdict = self.gates.check(task_id)
            if isinstance(verdict, tuple):  # its condition false (or undecidable), or rejected
                self.board.give_up(task_id, *verdict)
            elif verdict == HOLD:  # at its gate: one before it starts stays ready, for when it is approved
                if self.holds.gates.get(task_id) == "before":
                    self.board.queue.push_back(task_id)
            elif (attempt := self.starts.start(task_id)) is not None:
                group.start_soon(self._attempt, attempt, name=f"{task_id} attempt {attempt.number}")

    async def _attempt(self, attempt: Attempt) -> None:
        task = attempt.task
        trace = Trace(self.journal, task.id, task.agent, attempt.number, self.launcher.executor.name,
                      lambda: attempt.observer.session_id)  # fmt: skip
        with attempt.stoppable():  # `orchestrator cancel` and the run's stop cancel it (``run/inflight/live``)
            try:
                ran = self.hedger.wrap(
                    attempt, on_start=trace.started, on_line=trace.line, tell=self._notice
                )  # (a race)
                outcome = await (self.merges.landed(attempt, self.records.get(task.id), ran) if self.merges else ran())
            except Exception as exc:  # a bug of ours (a parser, a callback): this task fails, not the run
                outcome = self.launcher.internal_error(attempt, exc)
            self.inbox.put(outcome)
        if attempt.scope and attempt.scope.cancelled_caught:  # its processes are gone: now it is recorded cancelled
            self.inbox.change(functools.partial(self.cancelled, attempt, None))

    # --- outcomes ---------------------------------------------------------------------------------

    def _handle(self, outcome: Outcome) -> None:
        attempt = outcome.attempt
        task = attempt.task
        if self.board.running.get(task.id) is not attempt or self.cancelled(attempt, outcome.result):
            return
        del self.board.running[task.id]
        began = self.admission.ended(task.id)
        self.journal.ended(task.id, attempt.number, outcome.run.worker)
        result = outcome.result  # (a hedged task's: the attempt it raced counted first, ``Hedger.count``)
        first = self.hedger.count(outcome, attempt.in_run == 1, self.purse)
        self.purse.book(
            task.id, first, result, attempt.job.resume_session
        )  # (the run's total: what its attempts spent)
        now = anyio.current_time()
        over = fails_over(self.breakers, attempt.settings, result, time.time(), self.admission.blocked)
        if over is not None:  # its backend is down: the next attempt goes to a fallback, no retry spent
            return self._fail_over(outcome, over)
        decision = self.board.retries.decide(  # (its place in this run of the task: retries count in it)
            task.id, result, attempt=attempt.in_run, settings=attempt.settings, rng=self.rng, now=now
        )
        session = _goes_on(decision, outcome)
        if session is not None:
            self.sessions[task.id] = session
        elif not isinstance(decision, policy.Complete | policy.Pause):
            self.sessions.pop(task.id, None)  # a session that could not be continued: start afresh
        if isinstance(decision, policy.Complete):
            awaiting = task.approval == "after"  # its result waits for a person's word; so does what needs it
            self.records[task.id] = self.recorder.completed(outcome, decision.warning, awaiting=awaiting)
            if self.reuse is not None:  # (not one awaiting a person: ``Reuse.cacheable``)
                self.reuse.keep(task, attempt.job.brief)
            if self.merges is not None and outcome.added:  # a conflict's resolution task: its dependents wait
                self.merges.adopt(outcome.added, self.board.queue)
            if awaiting:
                self.gates.await_approval(task, "after")
            else:
                self.board.completed(task.id)
        elif isinstance(decision, policy.Retry):
            if decision.rate_limited:
                self.admission.rate_limited(attempt.settings.backend, now, result.retry_after or 0.0, began)
            self.board.later(task.id, now + decision.after, outcome)
            self.recorder.retrying(outcome, decision.after, decision.reason)
        elif isinstance(decision, policy.Pause):
            group = attempt.settings.limit_group or attempt.settings.backend
            until, new = self.pause.start(decision.until, attempt.settings.backend, decision.reason, group)
            self.admission.pause(self.pause.until_for(group), group)
            self.board.later(task.id, anyio.current_time() + self.pause.remaining(group), outcome)
            self.recorder.paused(task, until, decision.reason, group if new else None)
        elif isinstance(decision, policy.Block):
            self.admission.block(decision.backend, decision.blocked)
            self.recorder.failed(outcome, decision.reason)
            self.board.skip_downstream(task.id, TaskStatus.FAILED)
        else:
            self.recorder.failed(outcome, decision.reason)
            self.board.skip_downstream(task.id, TaskStatus.FAILED)
            if self.fail_fast and not self.stop.why:
                self.stop.halt(f"--fail-fast: {task.id} failed", Cause(CauseKind.STOPPED, task=task.id))
        self.check_budget()

    def _fail_over(self, outcome: Outcome, reason: str) -> None:
        """``outcome``'s backend is down and its task names a fallback (``run/limits/failover.fails_over``):
        its next attempt starts now, on the fallback, spending no retry."""
        task, result, backend = outcome.attempt.task, outcome.result, outcome.attempt.settings.backend
        if result.error_class is ErrorClass.AUTH:  # (what has no fallback is skipped, as always)
            self.admission.block(backend, self.breakers.why(backend))
        self.sessions.pop(task.id, None)  # (another vendor's agent starts afresh)
        self.board.later(task.id, anyio.current_time(), outcome)
        self.recorder.retrying(outcome, 0.0, reason)

    # --- what is asked of the loop (``run/inflight``, the runner) --------------------------------

    def decide(self, task_id: str, decision: Decision) -> bool:
        """A person's word on ``task_id`` (`approve`, `reject`): acted on if it waits at its gate
        (``True``), else kept for when it gets there."""
        verdict = self.gates.decide(task_id, decision)
        if verdict is not None:
            self.board.decided(task_id, verdict, decision, self.records.get(task_id))
        return verdict is not None

    def cancelled_attempt(self, attempt: Attempt, reason: Cause, result: AgentResult | None) -> None:
        """``attempt``, stopped by a cancel (``result``: what it did, if it ended first; ``None``:
        its processes gone), recorded cancelled for ``reason`` with what it spent until then,
        counted as an ended attempt's is; what depends on its task skipped."""
        del self.board.running[attempt.task.id]
        self.admission.ended(attempt.task.id)
        self.journal.ended(attempt.task.id, attempt.number)
        spent = self.launcher.stopped(attempt) if result is None else result
        first = self.hedger.stopped(attempt, attempt.in_run == 1, self.purse)  # (a race's others, stopped with it)
        self.purse.book(attempt.task.id, first, spent, attempt.job.resume_session)
        self.check_budget()  # (what it spent may be what reaches the limit: the others are stopped)
        self.board.cancelled(attempt, reason, spent)

    def check_budget(self) -> None:
        """Once the run has spent its ``max_cost``, it stops (``Stop.halt``)."""
        over = self.purse.over()
        if over is not None and not self.stop.why:
            self.stop.halt(over[0], Cause.of(CauseKind.STOPPED, over[1]))

    def finish(self) -> None:
        """Record what the run leaves undone: attempts that were running when it was stopped
        (their outcome already in counts), retries that will not come, tasks never started."""
        self._handle_waiting()
        self.board.undone(self.stop, self.journal, self.purse, self.holds)

    # --- small parts ---------------------------------------------------------------------------------

    def _release_due(self, now: float) -> None:
        """The retries due at loop time ``now`` back in the queue; the windows' slots due given back."""
        self.board.due(now)
        self.admission.tick(now, time.time())

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
    # A task with a Condition decides on its upstream's outcomes; a row run per item, on its instances'.
    queue.deciding = {task.id for task in plan.tasks.values() if task.condition or task.each is not None}
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


def _goes_on(decision: policy.Decision, outcome: Outcome) -> Resumable | None:
    """The session the next attempt continues, on the worker that ran it (on a cluster: it holds
    the session). After a pause (a usage limit), the session the attempt had. After a rate limit:
    the API turned its next request away, not the session, which goes on where it stopped without
    making again the requests it made, told to go on if the task is unchanged. Only a session that
    got an answer (in this attempt or one it continued): one whose first request was refused has
    done nothing yet."""
    attempt, result, worker = outcome.attempt, outcome.result, outcome.run.worker
    session = result.session_id
    if isinstance(decision, policy.Pause) and session:
        return Resumable(session, attempt.fingerprint, attempt.told, worker)
    if not (isinstance(decision, policy.Retry) and decision.rate_limited and session):
        return None
    if attempt.job.resume_session == session or (result.tokens and result.tokens.get("output")):
        return Resumable(session, attempt.fingerprint, attempt.told, worker)
    return None
