"""``orchestrator archive``: finished rows moved out of master_plan.md into ``archive/<date>.md``.

A long-lived queue stays readable: ``archive --completed`` (or ``archive ID...``) takes the rows
of completed tasks and their Task Details out of the plan and keeps them, with how, when and in
which run each finished and where its result is, in the day's archive file (``state/kept/archive``).
Results stay in ``results/``; a row may still depend on an archived completed task.

A failed, skipped, cancelled or interrupted task is archived by id with ``--force`` only: it has
not done its work, and ``retry`` is the usual way on; archived, nothing may depend on it. A task
that is running or has not run is never archived.

The archive file is written first, then the plan (as ``add`` writes it: never losing a save made
meanwhile), both under the plan-edit lock: a kill between the two leaves the rows in both, and
the next ``archive`` finishes the job. A run going on takes the change as it takes any edit.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.cli.output import Commands, add_command, emit_json, find_workspace, looks_like_workspace, warn
from orchestrator.errors import PlanError, UsageError, shown
from orchestrator.state.plans import plan_of
from orchestrator.vocabulary import ExitCode, TaskStatus, counted

if TYPE_CHECKING:
    from orchestrator.plan.model import Plan
    from orchestrator.state.status import TaskView
    from orchestrator.state.workspace import Workspace

_NOT_DONE = {
    TaskStatus.RUNNING: "is running: archive it once it has finished",
    TaskStatus.RETRYING: "is retrying: archive it once it has finished",
    TaskStatus.PENDING: "has not run: there is nothing to archive (delete its row to drop it)",
    TaskStatus.WAITING: "has not run: there is nothing to archive (delete its row to drop it)",
}

# The way on for a task that has not done its work, where it is not ``retry`` (which answers a
# task still in the queue "in the queue already").
_ON = {
    TaskStatus.BLOCKED: "`orchestrator update {id} --status pending` releases it to run",
    TaskStatus.AWAITING_APPROVAL: "`orchestrator approve {id}` lets it complete",
}


class Refused(Exception):
    """A task that cannot be archived as asked: said in one line, nothing written."""


def _wanted(plan: Plan, views: dict[str, TaskView], args: argparse.Namespace, ids: list[str]) -> list[str]:
    """The tasks to archive, as the plan spells them, or ``Refused``."""
    from orchestrator.cli.output import task_id_in

    if args.completed:
        return [task_id for task_id, view in views.items() if view.status == TaskStatus.COMPLETED]
    chosen: list[str] = []
    for wanted in ids:
        entry = next((e for t, e in plan.archived.items() if t.lower() == wanted.lower()), None)
        if entry is not None:
            raise UsageError(f"{entry.task.id} is archived already, in {entry.file}")
        task_id = task_id_in(plan, wanted)
        status = views[task_id].status
        if status in _NOT_DONE:
            raise Refused(f"{task_id} {_NOT_DONE[status]}")
        if status != TaskStatus.COMPLETED and not args.force:
            on = _ON.get(status, "`orchestrator retry {id}` runs it again").format(id=task_id)
            raise Refused(
                f"{task_id} is {status}: it has not done its work — {on}; "
                f"`archive --force {task_id}` puts it away as {status} (nothing may depend on it then)"
            )
        if task_id not in chosen:
            chosen.append(task_id)
    return chosen


def _runs(workspace: Workspace, ids: set[str]) -> dict[str, str]:
    """The run whose ``task_completed`` (or end) each task's result came from: the last one."""
    from orchestrator.state import events
    from orchestrator.state.events.tasks import TaskCancelled, TaskCompleted, TaskFailed, TaskInterrupted, TaskSkipped

    found: dict[str, str] = {}
    for event in events.read_all(workspace.events_file):
        if not isinstance(event, TaskCompleted | TaskFailed | TaskSkipped | TaskInterrupted | TaskCancelled):
            continue
        if event.task in ids and event.run:
            found[event.task] = event.run
    return found


