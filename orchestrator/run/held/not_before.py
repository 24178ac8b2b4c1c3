"""Tasks that wait for a time: a ``Not before`` cell holds a ready task in the queue until then.

The run goes on with everything else meanwhile; with nothing else to do, its loop sleeps until the
first such time (``scheduler._until_next``). Whether a task's time has come is the machine's to
judge (the ``not-before`` rule, told at each turn of the loop); a held task shows as waiting, its
reason the time.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.machine.stimuli import Scheduled, Stimulus
from orchestrator.plan.model import Plan
from orchestrator.run.recorder import Recorder
from orchestrator.run.telling import Verdict
from orchestrator.state.causes import Cause, CauseKind
from orchestrator.state.events.runs import Notice
from orchestrator.vocabulary import TaskStatus


class Timed:
    """Which ready tasks wait for their time, worked out at each turn of the loop."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self._known = (-1, False)  # the plan's number of tasks when last looked at, and whether one is timed
        self.held: dict[str, float] = {}  # the ready tasks whose time has not come, and when it comes

    def _timed(self, plan: Plan) -> bool:
        """Whether a task of ``plan`` has a Not before: worked out again only when tasks were added."""
        if self._known[0] != len(plan.tasks):
            self._known = (len(plan.tasks), any(t.not_before is not None for t in plan.tasks.values()))
        return self._known[1]

    def update(self, plan: Plan, queued: Callable[[], list[str]], tell: Callable[[Stimulus], Verdict],
               stamp: Callable[[], int], now: float) -> None:  # fmt: skip
        """``held``: the queued tasks whose time has not come, and when it does, as the machine
        judges each (``Scheduled``, the ``not-before`` rule: their views made waiting, the time as
        the reason, and those whose time came, pending again). A plan with no Not before costs
        nothing (the loop asks at every turn)."""
        self.held = held = {}
        if not self._timed(plan):
            return
        for task_id in queued():
            moment = plan.tasks[task_id].not_before if task_id in plan.tasks else None
            if moment is None:
                continue
            until = tell(Scheduled(id=stamp(), task=task_id, not_before=moment, now=now)).until
            if until is not None:
                held[task_id] = until

    def waits(self, task_id: str, cause: Cause) -> None:
        """``task_id`` waits for its Not before (the machine said so): its view says it, once."""
        view = self.recorder.views.get(task_id)
        if view is not None and view.status == TaskStatus.PENDING:
            view.move(TaskStatus.WAITING, cause)
            self.recorder.emit(Notice(message=f"{task_id} waits: {view.reason} (its Not before)"))

    def came(self, task_id: str) -> None:
        """``task_id``'s Not before came (the machine said so): waiting for it, it is ready again."""
        view = self.recorder.views.get(task_id)
        cause = view.cause if view is not None else None
        if view is not None and view.status == TaskStatus.WAITING and cause and cause.kind == CauseKind.NOT_BEFORE:
            view.move(TaskStatus.PENDING)
