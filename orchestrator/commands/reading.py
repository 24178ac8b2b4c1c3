"""The commands that read a workspace and change nothing: ``status``, ``output``, ``validate`` (and,
in modules of their own, ``list``, ``logs``, ``history``). None takes the workspace's lock.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from orchestrator.commands.calling import Call, Result
from orchestrator.errors import NoOutputError, PlanError, Problem, shown
from orchestrator.plan.config.params import as_json, parse_assignments, shown_values
from orchestrator.state.plans import plan_of
from orchestrator.vocabulary import TaskStatus, counted

if TYPE_CHECKING:
    from orchestrator.plan.config.profiles import Profiles
    from orchestrator.plan.model import Plan
    from orchestrator.state.workspace import Workspace

# The tasks that need a person's eyes or are under way: what an agent asks ``status`` for first.
ATTENTION = frozenset(
    {
        TaskStatus.RUNNING,
        TaskStatus.RETRYING,
        TaskStatus.FAILED,
        TaskStatus.AWAITING_APPROVAL,
        TaskStatus.BLOCKED,
        TaskStatus.REJECTED,
    }
)


@contextmanager
def no_gc_pauses() -> Iterator[None]:
    """The cyclic garbage collector off while a one-shot command reads a plan: loading one builds
    tens of thousands of objects that live until the command ends, and the collector walked them
    again and again as they grew (35 ms of ``validate`` at 10,000 tasks), for no garbage."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def status(call: Call) -> Result:
    """Every task's state (``--tasks attention``: those under way or waiting for a person; ``none``:
    the counts alone; ``--limit``/``--offset``: a page), the counts always whole. Read from the
    snapshot of what it shows (``commands/shown``), kept while its sources are the same."""
    from orchestrator.commands.shown import shown, status_json, status_text
    from orchestrator.output.tasktable import status_table

    args = call.args
    one = _one_task(call)
    with no_gc_pauses():
        found = shown(call.workspace, parse_assignments(args.param))
    data = status_json(found)
    if one is not None:
        return _status_of(call, data, one)
    if args.tasks == "all" and args.limit is None and not args.offset:
        return Result(data, shown=lambda: status_text(found) + "\n")
    listed = _chosen(data, args.tasks, args.limit, args.offset)

    return Result(data, shown=lambda: status_text(found, status_table(listed, data["counts"])) + "\n")


def _one_task(call: Call) -> str | None:
    """The task ``status`` was asked about, if one: ``status T-03``'s word is a task, not a
    workspace, when no directory of that name holds one."""
    args = call.args
    wanted = args.get("task")
    directory = args.get("directory")
    if wanted is None and directory and call.fixed is None and not os.path.exists(directory):
        args.values["directory"], wanted = None, directory
    return str(wanted) if wanted is not None else None


def _status_of(call: Call, data: dict[str, Any], wanted: str) -> Result:
    """``status T-03``: that task's line; a row run per item, its items below, each with its state."""
    from orchestrator.commands.words import task_id_in
    from orchestrator.output.tasktable import status_table
    from orchestrator.state import items

    plan = plan_of(call.workspace)
    task_id = task_id_in(plan, wanted)
    listed = [task for task in data["tasks"] if task["id"] == task_id]
    answer: dict[str, Any] = {"task": listed[0] if listed else {"id": task_id}}
    table = status_table(listed, {listed[0]["status"]: 1}) if listed else f"{task_id}: not in this view"
    lines = [table]
    if task_id in plan.tasks and plan.tasks[task_id].each is not None:
        each: list[dict[str, Any]] = [{"id": f"{task_id}[{n}]", "number": n, "item": item, "status": state}
                for n, item, state in items.instances_of(call.workspace, task_id)]  # fmt: skip
        known = bool(each)
        each = _chosen_items(answer, each, call.args.tasks, call.args.limit, call.args.offset)
        answer["instances"] = each
        width = max((len(entry["id"]) for entry in each), default=0)
        lines += ["", *(f"{e['id']:<{width}}  {_state_word(e['status'])}  {e['item']}" for e in each)]
        if not known:
            lines += ["", f"{task_id}: no items listed yet (they are known once a run reaches it)"]
    return Result(answer, shown=lambda: "\n".join(lines) + "\n")