def cmd_archive(args: argparse.Namespace) -> int:
    from orchestrator.commands.adding import plan_edit_lock
    from orchestrator.moments import now_iso
    from orchestrator.plan.edit import take_out
    from orchestrator.plan.parser import parse_plan
    from orchestrator.run.resume.freshness import current_views
    from orchestrator.state import planfile
    from orchestrator.state.kept import archive
    from orchestrator.state.plans.identity import read_book

    words = list(args.words)
    workspace = find_workspace(words.pop(0) if words and looks_like_workspace(words[0]) else None)
    if args.completed and words:
        raise UsageError(f"--completed archives every completed task: give it or ids ({' '.join(words)}), not both")
    if not args.completed and not words:
        raise UsageError("say what to archive: orchestrator archive [DIR] --completed, or orchestrator archive ID...")
    workspace.check_inside()
    with plan_edit_lock(workspace):
        plan = plan_of(workspace)
        views = {view.id: view for view in current_views(plan, workspace)}
        try:
            ids = _wanted(plan, views, args, words)
        except Refused as exc:
            warn(str(exc) + " — nothing was archived")
            return ExitCode.FAILED
        before = archive.entries(workspace)
        day, at = time.strftime("%Y-%m-%d"), now_iso()
        runs = _runs(workspace, set(ids))
        _, taken = take_out(plan.text, {task_id.lower() for task_id in ids})
        new = [
            archive.NewEntry(
                plan.tasks[task_id],
                str(views[task_id].status),
                views[task_id].finished,
                runs.get(task_id),
                workspace.result_name(plan.tasks[task_id]),
                taken[task_id],
            )
            for task_id in ids
        ]
        after = {**{t: e.archived for t, e in before.items()}, **_as_archived(new, workspace, day)}

        def change(text: str) -> str:
            result, _ = take_out(text, {task_id.lower() for task_id in ids})
            try:
                left = parse_plan(result, workspace.plan_file, book=read_book(workspace), archived=after)
            except PlanError as exc:  # a row depends on a task archived --force: said, nothing written
                said = "; ".join(p.message for p in exc.problems[:3])
                raise UsageError(f"archive: {shown(workspace.plan_file)} would not hold: {said}") from None
            return _blocks(left, workspace, result)

        if ids:
            change(plan.text)  # (refused before the archive is written)
        if not args.dry_run and ids:
            fresh = [entry for entry in new if entry.task.id not in before]  # (an archive cut short: in it already)
            where = (
                archive.add(workspace, fresh, day, at, shown(workspace.plan_file))
                if fresh
                else workspace.archive_dir / before[ids[0]].archived.file.rsplit("/", 1)[-1]
            )
            planfile.rewrite(workspace.plan_file, change)
        else:
            where = archive.day_file(workspace, day)
    return _report(args, workspace, ids, where)


def _blocks(plan: Plan, workspace: Workspace, text: str) -> str:
    """``text`` with its status blocks saying what is left (the archived tasks out of them); as
    it was if they cannot be rendered now (a broken template override: ``render`` says why)."""
    from orchestrator.errors import OrchestratorError
    from orchestrator.output.sections import render_status
    from orchestrator.run.resume.freshness import current_views
    from orchestrator.state import planfile

    if not plan.settings.status_blocks:
        return text
    try:
        return planfile.splice(text, render_status(plan, workspace, current_views(plan, workspace)).blocks)
    except (OrchestratorError, OSError, ValueError):
        return text


def _as_archived(new: list[Any], workspace: Workspace, day: str) -> dict[str, Any]:
    from orchestrator.plan.model import ArchivedTask
    from orchestrator.state.kept.archive import day_file

    return {
        entry.task.id: ArchivedTask(entry.task, entry.status, day, workspace.relative(day_file(workspace, day)))
        for entry in new
    }


def _report(args: argparse.Namespace, workspace: Workspace, ids: list[str], where: Path) -> int:
    file = workspace.relative(where)
    if args.json:
        emit_json({"ok": True, "dry_run": args.dry_run, "archived": ids, "file": file if ids else None})
        return ExitCode.OK
    for task_id in ids:  # the ids alone on stdout, for a script; the sentence on stderr
        print(task_id)
    if not ids:
        warn("nothing to archive: no completed task in the plan")
    elif args.dry_run:
        warn(f"would archive {counted(len(ids), 'task')} to {file} (--dry-run: nothing written)")
    else:
        warn(f"📦 {counted(len(ids), 'task')} archived to {file}; `orchestrator list --archived` shows them")
    return ExitCode.OK


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    p = add_command(sub, "archive", cmd_archive, "move finished tasks out of the plan's table into archive/<date>.md")
    p.add_argument("words", nargs="*", metavar="[DIR] [ID...]", help="the tasks (after an optional workspace)")
    p.usage = "%(prog)s [-h] [--json] [--dry-run] [--force] [DIR] (--completed | ID...)"
    p.add_argument("--completed", action="store_true", help="every completed task")
    p.add_argument("--dry-run", action="store_true", help="list what would be archived; write nothing")
    p.add_argument(
        "--force", action="store_true", help="archive a failed, skipped, cancelled or interrupted task by id too"
    )
