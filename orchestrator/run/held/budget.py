"""The run's budget, a pause and not a failure (``at_budget: finish``, the default).

Admission starts no attempt whose expected cost (its forecast's p50: ``run/forecasts/spend``) does
not fit what is left of ``max_cost`` once the attempts running are counted at theirs
(``Admission.fits``). What runs finishes. Once nothing runs and no task ready fits, the run is at
its budget: the tasks ready are held (``Holds``, each ``blocked`` for ``CauseKind.BUDGET``; what
needs them waits), one ``budget_reached`` says so (a notification), and the run waits for a
person's word as it waits at a gate: with ``run --wait`` it stays up, without it ends with exit 4
and the held tasks left to the next run. ``orchestrator budget +5`` (every door) asks the run going
on (``budget_requested``); the loop raises the limit here, the held tasks go on, and
``budget_raised`` answers. ``at_budget: stop`` stops what runs too (the machine's ``budget``
rule: each attempt cancelled for the budget, what depends on it skipped) before the run waits; a
raise brings them back (``run/inflight/live``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from orchestrator.run.held.holds import Holds
from orchestrator.run.limits.admission import Admission, Slot
from orchestrator.state.causes import Cause, CauseKind
from orchestrator.state.events.runs import BudgetRaised, BudgetReached
from orchestrator.state.events.tasks import TaskReleased
from orchestrator.vocabulary import TaskStatus, money

if TYPE_CHECKING:
    from orchestrator.run.recorder import Recorder

RAISE = "`orchestrator budget +USD` raises it"


class Budget:
    def __init__(self, admission: Admission, holds: Holds, recorder: Recorder, slot: Callable[[str], Slot]) -> None:
        self.admission, self.holds, self.recorder, self.slot = admission, holds, recorder, slot
        self.held: list[str] = []  # the tasks the budget holds now

    def hold(self, ready: Callable[[], Iterable[str]], running: bool) -> bool:
        """On the loop, with nothing ``running``: when no task ``ready`` (asked only then: the queue's
        ready tasks, at every turn of the loop) and not held already fits the budget, they are held
        and the run says so, once; True when it held them."""
        limit = self.admission.max_cost
        if running or limit is None:
            return False
        waiting = [task_id for task_id in ready() if task_id not in self.holds]
        slots = {task_id: self.slot(task_id) for task_id in waiting}
        if not waiting or any(self.admission.fits(slot) for slot in slots.values()):
            return False
        if self.held:  # (a task ready since the run paused, a row added: held with the others, told once)
            self._held(waiting, self.holds.causes[self.held[0]])
            return True
        spent = self.admission.cost
        cheapest = min(waiting, key=lambda t: slots[t].expected_cost or 0.0)
        expected = slots[cheapest].expected_cost
        if spent >= limit:
            said = f"the run has spent its budget: ${spent:.4f} of {money(limit)}"
        else:
            said = (f"{money(limit - spent)} of the budget ({money(limit)}) is left, and the cheapest task "
                    f"ready, {cheapest}, is expected to cost {money(expected or 0.0)}")  # fmt: skip
        self._held(waiting, Cause.of(CauseKind.BUDGET, f"{said}; {RAISE}"))
        tasks = tuple(sorted(waiting))
        message = f"{said}: nothing new starts ({len(tasks)} waiting); {RAISE} and the run goes on"
        self.recorder.emit(BudgetReached(spent=round(spent, 6), limit=limit, tasks=tasks, next=cheapest,
                                         expected=expected, message=message))  # fmt: skip
        return True

    def _held(self, tasks: list[str], cause: Cause) -> None:
        """``tasks`` held for ``cause``: not started, and told blocked (what depends on them waits)."""
        for task_id in tasks:
            self.holds.hold(task_id, cause)
            if self.recorder.views[task_id].status in (TaskStatus.PENDING, TaskStatus.WAITING):
                self.recorder.blocked(self.recorder.plan.tasks[task_id], cause)
        self.held += tasks

    def raise_to(self, limit: float, request: str, by: str | None = None, via: str | None = None) -> BudgetRaised:
        """The budget is ``limit`` dollars from now: the tasks it held go on (each pending again)."""
        was, self.admission.max_cost = self.admission.max_cost, limit
        released, self.held = self.held, []
        plan, views = self.recorder.plan, self.recorder.views
        for task_id in released:
            self.holds.release(task_id)
            if views[task_id].status == TaskStatus.BLOCKED:
                done = all(views[dep].status == TaskStatus.COMPLETED for dep in plan.tasks[task_id].dependencies)
                views[task_id].move(TaskStatus.PENDING if done else TaskStatus.WAITING)
                self.recorder.emit(TaskReleased(task=task_id, agent=plan.tasks[task_id].agent))
        raised = BudgetRaised(limit=limit, was=was, spent=round(self.admission.cost, 6), request=request, by=by,
                              via=via, released=tuple(sorted(released)))  # fmt: skip
        self.recorder.emit(raised)
        return raised
