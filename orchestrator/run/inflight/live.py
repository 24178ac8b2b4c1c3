"""A run that takes changes while it goes on: tasks added to master_plan.md (by `orchestrator add`
or by hand), rows edited while their tasks wait (``run/inflight/edits``), and the cancels and retries
asked for with `orchestrator cancel` and `retry`.

``LiveQueue.follow`` looks about four times a second: at the plan file (its size and time; when
they change, whether the text outside the tool's own blocks did, and only then parses it, in a
worker thread) and at the event log, for the ``cancel_requested`` and ``retry_requested`` lines
the commands append there for this run. What it finds is handed to the loop
(``Inbox.change``): every change of the scheduler's state still happens on the loop's own task,
through the run's board (``run/board``). Each request is answered there by
``run/inflight/answers``. A look hands the loop the rows added before the requests it read: a
cancel of a task whose row was written just before (a ``spawn`` interrupted as it joins) finds
it taken.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable

import anyio

from orchestrator import timing
from orchestrator.documents import read_regular
from orchestrator.errors import OrchestratorError
from orchestrator.output.briefs import render_briefs
from orchestrator.plan.config.profiles import Profiles
from orchestrator.plan.graph import topological_order
from orchestrator.plan.model import Plan
from orchestrator.run.held.holds import Patience, follow_holds
from orchestrator.run.inflight.answers import Answers
from orchestrator.run.inflight.budgeting import Change
from orchestrator.run.inflight.edits import Edits
from orchestrator.run.prepare import RunOptions, load_checked
from orchestrator.run.recorder import Recorder
from orchestrator.run.resume.prepared import Prepared
from orchestrator.run.scheduler import Scheduler
from orchestrator.state import events, planfile
from orchestrator.state.causes import Cause, CauseKind
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.runs import (
    AnswerRequested,
    ApproveRequested,
    BudgetRequested,
    CancelRequested,
    Notice,
    PermissionRequested,
    PlanFile,
    PlanHeld,
    RejectRequested,
    RequestRefused,
    RetryRequested,
)
from orchestrator.state.events.tasks import TaskAdded
from orchestrator.state.plans import plan_of
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import TaskStatus, money

# The requests a run takes, each by the word its answers name it by (``request_refused``'s kind).
_Request = CancelRequested | RetryRequested | ApproveRequested | RejectRequested | PermissionRequested | AnswerRequested
_REQUESTS: dict[type[_Request], str] = {
    CancelRequested: "cancel",
    RetryRequested: "retry",
    ApproveRequested: "approve",
    RejectRequested: "reject",
    PermissionRequested: "permission",
    AnswerRequested: "answer",
}
_WANTED = tuple(f'"event": "{record.event}"'.encode() for record in (*_REQUESTS, BudgetRequested))  # (a cheap look)


class LiveQueue:
    def __init__(
        self,
        workspace: Workspace,
        prepared: Prepared,
        scheduler: Scheduler,
        recorder: Recorder,
        options: RunOptions,
        *,
        run: str,
        events_from: int,
    ) -> None:
        self.workspace = workspace
        self.prepared = prepared
        self.scheduler = scheduler  # (asked through its board and its methods: ``run/board``)
        self.recorder = recorder
        self.options = options
        self.run = run
        self.cursor = events.Cursor(events_from)
        self.ended = False  # the loop is over: what is asked now is refused
        # This run's tasks, lowered (ids are not case-sensitive), kept as ``_adopt`` meets more:
        # what the worker thread compares a changed plan with, never iterated from there.
        self._known_ids = {task_id.lower() for task_id in prepared.plan.tasks}
        # (from the text the run loaded: an add made while the run started is seen)
        self._watch = planfile.PersonWatch(workspace.plan_file, prepared.plan.text)
        self._adopted = planfile.person_digest(prepared.plan.text)  # (the text whose rows it took last)
        self._told: set[str] = set()
        self._plan_there = True  # the plan file: deleted or renamed mid-run is told, once each way
        self.answers = Answers(workspace, prepared, scheduler, recorder)  # (cancel, retry, a person's word)
        self._edits = Edits(workspace, prepared, scheduler, recorder, self._notice_once)

    @property
    def plan(self) -> Plan:
        return self.prepared.plan

    def _emit(self, event: EventRecord) -> None:
        self.recorder.emit(event)

    def _notice_once(self, message: str) -> None:
        if message not in self._told:
            self._told.add(message)
            self._emit(Notice(message=message))

    async def follow(self) -> None:
        while True:
            await anyio.sleep(timing.current().live_poll)
            asked = self._requests()  # (read before the plan, handed over after the rows it adds)
            self._plan_gone_or_back()
            if self.options.untrusted is not None:  # (a run from outside takes no change of its plan)
                if self._watch.moved() and await anyio.to_thread.run_sync(self._watch.changed):
                    self.scheduler.inbox.change(self._hold)
            elif self._watch.moved():  # (one stat here: a thread only for a change)
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

    def _hold(self) -> None:
        """On the loop: the plan changed while this run from outside goes on. Its values are a
        stranger's, and an agent it runs may have made the change (a prompt injected into it): the
        change is held for a person, never taken into this run, whose plan stays the one it began
        with; said each time the plan changes, and by ``status`` (``state/launches.plan_held``)."""
        name = self.workspace.relative(self.workspace.plan_file)
        source = self.options.untrusted or "outside"
        self._emit(PlanHeld(source=source, message=(
            f"{name} changed while this run from outside ({source}) goes on: the change is held for a person, "
            "and this run keeps the plan it started with — read the change, then `orchestrator run` takes it"
        )))  # fmt: skip

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
        outside = self.prepared.plan.later  # (rows whose instances join as the run's slots free: theirs to join)
        new = [t for t, task in plan.tasks.items() if t.lower() not in self._known_ids and task.row not in outside]
        if not new:  # (rows edited, deleted, renamed, blocked or released: seen to on the loop, which knows its tasks)
            return plan, profiles, new
        try:
            render_briefs(plan, self.workspace, only=new)  # (the others' on the loop: ``run/inflight/edits``)
        except (OrchestratorError, OSError) as exc:
            return f"tasks added to {name} are not taken into this run: {exc}"
        return plan, profiles, new

    def _adopt(self, plan: Plan, profiles: Profiles, new: list[str]) -> None:
        """On the loop: the tasks of ``new`` join this run, in dependency order."""
        ours, scheduler, prepared = self.plan, self.scheduler, self.prepared
        if scheduler.stop.stopping or self.ended:
            return
        ours.book = plan.book
        follow_holds(scheduler.holds, plan, prepared.views, scheduler.board.delayed, self.recorder.blocked, self._emit)
        kept, name = {task_id.lower() for task_id in plan.tasks}, self.workspace.relative(self.workspace.plan_file)
        for task_id in [t for t in ours.tasks if t.lower() not in kept and not prepared.views[t].status.finished]:
            self._notice_once(  # (a row renamed would otherwise run twice, without a word)
                f"{task_id} is no longer in {name}, and this run, which began with it, still runs it — "
                f"`orchestrator cancel {task_id}` stops it"
            )
        order = {task_id: index for index, task_id in enumerate(plan.tasks)}
        merges, left = scheduler.merges, False
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
                left = True  # (told of as the run ends: ``untaken``)
                continue
            if merges is not None:
                merges.take(task, settings)
            prepared.join(task, settings, profiles)
            self._known_ids.add(task_id.lower())
            own = events.own_limits(ours.settings, settings).get("limits")  # (check's, cancel's: if not the run's)
            self._emit(TaskAdded(task=task_id, agent=task.agent, name=task.title, after=task.dependencies, limits=own))
            scheduler.added(task_id)
        self._edits.take(plan)  # (after the new tasks: an edited row may name one)
        if not left:
            self._adopted = planfile.person_digest(plan.text)

    def untaken(self) -> list[TaskAdded]:
        """Once the run is over (``ended``): the rows of the plan it did not take, each its
        ``task_added`` for the next run, as ``add`` tells of a row with no run going on: added as
        the run ended, before it looked, or a worktree task a run with none leaves. The caller
        holds the plan's edit lock (``state/lock.plan_edits``), the run's ``run_finished`` written."""
        try:
            now = read_regular(self.workspace.plan_file)
        except OSError:
            return []
        if planfile.person_digest(now) == self._adopted:
            return []
        try:
            plan = plan_of(self.workspace)
        except (OrchestratorError, OSError):
            return []  # (no plan a run could take: a later run says why)
        ours = self._known_ids | {task_id.lower() for task_id in self.plan.tasks}
        new = [task for task in plan.tasks.values() if task.id.lower() not in ours]
        return [TaskAdded(task=task.id, name=task.title, after=task.dependencies) for task in new]

    # --- requests ---------------------------------------------------------------------------------

    def _requests(self) -> list[Callable[[], None]]:
        """What the requests appended for this run since the last look ask of the loop."""
        asked: list[Callable[[], None]] = []
        if events.size(self.workspace.events_file) == self.cursor.offset:
            return asked  # nothing appended since the last look (a stat, not an open and a read)
        for event in events.read_new(self.workspace.events_file, self.cursor, only=_WANTED):
            if event.run == self.run and isinstance(event, BudgetRequested):
                asked.append(functools.partial(self._budget, event))
                continue
            if event.run != self.run or not isinstance(event, _Request):
                continue
            task_id, request, kind = event.task, event.request, _REQUESTS[type(event)]
            if self.ended:  # nothing starts or stops any more: say so now, not by silence
                self.answers.refuse(kind, task_id, request, "the run is ending")
                self.recorder.reporter.flush()
                continue
            answers = self.answers
            acts: dict[str, Callable[[str, str, Cause], None]] = {
                "cancel": answers.cancel, "retry": answers.retry,
                "permission": answers.asked, "answer": answers.answered,
            }  # fmt: skip
            act = acts.get(kind, answers.decide)
            cause = Cause.of(CauseKind.CANCELLED, event.reason or None)
            asked.append(functools.partial(act, task_id, request, cause))
        return asked

    def _budget(self, asked: BudgetRequested) -> None:
        """``orchestrator budget``, on the loop: the run's limit changed (``run/held/budget``), or
        refused with why (under what the run has spent already; the run ending)."""
        budget = self.scheduler.parts.budget
        limit = Change(asked.limit, asked.add).applied(budget.admission.max_cost)
        spent = budget.admission.cost
        why = "the run is ending" if self.ended else None
        if why is None and limit < spent:
            why = f"{money(limit)} is under what the run has spent already (${spent:.4f}): give more"
        if why is not None:
            self.recorder.emit(RequestRefused(task="", request=asked.request, request_kind="budget", reason=why))
        else:
            budget.raise_to(limit, asked.request, asked.by, asked.via)
            for task_id, view in list(self.prepared.views.items()):  # (``at_budget: stop``: what it stopped, back)
                if (
                    view.status == TaskStatus.CANCELLED
                    and view.cause is not None
                    and view.cause.kind == CauseKind.BUDGET
                ):
                    self.answers.revive(task_id, asked.request)
        self.recorder.reporter.flush()

    def hold_at_start(self) -> None:
        """Before the loop starts: what depends on a task that stays given up (cancelled, rejected,
        bypassed, or skipped for one of those: ``run/resume/settled``) and is not settled itself is given
        up for it (a task with a Condition counts it as finished, to decide on); and with ``run
        --wait``, how long the run waits for a person (``holds.Patience``)."""
        for task_id, status in self.prepared.selection.kept.items():
            self.scheduler.board.skip_downstream(task_id, status)
        if self.options.wait:
            limit = self.options.wait_timeout
            self.scheduler.holds.patience = Patience(None if limit is None else time.time() + limit, self.recorder.emit)


def _plan_file_said(name: str, there: bool) -> str:
    """``plan_file``'s message: the plan is back, or gone (deleted or renamed) while the run goes on."""
    if there:
        return f"{name} is back: the run reads it again"
    return (
        f"{name} was deleted or renamed: the run goes on with the tasks it has and writes no plan file in its "
        "place (put it back to add rows and see its status blocks)"
    )
