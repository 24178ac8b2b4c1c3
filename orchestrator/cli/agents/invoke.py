"""The commands as other programs call them: the MCP server's tools (``orchestrator.mcp``) and the
HTTP API's routes (``serve``) are the commands themselves, called through ``commands/calling``.

Each tool's (and route's) arguments are its command's options, as ``commands/table`` holds them
(``schema``: their JSON Schema); a call reads them typed and checked, calls the command's
function in-process, and answers its ``Result``'s data (``Outcome``); an error is answered as the
class it is, in one shape (``OrchestratorError.as_json``), with its exit code, HTTP status and
JSON-RPC code. Nothing here builds a command line, runs ``main`` or reads what a command printed.
``run`` starts the run in the background (``commands/starting``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import redaction
from orchestrator.commands import calling
from orchestrator.commands.calling import confine as confine
from orchestrator.commands.calling import reach_of as reach_of
from orchestrator.commands.options import schema as options_schema
from orchestrator.commands.table import COMMANDS as TABLE
from orchestrator.errors import OrchestratorError, internal
from orchestrator.vocabulary import ExitCode

#: The commands another program calls this way: what an agent uses to run a queue.
COMMANDS = tuple(TABLE)
#: What a door's caller gets when it leaves an option out, where the door's own answer differs from
#: the command line's: an agent's context is no terminal, so MCP's ``status`` lists the tasks that need
#: attention (the counts stay whole; ``tasks: all`` lists every one) and ``list`` a page of 100.
MCP_DEFAULTS: dict[str, dict[str, Any]] = {"status": {"tasks": "attention"}, "list": {"limit": 100}}


def schema(command: str, *, directory: bool = True, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Command ``command``'s arguments as a JSON Schema object (``directory`` left out when the
    workspace is fixed; ``defaults``: the door's own, said as each property's default)."""
    found = options_schema(TABLE[command].options, directory=directory)
    for name, value in (defaults or {}).items():
        found["properties"][name]["default"] = value
    return found


def description(command: str) -> str:
    return TABLE[command].summary


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a call answered (``data``), how it would have exited, and the one line of an error (or
    of a refusal that is not one, as ``approve`` of a task not at its gate); ``exc``: the error."""

    code: int
    data: Any
    error: str | None = None
    exc: OrchestratorError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def http_status(self) -> int:
        if self.exc is not None:
            return self.exc.http_status
        return 409 if self.code != ExitCode.OK else 200  # (refused for what is, as approve of a task not waiting)


def failure(exc: OrchestratorError) -> Outcome:
    """An error as every surface answers one."""
    return Outcome(exc.exit_code, exc.as_json(), exc.line, exc)


def call(
    command: str,
    arguments: Mapping[str, Any],
    *,
    fixed: str | None = None,
    source: str = "api",
    reach: Path | None = None,
    defaults: Mapping[str, Any] | None = None,
    what: str | None = None,
    delivery: str | None = None,
) -> Outcome:
    """``command`` with ``arguments`` (its options by name), in the workspace ``fixed`` or the one
    ``directory`` names, within ``reach`` (``reach_of``): its data, or its error as the class it is.
    A defect of ours is one line too (``InternalError``), its traceback in ``errors.log``."""
    try:
        result = calling.call(
            command, arguments, source=source, fixed=fixed, reach=reach, defaults=defaults, what=what, delivery=delivery
        )
    except OrchestratorError as exc:
        return failure(exc)
    except Exception as exc:
        return failure(internal(exc))
    data = redaction.current().data(result.payload())  # (what a program is answered holds no secret a task printed)
    if result.ok:
        return Outcome(result.code, data)
    return Outcome(result.code, data, redaction.text(result.said or f"{command} exited {result.code}"))


def start_run(
    arguments: Mapping[str, Any],
    *,
    fixed: str | None = None,
    source: str = "api",
    what: str | None = None,
    delivery: str | None = None,
    reach: Path | None = None,
) -> Outcome:
    """``run`` with ``arguments``, started in the background: its launch (``run/launch/background.Started``),
    or the error (a run going on: its ``pid``)."""
    return call("run", arguments, fixed=fixed, source=source, reach=reach, what=what, delivery=delivery)
