"""The runner: real processes, in dependency order, within limits, with nothing lost.

Lifecycle of one ``Runner.run()``:

1. Take the workspace lock (a second runner gets ``LockedError``, exit 3).
2. Load and check the plan, render briefs (hand edits kept), stop attempts a dead runner left.
3. Decide what runs: completed tasks whose fingerprint is unchanged are kept; ``--only`` and
   ``--rerun`` narrow or widen that.
4. Loop: start the most urgent ready tasks while slots are free (``graph.ReadyQueue`` decides what
   is ready, this module only runs it); each attempt reports back one ``AgentResult``; the loop
   completes, retries (with backoff and full jitter), pauses (usage limit), or fails the task and
   skips everything downstream of it.
5. On Ctrl-C / SIGTERM: stop launching, kill every running process group, record those tasks as
   ``interrupted``; exit 130.
6. Always: write final_output.md and the status sections of master_plan.md, release the lock.

All state changes happen on the loop's own task; attempts only send messages back, so no state is
shared between concurrent coroutines.
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import random
import signal
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from orchestrator import backends
from orchestrator.backends.base import (
    AUTH,
    INTERRUPTED,
    RATE_LIMIT,
    START,
    USAGE_LIMIT,
    AgentResult,
    Backend,
    Job,
    Observer,
    tail,
)
from orchestrator.errors import OrchestratorError
from orchestrator.executors.base import Executor, Launch, LocalExecutor, build_launch
from orchestrator.executors.process import (
    LineCallback,
    ProcessRun,
    StartCallback,
    Wakeup,
    child_exited,
    started_since_bound,
)
from orchestrator.output.final import write_final_output
from orchestrator.output.render import Templates, render_briefs, update_plan_file, updated_plan_file
from orchestrator.output.reporter import Reporter
from orchestrator.plan.graph import ReadyQueue, topological_order
from orchestrator.plan.parser import Task, load_plan
from orchestrator.plan.profiles import Profiles
from orchestrator.plan.settings import Settings
from orchestrator.run.preflight import check_plan
from orchestrator.run.prompt import build_prompt
from orchestrator.run.selection import (
    expected_fingerprints,
    fingerprint,
    read_results,
    select,
    settings_signature,
    settle_orphans,
    upstream_of,
)
from orchestrator.state import store
from orchestrator.state.journal import Journal, attempt_environment, iso_at, now_iso
from orchestrator.state.lock import WorkspaceLock
from orchestrator.state.pause import Pause
from orchestrator.state.status import COMPLETED, FAILED, PENDING, RETRYING, RUNNING, SKIPPED, WAITING, collect, counts
from orchestrator.state.workspace import Workspace

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130
_T = TypeVar("_T")
_RAMP_INTERVAL = 5.0  # after a rate limit, one more slot every this many seconds
_AHEAD = 4  # launches made ahead of their start, at most (Runner._make_ahead)
_AHEAD_FOR = 0.5  # seconds a launch made ahead stays good for
_JOIN_AT_MOST = 4  # times outcomes seen while a batch is handled join it before its results are written


@dataclass(slots=True)
class RunOptions:
    max_parallel: int | None = None
    only: list[str] | None = None
    rerun: list[str] | None = None
    fail_fast: bool | None = None
    backend: str | None = None
    max_cost: float | None = None
    wait_for_orphans: bool = False
    aggregate: str | None = None


@dataclass(slots=True)
class RunSummary:
    exit_code: int
    counts: dict[str, int]
    wall_seconds: float
    cost_usd: float | None
    stopped: str | None = None
    ran: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Attempt:
    task: str
    number: int
    observer: Observer
    started: float  # wall clock, just before its process started
    started_iso: str = ""  # these two once the slots freed at the same time are filled (_started)
    fingerprint: str = ""  # of the brief it got, its settings and its inputs
    ended: bool = False  # its result has gone to the loop (_ended)


@dataclass(slots=True)
class _Made:
    """An attempt's launch, made before its start: ``Runner._make_launch``."""

    number: int
    brief: str
    path: Path  # the brief's file
    version: tuple[int, ...] | None  # the brief file's (store.file_version) when it was read
    job: Job
    backend: Backend
    observer: Observer
    launch: Launch
    at: float  # loop clock


@dataclass(slots=True)
class _Done:
    task: str
    attempt: int
    run: ProcessRun
    result: AgentResult
    finished: float  # wall clock, when the attempt ended (its result may be written later)


