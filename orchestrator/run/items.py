"""A row with an ``Each`` cell (``plan/table/items``) before and outside a run's loop: its items
found, and its instances made and put in the run's plan.

- **Items**: a list as written; a glob of the project's files (sorted; files only; none under
  ``.orchestrator/`` or ``.git/``, none a symlink leads out of the project to); a file's lines
  (blank ones left out); an upstream's list field, from its answer's JSON (``Output``), known once
  it completes. A glob or a file that gives none is no error: the row has no items, and completes.
- **Before the run** (``expand_known``): the rows whose items are known now get their instances in
  the run's plan, so that what the run selects is worked out per instance: one that completed
  (in a run a ``kill -9`` ended, say) is done and runs not again. ``validate`` says what it finds
  (``told``); ``reset`` and ``retry`` act on the instances a run ran (``with_instances``).

What becomes of a row and its instances while the run goes on is ``run/rows``'.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from orchestrator import documents
from orchestrator.errors import NotText, PlanError, Problem, shown
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.instances import Instances, Later, join
from orchestrator.plan.model import Plan, Task
from orchestrator.plan.table.conditions import output_fields
from orchestrator.plan.table.items import ITEM_LIMIT, MAX_ITEMS, split_instance
from orchestrator.state.journal import attempts_started
from orchestrator.state.workspace import Workspace, result_file_of
from orchestrator.vocabulary import TaskStatus

LINES_LIMIT = 256 * 1024 * 1024  # bytes of a ``lines:`` file read at most
WINDOW = 512  # a row's instances a run keeps in its plan, not ended, at least (``window_of``)
_SKIPPED_DIRS = {".orchestrator", ".git"}
Answer = Callable[[str], Mapping[str, Any] | None]  # a completed task's answer's fields; None: not completed


def resolve(row: Task, workspace: Workspace, answer: Answer, where: str) -> list[str] | None:
    """``row``'s items, or ``None`` while they are not known (its upstream has not completed); a
    ``PlanError`` at its line for a file missing, a field that is no list, too many items."""
    each = row.each
    assert each is not None
    base = workspace.project_dir

    def refuse(message: str, hint: str) -> PlanError:
        return PlanError([Problem(where, row.line, f"{row.id}'s Each: {message}", hint)])

    if each.kind == "list":
        found = list(each.values)
    elif each.kind == "glob":
        found = _globbed(base, each.source)
    elif each.kind == "lines":
        found = _lines(base, each.source, refuse)
    else:
        fields = answer(each.source)
        if fields is None:
            return None
        value = fields.get(each.field)
        if not isinstance(value, list):
            shape = "has no field" if each.field not in fields else f"holds {json.dumps(value)[:40]} in"
            hint = f"have {each.source} answer a JSON object with {each.field}: [...] (its Output: {each.field}:list)"
            raise refuse(f"{each.source}'s answer {shape} '{each.field}', not a list", hint)
        found = [item if isinstance(item, str) else json.dumps(item, ensure_ascii=False) for item in value]
    if len(found) > MAX_ITEMS:
        raise refuse(f"{len(found):,} items, more than {MAX_ITEMS:,}", "split the row, or narrow its items")
    for item in found:  # (a file's name of bytes that are not UTF-8; an answer's "\ud800")
        fault = NotText.fault(item)
        if fault is not None:
            hint = "rename the file, or have the upstream answer UTF-8 text: an item is given to every process"
            raise refuse(f"an item that is not text ({fault}): {item[:60]!a}", hint)
    long = next((item for item in found if len(item.encode()) > ITEM_LIMIT or "\0" in item), None)
    if long is not None:
        raise refuse(f"an item of {len(long.encode()):,} bytes, or holding a NUL: {long[:40]!r}...",
                     f"keep each item under {ITEM_LIMIT // 1024} KB of text; point to a file instead")  # fmt: skip
    return found


def _globbed(base: Path, pattern: str) -> list[str]:
    """The project's files ``pattern`` matches (as ``pathlib`` reads it; ``**``: any depth), sorted."""
    root = os.path.realpath(base)
    found: list[str] = []
    for path in base.glob(pattern):
        relative = path.relative_to(base)
        if (relative.parts and relative.parts[0] in _SKIPPED_DIRS) or not path.is_file():
            continue
        real = os.path.realpath(path)
        if real != root and not real.startswith(root + os.sep):  # (a symlink out of the project)
            continue
        found.append(relative.as_posix())
    return sorted(found)


