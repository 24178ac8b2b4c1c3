"""Tasks a person holds back: a row's Blocked cell (``orchestrator update T-03 --status blocked``).

A held task is never started; what depends on it waits; the rest of the run goes on. The run
ends once nothing but held tasks (and what needs them) is left, and leaves them as they are,
with no result: the next run, once they are released (the cell emptied, ``--status pending``),
goes on with them. A row released or blocked while the run goes on is taken then (``run.live``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from orchestrator.plan.graph import ReadyQueue, descendants
from orchestrator.plan.model import Plan, Task
from orchestrator.state.status import TaskView, blocked_reason
from orchestrator.vocabulary import ExitCode, TaskStatus


class Holds:
    def __init__(self, plan: Plan, selected: Iterable[str]) -> None:
        self.plan = plan
        # task -> why it is held, as its view says it
        self.reasons = {t: blocked_reason(plan.tasks[t]) for t in selected if plan.tasks[t].blocked is not None}

    def follow(self, plan: Plan, waiting: Iterable[str]) -> tuple[list[str], list[str]]:
        """The plan as a person left it now: which of the tasks ``waiting`` (not started, not
        finished) its Blocked cells hold from now on, and which held tasks they release."""
        held, released = [], []
        for task_id in waiting:
            task = plan.tasks.get(task_id)
            if task is None:
                continue
            if task.blocked is not None and task_id not in self.reasons:
                self.reasons[task_id] = blocked_reason(task)
                held.append(task_id)
            elif task.blocked is None and self.reasons.pop(task_id, None) is not None:
                released.append(task_id)
        return held, released

    def __contains__(self, task_id: object) -> bool:
        return task_id in self.reasons

    def startable(self, queue: ReadyQueue) -> bool:
        """Whether a task is ready that is not held."""
        return any(task_id not in self.reasons for task_id in queue.ready())

    def tell(self, blocked: Callable[[Task, str], None]) -> None:
        """``blocked(task, why)`` for each task held now (as a run begins)."""
        for task_id, reason in self.reasons.items():
            blocked(self.plan.tasks[task_id], reason)

    def without(self, tasks: Iterable[str]) -> list[str]:
        """``tasks`` but those held and those that depend on one of them: they wait, with no result."""
        kept = set(self.reasons)
        for task_id in self.reasons:
            kept |= descendants(self.plan.graph, task_id)
        return [task_id for task_id in tasks if task_id not in kept]


def exit_code(bad: bool, stopped: str | None, views: list[TaskView]) -> ExitCode:
    """A run's: OK when all is done; HELD when all it left undone waits for a person (blocked
    tasks, and what needs them); FAILED otherwise."""
    if not (bad or stopped):
        return ExitCode.OK
    return ExitCode.HELD if not stopped and only_held(views) else ExitCode.FAILED


def only_held(views: Iterable[TaskView]) -> bool:
    """Whether all a run left undone waits for a person: tasks blocked, and what needs them."""
    undone = [view for view in views if view.status != TaskStatus.COMPLETED]
    return any(v.status == TaskStatus.BLOCKED for v in undone) and all(
        v.status in (TaskStatus.BLOCKED, TaskStatus.WAITING) for v in undone
    )


def follow_holds(
    holds: Holds,
    plan: Plan,
    views: dict[str, TaskView],
    busy: Iterable[str],
    blocked: Callable[[Task, str], None],
    emit: Callable[..., None],
) -> None:
    """On the loop, the plan as a person left it now: the tasks not started (nor in ``busy``,
    waiting for a retry) it holds from now on are ``blocked`` (their views say so), and those it
    releases are pending or waiting again (as ``settle_waiting`` would have them), each told."""
    skip = set(busy)
    held, released = holds.follow(plan, [t for t, v in views.items() if v.status in _NOT_STARTED and t not in skip])
    for task_id in held:
        blocked(plan.tasks[task_id], holds.reasons[task_id])
    for task_id in released:
        done = all(views[dep].status == TaskStatus.COMPLETED for dep in plan.tasks[task_id].dependencies)
        views[task_id].status, views[task_id].reason = (TaskStatus.PENDING if done else TaskStatus.WAITING), None
        emit("task_released", task=task_id, agent=plan.tasks[task_id].agent)


_NOT_STARTED = (TaskStatus.PENDING, TaskStatus.WAITING, TaskStatus.BLOCKED)
