"""A task added to a plan's text: one row at the end of the task table, and its Task Details.

Pure text in, text out (``orchestrator add`` writes the result with ``state.planfile.rewrite``):
every other line stays as the person wrote it. A column the new row needs and the table does not
have is added to the table, empty in the rows above (an empty cell means "the plan's default").
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from orchestrator.errors import PlanError, Problem
from orchestrator.plan.markdown import (
    Table,
    headings,
    parse_document,
    split_frontmatter,
    split_lines,
    tables_in,
)
from orchestrator.plan.table.cells import clean
from orchestrator.plan.table.columns import SETTABLE, keys_of

TASKS_KEYS = ("task decomposition", "tasks", "task list", "task breakdown", "task table")
DETAILS_KEYS = ("task details", "details")
# The column each field goes in, and the header a column gets when the table lacks it: the
# columns ``add`` and ``update`` write (``plan/table/columns``).
HEADERS = SETTABLE
_NUMBERED = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)$")


@dataclass(slots=True)
class NewTask:
    description: str
    id: str | None = None
    name: str | None = None
    after: list[str] = field(default_factory=list)
    priority: str | None = None
    profile: str | None = None
    backend: str | None = None
    command: str | None = None
    details: str | None = None
    tags: list[str] = field(default_factory=list)
    retries: int | None = None
    timeout: str | None = None  # as given (``10m``): the plan says it as its writer did
    type: str | None = None  # a task type's name
    blocked: str | None = None  # its Blocked cell: why it is held
    each: str | None = None  # its Each cell: the items it runs over (``plan/table/items``)


def next_id(ids: list[str]) -> str:
    """The id after the highest numbered one, in its form (``T-09`` -> ``T-10``); ``T-01`` first."""
    best: tuple[int, str, int] | None = None
    for task_id in ids:
        match = _NUMBERED.match(task_id)
        if match:
            number = int(match.group("number"))
            if best is None or number > best[0]:
                best = (number, match.group("prefix"), len(match.group("number")))
    if best is None:
        return "T-01"
    number, prefix, width = best
    taken = {task_id.lower() for task_id in ids}
    while True:
        number += 1
        candidate = f"{prefix}{number:0{width}d}"
        if candidate.lower() not in taken:
            return candidate


def _cell(value: str) -> str:
    """``value`` fit for one table cell: one line, its pipes escaped."""
    return " ".join(value.split()).replace("|", "\\|")


@dataclass(slots=True)
class _TaskTable:
    lines: list[str]  # the plan's lines, each with its line end
    newline: str
    table: Table
    columns: list[str | None]  # what each column holds


def _task_table(text: str, doing: str) -> _TaskTable:
    """The plan's task table, to ``doing`` (what an error says could not be done)."""
    lines = split_lines(text)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    front = split_frontmatter(lines)
    document = parse_document(lines, front.body_offset)
    section = document.section(*TASKS_KEYS)
    tables = tables_in(section.tokens, document.lines) if section is not None else []
    if section is None or not tables:
        where = section.start + 1 if section is not None else 1
        hint = "add a '## Task Decomposition' table such as '| Task ID | Description | Dependencies |' first"
        raise PlanError([Problem("master_plan.md", where, f"no task table to {doing}", hint)])
    table = tables[0]
    columns = keys_of(table.header)
    if "id" not in columns:
        hint = "add a first column '| Task ID |' with ids such as T-01"
        raise PlanError([Problem("master_plan.md", table.header_line, "the task table has no 'Task ID' column", hint)])
    return _TaskTable(lines, newline, table, columns)


def update_task(text: str, task_id: str, changes: Mapping[str, str]) -> str:
    """``text`` with the cells of ``task_id``'s row set to ``changes`` (a field, as ``HEADERS``
    names it: its new cell; an empty one says "the plan's default"). A column the table lacks is
    added, empty in the other rows; every other line stays as the person wrote it."""
    found = _task_table(text, "change a row of")
    lines, columns, table = found.lines, found.columns, found.table
    at = columns.index("id")
    row = next((number for number, cells in table.rows if clean(cells[at]).lower() == task_id.lower()), None)
    if row is None:
        raise PlanError([Problem("master_plan.md", table.header_line, f"no row of {task_id} in the task table", "")])
    missing = [key for key, value in changes.items() if value and key not in columns]
    if missing:
        _add_columns(lines, table.header_line, table.rows[-1][0], [HEADERS[key] for key in missing], found.newline)
        columns += missing
    cells = next(cells for number, cells in table.rows if number == row)
    cells = [*cells, *[""] * (len(columns) - len(cells))]
    for key, value in changes.items():
        if key in columns:
            cells[columns.index(key)] = value
    lines[row - 1] = "| " + " | ".join(_cell(cell) for cell in cells) + " |" + found.newline
    return "".join(lines)


def task_ids(text: str) -> list[str]:
    """The ids of the task table's rows in ``text``, read off the table alone (no plan parsed)."""
    found = _task_table(text, "add a row to")
    at = found.columns.index("id")
    return [clean(cells[at]) for _, cells in found.table.rows if len(cells) > at]


