"""A run that takes changes while it goes on: tasks added to master_plan.md (by `orchestrator add`
or by hand), rows edited while their tasks wait (``run/edits``), and the cancels and retries
asked for with `orchestrator cancel` and `retry`.

``LiveQueue.follow`` looks about four times a second: at the plan file (its size and time; when
they change, whether the text outside the tool's own blocks did, and only then parses it, in a
worker thread) and at the event log, for the ``cancel_requested`` and ``retry_requested`` lines
the commands append there for this run. What it finds is handed to the loop
(``Inbox.change``): every change of the scheduler's state still happens on the loop's own task.
Each request is answered by an event: ``task_cancelled``, ``task_requeued`` or
``request_refused``, which the command that asked waits for. A look hands the loop the rows
added before the requests it read: a cancel of a task whose row was written just before (a
``spawn`` interrupted as it joins) finds it taken.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable

import anyio

from orchestrator import timing
from orchestrator.backends.base import AgentResult
from orchestrator.errors import OrchestratorError
from orchestrator.output.briefs import render_briefs
from orchestrator.plan.graph import topological_order
from orchestrator.plan.model import Plan, Task
from orchestrator.plan.profiles import Profiles
from orchestrator.run.attempts import Attempt
from orchestrator.run.edits import Edits
from orchestrator.run.holds import Patience, follow_holds
from orchestrator.run.prepare import Prepared, RunOptions, load_checked
from orchestrator.run.scheduler import Scheduler, check_budget, decided
from orchestrator.state import approvals, events, planfile, store
from orchestrator.state.causes import Cause, CauseKind
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.runs import Notice, PlanFile, RequestRefused
from orchestrator.state.events.tasks import ApprovalNoted, TaskAdded, TaskRequeued
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import TaskStatus

_REQUESTS = ("cancel_requested", "retry_requested", "approve_requested", "reject_requested")
_WANTED = tuple(f'"event": "{kind}"'.encode() for kind in _REQUESTS)  # (their lines, for a cheap look)
GIVEN_BACK = (TaskStatus.CANCELLED, TaskStatus.REJECTED)  # given up by a person: so until they say otherwise


class LiveQueue:
    def __init__(
        self,
        workspace: Workspace,
        prepared: Prepared,
        scheduler: Scheduler,
        options: RunOptions,
        *,
        run: str,
        events_from: int,
    ) -> None:
        self.workspace = workspace
        self.prepared = prepared
        self.scheduler = scheduler
        self.options = options
        self.run = run
        self.cursor = events.Cursor(events_from)
        self.cancelling: dict[str, tuple[Cause, str]] = {}  # task -> (why, request), its attempt being stopped
        self.ended = False  # the loop is over: what is asked now is refused
        # This run's tasks, lowered (ids are not case-sensitive), kept as ``_adopt`` meets more:
        # what the worker thread compares a changed plan with, never iterated from there.
        self._known_ids = {task_id.lower() for task_id in prepared.plan.tasks}
        # (from the text the run loaded: an add made while the run started is seen)
        self._watch = planfile.PersonWatch(workspace.plan_file, prepared.plan.text)
        self._told: set[str] = set()
        self._plan_there = True  # the plan file: deleted or renamed mid-run is told, once each way
        scheduler.cancelled = self.cancelled
        self._edits = Edits(workspace, prepared, scheduler, self._notice_once)

    @property
    def plan(self) -> Plan:
        return self.prepared.plan

    def _emit(self, event: EventRecord) -> None:
        self.scheduler.recorder.emit(event)

    def _notice_once(self, message: str) -> None:
        if message not in self._told:
            self._told.add(message)
            self._emit(Notice(message=message))

    async def follow(self) -> None:
        while True:
            await anyio.sleep(timing.current().live_poll)
            asked = self._requests()  # (read before the plan, handed over after the rows it adds)
            self._plan_gone_or_back()
            if self._watch.moved():  # (one stat here: a thread only for a change)
                changed = await anyio.to_thread.run_sync(self._plan_changed)
                if isinstance(changed, str):
                    self.scheduler.inbox.change(functools.partial(self._notice_once, changed))
                elif changed is not None and not self.ended:
                    self.scheduler.inbox.change(functools.partial(self._adopt, *changed))
            for change in asked:
                self.scheduler.inbox.change(change)

    # --- the plan file ----------------------------------------------------------------------------

    def _plan_gone_or_back(self) -> None:
        """Told once when the plan file is deleted or renamed while the run goes on, and once when
        it is back: the run goes on with the tasks it has, and never writes a plan file of its own
        in its place (its status blocks wait for the file; ``planfile.rewrite`` makes none)."""
        there = os.path.lexists(self.workspace.plan_file)
        if there == self._plan_there:
            return
        self._plan_there = there
        message = _plan_file_said(self.workspace.relative(self.workspace.plan_file), there)
        # (through the inbox: the loop wakes, and shows it now, not at the next task's end)
        self.scheduler.inbox.change(functools.partial(self._emit, PlanFile(present=there, message=message)))

    def _plan_changed(self) -> tuple[Plan, Profiles, list[str]] | str | None:
        """In a worker thread, once the plan file changed: the plan as it is now and the tasks it
        has that this run has not, their briefs rendered, if the text outside the tool's blocks
        changed; or why it is not taken. A file that is no plan text for now (not UTF-8 mid-edit,
        a FIFO) is left to the status blocks' writer to report."""
        if not self._watch.changed():
            return None
        name = self.workspace.relative(self.workspace.plan_file)
        try:
            plan, profiles = load_checked(self.workspace, self.options)
        except (OrchestratorError, OSError) as exc:
            if not self._watch.settled() or planfile.saved_late(self.workspace.plan_file) is not None:
                self._watch.again()  # (saved halfway when read, or the run's next write puts a late save back)
                return None
            return f"{name} changed, and is not taken into this run: {exc}"
        new = [task_id for task_id in plan.tasks if task_id.lower() not in self._known_ids]
        if not new:  # (rows edited, deleted, renamed, blocked or released: seen to on the loop, which knows its tasks)
            return plan, profiles, new
        try:
            render_briefs(plan, self.workspace, only=new)  # (the others' on the loop: ``run/edits``)
        except (OrchestratorError, OSError) as exc:
            return f"tasks added to {name} are not taken into this run: {exc}"
        return plan, profiles, new

    def _adopt(self, plan: Plan, profiles: Profiles, new: list[str]) -> None:
        """On the loop: the tasks of ``new`` join this run, in dependency order."""
        ours, scheduler, prepared = self.plan, self.scheduler, self.prepared
        if scheduler.stopped or scheduler.interrupted or self.ended:
            return
        ours.book = plan.book
        follow_holds(scheduler.holds, plan, prepared.views, scheduler.delayed, scheduler.recorder.blocked, self._emit)
        kept, name = {task_id.lower() for task_id in plan.tasks}, self.workspace.relative(self.workspace.plan_file)
        for task_id in [t for t in ours.tasks if t.lower() not in kept and not prepared.views[t].status.finished]:
            self._notice_once(  # (a row renamed would otherwise run twice, without a word)
                f"{task_id} is no longer in {name}, and this run, which began with it, still runs it — "
                f"`orchestrator cancel {task_id}` stops it"
            )
        order = {task_id: index for index, task_id in enumerate(plan.tasks)}
        merges = scheduler.merges
        for task_id in topological_order(plan.graph.subgraph(new), order):
            task = plan.tasks[task_id]
            if task_id in ours.tasks or (merges is not None and task_id in merges.writing):
                self._known_ids.add(task_id.lower())
                continue  # a merge's resolution task: the merge queue takes it, with its dependents
            settings = profiles.settings_for(plan, task)
            if settings.isolation == "worktree" and merges is None:
                self._notice_once(
                    f"{task_id} runs in a git worktree, and this run started with none: it runs in the next run"
                )
                continue
            if merges is not None:
                merges.take(task, settings)
            prepared.join(task, settings, profiles)
            self._known_ids.add(task_id.lower())
            view = prepared.views[task_id]
            own = events.own_limits(ours.settings, settings).get("limits")  # (check's, cancel's: if not the run's)
            self._emit(TaskAdded(task=task_id, agent=task.agent, name=task.title, after=task.dependencies, limits=own))
            blocker = scheduler.queue.add(task_id, priority=task.priority, order=ours.order[task_id])
            if blocker is not None:
                scheduler.recorder.given_up(task, blocker)
            elif all(dep in scheduler.queue.done for dep in task.dependencies):
                view.move(TaskStatus.PENDING)
        self._edits.take(plan)  # (after the new tasks: an edited row may name one)

    # --- requests ---------------------------------------------------------------------------------

    def _requests(self) -> list[Callable[[], None]]:
        """What the requests appended for this run since the last look ask of the loop."""
        asked: list[Callable[[], None]] = []
        if events.size(self.workspace.events_file) == self.cursor.offset:
            return asked  # nothing appended since the last look (a stat, not an open and a read)
        for event in events.read_new(self.workspace.events_file, self.cursor, only=_WANTED):
            if event.get("run") != self.run or event["event"] not in _REQUESTS:
                continue
            task_id, request = str(event.get("task", "")), str(event.get("request", ""))
            kind = str(event["event"]).removesuffix("_requested")
            if self.ended:  # nothing starts or stops any more: say so now, not by silence
                self._refuse(kind, task_id, request, "the run is ending")
                self.scheduler.recorder.reporter.flush()
                continue
            acts: dict[str, Callable[[str, str, Cause], None]] = {"cancel": self._cancel, "retry": self._retry}
            act = acts.get(kind, self._decide)
            cause = Cause.of(CauseKind.CANCELLED, str(event.get("reason") or "") or None)
            asked.append(functools.partial(act, task_id, request, cause))
        return asked

    def _refuse(self, kind: str, task_id: str, request: str, reason: str) -> None:
        if request:  # (none: the run's own stop, whose answer nobody waits for)
            self._emit(RequestRefused(task=task_id, request=request, request_kind=kind, reason=reason))

    def _known(self, kind: str, task_id: str, request: str) -> Task | None:
        """The task a request names, or ``None`` with the request refused."""
        task = self.plan.tasks.get(task_id)
        if task is None:
            self._refuse(kind, task_id, request, f"no task {task_id} in this run")
        return task

    def _cancel(self, task_id: str, request: str, reason: Cause) -> None:
        scheduler, views = self.scheduler, self.prepared.views
        task = self._known("cancel", task_id, request)
        if task is None:
            return
        running = scheduler.running.get(task_id)
        if running is not None:
            self.cancelling[task_id] = (reason, request)
            running.stop()  # ``cancelled`` records it once its processes are gone
            return
        status = views[task_id].status
        if status.finished and task_id not in scheduler.delayed:
            self._refuse("cancel", task_id, request, f"{task_id} is {status} already")
            return
        scheduler.delayed.pop(task_id, None)
        scheduler.holds.release(task_id)  # (held at its gate, or by its Blocked cell: a retry asks again)
        waited = scheduler.waiting.pop(task_id, None)  # the attempt whose retry it waited for
        doomed = scheduler.queue.cancel(task_id)
        scheduler.recorder.not_run(task, TaskStatus.CANCELLED, reason, attempts=scheduler.attempts.get(task_id, 0),
                                   run_attempts=waited.attempt.in_run if waited else 0,
                                   started=waited.attempt.started if waited else None)  # fmt: skip
        scheduler.skip(doomed, task_id, TaskStatus.CANCELLED)

    def _decide(self, task_id: str, request: str, _reason: Cause) -> None:
        """`orchestrator approve` or `reject`, whose decision is in state/approvals.jsonl already."""
        decision = approvals.latest(self.workspace).get(task_id)
        if decision and self._known("decide", task_id, request) and not decided(self.scheduler, task_id, decision):
            self._emit(ApprovalNoted(task=task_id, request=request, decision=decision.decision))

    def cancelled(self, attempt: Attempt, result: AgentResult | None) -> bool:
        """On the loop, for an attempt that ended (``result``: what it did; ``None``: stopped by
        its cancel, its processes gone): whether it was cancelled, and if so it is recorded
        cancelled. An attempt that completed before its cancel could stop it stays completed."""
        scheduler, task = self.scheduler, attempt.task
        asked = self.cancelling.pop(task.id, None)
        if asked is None or scheduler.running.get(task.id) is not attempt:
            return False
        reason, request = asked
        if result is not None and (result.completed or not request):  # (the run's stop: what ended is what it did)
            self._refuse("cancel", task.id, request, f"{task.id} completed before it could be stopped")
            return False
        del scheduler.running[task.id]
        scheduler.admission.ended(task.id)
        scheduler.journal.ended(task.id, attempt.number)
        _record_cancelled(scheduler, attempt, reason, _spent(scheduler, attempt, result))
        return True

    def _retry(self, task_id: str, request: str, _reason: Cause) -> None:
        scheduler, views = self.scheduler, self.prepared.views
        task = self._known("retry", task_id, request)
        if task is None:
            return
        status = views[task_id].status
        if task_id in scheduler.running or task_id in scheduler.delayed or not status.finished:
            self._refuse("retry", task_id, request, f"{task_id} is {status}: it is in the queue already")
            return
        if status == TaskStatus.COMPLETED:
            redo = f"`orchestrator run --rerun {task_id}` redoes it"
            self._refuse("retry", task_id, request, f"{task_id} is completed ({redo})")
            return
        if scheduler.stopped or scheduler.interrupted:
            self._refuse("retry", task_id, request, f"the run is stopping ({scheduler.stopped or 'interrupted'})")
            return
        back, doomed = scheduler.queue.revive(task_id, task.priority, self.plan.order[task_id])
        if task_id in doomed:
            blocker = doomed[task_id]
            said = Cause.upstream(blocker, self.prepared.views[blocker].status).sentence(task_id)
            self._refuse("retry", task_id, request, f"{said}: retry {blocker} first")
            return
        if task_id not in self.prepared.selection.run:
            self.prepared.selection.run.append(task_id)
        scheduler.retries.used.pop(task_id, None)
        scheduler.first_attempt.pop(task_id, None)
        for node in back:
            view = views[node]
            was = view.status
            ready = all(dep in scheduler.queue.done for dep in self.plan.tasks[node].dependencies)
            if was in GIVEN_BACK:  # a later run must not hold it back any more (nor its gate's old word)
                store.remove(self.workspace.result(self.plan.tasks[node]), durable=False)
                if was == TaskStatus.REJECTED:
                    approvals.record(self.workspace, node, approvals.REOPENED)
            view.move(TaskStatus.PENDING if ready else TaskStatus.WAITING)
            self._emit(TaskRequeued(task=node, agent=self.plan.tasks[node].agent, was=str(was), request=request))


