"""Rows edited while their tasks wait: a task this run has not started yet takes its row as it is now.

``run/inflight/live`` reads master_plan.md again whenever a person saves it, and hands the plan it read
here (``take``, on the loop). A task of this run that waits (waiting or pending: no attempt made
in this run, none running, none waiting for a retry or a pause) and whose row changed (its title,
details, dependencies, command, priority, retries, timeout, backend...: anything but the line it
is on) takes the new row when it starts:

- its ``Task`` replaced in the run's plan, its settings and their signature made again (the run's
  own settings, the command line's overrides with them, under the row: as a task ``add`` gives it);
- its edges in the graph and its place in the queue, when its dependencies or priority changed
  (a dependency that failed or will not run skips it, as it would have at the start);
- its brief rendered again (one edited by hand is kept, as ``output/briefs`` keeps it, and told);
- a ``task_changed`` event, one terminal line, with the limits it now runs by (for ``check`` and
  ``cancel``: ``events.added_limits``).

A dependency this run does not have, one that would make a cycle, or a worktree the run has none
for is refused in one notice: the task keeps the row it had. A task running, waiting for its next
attempt, or finished is not touched: its change is for the next run (``status`` shows it out of date).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import networkx as nx

from orchestrator.errors import OrchestratorError
from orchestrator.output.briefs import edit_notice, render_briefs
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.graph import topological_order
from orchestrator.plan.model import Plan, Task
from orchestrator.run.recorder import Recorder
from orchestrator.run.resume.prepared import Prepared
from orchestrator.run.resume.selection import settings_signature
from orchestrator.run.scheduler import Scheduler
from orchestrator.state import events
from orchestrator.state.events.tasks import TaskChanged
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import TaskStatus


def changed(old: Task, new: Task) -> list[str]:
    """What of a row changed, by its field's name (its lines alone are no change)."""
    names = [f.name for f in dataclasses.fields(Task) if getattr(old, f.name) != getattr(new, f.name)]
    lines = ("line", "details_line", "agent")
    names = ["timeout" if name == "timeout_set" else name for name in names if name not in lines]
    return list(dict.fromkeys(names))


class Edits:
    """What a run takes of the rows edited while their tasks wait."""

    def __init__(
        self,
        workspace: Workspace,
        prepared: Prepared,
        scheduler: Scheduler,
        recorder: Recorder,
        notice: Callable[[str], None],
    ) -> None:
        self.workspace = workspace
        self.prepared = prepared
        self.board, self.merges, self._emit_event = scheduler.board, scheduler.merges, recorder.emit
        self.notice = notice  # one line, told once

    def waits(self, task_id: str) -> bool:
        """Whether ``task_id`` is this run's and has not started in it (nor waits for a retry)."""
        view = self.prepared.views.get(task_id)
        return (
            view is not None
            and view.status in (TaskStatus.WAITING, TaskStatus.PENDING)
            and task_id in self.prepared.selection.run
            and self.board.untouched(task_id)
        )

    def take(self, fresh: Plan) -> None:
        """On the loop: each waiting task whose row ``fresh`` (the plan as saved now) changed takes it."""
        ours, merges = self.prepared.plan, self.merges
        order = {task_id: index for index, task_id in enumerate(fresh.tasks)}
        for task_id in topological_order(fresh.graph, order):  # (a dependency's row taken before its dependent's)
            new, old = fresh.tasks[task_id], ours.tasks.get(task_id)
            if old is None or dataclasses.replace(new, line=old.line) == old or not self.waits(task_id):
                continue
            if merges is not None and any(dep in merges.writing for dep in new.dependencies):
                continue  # its row names a conflict's resolution task: the merge queue takes the two (``adopt``)
            new = dataclasses.replace(new, agent=old.agent)  # (its files keep their names)
            settings = self.prepared.profiles.settings_for(ours, new)
            problem = self._problem(old, new, settings) or self._brief(old, new)
            if problem is not None:
                name = self.workspace.relative(self.workspace.plan_file)
                self.notice(f"{task_id}'s row changed in {name}, and this run keeps it as it was: {problem}")
                continue
            self._replace(old, new, settings)

    def _problem(self, old: Task, new: Task, settings: Settings) -> str | None:
        """Why the run cannot take ``new`` in the place of ``old``, and what to do; else ``None``."""
        graph, tasks = self.prepared.plan.graph, self.prepared.plan.tasks
        for dep in new.dependencies:
            if dep not in tasks:
                return f"it names {dep}, a task this run does not have — it runs in the next run"
            if dep not in old.dependencies and (dep == new.id or nx.has_path(graph, new.id, dep)):
                return f"{dep} depends on it, so after {dep} would make a cycle — take {dep} out of its Dependencies"
        merges = self.merges
        if settings.isolation == "worktree" and merges is None:
            return "it runs in a git worktree, and this run started with none — it runs so in the next run"
        return None

    def _replace(self, old: Task, new: Task, settings: Settings) -> None:
        prepared, task_id = self.prepared, new.id
        plan = prepared.plan  # (``plan.tasks[task_id]`` is ``new`` already: ``_brief``)
        prepared.settings[task_id] = settings
        prepared.signatures[task_id] = settings_signature(settings, prepared.profiles.signature(new))
        view = prepared.views[task_id]
        view.name, view.dependencies, view.priority = new.title, list(new.dependencies), new.priority_name
        merges = self.merges
        if merges is not None:
            merges.executor.titles[task_id] = new.title
            if settings.isolation != "worktree":
                merges.executor.isolated.discard(task_id)
            merges.take(new, settings)
        self._emit(old, new, settings)
        if old.dependencies == new.dependencies and old.priority == new.priority:
            return
        plan.graph.remove_edges_from([(dep, task_id) for dep in old.dependencies if dep not in new.dependencies])
        plan.graph.add_edges_from((dep, task_id) for dep in new.dependencies)
        self.board.rearrange(new, view)  # (given up if a dependency will not complete in this run)

    def _brief(self, old: Task, new: Task) -> str | None:
        """``new`` in the run's plan, its brief rendered again from it (one edited by hand is kept,
        and told); or, when that cannot be (a template's error, a brief that is not text), ``old``
        back in its place and why."""
        plan = self.prepared.plan
        plan.tasks[new.id] = new
        try:
            report = render_briefs(plan, self.workspace, only=(new.id,))
        except (OrchestratorError, OSError) as exc:
            plan.tasks[old.id] = old
            return f"its brief could not be rendered again ({exc})"
        for task_id, name in report.changed_under_edit:
            self.notice(edit_notice(task_id, name))
        return None

    def _emit(self, old: Task, new: Task, settings: Settings) -> None:
        mine = events.own_limits(self.prepared.plan.settings, settings) or {
            "limits": {name: getattr(settings, name) for name in events.LIMITS}
        }
        self._emit_event(TaskChanged(task=new.id, agent=new.agent, name=new.title, was=old.title,
                                     changed=tuple(changed(old, new)), limits=mine["limits"]))  # fmt: skip