class _InFlight:
    """The attempts in flight, each an asyncio task, and the outcomes they hand back to the loop.

    Plain asyncio rather than an anyio task group and memory stream: those cost about 50 µs more
    per attempt, a tenth of the runner's whole time on a no-op task. What the group gave is done
    here: an attempt that raises wakes the loop, which raises it (``check``), and ``cancel``
    cancels every attempt and waits until each has stopped its process group and reaped it.
    """

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.tasks: set[asyncio.Task[None]] = set()
        self.outcomes: deque[_Done] = deque()
        self.error: BaseException | None = None
        self.wakeup = Wakeup(self.loop)

    def start(self, attempt: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(attempt)
        self.tasks.add(task)
        task.add_done_callback(self._ended)

    def deliver(self, done: _Done) -> None:
        self.outcomes.append(done)
        self.wakeup.wake()

    def _ended(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.fail(task.exception())

    def fail(self, error: BaseException | None) -> None:
        """Have the loop raise ``error`` (the first one counts)."""
        if error is not None and self.error is None:
            self.error = error
            self.wakeup.wake()

    def check(self) -> None:
        """Raise what an attempt raised (a bug, not a failed task: those are outcomes)."""
        if self.error is not None:
            raise self.error

    async def wait(self, timeout: float | None) -> None:
        """Until an outcome is there, an attempt has raised, or ``timeout`` seconds have passed."""
        if self.outcomes or self.error is not None or timeout == 0:
            return
        await self.wakeup.wait(math.inf if timeout is None else self.loop.time() + timeout)

    async def cancel(self) -> None:
        """Cancel every attempt still running and wait for each to end (its process reaped)."""
        # An attempt's process starts before its task runs (``Executor.start``), and a task
        # cancelled before its first step never runs its coroutine: nothing would stop or reap
        # that process. One turn of the loop lets every task take that step first.
        await asyncio.sleep(0)
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


class Runner:
    def __init__(
        self,
        workspace: Workspace,
        options: RunOptions | None = None,
        reporter: Reporter | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.ws = workspace
        self.options = options or RunOptions()
        self.reporter = reporter or Reporter()
        self.executor = executor or LocalExecutor()
        # While a batch of completed attempts is handled (``_begin_batch`` to ``_end_batch``): those
        # whose result is not written yet, and the task_started events waiting for the batch's own.
        self._settling: dict[str, tuple[_Done, _Attempt]] = {}
        self._held: list[dict[str, Any]] | None = None
        self._stoppable: asyncio.Task[Any] | None = None  # what Ctrl-C cancels now
        self._parked = False  # the loop is waiting for an outcome (or for a time): see _ended

    # --- setup ----------------------------------------------------------------------------------

    def run(self) -> RunSummary:
        lock = WorkspaceLock(self.ws.lock_file, self.ws.root.name)
        lock.acquire()
        try:
            # Plain asyncio, not anyio.run: anyio's asyncio backend costs ~30 ms to import, 2% of
            # a 1,000-task run, and the loop needs none of it (one task, two signal handlers,
            # two kinds of writes in worker threads).
            return asyncio.run(self._main())
        finally:
            self.reporter.flush()
            lock.release()

    def _prepare(self) -> None:
        for directory in (self.ws.root, self.ws.tasks_dir, self.ws.results_dir, self.ws.state_dir):
            store.clean_temp_files(directory)
        plan = load_plan(self.ws.plan_file)
        overrides: dict[str, Any] = {}
        if self.options.max_parallel is not None:
            overrides["max_parallel"] = self.options.max_parallel
        if self.options.backend is not None:
            overrides["backend"] = self.options.backend
        if self.options.fail_fast is not None:
            overrides["fail_fast"] = self.options.fail_fast
        if self.options.max_cost is not None:
            overrides["max_cost"] = self.options.max_cost
        if self.options.aggregate is not None:
            overrides["aggregate"] = self.options.aggregate
        if overrides:
            plan.settings = plan.settings.replace(**overrides)
        self.profiles = Profiles(self.ws)
        check_plan(plan, self.ws, self.profiles)
        self.plan = plan
        for directory in (self.ws.results_dir, self.ws.logs_dir, self.ws.state_dir):
            directory.mkdir(parents=True, exist_ok=True)
        # What is in results/ and logs/ now: a file known not to be there needs no stat (to keep its
        # permissions) or unlink (a stale log) before it is written.
        self.result_names = set(os.listdir(self.ws.results_dir))
        self.log_names = set(os.listdir(self.ws.logs_dir))
        self.base_env = dict(os.environ)  # what every attempt's environment starts from
        # The briefs as they are on disk after rendering, hand edits included, are what agents get.
        # Each is read again when its task starts rather than kept: at 10,000 tasks they would
        # hold tens of megabytes for the whole run.
        briefs = render_briefs(plan, self.ws).bodies
        # One set of templates for the whole run: looking for changed overrides per result costs
        # a directory scan per task.
        self.templates = Templates.of(self.ws)
        self.settings: dict[str, Settings] = {}
        signatures: dict[str, str] = {}
        for task in plan.tasks.values():
            settings = self.profiles.settings_for(plan, task)
            self.settings[task.id] = settings
            signatures[task.id] = settings_signature(settings, self.profiles.signature(task))
        self.signatures = signatures
        self.order = {task_id: i for i, task_id in enumerate(plan.tasks)}
        self.topo = topological_order(plan.dag, self.order)
        self.results = read_results(plan, self.ws, self.result_names)
        self.expected = expected_fingerprints(plan, self.topo, briefs, self.signatures, self.results)
        self.views = {v.id: v for v in collect(plan, self.ws)}

    # --- main loop ------------------------------------------------------------------------------

    async def _main(self) -> RunSummary:
        started = time.time()
        self._prepare()
        plan = self.plan
        orphans = await settle_orphans(self.ws, wait=self.options.wait_for_orphans, grace=plan.settings.kill_grace)
        self._resume_sessions = {o.task: o.session_id for o in orphans if o.session_id}
        loop = asyncio.get_running_loop()
        # The loop's own clock: what anyio.current_time() reads, without looking up the loop each time.
        self.clock = loop.time
        self.journal = Journal(self.ws.journal_file, loop.call_soon)
        self.journal.begin()  # the orphans are settled: their lines can go
        for orphan in orphans:
            if orphan.alive:
                self._emit("notice", message=f"stopped {orphan.task}'s attempt left running by a dead runner")
        selection = select(
            plan, self.topo, self.expected, self.results, only=self.options.only, rerun=self.options.rerun
        )
        self.selected = selection.run
        for task_id in self.selected:
            meta = self.results.get(task_id) or {}
            if meta.get("status") == "interrupted" and meta.get("session_id"):
                self._resume_sessions.setdefault(task_id, str(meta["session_id"]))
        self.queue = ReadyQueue(
            plan.dag,
            priority={t.id: t.priority for t in plan.tasks.values()},
            order=self.order,
            selected=self.selected,
            done=selection.done,
        )
        for task_id in self.selected:
            view = self.views[task_id]
            view.status = PENDING if all(d in selection.done for d in plan.tasks[task_id].dependencies) else WAITING
        self.running: dict[str, _Attempt] = {}
        self.attempts: dict[str, int] = {}
        self.retries_used: dict[str, int] = {}
        self.delayed: dict[str, float] = {}  # task -> monotonic time it may start again
        self.blocked: dict[str, str] = {}  # backend -> why no more tasks start on it
        self.cap = plan.settings.max_parallel
        self.ramp_at: float | None = None
        self.stopped: str | None = None
        self.interrupted = False
        self.cost = 0.0
        self.cost_seen = False
        self.pause = Pause(self.ws)
        self.last_flush = -math.inf  # the loop's first turn writes the plan's status sections
        self.plan_write: asyncio.Future[None] | None = None  # the last status update of master_plan.md
        self.threads: set[asyncio.Future[None]] = set()  # writes in worker threads, not finished yet
        self.unsynced: list[Path] = []
        self.flush_every = 1.0
        self._backends: dict[str, Backend] = {}
        self.ahead: dict[str, _Made] = {}  # task -> its next attempt's launch, made ahead of its start
        self._emit(
            "run_started",
            to_run=len(self.selected),
            already_done=len(selection.done),
            max_parallel=self.cap,
            workspace=str(self.ws.root),
        )

        self.in_flight = _InFlight()
        # Whether a batch may begin where an attempt's end is seen (_ended): not where outcomes
        # seen together decide together whether the run goes on (a failure, the cost limit).
        self._end_early = not plan.settings.fail_fast and plan.settings.max_cost is None
        # Ctrl-C and SIGTERM stop the loop (or the agent aggregating after it), once: from then on
        # until the run has returned, another one changes nothing, so that the clean-up (every
        # process group stopped and reaped, every task recorded) is never cut short.
        signals = (signal.SIGINT, signal.SIGTERM)
        for number in signals:
            loop.add_signal_handler(number, self._interrupt)
        try:
            try:
                await self._stoppably(self._loop())
            finally:
                await self.in_flight.cancel()  # each attempt stops its process group and reaps it
                self._finish_interrupted()
                await self._threads_finished()
                self.journal.finish()
                self.journal.close()
            self.in_flight.check()  # a write that failed in a worker thread
            synthesis = ""
            if plan.settings.aggregate == "agent" and not self.interrupted:
                synthesis = await self._stoppably(self._synthesize()) or ""
            return self._finish(started, synthesis)
        finally:
            for number in signals:
                loop.remove_signal_handler(number)

    def _interrupt(self) -> None:
        if not self.interrupted:
            self.interrupted = True
            if self._stoppable is not None:
                self._stoppable.cancel()

    async def _stoppably(self, work: Coroutine[Any, Any, _T]) -> _T | None:
        """``work`` as a task that Ctrl-C or SIGTERM cancels (``_interrupt``); ``None`` when one did."""
        if self.interrupted:
            work.close()
            return None
        task = asyncio.get_running_loop().create_task(work)
        self._stoppable = task
        try:
            return await task
        except asyncio.CancelledError:
            if self.interrupted and task.cancelled():
                return None
            raise  # cancelled from outside the run
        finally:
            self._stoppable = None

    async def _synthesize(self) -> str:
        from orchestrator.errors import AgentCallError
        from orchestrator.run.synthesis import synthesize_async

        self._emit("notice", message="aggregating with an agent")
        self.reporter.flush()  # the agent takes a while: say so now
        try:
            return await synthesize_async(self.plan, self.ws)
        except (AgentCallError, OrchestratorError) as exc:
            self.stopped = self.stopped or str(exc)
            self._emit("notice", message=str(exc))
            return ""

    async def _loop(self) -> None:
        in_flight = self.in_flight
        while True:
            now = self._release_due()
            self._fill()
            self._flush()  # when due: the first turn, then about once a second
            if not self.running and (self.stopped or (not self.delayed and len(self.queue) == 0)):
                break  # once stopped, a pending retry is not waited for: it will not start
            wake = [when for when in self.delayed.values()]
            if self.ramp_at is not None:
                wake.append(self.ramp_at)
            paused_for = self.pause.remaining()
            if paused_for > 0:
                wake.append(now + paused_for)
            if self.running:
                wake.append(self.last_flush + self.flush_every)
            timeout = max(0.0, min(wake) - self.clock()) if wake else None
            self._flush_lines()  # what this turn of the loop wrote, in one write each
            self._make_ahead()
            self._parked = True
            try:
                await in_flight.wait(timeout)
            finally:
                self._parked = False
            in_flight.check()
            # Everything already finished is taken before deciding again; a batch of them may
            # have been begun already, by the callback that saw the last one end (_ended).
            try:
                batch = self._take_quiet() or self._held is not None
                if batch:
                    await asyncio.sleep(0)  # the tasks just started take their first step
                    # Attempts seen to end during that step (the loop was not waiting, so their
                    # callbacks began nothing) have their slots filled before this batch's results
                    # are written, and join it; a few times at most, so results are not put off.
                    for _ in range(_JOIN_AT_MOST):
                        if not self._joinable() or not self._take_quiet():
                            break
                        await asyncio.sleep(0)
            finally:
                self._end_batch()  # (nothing to do when no batch is open)
            if not batch:
                while in_flight.outcomes:  # one at a time: if one raises, the rest are still there
                    self._handle(in_flight.outcomes.popleft())

    def _joinable(self) -> bool:
        """Whether the outcomes waiting may join the batch being handled: there are some, no
        attempt has raised, and none is of a task this batch started (its start is reported
        when the batch ends, and must come before its completion)."""
        outcomes = self.in_flight.outcomes
        if not outcomes or self.in_flight.error is not None:
            return False
        held = self._held or []
        return not any(event["task"] == done.task for done in outcomes for event in held)

    def _flush_lines(self) -> None:
        """The journal's lines and the reporter's events gathered since the last call."""
        self.journal.flush()
        self.reporter.flush()

    def _release_due(self) -> float:
        """Requeue the retries whose wait is over and give back a slot the ramp allows; returns now."""
        now = self.clock()
        for task_id, when in list(self.delayed.items()):
            if when <= now:
                del self.delayed[task_id]
                self.queue.push_back(task_id)
        if self.ramp_at is not None and now >= self.ramp_at:
            self.cap = min(self.plan.settings.max_parallel, self.cap + 1)
            self.ramp_at = None if self.cap >= self.plan.settings.max_parallel else now + _RAMP_INTERVAL
        return now

    def _completes_quietly(self, batch: Iterable[_Done]) -> bool:
        """Whether every attempt in ``batch`` completed its task, and nothing in it stops the run
        or changes what may start (a failure, a retry, a pause, a cost limit reached)."""
        limit = self.plan.settings.max_cost
        cost = self.cost
        some = False
        for done in batch:
            if not done.result.completed:
                return False
            some = True
            if done.result.cost_usd is not None:
                cost += done.result.cost_usd  # in the order, and so with the rounding, of _begin_batch
        return some and (limit is None or cost < limit)

    def _take_quiet(self) -> bool:
        """Begin a batch of the outcomes waiting, if every one of them completes quietly."""
        outcomes = self.in_flight.outcomes
        if not self._completes_quietly(outcomes):
            return False
        batch = list(outcomes)
        outcomes.clear()
        self._begin_batch(batch)
        return True

    def _begin_batch(self, batch: list[_Done]) -> None:
        """Completed attempts, with the freed slots filled first: the next tasks start before the
        result files of these are written (``_end_batch``), which would otherwise stand between one
        task's end and the next one's start. What starts is decided as if the results were
        written (``queue.complete`` first), except that of tasks equally urgent but for table
        order, one whose inputs are written goes first; a task that needs one of them (its
        input, its fingerprint) has that result written before it starts. The ``task_started``
        events wait for the batch's ``task_completed`` ones, so the event stream never shows more
        running than the cap. A batch begun before this one's results were written is joined."""
        if self._held is None:
            self._held = []
        settling = self._settling
        for done in batch:
            attempt = self.running.pop(done.task)
            if done.result.cost_usd is not None:
                self.cost += done.result.cost_usd
                self.cost_seen = True
            settling[done.task] = (done, attempt)
            self.queue.complete(done.task)
        self._release_due()  # as the top of the loop would before filling: a retry may be due
        self._fill()

    def _end_batch(self) -> None:
        """Write the results ``_begin_batch`` left, then report the starts it held back."""
        held, settling = self._held or [], self._settling
        try:
            while settling:
                self._settle(next(iter(settling)))
        finally:
            self._held = None
            for event in held:  # stamped now: they come after the batch's own events
                self.reporter.event({**event, "time": now_iso()})

    def _settle(self, task_id: str) -> None:
        """Write the result of ``task_id``, completed in the batch being handled."""
        done, attempt = self._settling.pop(task_id)
        self.journal.ended(task_id, done.attempt)
        self._complete(done, attempt, queued=True)

    def _allowed(self, task_id: str) -> bool:
        profile = self.plan.tasks[task_id].profile
        limit = self.profiles.max_parallel(profile)
        if limit is None:
            return True
        busy = sum(1 for t in self.running if self.plan.tasks[t].profile == profile)
        return busy < limit

    def _inputs_written(self, task_id: str) -> bool:
        settling = self._settling
        return not any(dep in settling for dep in self.plan.tasks[task_id].dependencies)

    def _fill(self) -> None:
        if self.interrupted or self.pause.remaining() > 0:
            return
        started: list[tuple[_Attempt, str]] = []
        try:
            while not self.stopped and len(self.running) < self.cap:
                # Of tasks equally urgent but for table order, one whose inputs are all written
                # goes first: another would wait for a result to be written before it starts.
                task_id = self.queue.pop(self._allowed, self._inputs_written if self._settling else None)
                if task_id is None:
                    return
                backend_name = self.settings[task_id].backend
                if backend_name in self.blocked:
                    self._fail(task_id, f"not started: {self.blocked[backend_name]}", status=SKIPPED)
                    continue
                self._start(task_id, started)
        finally:
            # What the tasks just started need no more than their processes: every freed slot
            # is filled first.
            for attempt, brief in started:
                self._started(attempt, brief)

    def _backend(self, name: str) -> Backend:
        backend = self._backends.get(name)
        if backend is None:
            backend = self._backends[name] = backends.get(name)
        return backend

    def _start(self, task_id: str, started: list[tuple[_Attempt, str]]) -> None:
        """Start the next attempt of ``task_id``: its process is running when this returns (with
        ``LocalExecutor``); what else there is to do about it ``_started`` does, once ``_fill``
        has started every task it can."""
        number = self.attempts.get(task_id, 0) + 1
        self.attempts[task_id] = number
        task = self.plan.tasks[task_id]
        settling = self._settling
        if settling:  # completed just now: what this task gets from them must be written first
            for dep in task.dependencies:
                if dep in settling:
                    self._settle(dep)
        made = self.ahead.pop(task_id, None)
        if made is None or not self._still_good(made, number):
            made = self._make_launch(task_id, number)
        if made is None:
            self._fail(task_id, f"its brief {self.ws.brief_name(task)} is gone: run again to render it")
            return
        job, backend, observer, launch, brief = made.job, made.backend, made.observer, made.launch, made.brief
        on_line, on_start = self._callbacks(job, observer)
        self.journal.spawning(task_id, task.agent, number)  # so that a kill -9 from here on leaves a trace
        attempt = _Attempt(task_id, number, observer, time.time())

        def on_end(run: ProcessRun) -> None:
            self._ended(attempt, job, backend, launch, run, early=True)

        waiter = self.executor.start(launch, on_line=on_line, on_start=on_start, on_end=on_end)
        self.running[task_id] = attempt
        self.in_flight.start(self._attempt(attempt, job, backend, launch, waiter))
        started.append((attempt, brief))

    def _make_launch(self, task_id: str, number: int) -> _Made | None:
        """Everything attempt ``number`` of ``task_id`` needs to start; ``None`` if its brief is gone."""
        task = self.plan.tasks[task_id]
        settings = self.settings[task_id]
        path = self.ws.brief(task)
        version = store.file_version(path)  # before the read: an edit in between is seen as one
        brief = store.read_body(path)
        if brief is None:
            return None
        backend = self._backend(settings.backend)
        inputs = tuple(self.ws.result(self.plan.tasks[d]) for d in task.dependencies)
        job = Job(
            task=task,
            settings=settings,
            brief=brief,
            prompt=build_prompt(self.plan, self.ws, task, brief, settings.input_cap) if backend.reads_prompt else "",
            project_dir=self.ws.project_dir,
            workspace=self.ws.root,
            attempt=number,
            inputs=inputs,
            resume_session=self._resume_sessions.get(task_id) if settings.resume_sessions else None,
            profile=self.profiles.get(task.profile),
        )
        observer = backend.observer(job)
        stem = self.ws.log_stem(task, number)
        logs = self.log_names
        names = (stem.name + ".out", stem.name + ".err")
        absent = names[0] not in logs and names[1] not in logs
        logs.update(names)  # from here on they may be there
        launch = build_launch(
            backend.invocation(job), job, stem, self._task_env(job), base_env=self.base_env, logs_absent=absent
        )
        return _Made(number, brief, path, version, job, backend, observer, launch, self.clock())

    def _make_ahead(self) -> None:
        """Make the launches of the tasks that start next, while every slot is busy and nothing
        has ended yet: a freed slot is then filled with little more than the spawn itself.

        Only shell tasks: what another backend reads (a prompt) is written to a file with its
        launch, which would be left behind for an attempt that may never start, and an agent's
        minutes make the time saved nothing. A launch made ahead is used only while it is fresh
        (``_still_good``): its brief unchanged on disk, and made less than ``_AHEAD_FOR`` ago,
        so that what it found (the program on ``$PATH``) is as good as found at the start.
        """
        ahead = self.ahead
        if self.in_flight.outcomes or self.stopped or len(self.running) < self.cap or len(self.queue) == 0:
            if ahead and self.stopped:
                ahead.clear()
            return
        next_up = self.queue.peek(min(self.cap, _AHEAD))
        for task_id in list(ahead):
            if task_id not in next_up:
                del ahead[task_id]
        for task_id in next_up:
            if task_id in ahead or self._backend(self.settings[task_id].backend).reads_prompt:
                continue
            if child_exited():  # an attempt has ended: its slot comes first
                return
            made = self._make_launch(task_id, self.attempts.get(task_id, 0) + 1)
            if made is not None:
                ahead[task_id] = made

    def _still_good(self, made: _Made, number: int) -> bool:
        return (
            made.number == number
            and self.clock() - made.at < _AHEAD_FOR
            and store.file_version(made.path) == made.version
        )

    def _started(self, attempt: _Attempt, brief: str) -> None:
        """The rest of starting ``attempt``, after its process: its fingerprint, view and event."""
        task_id, number = attempt.task, attempt.number
        task = self.plan.tasks[task_id]
        upstream = upstream_of(task.dependencies, self.results)  # all written before it started
        attempt.fingerprint = fingerprint(brief, self.signatures[task_id], upstream)
        attempt.started_iso = iso_at(attempt.started)
        view = self.views[task_id]
        view.status = RUNNING
        view.started = attempt.started_iso if number == 1 or not view.started else view.started
        view.attempts = number
        self._emit("task_started", task=task_id, agent=task.agent, name=task.title, attempt=number)

    def _callbacks(self, job: Job, observer: Observer) -> tuple[LineCallback | None, StartCallback]:
        """What the process's supervision calls: with each stdout line (agents that stream events
        only), and with its process group once it has one."""
        task, journal = job.task, self.journal
        session: list[str | None] = [None]  # the session id last journaled

        def started(pgid: int) -> None:
            journal.started(task.id, task.agent, job.attempt, pgid, started_since_bound())

        def feed(line: bytes) -> None:
            observer.feed(line)
            # Keep the agent's session id with the attempt, so a run that follows a kill -9 can resume it.
            if observer.session_id and observer.session_id != session[0]:
                session[0] = observer.session_id
                journal.session(task.id, job.attempt, observer.session_id)

        return (None if type(observer) is Observer else feed), started

    async def _attempt(
        self, attempt: _Attempt, job: Job, backend: Backend, launch: Launch, waiter: Coroutine[Any, Any, ProcessRun]
    ) -> None:
        self._ended(attempt, job, backend, launch, await waiter)

    def _ended(
        self, attempt: _Attempt, job: Job, backend: Backend, launch: Launch, run: ProcessRun, *, early: bool = False
    ) -> None:
        """``attempt`` ended as ``run`` says: its result goes to the loop, once.

        ``early``: from the event loop's callback that saw the exit (``on_end``), a turn or two
        before the attempt's task would have it. While the loop waits (``_parked``), a batch of
        quiet completions is begun right here, so the freed slot is filled without waiting for
        the loop's task to wake: the decision the loop would make next, for the attempts seen to
        end so far (``_end_early``). An error is then raised by the loop, not lost in the callback."""
        if attempt.ended:
            return
        attempt.ended = True
        finished = time.time()
        # No collection of cycles between the exit and the next spawn: one that falls due here
        # runs once the freed slot is filled (GC pauses were ~1 ms of W2's exit-to-spawn time).
        collecting = gc.isenabled()
        gc.disable()
        try:
            result = backend.interpret(job, run, launch.stdout, launch.stderr, attempt.observer)
            self.in_flight.deliver(_Done(attempt.task, attempt.number, run, result, finished))
            if self._parked and self._end_early and not self.interrupted:
                self._take_quiet()
        except BaseException as exc:
            if not early:
                raise
            self.in_flight.fail(exc)
        finally:
            if collecting:
                gc.enable()

    def _task_env(self, job: Job) -> dict[str, str]:
        return {
            **attempt_environment(self.ws.root, job.task.id, job.attempt),
            "ORCHESTRATOR_AGENT": job.task.agent,
            "ORCHESTRATOR_RESULTS_DIR": str(self.ws.results_dir),
            "ORCHESTRATOR_INPUTS": "\n".join(str(p) for p in job.inputs),
        }

    # --- outcomes -------------------------------------------------------------------------------

    def _handle(self, done: _Done) -> None:
        attempt = self.running.pop(done.task)
        self.journal.ended(done.task, done.attempt)
        result = done.result
        if result.cost_usd is not None:
            self.cost += result.cost_usd
            self.cost_seen = True
        settings = self.settings[done.task]
        if not result.completed and result.error_class != USAGE_LIMIT:
            # A session that could not be continued is not offered again: the next attempt starts fresh.
            self._resume_sessions.pop(done.task, None)
        if result.completed:
            self._complete(done, attempt)
        elif result.error_class == USAGE_LIMIT:
            until = self.pause.start(result.reset_at, settings.backend, result.message or "usage limit reached")
            self.delayed[done.task] = self.clock() + self.pause.remaining()
            self.views[done.task].status = WAITING
            self._emit("run_paused", task=done.task, until=until, reason=result.message or "usage limit reached")
        elif result.error_class == AUTH:
            reason = result.message or f"{settings.backend}: not authenticated"
            self.blocked[settings.backend] = f"{settings.backend} is not logged in ({reason})"
            self._write_result(done, attempt, FAILED, reason)
            self._fail(done.task, reason, written=True)
        elif result.retryable and self.retries_used.get(done.task, 0) < settings.retries:
            used = self.retries_used[done.task] = self.retries_used.get(done.task, 0) + 1
            ceiling = min(settings.backoff_cap, settings.backoff_base * settings.backoff_factor ** (used - 1))
            delay = random.uniform(0, ceiling)  # full jitter
            if result.error_class == RATE_LIMIT:
                delay = max(delay, result.retry_after or 0.0)
                self.cap = 1
                self.ramp_at = self.clock() + max(delay, _RAMP_INTERVAL)
            self.delayed[done.task] = self.clock() + delay
            self.views[done.task].status = RETRYING
            self.journal.retrying(done.task, done.attempt)
            reason = result.message or "failed"
            self._emit(
                "task_retrying", task=done.task, agent=self.plan.tasks[done.task].agent,
                attempt=done.attempt + 1, delay=delay, reason=reason, error_class=result.error_class,
            )  # fmt: skip
        else:
            reason = result.message or "failed"
            if result.error_class not in {START, None} and done.attempt > 1:
                reason += f" (after {done.attempt} attempts)"
            self._write_result(done, attempt, FAILED, reason)
            self._fail(done.task, reason, written=True)
            if self.plan.settings.fail_fast and not self.stopped:
                self.stopped = f"--fail-fast: {done.task} failed"
        limit = self.plan.settings.max_cost
        if limit is not None and self.cost >= limit and not self.stopped:
            self.stopped = f"cost limit reached: ${self.cost:.4f} of ${limit:.2f}"

    def _complete(self, done: _Done, attempt: _Attempt, *, queued: bool = False) -> None:
        """``queued``: the ready queue already knows (``_begin_batch``)."""
        task = self.plan.tasks[done.task]
        # A completed agent can still carry a warning (tool calls it was denied): keep it visible.
        meta = self._write_result(done, attempt, COMPLETED, done.result.message)
        self.results[done.task] = meta
        if not queued:
            self.queue.complete(done.task)
        for child in self.plan.dag.successors(done.task):
            view = self.views[child]
            if view.status == WAITING and all(
                self.views[d].status == COMPLETED for d in self.plan.tasks[child].dependencies
            ):
                view.status = PENDING
        self._emit(
            "task_completed", task=task.id, agent=task.agent, duration=meta["duration"],
            attempts=done.attempt, cost_usd=done.result.cost_usd, result=meta["result_file"],
            warning=done.result.message,
        )  # fmt: skip

    def _fail(self, task_id: str, reason: str, *, status: str = FAILED, written: bool = False) -> None:
        """``task_id`` will not complete in this run: record it and skip everything downstream."""
        task = self.plan.tasks[task_id]
        if not written:
            self._write_simple(task, status, reason)
        self._emit("task_failed" if status == FAILED else "task_skipped", task=task_id, agent=task.agent, reason=reason)
        for child in self.queue.fail(task_id):
            self.delayed.pop(child, None)
            child_reason = f"upstream {task_id} {'failed' if status == FAILED else 'did not run'}"
            self._write_simple(self.plan.tasks[child], SKIPPED, child_reason)
            self._emit("task_skipped", task=child, agent=self.plan.tasks[child].agent, reason=child_reason)

    def _write_result(self, done: _Done, attempt: _Attempt, status: str, reason: str | None) -> dict[str, Any]:
        task = self.plan.tasks[done.task]
        result = done.result
        settings = self.settings[done.task]
        finished = done.finished
        # A log exists only if the attempt wrote to that stream.
        logs = [
            self.ws.log_name(task, done.attempt, stream)
            for stream, size in (("out", done.run.stdout_bytes), ("err", done.run.stderr_bytes))
            if size
        ]
        meta: dict[str, Any] = {
            "task": task.id,
            "agent": task.agent,
            "name": task.title,
            "status": status,
            "attempts": done.attempt,
            "exit_code": result.exit_code if result.exit_code is not None else done.run.exit_code,
            "reason": reason,
            "error_class": None if status == COMPLETED else result.error_class,
            "started": attempt.started_iso,
            "finished": iso_at(finished),
            "duration": round(finished - attempt.started, 3),
            "backend": settings.backend,
            "fingerprint": attempt.fingerprint,
            "output_hash": store.sha256(result.text)[:16],
            "session_id": result.session_id or attempt.observer.session_id,
            "cost_usd": result.cost_usd,
            "tokens": result.tokens,
            "turns": result.turns,
            "permission_denials": len(result.permission_denials) or None,
            "logs": logs,
        }
        meta = {k: v for k, v in meta.items() if v is not None or k in {"reason", "exit_code"}}
        body = self.templates.render(
            "result.md.j2",
            task=task,
            status=status,
            icon="✅" if status == COMPLETED else "❌",
            reason=reason or "",
            output=result.text.rstrip(),
            stderr_tail=tail(self.ws.log(task, done.attempt, "err"), 3000).rstrip() if done.run.stderr_bytes else "",
            logs=logs,
        )
        self._write(self.ws.result(task), meta, body)
        meta["result_file"] = self.ws.result_name(task)
        self._update_view(task, meta)
        return meta

    def _write_simple(self, task: Task, status: str, reason: str, session_id: str | None = None) -> None:
        meta: dict[str, Any] = {
            "task": task.id,
            "agent": task.agent,
            "name": task.title,
            "status": status,
            "attempts": self.attempts.get(task.id, 0),
            "reason": reason,
            "finished": now_iso(),
            "backend": self.settings[task.id].backend,
        }
        if session_id:
            meta["session_id"] = session_id
        icon = {SKIPPED: "⏭️", FAILED: "❌"}.get(status, "⏹️")
        self._write(self.ws.result(task), meta, f"# {icon} {task.id} {status}: {reason}\n")
        meta["result_file"] = self.ws.result_name(task)
        self._update_view(task, meta)

    def _update_view(self, task: Task, meta: dict[str, Any]) -> None:
        view = self.views[task.id]
        if view.status == RETRYING:  # its retry will not come: status no longer shows it retrying
            self.journal.settled(task.id)
        view.status = meta["status"]
        view.reason = meta.get("reason")
        view.started = meta.get("started")
        view.finished = meta.get("finished")
        view.duration = meta.get("duration")
        view.attempts = int(meta.get("attempts") or 0)
        view.cost_usd = meta.get("cost_usd")
        tokens = meta.get("tokens")
        view.tokens = sum(tokens.values()) if isinstance(tokens, dict) else None
        view.session_id = meta.get("session_id")
        view.result_file = meta.get("result_file")

    def _finish_interrupted(self) -> None:
        # Completed in a batch not written yet (begun by a callback just before the interrupt, or
        # whose handling raised): they still count, and the starts it held back are reported.
        self._end_batch()
        outcomes = self.in_flight.outcomes
        while outcomes:  # attempts that finished just before the interrupt still count
            done = outcomes.popleft()
            if done.task in self.running:
                self._handle(done)
        for task_id, attempt in list(self.running.items()):
            task = self.plan.tasks[task_id]
            self.journal.ended(task_id, attempt.number)
            self._write_simple(task, INTERRUPTED, "interrupted by the user", attempt.observer.session_id)
            self._emit("task_interrupted", task=task_id, agent=task.agent)
        self.running.clear()
        if self.interrupted:  # waiting to retry (or for a pause to end): that next attempt will not come
            for task_id in list(self.delayed):
                task = self.plan.tasks[task_id]
                self._write_simple(task, INTERRUPTED, "interrupted by the user before its next attempt")
                self._emit("task_interrupted", task=task_id, agent=task.agent)
            self.delayed.clear()

    def _finish(self, started: float, synthesis: str = "") -> RunSummary:
        views = list(self.views.values())
        if not self.interrupted:
            # Tasks never started (fail-fast, cost limit): say why instead of leaving them pending.
            for task_id in self.queue.drain() + list(self.delayed):
                if self.views[task_id].status in {PENDING, WAITING, RETRYING}:
                    self._fail(task_id, f"not started: {self.stopped or 'run stopped'}", status=SKIPPED)
        self.pause.clear_if_over()
        store.sync_files(self.unsynced)
        self.unsynced = []
        write_final_output(self.plan, self.ws, views, synthesis)
        update_plan_file(self.plan, self.ws, views)
        found = counts(views)
        selected = set(self.selected)
        bad = any(self.views[t].status != COMPLETED for t in selected)
        code = EXIT_INTERRUPTED if self.interrupted else (EXIT_FAILED if bad or self.stopped else EXIT_OK)
        wall = time.time() - started
        summary = RunSummary(code, found, wall, self.cost if self.cost_seen else None, self.stopped, self.selected)
        self._emit(
            "run_finished", counts=found, wall_seconds=round(wall, 3), exit_code=code,
            cost_usd=summary.cost_usd, stopped=self.stopped or ("interrupted" if self.interrupted else None),
            final_output=self.ws.relative(self.ws.final_output),
        )  # fmt: skip
        return summary

    def _write(self, path: Path, meta: dict[str, Any], body: str) -> None:
        """A result file: atomic now, made durable by the next flush (at most about a second later).

        One fsync per finished task would cost more than the rest of the runner's work on it; a
        power cut inside that second can only lose results, and a lost result just runs again.
        """
        names = self.result_names
        store.write_document(path, meta, body, durable=False, parent_exists=True, exists=path.name in names)
        names.add(path.name)
        self.unsynced.append(path)

    def _flush(self) -> None:
        """When due: make the results written since the last time durable, and rewrite the status
        sections of master_plan.md. The text is made here; the writes (fsyncs) happen in worker
        threads, so that the loop goes on starting and reaping meanwhile."""
        now = self.clock()
        if now - self.last_flush < self.flush_every:
            return
        if self.plan_write is not None and not self.plan_write.done():  # still being written: wait a round
            self.last_flush = now
            return
        if self.unsynced:
            paths, self.unsynced = self.unsynced, []
            self._in_thread(lambda: store.sync_files(paths))
        began = time.perf_counter()
        data = updated_plan_file(self.plan, self.ws, list(self.views.values()))
        if data is not None:
            plan_file = self.ws.plan_file
            self.plan_write = self._in_thread(lambda: store.write_bytes(plan_file, data))
        cost = time.perf_counter() - began
        # A big plan file costs more to rewrite; never spend more than a tenth of the time on it.
        self.flush_every = max(1.0, cost * 10)
        self.last_flush = self.clock()

    def _in_thread(self, work: Callable[[], None]) -> asyncio.Future[None]:
        """Run ``work`` in a worker thread while the loop goes on. An error it raises is raised
        by the loop; the run waits for every such write before it ends (a thread cannot be
        cancelled, and the final writes must come after it)."""
        future = asyncio.get_running_loop().run_in_executor(None, work)
        self.threads.add(future)

        def ended(finished: asyncio.Future[None]) -> None:
            self.threads.discard(finished)
            if not finished.cancelled():
                self.in_flight.fail(finished.exception())

        future.add_done_callback(ended)
        return future

    async def _threads_finished(self) -> None:
        while self.threads:
            await asyncio.wait(set(self.threads))

    def _emit(self, kind: str, **data: Any) -> None:
        event = {"event": kind, "time": now_iso(), **data}
        if self._held is not None and kind == "task_started":
            self._held.append(event)
        else:
            self.reporter.event(event)


def run(workspace: Workspace, options: RunOptions | None = None, reporter: Reporter | None = None) -> RunSummary:
    """Run the plan in ``workspace`` to completion; see ``Runner``."""
    return Runner(workspace, options, reporter).run()
