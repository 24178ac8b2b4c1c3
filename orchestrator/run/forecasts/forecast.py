"""What a run expects of its own end, told as it goes: a ``run_estimate`` event as it starts and
each time another hundredth of its tasks is finished (at most 101 a run, whatever its size), with
the seconds left, the expected end and cost (``run/forecasts/estimates.eta`` on the run's live views); none
while no task left has a learned estimate or an Estimate cell (``run/forecasts/estimates.known``). The
live view shows the latest, ``watch`` prints each (``output.lines.estimate_line``); ``report``
reads them back after the fact to say how far off the run's estimate was at 25, 50 and 75% of
the way (``output.learning``). At the same moments, a deadline the estimates now say will be
missed, or that was, is told once (``deadline_at_risk``, ``deadline_missed``: ``run/forecasts/deadlines``);
and on time, between tasks' ends: as each deadline's moment passes (a deadline missed during a
long task is told then), and every ``timing.deadline_recheck`` seconds while one is still to come (a running
task that overruns its estimate turns at risk). The loop wakes for it (``wake_at``)."""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterable, Iterator, Mapping

from orchestrator import timing
from orchestrator.plan.model import Plan
from orchestrator.run.forecasts.deadlines import RUN, any_deadline, deadline_line, verdicts
from orchestrator.run.forecasts.estimates import Estimate, eta, known
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.runs import DeadlineAtRisk, DeadlineMissed, RunEstimate
from orchestrator.state.status import TaskView

Emit = Callable[[EventRecord], None]
_DEADLINES = {"at_risk": DeadlineAtRisk, "missed": DeadlineMissed}  # a verdict's state, its event


class Forecast:
    def __init__(
        self,
        plan: Plan,
        views: Mapping[str, TaskView],
        tasks: Iterable[str],
        estimates: Mapping[str, Estimate],
        max_parallel: int,
        emit: Emit,
        costs: Mapping[str, float] | None = None,
    ) -> None:
        self.plan, self.views, self.estimates = plan, views, estimates
        self.costs = costs or {}  # task -> its expected cost (``run/forecasts/spend``'s p50)
        self.tasks = [t for t in tasks if t in views]  # this run's
        # (and the items of its rows outside its plan yet, which join as its slots free: ``run/rows``)
        self.total = len(self.tasks) + plan.outside()
        self.max_parallel, self.emit = max_parallel, emit
        self.seconds = {t: e.seconds for t, e in estimates.items()}  # what each is expected to take
        # What a task_started says the run expected of it (``report`` compares): never the default.
        self.expected = {t: e.seconds for t, e in estimates.items() if e.source != "default"}
        self.deadlines, self.started = any_deadline(plan), time.time()  # (the run starts with its loop)
        self.told: set[tuple[str, str]] = set()  # (task or "run", state) already told
        self._step = -1  # the hundredth of the tasks finished when it last told
        self.moments = sorted(_moments(plan, self.tasks, self.started)) if self.deadlines else []
        self._judged = self.started  # (wall clock) when the deadlines were last judged
        # Whether any of its tasks has an estimate learned or given: with none, an ETA is no estimate
        # (``estimates.known``) and is never told, so it is not worked out (a graph walk of them all,
        # a hundred times a run: 30 s at 100,000 items).
        self._informed = any(estimates[t].source != "default" for t in self.tasks if t in estimates)

    def tell(self, finished: int) -> None:
        """``finished``: how many of the run's tasks are finished (completed, failed, never to
        run): told when that is another hundredth of them; the deadlines also when their time
        to be judged again has come (``wake_at``)."""
        step = min(100, finished * 100 // max(1, self.total))
        if step == self._step:
            wake = self.wake_at()
            if wake is not None and time.time() >= wake:
                self._judge()
            return
        self._step = step
        found = None
        if self._informed:
            outside = {row: len(later.left) for row, later in self.plan.later.items()}  # (its row weighs them)
            found = eta(self.plan, self._views(), self.estimates, self.max_parallel, costs=self.costs,
                        items_left=outside)  # fmt: skip
        if known(found):  # (the 60 s defaults alone are no estimate: not told)
            assert found is not None
            self.emit(RunEstimate(finished=finished, total=self.total, **found))
        if self.deadlines:  # (also with nothing left: a task done late, the run ending late)
            self._judge()

    def _views(self) -> Iterator[TaskView]:
        """Its tasks' views: a row's item that completed and left the plan has none (``run/rows``)."""
        return (view for task_id in self.tasks if (view := self.views.get(task_id)) is not None)

    def wake_at(self) -> float | None:
        """When (wall clock) the deadlines are judged again though no task has finished: just after
        the next deadline moment, or ``timing.deadline_recheck`` after the last judgement if sooner;
        ``None`` once every moment has passed (what is left to tell is told as tasks finish and the
        run ends)."""
        index = bisect.bisect_left(self.moments, self._judged)
        if index == len(self.moments):
            return None
        return min(self.moments[index] + 0.01, self._judged + timing.current().deadline_recheck)

    def _judge(self) -> None:
        """Each deadline the estimates now say will be missed, or that was: told once of each."""
        views = list(self._views())
        now = self._judged = time.time()  # (with nothing left to do, the run ends now)
        for verdict in verdicts(self.plan, views, self.estimates, self.max_parallel, self.started, now, now):
            key = (verdict["task"], verdict["state"])
            if key not in self.told:
                self.told.add(key)
                told = _DEADLINES[verdict["state"]]
                self.emit(told(task=None if verdict["task"] == RUN else verdict["task"], message=deadline_line(verdict),
                               **{k: verdict[k] for k in ("deadline", "expected_end", "written")}))  # fmt: skip


def _moments(plan: Plan, tasks: Iterable[str], started: float) -> list[float]:
    """When each deadline of the run and its ``tasks`` falls, for a run begun at ``started``."""
    found = [plan.tasks[t].deadline for t in tasks if t in plan.tasks]
    found.append(plan.settings.deadline)
    return [m for d in found if d is not None and (m := d.moment(started)) is not None]