def stop_running(live: LiveQueue, reason: Cause) -> None:
    """The run stops (fail-fast, its cost limit: ``scheduler.halt``): every attempt running now is
    stopped as a cancel stops one, and recorded cancelled with ``reason`` (``LiveQueue.cancelled``;
    one a person is cancelling already keeps the person's reason)."""
    for task_id, attempt in live.scheduler.running.items():
        live.cancelling.setdefault(task_id, (reason, ""))  # (no request: nobody waits for an answer)
        attempt.stop()


def _record_cancelled(scheduler: Scheduler, attempt: Attempt, reason: Cause, spent: AgentResult) -> None:
    """``attempt``, stopped, recorded cancelled for ``reason``; what depends on its task skipped."""
    task = attempt.task
    scheduler.recorder.not_run(task, TaskStatus.CANCELLED, reason, attempts=attempt.number,
                               run_attempts=attempt.in_run, session=attempt.observer.session_id,
                               fingerprint=attempt.fingerprint, started=attempt.started, spent=spent)  # fmt: skip
    scheduler.skip(scheduler.queue.fail(task.id), task.id, TaskStatus.CANCELLED)


def _spent(scheduler: Scheduler, attempt: Attempt, result: AgentResult | None) -> AgentResult:
    """What a cancelled attempt spent until it was stopped (``result``: what it did, if it ended
    first), counted as an ended attempt's is: the run's cost, the task's in this run of it."""
    spent = scheduler.launcher.stopped(attempt) if result is None else result
    books = (scheduler.session_costs, scheduler.spend, scheduler.admission)
    first = scheduler.hedger.stopped(attempt, attempt.in_run == 1, books)  # (a race's others, stopped with it)
    scheduler.session_costs.own(attempt.job.resume_session, spent)
    scheduler.admission.spend(spent.cost_usd)
    scheduler.spend.add(attempt.task.id, first, spent)
    check_budget(scheduler)  # (what it spent may be what reaches the limit: the others are stopped)
    return spent


def hold_at_start(live: LiveQueue) -> None:
    """Before the loop starts: what depends on a task that stays given up (cancelled, rejected,
    bypassed, or skipped for one of those: ``run.settled``) and is not settled itself is given
    up for it (a task with a Condition counts it as finished, to decide on); and with ``run
    --wait``, how long the run waits for a person (``holds.Patience``)."""
    for task_id, status in live.prepared.selection.kept.items():
        live.scheduler.skip(live.scheduler.queue.fail(task_id), task_id, status)
    if live.options.wait:
        limit, emit = live.options.wait_timeout, live.scheduler.recorder.emit
        live.scheduler.holds.patience = Patience(None if limit is None else time.time() + limit, emit)


def _plan_file_said(name: str, there: bool) -> str:
    """``plan_file``'s message: the plan is back, or gone (deleted or renamed) while the run goes on."""
    if there:
        return f"{name} is back: the run reads it again"
    return (
        f"{name} was deleted or renamed: the run goes on with the tasks it has and writes no plan file in its "
        "place (put it back to add rows and see its status blocks)"
    )
