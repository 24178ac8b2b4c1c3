"""The runner: real processes, in dependency order, within limits, with nothing lost.

Lifecycle of one ``Runner.run()``:

1. Check the plan (a bad one is a ``PlanError`` with nothing written), then take the workspace
   lock (a second runner gets ``LockedError``, exit 3).
2. ``prepare``: render the briefs (hand edits kept), keep the agent ids, decide what runs.
3. Settle the attempts a dead runner left (its executor stops them), begin this run's lines in
   the journal and the event log.
4. The ``Scheduler``'s loop, in a cancel scope that Ctrl-C, SIGTERM and SIGHUP cancel (once: a
   second signal changes nothing until the run has returned, so the clean-up is never cut
   short). Beside it, about once a second, results are made durable and the status blocks of
   master_plan.md rewritten, in a worker thread; and ``LiveQueue`` takes tasks added to the plan,
   cancels and retries while the run goes on.
5. Record what was left undone; aggregate (by an agent if asked); always write final_output.md
   and the status blocks; stop what the attempts left that was handed to the runner and no
   attempt's end stopped (``Executor.close``); release the lock.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import anyio

from orchestrator import timing
from orchestrator.errors import AgentCallError, OrchestratorError, workspace_error_from
from orchestrator.executors import registry as executors
from orchestrator.executors.base import Executor, Leftover
from orchestrator.executors.local import LocalExecutor, children_waited_on_pidfds
from orchestrator.moments import now_iso
from orchestrator.output.final import Synthesis, edited_final_notice, write_final_output
from orchestrator.output.reporter import Recording, Reporter, to_stderr
from orchestrator.output.templates import Lenient
from orchestrator.plan.config.profiles import Profiles
from orchestrator.plan.instances import rows_only
from orchestrator.plan.model import Plan
from orchestrator.run.deliver.ending import Delivered, deliver
from orchestrator.run.flushing import Flusher
from orchestrator.run.held.holds import exit_code
from orchestrator.run.inflight.live import LiveQueue
from orchestrator.run.limits.admission import Admission
from orchestrator.run.notices.notify import Notifying, notifying
from orchestrator.run.parts import of_run
from orchestrator.run.prepare import RunOptions, checked, prepare
from orchestrator.run.recorder import Recorder
from orchestrator.run.resume.basis import Basis
from orchestrator.run.resume.blocks import as_status_reads
from orchestrator.run.resume.prepared import Prepared
from orchestrator.run.resume.recovery import finished_in_logs, keep, settler, told_late
from orchestrator.run.scheduler import Scheduler
from orchestrator.state import events
from orchestrator.state import journal as journals
from orchestrator.state.events import EventLog
from orchestrator.state.events.runs import Notice, RunFinished, RunStarted
from orchestrator.state.events.untold import untold
from orchestrator.state.lock import WorkspaceLock, plan_edits
from orchestrator.state.procs import process_started
from orchestrator.state.status import TaskView, counts, outcome_counts
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import ExitCode

_T = TypeVar("_T")
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# How long a run interrupted while it settles a dead runner's attempts may take to stop them.
_SETTLE_BOUND = 30.0

__all__ = ["RunOptions", "RunSummary", "Runner", "run"]


@dataclass(slots=True)
class RunSummary:
    exit_code: int
    counts: dict[str, int]
    wall_seconds: float
    cost_usd: float | None
    stopped: str | None = None
    ran: list[str] = field(default_factory=list)


class Runner:
    def __init__(
        self,
        workspace: Workspace,
        options: RunOptions | None = None,
        reporter: Reporter | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.workspace = workspace
        self.options = options or RunOptions()
        self.reporter = reporter or Reporter()
        self.executor = executor or LocalExecutor()
        self.interrupted = False
        self._stoppable: anyio.CancelScope | None = None  # what a signal cancels now
        self._synthesis_failed: str | None = None
        self._templates = Lenient(workspace, lambda message: self.reporter.event(Notice(message=message)))
        tell = self._notice_now
        self._flusher = Flusher(workspace, self._templates, tell, only=bool(self.options.only))  # (``run/flushing``)
        self.scheduler: Scheduler | None = None
        self._live: LiveQueue | None = None  # (once the run goes on: what it takes of the plan)

    def run(self) -> RunSummary:
        loaded = checked(self.workspace, self.options, self.executor)  # one clear error, nothing written
        lock = WorkspaceLock(self.workspace.lock_file, self.workspace.root.name)
        lock.acquire()
        try:
            with _one_error(lambda: self.reporter):
                return anyio.run(self._main, loaded)
        finally:
            try:
                _close_log(self.workspace, self.reporter, self._live)
            finally:
                lock.release()

    async def _main(self, loaded: tuple[Plan, Profiles]) -> RunSummary:
        with children_waited_on_pidfds():
            async with _closed(self.executor):
                return await self._run(loaded)

    async def _run(self, loaded: tuple[Plan, Profiles]) -> RunSummary:
        """The run, from the plan as ``checked`` read it before the lock (``loaded``: taken while
        its file is the same)."""
        started = time.time()
        ws = self.workspace
        # Signals are ours from here on: one during the preparation or the settling of what a
        # dead runner left ends the run as cleanly as one during the loop.
        with anyio.open_signal_receiver(*_SIGNALS) as signals:
            async with anyio.create_task_group() as background:
                background.start_soon(self._watch, signals)
                prepared = prepare(ws, self.options, simulated=self.executor.can.simulated,
                                   clis=self.executor.can.runs_here, loaded=loaded)  # fmt: skip
                plan = prepared.plan
                left = journals.read(ws.journal_file)
                stopped = await self._stoppably(self._settle_leftovers, left, plan.settings.kill_grace)
                if stopped is None:  # interrupted before anything ran: the journal is left as it is
                    if not self.options.wait_for_orphans:  # (even before it began to: none is left running)
                        with anyio.CancelScope(shield=True, deadline=anyio.current_time() + _SETTLE_BOUND):
                            await self._settle_leftovers(left, 0.0)
                    background.cancel_scope.cancel()
                    return self._not_started(prepared, started, left)
                recovered = finished_in_logs(ws, prepared, left.every_open())  # (done: not in to_run)
                late = untold(ws)  # (results the dead runner wrote and did not tell of: before anything is written)
                journal = journals.Journal(ws.journal_file)  # (begun once the leftovers are taken up)
                run_name = now_iso()
                self.reporter = Recording(self.reporter, EventLog(ws.events_file, run=run_name))
                self.reporter = notifying(self.reporter, ws, plan, prepared.settings)  # notify:, stuck tasks
                self.reporter.event(_run_started(prepared, self.executor, self.options, ws))
                for message in prepared.notices:  # hand edits the run does not take, files set aside
                    self.reporter.event(Notice(message=message))
                for task_id in stopped:
                    self.reporter.event(Notice(message=f"stopped {task_id}'s attempt left running by a dead runner"))
                basis = Basis(plan, ws, lambda task: prepared.signatures[task.id], prepared.records)
                self.recorder = Recorder(ws, plan, prepared.settings, prepared.views, self.reporter, journal, basis.of)
                for task_id in keep(recovered, self.recorder):
                    kept = f"{task_id} had finished after the runner stopped: kept from its log"
                    self.reporter.event(Notice(message=kept))
                told_late(ws, late, self.recorder)  # (each with a notice)
                prepared.resume(left.open.values())  # what a kill -9 interrupted goes on where it stopped
                self.reporter.flush()  # (what was recorded of the dead runner's work, before its lines are history)
                journal.begin(run_name, events.size(ws.events_file))  # what the dead runner left is history now
                scheduler = self.scheduler = Scheduler(of_run(ws, self.executor, prepared, self.recorder, journal))
                scheduler.stop.interrupted = self.interrupted
                live = self._live = LiveQueue(ws, prepared, scheduler, self.recorder, self.options, run=run_name,
                                              events_from=events.size(ws.events_file))  # fmt: skip
                live.hold_at_start()
                background.start_soon(live.follow)
                background.start_soon(self._flusher.every_second, prepared, self.recorder, scheduler.started,
                                      scheduler.parts.starts.rows)  # fmt: skip
                background.start_soon(_tick_every_second, self.reporter)
                try:
                    await self._stoppably(scheduler.run)
                finally:
                    live.ended = True
                    with anyio.CancelScope(shield=True):
                        scheduler.finish()
                        if scheduler.parts.starts.rows is not None:
                            scheduler.parts.starts.rows.shown.write_all()  # (what the run left of each row's items)
                        journal.finish()
                        journal.close()
                synthesis: Synthesis | None = None
                if plan.settings.aggregate == "agent" and not self.interrupted:
                    synthesis = await self._stoppably(self._synthesize, prepared)
                background.cancel_scope.cancel()
            # Still inside the signal receiver: a signal now is taken, not a KeyboardInterrupt.
            return self._finish(prepared, scheduler, started, synthesis)

    def _not_started(self, prepared: Prepared, started: float, left: journals.JournalState) -> RunSummary:
        """Interrupted before the first attempt: nothing ran, nothing of the journal was touched."""
        _tell_unstarted(self.reporter, self.workspace, prepared.notices, left, self.options.wait_for_orphans)
        written = rows_only(prepared.plan).tasks  # (a row run per item counted once, as status counts it)
        found = counts(v for v in prepared.views.values() if v.id in written)
        wall = time.time() - started
        self.reporter.event(
            RunFinished(
                **outcome_counts(prepared.views.values(), written),
                wall_seconds=round(wall, 3),
                exit_code=int(ExitCode.INTERRUPTED),
                cost_usd=None,
                stopped="interrupted before any task started",
                final_output=None,
                integration_branch=None,
            )
        )
        return RunSummary(int(ExitCode.INTERRUPTED), found, wall, None, "interrupted before any task started", [])

    async def _settle_leftovers(self, left: journals.JournalState, grace: float) -> list[str]:
        """Stop (or wait for) what a dead runner's journal left open, each attempt by the
        executor that started it. Holding the lock means no other runner is alive, so every open
        attempt was left by a dead one. Returns the tasks whose attempt was still running."""
        ws = self.workspace
        by_executor: dict[str, list[Leftover]] = {}
        for o in left.every_open():  # (a race's attempts, each of them)
            name = o.executor or executors.DEFAULT  # (a spawn line of a journal of version 0.1 names none)
            marks = journals.attempt_environment(ws.root, o.task, o.attempt)
            by_executor.setdefault(name, []).append(Leftover(o.task, o.attempt, name, o.handle, marks))
        stopped: list[str] = []
        for name, leftovers in by_executor.items():
            executor = settler(name, self.executor, ws)
            stopped += await executor.settle(leftovers, grace=grace, wait=self.options.wait_for_orphans, tell=to_stderr)
        return sorted(stopped)

    # --- signals ----------------------------------------------------------------------------------

    async def _watch(self, signals: AsyncIterator[signal.Signals]) -> None:
        async for _ in signals:
            if not self.interrupted:
                self.interrupted = True
                if self.scheduler is not None:
                    self.scheduler.stop.interrupted = True
                if self._stoppable is not None:
                    self._stoppable.cancel()

    async def _stoppably(self, work: Callable[..., Awaitable[_T]], *args: object) -> _T | None:
        """``work(*args)`` in a cancel scope a signal cancels; ``None`` when one did."""
        if self.interrupted:
            return None
        with anyio.CancelScope() as scope:
            self._stoppable = scope
            try:
                return await work(*args)
            finally:
                self._stoppable = None
        return None

    def _notice_now(self, message: str) -> None:
        self.reporter.event(Notice(message=message))
        self.reporter.flush()  # now, not at the loop's next turn: that may be a long task away

    # --- the end ----------------------------------------------------------------------------------

    async def _synthesize(self, prepared: Prepared) -> Synthesis | None:
        from orchestrator.run.synthesis import synthesize_async

        self.reporter.event(Notice(message="aggregating with an agent"))
        self.reporter.flush()  # the agent takes a while: say so now
        try:
            return await synthesize_async(rows_only(prepared.plan), self.workspace, self.executor)
        except (AgentCallError, OrchestratorError) as exc:
            self._synthesis_failed = str(exc)
            self.reporter.event(Notice(message=str(exc)))
            return None

    def _finish(self, prepared: Prepared, scheduler: Scheduler, started: float, synth: Synthesis | None) -> RunSummary:
        ws, plan, selection = self.workspace, prepared.plan, prepared.selection
        views = list(prepared.views.values())
        scheduler.pause.clear_if_over()
        as_status_reads(prepared, ws, self.recorder.records, only=bool(self.options.only))  # (what it did not run)
        admission = scheduler.admission
        # One wall time for the run, measured once: final_output.md's and the run line's.
        wall = round(time.time() - started, 3)
        self._flusher.last(prepared, self.recorder)  # (its results durable, its status blocks)
        shown = rows_only(plan)  # (a row run per item stands for its instances: its result holds their answers)
        final = [view for view in views if view.id in shown.tasks]
        stopped = scheduler.stop.why or self._synthesis_failed
        found = counts(final)
        code = ExitCode.INTERRUPTED if self.interrupted else exit_code(prepared, stopped, only=bool(self.options.only))
        # (after the work and its gates: the orchestrator's act, never an agent's; none once interrupted)
        delivered = deliver(ws, prepared, self.options, self.reporter, final, int(code), scheduler.merges)
        if kept := _write_final_output(shown, ws, final, synth, admission, self._templates, wall, delivered):
            self.reporter.event(Notice(message=edited_final_notice(ws, kept)))
        summary = RunSummary(
            delivered.code, found, wall, admission.cost if admission.cost_seen else None, stopped, selection.run
        )
        outcomes = outcome_counts(views, shown.tasks)
        if (rows := scheduler.parts.starts.rows) is not None:  # (and of the items that left the plan)
            outcomes["simulated"] += rows.table.simulated
        self.reporter.event(
            RunFinished(
                **outcomes,
                wall_seconds=round(wall, 3),
                exit_code=delivered.code,
                cost_usd=summary.cost_usd,
                stopped=stopped or ("interrupted" if self.interrupted else None),
                final_output=ws.relative(ws.final_output),
                integration_branch=scheduler.merges.merged_branch() if scheduler.merges is not None else None,
            )
        )
        return summary


def _close_log(workspace: Workspace, reporter: Reporter, live: LiveQueue | None) -> None:
    """A run's last events written; a run that went on (``live``), holding the plan's edit lock:
    its ``run_finished``, then a ``task_added`` for each row added that it did not take (an ``add``
    that holds the lock next finds the run over, and tells of its row itself)."""
    with plan_edits(workspace.state_dir) if live is not None else contextlib.nullcontext():
        reporter.flush()
        if live is not None:
            events.append(workspace.events_file, live.untaken())
        if isinstance(reporter, Recording):
            reporter.log.close()


def _run_started(prepared: Prepared, executor: Executor, options: RunOptions, ws: Workspace) -> RunStarted:
    """What it runs and what was done (``kept``: finished otherwise, and left as they are), whether
    it only simulates (the fake executor), a plan's parameters, its limits, and the runner (with
    when its process started: a pid can be reused)."""
    selection, plan = prepared.selection, prepared.plan
    return RunStarted(
        to_run=len(selection.run) + plan.outside(),  # (and the instances that join as its slots free)
        already_done=len(selection.done),
        kept=len(selection.kept) or None,
        simulated=executor.can.simulated,
        params=plan.params if plan.settings.params else None,
        untrusted=plan.untrusted or None,
        read_only=options.read_only or None,
        max_parallel=plan.settings.max_parallel,
        **events.ran_with(options.overrides(), plan.settings, prepared.settings),
        workspace=str(ws.root),
        pid=os.getpid(),
        pid_start=process_started(os.getpid()),
    )


def _tell_unstarted(
    reporter: Reporter, workspace: Workspace, notices: list[str], left: journals.JournalState, waited: bool
) -> None:
    """What preparing a run that was then interrupted (while it settled what a dead runner left)
    did that a person must hear of (a result file kept aside, a hand edit not taken), and what
    became of those leftovers: shown, and kept in the event log as a command's own changes are,
    outside any run (none started). The next run would not say it: it finds nothing to set aside."""
    leftover = sorted({attempt.task for attempt in left.open.values()})
    if leftover:
        what = "what still runs of them is left running (--wait-orphans)" if waited else "none of them runs now"
        ids = ", ".join(leftover)
        notices = [*notices, f"interrupted while settling the attempts a dead runner left ({ids}): {what}; "
                   "the next `orchestrator run` takes them up"]  # fmt: skip
    told = [Notice(message=text) for text in notices]
    for event in told:
        reporter.event(event)
    events.append(workspace.events_file, told)


async def _tick_every_second(reporter: Reporter) -> None:
    """The reporter's clock: a live view's timers move while nothing else happens; sooner when a
    task may come to look stuck before the next second (a short timeout's 80%)."""
    while True:
        every = timing.current().tick
        await anyio.sleep(reporter.next_tick(time.time(), every) if isinstance(reporter, Notifying) else every)
        reporter.tick()


def _write_final_output(
    plan: Plan,
    ws: Workspace,
    views: list[TaskView],
    synthesis: Synthesis | None,
    admission: Admission,
    templates: Lenient,
    run_seconds: float,
    delivered: Delivered,
) -> Path | None:
    if synthesis is not None:
        admission.spend(synthesis.cost_usd)  # the run's cost is all it spent, the synthesis too
    said = [entry.said() for entry in delivered.made]  # (what its delivery did, in a section of its own)
    return write_final_output(plan, ws, views, synthesis, templates, run_seconds=run_seconds, delivered=said)


@asynccontextmanager
async def _closed(executor: Executor) -> AsyncIterator[None]:
    """``executor.close()`` on the way out, however it is left: what no attempt's end could tie
    to its attempt is stopped too."""
    try:
        yield
    finally:
        with anyio.CancelScope(shield=True):
            await executor.close()


@contextmanager
def _one_error(reporter: Callable[[], Reporter]) -> Iterator[None]:
    """An error raised inside the run's task groups comes out wrapped in an ``ExceptionGroup``:
    one of them is raised as itself, so that a full disk is still an ``OSError`` naming its file.
    One that ends a run begun (its event log open: ``run_started`` is in it) is that run's end:
    a ``run_finished`` saying so, for ``watch``, ``history`` and ``check`` (not a dead runner)."""
    try:
        try:
            yield
        except BaseExceptionGroup as group:
            errors = group.exceptions
            while len(errors) == 1 and isinstance(errors[0], BaseExceptionGroup):
                errors = errors[0].exceptions
            if len(errors) == 1:
                raise errors[0] from None
            raise
    except (OrchestratorError, OSError) as exc:
        error = workspace_error_from(exc) or exc if isinstance(exc, OSError) else exc  # (as the command says it)
        if isinstance(log := reporter(), Recording):
            code = error.exit_code if isinstance(error, OrchestratorError) else ExitCode.USAGE
            log.log.tell(RunFinished(counts={}, exit_code=int(code), cost_usd=None,
                                     stopped=f"{events.STOPPED_ON_ERROR}{error}", final_output=None,
                                     integration_branch=None))  # fmt: skip
        raise


def run(workspace: Workspace, options: RunOptions | None = None, reporter: Reporter | None = None) -> RunSummary:
    """Run the plan in ``workspace`` to completion; see ``Runner``."""
    return Runner(workspace, options, reporter).run()
