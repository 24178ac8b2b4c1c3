"""The channels, used by agents from inside their tasks: ``share``, ``note``, ``discover``,
``sync`` and ``context`` (``state.context`` keeps them)."""

from __future__ import annotations

import argparse
import errno
import os
import sys
from typing import TYPE_CHECKING

from orchestrator.cli.output import (
    Commands,
    Handler,
    add_command,
    emit_json,
    find_workspace,
    looks_like_workspace,
    task_id_in,
)
from orchestrator.errors import UsageError
from orchestrator.state import context, events
from orchestrator.state.context import Kind
from orchestrator.state.plans import plan_of
from orchestrator.state.workspace import Workspace, from_here
from orchestrator.vocabulary import ExitCode

if TYPE_CHECKING:
    from orchestrator.state.events.runs import Discovered, Shared, Synced

TASK_VARIABLE = "ORCHESTRATOR_TASK_ID"
AGENT_VARIABLE = "ORCHESTRATOR_AGENT"  # who writes: a task's agent id inside it, a name given outside

# The kinds events.jsonl is told of (each by its record, ``_told``), and the line the command prints.
_EVENTS = frozenset({Kind.SHARE, Kind.DISCOVER, Kind.SYNC})
_DONE = {Kind.SHARE: "Shared", Kind.NOTE: "Noted", Kind.DISCOVER: "Discovered", Kind.SYNC: "Synced"}
_WALLED = (errno.EROFS, errno.EACCES, errno.EPERM)  # the event log out of an agent's reach


def _told(kind: Kind, entry: context.Entry, run: str | None, task: str | None) -> Shared | Discovered | Synced:
    """The event of ``entry``: its record imported as it is written (a command that writes none,
    ``--help`` among them, does not build every kind's)."""
    from orchestrator.state.events.runs import Discovered, Shared, Synced

    records: dict[Kind, type[Shared | Discovered | Synced]] = {
        Kind.SHARE: Shared,
        Kind.DISCOVER: Discovered,
        Kind.SYNC: Synced,
    }
    return records[kind](time=entry.time, run=run, task=task, text=entry.text, author=entry.author or None)


def _text(given: str) -> str:
    """The entry's text as ``clean_text`` keeps it: ``-`` reads it from stdin."""
    text = sys.stdin.read() if given == "-" else given
    try:
        return context.clean_text(text)
    except ValueError as exc:
        raise UsageError(f"{exc} — nothing was written") from None


def _author(args: argparse.Namespace) -> str | None:
    """Who writes the entry: ``--as``, else ``$ORCHESTRATOR_AGENT`` (a task's agent id inside a
    task, a name a person or a script gives itself outside one, as ``tm``'s ``TM_AGENT_ID``)."""
    name = args.author if args.author is not None else os.environ.get(AGENT_VARIABLE) or None
    if name is not None and not context.AUTHOR_RE.fullmatch(name.strip()):
        given = "--as" if args.author is not None else f"${AGENT_VARIABLE}"
        raise UsageError(
            f"{given} {name!r}: a name is one word of letters, digits and . _ - @ + (db_specialist) — "
            "nothing was written"
        )
    return name.strip() if name is not None else None


def _record(workspace: Workspace, kind: Kind, task: str | None, text: str, args: argparse.Namespace) -> int:
    workspace.check_inside()
    entry = context.append(workspace, kind, task, text, _author(args))
    run = None
    if kind in _EVENTS:  # a note is the task's own: its text stays out of the run's record
        run = context.running_run(workspace.events_file)
        try:
            events.append(workspace.events_file, [_told(kind, entry, run, task)])
        except OSError as exc:
            if exc.errno not in _WALLED:
                raise
            # An agent behind the walls (backends/guard) writes context/, never the run's record.
            said = f"{_DONE[kind]}, not in the run's record: its event log is out of this agent's reach"
            print(said, file=sys.stderr)
    where = from_here(context.channel_file(workspace, kind, task))  # (a task may call it from anywhere)
    if args.json:
        emit_json({"ok": True, **entry.as_json(), "file": where, "run": run})
    else:
        print(f"{_DONE[kind]}{f' ({task})' if task else ''} → {where}")
    return ExitCode.OK


