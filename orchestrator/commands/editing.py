"""``orchestrator update``: a task's row changed in master_plan.md from the command line.

The row's cells are set in place (``plan.edit.update_task``), every other line as the person
wrote it; the plan with the change is checked as ``validate`` checks it, and one that would name
an unknown task or make a cycle is refused in one line, nothing written. The file is replaced as
``add`` replaces it, one edit at a time, never losing a save made meanwhile; a run going on reads
the plan again as it does after any edit.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from orchestrator.commands import words
from orchestrator.commands.calling import Call, Result
from orchestrator.commands.options import Arguments, dest_of
from orchestrator.commands.words import task_id_in
from orchestrator.errors import PlanError, UsageError, shown
from orchestrator.state.plans import plan_of
from orchestrator.vocabulary import TaskStatus, statuses_named

if TYPE_CHECKING:
    from orchestrator.plan.model import Plan, Task
    from orchestrator.state.workspace import Workspace


def _changes(args: Arguments, task: Task, types: Collection[str]) -> dict[str, str]:
    """What the options set, as the row's cells will say it (by column key): an option per column
    ``update`` sets (``plan/table/columns``), ``--untag``, ``--status``; ``types``: the plan's task
    types."""
    from orchestrator.plan.table.cells import NO_COMMAND
    from orchestrator.plan.table.columns import COLUMNS

    changes: dict[str, str] = {}
    offered: list[str] = []
    for column in COLUMNS:
        names = column.option.update if column.option is not None else ()
        if not names:
            continue
        offered.append(next(name for name in names if name.startswith("--")))
        value = getattr(args, dest_of(names))
        if value is not None or (column.key == "tags" and args.untag):
            changes[column.key] = _cell(column.key, value, task, types, args.untag)
    command = changes.get("command")
    if command and task.blocked == NO_COMMAND and args.status is None:  # (a task `add` held for want of one)
        changes["blocked"] = ""
    changes.update(_status(args))
    if not changes:
        raise UsageError(f"nothing to change — give at least one of {', '.join([*offered, '--untag', '--status'])}")
    return changes


def _cell(key: str, value: Any, task: Task, types: Collection[str], untag: list[str] | None) -> str:
    """What the option of column ``key`` given ``value`` makes its cell say."""
    from orchestrator.plan.table.cells import split_ids

    match key:
        case "command":
            return f"`{value.strip()}`" if value.strip() else ""
        case "type":
            return words.task_type(value, types) or ""
        case "priority":
            return words.priority(value) or ""
        case "profile":
            return str(value).strip()
        case "name":
            if not value.strip():
                raise UsageError("--title is empty: give the task a name")
            return str(value)
        case "deps":  # the whole list: "" leaves none
            return ", ".join(d for part in value for d in split_ids(part)) or "None"
        case "timeout":
            return words.duration_text(value, "--timeout") or ""
        case "each":
            return words.each(value) if str(value).strip() else ""
        case "tags":
            removed = {tag.lower() for tag in words.tags(untag)}
            return ", ".join(
                dict.fromkeys(tag for tag in (*task.tags, *words.tags(value)) if tag.lower() not in removed)
            )
    return str(value)  # (retries: a count already)


def _status(args: Arguments) -> dict[str, str]:
    """The Blocked cell ``--status`` sets: a person holds a task back (``blocked``, with
    ``--reason``) or lets it go (``pending``); every other state is the run's to set."""
    from orchestrator.plan.table.cells import blocked_cell

    named = statuses_named(args.status) if args.status is not None else None
    status = (
        "blocked" if named == frozenset({TaskStatus.BLOCKED}) else "pending" if named and named <= _NOT_STARTED else ""
    )
    if args.reason is not None and status != "blocked":
        raise UsageError("--reason goes with --status blocked: say why the task is held")
    if args.status is None:
        return {}
    if status == "pending":  # (todo too: not started, as the other task managers say it)
        return {"blocked": ""}
    if status != "blocked":
        raise UsageError(
            f"--status {args.status}: a person sets blocked (with --reason) or pending (released); the run sets "
            "the others (`orchestrator cancel` and `retry` stop a task or put it back)"
        )
    reason = " ".join((args.reason or "").split()) or "yes"
    if blocked_cell(reason) is None:
        raise UsageError(f"--reason {args.reason!r} reads as not blocked in a Blocked cell: say why in a few words")
    return {"blocked": reason}


