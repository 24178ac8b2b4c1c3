"""Which completed results ``run`` would do again now, and why: what ``status``, ``graph``,
``check`` and master_plan.md's status blocks show beside ✅ (``TaskView.out_of_date``).

``run`` decides (``settled.settle``, the same rule fed with the same fingerprints): a
completed result is done when its fingerprint is the one its task would have now and every
dependency is done. What differs is how the fingerprint now is known, without rendering 10,000
briefs (0.7 s; ``status`` has 0.3 s in all): from the ``inputs`` digest the run recorded
(``basis``), a few µs a task:

- its ``plan`` part is the plan's now (nothing in the plan, its profiles or templates changed
  since the run): its row's inputs are as they were;
- else its ``task`` part is asked: equal, they are; different, the fingerprint may differ (or not:
  a cell the brief does not show), so that task's brief is rendered and the fingerprint
  compared, as run would (every such task's: a change to the whole plan then costs what
  rendering every brief costs, 0.1-0.7 ms a task, but status never says run will redo a task
  it will not);
- its ``upstream`` part is asked when a dependency's result is newer than its attempt: different,
  the fingerprint differs (an upstream result changed).

A brief edited by hand after its task ran is found as ``run`` finds it (its fingerprint covers
the brief on disk): one ``stat`` of each completed task's brief (25 ms at 10,000 completed tasks,
nothing for those not run yet); a brief written after its result's attempt began, which run
would keep as edited by hand, is read and its fingerprint asked. One edited before the plan
changed for its task is found by the ``task`` part above, from the brief run would use.

A result written by a version before ``inputs`` was recorded counts as up to date unless
something upstream of it will run again: no workspace is called out of date wholesale for
being older. A made-up result (the fake executor's) is judged like any other: it already says
it is simulated.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Iterable, Mapping

from orchestrator.errors import OrchestratorError
from orchestrator.moments import epoch_of
from orchestrator.output.briefs import brief_body, edited_body
from orchestrator.output.templates import Templates
from orchestrator.plan.config.profiles import Profiles
from orchestrator.plan.graph import dependencies_first
from orchestrator.plan.model import Plan, Task
from orchestrator.run.resume.basis import BASIS_VERSION, Basis, Signatures, inputs_now
from orchestrator.run.resume.selection import expected_fingerprint
from orchestrator.run.resume.settled import fields_in, settle
from orchestrator.state.plans import plan_of
from orchestrator.state.results import ResultRecord
from orchestrator.state.status import TaskView, archived_records, read_records
from orchestrator.state.workspace import Workspace
from orchestrator.views.replay import collect
from orchestrator.vocabulary import TaskStatus

PLAN_CHANGED = "its row, details, settings, type, profile or a template changed since it ran"
BRIEF_EDITED = "its brief was edited by hand since it ran"
NO_FINGERPRINT = "its result does not record what it was run from"


def current_views(plan: Plan, workspace: Workspace, whole: Plan | None = None) -> list[TaskView]:
    """``views/replay.collect``, with each completed task that ``run`` would do again marked so;
    ``whole``: the plan that ``plan`` is a part of (``upstream_of``), whose every task a gate's
    word is given on (the ``inputs`` digest covers the plan)."""
    records = read_records(plan, workspace)  # (read once: most of what status costs)
    views = collect(plan, workspace, records, inputs=inputs_now(whole or plan, workspace, records))
    stale, stays = judged(plan, workspace, records)
    mark(views, stale, stays)
    return views


def current_view(plan: Plan, workspace: Workspace, task_id: str) -> TaskView:
    """``current_views``' view of ``task_id`` alone, derived from it and the tasks it depends on,
    however far up (what its state, its gate's word and whether it is out of date are read from),
    not from every task of the plan: what `approve T-04` and `add`'s answer ask. Whether a finished
    task that did not complete stays so in the next run (``settled``: a fallback downstream may take
    a failure over) is a judgement of the whole plan, not made here (``None``)."""
    view = next(v for v in current_views(upstream_of(plan, task_id), workspace, plan) if v.id == task_id)
    if view.status != TaskStatus.COMPLETED:
        view.settled = None
    return view


def upstream_of(plan: Plan, task_id: str) -> Plan:
    """``plan`` cut down to ``task_id`` and the tasks it depends on, however far up: all that its
    view, its inputs and its gate's word are read from."""
    upstream, left = {task_id}, [task_id]  # (walked off the rows: no graph built, no networkx imported)
    while left:
        for dependency in plan.tasks[left.pop()].dependencies:
            if dependency in plan.tasks and dependency not in upstream:
                upstream.add(dependency)
                left.append(dependency)
    return dataclasses.replace(plan, tasks={t: task for t, task in plan.tasks.items() if t in upstream})


def views_in(workspace: Workspace) -> list[TaskView] | None:
    """``current_views`` for ``check``, which counts what ``status`` shows: ``None`` when the plan
    cannot be read now (``check`` tells what needs a person, and a plan being edited does not)."""
    try:
        plan = plan_of(workspace)
    except OrchestratorError:
        return None
    return current_views(plan, workspace)


def mark(views: Iterable[TaskView], stale: Mapping[str, str], stays: Mapping[str, TaskStatus] | None = None) -> None:
    """Each completed view out of date as ``stale`` says; each finished one settled (it stays as
    it is in the next run: ``run/resume/settled``) as ``stays`` says (``None``: every finished one that
    is not completed runs again, and every completed one not stale stays)."""
    for view in views:
        done = view.status == TaskStatus.COMPLETED
        view.out_of_date = stale.get(view.id) if done else None
        if done:
            view.settled = view.out_of_date is None
        elif view.status.finished:
            view.settled = stays is not None and stays.get(view.id) == view.status
        else:
            view.settled = None


def out_of_date(plan: Plan, workspace: Workspace, records: Mapping[str, ResultRecord] | None = None) -> dict[str, str]:
    """Each task with a completed result that ``run`` would run again, and why, in table order."""
    return judged(plan, workspace, records)[0]


_GIVEN = (TaskStatus.FAILED, TaskStatus.BYPASSED, TaskStatus.SKIPPED, TaskStatus.CANCELLED, TaskStatus.REJECTED)


def judged(
    plan: Plan, workspace: Workspace, records: Mapping[str, ResultRecord] | None = None
) -> tuple[dict[str, str], dict[str, TaskStatus] | None]:
    """``out_of_date``, and which finished tasks stay as they are in the next run (``run/resume/settled``;
    ``None`` where that needed no walk of the graph: no result but completed ones stays)."""
    if records is None:
        records = read_records(plan, workspace)
    completed = {t: r for t, r in records.items() if r.status == TaskStatus.COMPLETED}
    given = any(record.status in _GIVEN for record in records.values())
    if not completed and not given:
        return {}, None
    judge = _Judge(plan, workspace, records)
    own = {task_id: judge.why(plan.tasks[task_id], record) for task_id, record in completed.items()}
    # Where no completed task depends on one that will run (or has no result), nor decides on
    # what its dependencies did (a Condition), what is done is what is up to date on its own: no
    # walk of the graph (most workspaces, most of the time).
    doubtful = {t for t in plan.tasks if t not in completed or own[t] is not None}
    if not given and not any(
        plan.tasks[task_id].condition or any(dep in doubtful for dep in plan.tasks[task_id].dependencies)
        for task_id in completed
    ):
        return {task_id: why for task_id, why in own.items() if why is not None}, None
    expected = {t: r.fingerprint for t, r in completed.items() if own[t] is None and r.fingerprint is not None}
    order = dependencies_first({task_id: task.dependencies for task_id, task in plan.tasks.items()})
    fields = fields_in(workspace, plan, records)
    stays = settle(order, plan, expected, records, fields, simulated_done=True).states
    stale: dict[str, str] = {}
    for task_id in plan.tasks:
        if task_id not in completed or stays.get(task_id) == TaskStatus.COMPLETED:
            continue
        task = plan.tasks[task_id]
        reason = own[task_id]
        blocked = next((dep for dep in task.dependencies if dep not in stays), None)
        if blocked is None and not task.condition:
            blocked = next((dep for dep in task.dependencies if stays[dep] != TaskStatus.COMPLETED), None)
        if blocked is not None and (reason is None or task_id in judge.upstream_changed):
            reason = _upstream(blocked, stays)  # what happens upstream says more than a digest
        elif reason is None and task.condition and blocked is None:
            reason = CONDITION_NOW
        stale[task_id] = reason or NO_FINGERPRINT
    return stale, stays


CONDITION_NOW = "its condition does not hold now"


def _upstream(dep: str, stays: Mapping[str, TaskStatus]) -> str:
    status = stays.get(dep)
    if status is not None:
        return f"upstream {dep} is {status}"
    return f"upstream {dep} will run again"


class _Judge:
    """Whether one completed result is still what its task would be run from now (its
    dependencies' own state aside: ``settled.settle`` walks that)."""

    def __init__(self, plan: Plan, workspace: Workspace, records: Mapping[str, ResultRecord]) -> None:
        self.plan = plan
        self.workspace = workspace
        self.records = records
        self._templates: Templates | None = None
        self.upstream_changed: set[str] = set()  # tasks judged out of date for their upstream digest

    @functools.cached_property
    def signatures(self) -> Signatures:
        return Signatures(self.plan, Profiles(self.workspace))

    @functools.cached_property
    def upstream(self) -> Mapping[str, ResultRecord]:
        """The results a fingerprint reads: the tasks', and the archived ones rows depend on."""
        archived = archived_records(self.plan, self.workspace)
        return {**archived, **self.records} if archived else self.records

    @functools.cached_property
    def basis(self) -> Basis:  # (made for the first result that records its inputs: most often all)
        return Basis(self.plan, self.workspace, self.signatures, self.records)

    @functools.cached_property
    def _finished(self) -> dict[str, str]:
        return {t: r.finished for t, r in self.records.items() if r.finished}

    @functools.cached_property
    def _as_text(self) -> bool:
        """Whether every time is written with the same offset, so that times compare as text."""
        records = self.records.values()
        return len({(len(stamp), stamp[-6:]) for r in records for stamp in (r.started, r.finished) if stamp}) <= 1

    def why(self, task: Task, record: ResultRecord) -> str | None:
        if record.fingerprint is None:
            return NO_FINGERPRINT
        parts = record.inputs.split("-") if record.inputs else ()
        if len(parts) != 4 or parts[0] != BASIS_VERSION:  # by an earlier version: taken as up to date
            return None
        _, level, own, upstream = parts
        if self._upstream_ran(task, record) and upstream != self.basis.upstream_part(task):
            self.upstream_changed.add(task.id)
            return self._upstream_changed(task, record)
        if level != self.basis.level and own != self.basis.task_part(task):
            try:
                body = brief_body(self.plan, self.workspace, task, self.templates)
            except OrchestratorError as exc:  # a template of the workspace's that fails: run will say so
                return f"its brief cannot be rendered now ({str(exc).splitlines()[0] if str(exc) else exc})"
            if self._same(task, record, body):
                return None
            return BRIEF_EDITED if edited_body(self.workspace, task) is not None else PLAN_CHANGED
        if self._written_since(task, record) and edited_body(self.workspace, task) is not None:
            try:  # written after its attempt began, and kept by run as edited: what run would make of it
                body = brief_body(self.plan, self.workspace, task, self.templates)
            except OrchestratorError:
                return None
            return None if self._same(task, record, body) else BRIEF_EDITED
        return None

    def _written_since(self, task: Task, record: ResultRecord) -> bool:
        """Whether ``task``'s brief was written after its result's attempt began: by hand, most
        likely (the tool writes briefs before a run's attempts start). One ``stat``: the brief is
        read only then."""
        began = epoch_of(record.started)
        if began is None:
            return False
        try:
            return os.stat(self.workspace.brief(task)).st_mtime > began
        except OSError:
            return False

    def _upstream_ran(self, task: Task, record: ResultRecord) -> bool:
        """Whether a dependency's result was written after this one's attempt started (only then
        can what its fingerprint took from upstream have changed)."""
        began = record.started
        if began is None:
            return True
        finished = self._finished
        if self._as_text:  # every time written with the same offset: compared as text, quickly
            for dep in task.dependencies:
                ended = finished.get(dep)
                if ended is None or ended > began:
                    return True
            return False
        start = epoch_of(began) or 0.0
        return any((epoch_of(finished.get(dep)) or math.inf) > start for dep in task.dependencies)

    @property
    def templates(self) -> Templates:
        if self._templates is None:
            self._templates = Templates.of(self.workspace)
        return self._templates

    def _same(self, task: Task, record: ResultRecord, body: str) -> bool:
        signature, legacy = self.signatures.both(task)
        return expected_fingerprint(task, body, signature, legacy, self.upstream) == record.fingerprint

    def _upstream_changed(self, task: Task, record: ResultRecord) -> str:
        """Which dependencies' results are newer than this one (the digest says only that one is)."""
        began = epoch_of(record.started)
        newer = [
            dep
            for dep in task.dependencies
            if (found := self.records.get(dep)) is not None
            and began is not None
            and (ended := epoch_of(found.finished)) is not None
            and ended > began
        ]
        if not newer:
            return "an upstream result changed since it ran"
        return f"upstream {', '.join(newer)} ran again since it did"