def _lines(base: Path, name: str, refuse: Callable[[str, str], PlanError]) -> list[str]:
    path = base / name
    real, root = os.path.realpath(path), os.path.realpath(base)
    if not real.startswith(root + os.sep):
        raise refuse(f"lines: {name} leads outside the project", "give a file inside the project")
    try:
        with open(path, "rb") as file:
            data = file.read(LINES_LIMIT + 1)
    except FileNotFoundError:
        raise refuse(f"lines: {name}: no such file in the project", f"write the items one a line in {name}") from None
    except OSError as exc:
        raise refuse(f"lines: {name}: {exc.strerror or exc}", "make it a readable file") from None
    if len(data) > LINES_LIMIT:
        raise refuse(f"lines: {name} is over {LINES_LIMIT // 2**20} MiB", "split it across rows")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise refuse(f"lines: {name} is not UTF-8 text", "save it as UTF-8") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def answer_on_disk(workspace: Workspace, plan: Plan) -> Answer:
    """A task's answer's fields from its result file, when it completed (else ``None``)."""

    def fields(task_id: str) -> Mapping[str, Any] | None:
        task = plan.tasks.get(task_id)
        if task is None:
            return None
        meta = documents.read_metadata(workspace.result(task))
        if meta is None or meta.get("status") != TaskStatus.COMPLETED:
            return None
        return output_fields(documents.read_body(workspace.result(task)) or "") or {}

    return fields


def _found(
    plan: Plan, workspace: Workspace, rows: Collection[str] | None = None
) -> list[tuple[Task, Instances, list[str] | None]]:
    """Each row of ``plan`` run per item, its instances' maker and its items now (``None``: known
    once its upstream completes); a ``PlanError`` for every problem of every row, at once (a place
    of a script where no item may stand, a lines file missing...): what ``run`` and ``validate`` say alike."""
    answer, where = answer_on_disk(workspace, plan), shown(plan.path)
    found: list[tuple[Task, Instances, list[str] | None]] = []
    problems: list[Problem] = []
    for row in (task for task in plan.tasks.values() if task.each is not None and (rows is None or task.id in rows)):
        maker = Instances(row, where=where)
        problems += maker.problems  # (said whatever its items)
        try:
            found.append((row, maker, resolve(row, workspace, answer, where)))
        except PlanError as exc:
            problems += exc.problems
    if problems:
        raise PlanError(problems)
    return found


def expand_known(plan: Plan, workspace: Workspace, *, window: int | None = None) -> list[str]:
    """Every row of ``plan`` whose items are known now given its instances (``plan/instances.join``);
    returns the rows whose items are not known yet. A ``PlanError`` for what a row cannot run with:
    said before anything is written. ``window`` (a run's): a row of more items puts in its plan
    only those an earlier run left a trace of (a result, a brief, a log, an attempt in the
    journal: what the run judges done, or takes up) and the next ``window`` of the others; the
    rest wait in ``plan.later`` (``plan/instances.Later``), and join as the run's slots free."""
    later: list[str] = []
    traced: dict[str, set[int]] | None = None
    for row, maker, items in _found(plan, workspace):
        if items is None:
            later.append(row.id)
        elif window is None or len(items) <= window or not may_wait(row):
            join(plan, row, maker.all(items))
        else:
            if maker.problems:
                raise PlanError(maker.problems)
            traced = _traced(plan, workspace) if traced is None else traced
            seen = traced.get(row.id, set())
            left = deque(number for number in range(1, len(items) + 1) if number not in seen)
            first = [left.popleft() for _ in range(min(window, len(left)))]
            now = sorted([number for number in seen if number <= len(items)] + first)
            join(plan, row, [maker.make(number, items[number - 1]) for number in now])
            if left:
                plan.later[row.id] = Later(maker, items, left, window)
    return later


def join_traced(plan: Plan, workspace: Workspace) -> None:
    """The instances still outside a run's plan that an earlier run's trace names now join it (a
    run reads its plan before it holds the workspace: a ``cancel`` may have written a result since)."""
    if not plan.later:
        return
    traced = _traced(plan, workspace)
    for row_id, later in plan.later.items():
        left = set(later.left)
        found = sorted(number for number in traced.get(row_id, ()) if number in left)
        if found:
            taken = set(found)
            later.left = deque(number for number in later.left if number not in taken)
            join(plan, plan.tasks[row_id], [later.maker.make(number, later.items[number - 1]) for number in found])


