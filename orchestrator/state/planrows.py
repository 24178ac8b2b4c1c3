"""A task added to master_plan.md by the tool itself, mid-run: a row at the end of the task table,
its Task Details, and its id added to the Dependencies cell of the tasks that must wait for it.

Used for a merge conflict's resolution task (``run/merges``): the plan file is the record of what
runs, so a run after a kill -9 finds the task, and its dependents still waiting for it, there.
Every other byte of the file stays as it is, and the change goes through ``planfile.rewrite``,
which never loses a save somebody made meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.plan.cells import COLUMN_ALIASES, clean, split_ids
from orchestrator.plan.markdown import (
    normalize_heading,
    parse_document,
    split_frontmatter,
    split_lines,
    split_row,
    tables_in,
)
from orchestrator.plan.parser import DETAILS_KEYS, TASKS_KEYS
from orchestrator.state import planfile


@dataclass(frozen=True, slots=True)
class NewTask:
    id: str
    name: str
    description: str
    dependencies: tuple[str, ...]
    priority: str
    details: str  # the Task Details body: what its brief says
    dependents: tuple[str, ...] = ()  # tasks that wait for it from now on


class CannotAdd(ValueError):
    """The plan has no task table to add a row to (it changed since the run read it)."""


def add_task(path: Path, task: NewTask) -> None:
    """Write ``task`` into the plan at ``path`` (raises ``CannotAdd``, ``OSError``)."""
    if not planfile.rewrite(path, lambda text: with_task(text, task)):
        raise CannotAdd(f"{path.name}: the task could not be written (the file is gone)")


def with_task(text: str, task: NewTask) -> str:
    """``text`` with ``task`` added (see the module's docstring)."""
    lines = split_lines(text)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    front = split_frontmatter(lines)
    document = parse_document(lines, front.body_offset)
    section = document.section(*TASKS_KEYS)
    tables = tables_in(section.tokens, document.lines) if section is not None else []
    if not tables:
        raise CannotAdd("the plan has no task table")
    table = tables[0]
    columns = _columns(table.header)
    values: Mapping[str | None, str] = {
        "id": task.id,
        "name": task.name,
        "description": task.description,
        "deps": ", ".join(task.dependencies),
        "priority": task.priority,
    }
    if "name" not in columns and "description" not in columns and "command" in columns:
        values = {**values, "command": "-"}
    row = "| " + " | ".join(_escaped(values.get(column, "")) for column in columns) + " |" + newline
    if "deps" in columns and task.dependents:
        ids, deps = columns.index("id"), columns.index("deps")
        for number, cells in table.rows:
            if len(cells) == len(columns) and clean(cells[ids]) in task.dependents:
                lines[number - 1] = _depending(lines[number - 1], deps, task.id)
    details = f"{newline}### {task.id} {task.name}{newline}{newline}" + newline.join(task.details.splitlines())
    block = [line + newline for line in details.split(newline)]
    details_section = document.section(*DETAILS_KEYS)
    if details_section is None:
        if lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += newline
        block.insert(0, f"{newline}## Task Details{newline}")
        at = len(lines)
    else:
        at = details_section.end
        while at > details_section.body_start and not lines[at - 1].strip():
            at -= 1
    row_at = table.rows[-1][0] if table.rows else table.header_line + 1
    # The later insertion first, so that the earlier one's line number still holds.
    for where, new in sorted(((at, block), (row_at, [row])), key=lambda item: item[0], reverse=True):
        lines[where:where] = new
    return "".join(lines)


def _columns(header: Sequence[str]) -> list[str | None]:
    columns = [COLUMN_ALIASES.get(normalize_heading(clean(cell))) for cell in header]
    if "id" not in columns:  # as the parser reads "| # | Task |": the first such column is the id
        for index, cell in enumerate(header):
            if normalize_heading(clean(cell)) in {"task", ""} and columns[index] is None:
                columns[index] = "id"
                break
    return columns


def _escaped(value: str) -> str:
    return " ".join(value.split()).replace("|", "\\|")


def _depending(line: str, column: int, task_id: str) -> str:
    """A row's line with ``task_id`` added to its Dependencies cell (the other cells as written)."""
    body = line.rstrip("\r\n")
    ending = line[len(body) :]
    stripped = body.strip()
    cells = split_row(stripped)
    cell = cells[column]
    cells[column] = f" {task_id} " if not split_ids(clean(cell)) else f"{cell.rstrip()}, {task_id} "
    indent = body[: len(body) - len(body.lstrip())]
    opening = "|" if stripped.startswith("|") else ""
    closing = "|" if stripped.endswith("|") else ""
    return indent + opening + "|".join(cells) + closing + ending
