"""A command called with JSON arguments, as other programs call it: the MCP server's tools
(``orchestrator.mcp``) and the HTTP API's routes (``serve``) are the commands themselves.

``shape(command)`` reads a command's options from its own argparse parser (a new option is a new
argument, with the same type, choices and default: the two cannot drift), ``Shape.schema`` is
them as JSON Schema, ``Shape.argv`` turns arguments back into the command line, which ``call``
runs in-process through ``main`` with ``--json``, its output captured (``cli.output.captured``):
what a tool or a route answers is what the command prints, its errors the command's one line.
``run`` is the exception: ``start_run`` checks its command line and the plan as ``run`` does
(nothing written on an error), then starts it in the background (``run/launch/background``).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.cli import words
from orchestrator.cli.output import captured, find_workspace
from orchestrator.errors import OrchestratorError, PlanError, UsageError
from orchestrator.vocabulary import ExitCode

if TYPE_CHECKING:
    from orchestrator.state.workspace import Workspace

#: The commands another program calls this way: what an agent uses to run a queue.
COMMANDS = (
    "validate",
    "add",
    "update",
    "list",
    "status",
    "run",
    "approve",
    "reject",
    "cancel",
    "retry",
    "output",
    "logs",
    "history",
)
#: Options left out: ``logs --follow`` streams until interrupted, which a call that returns cannot; a
#: run's ``--untrusted`` is always said for a caller from outside (``run/launch/background``).
LEFT_OUT = {"logs": frozenset({"follow"}), "run": frozenset({"untrusted"})}
#: The JSON type of each argparse ``type=`` the commands use (a new one must be added here: a test
#: reads every option of every command).
TYPES: dict[Any, dict[str, Any]] = {
    None: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    words.count: {"type": "integer", "minimum": 0},
    words.duration: {"type": "string", "description": "a duration: seconds, 90s, 5m, 1h30m or none"},
    words.positive_duration: {"type": "string", "description": "a duration: 90s, 30m, 2h"},
}


@dataclass(frozen=True, slots=True)
class Field:
    """One argument: an option (``flag``) or a positional word (``flag`` None)."""

    name: str
    flag: str | None
    schema: dict[str, Any]
    required: bool = False


@dataclass(frozen=True, slots=True)
class Shape:
    """A command's arguments: its options, then ``thing`` (a task or a description: the word
    after the optional workspace) and whether a workspace may be named (``directory``)."""

    command: str
    description: str
    fields: tuple[Field, ...]

    def schema(self, *, directory: bool = True) -> dict[str, Any]:
        """The arguments as a JSON Schema object (``directory`` left out when the workspace is fixed)."""
        chosen = [f for f in self.fields if directory or f.name != "directory"]
        return {
            "type": "object",
            "properties": {f.name: f.schema for f in chosen},
            "required": [f.name for f in chosen if f.required],
            "additionalProperties": False,
        }

    def check(self, arguments: Mapping[str, Any], *, directory: bool = True) -> None:
        """``UsageError`` in one line for an argument the command does not take, or of the wrong type."""
        known = {f.name: f for f in self.fields if directory or f.name != "directory"}
        for name, value in arguments.items():
            found = known.get(name)
            if found is None:
                raise UsageError(f"{self.command}: no argument '{name}' — it takes: {', '.join(sorted(known))}")
            _check_value(self.command, name, value, found.schema)
        missing = [f.name for f in known.values() if f.required and f.name not in arguments]
        if missing:
            raise UsageError(f"{self.command}: '{missing[0]}' is required")

    def argv(self, arguments: Mapping[str, Any], directory: str) -> list[str]:
        """The command line: ``COMMAND OPTIONS --json -- DIRECTORY [THING]`` (after ``--``, a
        description that begins with a dash stays a description)."""
        line = [self.command]
        positional: list[str] = [directory]
        for f in self.fields:
            value = arguments.get(f.name)
            if f.name == "directory" or value is None:
                continue
            if f.flag is None:
                positional.append(str(value))
            elif f.schema["type"] == "boolean":
                line += [f.flag] if value else []
            elif f.schema["type"] == "array":
                line += [f"{f.flag}={item}" for item in value]
            else:
                line.append(f"{f.flag}={value}")
        return [*line, "--json", "--", *positional]


def _check_value(command: str, name: str, value: Any, schema: Mapping[str, Any]) -> None:
    kind = schema["type"]
    python: dict[str, type | tuple[type, ...]] = {
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
        "array": list,
    }
    wanted = python[kind]
    wrong = not isinstance(value, wanted) or (kind in ("integer", "number") and isinstance(value, bool))
    if kind == "array" and not wrong:
        wrong = not all(isinstance(item, str) for item in value)
    if wrong:
        what = "a list of strings" if kind == "array" else f"{'an' if kind[0] in 'ai' else 'a'} {kind}"
        raise UsageError(f"{command}: '{name}' must be {what}, not {json.dumps(value)[:40]}")
    if "enum" in schema and value not in schema["enum"]:
        raise UsageError(f"{command}: '{name}' must be one of {', '.join(schema['enum'])}, not {value!r}")
    if "minimum" in schema and value < schema["minimum"]:
        raise UsageError(f"{command}: '{name}' must be {schema['minimum']} or more")
    if kind == "string" and "\x00" in value:
        raise UsageError(f"{command}: '{name}' holds a NUL character")


def _subparser(command: str) -> argparse.ArgumentParser:
    from orchestrator.cli.commands import build_parser

    parser = build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found: argparse.ArgumentParser = sub.choices[command]
    return found


def shape(command: str) -> Shape:
    """The arguments of ``command``, read from its parser."""
    parser = _subparser(command)
    fields: list[Field] = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.dest == "json" or action.help == argparse.SUPPRESS:
            continue
        if action.dest in LEFT_OUT.get(command, ()):
            continue
        if not action.option_strings:
            fields += _positionals(action)
            continue
        fields.append(Field(action.dest, max(action.option_strings, key=len), _option_schema(command, action)))
    return Shape(command, parser.description or "", tuple(fields))


def _option_schema(command: str, action: argparse.Action) -> dict[str, Any]:
    helped = {"description": action.help} if action.help else {}
    if isinstance(action, argparse._StoreTrueAction):
        return {"type": "boolean", "default": False, **helped}
    if action.type not in TYPES:
        raise TypeError(
            f"{command} {action.option_strings[0]}: add its type {action.type!r} to cli/agents/invoke.TYPES"
        )
    scalar = dict(TYPES[action.type])
    if action.choices is not None:
        scalar["enum"] = list(action.choices)
    if isinstance(action, argparse._AppendAction):
        return {"type": "array", "items": scalar, **helped}
    if action.default is not None:
        scalar["default"] = action.default
    return {**scalar, **helped}


def _positionals(action: argparse.Action) -> list[Field]:
    """``directory`` (``[DIR]``), and the word after it (``TASK``, ``DESCRIPTION``; optional in brackets)."""
    directory = Field("directory", None, {"type": "string", "description": "the workspace (default: .orchestrator)"})
    if action.dest == "directory":
        return [directory]
    metavar = str(action.metavar or action.dest).split()
    thing = metavar[-1]
    optional = thing.startswith("[")
    name = thing.strip("[]").lower()
    return [directory, Field(name, None, {"type": "string", "description": action.help or name}, not optional)]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a call printed (its ``--json``), how it exited, and the one line of an error."""

    code: int
    data: Any
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def failure(exc: OrchestratorError, **extra: Any) -> Outcome:
    """An error as the command's ``--json`` reports one (``cli.main._report_error``)."""
    problems = exc.problems if isinstance(exc, PlanError) else []
    data = {
        "ok": False,
        "error": type(exc).__name__,
        "message": str(exc),
        "problems": [{"file": p.file, "line": p.line, "message": p.message, "hint": p.hint} for p in problems],
        **extra,
    }
    return Outcome(exc.exit_code, data, _line(str(exc)) or type(exc).__name__)


