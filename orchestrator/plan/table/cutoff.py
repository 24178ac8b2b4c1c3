"""Rows under the task table that a blank line, a note or an HTML comment cut off from it (to
Markdown they are text, not rows), rows of tasks under a later section (appended to the file,
below the status blocks), and a second task table: the parser never reads them as tasks, so it
must never leave them unsaid either.

Only what looks like tasks of this table counts: a row whose id cell has the shape of the
table's ids (``T-07`` beside ``T-01``: digits aside, the same), and a second table with an id
column and a description, name or command column. A table of exit codes, risks or anything
else under the task table, or rows commented out, are left alone as before."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator.plan.markdown import Document, Section, normalize_heading, pipe_runs, split_row, starts_table
from orchestrator.plan.table.cells import clean, split_ids
from orchestrator.plan.table.columns import ALIASES
from orchestrator.vocabulary import listed

Problem = tuple[int, str, str]  # 1-based line, what, what to do


def cut_off_rows(
    document: Document,
    section: Section,
    end: int,
    id_column: int,
    ids: Iterable[str],
    named: set[str],
    deps_column: int | None = None,
) -> list[Problem]:
    """The problems of what follows the task table in ``section`` from line ``end`` (1-based, the
    table's last line) on; ``ids``: the table's task ids. Adds the ids those rows name, lowercase,
    to ``named`` (their Task Details are not reported again as details of an unknown task)."""
    lines = document.lines
    shapes = {_shape(task_id) for task_id in ids}
    problems: list[Problem] = []
    for first, stop in pipe_runs(section, lines, end):
        header = starts_table(lines, first, stop)
        if header is not None:
            keys = _task_columns(header)
            if keys is not None:
                problems.append(
                    (
                        first + 1,
                        f"a second task table: only the first one under '## {section.title}' is read",
                        "move its rows into the first table (without a header of their own)",
                    )
                )
                named.update(_first_cells(lines[first + 2 : stop], keys.index("id")))
            continue  # another kind of table: not tasks
        found = _first_cells(lines[first:stop], id_column)
        if not any(_shape(cell) in shapes for cell in found):
            continue  # not rows of this table's tasks: a note, a table of something else
        rows = stop - first
        problems.append(
            (
                first + 1,
                f"{'this row is' if rows == 1 else f'these {rows} rows are'} not part of the task table, which ends "
                f"on line {end}: a blank line, a note or an HTML comment between rows ends a Markdown table",
                "delete what separates them from the rows above (a note can go after the table)",
            )
        )
        named.update(found)
    known = {task_id.lower() for task_id in ids}
    width = len(split_row(lines[end - 1]))  # the table's last row, as wide as its header
    for later in document.sections:  # `echo '| T-09 | ... |' >> master_plan.md` lands under the tool's sections
        if later.start >= section.end:
            where = _Columns(id_column, deps_column, width)
            problems += _rows_elsewhere(lines, later, section.title, end, where, shapes, known, named)
    return problems


@dataclass(frozen=True, slots=True)
class _Columns:
    """Where the task table keeps a row's id and dependencies, and how many cells a row has."""

    id: int
    deps: int | None
    width: int

    def like_a_task(self, row: list[str], shapes: set[str]) -> bool:
        """As wide as the task table, an id in its place, and dependencies that read as such
        (none, or ids of the table's shape): a pasted row of dates or notes is not. A narrower
        row (``echo '| T-02 | Two | None |' >>`` a plan of four columns) is one when a cell
        besides its id says dependencies outright (``None``, ``T-01``); a note's ``| T-02 |
        later, maybe |`` does not."""
        if self.id >= len(row) or not clean(row[self.id]):
            return False
        if len(row) == self.width:
            return self.deps is None or _reads_as_deps(row[self.deps], shapes)
        return (
            self.deps is not None
            and len(row) < self.width
            and any(clean(cell) and _reads_as_deps(cell, shapes) for i, cell in enumerate(row) if i != self.id)
        )

    def narrower(self, row: list[str]) -> bool:
        return len(row) < self.width


def _reads_as_deps(cell: str, shapes: set[str]) -> bool:
    """None, or only ids of the table's shape."""
    return all(_shape(dep) in shapes for dep in split_ids(clean(cell)))


def _rows_elsewhere(
    lines: list[str],
    later: Section,
    tasks_title: str,
    end: int,
    columns: _Columns,
    shapes: set[str],
    known: set[str],
    named: set[str],
) -> list[Problem]:
    """Rows of new tasks under a section after the task table's: headerless rows as wide as the
    task table with an id of its shape that names no task (a note's own rows are narrower, or
    name tasks there are), and a table with an id, a dependencies and a description, name or
    command column whose ids name no task."""
    heading = f"{'#' * later.level} {later.title}"
    problems: list[Problem] = []
    for first, stop in pipe_runs(later, lines, later.body_start):
        header = starts_table(lines, first, stop)
        if header is not None:
            keys = _task_columns(header)
            if keys is None or "deps" not in keys:
                continue  # a table of that section's own: risks, a backlog (a task table has dependencies)
            unknown = _first_cells(lines[first + 2 : stop], keys.index("id")) - known
            if any(_shape(cell) in shapes for cell in unknown):
                problems.append(
                    (
                        first + 1,
                        f"a second task table, under '{heading}': only the one under '## {tasks_title}' is read",
                        "move its rows into the first table (without a header of their own), or, if it is no "
                        "task table, name its columns otherwise",
                    )
                )
                named.update(unknown)
            continue
        rows = [row for row in (split_row(line) for line in lines[first:stop]) if columns.like_a_task(row, shapes)]
        rows = [row for row in rows if _shape(clean(row[columns.id])) in shapes]
        rows = [row for row in rows if clean(row[columns.id]).lower() not in known]
        if not rows:
            continue
        new = [clean(row[columns.id]) for row in rows]
        many = len(new) > 1
        move = f"move {'them' if many else 'it'} into the table under '## {tasks_title}'"
        if any(columns.narrower(row) for row in rows):  # the evidence is thinner: say how to keep a note
            move += f", a cell for each of its {columns.width} columns (a table of your own needs a header row;"
        else:
            move += " ("
        problems.append(
            (
                first + 1,
                f"{'these rows are' if many else 'this row is'} under '{heading}', not in the task table, which "
                f"ends on line {end}: {listed(new[:5], len(new))} would never run",
                f"{move} an example goes in a code block)",
            )
        )
        named.update(task_id.lower() for task_id in new)
    return problems


def _task_columns(header: list[str]) -> list[str | None] | None:
    """The column keys of a table whose header names an id and a description, name or command
    column (a table of tasks, as far as its header tells); None for any other table."""
    keys = [ALIASES.get(normalize_heading(clean(cell))) for cell in header]
    return keys if "id" in keys and {"description", "name", "command"} & set(keys) else None


def _shape(task_id: str) -> str:
    """``t-9`` for ``T-07`` and ``T-1``: what ids of one table have in common, lowercase."""
    return re.sub(r"\d+", "9", task_id.lower())


def _first_cells(rows: list[str], column: int) -> set[str]:
    found: set[str] = set()
    for row in rows:
        cells = split_row(row)
        if column < len(cells) and clean(cells[column]):
            found.add(clean(cells[column]).lower())
    return found