_NOT_STARTED = frozenset({TaskStatus.PENDING, TaskStatus.WAITING})

# What to do instead of blocking a task a Blocked cell would not hold (``views/replay``'s ``hold``
# holds only a task that would start, or start again, in the next run).
_INSTEAD = {
    TaskStatus.RUNNING: "blocking holds back a task not started yet; `orchestrator cancel {id}` stops it",
    TaskStatus.RETRYING: "blocking holds back a task not started yet; `orchestrator cancel {id}` stops it",
    TaskStatus.COMPLETED: "there is nothing left to hold back (`orchestrator run --rerun {id}` redoes it)",
    TaskStatus.BYPASSED: "there is nothing left to hold back (its Condition was false)",
    TaskStatus.CANCELLED: "no run starts it until `orchestrator retry {id}`",
    TaskStatus.AWAITING_APPROVAL: "it waits for a person already: `orchestrator reject {id}` holds back what needs it",
    TaskStatus.REJECTED: "no run starts it until `orchestrator approve {id}` or `orchestrator retry {id}`",
}


def _holdable(plan: Plan, workspace: Workspace, task_id: str) -> None:
    """Refuse blocking a task its Blocked cell would not hold: one running, finished, cancelled or
    at an approval gate (the run would go on with it, and its dependents, as if not written)."""
    from orchestrator.views.replay import collect

    status = next(v.status for v in collect(plan, workspace) if v.id == task_id)
    instead = _INSTEAD.get(status)
    if instead is not None:
        raise UsageError(f"{task_id} is {status}: " + instead.format(id=task_id))


def update(call: Call) -> Result:
    """The task's row changed as the options say, the plan with the change checked before it is written."""
    from orchestrator.commands.adding import plan_edit_lock
    from orchestrator.commands.reading import checked
    from orchestrator.commands.shown import task_json
    from orchestrator.plan.edit import update_task
    from orchestrator.plan.parser import parse_plan
    from orchestrator.state import planfile
    from orchestrator.state.kept.archive import archived_tasks
    from orchestrator.state.plans.identity import read_book

    args, workspace = call.args, call.workspace
    plan = plan_of(workspace)
    task_id = task_id_in(plan, args.task)
    changes = _changes(args, plan.tasks[task_id], plan.types)
    workspace.check_inside()

    archived = archived_tasks(workspace)

    def change(text: str) -> str:
        # The plan is parsed once here, with the change (a 10,000-task plan takes a few hundred ms
        # a parse): the row is found in the text, the plan checked as it will be written.
        try:
            result = update_task(text, task_id, changes)
        except PlanError:  # (the table itself gone is told by the parse of the text as it is)
            parse_plan(text, workspace.plan_file, book=read_book(workspace), archived=archived)
            raise UsageError(f"{task_id}: no longer in {shown(workspace.plan_file)}") from None
        try:  # (held to what validate holds the file to: read as it reads it, then checked as it checks)
            changed = plan_of(workspace, text=result)
            checked(changed, workspace, rows=(task_id,))
        except PlanError as exc:  # said of the options: the plan with the change is not written
            said = "; ".join(p.message + (f" — {p.hint}" if p.hint else "") for p in exc.problems)
            raise UsageError(f"update {task_id}: {said}") from None
        if changes.get("blocked"):
            _holdable(changed, workspace, task_id)
        return result

    with plan_edit_lock(workspace):
        planfile.rewrite(workspace.plan_file, change)

    def data() -> dict[str, Any]:  # (asked for by --json, MCP and HTTP: the views replay the machine)
        from orchestrator.run.resume.freshness import current_views

        plan = plan_of(workspace)
        view = next(v for v in current_views(plan, workspace) if v.id == task_id)
        return {"ok": True, "id": task_id, "changed": sorted(changes), "task": task_json(plan.tasks[task_id], view)}

    said = f"✏️ {task_id} updated in {workspace.relative(workspace.plan_file)}: {_said(changes)}"
    return Result(data, aside=[said])


_SAID = {"name": "title", "profile": "assignee", "deps": "dependencies"}


def _said(changes: dict[str, str]) -> str:
    """What changed, as the options name it: ``priority, blocked`` (``released``: blocked no more)."""
    said = sorted(_SAID.get(key, key) for key in changes if key != "blocked")
    if "blocked" in changes:
        said.append("blocked" if changes["blocked"] else "released")
    return ", ".join(said)
