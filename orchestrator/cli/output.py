"""What every command shares: how it is added to the parser, how it finds its workspace and
the task it names, and how it prints."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.printable import visible
from orchestrator.state.workspace import DEFAULT_DIR, Workspace

if TYPE_CHECKING:
    from orchestrator.plan.model import Plan

WORKSPACE_VARIABLE = "ORCHESTRATOR_WORKSPACE"  # set in every attempt's environment

Handler = Callable[[argparse.Namespace], int]
Commands = argparse._SubParsersAction  # the parser's sub-commands (argparse has no public name for it)


# Where a command called in-process (``cli/agents/invoke``: an MCP tool, an API route) prints: its own
# two buffers, in its own context (a thread of the server each), never another call's.
_CAPTURED: ContextVar[tuple[io.StringIO, io.StringIO] | None] = ContextVar("captured", default=None)


@contextlib.contextmanager
def captured() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """What ``emit_json`` and ``warn`` print, kept in two buffers (stdout's, stderr's) while inside."""
    buffers = (io.StringIO(), io.StringIO())
    token = _CAPTURED.set(buffers)
    try:
        yield buffers
    finally:
        _CAPTURED.reset(token)


def emit_json(data: Any) -> None:
    buffers = _CAPTURED.get()
    out = sys.stdout if buffers is None else buffers[0]
    out.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
    out.flush()


def warn(message: str) -> None:
    """A line on stderr; what an agent wrote in it (an error it printed) shown, never acted on."""
    buffers = _CAPTURED.get()
    (sys.stderr if buffers is None else buffers[1]).write(visible(message) + "\n")


def add_command(
    sub: Commands[argparse.ArgumentParser], name: str, handler: Handler, help_text: str, *, json_help: str = ""
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    parser.add_argument("--json", action="store_true", help=json_help or "print one JSON object instead of text")
    return parser


def column_options(
    parser: argparse.ArgumentParser,
    command: str,
    *,
    names: Mapping[str, tuple[str, ...]] | None = None,
    helps: Mapping[str, str] | None = None,
) -> None:
    """An option for each column ``command`` (``add``, ``update``) sets, made from the task table's
    one table of columns (``plan/table/columns.COLUMNS``, each column's ``Option``), in its order;
    ``names``, ``helps``: a column's option under other names here, and its words (``spawn``'s
    ``--label``), its argument the same."""
    from orchestrator import backends
    from orchestrator.cli import words
    from orchestrator.plan.table.columns import COLUMNS

    for column in COLUMNS:
        option = column.option
        own = (option.add if command == "add" else option.update) if option is not None else ()
        if option is None or not own:
            continue
        given = (names or {}).get(column.key, own)
        said = (helps or {}).get(column.key) or option.help.format(backends=backends.listing())
        said += option.update_help if command == "update" else ""
        metavar = option.metavar if given == own else given[0].lstrip("-").upper()
        how: dict[str, Any] = {"action": "append"} if option.repeat else {}
        if option.count:
            how["type"] = words.count
        parser.add_argument(*given, dest=option_dest(own), metavar=metavar, help=said, **how)


def option_dest(names: tuple[str, ...]) -> str:
    """The argument an option of ``names`` sets: its first long name's, as argparse makes it."""
    return next(name for name in names if name.startswith("--")).removeprefix("--").replace("-", "_")


def add_directory(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "directory",
        nargs="?",
        default=DEFAULT_DIR,
        help="the workspace (default: .orchestrator in the current directory)",
    )


def add_params(parser: argparse.ArgumentParser, what: str = "read the plan with") -> None:
    """``--param NAME=VALUE``, repeatable: a value of the plan's ``params`` (``plan/config/params.py``)."""
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"{what} this value of a parameter the plan declares (repeatable)",
    )


def given_params(args: argparse.Namespace) -> dict[str, str]:
    """The ``--param`` values of a command, a bad one a ``UsageError``."""
    from orchestrator.plan.config.params import parse_assignments

    return parse_assignments(getattr(args, "param", None))


def find_workspace(directory: str | None) -> Workspace:
    """The workspace named, else the one of the task this runs in (``$ORCHESTRATOR_WORKSPACE``:
    an agent calling a command from inside its task), else ``.orchestrator`` here."""
    return Workspace.find(directory or os.environ.get(WORKSPACE_VARIABLE) or DEFAULT_DIR)


def looks_like_workspace(word: str) -> bool:
    """Whether ``word`` names a workspace (or a project holding one) rather than a task id."""
    path = Path(word)
    return path.is_dir() and ((path / "master_plan.md").exists() or (path / DEFAULT_DIR).is_dir())


def task_id_in(plan: Plan, wanted: str, *, after: str = "") -> str:
    """``wanted`` as the plan spells it (task ids are not case-sensitive), else a ``UsageError``
    naming the closest id (``after``: what the message adds, such as "nothing was written")."""
    from orchestrator.errors import UsageError
    from orchestrator.plan.config.settings import suggest

    lowered = {task_id.lower(): task_id for task_id in plan.tasks}
    if wanted.lower() not in lowered:
        tail = f" — {after}" if after else ""
        raise UsageError(f"no task {wanted} in the plan{suggest(wanted, list(plan.tasks))}{tail}")
    return lowered[wanted.lower()]
