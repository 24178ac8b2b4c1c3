"""Every task's state as a person reads it (``status``, ``check``, ``approve``, the dashboard, the
plan's status blocks): the facts on disk read into the machine's stimuli and answered by its own
rules, so that a view says what the run would do, by the rule the run does it by.

What a run wrote is read as it wrote it: a task's result (completed, failed, skipped...), the
attempt the journal has open (running while its runner is alive, interrupted once it is gone),
one waiting for its retry. The rest is the machine's, as a run would meet it now:

- a result that awaits a person's word (a gate after) that a word has been said on since:
  ``WordSaid`` (the ``word`` rule: it counts, completed; or rejected);
- a task the next run would offer (not started; or given up, as the next run takes it up again):
  ``Offered``, with its Blocked cell (``hold``), its Not before (``not-before``), the dependencies
  it waits on (``dependencies``: a run's queue never offers such a task, a view's replay does),
  and the usage-limit pause (``admit``: no room while it holds);
- one the queue would hand out: ``Taken``, with its gate and the word that stands for it
  (``approvals.standing``: ``approve-before``), and it would start (``start``). A Condition is
  decided by the run that takes its task; until then, its task reads pending.

Each instruction the machine answers with is read as the state it leaves a task in (``_STATES``);
nothing else gives a task a state between runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import msgspec

from orchestrator import documents
from orchestrator.machine import instructions as do
from orchestrator.machine import stimuli as on
from orchestrator.machine.core import Machine
from orchestrator.machine.rules import BY_NAME
from orchestrator.plan.graph import dependencies_first
from orchestrator.plan.table.items import split_instance
from orchestrator.state import approvals, fallbacks, journal
from orchestrator.state.causes import GIVEN_UP, Cause, CauseKind, holds
from orchestrator.state.pause import paused
from orchestrator.state.procs import pid_alive
from orchestrator.state.results import ResultRecord
from orchestrator.state.status import States, TaskView, blocked_cause, read_records
from orchestrator.state.transitions import governed, joined
from orchestrator.vocabulary import TaskStatus

if TYPE_CHECKING:
    from orchestrator.plan.model import Plan, Task
    from orchestrator.state.workspace import Workspace


def collect(
    plan: Plan,
    workspace: Workspace,
    records: Mapping[str, ResultRecord] | None = None,
    *,
    inputs: Callable[[Task], str | None] | None = None,
    left_behind: bool = False,
) -> list[TaskView]:
    """The state of every task, in table order. ``records``: read already, as ``read_records``
    reads them. ``inputs``: each task's inputs now (``run/resume/basis``), against which a
    person's word at its gate is judged (``Decision.stands``; without it, the word holds until
    the task next completes). ``left_behind``: the attempts the journal has open were left by a
    run that is gone, whatever its pid says now (a run reading them holds the workspace's lock)."""
    if records is None:
        records = read_records(plan, workspace)
    replay = Replay(plan, workspace, records, inputs)
    views = replay.found(plan, workspace, records, left_behind=left_behind)
    _unskip(plan, views)
    replay.answer(views)
    return list(views.values())


# A task the next run offers again: not started, or given up in its last run (a Blocked cell holds
# any of them back; only one not started goes further).
_OFFERED = frozenset({TaskStatus.PENDING, TaskStatus.WAITING, TaskStatus.FAILED, TaskStatus.SKIPPED,
                      TaskStatus.INTERRUPTED})  # fmt: skip
_NOT_STARTED = (TaskStatus.PENDING, TaskStatus.WAITING)


class ViewDesk:
    """The views a replay's machine holds (their states, its ``tasks``), and what it says carried
    out on them: the one place a view between runs gets its state."""

    def __init__(self, views: dict[str, TaskView]) -> None:
        self.views, self.machine = views, Machine(tasks=States(views))

    def carry(self, said: Sequence[do.Instruction], record: ResultRecord | None = None) -> None:
        """What the machine said carried out on the views it holds: a task joining in the state its
        files leave it in (``Shows``), or moved to the state the last instruction that moves it
        leaves it in (``_STATES``: a run's instruction as a view reads it); each under the rule
        that said it, which must govern that move (``state/transitions``)."""
        for instruction in reversed(said):
            rule = BY_NAME[instruction.rule]
            task = getattr(instruction, "task", None)
            if isinstance(instruction, do.Shows):
                with governed(rule.name, instruction.task, frozenset(rule.moves)):
                    status = joined(instruction.task, instruction.status)
                held = self.machine.tasks[instruction.task]  # (what its files say of it but its state: its numbers)
                self.machine.tasks[instruction.task] = replace(
                    held, status=status, cause=instruction.cause, note=instruction.note
                )
                return
            state = _state_of(instruction)
            if state is None or task is None:
                continue
            view = self.views[task]
            if isinstance(instruction, do.Release) and record is not None:  # (its result counts, its own words kept)
                cause, note = None, record.reason if record.cause is None else None
            else:
                cause, note = instruction.cause, view.note if instruction.cause is None else None
            with governed(rule.name, task, frozenset(rule.moves)):
                view.move(state, cause, note=note)
            return


class Replay:
    """The machine asked of each task what a run would do with it now, over the facts on disk."""

    def __init__(
        self,
        plan: Plan,
        workspace: Workspace,
        records: Mapping[str, ResultRecord],
        inputs: Callable[[Task], str | None] | None = None,
    ) -> None:
        self.plan, self.records, self.inputs = plan, records, inputs
        self.desk = ViewDesk({})  # (holding the tasks it answers for: ``found``)
        gated = any(task.approval for task in plan.tasks.values())
        self.decisions = approvals.latest(workspace) if gated else {}
        self.paused = paused(workspace)
        self.now = time.time()

    @property
    def machine(self) -> Machine:
        """The machine that answers for the views (its desk's)."""
        return self.desk.machine

    def found(
        self, plan: Plan, workspace: Workspace, records: Mapping[str, ResultRecord], *, left_behind: bool = False
    ) -> dict[str, TaskView]:
        """Each task's view, joined in the state the machine says the files leave it in (``Found``,
        the ``found`` rule): its result, the attempt the journal has open (the task's last, left
        behind or not), one waiting for its retry while its runner lives, a result file that
        cannot be read; with what its result and its open attempt say of it but its state."""
        attempts = journal.read(workspace.journal_file)
        alive = not left_behind and attempts.runner_pid is not None
        alive = alive and pid_alive(attempts.runner_pid or 0, attempts.runner_start)
        rows_running = {split[0] for name in attempts.open if (split := split_instance(name)) is not None}
        unreadable = _unreadable(plan, workspace, records)
        views: dict[str, TaskView] = {}
        self.desk = ViewDesk(views)
        for task in plan.tasks.values():
            view = views[task.id] = TaskView.of(task)
            record = records.get(task.id)
            if record is not None:
                view.take_details(record, workspace.result_name(task))
            attempt = attempts.open.get(task.id)
            if attempt is not None:
                view.started, view.finished, view.duration = attempt.started, None, None  # (not its result's)
                view.attempts, view.run_attempts = attempt.attempt, attempt.in_run
                worker = (attempt.handle or {}).get("worker")  # on a cluster, once a worker runs it
                view.worker = worker if isinstance(worker, str) else None
            found = on.Found(
                id=self.machine.stamp(), task=task.id, recorded=record.status if record else None,
                cause=record.cause if record else None,
                note=record.reason if record is not None and record.cause is None else None,
                attempt=attempt is not None, retrying=task.id in attempts.retrying,
                row_running=task.each is not None and task.id in rows_running, alive=alive,
                runner=attempts.runner_pid, unreadable=unreadable.get(task.id),
            )  # fmt: skip
            self.desk.carry(self.machine.handle(found))
        return views

    def answer(self, views: dict[str, TaskView]) -> None:
        """Each task's view made what the machine answers for it (the machine holds their states)."""
        if views is not self.desk.views:  # (views made elsewhere: a machine to hold them)
            self.desk = ViewDesk(views)
        for task_id, view in views.items():
            decision, record = self.decisions.get(task_id), self.records.get(task_id)
            if view.status != TaskStatus.AWAITING_APPROVAL or decision is None or record is None:
                continue
            if decision.after(record.finished):  # (said on the result that awaits it)
                view.state.gate = "after"  # (the gate its result waits at)
                said = on.WordSaid(id=self.machine.stamp(), task=task_id, decision=decision)
                self.desk.carry(self.machine.handle(said), record)
        # What each task waits on is read off its dependencies as the runs left them, a Blocked cell
        # holding them back: before any gate is asked (as a run offers a task once they are done).
        statuses = {task_id: view.status for task_id, view in views.items()}
        for task in self.plan.tasks.values():
            if task.blocked is not None and statuses[task.id] in _OFFERED:
                statuses[task.id] = TaskStatus.BLOCKED
        waits = Waits(self.plan, statuses)
        for task in self.plan.tasks.values():
            view = views[task.id]
            if view.status in _OFFERED:
                self._offer(task, view, waits)

    def _offer(self, task: Task, view: TaskView, waits: Waits) -> None:
        held = view.state.hold = blocked_cause(task) if task.blocked is not None else None
        if view.status not in _NOT_STARTED:  # (given up: it shows how it ended, unless its Blocked cell holds it)
            if held is not None:
                self.desk.carry(self.machine.handle(on.Offered(id=self.machine.stamp(), task=task.id)))
            return
        offered = on.Offered(id=self.machine.stamp(), task=task.id, not_before=task.not_before, now=self.now,
                             waiting_on=waits.on(task), admitted=not self.paused)  # fmt: skip
        said = self.machine.handle(offered)
        if any(isinstance(instruction, do.Take) for instruction in said):
            said = self.machine.handle(self._taken(task))
        self.desk.carry(said)

    def _taken(self, task: Task) -> on.Taken:
        """What the gate rules read of ``task``, handed out by the queue: its gate, the last word said
        at it and what that stands on (its Condition is the run's to decide)."""
        taken = on.Taken(id=self.machine.stamp(), task=task.id, gate=task.approval)
        if task.approval != "before":
            return taken
        word = self.desk.views[task.id].state.word = self.decisions.get(task.id)  # (held by the machine)
        inputs = self.inputs(task) if self.inputs and word is not None else None
        return msgspec.structs.replace(taken, inputs=inputs, done=approvals.completed_at(self.records.get(task.id)))


def read_view(task: Task, record: ResultRecord, result_file: str) -> TaskView:
    """``task``'s view from its result alone (an archived task's, ``list --archived``): joined in the
    state the ``found`` rule reads its result as."""
    view = TaskView.of(task)
    view.take_details(record, result_file)
    desk = ViewDesk({task.id: view})
    found = on.Found(id=desk.machine.stamp(), task=task.id, recorded=record.status, cause=record.cause,
                     note=record.reason if record.cause is None else None)  # fmt: skip
    desk.carry(desk.machine.handle(found))
    return desk.views[task.id]


def _state_of(instruction: do.Instruction) -> TaskStatus | None:
    if isinstance(instruction, do.Wait):
        return TaskStatus.BLOCKED if instruction.why == "held" else TaskStatus.WAITING
    if isinstance(instruction, do.GiveUp):
        return instruction.status
    return _STATES.get(type(instruction))


# The state an instruction leaves a task in, as a view reads it (a Wait's and a GiveUp's are their own).
_STATES: dict[type[do.Instruction], TaskStatus] = {
    do.Start: TaskStatus.PENDING,  # (it starts in the next run)
    do.AwaitWord: TaskStatus.AWAITING_APPROVAL,
    do.Release: TaskStatus.COMPLETED,
    do.Reject: TaskStatus.REJECTED,
}


class Waits:
    """The dependencies a task not started waits on, as a run's queue judges them: a plain task
    waits for each to complete; one with a Condition decides on its dependencies' outcomes,
    whatever they are, and waits only while one of them is still to run (not finished, or
    finished as the next run takes up again: a failure no fallback took over, ``state/fallbacks``)."""

    def __init__(self, plan: Plan, statuses: Mapping[str, TaskStatus]) -> None:
        self.plan, self.statuses = plan, statuses
        self._taken: set[str] | None = None  # (worked out when a Condition first meets a failure)

    def on(self, task: Task) -> tuple[str, ...]:
        statuses = self.statuses
        if not task.condition:
            return tuple(dep for dep in task.dependencies if statuses[dep] != TaskStatus.COMPLETED)
        if task.approval == "before" and self._stopped_at_gate(task):
            return ()
        open_ = [dep for dep in task.dependencies if statuses[dep] not in DECIDED]
        if open_ and self._taken is None and any(statuses[dep] == TaskStatus.FAILED for dep in open_):
            self._taken = fallbacks.taken_over(self.plan, statuses)
        if task.approval == "before" and self._taken is not None:  # (a fallback the run stopped at its gate)
            open_ = [dep for dep in open_ if not self._stopped_at_gate_for(task, dep)]
        return tuple(dep for dep in open_ if dep not in (self._taken or ()))

    def _stopped_at_gate(self, task: Task) -> bool:
        """Whether ``task``, gated before it starts, is where a run leaves it once every one of its
        dependencies has ended (a failure ends its task in that run): its Condition decided on
        their outcomes, held, and the run stopped it at its gate and asked (it read waiting for
        the failed ones to run again, while the run had asked a person)."""
        ended = all(
            self.statuses[dep] in DECIDED or self.statuses[dep] == TaskStatus.FAILED for dep in task.dependencies
        )
        return ended and fallbacks.holds_on_ends(self.plan, self.statuses, task)

    def _stopped_at_gate_for(self, task: Task, dep: str) -> bool:
        """Whether ``task``, gated before it starts, is where a run leaves it when ``dep`` fails: a
        failure is the end of its task in that run, so the run decides ``task``'s Condition on it
        and, the Condition holding because it failed, stops ``task`` at its gate and asks. The next
        run may run ``dep`` again; until then, that is where ``task`` is, as the run says."""
        if self.statuses.get(dep) != TaskStatus.FAILED:
            return False
        return fallbacks.runs_because_it_failed(self.plan, self.statuses, task, dep)


# The states a task with a Condition decides on (what the next run leaves as they are)
DECIDED = frozenset({TaskStatus.COMPLETED, TaskStatus.BYPASSED, TaskStatus.CANCELLED, TaskStatus.REJECTED,
                     TaskStatus.SKIPPED})  # fmt: skip
_ENDED = DECIDED | {TaskStatus.FAILED}  # (and a failure, which ends its task in the run it failed in)


def _unreadable(plan: Plan, workspace: Workspace, records: Mapping[str, ResultRecord]) -> dict[str, str]:
    """The tasks whose result file is there but cannot be read as their result (a hand edit broke
    the frontmatter), each with why: not done, as the next run will say before it runs them."""
    if len(records) == len(plan.tasks):
        return {}
    present = set(workspace.result_names())
    found: dict[str, str] = {}
    for task in plan.tasks.values():
        if task.id in records or workspace.result_file(task) not in present:
            continue
        problem = documents.metadata_problem(workspace.result(task))
        if problem is not None:
            found[task.id] = problem
    return found


def _unskip(plan: Plan, views: dict[str, TaskView]) -> None:
    """A task skipped (or bypassed) for its upstream, none of whose dependencies is given up any
    more (a ``retry`` with no run going on put the cancelled one back; a run since completed it),
    is what the next run makes of it: it runs once they complete. Its skip no longer holds, and
    saying it does (``upstream T-01 was cancelled`` beside a pending T-01) would be stale.

    One whose upstream is given up still, for another cause than its own names (T-01 was
    cancelled, put back, and has failed since in a ``run --only T-01``), gets the cause that
    holds now, as the run that skipped it then would have: ``upstream T-01 failed``. A skip
    written before causes were recorded (no cause) is judged by its dependencies alone. An
    upstream given up that a Blocked cell holds since is not given up: the next run holds it,
    and what depends on it waits."""
    if not any(_for_upstream(v) for v in views.values()):
        return  # (no order to work out: most workspaces, most of the time)
    statuses = {task_id: view.status for task_id, view in views.items()}
    for task_id in dependencies_first({task_id: task.dependencies for task_id, task in plan.tasks.items()}):
        view = views[task_id]
        if not _for_upstream(view):
            continue
        # (dependencies first: one that was skipped for the same cause is judged already)
        # (one a Blocked cell holds is offered again by the next run, which holds it: no longer given up)
        held = next((d for d in view.dependencies if views[d].status in GIVEN_UP and not plan.tasks[d].blocked), None)
        if held is not None:
            if view.cause is not None and not holds(view.cause, statuses):
                up = views[held]
                cause = up.cause if _for_upstream(up) and up.cause is not None else Cause.upstream(held, up.status)
                view.move(view.status, cause)  # (no move of its state: the cause that holds now)
            continue
        fresh = TaskView.of(plan.tasks[task_id])  # pending, and waiting once the machine is asked
        fresh.attempts, fresh.run_attempts = view.attempts, view.run_attempts  # (numbers go on across runs)
        views[task_id] = fresh
        statuses[task_id] = fresh.status


def _for_upstream(view: TaskView) -> bool:
    """Skipped or bypassed for an upstream task (or skipped, by a version that kept no cause)."""
    if view.status == TaskStatus.SKIPPED and view.cause is None:
        return True
    return view.status in _FOR_UPSTREAM and view.cause is not None and view.cause.kind == CauseKind.UPSTREAM


_FOR_UPSTREAM = (TaskStatus.SKIPPED, TaskStatus.BYPASSED)