def _chosen_items(
    answer: dict[str, Any], each: list[dict[str, Any]], which: str, limit: int | None, offset: int | None
) -> list[dict[str, Any]]:
    """A row's items as ``status`` chooses tasks (``--tasks attention``: those under way or waiting
    for a person; ``none``: none; ``--limit``/``--offset``: a page), ``listed`` in ``answer`` saying
    how many there were to list, from where, and whether there are ``more``."""
    found = {"tasks": each}
    page = _chosen(found, which, limit, offset)
    answer["listed"] = found["listed"]
    return page


def _state_word(state: str) -> str:
    from orchestrator.vocabulary import TaskStatus

    try:
        status = TaskStatus(state)
    except ValueError:
        return state
    return f"{status.icon} {state:<10}"


def _chosen(data: dict[str, Any], which: str, limit: int | None, offset: int | None) -> list[dict[str, Any]]:
    """The tasks ``status`` lists (``data["tasks"]`` cut to them, with ``listed``: how many there
    were to list, from where, and whether there are ``more``)."""
    needs = {str(s) for s in ATTENTION} if which == "attention" else {str(s) for s in TaskStatus}
    wanted = [task for task in data["tasks"] if which != "none" and task["status"] in needs]
    start = offset or 0
    page = wanted[start:] if limit is None else wanted[start : start + limit]
    data["tasks"] = page
    data["listed"] = {"tasks": which, "total": len(wanted), "offset": start, "more": start + len(page) < len(wanted)}
    return page


def output(call: Call) -> Result:
    """What a completed task answered: its result's body alone, byte for byte as it printed it."""
    from orchestrator.commands.words import task_in
    from orchestrator.documents import read_output
    from orchestrator.state.results import read_record

    workspace = call.workspace
    plan = plan_of(workspace)
    task = task_in(plan, call.args.task)
    path = workspace.result(task)
    record = read_record(path, task.id)
    body = read_output(path) if record is not None else None
    if record is None or body is None:
        raise NoOutputError(f"{task.id} has no result yet: run it first (`orchestrator run --only {task.id}`)")
    if record.status != TaskStatus.COMPLETED:
        why = f" ({record.reason})" if record.reason else ""
        raise NoOutputError(
            f"{task.id} has no output: its result says {record.status}{why} — "
            f"`orchestrator logs {task.id}` shows what it printed"
        )
    data = {
        "ok": True,
        "task": task.id,
        "result_file": workspace.relative(path),
        "output": body,
        "metadata": record.to_mapping(),
    }
    return Result(data, shown=lambda: body)


def validate(call: Call) -> Result:
    """The plan parsed and checked as ``run`` checks it, with what is worth a look beside it."""
    from orchestrator.plan.graph import longest_chain
    from orchestrator.run.checks.preflight import frontmatter_problems

    workspace = call.workspace
    with no_gc_pauses():
        try:
            plan = plan_of(workspace, parse_assignments(call.args.param), complete=True)  # (as run reads it)
        except PlanError as exc:  # with what the frontmatter's backend says of its settings: all at once
            more = [p for p in frontmatter_problems(workspace.plan_file) if p not in exc.problems]
            if not more:
                raise
            raise PlanError([*exc.problems, *more]) from None
        path = longest_chain({task.id: task.dependencies for task in plan.tasks.values()}, plan.order)
        notices: list[str] = []
        items, said = checked(plan, workspace, notices=notices, base=True)  # (as run checks it before it begins)
        data, lines = _told(plan, call, notices)
        if items:
            data["items"], lines = items, lines + said  # (a row run per item: how many it has now)
    depth = len(path)  # every task weighs 1, so the heaviest chain has one task in each layer
    edges = len(plan.edges())
    data = {
        "ok": True,
        "plan": str(workspace.plan_file),
        "tasks": len(plan.tasks),
        "dependencies": edges,
        "layers": depth,
        "longest_chain": path,
        "backend": plan.settings.backend,
        "max_parallel": plan.settings.max_parallel,
        "notices": notices,
        "params": {name: {**as_json(p), "value": plan.params.get(name)} for name, p in plan.settings.params.items()},
        **data,
    }

    def text() -> str:
        said = [
            f"OK: {counted(len(plan.tasks), 'task')}, {counted(edges, 'dependency', 'dependencies')}, "
            f"{counted(depth, 'layer')}; deepest chain ({counted(len(path), 'task')}): {' -> '.join(path)}"
        ]
        if plan.params:
            said.append(f"Parameters: {shown_values(plan.params)}")
        return "".join(line + "\n" for line in [*said, *lines])

    return Result(data, shown=text, aside=list(notices))


