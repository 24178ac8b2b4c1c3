"""The commands and the one parser made of them: which module registers each command
(``COMMAND_MODULES``), and ``build_parser``, which imports only the module of the command a
command line names. ``main`` parses with it; ``completion`` reads it to offer what may come next."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, NoReturn

from orchestrator.version import __version__

if TYPE_CHECKING:
    from orchestrator.cli.output import Commands


class BadArguments(Exception):
    """What argparse would have printed before exiting 2: the command's usage and the message."""

    def __init__(self, usage: str, message: str) -> None:
        super().__init__(message)
        self.usage = usage
        self.message = message


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is raised, not printed and exited on: ``main`` reports it like
    every other error, as ``{"ok": false, ...}`` under ``--json``. It keeps what it is given, its
    arguments (``given``) and its sub-commands (``commands``): completion reads them there, never
    in argparse's private lists."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.given: list[argparse.Action] = []  # (before argparse's own: it adds -h in its __init__)
        self.commands: Commands[Parser] | None = None
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.given.append(action)
        return action

    def command(self, name: str) -> Parser:
        """The parser of sub-command ``name``."""
        if self.commands is None or name not in self.commands.choices:
            raise KeyError(name)
        return self.commands.choices[name]

    def error(self, message: str) -> NoReturn:
        raise BadArguments(self.format_usage(), f"{self.prog}: {message} — see `{self.prog} --help`")


#: The modules of the commands, in the order ``--help`` lists them, each command with its line in
#: that list (the help its module's ``register`` gives it: a test holds the two the same). A command
#: line that names a command builds that command's parser only, and one that names none (``--help``,
#: a mistyped command) a parser of the names and these lines alone: importing every command's module
#: and building every parser cost ``--help`` twice what Python's start-up does.
COMMANDS: dict[str, dict[str, str]] = {
    "init": {
        "init": "create a workspace with a master_plan.md skeleton",
    },
    "plans": {
        "validate": "parse master_plan.md and check the task graph",
        "render": "write agent_tasks/agent-XX.md briefs and the status blocks",
        "status": "show every task's state",
        "logs": "show what a task's attempt printed: its stdout and stderr logs",
        "graph": "show the task graph (layers, mermaid or dot)",
    },
    "agents.results": {
        "output": "print what a completed task answered: its result without the YAML header",
    },
    "running": {
        "run": "run the plan: every task not yet completed, in dependency order, in parallel",
        "reset": "forget results so those tasks run again",
        "plan": "ask an agent to decompose a request and write master_plan.md",
        "aggregate": "rebuild final_output.md from results/",
    },
    "queue": {
        "add": "add a task to the plan; a run going on takes it within a second",
        "cancel": "stop a task (or keep it from starting); its dependents are skipped",
        "retry": "put a failed, skipped or cancelled task back in the queue",
        "budget": "show what the run going on may spend; +USD raises it, and the tasks waiting for it go on",
    },
    "spawning": {
        "spawn": "add one task and run it now (in the run going on, or alone); its answer on stdout",
    },
    "listing": {
        "list": "list the plan's tasks, filtered and grouped (for scripts: --json)",
    },
    "editing": {
        "update": "change a task's row in the plan: priority, assignee, title, tags...",
    },
    "gates": {
        "approve": "let a task waiting at its Approval gate go on",
        "reject": "refuse a task at its Approval gate: what depends on it is skipped",
        "answer": "allow or deny what a running task's agent asks (ask: true): answer T-03 Q2 allow|deny",
    },
    "upkeep.archiving": {
        "archive": "move finished tasks out of the plan's table into archive/<date>.md",
    },
    "upkeep.cleanup": {
        "cleanup": (
            "remove stale state: a dead runner's lock pid and processes, merged worktrees, and logs, inputs "
            "and cache entries past `retention`"
        ),
    },
    "upkeep.checkpoint": {
        "checkpoint": (
            "keep the results and state as they are now, and return to them: `checkpoint save NAME`, "
            "`checkpoint list`, `checkpoint restore NAME`"
        ),
    },
    "watching": {
        "watch": "follow the run going on (or the last one) from its start, until it ends",
        "history": "every attempt of every run, and how each ended",
    },
    "agents.channels": {
        "share": "record an update every task may read (from inside a task)",
        "note": "record private reasoning, kept with that task only",
        "discover": "record a finding that matters to everyone: every task that starts later is told",
        "sync": "record a checkpoint in the run's record",
        "context": "show what was shared and discovered for a task and its upstream",
    },
    "upkeep.worktrees": {
        "merge": "bring the integration branch into your branch (only onto a clean working tree)",
        "worktrees": (
            "list the task worktrees (task, branch, state, disk use); `worktrees prune` removes the merged and "
            "empty ones"
        ),
    },
    "agents.skill": {
        "install-skill": "install the Claude Code skill (SKILL.md and its docs)",
    },
    "upkeep.doctor": {
        "doctor": "check that the agent CLIs the plan needs are installed and logged in, and what each may do",
    },
    "upkeep.check": {
        "check": (
            "exit 0 when all is well, 1 when a workspace needs attention (a dead runner, a task past its "
            "limits, a pause, failures, results the fake executor made up): for cron and heartbeats"
        ),
        "verify": (
            "check the event log's hash chain and that each result is what its run wrote: exit 1 names what changed"
        ),
    },
    "upkeep.schedule": {
        "schedule": (
            "run a plan again and again by the machine's cron: `schedule add WORKSPACE --cron EXPR`, `schedule "
            "list`, `schedule remove WORKSPACE` (a managed block of your crontab; your own lines are kept)"
        ),
    },
    "report": {
        "report": (
            "how the run went: critical path, speed-up, parallel efficiency, cost and tokens by task and "
            "backend, retries, and a timeline (writes .orchestrator/report.svg)"
        ),
    },
    "serve": {
        "serve": "a live web dashboard of the run: the graph, every task's state, briefs, results and logs",
    },
    "agents.mcp_setup": {
        "mcp": "an MCP server on stdio: the queue's commands as tools (add, run, status, output...) for an agent",
        "install-mcp": "add the MCP server to a project's .mcp.json, for Claude Code (or --print the entry)",
    },
    "transfer": {
        "export": "print the plan as JSON or YAML: settings, tasks, details, notes",
        "import": "write master_plan.md from a plan `export` printed (JSON or YAML)",
        "templates": "list the plans `init --template` starts from",
    },
    "completion": {
        "completion": "print the shell completion script for bash, zsh or fish (commands, options, task ids)",
    },
}
COMMAND_MODULES: dict[str, tuple[str, ...]] = {module: tuple(commands) for module, commands in COMMANDS.items()}
HOME = {command: module for module, commands in COMMAND_MODULES.items() for command in commands}


