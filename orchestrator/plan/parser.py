"""master_plan.md in: parse the markdown into a validated ``Plan`` of ``Task`` rows and a DAG.

Forgiving about *form* (column names, dependency separators, priority words, emoji in headings), strict
about *meaning* (ids, dependencies, cycles); every problem is collected with its line and raised in one ``PlanError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.documents import NotAFile, TooLarge, read_regular
from orchestrator.errors import PlanError, Problem, WorkspaceError, shown
from orchestrator.plan.config import tasktypes
from orchestrator.plan.config.settings import SETTING_NAMES, settings_from_mapping, suggest
from orchestrator.plan.config.tasktypes import TaskType
from orchestrator.plan.dependencies import check_dependencies
from orchestrator.plan.identity import Book, Row, assign
from orchestrator.plan.markdown import (
    Document,
    Frontmatter,
    FrontmatterError,
    Section,
    Table,
    fenced_whole,
    is_delimiter_row,
    misplaced_frontmatter,
    parse_document,
    pipe_paragraphs,
    split_frontmatter,
    split_lines,
    tables_in,
)
from orchestrator.plan.model import PLAN_FILE, PLAN_LIMIT, READ_LIMIT, ArchivedTask, Plan, Task, own_size, too_large
from orchestrator.plan.table.cells import clean
from orchestrator.plan.table.columns import header_columns
from orchestrator.plan.table.cutoff import cut_off_rows
from orchestrator.plan.table.items import check_each
from orchestrator.plan.table.rows import task_fields

_REQUEST_KEYS = ("original request", "request", "user request")
_GOAL_KEYS = ("goal definition", "goal", "goals")
TASKS_KEYS = ("task decomposition", "tasks", "task list", "task breakdown", "task table")
DETAILS_KEYS = ("task details", "details")


class _Collector:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.cut_off: set[str] = set()  # ids of rows cut off from the task table (lowercase)
        self.table_read = True  # False: no task table could be read, so no id is known
        self.had: set[str] = set()  # every task id the workspace gave an agent id (lowercase)
        self.table_line = 0  # the task table's header line (1-based)

    def add(self, line: int, message: str, hint: str = "") -> None:
        self.problems.append(Problem(self.file, line, message, hint))


def read_plan_text(path: Path) -> str:
    """The plan's text; a missing file or non-UTF-8 bytes become a ``PlanError``/``WorkspaceError``.
    Only a regular file is read (a FIFO would block, /dev/zero never end), of at most ``PLAN_LIMIT``
    bytes outside its status blocks (``READ_LIMIT`` in all)."""
    where = shown(path)
    try:
        data = read_regular(path, READ_LIMIT)
    except FileNotFoundError:
        raise WorkspaceError(
            f"{where}: no such file — run `orchestrator init` to create a workspace, or pass its directory"
        ) from None
    except NotAFile as exc:
        raise WorkspaceError(
            f"{where}: {exc.strerror} — {PLAN_FILE} must be a plain text file: move this aside and write one there"
        ) from None
    except TooLarge as exc:
        raise PlanError([too_large(where, exc.size)]) from None
    if (size := own_size(data)) > PLAN_LIMIT:
        raise PlanError([too_large(where, size)])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # exc.start counts from exc.object: the bytes after any byte order mark utf-8-sig skipped.
        line = exc.object[: exc.start].count(b"\n") + 1
        raise PlanError(
            [
                Problem(
                    where,
                    line,
                    f"not valid UTF-8 (byte 0x{exc.object[exc.start]:02x})",
                    "save the file as UTF-8",
                )
            ]
        ) from None


def read_plan(path: Path, *, book: Book | None = None, archived: Mapping[str, ArchivedTask] | None = None) -> Plan:
    """Read and validate the plan file at ``path``; ``book``: the agent ids its workspace gave."""
    return parse_plan(read_plan_text(path), path, book=book, archived=archived)


def parse_plan(
    text: str,
    path: str | Path = PLAN_FILE,
    *,
    book: Book | None = None,
    archived: Mapping[str, ArchivedTask] | None = None,
) -> Plan:
    """Parse and validate plan text; raises ``PlanError`` listing every problem found.

    ``book``: the agent ids the plan's workspace gave so far (``state/agents.json``), which each
    task keeps; without one, tasks without an Agent cell are numbered in table order.
    ``archived``: the tasks its workspace archived (``state/kept/archive``), which a row may depend on."""
    path = Path(path)
    out = _Collector(shown(path))
    _within_limit(text, path)
    lines = split_lines(text)
    if "\0" in text:
        _refuse_nul(lines, out)
    _refuse_fenced(lines, out)
    try:
        front = split_frontmatter(lines)
    except FrontmatterError as exc:
        out.add(exc.line, str(exc), exc.hint or "fix the YAML between the two '---' lines, or remove them")
        raise PlanError(out.problems) from None
    misplaced = misplaced_frontmatter(lines, SETTING_NAMES) if not front.body_offset else None
    if misplaced is not None:  # (else a spending cap or a read-only mode written there is dropped)
        out.add(
            misplaced,
            "these settings are not read: the frontmatter's '---' must be the file's first line",
            "move the block to the top of the file, with nothing above it",
        )
    settings, setting_problems = settings_from_mapping(front.data)
    kinds = _types(path, front, lines, settings.types, out)
    _settings_told(setting_problems, front.key_lines, out)
    document = parse_document(lines, front.body_offset)

    if document.unclosed_fence is not None:
        out.add(
            document.unclosed_fence,
            "this code fence is never closed, so the rest of the file is inside it",
            "close it with a line of ``` (or ~~~) after its last line",
        )
    request = _section_text(document, document.section(*_REQUEST_KEYS))
    goal = _section_text(document, document.section(*_GOAL_KEYS))
    rows = _parse_tasks(document, out, kinds)
    out.had = {task_id.lower() for task_id in (book.agents if book else ())}
    details, details_lines = _parse_details(document, document.section(*DETAILS_KEYS), list(rows), out)
    for task_id, body in details.items():
        rows[task_id].update(details=body, details_line=details_lines[task_id])
    assignment = assign([Row(task_id, row["agent"], row["line"]) for task_id, row in rows.items()], book or Book())
    for line, message, hint in assignment.problems:
        out.add(line, message, hint)
    for task_id, agent in assignment.agents.items():
        rows[task_id]["agent"] = agent
    check_dependencies(rows, out.add, archived)
    check_each(rows, out.add)
    if out.problems:
        raise PlanError(out.problems)
    # Each Task is built once, from fields complete by now (frozen dataclasses cost a copy to change).
    tasks = {task_id: Task(**fields) for task_id, fields in rows.items()}
    live = {task_id.lower() for task_id in tasks}  # (an archive cut short leaves a row in both: the row wins)
    kept = {task_id: entry for task_id, entry in (archived or {}).items() if task_id.lower() not in live}
    return Plan(
        path,
        settings,
        request,
        goal,
        tasks,
        text,
        front.data,
        book=assignment.book,
        types=kinds,
        archived=kept,
        table_line=out.table_line,
    )


def _types(
    path: Path, front: Frontmatter, lines: list[str], own: dict[str, TaskType], out: _Collector
) -> dict[str, TaskType]:
    """The types the plan's tasks may name: built in, then types.yaml's beside the plan, then the
    plan's ``types:`` setting's; every problem of the setting on its own line."""
    filed, problems = tasktypes.load_file(path.with_name(tasktypes.TYPES_FILE))
    out.problems += problems
    key = next((k for k in front.data if k.strip().replace("-", "_") == "types"), None)
    if key is not None:
        start = front.key_lines.get(key, 1) - 1
        own, found = tasktypes.read_types(front.data[key])
        for problem in found:
            out.add(tasktypes.key_line(lines, start, front.body_offset, problem.keys), problem.message, problem.hint)
    return tasktypes.merged(filed, own)


_NUL_LINES_SHOWN = 10


def _refuse_nul(lines: list[str], out: _Collector) -> None:
    """A NUL byte anywhere refuses the plan at once: no process takes one in its arguments or
    environment, and a file full of them is not a plan (saved by a word processor, say)."""
    found = [number for number, line in enumerate(lines, start=1) if "\0" in line]
    for number in found[:_NUL_LINES_SHOWN]:
        out.add(number, "a NUL byte (\\0) in the plan", "delete it: a plan is plain text, and no task can be given one")
    if len(found) > _NUL_LINES_SHOWN:
        more = len(found) - _NUL_LINES_SHOWN
        out.add(found[_NUL_LINES_SHOWN], f"NUL bytes on {more} more lines", "save the plan as plain text")
    raise PlanError(out.problems)


def _settings_told(problems: list[tuple[str, str]], lines: Mapping[str, int], out: _Collector) -> None:
    """Each setting's problem at its key's line, with what to do (``types``' are told by ``_types``)."""
    for key, message in problems:
        if key.strip().replace("-", "_") == "types":
            continue  # (each of its problems is told by _types, on its own line)
        if key.strip().replace("-", "_") in SETTING_NAMES:
            hint = "fix the value, or delete the line to use the default"
        else:
            hint = "delete the line, or use one of the settings: " + ", ".join(SETTING_NAMES)
        out.add(lines.get(key, 1), message, hint)


def _within_limit(text: str, path: Path) -> None:
    """``PlanError`` for a text past ``PLAN_LIMIT`` outside its status blocks: one made by ``add``,
    ``update`` or ``import``, which no later command could read, is refused and never written."""
    if len(text) > PLAN_LIMIT // 4 and (size := own_size(text.encode("utf-8", "surrogateescape"))) > PLAN_LIMIT:
        raise PlanError([too_large(shown(path), size)])


def _refuse_fenced(lines: list[str], out: _Collector) -> None:
    """A plan written whole inside a code fence (```` ```markdown ````, as an agent writes a file
    in a chat) is one code block to a markdown reader, not a plan: said so, with the two lines to
    delete, instead of "no '## Task Decomposition' section"."""
    found = fenced_whole(lines)
    if found is not None:
        first, last, fence = found
        out.add(
            first,
            f"the whole plan is inside a code fence ('{fence}' on line {first}, its end on line {last}): a markdown "
            "reader takes it as one block of code, not as a plan",
            f"delete lines {first} and {last}: master_plan.md is markdown itself",
        )
        raise PlanError(out.problems)


def _lf(text: str) -> str:
    """``text`` with LF line endings: a CRLF plan gives the same request, goal and details."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _section_text(document: Document, section: Section | None) -> str:
    if section is None:
        return ""
    body = _lf(document.source(section.body_start, section.end)).strip("\n")
    lines = body.split("\n")
    if all(line.lstrip().startswith(">") or not line.strip() for line in lines):
        body = "\n".join(re.sub(r"^\s*> ?", "", line) for line in lines)
    return body.strip()


def _parse_tasks(document: Document, out: _Collector, kinds: dict[str, TaskType]) -> dict[str, dict[str, Any]]:
    found = _task_table(document, out)
    if found is None:
        out.table_read = False
        return {}
    section, table = found
    out.table_line = table.header_line
    columns = _header(table, out)
    if columns is None:
        out.table_read = False
        return {}
    tasks = _rows(table, columns, out, kinds)
    # A table with no rows is a plan with no tasks (`init --empty`, every task archived): `add`
    # adds to it, `list` lists nothing; what would run it says it has no rows (``preflight``).
    end = table.rows[-1][0] if table.rows else table.header_line + 1  # the table's last line, 1-based
    deps = columns.index("deps") if "deps" in columns else None
    for line, message, hint in cut_off_rows(document, section, end, columns.index("id"), tasks, out.cut_off, deps):
        out.add(line, message, hint)
    return tasks


def _task_table(document: Document, out: _Collector) -> tuple[Section, Table] | None:
    """The task table of '## Task Decomposition'; ``None``, with the problem told, when there is none."""
    section = document.section(*TASKS_KEYS)
    if section is None:
        out.add(
            1,
            "no '## Task Decomposition' section",
            "add one with a table such as '| Task ID | Description | Dependencies |' (see `orchestrator init`)",
        )
        return None
    tables = tables_in(section.tokens, document.lines)
    if tables:
        return section, tables[0]
    broken = pipe_paragraphs(section.tokens)
    if broken and not is_delimiter_row(document.lines[broken[0]] if broken[0] < len(document.lines) else ""):
        out.add(
            broken[0],
            "this looks like a table but is not one: no '|---|' line under its header",
            "add a line such as '|---|---|---|' (one '---' a column) right under the header",
        )
    elif broken:
        out.add(
            broken[0],
            "this looks like a table but is not one: the header and the '|---|' line must have the same "
            "number of columns",
            "check for a missing '|' in the first two lines of the table",
        )
    else:
        out.add(
            section.start + 1,
            "'## Task Decomposition' has no task table",
            "add a table such as '| Task ID | Description | Dependencies |'",
        )
    return None


def _header(table: Table, out: _Collector) -> list[str | None] | None:
    """The field each column of the table reads (``None``: a column none reads); ``None``, with
    the problem told, for a table without a Task ID column."""
    columns, seen_columns, problems = header_columns(table.header)
    for message, hint in problems:
        out.add(table.header_line, message, hint)
    if "id" not in seen_columns:
        out.add(
            table.header_line,
            "the task table has no 'Task ID' column",
            "add a first column '| Task ID |' with ids such as T-01",
        )
        return None
    if not {"description", "name", "command"} & seen_columns.keys():
        out.add(
            table.header_line,
            "the task table has no 'Description' or 'Task Name' column",
            "add a '| Description |' column saying what each task does",
        )
    return columns


def _rows(
    table: Table, columns: list[str | None], out: _Collector, kinds: dict[str, TaskType]
) -> dict[str, dict[str, Any]]:
    """Each row's task fields by id: a row of the wrong width, or with an id used before, told and left out."""
    header_cells = len(table.header)
    # Every column has a meaning in most tables: then a row is one dict(zip(...)).
    keys = [key for key in columns if key is not None] if None not in columns else None
    tasks: dict[str, dict[str, Any]] = {}
    lowered: dict[str, str] = {}
    for line, cells in table.rows:
        count = len(cells)  # the cells of the source line, as tables_in split it
        if count != header_cells:
            out.add(
                line,
                f"this row has {count} cells but the header has {header_cells}",
                "check for a missing or extra '|' in the row (a '|' inside a cell, as in a command's pipe, is written "
                "'\\|')",
            )
            continue
        row: dict[str, str]
        extra: dict[str, str] = {}
        if keys is not None:
            row = dict(zip(keys, cells, strict=True))
        else:
            row = {}
            for header, key, cell in zip(table.header, columns, cells, strict=True):
                if key is None:
                    extra[header] = cell
                else:
                    row[key] = cell
        fields = task_fields(row, extra, line, out.add, kinds)
        if fields is None:
            continue
        task_id = fields["id"]
        if task_id.lower() in lowered:
            first = tasks[lowered[task_id.lower()]]
            out.add(
                line,
                f"duplicate task id '{task_id}' (first used on line {first['line']})",
                "give every task its own id",
            )
            continue
        lowered[task_id.lower()] = task_id
        tasks[task_id] = fields
    return tasks


def _parse_details(
    document: Document, section: Section | None, tasks: list[str], out: _Collector
) -> tuple[dict[str, str], dict[str, int]]:
    """Each task's Task Details body, and the plan's line its first line is on."""
    lines: dict[str, int] = {}
    if section is None:
        return {}, lines
    headings = [
        (tok.map[0], document.lines[tok.map[0]])
        for tok in section.tokens
        if tok.type == "heading_open" and tok.tag == "h3" and tok.map
    ]
    details: dict[str, str] = {}
    lowered = {tid.lower(): tid for tid in tasks}
    for index, (start, heading) in enumerate(headings):
        end = headings[index + 1][0] if index + 1 < len(headings) else section.end
        words = re.sub(r"^#+\s*", "", heading).strip().split()
        word = words[0] if words else ""
        task_id = None
        # "### T-01 Scan", then "### T-01: Scan", then "### T-01. Scan" / "### T-01 — Scan"
        for first in dict.fromkeys(clean(w) for w in (word, word.rstrip(":"), word.rstrip(":.—-"))):
            task_id = lowered.get(first.lower())
            if task_id is not None:
                break
        if task_id is None:
            if first.lower() in out.cut_off or not out.table_read:
                continue  # its row, cut off from the table or in no table at all, is reported already
            if first.lower() in out.had:  # a row deleted, its details left
                out.add(
                    start + 1,
                    f"Task Details for {first}, which is no longer in the task table",
                    "delete this section too, or put the task's row back",
                )
                continue
            hint = suggest(first, list(tasks)) or " (each '### ' heading must start with a task id)"
            out.add(
                start + 1,
                f"Task Details for unknown task '{first}'{hint}",
                "start the heading with an id from the task table, e.g. '### T-01 Scan'",
            )
            continue
        if task_id in details:
            out.add(start + 1, f"second Task Details section for {task_id}", "merge the two sections")
            continue
        body = _lf(document.source(start + 1, end))
        details[task_id] = body.strip("\n")
        lines[task_id] = start + 2 + len(body) - len(body.lstrip("\n"))  # (1-based, past blank lines)
    return details, lines
