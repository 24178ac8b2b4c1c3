"""Tasks that wait for a time: a ``Not before`` cell holds a ready task in the queue until then.

The run goes on with everything else meanwhile; with nothing else to do, its loop sleeps until the
first such time (``scheduler._until_next``). A held task shows as waiting, its reason the time.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.plan.model import Plan
from orchestrator.run.recorder import Recorder
from orchestrator.state.causes import Cause, CauseKind
from orchestrator.state.events.runs import Notice
from orchestrator.vocabulary import TaskStatus


class Timed:
    """Which ready tasks wait for their time, worked out at each turn of the loop."""

    def __init__(self) -> None:
        self._known = (-1, False)  # the plan's number of tasks when last looked at, and whether one is timed
        self.held: dict[str, float] = {}  # the ready tasks whose time has not come, and when it comes

    def _timed(self, plan: Plan) -> bool:
        """Whether a task of ``plan`` has a Not before: worked out again only when tasks were added."""
        if self._known[0] != len(plan.tasks):
            self._known = (len(plan.tasks), any(t.not_before is not None for t in plan.tasks.values()))
        return self._known[1]

    def update(self, plan: Plan, queued: Callable[[], list[str]], recorder: Recorder, now: float) -> None:
        """``held``: the queued tasks whose time has not come, and when it does; their views are
        made waiting (the time as the reason), and those whose time came, pending again. A plan
        with no Not before costs nothing (the loop asks at every turn)."""
        self.held = held = {}
        if not self._timed(plan):
            return
        for task_id in queued():
            moment = plan.tasks[task_id].not_before if task_id in plan.tasks else None
            view = recorder.views.get(task_id)
            if moment is not None and moment > now:
                held[task_id] = moment
                if view is not None and view.status == TaskStatus.PENDING:
                    view.move(TaskStatus.WAITING, Cause(CauseKind.NOT_BEFORE, until=moment))
                    recorder.emit(Notice(message=f"{task_id} waits: {view.reason} (its Not before)"))
            elif view is not None and view.cause is not None and view.cause.kind == CauseKind.NOT_BEFORE:
                view.move(TaskStatus.PENDING)
