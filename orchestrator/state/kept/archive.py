"""Tasks ``orchestrator archive`` moved out of master_plan.md's table: ``archive/<date>.md``.

One markdown file a day, for a person first: a table of the tasks archived that day (how and when
each finished, in which run, where its result is), then each task's row as the plan had it and
its Task Details, to be moved back by hand. Results stay in ``results/``: a row of the plan may
depend on an archived completed task, whose result still reaches it as an upstream result.

A file is written whole and atomically (``store.write_text``), before the plan loses the rows: a
kill at any moment leaves each task in the plan, in the archive, or in both; then the plan's row
is the task (``plan.dependencies``), and archiving it again finishes the job.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.documents import read_regular
from orchestrator.errors import WorkspaceError
from orchestrator.plan.markdown import is_delimiter_row, split_row
from orchestrator.plan.model import ArchivedTask, Task
from orchestrator.plan.table.cells import clean
from orchestrator.plan.table.columns import ARCHIVED, read_cells
from orchestrator.state import store

if TYPE_CHECKING:  # (types only: the workspace loads its plan with these, so they may not import it)
    from orchestrator.state.workspace import Workspace

if TYPE_CHECKING:  # (plan/edit, which writes a table, is not needed to read an archive)
    from orchestrator.plan.edit import TakenOut

# An archive file's table: the plan's columns it keeps (``Column.archived``, read back by
# ``plan/table/columns``) and its own (how and when the task finished, and was archived).
COLUMNS = (
    "Task ID",
    "Agent",
    "Name",
    "Status",
    "Finished",
    "Run",
    "Result",
    "Dependencies",
    "Priority",
    "Assignee",
    "Tags",
    "Archived",
)

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}\.md$")


@dataclass(frozen=True, slots=True)
class Entry:
    """One archived task as its archive file says it."""

    archived: ArchivedTask
    finished: str | None  # when it finished (its result's time)
    run: str | None  # the run that finished it
    result: str  # its result file, as the user types it
    at: str  # when it was archived

    @property
    def task(self) -> Task:
        return self.archived.task


@dataclass(frozen=True, slots=True)
class NewEntry:
    """A task to archive: what the plan and its result say of it."""

    task: Task
    status: str
    finished: str | None
    run: str | None
    result: str
    taken: TakenOut  # its lines in the plan


def day_file(workspace: Workspace, day: str) -> Path:
    return workspace.archive_dir / f"{day}.md"


def entries(workspace: Workspace) -> dict[str, Entry]:
    """Every archived task, by id (a later file's entry wins, should an id be there twice)."""
    try:
        names = sorted(name for name in os.listdir(workspace.archive_dir) if _DAY.match(name))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    found: dict[str, Entry] = {}
    for name in names:
        for entry in _read(workspace, workspace.archive_dir / name):
            found.pop(next((k for k in found if k.lower() == entry.task.id.lower()), ""), None)
            found[entry.task.id] = entry
    return found


def archived_tasks(workspace: Workspace) -> dict[str, ArchivedTask]:
    """The archived tasks a plan's rows may depend on (``plan.parser``)."""
    return {task_id: entry.archived for task_id, entry in entries(workspace).items()}


def in_both(workspace: Workspace, task_ids: Sequence[str]) -> list[str]:
    """For ``validate``: each task both in the plan's table and in the archive, said once. An
    archive cut short leaves that (the row is the task until ``archive`` finishes the job); so
    does a row given an archived id again, whose results would be the archived task's."""
    rows = {task_id.lower(): task_id for task_id in task_ids}
    return [
        f"{rows[task_id.lower()]} is in the task table and archived in {entry.archived.file}: the row is the task — "
        f"`orchestrator archive {rows[task_id.lower()]}` finishes an archive cut short; a new task needs an id of "
        "its own (it would take the archived one's results)"
        for task_id, entry in entries(workspace).items()
        if task_id.lower() in rows
    ]


def _read(workspace: Workspace, path: Path) -> list[Entry]:
    where = workspace.relative(path)
    try:
        text = read_regular(path).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkspaceError(f"{where}: cannot be read ({exc}) — fix it, or move it out of archive/") from None
    lines = text.splitlines()
    start = next((n for n, line in enumerate(lines) if _cells(line)[:1] == ["Task ID"]), None)
    if start is None or start + 1 >= len(lines) or not is_delimiter_row(lines[start + 1]):
        return []
    header = _cells(lines[start])
    found: list[Entry] = []
    for number in range(start + 2, len(lines)):
        if not lines[number].lstrip().startswith("|"):
            break
        cells = _cells(lines[number])
        if len(cells) != len(header):
            raise WorkspaceError(
                f"{where}:{number + 1}: this row has {len(cells)} cells but the header has {len(header)} — "
                "check for a missing or extra '|'"
            )
        row = dict(zip(header, cells, strict=True))
        found.append(_entry(row, path.stem, where))
    return found


def _cells(line: str) -> list[str]:
    return [clean(cell).replace("\\|", "|") for cell in split_row(line)] if line.lstrip().startswith("|") else []


def _entry(row: dict[str, str], day: str, where: str) -> Entry:
    def get(name: str) -> str | None:
        value = row.get(name, "").strip()
        return None if value in {"", "-"} else value

    # The plan's columns an archive keeps, read as the plan reads them (``plan/table/columns``), leniently:
    # a cell that does not read leaves the task's default.
    kept = {ARCHIVED[header]: value for header, value in row.items() if header in ARCHIVED and get(header)}
    fields = read_cells(kept, lambda what, hint: None)
    task = Task(**{**fields, "id": row["Task ID"], "description": ""})  # (its dependencies as they were: no edges)
    archived = ArchivedTask(task, (get("Status") or "completed").lower(), day, where)
    return Entry(archived, get("Finished"), get("Run"), get("Result") or "", get("Archived") or day)


def _cell(value: str | None) -> str:
    return " ".join((value or "-").split()).replace("|", "\\|") or "-"


def add(workspace: Workspace, new: Sequence[NewEntry], day: str, at: str, plan_name: str) -> Path:
    """``new`` added to the archive file of ``day`` (made if missing), written whole and atomically."""
    path = day_file(workspace, day)
    workspace.archive_dir.mkdir(parents=True, exist_ok=True)
    try:
        text = read_regular(path).decode("utf-8-sig")
    except FileNotFoundError:
        text = _heading(day, plan_name)
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkspaceError(f"{workspace.relative(path)}: cannot be read ({exc}) — fix it, or move it aside") from None
    lines = text.splitlines(keepends=True)
    header = next((n for n, line in enumerate(lines) if _cells(line)[:1] == ["Task ID"]), None)
    if header is None:
        raise WorkspaceError(f"{workspace.relative(path)}: its task table is gone — move the file aside, then archive")
    end = header + 2
    while end < len(lines) and lines[end].lstrip().startswith("|"):
        end += 1
    if end and not lines[end - 1].endswith("\n"):
        lines[end - 1] += "\n"
    rows = [_row(entry, at) for entry in new]
    lines[end:end] = rows
    body = "".join(lines).rstrip("\n") + "\n"
    for entry in new:
        body += "\n" + _section(entry, at, plan_name)
    store.write_text(path, body)
    return path


def _heading(day: str, plan_name: str) -> str:
    return (
        f"# Tasks archived on {day}\n\n"
        f"Moved out of `{plan_name}` by `orchestrator archive`. A task of the plan may still depend on a "
        "completed one here: its result stays where the table says, and reaches it as an upstream result. "
        "To bring one back, put its row (and details) back into the plan and delete it here.\n\n"
        "| " + " | ".join(COLUMNS) + " |\n" + "|" + "---|" * len(COLUMNS) + "\n"
    )


def _row(entry: NewEntry, at: str) -> str:
    task = entry.task
    cells = [
        task.id,
        task.agent,
        task.title,
        entry.status,
        entry.finished,
        entry.run,
        entry.result,
        ", ".join(task.dependencies + task.archived_upstream),
        task.priority_name,
        task.profile,
        ", ".join(task.tags),
        at,
    ]
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |\n"


def _section(entry: NewEntry, at: str, plan_name: str) -> str:
    task, taken = entry.task, entry.taken
    said = f"{entry.status} {entry.finished}" if entry.finished else entry.status
    run = f" in the run of {entry.run}" if entry.run else ""
    text = (
        f"## {task.id} {task.title}\n\n"
        f"Archived {at} from `{plan_name}`: {said}{run}; its result is `{entry.result}`.\n\n"
        f"Its row in the plan:\n\n{taken.header}{taken.row.rstrip(chr(13) + chr(10))}\n"
    )
    if taken.details:
        text += "\nIts Task Details:\n\n" + taken.details.rstrip("\r\n") + "\n"
    return text.replace("\r\n", "\n")