def _split(words: list[str], most: int) -> tuple[str | None, list[str]]:
    """The workspace the words begin with, if they do, and the rest: with ``most`` words (or
    fewer, when the first names a workspace there, not a task) the first is the workspace."""
    if len(words) == most or (len(words) > 1 and looks_like_workspace(words[0])):
        return words[0], words[1:]
    return None, words


def _entry_command(kind: Kind) -> Handler:
    usage = f'orchestrator {kind.value} [DIR] TASK "TEXT" (inside a task, TASK is ${TASK_VARIABLE})'

    def command(args: argparse.Namespace) -> int:
        words = list(args.words)
        if len(words) > 3:
            raise UsageError(f"{kind.value} takes a task and a text, after an optional workspace: {usage} — nothing "
                             "was written")  # fmt: skip
        directory, rest = _split(words, 3)
        inside = os.environ.get(TASK_VARIABLE)
        if len(rest) == 1 and not inside:
            raise UsageError(f"{kind.value} takes a task and a text: {usage} — nothing was written")
        workspace = find_workspace(directory)
        wanted = rest[0] if len(rest) == 2 else str(inside)
        task = task_id_in(plan_of(workspace), wanted, after="nothing was written")
        return _record(workspace, kind, task, _text(rest[-1]), args)

    return command


def cmd_sync(args: argparse.Namespace) -> int:
    words = list(args.words)
    if len(words) > 3 or (args.task and len(words) > 2):
        raise UsageError(
            'sync takes a milestone, after an optional workspace and task: orchestrator sync [DIR] [TASK] "MILESTONE"'
        )
    directory, rest = _split(words, 3 if not args.task else 2)
    workspace = find_workspace(directory)
    # `sync TASK "TEXT"` names the task as `share` does; inside a task, the checkpoint is that
    # task's (its workspace is the one this writes to).
    wanted = args.task or (rest[0] if len(rest) == 2 else os.environ.get(TASK_VARIABLE) if not directory else None)
    task = task_id_in(plan_of(workspace), wanted, after="nothing was written") if wanted else None
    return _record(workspace, Kind.SYNC, task, _text(rest[-1]), args)


def cmd_context(args: argparse.Namespace) -> int:
    words = list(args.words)
    if len(words) > 2:
        raise UsageError("context takes one task, after an optional workspace: orchestrator context [DIR] TASK")
    workspace = find_workspace(words[0] if len(words) == 2 else None)
    wanted = words[-1] if words else os.environ.get(TASK_VARIABLE)
    if not wanted:
        raise UsageError("name the task: orchestrator context [DIR] TASK")
    plan = plan_of(workspace)
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
    words_help = (
        f'the task and the text, after an optional workspace (inside a task, the task is ${TASK_VARIABLE}; "-": '
        "read the text from stdin)"
    )
    as_help = f"who writes it, one word (default: ${AGENT_VARIABLE}, a task's agent id inside it)"
    for kind, what in (
        (Kind.SHARE, "record an update every task may read (from inside a task)"),
        (Kind.NOTE, "record private reasoning, kept with that task only"),
        (Kind.DISCOVER, "record a finding that matters to everyone: every task that starts later is told"),
    ):
        p = add_command(sub, kind.value, _entry_command(kind), what)
        p.add_argument("words", nargs="+", metavar='[DIR] [TASK] "TEXT"', help=words_help)
        p.add_argument("--as", dest="author", metavar="NAME", help=as_help)
        p.usage = '%(prog)s [-h] [--json] [--as NAME] [DIR] [TASK] "TEXT"'
    p = add_command(sub, "sync", cmd_sync, "record a checkpoint in the run's record")
    p.add_argument(
        "words",
        nargs="+",
        metavar='[DIR] [TASK] "MILESTONE"',
        help="the milestone, after an optional workspace and task",
    )
    p.add_argument("--task", help=f"the task that reached it (default: ${TASK_VARIABLE} inside a task)")
    p.add_argument("--as", dest="author", metavar="NAME", help=as_help)
    p.usage = '%(prog)s [-h] [--json] [--task TASK] [--as NAME] [DIR] [TASK] "MILESTONE"'
    p = add_command(sub, "context", cmd_context, "show what was shared and discovered for a task and its upstream")
    p.add_argument("words", nargs="*", metavar="[DIR] TASK", help="the task (default: $ORCHESTRATOR_TASK_ID)")
    p.usage = "%(prog)s [-h] [--json] [DIR] TASK"
