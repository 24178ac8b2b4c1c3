"""The commands other programs call, each its options as data (``options.Opt``) and the function
that does it (``module:function``, imported when first called: the command line's ``--help``
builds a parser from this table without importing any command's work).

Read by the command line (each command's parser, ``cli/*``'s ``register``), the MCP server (a tool
per command, its input schema), ``serve`` (a route per command, the OpenAPI document) and the docs'
option tables (``tests/test_reference_docs.py``): one table, so none of them can drift.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.commands.options import DIRECTORY, Opt, dest_of


def _param(what: str) -> Opt:
    """``--param NAME=VALUE``, repeatable: a value of the plan's ``params`` (``plan/config/params.py``)."""
    return Opt(
        "param",
        f"{what} this value of a parameter the plan declares (repeatable)",
        kind="strings",
        flags=("--param",),
        metavar="NAME=VALUE",
        form="NAME=VALUE",
    )


def _task(help_text: str = "the task (after an optional workspace)", *, required: bool = True) -> Opt:
    return Opt("task", help_text, required=required)


@dataclass(frozen=True, slots=True)
class Command:
    """One command: its name, its line, its options (``made``: built when first asked for, since
    some name the backends or executors), and where its work is."""

    name: str
    summary: str
    made: Callable[[], tuple[Opt, ...]]
    does: str  # "module:function" under orchestrator.commands, taking a ``Call``
    thing: str | None = None  # the metavar of the word after the workspace: TASK, DESCRIPTION, [TASK]
    read_only: bool = False
    destructive: bool = False
    usage: str | None = None  # the command line's usage line, where argparse's would mislead
    json_help: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def options(self) -> tuple[Opt, ...]:
        from orchestrator.plan.table import columns

        return _options(self.name, id(columns.COLUMNS))  # (add's and update's are the columns' own)

    def function(self) -> Callable[..., Any]:
        import importlib

        module, name = self.does.split(":")
        found: Callable[..., Any] = getattr(importlib.import_module(f"orchestrator.commands.{module}"), name)
        return found


@functools.cache
def _options(name: str, columns: int) -> tuple[Opt, ...]:
    """``name``'s options, made once for the table of columns there is (``columns``: its identity)."""
    return COMMANDS[name].made()


def _reason(help_text: str) -> Opt:
    return Opt("reason", help_text, flags=("--reason",), metavar="TEXT")


def _validate() -> tuple[Opt, ...]:
    return (DIRECTORY, _param("check the plan with"))


def _status() -> tuple[Opt, ...]:
    return (
        DIRECTORY,
        _task("one task (after an optional workspace): a row run per item lists its items", required=False),
        _param("tell what is up to date with"),
        Opt(
            "tasks",
            "which tasks the answer lists: all (the default), attention (running, failed, waiting for a person), "
            "or none (the counts alone)",
            flags=("--tasks",),
            choices=("all", "attention", "none"),
            default="all",
        ),
        *_page("list at most this many tasks (the counts stay whole)"),
    )


VERIFY = "check the event log's hash chain and that each result is what its run wrote: exit 1 names what changed"
FORMATS = ("table", "simple", "ids", "json")  # list --format
GROUPS = ("assignee", "priority", "status", "tag")  # list --group-by (``commands/listing.GROUPS``: each one's keys)


def _page(limit: str) -> tuple[Opt, Opt]:
    """``--limit N`` and ``--offset N``: a page of what a command lists, ``gh``'s way."""
    from orchestrator.commands import words

    return (
        Opt("limit", limit, kind="integer", flags=("--limit",), metavar="N", minimum=0, read=words.count),
        Opt(
            "offset",
            "skip this many tasks first (with --limit: a page)",
            kind="integer",
            flags=("--offset",),
            metavar="N",
            minimum=0,
            default=0,
            read=words.count,
        ),
    )


def _list() -> tuple[Opt, ...]:
    return (
        DIRECTORY,
        Opt(
            "status",
            "only tasks in this state (repeatable, or a comma list); pending (not started), ready, open (not "
            "finished), in_progress, todo, done and canceled name states too",
            kind="strings",
            flags=("--status",),
            metavar="S",
        ),
        Opt("assignee", "only tasks with this assignee", flags=("--assignee",), metavar="A"),
        Opt(
            "tag",
            "only tasks with this tag (repeated: with all of them)",
            kind="strings",
            flags=("--tag", "--label"),
            metavar="T",
        ),
        Opt(
            "group_by",
            "a heading for each status, assignee, tag or priority (piped: the group as each line's first field)",
            flags=("--group-by",),
            choices=GROUPS,
        ),
        Opt(
            "format",
            "table: every column (default); simple: id and title; ids: the ids alone; json: as --json. On a "
            "terminal with a header; piped, tab-separated, a task a line",
            flags=("--format",),
            choices=FORMATS,
            default="table",
        ),
        Opt("archived", "the archived tasks (`orchestrator archive`) instead", kind="boolean", flags=("--archived",)),
        *_page("list at most this many tasks"),
    )


