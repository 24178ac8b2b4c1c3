"""A plan as data and back: ``orchestrator export`` and ``orchestrator import``.

``export`` gives a plan as one document (JSON or YAML) that carries it whole, whatever columns
and settings it has, without knowing them: its settings as written in its frontmatter, its
title, request and goal, its task table's columns by their header as written and each row's
cells by column, each task's Task Details body, and its other sections (``notes``). ``import``
writes master_plan.md from such a document, in the plan format ``init`` writes; the document of
the plan it wrote is the one it read (a round trip is exact), and the plan reads as the same
tasks, dependencies and settings. A document with a problem is refused with the key's path
(``tasks[3].Dependencies: unknown task 'T-09'``), before anything is written.

The tool's status blocks (``## Agent Assignment``, ``## Dependency Graph``) are not the plan:
they are left out, and a run writes them again. The task types of ``types.yaml`` beside the plan
are: the document carries them under its ``types`` setting (the plan's own definitions over the
file's, field by field, as the plan reads them), so that it imports elsewhere whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import PlanError
from orchestrator.plan.config.tasktypes import TYPES_FILE, TYPES_LIMIT
from orchestrator.plan.markdown import (
    Document,
    fence_closes,
    fence_opening,
    parse_document,
    split_frontmatter,
    split_lines,
    tables_in,
)
from orchestrator.plan.model import PLAN_LIMIT, Plan, too_large
from orchestrator.plan.table.cells import clean, split_ids
from orchestrator.plan.table.columns import header_columns

FORMAT = "orchestrator-plan/1"
KEYS = ("format", "title", "settings", "request", "goal", "columns", "tasks", "notes")
DETAILS = "details"  # a task's key for its Task Details body, beside its columns
_REQUEST = "Original Request"
_GOAL = "Goal Definition"
_TASKS = "Task Decomposition"
_DETAILS = "Task Details"
_KNOWN = {"original request", "request", "user request", "goal definition", "goal", "goals", "task decomposition",
          "tasks", "task list", "task breakdown", "task table", "task details", "details"}  # fmt: skip
_BLOCKS = {"agent assignment", "dependency graph"}  # the tool's status blocks
_BLOCK_MARK = "<!-- orchestrator:begin"


class ImportProblem(ValueError):
    """What is wrong with an imported document, at a key's path (``tasks[3].Dependencies``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


def export(plan: Plan) -> dict[str, Any]:
    """The document of a plan read from disk (its text: parameters are left as written)."""
    lines = split_lines(plan.text)
    front = split_frontmatter(lines)
    document = parse_document(lines, front.body_offset)
    title = next((s.title for s in document.sections if s.level == 1), "")
    columns: list[str] = []
    tasks: list[dict[str, str]] = []
    section = document.section("task decomposition", "tasks", "task list", "task breakdown", "task table")
    if section is not None:
        table = tables_in(section.tokens, document.lines)[0]
        columns = list(table.header)
        keys, _, _ = header_columns(table.header)
        id_at = keys.index("id")
        ids = {task_id.lower(): task_id for task_id in plan.tasks}
        for _, cells in table.rows:
            if len(cells) == len(columns) and clean(cells[id_at]).lower() in ids:
                row = dict(zip(columns, cells, strict=True))
                details = plan.tasks[ids[clean(cells[id_at]).lower()]].details
                if details is not None:
                    row[DETAILS] = details
                tasks.append(row)
    return {
        "format": FORMAT,
        "title": title,
        "settings": _with_filed_types(dict(plan.frontmatter), plan.path.with_name(TYPES_FILE)),
        "request": plan.request,
        "goal": plan.goal,
        "columns": columns,
        "tasks": tasks,
        "notes": _notes(document),
    }