def _line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


#: The arguments that name a file or a folder: a caller from outside reaches only the project's.
PATHS = ("directory", "details_file")
PATH_LIMIT = 4096  # bytes of a path a caller may give (Linux's PATH_MAX)


def confine(arguments: Mapping[str, Any], reach: Path) -> None:
    """``UsageError`` in one line, before anything is read, for a path argument that leads out of
    ``reach`` (the project, or the folder the server was started in), a symlink followed."""
    for name in PATHS:
        given = arguments.get(name)
        if not isinstance(given, str) or not given:
            continue
        if len(os.fsencode(given)) > PATH_LIMIT:
            raise UsageError(f"{name}: a path of {len(given):,} characters, at most {PATH_LIMIT} — nothing was read")
        found = Path(os.path.realpath(given))
        if found != reach and reach not in found.parents:
            raise UsageError(
                f"{name} {given[:200]}: outside {reach} — a call from another program reaches only the project's "
                "files; nothing was read"
            )


def workspace_for(arguments: Mapping[str, Any], fixed: str | None) -> Workspace:
    directory = fixed if fixed is not None else arguments.get("directory")
    return find_workspace(directory if isinstance(directory, str) and directory else None)


def reach_of(fixed: str | None, started_in: Path | None = None) -> Path:
    """What a caller may reach: the fixed workspace's project, else the folder the server was started in."""
    if fixed is not None:
        return Path(os.path.realpath(find_workspace(fixed).project_dir))
    return Path(os.path.realpath(started_in or Path.cwd()))