def _output() -> tuple[Opt, ...]:
    return (DIRECTORY, _task())


def _logs() -> tuple[Opt, ...]:
    return (
        DIRECTORY,
        _task(),
        Opt("attempt", "this attempt (default: the last)", kind="integer", flags=("--attempt",), metavar="N"),
        Opt(
            "follow",
            "print its output as it comes, until the attempt ends",
            kind="boolean",
            flags=("--follow", "-f"),
            everywhere=False,
        ),
    )


def _history() -> tuple[Opt, ...]:
    return (
        DIRECTORY,
        _task("one task's attempts (after an optional workspace)", required=False),
        Opt(
            "stats",
            "per task and per type: runs, success rate, median and p90 time, cost",
            kind="boolean",
            flags=("--stats",),
        ),
        Opt(
            "label",
            "only tasks with this label (repeated: with all of them)",
            kind="strings",
            flags=("--label", "--tag"),
            metavar="L",
        ),
    )


def column_opts(command: str) -> tuple[Opt, ...]:
    """An option for each column ``command`` (``add``, ``update``) sets, made from the task table's
    one table of columns (``plan/table/columns.COLUMNS``, each column's ``Option``), in its order."""
    from orchestrator import backends
    from orchestrator.commands import words
    from orchestrator.plan.table.columns import COLUMNS

    found: list[Opt] = []
    for column in COLUMNS:
        option = column.option
        own = (option.add if command == "add" else option.update) if option is not None else ()
        if option is None or not own:
            continue
        said = option.help.format(backends=backends.listing()) + (option.update_help if command == "update" else "")
        kind = "strings" if option.repeat else "integer" if option.count else "string"
        dest = dest_of(own)
        found.append(
            Opt(
                dest,
                said,
                kind=kind,
                flags=own,
                metavar=option.metavar,
                read=words.count if option.count else None,
                minimum=0 if option.count else None,
            )
        )
    return tuple(found)


def _add() -> tuple[Opt, ...]:
    return (
        DIRECTORY,
        Opt("description", "what the task does (after an optional workspace)", required=True),
        *column_opts("add"),
        Opt(
            "details_file",
            "its Task Details: the brief's instructions, from a file",
            flags=("--details-file",),
            metavar="FILE",
        ),
    )


def _update() -> tuple[Opt, ...]:
    return (
        DIRECTORY,
        _task(),
        *column_opts("update"),
        Opt("untag", "remove a tag (repeatable, or a comma list)", kind="strings", flags=("--untag",), metavar="TAG"),
        Opt(
            "status",
            "blocked: hold it back (it and what depends on it wait, the rest runs); pending: release it",
            flags=("--status",),
            metavar="blocked|pending",
        ),
        Opt("reason", "why it is blocked (its Blocked cell)", flags=("--reason",), metavar="WHY"),
    )


def _approve() -> tuple[Opt, ...]:
    return (DIRECTORY, _task(), _reason("a word for the record (shown in history and the approvals file)"))


def _reject() -> tuple[Opt, ...]:
    return (DIRECTORY, _task(), _reason("why (shown in its result, status and what depends on it)"))


ANSWERS = ("allow", "deny")  # what ``answer`` says to an agent's question


def _answer() -> tuple[Opt, ...]:
    from orchestrator.commands import words

    return (
        DIRECTORY,
        _task(),
        Opt("answer", "allow or deny what the task's agent asks", choices=ANSWERS, required=True, everywhere=True),
        Opt(
            "question",
            "the question answered, by its id as status and the notification show it (Q2); "
            "without it, the one the task asks, unless it asks several or one closed unanswered before it",
            flags=("--question",),
            metavar="ID",
            read=words.question,
            form="Q1, Q2...",
        ),
        Opt(
            "always",
            "answer the same question of this task so from now on, while its inputs are the same",
            kind="boolean",
            flags=("--always",),
        ),
        _reason("a word for the record (history, the task's result); the agent is not shown it"),
    )


def _cancel() -> tuple[Opt, ...]:
    return (DIRECTORY, _task(), _reason("why (shown in its result and in status)"))


def _retry() -> tuple[Opt, ...]:
    return (
        DIRECTORY,
        _task(),
        Opt(
            "failed",
            "with a row run per item: each of its items that did not complete (failed, cancelled, skipped, "
            "interrupted) back in the queue, and no other",
            kind="boolean",
            flags=("--failed",),
        ),
    )


def _budget() -> tuple[Opt, ...]:
    return (
        DIRECTORY,
        Opt(
            "amount",
            "+USD raises the budget of the run going on by so much, USD makes it that; none: show it",
            required=False,
        ),
    )


