"""``orchestrator list``: the plan's tasks as a script reads them, filtered and grouped.

The filters compose as a script expects (``gh``, ``kubectl``): each option narrows, a repeated
``--status`` widens within itself; ``--json`` gives ``{"tasks": [...]}`` with the fields of
``status --json`` and the plan's own (``assignee``, ``tags``); the table has one task a line.
``--archived`` lists the tasks ``archive`` moved out of the plan instead, with the same filters,
each with the day it was archived (``archived``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from orchestrator.cli import words
from orchestrator.cli.output import Commands, add_command, add_directory, emit_json
from orchestrator.errors import UsageError
from orchestrator.plan.model import Task
from orchestrator.state.status import TaskView
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import ExitCode, TaskStatus

GROUPS: dict[str, Callable[[Task, TaskView], list[str]]] = {
    "status": lambda task, view: [str(view.status)],
    "assignee": lambda task, view: [task.profile or "(none)"],
    "tag": lambda task, view: list(task.tags) or ["(none)"],
    "priority": lambda task, view: [task.priority_name],
}


def task_json(task: Task, view: TaskView) -> dict[str, Any]:
    """One task as ``list --json`` shows it: ``status --json``'s fields, and the plan's assignee
    and tags."""
    return {**view.as_json(), "assignee": task.profile, "tags": list(task.tags)}


def _statuses(given: list[str] | None) -> set[TaskStatus] | None:
    if not given:
        return None
    wanted: set[TaskStatus] = set()
    for part in given:
        for word in part.replace(",", " ").split():
            try:
                wanted.add(TaskStatus(word.lower()))
            except ValueError:
                names = ", ".join(status.value for status in TaskStatus)
                raise UsageError(f"--status {word}: not a status — use one of {names}") from None
    return wanted


def _archived(workspace: Workspace) -> tuple[list[tuple[Task, TaskView]], dict[str, str]]:
    """The archived tasks (``state.archive``) as ``list`` shows them: each one's view from its
    result file, as ``status`` reads one; and the date each was archived."""
    from orchestrator.state.archive import entries
    from orchestrator.state.results import read_record

    rows: list[tuple[Task, TaskView]] = []
    days: dict[str, str] = {}
    for entry in entries(workspace).values():
        task = entry.task
        view = TaskView.of(task, TaskStatus.read(entry.archived.status) or TaskStatus.COMPLETED)
        record = read_record(workspace.result(task), task.id)
        if record is not None:
            view.take(record, workspace.result_name(task))
        view.finished = view.finished or entry.finished
        rows.append((task, view))
        days[task.id] = entry.archived.archived
    return rows, days


def cmd_list(args: argparse.Namespace) -> int:
    from orchestrator.run.freshness import current_views

    statuses = _statuses(args.status)
    workspace = Workspace.find(args.directory)
    plan = workspace.load_plan()
    days: dict[str, str] = {}
    if args.archived:
        rows, days = _archived(workspace)
    else:
        rows = [(plan.tasks[view.id], view) for view in current_views(plan, workspace)]
    rows = [
        (task, view)
        for task, view in rows
        if (statuses is None or view.status in statuses)
        and (args.assignee is None or (task.profile or "").lower() == args.assignee.lower())
        and all(any(t.lower() == tag.lower() for t in task.tags) for tag in words.tags(args.tag))
    ]
    if args.json:
        shown = [task_json(task, view) for task, view in rows]
        emit_json({"tasks": [{**data, "archived": days[data["id"]]} for data in shown] if days else shown})
        return ExitCode.OK
    if args.group_by is None:
        print(_table(rows, days), end="")
        return ExitCode.OK
    groups: dict[str, list[tuple[Task, TaskView]]] = {}
    for task, view in rows:
        for key in GROUPS[args.group_by](task, view):
            groups.setdefault(key, []).append((task, view))
    for number, (key, members) in enumerate(sorted(groups.items())):
        print(("\n" if number else "") + f"{args.group_by}: {key} ({len(members)})")
        print(_table(members, days), end="")
    return ExitCode.OK


def _table(rows: list[tuple[Task, TaskView]], days: dict[str, str]) -> str:
    """One task a line: id, status, priority, assignee, tags, (the day it was archived,) name;
    columns padded, no colour."""
    if not rows:
        return ""
    lines = [
        [task.id, str(view.status), task.priority_name, task.profile or "-", ",".join(task.tags) or "-"]
        + ([days[task.id]] if days else [])
        + [task.title]
        for task, view in rows
    ]
    header = ["ID", "STATUS", "PRIORITY", "ASSIGNEE", "TAGS"] + (["ARCHIVED"] if days else []) + ["NAME"]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header) - 1)]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True)) + "  " + line[-1] + "\n"
        for line in [header, *lines]
    )


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    p = add_command(sub, "list", cmd_list, "list the plan's tasks, filtered and grouped (for scripts: --json)")
    add_directory(p)
    p.add_argument(
        "--status", action="append", metavar="S", help="only tasks in this state (repeatable, or a comma list)"
    )
    p.add_argument("--assignee", metavar="A", help="only tasks with this assignee")
    p.add_argument(
        "--tag", "--label", action="append", metavar="T", help="only tasks with this tag (repeated: with all of them)"
    )
    p.add_argument("--group-by", choices=sorted(GROUPS), help="a heading for each status, assignee, tag or priority")
    p.add_argument("--archived", action="store_true", help="the archived tasks (`orchestrator archive`) instead")
