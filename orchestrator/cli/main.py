"""The command line: a thin shell over the library. ``main(argv) -> exit code``.

Each command lives beside its kind (``plans``, ``running``, ``skill``); this module puts them in
one parser and turns what they raise into one line and an exit code (``vocabulary.ExitCode``):
0 ok (``status``, ``graph`` and ``aggregate`` whatever the tasks' states); 1 ``run`` had a task
fail or be skipped, or the one agent call of ``plan`` or ``aggregate --agent`` failed, or
``merge`` met a conflict (nothing changed), or ``output`` found no completed result; 2 bad plan
or usage, a workspace file the system refuses, or git refusing what a worktree or ``merge``
needed; 3 another run, render, reset, aggregate, plan, merge or prune holds the workspace; 4 ``run``
left tasks waiting for a person; 130 interrupted (cli-integration.md's "Exit codes" says them all).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from orchestrator import __version__
from orchestrator.cli.output import emit_json, warn
from orchestrator.errors import OrchestratorError, PlanError, UsageError, workspace_error_from
from orchestrator.vocabulary import ExitCode, counted


class _BadArguments(Exception):
    """What argparse would have printed before exiting 2: the command's usage and the message."""

    def __init__(self, usage: str, message: str) -> None:
        super().__init__(message)
        self.usage = usage
        self.message = message


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is raised, not printed and exited on: ``main`` reports it like
    every other error, as ``{"ok": false, ...}`` under ``--json``."""

    def error(self, message: str) -> NoReturn:
        raise _BadArguments(self.format_usage(), f"{self.prog}: {message} — see `{self.prog} --help`")


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
_HOME = {command: module for module, commands in COMMAND_MODULES.items() for command in commands}


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
    home = _HOME.get(command or "")
    for name in (home,) if home is not None else COMMAND_MODULES:
        importlib.import_module(f"orchestrator.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = _json_after_command(list(sys.argv[1:] if argv is None else argv))
    if words[:1] == ["__complete"]:  # what a completion script asks at each Tab (cli.completion)
        from orchestrator.cli.completion import complete

        return complete(words[1:])
    parser = build_parser(words[0] if words and not words[0].startswith("-") else None)
    try:
        args = parser.parse_args(words)
    except _BadArguments as exc:
        as_json = "--json" in words[: words.index("--")] if "--" in words else "--json" in words
        if not as_json:
            sys.stderr.write(exc.usage)
        _report_error(UsageError(exc.message), as_json)
        return ExitCode.USAGE
    try:
        return int(args.handler(args))
    except OrchestratorError as exc:
        _report_error(exc, getattr(args, "json", False))
        return exc.exit_code
    except OSError as exc:  # a file it needs: unwritable workspace, full disk, a file in the way
        if isinstance(exc, BrokenPipeError):
            return ExitCode.OK
        error = workspace_error_from(exc)
        if error is None:
            raise
        _report_error(error, getattr(args, "json", False))
        return error.exit_code
    except KeyboardInterrupt:
        warn("interrupted")
        return ExitCode.INTERRUPTED


def _json_after_command(words: list[str]) -> list[str]:
    """``orchestrator --json status`` as ``orchestrator status --json``: every command takes
    ``--json``, and scripts put it first as often as last (``gh``, ``kubectl`` take both)."""
    lead = 0
    while lead < len(words) and words[lead] == "--json":
        lead += 1
    if lead and lead < len(words) and not words[lead].startswith("-"):
        return [*words[lead:], "--json"]
    return words


def entry() -> NoReturn:
    """The console script and ``python -m orchestrator``: ``main``, then exit at once.

    Once the command is done and its output flushed, nothing is left for the interpreter's
    shutdown to do but free every object one by one and run no handler of ours: after a run of
    1,000 tasks that took as long as 30 tasks' work. ``os._exit`` skips it, unless a tracer or
    profiler is installed (coverage, cProfile, a debugger), which writes its data at exit. ``main``
    itself returns normally, for callers that run it in-process.
    """
    code = main()
    if _observed():
        sys.exit(code)  # coverage, a profiler or a debugger: let it write what it gathered at exit
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # a reader that went away, or a closed stream
        pass
    os._exit(code)


def _observed() -> bool:
    """Whether a tracer or profiler watches this process (``sys.settrace``/``setprofile``, or a
    ``sys.monitoring`` tool on Python 3.12+, as coverage uses there)."""
    if sys.gettrace() is not None or sys.getprofile() is not None:
        return True
    monitoring = getattr(sys, "monitoring", None)
    return monitoring is not None and any(monitoring.get_tool(tool) is not None for tool in range(6))


def _report_error(exc: OrchestratorError, as_json: bool) -> None:
    problems = exc.problems if isinstance(exc, PlanError) else []
    if as_json:
        emit_json(
            {
                "ok": False,
                "error": type(exc).__name__,
                "message": str(exc),
                "problems": [{"file": p.file, "line": p.line, "message": p.message, "hint": p.hint} for p in problems],
            }
        )
    warn(str(exc))
    if problems:
        warn(f"{counted(len(problems), 'problem')}; nothing was written.")
