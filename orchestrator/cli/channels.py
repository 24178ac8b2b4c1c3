"""The channels, used by agents from inside their tasks: ``share``, ``note``, ``discover``,
``sync`` and ``context`` (``state.context`` keeps them)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from orchestrator.cli.output import Commands, Handler, add_command, emit_json, find_workspace, task_id_in
from orchestrator.errors import UsageError
from orchestrator.state import context, events
from orchestrator.state.context import Kind
from orchestrator.state.workspace import Workspace, from_here
from orchestrator.vocabulary import ExitCode

TASK_VARIABLE = "ORCHESTRATOR_TASK_ID"

# What each kind is called in events.jsonl, and in the line the command prints.
_EVENTS = {Kind.SHARE: "shared", Kind.DISCOVER: "discovered", Kind.SYNC: "synced"}
_DONE = {Kind.SHARE: "Shared", Kind.NOTE: "Noted", Kind.DISCOVER: "Discovered", Kind.SYNC: "Synced"}


def _text(given: str) -> str:
    """The entry's text as ``clean_text`` keeps it: ``-`` reads it from stdin."""
    text = sys.stdin.read() if given == "-" else given
    try:
        return context.clean_text(text)
    except ValueError as exc:
        raise UsageError(f"{exc} — nothing was written") from None


def _record(workspace: Workspace, kind: Kind, task: str | None, text: str, as_json: bool) -> int:
    workspace.check_inside()
    entry = context.append(workspace, kind, task, text)
    run = None
    if kind in _EVENTS:  # a note is the task's own: its text stays out of the run's record
        run = context.running_run(workspace.events_file)
        event: dict[str, Any] = {"event": _EVENTS[kind], "run": run, "task": task, "text": entry.text}
        events.append(workspace.events_file, [{**event, "time": entry.time}])
    where = from_here(context.channel_file(workspace, kind, task))  # (a task may call it from anywhere)
    if as_json:
        emit_json({"ok": True, **entry.as_json(), "file": where, "run": run})
    else:
        print(f"{_DONE[kind]}{f' ({task})' if task else ''} → {where}")
    return ExitCode.OK


def _entry_command(kind: Kind) -> Handler:
    def command(args: argparse.Namespace) -> int:
        words = list(args.words)
        if len(words) not in (2, 3):
            raise UsageError(
                f"{kind.value} takes a task and a text, after an optional workspace: orchestrator {kind.value} "
                f'[DIR] TASK "TEXT" — nothing was written'
            )
        workspace = find_workspace(words[0] if len(words) == 3 else None)
        task = task_id_in(workspace.load_plan(), words[-2], after="nothing was written")
        return _record(workspace, kind, task, _text(words[-1]), args.json)

    return command


def cmd_sync(args: argparse.Namespace) -> int:
    words = list(args.words)
    if len(words) > 2:
        raise UsageError('sync takes one milestone, after an optional workspace: orchestrator sync [DIR] "MILESTONE"')
    workspace = find_workspace(words[0] if len(words) == 2 else None)
    # Inside a task, the checkpoint is that task's (its workspace is the one this writes to).
    wanted = args.task or (os.environ.get(TASK_VARIABLE) if len(words) == 1 else None)
    task = task_id_in(workspace.load_plan(), wanted, after="nothing was written") if wanted else None
    return _record(workspace, Kind.SYNC, task, _text(words[-1]), args.json)


def cmd_context(args: argparse.Namespace) -> int:
    words = list(args.words)
    if len(words) > 2:
        raise UsageError("context takes one task, after an optional workspace: orchestrator context [DIR] TASK")
    workspace = find_workspace(words[0] if len(words) == 2 else None)
    wanted = words[-1] if words else os.environ.get(TASK_VARIABLE)
    if not wanted:
        raise UsageError("name the task: orchestrator context [DIR] TASK")
    plan = workspace.load_plan()
    task = task_id_in(plan, wanted)  # (a command that writes nothing says nothing of writing)
    upstream = [t for t in plan.topological_order() if t in plan.ancestors([task])]
    found = context.task_context(workspace, task, upstream)
    if args.json:
        emit_json({"ok": True, **found.as_json()})
        return ExitCode.OK
    print(f"# Context of {task}" + (f" (upstream: {', '.join(upstream)})" if upstream else " (no upstream)"))
    for title, entries in (
        (f"Shared by {task} and its upstream", found.shared),
        ("Discoveries (every task's)", found.discoveries),
        (f"Notes of {task}", found.notes),
    ):
        print(f"\n# {title}: {len(entries)}")
        for entry in entries:
            print(f"\n{entry.markdown()}", end="")
    return ExitCode.OK


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    words_help = 'the task and the text, after an optional workspace ("-": read the text from stdin)'
    for kind, what in (
        (Kind.SHARE, "record an update every task may read (from inside a task)"),
        (Kind.NOTE, "record private reasoning, kept with that task only"),
        (Kind.DISCOVER, "record a finding that matters to everyone: every task that starts later is told"),
    ):
        p = add_command(sub, kind.value, _entry_command(kind), what)
        p.add_argument("words", nargs="+", metavar='[DIR] TASK "TEXT"', help=words_help)
        p.usage = '%(prog)s [-h] [--json] [DIR] TASK "TEXT"'
    p = add_command(sub, "sync", cmd_sync, "record a checkpoint in the run's record")
    p.add_argument("words", nargs="+", metavar='[DIR] "MILESTONE"', help="the milestone, after an optional workspace")
    p.add_argument("--task", help="the task that reached it (default: $ORCHESTRATOR_TASK_ID inside a task)")
    p.usage = '%(prog)s [-h] [--json] [--task TASK] [DIR] "MILESTONE"'
    p = add_command(sub, "context", cmd_context, "show what was shared and discovered for a task and its upstream")
    p.add_argument("words", nargs="*", metavar="[DIR] TASK", help="the task (default: $ORCHESTRATOR_TASK_ID)")
    p.usage = "%(prog)s [-h] [--json] [DIR] TASK"
