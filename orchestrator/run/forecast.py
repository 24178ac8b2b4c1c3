"""What a run expects of its own end, told as it goes: a ``run_estimate`` event as it starts and
each time another hundredth of its tasks is finished (at most 101 a run, whatever its size), with
the seconds left, the expected end and cost (``run.estimates.eta`` on the run's live views); none
while no task left has a learned estimate or an Estimate cell (``run.estimates.known``). The
live view shows the latest, ``watch`` prints each (``output.reporter.estimate_line``); ``report``
reads them back after the fact to say how far off the run's estimate was at 25, 50 and 75% of
the way (``output.learning``). At the same moments, a deadline the estimates now say will be
missed, or that was, is told once (``deadline_at_risk``, ``deadline_missed``: ``run.deadlines``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from orchestrator.plan.model import Plan
from orchestrator.run.deadlines import RUN, any_deadline, deadline_line, verdicts
from orchestrator.run.estimates import Estimate, eta, known
from orchestrator.state.status import TaskView

Emit = Callable[..., None]


class Forecast:
    def __init__(
        self,
        plan: Plan,
        views: Mapping[str, TaskView],
        tasks: Iterable[str],
        estimates: Mapping[str, Estimate],
        max_parallel: int,
        emit: Emit,
    ) -> None:
        self.plan, self.views, self.estimates = plan, views, estimates
        self.tasks = [t for t in tasks if t in views]  # this run's
        self.max_parallel, self.emit = max_parallel, emit
        self.seconds = {t: e.seconds for t, e in estimates.items()}  # what each is expected to take
        # What a task_started says the run expected of it (``report`` compares): never the default.
        self.expected = {t: e.seconds for t, e in estimates.items() if e.source != "default"}
        self.deadlines, self.started = any_deadline(plan), time.time()  # (the run starts with its loop)
        self.told: set[tuple[str, str]] = set()  # (task or "run", state) already told
        self._step = -1  # the hundredth of the tasks finished when it last told

    def tell(self, finished: int) -> None:
        """``finished``: how many of the run's tasks are finished (completed, failed, never to
        run): told when that is another hundredth of them."""
        total = max(1, len(self.tasks))
        step = min(100, finished * 100 // total)
        if step == self._step:
            return
        self._step = step
        found = eta(self.plan, (self.views[t] for t in self.tasks), self.estimates, self.max_parallel)
        if known(found):  # (the 60 s defaults alone are no estimate: not told)
            assert found is not None
            self.emit("run_estimate", finished=finished, total=len(self.tasks), **found)
        if self.deadlines:  # (also with nothing left: a task done late, the run ending late)
            self._judge()

    def _judge(self) -> None:
        """Each deadline the estimates now say will be missed, or that was: told once of each."""
        views = [self.views[t] for t in self.tasks]
        now = time.time()  # (with nothing left to do, the run ends now)
        for verdict in verdicts(self.plan, views, self.estimates, self.max_parallel, self.started, now, now):
            key = (verdict["task"], verdict["state"])
            if key not in self.told:
                self.told.add(key)
                task = {} if verdict["task"] == RUN else {"task": verdict["task"]}
                self.emit(f"deadline_{verdict['state']}", **task, message=deadline_line(verdict),
                          **{k: verdict[k] for k in ("deadline", "expected_end", "written")})  # fmt: skip
