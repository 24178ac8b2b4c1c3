"""``orchestrator list``: the plan's tasks as a script reads them, filtered and grouped.

The filters compose as a script expects (``gh``, ``kubectl``): each option narrows, a repeated
``--status`` widens within itself; a state is named by its own word or by the one other task
managers use (``vocabulary.STATUS_ALIASES``): ``pending`` is every task not started, as in ``tm``
and taskwarrior (one that waits for its upstream too; ``ready``: those that need wait for nothing),
``open`` every task not finished (gh's word: what is left), ``in_progress``, ``todo``, ``done``.
Only the filter's word means more: each task's status is printed as it is. What is printed
follows ``gh``'s rule: on a terminal, a header and colours; piped, one task a line, its fields
separated by tabs, no header, so ``list | wc -l`` counts tasks. ``--format`` picks the fields:
``table`` (every column), ``simple`` (id and title), ``ids``, ``json`` (``{"tasks": [...]}`` with
the fields of ``status --json`` and the plan's own, ``assignee`` and ``tags``; ``--json`` too).
``--archived`` lists the tasks ``archive`` moved out of the plan instead, with the same filters,
each with the day it was archived (``archived``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.commands import words
from orchestrator.commands.calling import Call, Result
from orchestrator.errors import UsageError
from orchestrator.vocabulary import TaskStatus, status_words, statuses_named

if TYPE_CHECKING:
    from orchestrator.state.workspace import Workspace

Shown = dict[str, Any]  # a task as ``list --json`` says it (``shown.task_json``): what ``list`` reads

GROUPS: dict[str, Callable[[Shown], list[str]]] = {  # list --group-by (``commands/table.GROUPS``)
    "status": lambda task: [task["status"]],
    "assignee": lambda task: [task["assignee"] or "(none)"],
    "tag": lambda task: list(task["tags"]) or ["(none)"],
    "priority": lambda task: [task["priority"]],
}


def _statuses(given: list[str] | None) -> set[TaskStatus] | None:
    if not given:
        return None
    wanted: set[TaskStatus] = set()
    for part in given:
        for word in part.split(","):
            if not word.strip():
                continue
            named = statuses_named(word)
            if named is None:
                raise UsageError(f"--status {word.strip()}: not a status — use one of {status_words()}")
            wanted |= named
    return wanted


def _archived(workspace: Workspace) -> tuple[list[Shown], dict[str, str]]:
    """The archived tasks (``state/kept/archive``) as ``list`` shows them: each one's view from its
    result file, as ``status`` reads one; and the date each was archived."""
    from orchestrator.commands.shown import task_json
    from orchestrator.state.kept.archive import entries
    from orchestrator.state.results import read_record
    from orchestrator.state.status import TaskView
    from orchestrator.views.replay import read_view

    rows: list[Shown] = []
    days: dict[str, str] = {}
    for entry in entries(workspace).values():
        task = entry.task
        record = read_record(workspace.result(task), task.id)
        if record is not None:
            view = read_view(task, record, workspace.result_name(task))
        else:
            view = TaskView.of(task, TaskStatus.read(entry.archived.status) or TaskStatus.COMPLETED)
        view.finished = view.finished or entry.finished
        rows.append(task_json(task, view))
        days[task.id] = entry.archived.archived
    return rows, days


def _with_items(workspace: Workspace, rows: list[Shown], wanted: set[str]) -> list[Shown]:
    """``rows`` with, after each row run per item, its instances in a ``wanted`` state
    (``--status failed``: ``T-03[137]``, the item as its name), as ``state/items`` has them."""
    from orchestrator.state import items

    found: list[Shown] = []
    for task in rows:
        found.append(task)
        if not task.get("items"):
            continue
        for number, item, state in items.instances_of(workspace, task["id"]):
            if state in wanted:
                entry: Shown = dict.fromkeys(task)  # (what the row's own run says is not the item's)
                entry.update(id=f"{task['id']}[{number}]", status=state, name=f"{task['name']} · {item}",
                             agent=f"{task['agent']}[{number}]", priority=task.get("priority"),
                             assignee=task.get("assignee"), tags=task.get("tags") or [], row=task["id"],
                             item=item)  # fmt: skip
                found.append(entry)
    return found


def list_tasks(call: Call) -> Result:
    """The plan's tasks (``--archived``: the archived ones), filtered; ``--limit``/``--offset`` a page
    of them. Read from the snapshot of what ``status`` shows (``commands/shown``): a plan read once."""
    from orchestrator.commands.shown import shown, shown_rows

    args = call.args
    statuses = _statuses(args.status)
    workspace = call.workspace
    days: dict[str, str] = {}
    if args.archived:
        rows, days = _archived(workspace)
    else:
        rows = shown_rows(shown(workspace))
    wanted = None if statuses is None else {str(status) for status in statuses}
    if wanted is not None and not args.archived and any(task.get("items") for task in rows):
        rows = _with_items(workspace, rows, wanted)
    rows = [
        task
        for task in rows
        if (wanted is None or task["status"] in wanted)
        and (args.assignee is None or (task["assignee"] or "").lower() == args.assignee.lower())
        and all(any(t.lower() == tag.lower() for t in task["tags"]) for tag in words.tags(args.tag))
    ]
    total = len(rows)
    start = args.offset or 0
    rows = rows[start:] if args.limit is None else rows[start : start + args.limit]
    data: dict[str, Any] = {"tasks": [{**task, "archived": days[task["id"]]} for task in rows] if days else rows}
    if args.limit is not None or args.offset:
        data.update(total=total, offset=start, more=start + len(rows) < total)
    if args.format == "json":
        return Result(data, shown=lambda: json.dumps(data, ensure_ascii=False, default=str) + "\n")
    return Result(data, shown=lambda: _text(rows, args.format, args.group_by, days))


def _text(rows: list[Shown], shape: str, group_by: str | None, days: dict[str, str]) -> str:
    """The tasks' lines (``Lines``), under a heading for each group on a terminal."""
    terminal = sys.stdout.isatty()
    if group_by is None:
        return Lines(shape, days, terminal).of(rows)
    groups: dict[str, list[Shown]] = {}
    for task in rows:
        for key in GROUPS[group_by](task):
            groups.setdefault(key, []).append(task)
    out: list[str] = []
    for number, (key, members) in enumerate(sorted(groups.items())):
        if terminal:  # a heading for each group; piped, the group is each line's first field
            out.append(("\n" if number else "") + f"{group_by}: {key} ({len(members)})\n")
            out.append(Lines(shape, days, terminal).of(members))
        else:
            out.append(Lines(shape, days, terminal, group=key).of(members))
    return "".join(out)


