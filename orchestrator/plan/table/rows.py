"""One row of the task table read: the fields of its ``Task``, and what is wrong with its cells.

Each cell is read by its column (``plan/table/columns``); cells a table does not have are not read; a
Type cell names a type (``plan/config/tasktypes.py``) whose
priority, profile and approval fill the row's empty cells of the same name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.errors import shown
from orchestrator.plan.config.tasktypes import TaskType
from orchestrator.plan.config.values import suggest
from orchestrator.plan.model import Plan
from orchestrator.plan.table.cells import NOT_IDS, clean, id_problem
from orchestrator.plan.table.columns import read_cells

Add = Callable[[int, str, str], None]  # (line, what is wrong, what to do)


def task_fields(
    row: dict[str, str], extra: dict[str, str], line: int, add: Add, kinds: Mapping[str, TaskType]
) -> dict[str, Any] | None:
    """The fields of one Task (built once, after agents and details are known), or None;
    ``kinds``: the types its Type cell may name. Each cell is read by its column
    (``plan/table/columns``); cells a table does not have are not read: a 10,000-row plan reads each
    row once."""
    task_id = clean(row.get("id", ""))
    problem = id_problem(task_id)
    if problem is None and task_id.lower() in NOT_IDS:
        problem = f"task id '{task_id}' cannot be depended on: in a Dependencies cell it means no dependency or 'and'"
    if problem:
        add(line, problem, "use ids such as T-01 made of letters, digits, '.', '_' and '-'")
        return None
    fields = read_cells(row, lambda what, hint: add(line, f"{task_id}: {what}", hint))
    fields.update(id=task_id, line=line, extra=extra)
    if "type" in row:
        _type_cells(row, fields, line, add, kinds)
    return fields


_NO_WORDS = {"", "-", "—", "none", "default"}
_EMPTY = {"", "-", "—", "default"}  # a cell its type fills ("none" says none, whatever the type says)


def _type_cells(
    row: dict[str, str], fields: dict[str, Any], line: int, add: Add, kinds: Mapping[str, TaskType]
) -> None:
    """The Type cell; the cells the row leaves empty (or ``-``) that its type fills
    (Priority, Assignee, Approval; ``none`` in the cell keeps it empty): the rest of a type reaches
    the task's settings (``Plan.settings_for``)."""
    task_id = fields["id"]
    approval = clean(row.get("approval", "")).lower()  # (read by its column: ``plan/table/columns``)
    name = clean(row.get("type", "")).lower()
    if name in _NO_WORDS:
        return
    kind = kinds.get(name)
    if kind is None:
        add(
            line,
            f"{task_id}: unknown type '{clean(row['type'])}'{suggest(name, list(kinds))}",
            f"use one of: {', '.join(sorted(kinds))}; or define it under 'types:' in the settings",
        )
        return
    fields["type"] = name
    given: list[str] = []
    if kind.sets("priority") and not row.get("priority", "").strip():
        fields["priority"] = kind.get("priority")
        given.append("priority")
    if kind.get("profile") and clean(row.get("profile", "")).lower() in _EMPTY:
        fields["profile"] = kind.get("profile")
        given.append("profile")
    if kind.sets("approval") and approval in _EMPTY:
        fields["approval"] = kind.get("approval")
        given.append("approval")
    if given:
        fields["from_type"] = tuple(given)


def unread_columns(plan: Plan) -> list[str]:
    """A line for each column of the task table the tool does not read (``Colour``): its cells
    are kept for templates only, and a plan's writer must not believe a setting is in force
    (``validate`` and ``run`` say it)."""
    own = list(dict.fromkeys(name for task in plan.tasks.values() for name in task.extra))
    if not own:
        return []
    first = min(task.line for task in plan.tasks.values())  # the header is two lines above a table's first row
    where = f"{shown(plan.path)}:{first - 2}" if first > 2 else shown(plan.path)
    return [
        f"{where}: column '{name}' is none the tool reads: kept for templates only (task.extra[\"{name}\"]); "
        "it sets nothing"
        for name in own
    ]