def call(
    command: str,
    arguments: Mapping[str, Any],
    *,
    fixed: str | None = None,
    source: str = "api",
    reach: Path | None = None,
) -> Outcome:
    """``command`` with ``arguments`` (its options by name), in the workspace ``fixed`` or the one
    ``directory`` names, within ``reach`` (``reach_of``: every path it names): what its ``--json``
    printed, and the error's one line when it failed."""
    from orchestrator.cli.main import main

    if command not in COMMANDS:
        return failure(UsageError(f"no command {command} here — use one of: {', '.join(COMMANDS)}"))
    if command == "run":
        return start_run(arguments, fixed=fixed, source=source, reach=reach)
    try:
        found = shape(command)
        found.check(arguments, directory=fixed is None)
        confine(arguments, reach or reach_of(fixed))
        workspace = workspace_for(arguments, fixed)
        argv = found.argv(arguments, str(workspace.root))
    except OrchestratorError as exc:
        return failure(exc)
    with captured() as (out, err):
        code = main(argv)
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    data: Any = lines[0] if len(lines) == 1 else lines
    if code == ExitCode.OK and not (isinstance(data, dict) and data.get("ok") is False):
        return Outcome(code, data)
    said = data.get("message") if isinstance(data, dict) else None
    return Outcome(code, data, _line(str(said or "")) or _line(err.getvalue()) or f"{command} exited {code}")


def run_command(
    arguments: Mapping[str, Any], workspace: Workspace, *, directory: bool, source: str
) -> argparse.Namespace:
    """``run``'s arguments as its parser reads them, checked as ``run`` checks them before it starts
    anything (the plan, its parameters from ``source``, the tasks named): an error raised here wrote nothing."""
    from orchestrator.cli.commands import BadArguments, build_parser
    from orchestrator.cli.running import run_options
    from orchestrator.run.prepare import load_checked

    found = shape("run")
    found.check(arguments, directory=directory)
    line = found.argv(arguments, str(workspace.root))
    try:
        args = build_parser("run").parse_args(line)
    except BadArguments as exc:
        raise UsageError(exc.message) from None
    options = run_options(args)
    options.untrusted = source
    load_checked(workspace, options)
    return args


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
    from orchestrator.cli.output import given_params
    from orchestrator.run.launch.background import AlreadyDelivered, RunGoingOn, start

    try:
        shape("run").check(arguments, directory=fixed is None)
        confine(arguments, reach or reach_of(fixed))
        workspace = workspace_for(arguments, fixed)
        args = run_command(arguments, workspace, directory=fixed is None, source=source)
        options = _options_of(shape("run").argv({k: v for k, v in arguments.items() if k != "directory"}, ""))
        started = start(workspace, options, source, what=what, delivery=delivery, params=given_params(args))
    except RunGoingOn as exc:
        return failure(exc, pid=exc.pid)
    except AlreadyDelivered as exc:
        return failure(exc, launch=exc.launch)
    except OrchestratorError as exc:
        return failure(exc)
    return Outcome(ExitCode.OK, started.as_json())


def _options_of(line: Sequence[str]) -> list[str]:
    """The options of a ``run`` command line from ``Shape.argv``: between the command and ``--json``."""
    return list(line[1 : line.index("--json")])