def _with_filed_types(settings: dict[str, Any], path: Path) -> dict[str, Any]:
    """``settings`` with the types of the ``types.yaml`` at ``path`` under their ``types`` key,
    the settings' own definitions over the file's, field by field (``tasktypes.merged``'s rule):
    the document needs no file beside it. As they are when there is no such file (or it does not
    read: the plan would not have read either)."""
    from orchestrator import documents, yamlio

    try:
        filed = yamlio.safe_load(documents.read_regular(path, TYPES_LIMIT).decode("utf-8-sig"))
    except FileNotFoundError:
        return settings
    except Exception:  # (OSError, UnicodeDecodeError, yaml.YAMLError: the plan was refused for it)
        return settings
    if not isinstance(filed, Mapping) or not filed:
        return settings
    key = next((k for k in settings if str(k).strip().replace("-", "_") == "types"), "types")
    own = settings.get(key)
    types: dict[str, dict[str, Any]] = {}
    for layer in (filed, own if isinstance(own, Mapping) else {}):
        for name, fields in layer.items():
            kind = types.setdefault(str(name).strip().lower(), {})
            if isinstance(fields, Mapping):
                kind.update({str(field).strip().replace("-", "_"): value for field, value in fields.items()})
    return {**settings, key: types}


def _notes(document: Document) -> list[dict[str, str]]:
    """The plan's other ``##`` sections: heading and body, as written."""
    notes: list[dict[str, str]] = []
    for section in document.sections:
        if section.level != 2 or section.key in _KNOWN or section.key in _BLOCKS:
            continue
        body = document.source(section.body_start, section.end).replace("\r\n", "\n").strip("\n")
        if _BLOCK_MARK in body:
            continue
        notes.append({"heading": section.title, "body": body})
    return notes


@dataclass(slots=True)
class Written:
    """The text of master_plan.md, and the key path of each of its lines (1-based: ``paths[line]``)."""

    text: str
    paths: dict[int, str]


