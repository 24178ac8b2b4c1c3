"""``orchestrator cleanup``: a workspace's stale state removed in one sweep (``run.cleanup``).

Refused while a run (or a render, reset...) holds the workspace (exit 3): what a run goes on
using is never stale. It prints what it removes, one line each on stdout (``--dry-run``: what it
would, removing nothing); what it keeps and why, on stderr; ``--json``: one object.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator

from orchestrator.cli.output import Commands, add_command, add_directory, emit_json, warn
from orchestrator.cli.upkeep.worktrees import _size
from orchestrator.errors import LockedError
from orchestrator.state.plans import plan_of
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import ExitCode, counted


@contextlib.contextmanager
def _looking(workspace: Workspace, pid: int | None) -> Iterator[None]:
    """For ``--dry-run``: no run may go on meanwhile, yet nothing is written (the lock file's pid
    stays as it is): a shared lock on the file, taken only if nobody holds it."""
    from orchestrator.state.lock import posix_locks

    try:
        fd = os.open(workspace.lock_file, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:  # no run ever took it
        yield
        return
    fcntl = posix_locks()
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(_busy(workspace, pid)) from None
        yield
    finally:
        os.close(fd)


def _busy(workspace: Workspace, pid: int | None) -> str:
    who = f"pid {pid}" if pid else "another process"
    return (
        f"a run, render, reset, aggregate or plan ({who}) is using {workspace.root.name}/ — cleanup runs between runs: "
        "wait for it to finish"
    )


def cmd_cleanup(args: argparse.Namespace) -> int:
    from orchestrator.run.cleanup import stale_pid, sweep
    from orchestrator.state.lock import WorkspaceLock

    workspace = Workspace.find(args.directory)
    plan = plan_of(workspace)
    pid = stale_pid(workspace)
    if args.dry_run:
        with _looking(workspace, pid):
            found = sweep(workspace, plan, pid, dry_run=True)
    else:
        workspace.check_inside()
        lock = WorkspaceLock(workspace.lock_file, workspace.root.name)
        try:
            lock.acquire()
        except LockedError:
            raise LockedError(_busy(workspace, pid)) from None
        try:
            found = sweep(workspace, plan, pid, dry_run=False)
        finally:
            lock.release()
    freed = sum(item.bytes for item in found.removed)
    if args.json:
        emit_json(
            {
                "ok": True,
                "dry_run": args.dry_run,
                "removed": [item.as_json() for item in found.removed],
                "kept": [{"what": what, "why": why} for what, why in found.kept],
                "notes": found.notes,
                "freed_bytes": freed,
            }
        )
        return ExitCode.OK
    verb = "would remove" if args.dry_run else "removed"
    for item in found.removed:  # what goes, one a line on stdout
        print(f"{verb} {item.kind} {item.what}" + (f" ({item.task})" if item.task else ""))
    for what, why in found.kept:
        warn(f"kept {what}: {why}")
    for note in found.notes:
        warn(note)
    if args.dry_run:
        warn(f"🧹 {counted(len(found.removed), 'item')} would go, {_size(freed)} (--dry-run: nothing removed)")
    else:
        warn(f"🧹 {counted(len(found.removed), 'item')} removed, {_size(freed)} freed")
    return ExitCode.OK


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "cleanup",
        cmd_cleanup,
        "remove stale state: a dead runner's lock pid and processes, merged worktrees, and logs, inputs and cache "
        "entries past `retention`",
    )
    add_directory(p)
    p.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
