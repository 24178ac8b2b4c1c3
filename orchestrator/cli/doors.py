"""The commands of ``commands/table`` on the command line: each one's parser made from its options,
and the handler that calls its function and prints its ``Result`` (``--json``: its data; else what
it shows, its notes on stderr), as MCP and the HTTP API serialize the same result.
"""

from __future__ import annotations

import argparse
import sys

from orchestrator.cli.output import Commands, Handler, add_command, add_directory, emit_json, looks_like_workspace, warn
from orchestrator.commands.calling import Call, Result
from orchestrator.commands.options import Arguments, from_namespace
from orchestrator.commands.table import COMMANDS
from orchestrator.errors import UsageError


def register_command(
    sub: Commands[argparse.ArgumentParser], name: str, handler: Handler | None = None
) -> argparse.ArgumentParser:
    """Command ``name``'s parser, made from its options (``handler``: the command line's own, where
    it does more than call the function: ``run`` runs in the foreground)."""
    command = COMMANDS[name]
    parser = add_command(sub, name, handler or handle(name), command.summary, json_help=command.json_help)
    thing = next((o for o in command.options if o.positional and o.name != "directory"), None)
    if thing is None:
        add_directory(parser)
    else:
        metavar = f"[DIR] {command.thing}" if command.thing else "[DIR] THING"
        parser.add_argument("words", nargs="+" if thing.required else "*", metavar=metavar, help=thing.help)
    for option in command.options:
        if not option.positional:
            option.add_to(parser)
    if command.usage is not None:
        parser.usage = command.usage
    return parser


def arguments(name: str, args: argparse.Namespace) -> Arguments:
    """What the command line gave command ``name``, by the names its options have: the optional
    workspace and the word after it (a task, a description) split from its words."""
    command = COMMANDS[name]
    thing = next((o for o in command.options if o.positional and o.name != "directory"), None)
    extra: dict[str, object] = {}
    if thing is not None:
        words = list(getattr(args, "words", None) or [])
        usage = f"orchestrator {name} [DIR] {command.thing}"
        if len(words) > 2:
            raise UsageError(f"too many arguments: {usage}")
        if thing.required and not words:
            raise UsageError(f"too few arguments: {usage}")
        directory = None
        if len(words) == 2 or (not thing.required and words and looks_like_workspace(words[0])):
            directory = words.pop(0)
        extra = {"directory": directory, thing.name: words[0] if words else None}
    return from_namespace(command.options, args, **extra)


def handle(name: str) -> Handler:
    """The handler that calls command ``name``'s function with the command line's arguments."""

    def handler(args: argparse.Namespace) -> int:
        result: Result = COMMANDS[name].function()(Call(arguments(name, args), "cli"))
        return show(result, as_json=bool(getattr(args, "json", False)))

    return handler


def show(result: Result, *, as_json: bool) -> int:
    """A result as the command line prints it; its exit code."""
    for note in result.notes:
        warn(note)
    if as_json:
        emit_json(result.payload())
    else:
        if result.shown is not None:  # (a refusal has none: ``said`` is its words)
            sys.stdout.write(result.shown())
        for line in result.aside:
            warn(line)
    if not result.ok and result.said and not as_json:
        warn(result.said)
    return result.code
