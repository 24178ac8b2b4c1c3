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

from orchestrator.backends.base import AgentResult, CannotInvoke
from orchestrator.executors.base import Handle
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.graph import ReadyQueue
from orchestrator.plan.model import Plan
from orchestrator.run import policy
from orchestrator.run.attempts import Attempt, Launcher, Outcome, Resumable
from orchestrator.run.books import Inbox, RetryBook, spend_books
from orchestrator.run.forecasts.estimates import Estimate, for_run
from orchestrator.run.forecasts.forecast import Forecast
from orchestrator.run.held.gates import HOLD, Gates
from orchestrator.run.held.holds import Holds
from orchestrator.run.held.not_before import Timed
from orchestrator.run.limits.admission import Admission, Slot
from orchestrator.run.limits.failover import Breakers, fails_over
from orchestrator.run.races.hedge import Hedger
from orchestrator.run.recorder import Recorder, stopped_waiting
from orchestrator.run.resume.reuse import Reuse
from orchestrator.run.resume.selection import Upstream, fingerprint, upstream_of
from orchestrator.run.worktrees.merges import MergeQueue
from orchestrator.state.approvals import Decision, rejected_cause
from orchestrator.state.causes import Cause, CauseKind
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.runs import Notice
from orchestrator.state.events.tasks import TaskFailover
from orchestrator.state.journal import Journal
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
    ) -> None:
        self.plan = plan
        self.merges = merges  # with isolation: worktree, what merges each completed task's branch
        self.settings = settings
        self.signatures = signatures
        self.records = records  # the results a fingerprint reads: on disk at the start, then this run's
        self.sessions = sessions  # task -> agent session an interrupted attempt left, to resume
        self.session_costs, self.spend = spend_books(recorder.workspace, {t: r.session_id for t, r in sessions.items()})
        self.launcher, self.recorder = launcher, recorder
        self.admission = admission
        self.pause, self.journal = pause, journal
        self.fail_fast = fail_fast
        self.rng = rng or random.Random()
        estimates = for_run(plan, recorder.workspace, signatures, selected)  # from the runs before
        self.forecast = Forecast(plan, recorder.views, selected, estimates, admission.limit, recorder.emit)
        self.queue = _ready_queue(plan, selected, done, estimates, admission.limit)
        self.running: dict[str, Attempt] = {}
        self.attempts = dict(attempts)  # task -> number of its last attempt, in this run or an earlier one
        self.first_attempt: dict[str, int] = {}  # task -> number of its first attempt in this run
        self.retries = RetryBook()
        self.breakers = Breakers(self.forecast.started)  # per backend: open while it is down (``run.failover``)
        self.delayed: dict[str, float] = {}  # task -> loop time its next attempt may start
        self.waiting: dict[str, Outcome] = {}  # task -> the attempt that ended, whose next one is delayed
        self.stopped: str | None = None  # why nothing new starts (fail-fast, the cost limit)
        self.interrupted = False
        self.holds = Holds(plan, selected)  # tasks a person holds (a Blocked cell): never started
        self.gates = Gates(plan, self.holds, recorder, records)  # conditions and approval gates
        self.inbox, self.timed = Inbox(), Timed()  # timed: the ready tasks whose Not before has not come
        self.started = anyio.Event()  # set once the first tasks have started
        # ``run.live``: whether an attempt that ended (``None``: stopped by its cancel) was cancelled;
        # if so it is recorded so, and its outcome is not acted on.
        self.cancelled: Callable[[Attempt, AgentResult | None], bool] = lambda attempt, result: False
        self.stop_attempts: Callable[[Cause], None] = lambda cause: None  # ``run.live``: what runs stopped (``halt``)
        self.reuse: Reuse | None = None  # the cache (``run.reuse``): a result reused instead of a run
        self.hedger = Hedger(plan, launcher, admission, journal, _on_loop(self), self.attempts)  # (``run.hedge``)

    # --- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        self.holds.tell(self.recorder.blocked)
        async with anyio.create_task_group() as attempts:
            while True:
                release_due(self, anyio.current_time())
                self.forecast.tell(self.queue.finished_count)  # (at the start; then at each hundredth finished)
                self._fill(attempts)
                self.started.set()
                if not self.running and (self.stopped or (not self.delayed and not self.holds.goes_on(self.queue))):
                    break  # once stopped, a retry still waiting will not start; held tasks wait (run --wait) or not
                self.recorder.reporter.flush()  # what this turn had to tell, in one write
                await self.inbox.wait(_until_next(self.delayed, self.admission, self.timed, self.forecast, self.holds))
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
        slot = _slot(self, task_id)  # (one held, or whose Not before has not come, waits)
        return task_id not in self.holds and task_id not in self.timed.held and self.admission.admits(slot)

    def _fill(self, group: TaskGroup) -> None:
        self.timed.update(self.plan, self.queue.queued, self.recorder, time.time())
        if self.interrupted:
            return
        while not self.stopped and not self.admission.full():
            task_id = self.queue.pop(self._may_start)
            if task_id is None:
                return
            blocked = self.admission.blocked.get(_slot(self, task_id).backend)
            if blocked is not None:
                self._give_up(task_id, TaskStatus.SKIPPED, Cause.of(CauseKind.STOPPED, f"not started: {blocked}"))
                continue
            verdict = self.gates.check(task_id)
            if isinstance(verdict, tuple):  # its condition false (or undecidable), or rejected
                self._give_up(task_id, *verdict)
            elif verdict == HOLD:  # at its gate: one before it starts stays ready, for when it is approved
                if self.holds.gates.get(task_id) == "before":
                    self.queue.push_back(task_id)
            else:
                self._start(task_id, group)

    def _start(self, task_id: str, group: TaskGroup) -> None:
        self.recorder.workspace.check_inside()  # its logs go nowhere a symlink put meanwhile leads
        task = self.plan.tasks[task_id]
        upstream = upstream_of(task.upstream_ids, self.records)
        of_brief, key = _fingerprints(self.signatures[task_id], upstream)
        if self.merges is not None and self.merges.unresolved(task, self.records.get(task_id), of_brief, self.recorder):
            return self._skip_downstream(task_id, TaskStatus.FAILED)  # its conflict not resolved yet: it stays failed
        if self.reuse is not None and self.reuse.reuse(task, of_brief) is not None:
            return self.completed(task_id)  # the cache held its inputs' result: no process started
        number = self.attempts[task_id] = self.attempts.get(task_id, 0) + 1
        first = self.first_attempt.setdefault(task_id, number)
        try:
            backend, fallen = self.breakers.choose(self.settings[task_id], time.time(), self.admission.blocked)
            attempt = self.launcher.prepare(
                task, number, of_brief, resume=self.sessions.get(task_id), on=backend, brief_key=key
            )
        except CannotInvoke as exc:
            self._give_up(task_id, TaskStatus.FAILED, Cause.of(CauseKind.FAILED, str(exc)), attempts=number)
            return
        attempt.started, attempt.in_run = time.time(), number - first + 1
        attempt.estimate = self.forecast.expected.get(task_id)  # (what the run expects of it: ``report``)
        # A kill -9 leaves a trace, and what it was started with: a later run resumes it only if unchanged.
        self.journal.spawning(task_id, task.agent, number, self.launcher.executor.name,
                              attempt.fingerprint, attempt.told, attempt.in_run)  # fmt: skip
        self.running[task_id] = attempt
        self.admission.started(task_id, _slot(self, task_id))
        self.recorder.started(attempt)
        if fallen is not None:
            self.recorder.emit(TaskFailover(task=task_id, backend=backend, fallback_from=fallen, attempt=number,
                                            reason=self.breakers.why(fallen)))  # fmt: skip
        group.start_soon(self._attempt, attempt, name=f"{task_id} attempt {number}")

    async def _attempt(self, attempt: Attempt) -> None:
        task, journal = attempt.task, self.journal
        executor = self.launcher.executor.name
        journaled: list[str | None] = [None]  # the session id last journaled

        def started(handle: Handle) -> None:
            journal.started(task.id, task.agent, attempt.number, executor, handle)

        def line(_: bytes) -> None:
            # Keep the agent's session id with the attempt: a run after a kill -9 can resume it.
            session = attempt.observer.session_id
            if session and session != journaled[0]:
                journaled[0] = session
                journal.session(task.id, attempt.number, session)

        with attempt.stoppable():  # `orchestrator cancel` and the run's stop cancel it (``run.live``)
            try:
                ran = self.hedger.wrap(attempt, on_start=started, on_line=line, tell=_notices(self))  # (a race)
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
        if self.running.get(task.id) is not attempt or self.cancelled(attempt, outcome.result):
            return
        del self.running[task.id]
        began = self.admission.ended(task.id)
        self.journal.ended(task.id, attempt.number, outcome.run.worker)
        result = outcome.result  # (a hedged task's: the attempt it raced counted first, ``Hedger.count``)
        first = self.hedger.count(outcome, attempt.in_run == 1, (self.session_costs, self.spend, self.admission))
        self.session_costs.own(attempt.job.resume_session, result)
        self.admission.spend(result.cost_usd)  # the attempt's own: the run's total is what its attempts spent
        self.spend.add(task.id, first, result, attempt.job.resume_session)
        now = anyio.current_time()
        over = fails_over(self.breakers, attempt.settings, result, time.time(), self.admission.blocked)
        if over is not None:  # its backend is down: the next attempt goes to a fallback, no retry spent
            return fail_over(self, outcome, over)
        decision = self.retries.decide(  # (its place in this run of the task: retries count in it)
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
                self.merges.adopt(outcome.added, self.queue)
            if awaiting:
                self.gates.await_approval(task, "after")
            else:
                self.completed(task.id)
        elif isinstance(decision, policy.Retry):
            if decision.rate_limited:
                self.admission.rate_limited(attempt.settings.backend, now, result.retry_after or 0.0, began)
            self.delayed[task.id] = now + decision.after
            self.waiting[task.id] = outcome
            self.recorder.retrying(outcome, decision.after, decision.reason)
        elif isinstance(decision, policy.Pause):
            group = attempt.settings.limit_group or attempt.settings.backend
            until, new = self.pause.start(decision.until, attempt.settings.backend, decision.reason, group)
            self.admission.pause(self.pause.until_for(group), group)
            self.delayed[task.id] = anyio.current_time() + self.pause.remaining(group)
            self.waiting[task.id] = outcome
            self.recorder.paused(task, until, decision.reason, group if new else None)
        elif isinstance(decision, policy.Block):
            self.admission.block(decision.backend, decision.blocked)
            self.recorder.failed(outcome, decision.reason)
            self._skip_downstream(task.id, TaskStatus.FAILED)
        else:
            self.recorder.failed(outcome, decision.reason)
            self._skip_downstream(task.id, TaskStatus.FAILED)
            if self.fail_fast and not self.stopped:
                halt(self, f"--fail-fast: {task.id} failed", Cause(CauseKind.STOPPED, task=task.id))
        check_budget(self)

    def completed(self, task_id: str) -> None:
        for child in self.queue.complete(task_id):
            self.recorder.ready(child)

    def _give_up(self, task_id: str, status: TaskStatus, cause: Cause, *, attempts: int = 0) -> None:
        """``task_id`` will not run in this run: record why, and skip everything downstream (a
        bypassed task's is bypassed too: a false condition is no failure)."""
        in_run = attempts - self.first_attempt.get(task_id, attempts) + 1 if attempts else 0  # (one it could not start)
        self.recorder.not_run(self.plan.tasks[task_id], status, cause, attempts=attempts, run_attempts=in_run)
        self._skip_downstream(task_id, status)

    def _skip_downstream(self, task_id: str, status: TaskStatus) -> None:
        """What depends on ``task_id``, which ended ``status`` and not completed, is given up."""
        self.skip(self.queue.fail(task_id), task_id, status)

    def skip(self, doomed: list[str], task_id: str, status: TaskStatus) -> None:
        """Record the tasks of ``doomed`` given up for ``task_id``, which is ``status``: bypassed
        where it was bypassed (a false condition is no failure), else skipped."""
        given = TaskStatus.BYPASSED if status == TaskStatus.BYPASSED else TaskStatus.SKIPPED
        for child in doomed:
            self.delayed.pop(child, None)
            self.waiting.pop(child, None)
            self.recorder.not_run(self.plan.tasks[child], given, Cause.upstream(task_id, status))


def release_due(scheduler: Scheduler, now: float) -> None:
    """The retries due at loop time ``now`` back in the queue; the windows' slots due given back."""
    for task_id, when in list(scheduler.delayed.items()):
        if when <= now:
            del scheduler.delayed[task_id]
            scheduler.waiting.pop(task_id, None)
            scheduler.queue.push_back(task_id)
    scheduler.admission.tick(now, time.time())


def fail_over(scheduler: Scheduler, outcome: Outcome, reason: str) -> None:
    """``outcome``'s backend is down and its task names a fallback (``run.failover.fails_over``):
    its next attempt starts now, on the fallback, spending no retry."""
    task, result, backend = outcome.attempt.task, outcome.result, outcome.attempt.settings.backend
    if result.error_class is ErrorClass.AUTH:  # (what has no fallback is skipped, as always)
        scheduler.admission.block(backend, scheduler.breakers.why(backend))
    scheduler.sessions.pop(task.id, None)  # (another vendor's agent starts afresh)
    scheduler.delayed[task.id] = anyio.current_time()
    scheduler.waiting[task.id] = outcome
    scheduler.recorder.retrying(outcome, 0.0, reason)


def finish_run(scheduler: Scheduler) -> None:
    """Record what the run leaves undone: attempts that were running when it was stopped
    (their outcome already in counts), retries that will not come, tasks never started."""
    scheduler._handle_waiting()
    why = Cause.of(CauseKind.INTERRUPTED, None if scheduler.interrupted else "stopped: the run ended on an error")
    for task_id, attempt in list(scheduler.running.items()):
        scheduler.journal.ended(task_id, attempt.number)
        spent = scheduler.spend.so_far(task_id, attempt.in_run == 1, attempt.job.resume_session)
        scheduler.recorder.interrupted(attempt, why, spent)
    scheduler.running.clear()
    # Tasks whose last attempt ended and whose next one waits: that attempt is what happened.
    for task_id in list(scheduler.delayed):
        outcome = scheduler.waiting.get(task_id)
        if scheduler.interrupted:
            stopped_waiting(scheduler.recorder, scheduler.plan.tasks[task_id], outcome)
        elif outcome is not None:
            failed = outcome.result.message or "failed"
            scheduler.recorder.failed(outcome, f"{failed}; not attempted again: {scheduler.stopped or 'run stopped'}")
    scheduler.delayed.clear()
    scheduler.waiting.clear()
    if scheduler.interrupted:
        return
    for task_id in scheduler.holds.without(scheduler.queue.drain()):  # (held, and what needs them: for a next run)
        if scheduler.recorder.views[task_id].status in (TaskStatus.PENDING, TaskStatus.WAITING, TaskStatus.RETRYING):
            reason = Cause.of(CauseKind.STOPPED, f"not started: {scheduler.stopped or 'run stopped'}")
            scheduler.recorder.not_run(scheduler.plan.tasks[task_id], TaskStatus.SKIPPED, reason)


def decided(scheduler: Scheduler, task_id: str, decision: Decision) -> bool:
    """A person's word on ``task_id`` (`approve`, `reject`): acted on if it waits at its gate
    (``True``), else kept for when it gets there."""
    verdict = scheduler.gates.decide(task_id, decision)
    if verdict == "complete":
        scheduler.completed(task_id)
    elif verdict == "reject":
        record = scheduler.records.get(task_id)
        if record is None or record.status != TaskStatus.REJECTED:  # (a gate before: no result yet)
            cause = rejected_cause(decision, "before")
            scheduler.recorder.not_run(scheduler.plan.tasks[task_id], TaskStatus.REJECTED, cause)
        # (one held before it starts is still queued)
        scheduler.skip(scheduler.queue.cancel(task_id), task_id, TaskStatus.REJECTED)
    return verdict is not None


def check_budget(scheduler: Scheduler) -> None:
    """Once the run has spent its ``max_cost``, it stops (``halt``)."""
    limit, admission = scheduler.admission.max_cost, scheduler.admission
    if limit is not None and admission.over_budget() and not scheduler.stopped:
        halt(scheduler, f"cost limit reached: ${admission.cost:.4f} of ${limit:.4f}",
             Cause.of(CauseKind.STOPPED, f"stopped: the run reached its cost limit of ${dollars(limit)}"))  # fmt: skip


def halt(scheduler: Scheduler, why: str, reason: Cause) -> None:
    """The run stops (fail-fast, the cost limit): nothing new starts (``why``: what its end says),
    and what runs now spends no more: each attempt is stopped as `orchestrator cancel` stops one
    (its process group SIGTERM, ``kill_grace``, SIGKILL; on a worker, there) and ends cancelled
    with ``reason``, its dependents skipped (``run.live.stop_running``)."""
    scheduler.stopped = why
    scheduler.stop_attempts(reason)


def dollars(amount: float) -> str:
    """``amount`` as a price reads: ``0.50``, ``0.015`` (cents at least, never rounded past 4 places)."""
    digits = f"{amount:.4f}".rstrip("0")
    return digits + "0" * max(0, 2 - len(digits.partition(".")[2]))


def _ready_queue(
    plan: Plan, selected: list[str], done: set[str], estimates: Mapping[str, Estimate], slots: int | None
) -> ReadyQueue:
    """The queue of this run's tasks: by priority, then the longest remaining path of work first,
    each task weighing what it is expected to take (``run.estimates``: learned from the runs before);
    when every task's is known, that list improved by playing the run out on ``slots`` (``plan.listorder``)."""
    took = {task: estimate.seconds for task, estimate in estimates.items()}
    if not all(t in estimates and estimates[t].source != "default" for t in selected):
        slots = None  # (a 60 s guess is no duration to play a run out on)
    priority = {task.id: task.priority for task in plan.tasks.values()}
    queue = ReadyQueue(plan.graph, priority=priority, order=plan.order, selected=selected, done=done, took=took,
                       slots=slots)  # fmt: skip
    queue.deciding = {task.id for task in plan.tasks.values() if task.condition}
    return queue


def _slot(scheduler: Scheduler, task_id: str) -> Slot:
    settings = scheduler.settings[task_id]  # (its backend: its own, or a fallback while its own is down)
    backend = scheduler.breakers.choose(settings, time.time(), scheduler.admission.blocked)[0]
    return Slot(scheduler.plan.tasks[task_id].profile, backend, settings.limit_group)


def _fingerprints(signature: str, upstream: Upstream) -> tuple[Callable[[str], str], Callable[[str], str]]:
    """A brief's fingerprint with its inputs (what a result records), and without (what its
    estimate learns by: ``task_started``'s ``brief``)."""
    with_inputs = functools.partial(fingerprint, signature=signature, upstream=upstream)
    return with_inputs, functools.partial(fingerprint, signature=signature, upstream=[])


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


def _on_loop(scheduler: Scheduler) -> Callable[[EventRecord], None]:
    """What emits an event an attempt's task has for the run: on the loop, before its outcome."""
    return lambda event: scheduler.inbox.change(functools.partial(scheduler.recorder.emit, event))


def _notices(scheduler: Scheduler) -> Callable[[str], None]:
    """What tells a notice an attempt has for the run (``Launcher.run``'s ``tell``): on the loop."""
    return lambda message: scheduler.inbox.change(functools.partial(scheduler.recorder.emit, Notice(message=message)))


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
