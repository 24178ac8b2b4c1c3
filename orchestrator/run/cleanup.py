"""``orchestrator cleanup``: a workspace's stale state in one sweep, between runs.

What goes: the pid a dead runner left in ``state/runner.lock``; the process groups its attempts
left running (found and stopped as the next run's ``settle`` would); the task worktrees whose
work is merged, or that hold none (``Trees.prune``: never one with uncommitted or unmerged
work); and, with the ``retention`` setting, the logs of attempts older than that which are not
their task's latest. What never goes: a result, the archive, the event log, the journal (the
next run takes a dead runner's attempts up from it: keeps what finished, resumes the rest), a
worktree with work in it, and the logs of a task's latest attempt (or the one its result names,
or one still open).

The caller holds the workspace lock (no run goes on); ``dry_run`` finds the same, and removes
nothing.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

from orchestrator.documents import read_metadata
from orchestrator.errors import GitError
from orchestrator.plan.model import Plan
from orchestrator.plan.settings import format_duration
from orchestrator.state import journal, store
from orchestrator.state.workspace import Workspace

_LOG = re.compile(r"^(?P<slug>.+)\.attempt-(?P<attempt>\d+)\.(?P<stream>in|out|err|verify\.out|verify\.err)$")
_LOCAL = ("local", "worktree", None)  # executors whose attempts are processes here


@dataclass(frozen=True, slots=True)
class Item:
    """One thing removed (or, with ``--dry-run``, that would be)."""

    kind: str  # runner_lock, processes, worktree, log
    what: str  # as a person reads it: a path, a process group
    task: str | None = None
    bytes: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "what": self.what, "task": self.task, "bytes": self.bytes}


@dataclass(slots=True)
class Sweep:
    removed: list[Item] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)  # (what, why)
    notes: list[str] = field(default_factory=list)


def sweep(workspace: Workspace, plan: Plan, stale_pid: int | None, *, dry_run: bool, now: float | None = None) -> Sweep:
    """What is stale in ``workspace``, removed unless ``dry_run``. ``stale_pid``: the pid the
    runner lock held before the caller took it (a dead runner's)."""
    found = Sweep()
    left = journal.read(workspace.journal_file)
    if stale_pid is not None:
        found.removed.append(Item("runner_lock", f"{workspace.relative(workspace.lock_file)}: pid {stale_pid} (gone)"))
    _orphans(workspace, plan, left, found, dry_run)
    if left.open:
        runner = f"pid {left.runner_pid}" if left.runner_pid else "a runner"
        attempts = ", ".join(f"{o.task} (attempt {o.attempt})" for o in left.open.values())
        found.notes.append(
            f"the dead runner ({runner}) left {attempts} open: the next `orchestrator run` takes them up "
            "(keeps what finished, goes on with the rest)"
        )
    _worktrees(workspace, plan, set(left.open), found, dry_run)
    _logs(workspace, plan, left, found, dry_run, time.time() if now is None else now)
    return found


def _orphans(workspace: Workspace, plan: Plan, left: journal.JournalState, found: Sweep, dry_run: bool) -> None:
    """The process groups of a dead runner's attempts, stopped as ``run`` stops them."""
    import anyio

    from orchestrator.executors.base import Leftover
    from orchestrator.executors.groups import leftover_groups, stop_groups
    from orchestrator.state.procs import process_started

    leftovers = [
        Leftover(
            o.task, o.attempt, o.executor, o.handle, journal.attempt_environment(workspace.root, o.task, o.attempt)
        )
        for o in left.open.values()
        if o.executor in _LOCAL
    ]
    if not leftovers:
        return
    groups = leftover_groups(leftovers)
    for pgid, task in sorted(groups.items()):
        found.removed.append(Item("processes", f"process group {pgid}, left running by a dead runner", task))
    if groups and not dry_run:
        leaders = {pgid: process_started(pgid) for pgid in groups}
        anyio.run(stop_groups, list(groups), plan.settings.kill_grace, leaders)


def _worktrees(workspace: Workspace, plan: Plan, busy: set[str], found: Sweep, dry_run: bool) -> None:
    from orchestrator.git.worktrees import Trees

    if not (workspace.root / "worktrees").is_dir():
        return
    try:
        trees = Trees.of(workspace.project_dir, workspace.root, plan.settings.integration_branch)
        pruned = trees.prune(busy, dry_run=dry_run)
    except GitError as exc:
        found.notes.append(f"worktrees left as they are: {exc}")
        return
    for tree in pruned.removed:
        found.removed.append(Item("worktree", workspace.relative(tree.path), tree.task, tree.bytes))
    for kept in pruned.kept:
        found.kept.append((workspace.relative(kept.tree.path), kept.why))


def _logs(
    workspace: Workspace, plan: Plan, left: journal.JournalState, found: Sweep, dry_run: bool, now: float
) -> None:
    """Logs older than ``retention`` of attempts that are not their task's latest."""
    retention = plan.settings.retention
    if retention is None:
        found.notes.append("logs kept: the plan sets no `retention` (e.g. `retention: 30d`)")
        return
    try:
        names = os.listdir(workspace.logs_dir)
    except OSError:
        return
    logs: dict[str, dict[int, list[str]]] = {}
    for name in names:
        match = _LOG.match(name)
        if match:
            logs.setdefault(match["slug"], {}).setdefault(int(match["attempt"]), []).append(name)
    keep = {(slug, max(attempts)) for slug, attempts in logs.items()}
    keep |= {(o.agent.lower(), o.attempt) for o in left.open.values()}
    for slug in logs:
        meta = read_metadata(workspace.results_dir / f"{slug}-result.md")
        if meta is not None and isinstance(meta.get("attempts"), int):
            keep.add((slug, meta["attempts"]))
    for slug, attempts in sorted(logs.items()):
        for attempt, files in sorted(attempts.items()):
            if (slug, attempt) in keep:
                continue
            for name in sorted(files):
                path = workspace.logs_dir / name
                try:
                    stat = path.lstat()
                except OSError:
                    continue
                if now - stat.st_mtime < retention:
                    continue
                found.removed.append(Item("log", workspace.relative(path), _task_of(plan, slug), stat.st_size))
                if not dry_run:
                    store.remove(path, durable=False)
    if not any(item.kind == "log" for item in found.removed):
        found.notes.append(f"no log older than {format_duration(retention)} to remove (retention)")


def _task_of(plan: Plan, slug: str) -> str | None:
    for task in [*plan.tasks.values(), *(entry.task for entry in plan.archived.values())]:
        if task.slug == slug:
            return task.id
    return None


def stale_pid(workspace: Workspace) -> int | None:
    """The pid ``state/runner.lock`` holds: a dead runner's, once the lock could be taken (a
    holder that let go of it properly leaves the file empty)."""
    try:
        text = workspace.lock_file.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
