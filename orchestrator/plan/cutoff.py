"""Rows under the task table that a blank line, a note or an HTML comment cut off from it (to
Markdown they are text, not rows), and a second task table: the parser never reads them as
tasks, so it must never leave them unsaid either."""

from __future__ import annotations

from orchestrator.plan.cells import COLUMN_ALIASES, clean
from orchestrator.plan.markdown import Document, Section, normalize_heading, pipe_runs, split_row, starts_table

Problem = tuple[int, str, str]  # 1-based line, what, what to do


def cut_off_rows(document: Document, section: Section, end: int, id_column: int, named: set[str]) -> list[Problem]:
    """The problems of what follows the task table in ``section`` from line ``end`` (1-based, the
    table's last line) on; adds the ids those rows name, lowercase, to ``named`` (their Task
    Details are not reported again as details of an unknown task)."""
    lines = document.lines
    problems: list[Problem] = []
    for first, stop in pipe_runs(section, lines, end):
        header = starts_table(lines, first, stop)
        if header is not None:
            keys = [COLUMN_ALIASES.get(normalize_heading(clean(cell))) for cell in header]
            if "id" in keys:
                problems.append(
                    (
                        first + 1,
                        f"a second task table: only the first one under '## {section.title}' is read",
                        "move its rows into the first table (without a header of their own)",
                    )
                )
                named.update(_first_cells(lines[first + 2 : stop], keys.index("id")))
            continue  # another kind of table: not tasks
        rows = stop - first
        problems.append(
            (
                first + 1,
                f"{'this row is' if rows == 1 else f'these {rows} rows are'} not part of the task table, which ends "
                f"on line {end}: a blank line, a note or an HTML comment between rows ends a Markdown table",
                "delete what separates them from the rows above (a note can go after the table)",
            )
        )
        named.update(_first_cells(lines[first:stop], id_column))
    return problems


def _first_cells(rows: list[str], column: int) -> set[str]:
    found: set[str] = set()
    for row in rows:
        cells = split_row(row)
        if column < len(cells) and clean(cells[column]):
            found.add(clean(cells[column]).lower())
    return found