def _verify() -> tuple[Opt, ...]:
    return (DIRECTORY,)


def _run() -> tuple[Opt, ...]:
    from orchestrator.commands.runopts import options  # (they name the backends and the executors)

    return options()


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command(
            "validate", "parse master_plan.md and check the task graph", _validate, "reading:validate", read_only=True
        ),
        Command(
            "add",
            "add a task to the plan; a run going on takes it within a second",
            _add,
            "changing:add",
            thing="DESCRIPTION",
        ),
        Command(
            "update",
            "change a task's row in the plan: priority, assignee, title, tags...",
            _update,
            "changing:update",
            thing="TASK",
        ),
        Command(
            "list",
            "list the plan's tasks, filtered and grouped (for scripts: --json)",
            _list,
            "listing:list_tasks",
            read_only=True,
        ),
        Command("status", "show every task's state", _status, "reading:status", read_only=True, thing="[TASK]"),
        Command(
            "run",
            "run the plan: every task not yet completed, in dependency order, in parallel",
            _run,
            "starting:start",
            json_help="print one JSON object per event, one per line",
        ),
        Command("approve", "let a task waiting at its Approval gate go on", _approve, "changing:approve", thing="TASK"),
        Command(
            "reject",
            "refuse a task at its Approval gate: what depends on it is skipped",
            _reject,
            "changing:reject",
            thing="TASK",
            destructive=True,
        ),
        Command(
            "answer",
            "allow or deny what a running task's agent asks (ask: true): answer T-03 Q2 allow|deny",
            _answer,
            "changing:answer",
            thing="TASK [QUESTION] allow|deny",
        ),
        Command(
            "cancel",
            "stop a task (or keep it from starting); its dependents are skipped",
            _cancel,
            "changing:cancel",
            thing="TASK",
            destructive=True,
        ),
        Command(
            "retry", "put a failed, skipped or cancelled task back in the queue", _retry, "changing:retry", thing="TASK"
        ),
        Command(
            "budget",
            "show what the run going on may spend; +USD raises it, and the tasks waiting for it go on",
            _budget,
            "budgeting:budget",
            thing="[+USD]",
        ),
        Command(
            "output",
            "print what a completed task answered: its result without the YAML header",
            _output,
            "reading:output",
            thing="TASK",
            read_only=True,
            json_help="print one JSON object: the output, the result file and its metadata",
        ),
        Command(
            "logs",
            "show what a task's attempt printed: its stdout and stderr logs",
            _logs,
            "logs:logs",
            thing="TASK",
            read_only=True,
        ),
        Command(
            "history",
            "every attempt of every run, and how each ended",
            _history,
            "history:history",
            thing="[TASK]",
            read_only=True,
        ),
        Command(
            "verify",
            VERIFY,
            _verify,
            "verifying:verify",
            read_only=True,
            json_help="print one JSON object: what holds, and each finding's file, line and what",
        ),
    )
}

# The command line's usage lines, where argparse's would put the optional workspace after the task.
_USAGE = {
    "add": (
        "%(prog)s [-h] [--json] [--id ID] [--after IDS] [-p P] [--name NAME] [--assignee PROFILE] [--tag TAG] "
        "[--retries N] [--timeout DURATION] [--type TYPE] [--backend B] [--command CMD] [--details-file FILE] [DIR] "
        '"<description>"'
    ),
    "update": (
        "%(prog)s [-h] [--json] [-p P] [--assignee A] [--title T] [--tag TAG] [--untag TAG] [--depends-on IDS] "
        "[--retries N] [--timeout DURATION] [--type TYPE] [--command CMD] [--status blocked|pending] [--reason WHY] "
        "[DIR] TASK"
    ),
    "approve": "%(prog)s [-h] [--json] [--reason TEXT] [DIR] TASK",
    "reject": "%(prog)s [-h] [--json] [--reason TEXT] [DIR] TASK",
    "cancel": "%(prog)s [-h] [--json] [--reason TEXT] [DIR] TASK",
    "retry": "%(prog)s [-h] [--json] [--failed] [DIR] TASK",
    "budget": "%(prog)s [-h] [--json] [DIR] [+USD]",
    "answer": "%(prog)s [-h] [--json] [--always] [--reason TEXT] [--question ID] [DIR] TASK [QUESTION] allow|deny",
    "output": "%(prog)s [-h] [--json] [DIR] TASK",
    "logs": "%(prog)s [-h] [--json] [--attempt N] [--follow] [DIR] TASK",
    "history": "%(prog)s [-h] [--json] [--stats] [--label L] [DIR] [TASK]",
}
COMMANDS = {name: dataclasses.replace(c, usage=_USAGE.get(name)) for name, c in COMMANDS.items()}