def build_parser(command: str | None = None, *, listing: bool = False) -> Parser:
    """The parser of every command, or of ``command`` alone when it is one (the rest of the
    command line is then parsed exactly as the whole parser would). ``listing``, with no command
    named: each command by its name and line only (``COMMANDS``), which is all ``--help``, a
    command line without a command and a mistyped command print; nothing past them is parsed."""
    import importlib

    parser = Parser(
        prog="orchestrator",
        description="Run a markdown plan of atomic tasks as real sub-agents, in parallel, in dependency order.",
        epilog="Exit codes: 0 ok, 1 the work is not done (run: a task failed, was skipped, cancelled or rejected) "
        "or an agent call failed, 2 bad plan or usage (nothing written), 3 workspace held by another run, render, "
        "reset or aggregate, 4 run: tasks wait for a person, 5 run: the work is done but not delivered, 70 a defect "
        "of ours (errors.log), 130 interrupted. Each command's: cli-integration.md.",
    )
    parser.add_argument("--version", action="version", version=f"orchestrator {__version__}")
    sub = parser.commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    home = HOME.get(command or "")
    if home is None and listing:
        for commands in COMMANDS.values():
            for name, line in commands.items():
                sub.add_parser(name, help=line, description=line)
        return parser
    for name in (home,) if home is not None else COMMAND_MODULES:
        importlib.import_module(f"orchestrator.cli.{name}").register(sub)
    return parser
