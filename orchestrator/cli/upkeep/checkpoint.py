"""``orchestrator checkpoint save NAME``, ``list``, ``restore NAME`` (``state/kept/checkpoints``).

``save`` and ``restore`` hold the workspace lock: refused while a run (or a render, reset...)
goes on (exit 3), nothing written. A bad name or an unknown checkpoint: one line, exit 2.
"""

from __future__ import annotations

import argparse
import time

from orchestrator.cli.output import Commands, Handler, add_command, emit_json, warn
from orchestrator.moments import now_iso
from orchestrator.state.kept import checkpoints
from orchestrator.state.lock import WorkspaceLock
from orchestrator.state.workspace import DEFAULT_DIR, Workspace
from orchestrator.vocabulary import ExitCode, counted


def _lock(workspace: Workspace) -> WorkspaceLock:
    workspace.check_inside()  # nothing written through a symlink leading out
    return WorkspaceLock(workspace.lock_file, workspace.root.name)


def cmd_save(args: argparse.Namespace) -> int:
    workspace = Workspace.find(args.directory)
    checkpoints.check_name(args.name)  # (before the lock: a bad name says so even while a run goes)
    with _lock(workspace):
        saved = checkpoints.save(workspace, args.name, now_iso())
    if args.json:
        emit_json({"ok": True, **saved.as_json()})
    else:
        print(f"💾 checkpoint {saved.name}: {counted(saved.results, 'result')} and the state, as of {saved.saved}")
    return ExitCode.OK


def cmd_list(args: argparse.Namespace) -> int:
    workspace = Workspace.find(getattr(args, "directory", DEFAULT_DIR))  # (`checkpoint` alone: here)
    found = checkpoints.every(workspace)
    if args.json:
        emit_json({"checkpoints": [c.as_json() for c in found]})
        return ExitCode.OK
    for c in found:
        print(f"{c.name}  {c.saved}  {counted(c.results, 'result')}")
    if not found:
        warn(f"no checkpoint in {workspace.root.name}/ — make one with `orchestrator checkpoint save NAME`")
    return ExitCode.OK


def cmd_restore(args: argparse.Namespace) -> int:
    workspace = Workspace.find(args.directory)
    checkpoints.check_name(args.name)
    with _lock(workspace):
        restored, before = checkpoints.restore(workspace, args.name, now_iso(), time.strftime("%Y%m%dT%H%M%S"))
    if args.json:
        emit_json({"ok": True, "restored": restored.as_json(), "before": before.as_json()})
    else:
        print(f"⏪ restored checkpoint {restored.name} ({restored.saved}): {counted(restored.results, 'result')}")
        warn(
            f"what it replaced is kept as checkpoint {before.name} "
            f"(`orchestrator checkpoint restore {before.name}` goes back); worktrees and branches are untouched"
        )
    return ExitCode.OK


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "checkpoint",
        cmd_list,
        "keep the results and state as they are now, and return to them: `checkpoint save NAME`, `checkpoint list`, "
        "`checkpoint restore NAME`",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", help="save, list or restore")
    save = _action(actions, "save", cmd_save, "keep the results and state as they are now, as NAME")
    save.add_argument("name", metavar="NAME", help="letters, digits, '.', '_' and '-'")
    _with_directory(save)
    _action(actions, "list", cmd_list, "the checkpoints, oldest first")
    restore = _action(
        actions, "restore", cmd_restore, "return to checkpoint NAME (what it replaces is kept as a checkpoint first)"
    )
    restore.add_argument("name", metavar="NAME", help="a checkpoint `checkpoint list` shows")
    _with_directory(restore)


def _action(
    actions: Commands[argparse.ArgumentParser], name: str, handler: Handler, help_text: str
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = actions.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object")
    if name == "list":
        _with_directory(parser)
    return parser


def _with_directory(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", nargs="?", default=DEFAULT_DIR, help="the workspace (default: .orchestrator)")
