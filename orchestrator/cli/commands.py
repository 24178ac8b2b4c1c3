"""The commands and the one parser made of them: which module registers each command
(``COMMAND_MODULES``), and ``build_parser``, which imports only the module of the command a
command line names. ``main`` parses with it; ``completion`` reads it to offer what may come next."""

from __future__ import annotations

import argparse
from typing import NoReturn

from orchestrator import __version__


class BadArguments(Exception):
    """What argparse would have printed before exiting 2: the command's usage and the message."""

    def __init__(self, usage: str, message: str) -> None:
        super().__init__(message)
        self.usage = usage
        self.message = message


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is raised, not printed and exited on: ``main`` reports it like
    every other error, as ``{"ok": false, ...}`` under ``--json``."""

    def error(self, message: str) -> NoReturn:
        raise BadArguments(self.format_usage(), f"{self.prog}: {message} — see `{self.prog} --help`")


#: The modules of the commands, in the order ``--help`` lists them, and the commands each registers.
#: A command line that names a command builds that command's parser only: importing every
#: command's module and building every parser costs a command some 50 ms (a test holds the map).
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "init": ("init",),
    "plans": ("validate", "render", "status", "logs", "graph"),
    "results": ("output",),
    "running": ("run", "reset", "plan", "aggregate"),
    "queue": ("add", "cancel", "retry"),
    "spawning": ("spawn",),
    "listing": ("list",),
    "editing": ("update",),
    "gates": ("approve", "reject"),
    "archiving": ("archive",),
    "cleanup": ("cleanup",),
    "checkpoint": ("checkpoint",),
    "watching": ("watch", "history"),
    "channels": ("share", "note", "discover", "sync", "context"),
    "worktrees": ("merge", "worktrees"),
    "skill": ("install-skill",),
    "doctor": ("doctor",),
    "check": ("check",),
    "schedule": ("schedule",),
    "report": ("report",),
    "serve": ("serve",),
    "mcp_setup": ("mcp", "install-mcp"),
    "transfer": ("export", "import", "templates"),
    "completion": ("completion",),
}
HOME = {command: module for module, commands in COMMAND_MODULES.items() for command in commands}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of ``command`` alone when it is one (the rest of the
    command line is then parsed exactly as the whole parser would)."""
    import importlib

    parser = Parser(
        prog="orchestrator",
        description="Run a markdown plan of atomic tasks as real sub-agents, in parallel, in dependency order.",
        epilog="Exit codes: 0 ok, 1 the work is not done (run: a task failed, was skipped, cancelled or rejected) "
        "or an agent call failed, 2 bad plan or usage (nothing written), 3 workspace held by another run, render, "
        "reset or aggregate, 4 run: tasks wait for a person, 130 interrupted. Each command's: cli-integration.md.",
    )
    parser.add_argument("--version", action="version", version=f"orchestrator {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    home = HOME.get(command or "")
    for name in (home,) if home is not None else COMMAND_MODULES:
        importlib.import_module(f"orchestrator.cli.{name}").register(sub)
    return parser
