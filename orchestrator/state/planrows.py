"""A task added to master_plan.md by the tool itself, mid-run: a row at the end of the task table,
its Task Details, and its id added to the Dependencies cell of the tasks that must wait for it.

Used for a merge conflict's resolution task (``run/worktrees/merges``): the plan file is the record of what
runs, so a run after a kill -9 finds the task, and its dependents still waiting for it, there.
Every other byte of the file stays as it is, and the change goes through ``planfile.rewrite``,
which never loses a save somebody made meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import PlanError
from orchestrator.plan import edit
from orchestrator.plan.markdown import parse_document, split_frontmatter, split_lines, split_row, tables_in
from orchestrator.plan.parser import TASKS_KEYS
from orchestrator.plan.table.cells import clean, split_ids
from orchestrator.plan.table.columns import keys_of
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
    retries: int | None = None  # its Retries cell (None: the plan's setting)


class CannotAdd(ValueError):
    """The plan has no task table to add a row to (it changed since the run read it)."""


def add_task(path: Path, task: NewTask) -> None:
    """Write ``task`` into the plan at ``path`` (raises ``CannotAdd``, ``OSError``)."""
    if not planfile.rewrite(path, lambda text: with_task(text, task)):
        raise CannotAdd(f"{path.name}: the task could not be written (the file is gone)")


def with_task(text: str, task: NewTask) -> str:
    """``text`` with ``task`` added (see the module's docstring): its row and Task Details as
    ``orchestrator add`` writes them (``plan.edit``), then its id in its dependents' cells."""
    try:
        result, _ = edit.add_task(
            text,
            edit.NewTask(
                description=task.description,
                id=task.id,
                name=task.name,
                after=list(task.dependencies),
                priority=task.priority,
                details=task.details,
                retries=task.retries,
            ),
        )
    except PlanError as exc:
        raise CannotAdd(str(exc)) from None
    if not task.dependents:
        return result
    lines = split_lines(result)
    document = parse_document(lines, split_frontmatter(lines).body_offset)
    section = document.section(*TASKS_KEYS)
    table = tables_in(section.tokens, document.lines)[0] if section is not None else None
    columns = keys_of(table.header) if table is not None else []
    if table is None or "deps" not in columns:
        return result
    ids, deps = columns.index("id"), columns.index("deps")
    for number, cells in table.rows:
        if len(cells) == len(columns) and clean(cells[ids]) in task.dependents:
            lines[number - 1] = _depending(lines[number - 1], deps, task.id)
    return "".join(lines)


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
