"""master_plan.md in: parse the markdown into a validated ``Plan`` of ``Task`` rows and a DAG.

The parser is forgiving about *form* (column names, dependency separators, priority words, emoji in
headings) and strict about *meaning* (ids, dependencies, cycles). Every problem is collected with
its line number and raised together as one ``PlanError``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from orchestrator.documents import NotAFile, TooLarge, read_regular
from orchestrator.errors import PlanError, Problem, WorkspaceError, shown
from orchestrator.plan import graph as graphs
from orchestrator.plan.cells import (
    NOT_IDS,
    NUMBER_RE,
    clean,
    code_cell,
    header_columns,
    id_problem,
    parse_priority,
    split_ids,
)
from orchestrator.plan.cutoff import cut_off_rows
from orchestrator.plan.identity import Book, Row, assign
from orchestrator.plan.markdown import (
    Document,
    FrontmatterError,
    Section,
    fenced_whole,
    is_delimiter_row,
    misplaced_frontmatter,
    parse_document,
    pipe_paragraphs,
    split_frontmatter,
    split_lines,
    tables_in,
)
from orchestrator.plan.model import PLAN_FILE, PLAN_LIMIT, READ_LIMIT, Plan, Task, own_size, too_large
from orchestrator.plan.settings import ACCESS_WORDS, SETTING_NAMES, parse_duration, settings_from_mapping, suggest

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


def read_plan(path: Path, *, book: Book | None = None) -> Plan:
    """Read and validate the plan file at ``path``; ``book``: the agent ids its workspace gave."""
    return parse_plan(read_plan_text(path), path, book=book)


def parse_plan(text: str, path: str | Path = PLAN_FILE, *, book: Book | None = None) -> Plan:
    """Parse and validate plan text; raises ``PlanError`` listing every problem found.

    ``book``: the agent ids the plan's workspace gave so far (``state/agents.json``), which each
    task keeps; without one, tasks without an Agent cell are numbered in table order."""
    path = Path(path)
    out = _Collector(shown(path))
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
    for key, message in setting_problems:
        if key.strip().replace("-", "_") in SETTING_NAMES:
            hint = "fix the value, or delete the line to use the default"
        else:
            hint = "delete the line, or use one of the settings: " + ", ".join(SETTING_NAMES)
        out.add(front.key_lines.get(key, 1), message, hint)
    document = parse_document(lines, front.body_offset)

    if document.unclosed_fence is not None:
        out.add(
            document.unclosed_fence,
            "this code fence is never closed, so the rest of the file is inside it",
            "close it with a line of ``` (or ~~~) after its last line",
        )
    request = _section_text(document, document.section(*_REQUEST_KEYS))
    goal = _section_text(document, document.section(*_GOAL_KEYS))
    rows = _parse_tasks(document, out)
    out.had = {task_id.lower() for task_id in (book.agents if book else ())}
    details = _parse_details(document, document.section(*DETAILS_KEYS), list(rows), out)
    for task_id, body in details.items():
        rows[task_id]["details"] = body
    assignment = assign([Row(task_id, row["agent"], row["line"]) for task_id, row in rows.items()], book or Book())
    for line, message, hint in assignment.problems:
        out.add(line, message, hint)
    for task_id, agent in assignment.agents.items():
        rows[task_id]["agent"] = agent
    _check_dependencies(rows, out)
    if out.problems:
        raise PlanError(out.problems)
    # Each Task is built once, from fields complete by now (frozen dataclasses cost a copy to change).
    tasks = {task_id: Task(**fields) for task_id, fields in rows.items()}
    return Plan(path, settings, request, goal, tasks, text, front.data, book=assignment.book)


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


def _parse_tasks(document: Document, out: _Collector) -> dict[str, dict[str, Any]]:
    section = document.section(*TASKS_KEYS)
    if section is None:
        out.add(
            1,
            "no '## Task Decomposition' section",
            "add one with a table such as '| Task ID | Description | Dependencies |' (see `orchestrator init`)",
        )
        out.table_read = False
        return {}
    tables = tables_in(section.tokens, document.lines)
    if not tables:
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
        out.table_read = False
        return {}
    table = tables[0]
    columns, seen_columns, problems = header_columns(table.header)
    for message, hint in problems:
        out.add(table.header_line, message, hint)
    if "id" not in seen_columns:
        out.add(
            table.header_line,
            "the task table has no 'Task ID' column",
            "add a first column '| Task ID |' with ids such as T-01",
        )
        out.table_read = False
        return {}
    if not {"description", "name", "command"} & seen_columns.keys():
        out.add(
            table.header_line,
            "the task table has no 'Description' or 'Task Name' column",
            "add a '| Description |' column saying what each task does",
        )

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
        fields = _task_from_row(row, extra, line, out)
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
    if not tasks and not out.problems:
        out.add(table.header_line, "the task table has no rows", "add one row per task under the header")
    end = table.rows[-1][0] if table.rows else table.header_line + 1  # the table's last line, 1-based
    deps = columns.index("deps") if "deps" in columns else None
    for line, message, hint in cut_off_rows(document, section, end, columns.index("id"), tasks, out.cut_off, deps):
        out.add(line, message, hint)
    return tasks


_TAGS_SPLIT_RE = re.compile(r"[,\s]+")


def _task_from_row(row: dict[str, str], extra: dict[str, str], line: int, out: _Collector) -> dict[str, Any] | None:
    """The fields of one Task (built once, after agents and details are known), or None."""
    task_id = clean(row.get("id", ""))
    problem = id_problem(task_id)
    if problem is None and task_id.lower() in NOT_IDS:
        problem = f"task id '{task_id}' cannot be depended on: in a Dependencies cell it means no dependency or 'and'"
    if problem:
        out.add(line, problem, "use ids such as T-01 made of letters, digits, '.', '_' and '-'")
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
    }
    access = clean(row["access"]).lower() if "access" in row else ""
    if access and access not in {"-", "—", "none", "default"}:
        if access in ACCESS_WORDS:
            fields["access"] = ACCESS_WORDS[access]
        else:
            out.add(line, f"{task_id}: unknown access '{row['access']}'", "use read (it changes nothing) or edit")
    isolation = clean(row["isolation"]).lower() if "isolation" in row else ""
    if isolation and isolation not in {"-", "—", "default"}:
        if isolation in {"none", "worktree"}:
            fields["isolation"] = isolation
        else:
            out.add(line, f"{task_id}: unknown isolation '{row['isolation']}'", "use worktree, or none")
    if fields["profile"] in {"-", "—", "none"}:
        fields["profile"] = None
    if fields["backend"] in {"-", "—", "none", "default"}:
        fields["backend"] = None
    if "priority" in row:
        try:
            fields["priority"] = parse_priority(row["priority"])
        except ValueError:
            out.add(
                line,
                f"{task_id}: unknown priority '{row['priority']}'",
                "use P0-P3, critical/high/normal/low, or a number (0 = most urgent)",
            )
    if get("timeout", "").strip():
        try:
            fields["timeout"] = parse_duration(row["timeout"])
            fields["timeout_set"] = True
        except ValueError:
            out.add(
                line,
                f"{task_id}: bad timeout '{row['timeout']}'",
                "use seconds (300), a duration (5m, 1h30m) or 'none'",
            )
    retries = get("retries", "").strip()
    if retries and retries not in {"-", "—"}:
        if NUMBER_RE.fullmatch(retries):
            fields["retries"] = int(retries)
        else:
            out.add(line, f"{task_id}: bad retries '{retries}'", "use a whole number from 0 up")
    if fields["agent"] in {"-", "—"}:
        fields["agent"] = ""
    if fields["agent"]:
        problem = id_problem(fields["agent"], "agent id")
        if problem:
            out.add(line, f"{task_id}: {problem}", "use agent ids such as Agent-01, or leave the cell empty")
            fields["agent"] = ""
    return fields


def _parse_details(document: Document, section: Section | None, tasks: list[str], out: _Collector) -> dict[str, str]:
    if section is None:
        return {}
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
        details[task_id] = _lf(document.source(start + 1, end)).strip("\n")
    return details


def _check_dependencies(tasks: dict[str, dict[str, Any]], out: _Collector) -> None:
    """Unknown ids, self-dependencies and cycles; dependency ids end up spelled as in the ID column."""
    edges: list[tuple[str, str]] = []
    ids = list(tasks)
    lowered = {tid.lower(): tid for tid in tasks}
    for task_id, task in tasks.items():
        seen: set[str] = set()
        line = task["line"]
        exact = True  # every dependency spelled as in the ID column
        for dep in task["dependencies"]:
            if dep in tasks:
                target: str | None = dep
            else:
                target = lowered.get(dep.lower())
                exact = False
            if dep == task_id or target == task_id:
                out.add(line, f"{task_id} depends on itself", "remove it from its own Dependencies")
                continue
            if target is None:
                out.add(
                    line,
                    f"{task_id} depends on unknown task '{dep}'{suggest(dep, [i for i in ids if i != task_id])}",
                    "use an id from the Task ID column, or 'None'",
                )
                continue
            if target in seen:
                continue
            seen.add(target)
            edges.append((target, task_id))
        # Canonical spelling of dependency ids (the table may differ in case), each once; a row
        # that names each dependency once, as spelled in the ID column, has it already.
        if not exact or len(seen) != len(task["dependencies"]):
            task["dependencies"] = tuple(
                dict.fromkeys(d if d in tasks else lowered.get(d.lower(), d) for d in task["dependencies"])
            )
    # Among the dependencies that name a task (whatever else is wrong: every problem at once).
    if len(ids) and _has_cycle(ids, edges):
        found: dict[str, list[str]] = {task_id: [] for task_id in ids}
        for source, target in edges:
            found[target].append(source)
        for cycle in graphs.cycles(graphs.build(found)):
            path = " -> ".join([*cycle, cycle[0]])
            out.add(
                tasks[cycle[0]]["line"],
                f"dependency cycle: {path}",
                "remove one of these dependencies so the tasks can run in some order",
            )


def _has_cycle(ids: list[str], edges: list[tuple[str, str]]) -> bool:
    """Whether the graph has a cycle: what is left once every task without dependencies is removed
    (Kahn). networkx finds the cycles to report; this yes-or-no keeps it out of ``status``, whose
    whole budget on a 10,000-task plan is what importing networkx costs."""
    indegree = dict.fromkeys(ids, 0)
    children: dict[str, list[str]] = {node: [] for node in ids}
    for source, target in edges:
        indegree[target] += 1
        children[source].append(target)
    ready = [node for node, count in indegree.items() if count == 0]
    seen = 0
    while ready:
        node = ready.pop()
        seen += 1
        for child in children[node]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    return seen < len(ids)