def _text(value: object, path: str, *, one_line: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ImportProblem(path, f"{_short(value)} is not text")
    text = str(value)
    if "\0" in text:
        raise ImportProblem(path, "holds a NUL character (\\0)")
    if one_line and ("\n" in text or "\r" in text):
        raise ImportProblem(path, "a table cell is one line: put longer text in the task's details")
    return text


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _headings_in(text: str) -> list[str]:
    """The lines of ``text`` that a markdown reader takes as a ``#``, ``##`` or ``###`` heading
    (outside code fences): in a details body or a note they would end it."""
    found: list[str] = []
    marker: str | None = None
    for line in text.split("\n"):
        if marker is not None:
            if fence_closes(line, marker):
                marker = None
            continue
        marker = fence_opening(line)
        if marker is None and re.match(r" {0,3}#{1,3}(\s|$)", line):
            found.append(line)
    return found


def write(document: object) -> Written:
    """master_plan.md from a document; ``ImportProblem`` at the first key that is wrong."""
    if not isinstance(document, Mapping):
        raise ImportProblem("(document)", "not a mapping of format, settings, tasks... (see `orchestrator export`)")
    unknown = [str(k) for k in document if k not in KEYS]
    if unknown:
        raise ImportProblem(str(unknown[0]), f"unknown key (use {', '.join(KEYS)})")
    if document.get("format", FORMAT) != FORMAT:
        raise ImportProblem("format", f"{_short(document.get('format'))} is not {FORMAT}")
    settings = document.get("settings") or {}
    if not isinstance(settings, Mapping):
        raise ImportProblem("settings", "not a mapping of setting: value")
    headers, keys = _columns(document.get("columns"))
    tasks = document.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise ImportProblem("tasks", "not a list of tasks, each a mapping of column: cell")
    out = _Lines()
    out.frontmatter(settings)
    out.preamble(document)
    details = out.table(headers, keys, tasks)
    out.details(details)
    out.notes(document.get("notes") or [])
    return Written("\n".join(out.lines) + "\n", out.paths)


def _columns(columns: object) -> tuple[list[str], list[str | None]]:
    """The task table's headers, and the field each reads (``cells.header_columns``)."""
    if not isinstance(columns, list) or not columns:
        raise ImportProblem("columns", "not a list of the task table's headers, e.g. [Task ID, Description]")
    headers = [_text(c, f"columns[{i}]", one_line=True).strip() for i, c in enumerate(columns)]
    for index, header in enumerate(headers):
        if not header or "|" in header:
            raise ImportProblem(f"columns[{index}]", f"{header!r} is not a column header")
        if header in headers[:index] or header == DETAILS:
            raise ImportProblem(f"columns[{index}]", f"'{header}' is a second column of that name")
    keys, seen, problems = header_columns(headers)
    if problems:
        raise ImportProblem("columns", problems[0][0])
    if "id" not in seen:
        raise ImportProblem("columns", "no 'Task ID' column")
    return headers, keys


def _no_heading(text: str, path: str, use: str, what: str = "") -> None:
    """``ImportProblem`` at ``path`` when ``text`` holds a markdown heading (it would end its section)."""
    found = _headings_in(text)
    if found:
        raise ImportProblem(path, f"holds a heading ({found[0]!r}){what}: use {use}")


class _Lines:
    """master_plan.md as it is written, each line with the document's key it came from (what
    ``check`` names when the plan it reads as has a problem on that line)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.paths: dict[int, str] = {}

    def add(self, line: str, path: str) -> None:
        self.lines.append(line)
        self.paths[len(self.lines)] = path

    def section(self, heading: str, body: str, path: str, *, quoted: bool = False) -> None:
        self.add("", path)
        self.add(heading, path)
        for line in body.split("\n") if body else ():
            self.add(f"> {line}".rstrip() if quoted else line, path)

    def frontmatter(self, settings: Mapping[Any, Any]) -> None:
        import yaml

        if not settings:
            return
        self.add("---", "settings")
        dumped = yaml.safe_dump(dict(settings), sort_keys=False, allow_unicode=True, width=10_000)
        key = ""
        for line in dumped.rstrip("\n").split("\n"):
            if line[:1] not in ("", " ", "-", "#"):
                key = line.split(":", 1)[0].strip("'\"")
            self.add(line, f"settings.{key}")
        self.add("---", "settings")

    def preamble(self, document: Mapping[Any, Any]) -> None:
        """The title, the original request (quoted) and the goal."""
        title = _text(document.get("title"), "title", one_line=True).strip()
        if title:
            self.add(f"# {title}", "title")
        request = _text(document.get("request"), "request").strip()
        _no_heading(request, "request", "'####' or bold text")
        if request:
            self.section(f"## {_REQUEST}", request, "request", quoted=True)
        goal = _text(document.get("goal"), "goal").strip()
        if goal:
            _no_heading(goal, "goal", "'####' or bold text")
            self.section(f"## {_GOAL}", goal, "goal")

    def table(self, headers: list[str], keys: list[str | None], tasks: list[Any]) -> list[tuple[int, str, str]]:
        """The task table, a row a task; each task's details, to come after it."""
        self.add("", "tasks")
        self.add(f"## {_TASKS}", "tasks")
        self.add("| " + " | ".join(headers) + " |", "columns")
        self.add("|" + "|".join("---" for _ in headers) + "|", "columns")
        id_header = headers[keys.index("id")]
        name_at = keys.index("name") if "name" in keys else None
        ids: list[str] = []
        seen: dict[str, int] = {}  # each id, lower-cased, and the first task that has it
        details: list[tuple[int, str, str]] = []
        for index, task in enumerate(tasks):
            where = f"tasks[{index}]"
            if not isinstance(task, Mapping):
                raise ImportProblem(where, "not a mapping of column: cell")
            for key in task:
                if key != DETAILS and key not in headers:
                    raise ImportProblem(f"{where}.{key}", f"no such column (columns: {', '.join(headers)})")
            cells = [_text(task.get(h), f"{where}.{h}", one_line=True).strip() for h in headers]
            task_id = clean(cells[headers.index(id_header)])
            if not task_id:
                raise ImportProblem(f"{where}.{id_header}", "no task id")
            first = seen.setdefault(task_id.lower(), index)  # (ids are told apart as the plan does: by case)
            if first != index:
                raise ImportProblem(f"{where}.{id_header}", f"duplicate task id '{task_id}' (tasks[{first}] has it)")
            ids.append(task_id)
            self.add("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |", where)
            body = _text(task.get(DETAILS), f"{where}.{DETAILS}") if DETAILS in task else None
            if body is not None:
                _no_heading(body, f"{where}.{DETAILS}", "'####'", ", which would end its details")
                heading = f"{task_id} {cells[name_at]}" if name_at is not None and cells[name_at] else task_id
                details.append((index, heading, body.strip("\n")))
        if "deps" in keys:
            _known_dependencies(tasks, headers[keys.index("deps")], {task_id.lower() for task_id in ids})
        return details

    def details(self, details: list[tuple[int, str, str]]) -> None:
        if not details:
            return
        self.add("", "tasks")
        self.add(f"## {_DETAILS}", "tasks")
        for index, heading, body in details:
            where = f"tasks[{index}].{DETAILS}"
            self.add("", where)
            self.add(f"### {heading}", where)
            for line in body.split("\n"):  # (an empty body: one empty line, as export writes it)
                self.add(line, where)

    def notes(self, notes: object) -> None:
        """The plan's other sections, each a heading and its body."""
        if not isinstance(notes, list):
            raise ImportProblem("notes", "not a list of {heading, body}")
        for index, note in enumerate(notes):
            where = f"notes[{index}]"
            if not isinstance(note, Mapping) or set(note) - {"heading", "body"}:
                raise ImportProblem(where, "not a mapping of heading and body")
            heading = _text(note.get("heading"), f"{where}.heading", one_line=True).strip()
            if not heading:
                raise ImportProblem(f"{where}.heading", "no heading")
            body = _text(note.get("body"), f"{where}.body").strip("\n")
            _no_heading(body, f"{where}.body", "'###' or below")
            self.section(f"## {heading}", body, where)


def _known_dependencies(tasks: list[Any], header: str, ids: set[str]) -> None:
    for index, task in enumerate(tasks):
        for dep in split_ids(_text(task.get(header), "")):
            if dep.lower() not in ids:
                raise ImportProblem(f"tasks[{index}].{header}", f"unknown task '{dep}'")


def check(written: Written, path: Path, more: Callable[[Plan], None] | None = None) -> Plan:
    """The plan ``written`` reads as, each problem a parser finds an ``ImportProblem`` at the key
    its line was written from. ``more``: what else ``validate`` checks of a plan (``PlanError``
    of problems at its lines: its backends, profiles, commands, ``cwd``; the caller's, as those
    checks are a run's, above this layer), mapped to keys the same way."""
    from orchestrator.plan.config.filling import check_references
    from orchestrator.plan.parser import parse_plan
    from orchestrator.plan.table.conditions import plan_problems

    size = len(written.text.encode())  # (no status block in it yet: all of it counts)
    if size > PLAN_LIMIT:  # what validate and run would refuse once it was written
        raise ImportProblem("(document)", f"the plan it makes {too_large('', size).message}")
    try:
        plan = parse_plan(written.text, path)
        check_references(plan)
    except PlanError as exc:
        first = exc.problems[0]
        where = written.paths.get(first.line, "(document)")
        raise ImportProblem(where, first.message + (f"; {first.hint}" if first.hint else "")) from None
    # The Conditions, as validate and run check them: a field the upstream's Output does not
    # declare, one that cannot be read, a task it does not depend on.
    for line, what, hint in sorted(plan_problems(plan.tasks))[:1]:
        raise ImportProblem(written.paths.get(line, "(document)"), f"{what}; {hint}")
    if more is not None:
        try:
            more(plan)
        except PlanError as exc:
            first = exc.problems[0]
            where = written.paths.get(first.line, f"master_plan.md:{first.line}")  # (else the plan's line)
            raise ImportProblem(where, first.message + (f"; {first.hint}" if first.hint else "")) from None
    return plan