def add_task(text: str, new: NewTask, taken: Collection[str] = ()) -> tuple[str, str]:
    """``text`` with ``new`` appended to its task table (and Task Details); returns it and the id.
    ``taken``: ids no longer in the table that a new task never gets (archived tasks')."""
    found = _task_table(text, "add a row to")
    lines, newline, table, columns = found.lines, found.newline, found.table, found.columns
    ids = [clean(cells[columns.index("id")]) for _, cells in table.rows] + list(taken)
    task_id = new.id or next_id(ids)
    values: dict[str, str] = {"id": task_id, "description": new.description}
    optional: Mapping[str, str | None] = {
        "name": new.name,
        "deps": ", ".join(new.after) if new.after else None,
        "priority": new.priority,
        "profile": new.profile,
        "backend": new.backend,
        "command": f"`{new.command}`" if new.command else None,
        "tags": ", ".join(new.tags) if new.tags else None,
        "retries": str(new.retries) if new.retries is not None else None,
        "timeout": new.timeout,
        "type": new.type,
        "blocked": new.blocked,
        "each": new.each,
    }
    values.update({key: value for key, value in optional.items() if value})
    if "description" not in columns and "name" in columns and "name" not in values:
        values["name"] = values.pop("description")
    missing = [key for key in values if key not in columns]
    last = table.rows[-1][0] if table.rows else table.header_line + 1  # 1-based line of the last row
    if missing:
        _add_columns(lines, table.header_line, last, [HEADERS[key] for key in missing], newline)
        columns += missing
    row = "| " + " | ".join(_cell(values.get(key or "", "")) for key in columns) + " |" + newline
    if not lines[last - 1].endswith(("\n", "\r")):
        lines[last - 1] += newline
    lines.insert(last, row)
    result = "".join(lines)
    if new.details:
        result = _add_details(result, task_id, new.name or "", new.details, newline)
    return result, task_id


def _add_columns(lines: list[str], header: int, last: int, headers: list[str], newline: str) -> None:
    """Append columns to the table from line ``header`` (1-based) to ``last``: their header, the
    delimiter, and an empty cell in every row."""
    for index in range(header - 1, last):
        line = lines[index].rstrip("\r\n")
        if index == header - 1:
            extra = "".join(f" {name} |" for name in headers)
        elif index == header:
            extra = "".join("---|" for _ in headers)
        else:
            extra = "".join("  |" for _ in headers)
        body = line.rstrip()
        if not body.endswith("|"):
            body += " |"
        lines[index] = body + extra + newline


def details_heading(details: str) -> tuple[int, str, str] | None:
    """The first heading of level 1 to 3 in ``details`` (code aside): its 1-based line, what it is,
    and what to do about it. Under ``### T-09 Name`` it would end the task's details (a ``###``
    starts another task's; a ``##``, or text underlined with ``---``, another section)."""
    for line, level, setext in headings(details):
        if level > 3:
            continue
        if setext:
            underline = "===" if level == 1 else "---"
            return line, f"this line, underlined with '{underline}', is a heading that", "put a blank line between them"
        hashes = "#" * level
        return line, f"a '{hashes} ' heading", "make it '#### ' or deeper"
    return None


def _add_details(text: str, task_id: str, name: str, details: str, newline: str) -> str:
    """``### <id> <name>`` and ``details`` at the end of Task Details (the section made if missing)."""
    lines = split_lines(text)
    front = split_frontmatter(lines)
    document = parse_document(lines, front.body_offset)
    body = details.strip("\n").replace("\r\n", "\n").replace("\n", newline)
    block = f"### {task_id} {name}".rstrip() + newline + body + newline
    section = document.section(*DETAILS_KEYS)
    if section is None:
        tasks = document.section(*TASKS_KEYS)
        at = tasks.end if tasks is not None else len(lines)
        head = "" if at == 0 or lines[at - 1].strip() == "" else newline
        lines.insert(at, f"{head}## Task Details{newline}{newline}{block}{newline}")
        return "".join(lines)
    end = section.end
    while end > section.body_start and not lines[end - 1].strip():
        end -= 1
    if end > 0 and not lines[end - 1].endswith(("\n", "\r")):
        lines[end - 1] += newline
    lines.insert(end, newline + block)
    return "".join(lines)


@dataclass(frozen=True, slots=True)
class TakenOut:
    """A task's lines as the plan had them, once taken out (``take_out``): what an archive keeps."""

    header: str  # the task table's header and delimiter lines
    row: str
    details: str | None  # its Task Details block, ``### T-03 ...`` and all, else None


def take_out(text: str, ids: set[str]) -> tuple[str, dict[str, TakenOut]]:
    """``text`` without the rows of ``ids`` (lower-case) and their Task Details blocks, and what
    came out of it, by the id as the table spells it; every other line as the person wrote it."""
    found = _task_table(text, "take a row out of")
    lines, table, at = found.lines, found.table, found.columns.index("id")
    header = "".join(lines[found.table.header_line - 1 : found.table.header_line + 1])
    rows = {clean(cells[at]): number for number, cells in table.rows if clean(cells[at]).lower() in ids}
    drop = set(rows.values())
    details: dict[str, str] = {}
    document = parse_document(lines, split_frontmatter(lines).body_offset)
    section = document.section(*DETAILS_KEYS)
    if section is not None:
        starts = [tok.map[0] for tok in section.tokens if tok.type == "heading_open" and tok.tag == "h3" and tok.map]
        lowered = {task_id.lower(): task_id for task_id in rows}
        for index, start in enumerate(starts):
            end = starts[index + 1] if index + 1 < len(starts) else section.end
            while index + 1 == len(starts) and end > start + 1 and not lines[end - 1].strip():
                end -= 1  # (the blank lines before the next section stay)
            words = re.sub(r"^#+\s*", "", lines[start]).split()
            first = clean(words[0]).rstrip(":.—-").lower() if words else ""
            task_id = lowered.get(first) or lowered.get(clean(words[0]).lower() if words else "")
            if task_id is not None and task_id not in details:
                details[task_id] = "".join(lines[start:end]).rstrip("\r\n") + "\n"
                drop.update(range(start + 1, end + 1))  # (1-based, as the rows' numbers)
    kept = "".join(line for number, line in enumerate(lines, start=1) if number not in drop)
    taken = {task_id: TakenOut(header, lines[number - 1], details.get(task_id)) for task_id, number in rows.items()}
    return kept, taken
