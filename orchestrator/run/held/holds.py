"""Tasks a person holds back: a row's Blocked cell (``orchestrator update T-03 --status blocked``),
and tasks at their Approval gate (``run/held/gates``).

A held task is never started; what depends on it waits; the rest of the run goes on. The run
ends once nothing but held tasks (and what needs them) is left, and leaves them as they are,
with no result: the next run, once they are released (the cell emptied, ``--status pending``),
goes on with them. A row released or blocked while the run goes on is taken then (``run/inflight/live``).

With ``run --wait`` (``Patience``) the run does not end there: it stays up while tasks wait for
a person, takes each word as it is given (`approve`, `reject`, `update`, the dashboard), and
ends once nothing is left to do or wait for, or at ``--wait-timeout``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping

from orchestrator.plan.graph import descendants
from orchestrator.plan.model import Plan, Task
from orchestrator.plan.queue import ReadyQueue
from orchestrator.plan.table.times import iso
from orchestrator.run.resume.prepared import Prepared
from orchestrator.state import fallbacks
from orchestrator.state.causes import Cause
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.runs import Notice, RunWaiting
from orchestrator.state.events.tasks import TaskReleased
from orchestrator.state.status import TaskView, blocked_cause
from orchestrator.state.taskstate import TaskState
from orchestrator.vocabulary import ExitCode, TaskStatus, listed


class Holds:
    """The tasks a person holds: each one's ``hold`` (why) and ``gate`` kept in the task's state
    the run's machine holds (``tasks``, ``TaskState``), which its ``hold`` rule reads; here, which
    tasks those are, so that what waits for a person is found without a look at every task."""

    def __init__(self, plan: Plan, selected: Iterable[str], tasks: MutableMapping[str, TaskState]) -> None:
        self.plan, self.tasks = plan, tasks
        self._held: dict[str, None] = {}  # the tasks held, in the order they were (a set that keeps it)
        self.patience: Patience | None = None  # ``run --wait``: the run waits for a person (None: it ends)
        for task_id in selected:
            if (task := plan.tasks[task_id]).blocked is not None:
                self.hold(task_id, blocked_cause(task))

    @property
    def causes(self) -> Mapping[str, Cause]:
        """Each task held, and why."""
        return {task_id: cause for task_id in self._held if (cause := self.tasks[task_id].hold) is not None}

    @property
    def gates(self) -> Mapping[str, str]:
        """Each task held at its Approval gate, and which: before, after."""
        return {task_id: gate for task_id in self._held if (gate := self.tasks[task_id].gate) is not None}

    def hold(self, task_id: str, cause: Cause) -> None:
        """``task_id`` held back, for ``cause``."""
        self.tasks[task_id].hold = cause
        self._held[task_id] = None

    def gate(self, task_id: str, gate: str, cause: Cause) -> None:
        """``task_id`` waits at its Approval ``gate`` (``run/held/gates``)."""
        self.hold(task_id, cause)
        self.tasks[task_id].gate = gate

    def release(self, task_id: str) -> None:
        """``task_id`` held no more (a person's word on its gate)."""
        if task_id in self._held:
            del self._held[task_id]
            state = self.tasks[task_id]
            state.hold = state.gate = None

    def follow(self, plan: Plan, waiting: Iterable[str]) -> tuple[list[str], list[str]]:
        """The plan as a person left it now: which of the tasks ``waiting`` (not started, not
        finished) its Blocked cells hold from now on, and which held tasks they release."""
        held, released = [], []
        for task_id in waiting:
            task = plan.tasks.get(task_id)
            if task is None:
                continue
            if task.blocked is not None and task_id not in self._held:  # (one at a gate waits there)
                self.hold(task_id, blocked_cause(task))
                held.append(task_id)
            elif task.blocked is None and task_id in self._held and self.tasks[task_id].gate is None:
                self.release(task_id)
                released.append(task_id)
        return held, released

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._held

    def startable(self, queue: ReadyQueue) -> bool:
        """Whether a task is ready that is not held."""
        return any(task_id not in self._held for task_id in queue.ready())

    def goes_on(self, queue: ReadyQueue) -> bool:
        """Whether the run has something to start, or (``run --wait``) a person to wait for."""
        if self.startable(queue):
            return True
        return self.patience is not None and bool(self._held) and self.patience.waits(self)

    def wake_at(self) -> float | None:
        """When the run stops waiting for a person, if it waits with a limit (wall clock)."""
        return self.patience.until if self.patience is not None and self._held else None

    def tell(self, blocked: Callable[[Task, Cause], None]) -> None:
        """``blocked(task, why)`` for each task held now (as a run begins)."""
        for task_id, cause in self.causes.items():
            blocked(self.plan.tasks[task_id], cause)

    def without(self, tasks: Iterable[str]) -> list[str]:
        """``tasks`` but those held and those that depend on one of them: they wait, with no result."""
        kept = set(self._held)
        for task_id in self._held:
            kept |= descendants(self.plan.graph, task_id)
        return [task_id for task_id in tasks if task_id not in kept]


class Patience:
    """``run --wait``: how long a run waits for a person once it has nothing else to do (``until``:
    a wall-clock moment; ``None``: as long as it takes). Told once each time it begins waiting."""

    def __init__(self, until: float | None, emit: Callable[[EventRecord], None]) -> None:
        self.until = until
        self.emit = emit  # (the run's events: ``Recorder.emit``)
        self.over = False
        self._told: frozenset[str] = frozenset()

    def waits(self, holds: Holds) -> bool:
        """Whether the run goes on waiting for the tasks ``holds`` holds: said when what it waits
        for changes; once past ``until``, said, and no more."""
        if self.over:
            return False
        held = frozenset(holds.causes)
        if self.until is not None and time.time() >= self.until:
            self.over = True
            waited = listed(sorted(held)[:5], len(held))
            self.emit(Notice(message=f"run --wait: no word came for {waited} by {iso(self.until)}; "
                                     "the run ends, and a later run goes on with them"))  # fmt: skip
            return False
        if held != self._told:
            self._told = held
            waiting = sorted(held)
            gates = {task_id: holds.gates[task_id] for task_id in waiting if task_id in holds.gates}
            self.emit(RunWaiting(tasks=tuple(waiting), gates=gates, until=iso(self.until) if self.until else None,
                                 reasons={t: holds.causes[t].sentence(t) for t in waiting}))  # fmt: skip
        return True


def exit_code(prepared: Prepared, stopped: str | None, *, only: bool) -> ExitCode:
    """A run's: OK when all it ran is done (a false condition too, and a failure a fallback took
    over); HELD when all it left undone waits for a person (blocked tasks, tasks at an approval
    gate, and what needs them); FAILED otherwise, or when it stopped early. A task left as an
    earlier run left it (cancelled, rejected, skipped for one of those or for a failure a
    fallback took over: ``run/resume/settled``, ``state/fallbacks``), and so not started in this
    one, counts as it did then (unless ``only`` named what to run): a finished plan run again
    exits as it did."""
    views, plan = prepared.views, prepared.plan
    taken_over = fallbacks.taken_over(plan, {task_id: view.status for task_id, view in views.items()})
    bad = any(views[t].status not in DONE and t not in taken_over for t in prepared.selection.run)
    left = any(v.status in _GIVEN_UP and v.id not in taken_over for v in views.values())
    bad = bad or (not only and left)
    if not (bad or stopped):
        return ExitCode.OK
    return ExitCode.HELD if not stopped and only_held(views.values()) else ExitCode.FAILED


def only_held(views: Iterable[TaskView]) -> bool:
    """Whether all a run left undone waits for a person: tasks blocked, and what needs them."""
    undone = [view for view in views if view.status not in DONE]
    return any(v.status in HELD for v in undone) and all(v.status in (*HELD, TaskStatus.WAITING) for v in undone)


def follow_holds(
    holds: Holds,
    plan: Plan,
    views: dict[str, TaskView],
    busy: Iterable[str],
    blocked: Callable[[Task, Cause], None],
    emit: Callable[[EventRecord], None],
) -> None:
    """On the loop, the plan as a person left it now: the tasks not started (nor in ``busy``,
    waiting for a retry) it holds from now on are ``blocked`` (their views say so), and those it
    releases are pending or waiting again (as ``views/replay`` would have them), each told."""
    skip = set(busy)
    held, released = holds.follow(plan, [t for t, v in views.items() if v.status in _NOT_STARTED and t not in skip])
    for task_id in held:
        blocked(plan.tasks[task_id], holds.causes[task_id])
    for task_id in released:
        done = all(views[dep].status == TaskStatus.COMPLETED for dep in plan.tasks[task_id].dependencies)
        views[task_id].move(TaskStatus.PENDING if done else TaskStatus.WAITING)
        emit(TaskReleased(task=task_id, agent=plan.tasks[task_id].agent))


_GIVEN_UP = (TaskStatus.CANCELLED, TaskStatus.REJECTED, TaskStatus.SKIPPED, TaskStatus.FAILED)
DONE = (TaskStatus.COMPLETED, TaskStatus.BYPASSED)  # what a run leaves as it should (a false condition too)
HELD = (TaskStatus.BLOCKED, TaskStatus.AWAITING_APPROVAL)  # waiting for a person
_NOT_STARTED = (TaskStatus.PENDING, TaskStatus.WAITING, TaskStatus.BLOCKED)
