"""What a run prepared (``run/prepare.prepare`` makes it, once, before the first attempt): the
plan as this run sees it, each task's settings and their signature, the results on disk, what it
runs and what it leaves (``Selection``), the agent sessions it resumes. And what changes it while
the run goes on: a task added to the plan joins it; a task a dead runner finished (``recovery``)
was done before it; the sessions of attempts a dead runner left open are taken up.

It stands here, beside the selection it carries, below what reads it (``recovery``, ``blocks``,
the merge queue, the rows, the holds, the loop's parts): none of them knows how it is made.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from orchestrator.executors.sandbox import Sandbox
from orchestrator.moments import epoch_of
from orchestrator.plan.config.profiles import Profiles
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.model import Plan, Task
from orchestrator.run.attempts import Resumable
from orchestrator.run.resume.selection import Selection, beyond_settings, settings_signature
from orchestrator.state.journal import OpenAttempt
from orchestrator.state.results import ResultRecord
from orchestrator.state.status import TaskView
from orchestrator.vocabulary import TaskStatus


@dataclass(slots=True)
class Prepared:
    plan: Plan
    profiles: Profiles
    settings: dict[str, Settings]  # each task's, profile and row applied
    signatures: dict[str, str]  # of the settings that change what a task does (its fingerprint's)
    records: dict[str, ResultRecord]  # the results on disk of the tasks' own
    selection: Selection
    views: dict[str, TaskView]
    sessions: dict[str, Resumable] = field(default_factory=dict)  # interrupted agent sessions to resume
    attempts: dict[str, int] = field(default_factory=dict)  # each task's last attempt number, in any run
    afresh: set[str] = field(default_factory=set)  # `run --rerun`'s tasks and their downstream: nothing
    # an earlier attempt of theirs did is taken up (its session, its log)
    notices: list[str] = field(default_factory=list)  # for the run to tell at its start
    archived: dict[str, ResultRecord] = field(default_factory=dict)  # archived tasks' results (upstream)
    named_again: set[str] = field(default_factory=set)  # `run --only`'s completed tasks: named, they run for
    # real, as `--rerun`'s do (the cache holds the very result they have)
    forced: set[str] = field(default_factory=set)  # `run --rerun`'s named tasks (not their downstream,
    # which the cache may serve when their outputs come out the same): they run for real
    sandbox: Sandbox | None = None  # a run from outside's: its shell and command tasks' (``executors/sandbox``)
    # What each task to run is expected to cost and the tokens it is expected to use (the spend
    # forecast's p50s, ``run/forecasts/spend``), learned once as it prepared; None: not learned yet
    expected: tuple[dict[str, float], dict[str, float]] | None = None

    def join(self, task: Task, settings: Settings, profiles: Profiles) -> None:
        """``task``, added to the plan while the run goes on (by `orchestrator add`, by hand, or
        as a merge's resolution task), joins it: in the plan (its row last, its edges in the
        graph), with ``settings``, its signature, a waiting view, and a place among what this
        run runs. Queuing it is the caller's (``ReadyQueue.add``)."""
        plan = self.plan
        plan.tasks[task.id] = task
        plan.order[task.id] = len(plan.order)
        plan.graph.add_node(task.id)
        plan.graph.add_edges_from((dep, task.id) for dep in task.dependencies)
        self.settings[task.id] = settings
        self.signatures[task.id] = settings_signature(settings, beyond_settings(self.plan, task, profiles))
        self.views[task.id] = TaskView.of(task, TaskStatus.WAITING)
        self.selection.run.append(task.id)

    def leave(self, gone: Collection[str]) -> None:
        """``gone``, a row's instances that completed, leave the plan as this run sees it, and all
        it holds of them: their row keeps what it needs of each (``run/itemtable``)."""
        plan = self.plan
        for task_id in gone:
            del plan.tasks[task_id]
            plan.order.pop(task_id, None)
            plan.graph.remove_node(task_id)
            self.settings.pop(task_id, None)
            self.signatures.pop(task_id, None)
            self.views.pop(task_id, None)
            self.records.pop(task_id, None)
            self.attempts.pop(task_id, None)
            self.sessions.pop(task_id, None)
            self.selection.done.discard(task_id)
            for expected in self.expected or ():
                expected.pop(task_id, None)
        self.selection.run[:] = [task_id for task_id in self.selection.run if task_id not in gone]

    def done_before(self, task_id: str) -> None:
        """``task_id``, which this run was to run, was done before it began (``run/resume/recovery``):
        it runs no more, and a dependent whose dependencies are all done now is ready."""
        self.selection.run.remove(task_id)
        self.selection.done.add(task_id)
        self.sessions.pop(task_id, None)
        for child in self.plan.graph.successors(task_id):
            view = self.views[child]
            deps = self.plan.tasks[child].dependencies
            if view.status == TaskStatus.WAITING and all(dep in self.selection.done for dep in deps):
                view.move(TaskStatus.PENDING)

    def resume(self, left: Iterable[OpenAttempt]) -> None:
        """The agent sessions of attempts a dead runner left open go on where they stopped (with
        what each was started with, for ``Launcher.prepare`` to compare)."""
        running = set(self.selection.run) - self.afresh
        for attempt in left:
            if attempt.session_id and attempt.task in running:
                since = epoch_of(attempt.told or attempt.started)
                worker = (attempt.handle or {}).get("worker")  # on a cluster: where the session lives
                where = worker if isinstance(worker, str) else None
                self.sessions.setdefault(attempt.task, Resumable(attempt.session_id, attempt.fingerprint, since, where))
