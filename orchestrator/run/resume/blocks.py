"""The status blocks of master_plan.md as a run writes them, about once a second and at its end.

They show the run's own views of its tasks (it knows more than its files do: a task put back in
the queue, one ready to start) and, beside ✅, each completed task that ``run`` would do again
now, marked as ``status`` and the dashboard mark it: ``freshness.out_of_date``, judged against
the plan as it is on disk now (a row edited while the run goes on makes a task it completed out
of date, as ``status`` says at once), from the results the run holds (those on disk at its start,
then its own: no result file read again).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import anyio

from orchestrator import timing
from orchestrator.errors import OrchestratorError
from orchestrator.output.sections import status_blocks
from orchestrator.output.templates import Renders
from orchestrator.plan.instances import rows_only
from orchestrator.plan.model import Plan
from orchestrator.run.resume import freshness
from orchestrator.run.resume.prepared import Prepared
from orchestrator.state import planfile
from orchestrator.state.plans import plan_of
from orchestrator.state.results import ResultRecord
from orchestrator.state.status import TaskView
from orchestrator.state.workspace import Workspace
from orchestrator.views.replay import collect


class Blocks:
    """The blocks a run writes: marked as ``status`` marks, rewritten only when what they show
    changed (nothing in them moves with the clock), or to put back a person's late save."""

    def __init__(self, workspace: Workspace, templates: Renders, *, only: bool = False) -> None:
        self.workspace = workspace
        self.templates = templates  # a run's: a template that fails mid-run is told, not fatal
        # Only a `run --only` leaves completed tasks out of date (those downstream of what it runs,
        # which it does not run); in any other run a task whose upstream runs is run too.
        self.only = only
        self.shown = Shown()
        self._plan: Plan | None = None  # the plan on disk, as last read: what ``status`` judges against
        self._watch: planfile.PersonWatch | None = None  # whether a person changed it since

    async def due(
        self, prepared: Prepared, records: Mapping[str, ResultRecord], *, new_results: bool
    ) -> list[planfile.Block] | None:
        """The blocks to write now, or ``None`` when they would show what they show (and no save
        of a person's waits in the file the last write took out: ``planfile.saved_late``). The marks
        are judged when a person changed the plan, and in a ``run --only`` at first and when
        results were written since (``new_results``). In any other run no completed task is out
        of date (it would have been selected to run) until the plan changes, and a judgement at
        10,000 tasks (about 0.1 s, and 10 MB held while it lasts) is not made for nothing."""
        if not prepared.plan.settings.status_blocks:
            return None
        watch = self._start(prepared)
        changed = watch.moved() and await anyio.to_thread.run_sync(self._read, watch)
        views = list(prepared.views.values())
        if changed or (self.only and (new_results or not self.shown.written)):
            self._mark(prepared, views, records)
        plan = rows_only(prepared.plan)  # (a row stands for its instances)
        views = [view for view in views if view.id in plan.tasks]
        if not self.shown.changed(views) and not self._saved_late():
            return None
        return status_blocks(plan, views, self.templates)

    def _saved_late(self) -> bool:
        """Whether a person's save waits in the file the last write took out, still for a moment
        (``planfile.saved_late``): the blocks are written again, which puts it back."""
        late = planfile.saved_late(self.workspace.plan_file)
        return late is not None and late >= timing.current().late_quiet

    def final(self, prepared: Prepared, records: Mapping[str, ResultRecord]) -> list[planfile.Block]:
        """The blocks at the run's end, whatever they showed before."""
        self._read(self._start(prepared))
        views = list(prepared.views.values())
        if self.only or self._plan is not None:  # (else nothing is out of date: see ``due``)
            self._mark(prepared, views, records)
        plan = rows_only(prepared.plan)
        return status_blocks(plan, [view for view in views if view.id in plan.tasks], self.templates)

    def forget(self) -> None:
        self.shown.forget()

    def _mark(self, prepared: Prepared, views: list[TaskView], records: Mapping[str, ResultRecord]) -> None:
        plan = self._plan or prepared.plan
        held = {task_id: record for task_id, record in records.items() if task_id in plan.tasks}  # (rows deleted)
        freshness.mark(views, *freshness.judged(plan, self.workspace, held))

    def _start(self, prepared: Prepared) -> planfile.PersonWatch:
        """The plan the run read is the plan on disk until a person changes it: not parsed a
        second time (a 10,000-task plan held twice is 15 MB of a run's memory)."""
        if self._watch is None:
            self._watch = planfile.PersonWatch(self.workspace.plan_file, prepared.plan.text)
        return self._watch

    def _read(self, watch: planfile.PersonWatch) -> bool:
        """The plan on disk read again if a person changed it (a plan that cannot be read now,
        being edited, leaves the last one read); whether it did change. ``LiveQueue`` reads it
        too, with the command line's overrides and checked, for the tasks added to it: this is
        the plan as ``status`` reads it."""
        if not watch.changed():
            return False
        try:
            self._plan = plan_of(self.workspace)
        except (OrchestratorError, OSError):
            return False
        return True


def as_status_reads(
    prepared: Prepared, workspace: Workspace, written: Mapping[str, ResultRecord], *, only: bool
) -> None:
    """At the end of a ``run --only``, the views of the tasks it neither ran nor recorded made what
    ``status`` reads now, not what was read at its start: a task skipped for an upstream the run
    ran again says what holds now (still skipped, with the cause; waiting once it completed), in
    the blocks and in ``run_finished``'s counts as in ``status``. (Without ``--only`` a task
    outside the run is done or cancelled: nothing the run does changes how it reads.)"""
    if not only:
        return
    ran = set(prepared.selection.run) | set(written)
    if all(task_id in ran for task_id in prepared.views):
        return
    now = {view.id: view for view in collect(prepared.plan, workspace, {**prepared.records, **written})}
    for task_id, view in prepared.views.items():
        if task_id not in ran and task_id in now:
            # (as status reads it: the state the replay's machine holds of it, not a move this run
            # made; what this run booked of it, its retries, kept)
            seen, held = now[task_id].state, view.state
            view.state = replace(seen, retries=held.retries, limited=held.limited)


class Shown:
    """What of the tasks' views the status blocks show, as last written: a second in which none
    of it changed rewrites nothing (nothing in them moves with the clock)."""

    def __init__(self) -> None:
        self._last: list[object] | None = None

    @property
    def written(self) -> bool:
        return self._last is not None

    def changed(self, views: list[TaskView]) -> bool:
        """Whether ``views`` show anything the blocks do not; if so, they are taken as shown."""
        now: list[object] = [
            (
                v.id,
                v.status,
                v.attempts,
                v.started,
                v.finished,
                v.duration,
                v.cost_usd,
                v.simulated,
                v.out_of_date,
                v.reason,
            )
            for v in views
        ]
        if now == self._last:
            return False
        self._last = now
        return True

    def forget(self) -> None:
        """The blocks could not be written: the next flush writes them, changed or not."""
        self._last = None
