"""The task table's columns: one table of them (doit's ``Task.valid_attr``), read by all that reads or
writes a row.

Each ``Column`` says its header and the other headers it is read from, the ``Task`` fields its cell
gives and how it is read (a ``Reader``; what to do about a cell it cannot read), whether ``add``
and ``update`` write it and the option each sets it with (an ``Option``: its names, what it takes,
its help), and its header in an archive file's table. The parser reads a row's cells with it
(``plan/table/rows``), ``add``/``update`` name the columns they add by it (``plan/edit.HEADERS``)
and make their options of it (``cli/output.column_options``), ``archive`` writes and reads back the
columns an archive keeps by it (``state/kept/archive``), ``export``/``import`` find the id and the
dependencies by it (``plan/transfer``), and cli-integration.md's column table lists it (a test
compares them).

A new column is a line of ``COLUMNS`` (and a field of ``Task`` if it gives a new one; with an
``Option``, how ``add`` and ``update`` turn its value into the cell: ``cli/queue``,
``cli/editing``); a cell that needs the rest of its row (a Type fills the cells left empty) is read
after the loop, in ``plan/table/rows``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.plan.config.bestof import HINT as BEST_OF_HINT
from orchestrator.plan.config.bestof import parse_best_of
from orchestrator.plan.config.hedging import HINT as HEDGE_HINT
from orchestrator.plan.config.hedging import parse_hedge
from orchestrator.plan.config.tasktypes import APPROVALS
from orchestrator.plan.config.values import parse_duration
from orchestrator.plan.markdown import normalize_heading
from orchestrator.plan.table.access import ACCESS_WORDS
from orchestrator.plan.table.cells import (
    NUMBER_RE,
    blocked_cell,
    clean,
    code_cell,
    id_problem,
    parse_priority,
    split_ids,
    tags_cell,
)
from orchestrator.plan.table.conditions import parse_outputs
from orchestrator.plan.table.deadlines import HINT as DEADLINE_HINT
from orchestrator.plan.table.deadlines import parse_deadline
from orchestrator.plan.table.items import HINT as EACH_HINT
from orchestrator.plan.table.items import parse_each
from orchestrator.plan.table.times import HINT as TIME_HINT
from orchestrator.plan.table.times import parse_instant

# A cell read: the ``Task`` fields it gives (none: the task's default); ``ValueError`` with what is
# wrong with it, said after the task's id, and the column's ``hint`` says what to do.
Reader = Callable[[str], Mapping[str, Any]]

_DASHES = {"-", "—"}
_NONE = {"", "-", "—", "none", "no"}  # a Condition or Output cell that says there is none


@dataclass(frozen=True, slots=True)
class Option:
    """How ``add`` (and ``spawn``) and ``update`` set a column from the command line: the option's
    names in each (none: that command does not set it; the first long name is its argument's),
    what it takes and what ``--help`` says of it (``update``'s words added after it: what clears
    the cell, what else setting it does)."""

    add: tuple[str, ...]
    update: tuple[str, ...]
    metavar: str | None
    help: str
    update_help: str = ""
    repeat: bool = False  # given again, each adds (a list)
    count: bool = False  # a whole number from 0 up


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the task table."""

    key: str  # what the parser calls it (``Task`` fields may differ: deps -> dependencies)
    header: str  # its header as ``add`` writes it and the docs name it
    aliases: tuple[str, ...] = ()  # the other headers it is read from (matched as ``normalize_heading`` reads)
    read: Reader | None = None  # None: read apart (the id first; a Type with the rest of its row)
    hint: str = ""  # what to do about a cell ``read`` refused
    default: Mapping[str, Any] = field(default_factory=dict)  # the fields a row without the cell gives
    settable: bool = False  # ``add`` and ``update`` write it
    archived: str | None = None  # its header in an archive file's table (``state/kept/archive``), if kept there
    option: Option | None = None  # how ``add`` and ``update`` set it, if they take an option for it


def _text(name: str) -> Reader:
    return lambda cell: {name: cell.strip()}


def _agent(cell: str) -> Mapping[str, Any]:
    agent = clean(cell)
    if agent in _DASHES:
        return {}
    problem = id_problem(agent, "agent id") if agent else None
    if problem:
        raise ValueError(problem)
    return {"agent": agent}


def _named(field_: str, nothing: set[str], *, lower: bool = False) -> Reader:
    """A cell that names something (a profile, a backend): ``None`` for empty or one of ``nothing``."""

    def read(cell: str) -> Mapping[str, Any]:
        text = clean(cell).lower() if lower else clean(cell)
        return {field_: None if not text or text in nothing else text}

    return read


def _not_before(cell: str) -> Mapping[str, Any]:
    text = clean(cell)
    if text.lower() in {"", "-", "—", "–", "none"}:
        return {}
    try:
        return {"not_before": parse_instant(text)}
    except ValueError as exc:
        raise ValueError(f"Not before {exc}") from None


def _access(cell: str) -> Mapping[str, Any]:
    access = clean(cell).lower()
    if not access or access in {"-", "—", "none", "default"}:
        return {}
    if access not in ACCESS_WORDS:
        raise ValueError(f"unknown access '{cell}'")
    return {"access": ACCESS_WORDS[access]}


def _isolation(cell: str) -> Mapping[str, Any]:
    isolation = clean(cell).lower()
    if not isolation or isolation in {"-", "—", "default"}:
        return {}
    if isolation not in {"none", "worktree"}:
        raise ValueError(f"unknown isolation '{cell}'")
    return {"isolation": isolation}


def _model(cell: str) -> Mapping[str, Any]:
    model = clean(cell)
    return {"model": model} if model and model.lower() not in {"-", "—", "none", "default", "inherit"} else {}


def _priority(cell: str) -> Mapping[str, Any]:
    try:
        return {"priority": parse_priority(cell)}
    except ValueError:
        raise ValueError(f"unknown priority '{cell}'") from None


def _timeout(cell: str) -> Mapping[str, Any]:
    if not cell.strip():
        return {}
    try:
        return {"timeout": parse_duration(cell), "timeout_set": True}
    except ValueError:
        raise ValueError(f"bad timeout '{cell}'") from None


def _estimate(cell: str) -> Mapping[str, Any]:
    if not cell.strip():
        return {}
    try:
        return {"estimate": parse_duration(cell)}
    except ValueError:
        raise ValueError(f"bad estimate '{cell}'") from None


def _deadline(cell: str) -> Mapping[str, Any]:
    if not cell.strip():
        return {}
    try:
        return {"deadline": parse_deadline(cell)}
    except ValueError as exc:
        raise ValueError(f"bad deadline: {exc}") from None


def _retries(cell: str) -> Mapping[str, Any]:
    retries = cell.strip()
    if not retries or retries in _DASHES:
        return {}
    if not NUMBER_RE.fullmatch(retries):
        raise ValueError(f"bad retries '{retries}'")
    return {"retries": int(retries)}


def _hedge(cell: str) -> Mapping[str, Any]:
    hedge = cell.strip()
    if not hedge or hedge in {"-", "—", "default"}:
        return {}
    try:
        return {"hedge": parse_hedge(hedge), "hedge_set": True}
    except ValueError:
        raise ValueError(f"bad Hedge cell '{hedge}'") from None


def _best_of(cell: str) -> Mapping[str, Any]:
    count = cell.strip()
    if not count or count in {"-", "—", "default"}:
        return {}
    try:
        return {"best_of": parse_best_of(count)}
    except ValueError:
        raise ValueError(f"bad Best of cell '{count}'") from None


def _condition(cell: str) -> Mapping[str, Any]:
    condition = code_cell(cell).strip()
    return {} if condition.lower() in _NONE else {"condition": condition}


def _outputs(cell: str) -> Mapping[str, Any]:
    if cell.strip() in _NONE:
        return {}
    try:
        return {"outputs": parse_outputs(code_cell(cell))}
    except ValueError as exc:
        raise ValueError(f"bad Output cell: {exc}") from None


def _each(cell: str) -> Mapping[str, Any]:
    if clean(cell) in _DASHES or not cell.strip():
        return {}
    try:
        return {"each": parse_each(cell)}
    except ValueError as exc:
        raise ValueError(f"bad Each cell: {exc}") from None


def _approval(cell: str) -> Mapping[str, Any]:
    approval = clean(cell).lower()
    if approval in {"", "-", "—", "none", "default"}:
        return {}
    if approval not in APPROVALS:
        raise ValueError(f"unknown approval '{cell}'")
    return {"approval": approval}


# In the order a row's cells are read (and its problems told).
COLUMNS: tuple[Column, ...] = (
    Column("id", "Task ID", ("id", "taskid", "task no", "task number"), settable=True, archived="Task ID",
           option=Option(("--id",), (), None, "its task id (default: the next free one, T-10 after T-09)")),
    Column("name", "Task Name", ("name", "title", "task title"), _text("name"), default={"name": ""},
           settable=True, archived="Name", option=Option(("--name", "--title"), ("--title", "--name"), "NAME",
                                                         "its Task Name: the short name status shows")),
    Column("description", "Description", ("desc", "details", "instructions", "task description"),
           _text("description"), default={"description": ""}, settable=True),
    Column("deps", "Dependencies",
           ("depends on", "deps", "dependency", "depends", "prerequisites", "blocked by", "after"),
           lambda cell: {"dependencies": tuple(split_ids(cell))}, default={"dependencies": ()}, settable=True,
           archived="Dependencies", option=Option(("--after", "--depends-on"), ("--depends-on", "--after"), "IDS",
                                                  "the tasks it depends on: T-03,T-04 (repeats)",
                                                  "; all of them ('' for none)", repeat=True)),
    Column("profile", "Assignee", ("profile", "specialist"), _named("profile", {"-", "—", "none"}),
           default={"profile": None}, settable=True, archived="Assignee",
           option=Option(("--assignee",), ("--assignee",), "PROFILE",
                         "the specialist profile (agents/PROFILE.md) that does it")),
    Column("tags", "Tags", ("tag", "labels"), lambda cell: {"tags": tags_cell(cell)}, default={"tags": ()},
           settable=True, archived="Tags",
           option=Option(("--tag",), ("--tag",), "TAG", "a tag (repeatable, or a comma list): the Tags column",
                         " (added to its own; --untag takes one away)", repeat=True)),
    Column("backend", "Backend", (), _named("backend", {"-", "—", "none", "default"}, lower=True),
           default={"backend": None}, settable=True,
           option=Option(("--backend",), (), "B", "{backends} (default: the plan's)")),
    Column("command", "Command", ("cmd", "shell command"), lambda cell: {"command": code_cell(cell) or None},
           default={"command": None}, settable=True,
           option=Option(("--command",), ("--command",), "CMD", "the command it runs (backend shell or command)",
                         "; one added without a command is released")),
    Column("not_before", "Not before", ("start at",), _not_before, TIME_HINT, default={"not_before": None}),
    Column("access", "Access", ("permissions",), _access, "use read (it changes nothing) or edit"),
    Column("isolation", "Isolation", (), _isolation, "use worktree, or none"),
    Column("model", "Model", (), _model),
    Column("priority", "Priority", ("prio",), _priority,
           "use P0-P3, critical/high/normal/low, or a number (0 = most urgent)", settable=True, archived="Priority",
           option=Option(("-p", "--priority"), ("-p", "--priority"), "P",
                         "critical, high, normal, low or P0-P3 (a number is refused)")),
    Column("timeout", "Timeout", ("time limit",), _timeout, "use seconds (300), a duration (5m, 1h30m) or 'none'",
           settable=True, option=Option(("--timeout",), ("--timeout",), "DURATION",
                                        "its time limit: 300, 10m, 1h30m or none")),
    Column("estimate", "Estimate", ("expected time",), _estimate, "use seconds (300) or a duration (5m, 1h30m)"),
    Column("deadline", "Deadline", ("due",), _deadline, DEADLINE_HINT),
    Column("retries", "Retries", ("retry", "max retries"), _retries, "use a whole number from 0 up", settable=True,
           option=Option(("--retries",), ("--retries",), "N", "how many times it is retried after a failure",
                         count=True)),
    Column("hedge", "Hedge", (), _hedge, HEDGE_HINT),
    Column("best_of", "Best of", (), _best_of, BEST_OF_HINT),
    Column("each", "Each", ("for each", "items", "matrix"), _each, EACH_HINT, settable=True,
           option=Option(("--each",), ("--each",), "ITEMS",
                         "run it once per item: a list (en, fr, de), glob: PATTERN, lines: FILE, or an "
                         "upstream's list field (T-01.files)", " ('' for none)")),
    Column("condition", "Condition", ("run if", "if", "when"), _condition),
    Column("blocked", "Blocked", ("on hold", "hold"), lambda cell: {"blocked": blocked_cell(cell)}, settable=True),
    Column("outputs", "Output", ("outputs", "output fields"), _outputs,
           "list the fields its answer holds: severity, count:int"),
    Column("agent", "Agent", ("agent id",), _agent, "use agent ids such as Agent-01, or leave the cell empty",
           default={"agent": ""}, archived="Agent"),
    Column("approval", "Approval", ("gate",), _approval, "use before, after, or leave it empty"),
    Column("type", "Type", ("task type",), settable=True,
           option=Option(("--type",), ("--type",), "TYPE",
                         "its task type: research, review, implementation... (the Type column)", " ('' for none)")),
)  # fmt: skip

BY_KEY = {column.key: column for column in COLUMNS}
# Normalized header text -> the column's key.
ALIASES: dict[str, str] = {
    alias: column.key for column in COLUMNS for alias in (normalize_heading(column.header), *column.aliases)
}
# The headers a table without a Task ID column has its first such column read as the id ("| # | Task |").
ID_GUESSES = ("#", "Task")
DEFAULTS: dict[str, Any] = {name: value for column in COLUMNS for name, value in column.default.items()}
SETTABLE = {column.key: column.header for column in COLUMNS if column.settable}  # what add/update write
ARCHIVED = {column.archived: column.key for column in COLUMNS if column.archived}  # an archive's header -> key


def read_cells(row: Mapping[str, str], problem: Callable[[str, str], None]) -> dict[str, Any]:
    """The ``Task`` fields the cells of ``row`` (by column key) give, each read by its column;
    what a cell cannot say is told to ``problem`` (what, what to do), and its field left as a row
    without the cell leaves it."""
    fields = dict(DEFAULTS)
    for column in COLUMNS:
        if column.read is None or column.key not in row:
            continue
        try:
            fields.update(column.read(row[column.key]))
        except ValueError as exc:
            problem(str(exc), column.hint)
    return fields


def header_columns(cells: list[str]) -> tuple[list[str | None], dict[str, str], list[tuple[str, str]]]:
    """The column each cell of a task table's header names (``None``: a column of the person's
    own, kept in the task's ``extra``), the header cell of each column, and the problems (what,
    what to do): two columns of one field, and a header that reads as a misspelt column (its
    cells would be dropped: a ``Dependancies`` column left every task without its dependencies)."""
    columns: list[str | None] = []
    seen: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    for header in cells:
        words = normalize_heading(clean(header))
        key = ALIASES.get(words)
        if key is not None and key in seen:
            problems.append((f"columns '{seen[key]}' and '{header}' mean the same thing", "keep one of them"))
            key = None
        elif key is None and (meant := _misspelt(words)) is not None:
            problems.append(
                (
                    f"column '{header}' is none the tool reads, and its cells would be dropped (did you mean "
                    f"'{meant}'?)",
                    f"rename it '{meant}', or give a column of your own a name further from it",
                )
            )
        if key is not None:
            seen[key] = header
        columns.append(key)
    if "id" not in seen:
        at = _guessed_id(cells, columns)
        if at is not None:
            columns[at] = "id"
            seen["id"] = cells[at]
    return columns, seen, problems


def keys_of(header: list[str]) -> list[str | None]:
    """The column each cell of a task table's header names, as the parser reads them (a header
    of a column the tool does not read: ``None``)."""
    columns: list[str | None] = [ALIASES.get(normalize_heading(clean(cell))) for cell in header]
    if "id" not in columns:
        at = _guessed_id(header, columns)
        if at is not None:
            columns[at] = "id"
    return columns


def _guessed_id(header: list[str], columns: list[str | None]) -> int | None:
    """Where a table with no Task ID column has its ids: its first column headed ``#`` or ``Task``."""
    guesses = {normalize_heading(guess) for guess in ID_GUESSES}
    return next(
        (at for at, cell in enumerate(header) if normalize_heading(clean(cell)) in guesses and columns[at] is None),
        None,
    )


def _misspelt(words: str) -> str | None:
    """The column name a header not among ``ALIASES`` was likely meant to be: one with words
    added (``Dependencies (IDs)``), or a close spelling (``Dependancies``, ``Comand``)."""
    import difflib

    if not words or words == "task":
        return None
    meant = next((alias for alias in ALIASES if words.startswith(alias + " ")), None)
    if meant is None:
        close = difflib.get_close_matches(words, ALIASES, n=1, cutoff=0.8)
        meant = close[0] if close else None
    return meant.title().replace(" Id", " ID") if meant is not None else None
