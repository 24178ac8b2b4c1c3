"""What every command shares: how it is added to the parser, how it finds its workspace and
the task it names, and how it prints."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from orchestrator.commands.calling import WORKSPACE_VARIABLE as WORKSPACE_VARIABLE
from orchestrator.commands.calling import find_workspace as find_workspace
from orchestrator.commands.options import dest_of
from orchestrator.commands.words import task_id_in as task_id_in
from orchestrator.paths import PLAN_FILE
from orchestrator.printable import visible
from orchestrator.state.workspace import DEFAULT_DIR

if TYPE_CHECKING:
    pass


Handler = Callable[[argparse.Namespace], int]
_Made = TypeVar("_Made", bound=argparse.ArgumentParser, covariant=True)


class Commands(Protocol[_Made]):
    """A parser's sub-commands, as ``add_subparsers`` returns them: what ``register`` adds a command
    to, and each one's parser by its name (argparse has no public name for the class)."""

    @property
    def choices(self) -> Mapping[str, _Made]: ...

    def add_parser(self, name: str, **kwargs: Any) -> _Made: ...


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
    from orchestrator.commands import words
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
        parser.add_argument(*given, dest=dest_of(own), metavar=metavar, help=said, **how)


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


def looks_like_workspace(word: str) -> bool:
    """Whether ``word`` names a workspace rather than a task id, in any of the three forms every
    command takes: the project folder, its ``.orchestrator/``, or the path of its ``master_plan.md``."""
    path = Path(word)
    if path.name == PLAN_FILE and path.is_file():
        return True
    return path.is_dir() and ((path / PLAN_FILE).exists() or (path / DEFAULT_DIR).is_dir())