# A state's colour on a terminal (SGR codes): done green, failed red, running blue, held for a person
# magenta, not started yellow, the rest dim.
_COLOURS: dict[str, str] = {
    TaskStatus.COMPLETED: "32",
    TaskStatus.BYPASSED: "32",
    TaskStatus.FAILED: "31",
    TaskStatus.REJECTED: "31",
    TaskStatus.RUNNING: "34",
    TaskStatus.RETRYING: "34",
    TaskStatus.BLOCKED: "35",
    TaskStatus.AWAITING_APPROVAL: "35",
    TaskStatus.PENDING: "33",
    TaskStatus.WAITING: "33",
}


def colours_wanted() -> bool:
    """Whether a terminal's lines are coloured: not when ``NO_COLOR`` is set (no-color.org) or the
    terminal is ``dumb``."""
    return not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


@dataclass(frozen=True, slots=True)
class Lines:
    """The tasks' lines in a ``--format``: on a terminal (``terminal``) padded under a header
    (``table``), the state coloured; else tab-separated, a task a line, no header; ``group``: the
    first field of each piped line (``--group-by``'s key)."""

    shape: str
    days: dict[str, str]
    terminal: bool
    group: str | None = None

    def of(self, rows: list[Shown]) -> str:
        if not rows:
            return ""
        lines = [self._fields(task) for task in rows]
        if not self.terminal:
            first = [self.group] if self.group is not None else []
            return "".join("\t".join(first + [cell for cell, _ in line]) + "\n" for line in lines)
        if self.shape == "table":
            header = ["ID", "STATUS", "PRIORITY", "ASSIGNEE", "TAGS"] + (["ARCHIVED"] if self.days else []) + ["NAME"]
            lines.insert(0, [(cell, None) for cell in header])
        widths = [max(len(line[i][0]) for line in lines) for i in range(len(lines[0]) - 1)]
        colour = colours_wanted()
        shown = []
        for line in lines:
            padded = [
                _painted(cell, code if colour else None) + " " * (width - len(cell))
                for (cell, code), width in zip(line[:-1], widths, strict=True)
            ]
            shown.append("  ".join([*padded, line[-1][0]]) + "\n")
        return "".join(shown)

    def _fields(self, task: Shown) -> list[tuple[str, str | None]]:
        """A task's fields in this shape, each with its colour (``None``: none)."""
        if self.shape == "ids":
            return [(task["id"], None)]
        title = " ".join(task["name"].split())  # (one line, no tab: a field of its own)
        if task.get("items"):  # a row run per item: its counts, as `status` says them
            title += f" — {task['items']['said']}"
        if self.shape == "simple":
            return [(task["id"], None), (title, None)]
        return [
            (task["id"], None),
            (task["status"], _COLOURS.get(task["status"], "2")),
            (task["priority"], None),
            (task["assignee"] or "-", None),
            (",".join(task["tags"]) or "-", None),
            *([(self.days[task["id"]], None)] if self.days else []),
            (title, None),
        ]


def _painted(cell: str, code: str | None) -> str:
    return f"\x1b[{code}m{cell}\x1b[0m" if code else cell