def window_of(settings: Settings, max_parallel: int | None = None) -> int:
    """How many of a row's instances a run keeps in its plan, not ended (``expand_known``): enough
    that its slots never wait for the next to join. ``ORCHESTRATOR_ITEMS_WINDOW`` sets it (the
    tests: a row of 3 items runs as one of 100,000 does)."""
    given = os.environ.get("ORCHESTRATOR_ITEMS_WINDOW", "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    return max(WINDOW, 4 * (max_parallel or settings.max_parallel))


def may_wait(row: Task) -> bool:
    """Whether ``row``'s instances may wait outside a run's plan until they join: not when each
    waits for a person (an Approval, a Blocked cell), a moment (Not before) or its own Condition."""
    return row.approval is None and row.blocked is None and row.not_before is None and row.condition is None


_TRACE = re.compile(r"(?P<stem>[^/\[]+)\[(?P<number>\d+)\]")


def _traced(plan: Plan, workspace: Workspace) -> dict[str, set[int]]:
    """The numbers of each row's instances an earlier run left a trace of: a result (in the row's
    folder, or in results/ as a version before kept it), a brief, a log, an attempt the journal
    tells of."""
    rows = {task.slug: task.id for task in plan.tasks.values() if task.each is not None}
    found: dict[str, set[int]] = {}
    folders = [workspace.results_dir / result_file_of(f"{slug}[1]").rpartition("/")[0] for slug in rows]
    for directory in (workspace.results_dir, workspace.tasks_dir, workspace.logs_dir, *folders):
        with contextlib.suppress(OSError):
            for name in os.listdir(directory):
                match = _TRACE.match(name)
                if match and match.group("stem") in rows:
                    found.setdefault(rows[match.group("stem")], set()).add(int(match.group("number")))
    ids = set(rows.values())
    for task_id in attempts_started(workspace.journal_file):
        split = split_instance(task_id)
        if split is not None and split[0] in ids:
            found.setdefault(split[0], set()).add(split[1])
    return found


def instances_of(plan: Plan, row: str) -> list[str]:
    """The ids of ``row``'s instances in ``plan`` (the run's), in order; none for another task."""
    task = plan.tasks.get(row)
    if task is None or task.each is None:
        return []
    return [other.id for other in plan.tasks.values() if other.row == row]


def with_instances(plan: Plan, workspace: Workspace) -> Plan:
    """``plan`` with the instances its rows have now (``expand_known``), for a command that acts on
    what a run ran (``reset``, ``retry``, ``cancel``); a row whose items cannot be read keeps none."""
    with contextlib.suppress(PlanError):
        expand_known(plan, workspace)
    return plan


def rows_of(plan: Plan, task_ids: Iterable[str]) -> set[str]:
    """The rows run per item that ``task_ids`` are, or are instances of."""
    found: set[str] = set()
    for task_id in task_ids:
        task = plan.tasks.get(task_id)
        if task is not None and (task.row is not None or task.each is not None):
            found.add(task.row or task.id)
    return found


def recount(plan: Plan, workspace: Workspace, statuses: Mapping[str, TaskStatus], rows: Collection[str]) -> None:
    """``state/items`` of ``rows`` written again from their instances' ``statuses`` (``plan`` with
    its instances: ``with_instances``), as the run writes it: for a command that changed an
    instance's result with no run going on (``reset``, ``cancel``, ``retry``), so that the counts
    every view reads (``status``, ``list``, the dashboard) say what the results say."""
    from orchestrator.state import items as kept

    for row in sorted(rows):
        task = plan.tasks.get(row)
        if task is None or task.each is None:
            continue
        ids, source = instances_of(plan, row), task.each.cell
        if not ids:  # (its items are not known yet: as the run says it)
            kept.write(workspace, kept.RowSummary(row, 0, {}, False, source, round(time.time(), 3)), [])
            continue
        entries = [(plan.tasks[t].number or 0, plan.tasks[t].item or "", str(statuses[t])) for t in ids]
        kept.write(workspace, kept.summarize(row, (state for _, _, state in entries), source=source), entries)


def told(
    plan: Plan, workspace: Workspace, rows: Collection[str] | None = None
) -> tuple[dict[str, int | None], list[str]]:
    """What ``validate`` says of the rows run per item: how many items each has now (``None``:
    known once its upstream completes), and a line each; a ``PlanError`` for what ``run`` refuses
    (``_found``). ``rows``: those alone (a write of them: the others are as they were)."""
    counts: dict[str, int | None] = {}
    lines: list[str] = []
    for row, _, items in _found(plan, workspace, rows):
        assert row.each is not None
        counts[row.id] = None if items is None else len(items)
        if items is None:
            lines.append(f"{row.id} runs once per item of {row.each.cell}: known once {row.each.source} completes")
        else:
            shown_items = ", ".join(items[:3]) + (", ..." if len(items) > 3 else "")
            listed = f" ({shown_items})" if items else ""
            lines.append(f"{row.id} runs once per item of {row.each.cell}: {len(items):,} items now{listed}")
    return counts, lines
