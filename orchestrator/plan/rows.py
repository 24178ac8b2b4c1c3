"""One row of the task table read: the fields of its ``Task``, and what is wrong with its cells.

Cells a table does not have are not read; a Type cell names a type (``plan/tasktypes.py``) whose
priority, profile and approval fill the row's empty cells of the same name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.errors import shown
from orchestrator.plan.cells import NOT_IDS, clean, code_cell, id_problem, not_before_cell, parse_priority, split_ids
from orchestrator.plan.deadlines import HINT as DEADLINE_HINT
from orchestrator.plan.deadlines import parse_deadline
from orchestrator.plan.model import Plan
from orchestrator.plan.rowcells import more_cells
from orchestrator.plan.settings import ACCESS_WORDS, parse_duration, suggest
from orchestrator.plan.tasktypes import APPROVALS, TaskType

Add = Callable[[int, str, str], None]  # (line, what is wrong, what to do)

_TAGS_SPLIT_RE = re.compile(r"[,\s]+")


def task_fields(
    row: dict[str, str], extra: dict[str, str], line: int, add: Add, kinds: Mapping[str, TaskType]
) -> dict[str, Any] | None:
    """The fields of one Task (built once, after agents and details are known), or None;
    ``kinds``: the types its Type cell may name."""
    task_id = clean(row.get("id", ""))
    problem = id_problem(task_id)
    if problem is None and task_id.lower() in NOT_IDS:
        problem = f"task id '{task_id}' cannot be depended on: in a Dependencies cell it means no dependency or 'and'"
    if problem:
        add(line, problem, "use ids such as T-01 made of letters, digits, '.', '_' and '-'")
        return None
    # Cells a table does not have are not read: a 10,000-row plan reads each row once.
    get = row.get
    fields: dict[str, Any] = {
        "id": task_id,
        "name": get("name", "").strip(),
        "description": get("description", "").strip(),
        "line": line,
        "extra": extra,
        "dependencies": tuple(split_ids(get("deps", ""))),
        "agent": clean(row["agent"]) if "agent" in row else "",
        "profile": (clean(row["profile"]) or None) if "profile" in row else None,
        "tags": tuple(t for t in _TAGS_SPLIT_RE.split(row["tags"]) if t) if "tags" in row else (),
        "backend": (clean(row["backend"]).lower() or None) if "backend" in row else None,
        "command": (code_cell(row["command"]) or None) if "command" in row else None,
        "not_before": not_before_cell(get("not_before", ""), task_id, lambda what, hint: add(line, what, hint)),
    }
    access = clean(row["access"]).lower() if "access" in row else ""
    if access and access not in {"-", "—", "none", "default"}:
        if access in ACCESS_WORDS:
            fields["access"] = ACCESS_WORDS[access]
        else:
            add(line, f"{task_id}: unknown access '{row['access']}'", "use read (it changes nothing) or edit")
    isolation = clean(row["isolation"]).lower() if "isolation" in row else ""
    if isolation and isolation not in {"-", "—", "default"}:
        if isolation in {"none", "worktree"}:
            fields["isolation"] = isolation
        else:
            add(line, f"{task_id}: unknown isolation '{row['isolation']}'", "use worktree, or none")
    model = clean(row["model"]) if "model" in row else ""
    if model and model.lower() not in {"-", "—", "none", "default", "inherit"}:
        fields["model"] = model
    if fields["profile"] in {"-", "—", "none"}:
        fields["profile"] = None
    if fields["backend"] in {"-", "—", "none", "default"}:
        fields["backend"] = None
    if "priority" in row:
        try:
            fields["priority"] = parse_priority(row["priority"])
        except ValueError:
            add(
                line,
                f"{task_id}: unknown priority '{row['priority']}'",
                "use P0-P3, critical/high/normal/low, or a number (0 = most urgent)",
            )
    if get("timeout", "").strip():
        try:
            fields["timeout"] = parse_duration(row["timeout"])
            fields["timeout_set"] = True
        except ValueError:
            add(
                line,
                f"{task_id}: bad timeout '{row['timeout']}'",
                "use seconds (300), a duration (5m, 1h30m) or 'none'",
            )
    if get("estimate", "").strip():
        try:
            fields["estimate"] = parse_duration(row["estimate"])
        except ValueError:
            add(line, f"{task_id}: bad estimate '{row['estimate']}'", "use seconds (300) or a duration (5m, 1h30m)")
    if get("deadline", "").strip():
        try:
            fields["deadline"] = parse_deadline(row["deadline"])
        except ValueError as exc:
            add(line, f"{task_id}: bad deadline: {exc}", DEADLINE_HINT)
    for what, hint in more_cells(row, fields):  # retries, blocked, condition, outputs
        add(line, f"{task_id}: {what}", hint)
    if fields["agent"] in {"-", "—"}:
        fields["agent"] = ""
    if fields["agent"]:
        problem = id_problem(fields["agent"], "agent id")
        if problem:
            add(line, f"{task_id}: {problem}", "use agent ids such as Agent-01, or leave the cell empty")
            fields["agent"] = ""
    if "type" in row or "approval" in row:
        _type_cells(row, fields, line, add, kinds)
    return fields


_NO_WORDS = {"", "-", "—", "none", "default"}
_EMPTY = {"", "-", "—", "default"}  # a cell its type fills ("none" says none, whatever the type says)


def _type_cells(
    row: dict[str, str], fields: dict[str, Any], line: int, add: Add, kinds: Mapping[str, TaskType]
) -> None:
    """The Type and Approval cells; the cells the row leaves empty (or ``-``) that its type fills
    (Priority, Assignee, Approval; ``none`` in the cell keeps it empty): the rest of a type reaches
    the task's settings (``Plan.settings_for``)."""
    task_id = fields["id"]
    approval = clean(row.get("approval", "")).lower()
    if approval not in _NO_WORDS:
        if approval in APPROVALS:
            fields["approval"] = approval
        else:
            add(line, f"{task_id}: unknown approval '{row['approval']}'", "use before, after, or leave it empty")
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