def checked(
    plan: Plan,
    workspace: Workspace,
    profiles: Profiles | None = None,
    *,
    notices: list[str] | None = None,
    base: bool = False,
    rows: Collection[str] | None = None,
) -> tuple[dict[str, int | None], list[str]]:
    """What ``validate`` holds a plan to once it is read (``plan_of``: its rows, its dependencies,
    its parameters and where each may stand): its backends, profiles, commands, ``cwd`` and
    fallbacks as ``run`` checks them (``check_plan``; ``base``: that the person's HEAD merges into
    the integration branch), its status blocks' markers, and its rows run per item (a place of a
    script where no item may stand, items that cannot be read). A ``PlanError`` for every problem.
    The one check every write of a plan is held to as well (``add``, ``update``, ``import``): a
    row ``validate`` would refuse is never written; ``rows``: the rows a write changes, the only
    ones whose items it reads (a glob of the project, a file: the others are as they were).
    Returns what ``validate`` says of the rows run per item: their counts now and a line each."""
    from orchestrator.run.checks.preflight import check_plan
    from orchestrator.state import planfile

    check_plan(plan, workspace, profiles, notices=notices, base=base)
    if plan.settings.status_blocks:  # markers render and run would refuse to write between
        broken = planfile.broken_markers(plan.text)
        if broken:
            raise PlanError([Problem(shown(plan.path), line, what, hint) for line, what, hint in broken])
    if not any(task.each is not None for task in plan.tasks.values()):
        return {}, []
    from orchestrator.run.items import told

    return told(plan, workspace, rows)


def _told(plan: Plan, call: Call, notices: list[str]) -> tuple[dict[str, Any], list[str]]:
    """What ``validate`` tells beside the plan's problems (``commands/notices``): the notices it adds
    to ``notices``, and its sections' data and lines (types, conditions and gates, cache, hedges)."""
    from orchestrator.commands import notices as notes
    from orchestrator.state.kept import archive

    workspace = call.workspace
    notices += notes.own_columns(plan)
    notices += notes.unseen_work(plan, workspace)
    notices += notes.pushing_agents(plan, workspace)
    notices += notes.labels_and_holds(plan, workspace)
    typed, typed_lines = notes.typed(plan, workspace)
    conditions, gates, branch_lines = notes.branches(plan)
    notices += archive.in_both(workspace, list(plan.tasks))
    notices += notes.timed(plan, workspace)
    notices += notes.untrusted(plan, workspace)
    notices += notes.unsandboxed(plan, workspace)
    kept, kept_lines = notes.cache_and_checkpoint(plan, workspace)
    hedges, hedge_lines = notes.hedging(plan, workspace)
    forecast, forecast_lines = notes.forecast(plan, workspace)
    data = {"types": typed, "conditions": conditions, "gates": gates, **kept, **hedges, **forecast}
    return data, branch_lines + typed_lines + kept_lines + hedge_lines + forecast_lines
