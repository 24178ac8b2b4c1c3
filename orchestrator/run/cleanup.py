"""``orchestrator cleanup``: a workspace's stale state in one sweep, between runs.

What goes: the pid a dead runner left in ``state/runner.lock``; the process groups its attempts
left running (found and stopped as the next run's ``settle`` would); the temp files a killed
writer left (``.tmp-master_plan.md.PID.N`` of an ``add``, a result's: ``store.leftovers``, never
one whose writer lives); the task worktrees whose work is merged, or that hold none
(``Trees.prune``: never one with uncommitted or unmerged work); and, with the ``retention``
setting, what is older than that and that nothing needs:

- the logs of attempts that are not their task's latest (``logs/<agent>.attempt-N.*``);
- the output of ``spawn --detach``'s background runner (``logs/<agent>.spawn.log``);
- the inputs written for a task's last attempt (``state/inputs/<agent>.txt`` and ``<agent>/``:
  its next attempt writes them anew);
- cache entries (``cache/<task>/<key>.md``) but the one the task's current result came from (or
  was taken from): a run that would look that one up still finds it.

What never goes: a result, the archive, the event log and the journal (``state/events.jsonl``
and ``state/attempts.jsonl``: the history ``history`` shows and learned estimates are read from;
the next run takes a dead runner's attempts up from the journal), a worktree with work in it, the
logs of a task's latest attempt (or the one its result names), and anything of a task with an
attempt still open or a worktree kept (its work not merged).

The caller holds the workspace lock (no run goes on); ``dry_run`` finds the same, and removes
nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.documents import read_metadata, read_output
from orchestrator.errors import GitError
from orchestrator.plan.config.settings import format_duration
from orchestrator.plan.model import Plan, Task
from orchestrator.state import journal, store
from orchestrator.state.inputs import inputs_dir
from orchestrator.state.kept import cache
from orchestrator.state.results import ResultRecord
from orchestrator.state.workspace import Workspace, result_file_of

_LOG = re.compile(r"^(?P<slug>.+)\.attempt-(?P<attempt>\d+)\.(?P<stream>in|out|err|verify\.out|verify\.err)$")


@dataclass(frozen=True, slots=True)
class Item:
    """One thing removed (or, with ``--dry-run``, that would be)."""

    kind: str  # runner_lock, processes, temp, worktree, log, spawn_log, inputs, cache
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
    _temp_files(workspace, found, dry_run)
    if left.open:
        runner = f"pid {left.runner_pid}" if left.runner_pid else "a runner"
        attempts = ", ".join(f"{o.task} (attempt {o.attempt})" for o in left.every_open())
        found.notes.append(
            f"the dead runner ({runner}) left {attempts} open: the next `orchestrator run` takes them up "
            "(keeps what finished, goes on with the rest)"
        )
    kept = _worktrees(workspace, plan, set(left.open), found, dry_run)
    retention = plan.settings.retention
    if retention is None:
        found.notes.append("logs, inputs and cache entries kept: the plan sets no `retention` (e.g. `retention: 30d`)")
        return found
    old = _Old(workspace, plan, retention, time.time() if now is None else now)
    held = {o.agent.lower() for o in left.open.values()} | {old.slug_of(task) for task in {*left.open, *kept}}
    before = len(found.removed)
    _logs(old, left, found, dry_run)
    _spawn_logs(old, held, found, dry_run)
    _inputs(old, held, found, dry_run)
    _cache(old, found, dry_run)
    if len(found.removed) == before:
        found.notes.append(f"nothing older than {format_duration(retention)} to remove (retention)")
    return found


def _temp_files(workspace: Workspace, found: Sweep, dry_run: bool) -> None:
    """The temp files (and new directories) a writer that is gone left anywhere in the workspace,
    ``worktrees/`` aside (the project's files, checked out)."""
    for directory, subdirectories, _ in os.walk(workspace.root):
        skipped = ("worktrees",) if directory == str(workspace.root) else ()
        subdirectories[:] = [d for d in subdirectories if not d.startswith(store.TEMP_PREFIX) and d not in skipped]
        for leftover in store.leftovers(Path(directory)):
            size = leftover.lstat().st_size if not leftover.is_dir() else 0
            found.removed.append(Item("temp", workspace.relative(leftover) + ("/" if leftover.is_dir() else ""),
                                      None, size))  # fmt: skip
            if not dry_run:
                store.remove_leftover(leftover)


class _Old:
    """What is older than ``retention`` in a workspace, and whose it is."""

    def __init__(self, workspace: Workspace, plan: Plan, retention: float, now: float) -> None:
        self.workspace, self.retention, self.now = workspace, retention, now
        tasks = [*plan.tasks.values(), *(entry.task for entry in plan.archived.values())]
        self.tasks = {task.id: task for task in tasks}
        self.by_slug = {task.slug: task.id for task in tasks}

    def slug_of(self, task_id: str) -> str:
        task = self.tasks.get(task_id)
        return task.slug if task is not None else task_id.lower()

    def age(self, path: Path) -> tuple[bool, int]:
        """Whether ``path`` (a file, or a directory and all under it) was last written longer
        than ``retention`` ago, and its size in bytes."""
        newest, size = 0.0, 0
        for found in _tree(path):
            try:
                stat = found.lstat()
            except OSError:
                continue
            newest, size = max(newest, stat.st_mtime), size + (stat.st_size if found.is_file() else 0)
        return bool(newest) and self.now - newest >= self.retention, size

    def remove(self, found: Sweep, kind: str, path: Path, task: str | None, dry_run: bool) -> None:
        """``path`` removed (listed only, ``dry_run``) if it is old."""
        old, size = self.age(path)
        if not old:
            return
        shown = self.workspace.relative(path) + ("/" if path.is_dir() else "")
        found.removed.append(Item(kind, shown, task, size))
        if dry_run:
            return
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            store.remove(path, durable=False)


def _tree(path: Path) -> Iterator[Path]:
    yield path
    if path.is_dir() and not path.is_symlink():
        yield from path.rglob("*")


def _orphans(workspace: Workspace, plan: Plan, left: journal.JournalState, found: Sweep, dry_run: bool) -> None:
    """The process groups of a dead runner's attempts, stopped as ``run`` stops them."""
    import anyio

    from orchestrator.executors import registry as executors
    from orchestrator.executors.base import Leftover
    from orchestrator.executors.groups import leftover_groups, stop_groups
    from orchestrator.state.procs import process_started

    leftovers = [
        Leftover(
            o.task, o.attempt, o.executor, o.handle, journal.attempt_environment(workspace.root, o.task, o.attempt)
        )
        for o in left.every_open()
        if executors.can(o.executor).runs_here  # (its attempts are process groups here)
    ]
    if not leftovers:
        return
    groups = leftover_groups(leftovers)
    for pgid, task in sorted(groups.items()):
        found.removed.append(Item("processes", f"process group {pgid}, left running by a dead runner", task))
    if groups and not dry_run:
        leaders = {pgid: process_started(pgid) for pgid in groups}
        anyio.run(stop_groups, list(groups), plan.settings.kill_grace, leaders)


def _worktrees(workspace: Workspace, plan: Plan, busy: set[str], found: Sweep, dry_run: bool) -> set[str]:
    """The worktrees ``Trees.prune`` removes; returns the tasks whose worktrees stay (all of them
    when git cannot tell: their work may not be merged)."""
    from orchestrator.git.worktrees import Trees

    if not (workspace.root / "worktrees").is_dir():
        return set()
    try:
        trees = Trees.of(workspace.project_dir, workspace.root, plan.settings.integration_branch)
        pruned = trees.prune(busy, dry_run=dry_run)
    except GitError as exc:
        found.notes.append(f"worktrees left as they are: {exc}")
        return {path.name for path in (workspace.root / "worktrees").iterdir()}
    for tree in pruned.removed:
        found.removed.append(Item("worktree", workspace.relative(tree.path), tree.task, tree.bytes))
    for kept in pruned.kept:
        found.kept.append((workspace.relative(kept.tree.path), kept.why))
    return {kept.tree.task for kept in pruned.kept if kept.tree.task is not None}


def _logs(old: _Old, left: journal.JournalState, found: Sweep, dry_run: bool) -> None:
    """Logs older than ``retention`` of attempts that are not their task's latest."""
    workspace = old.workspace
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
    keep |= {(o.agent.lower(), o.attempt) for o in left.every_open()}
    for slug in logs:
        meta = read_metadata(workspace.results_dir / result_file_of(slug))
        if meta is not None and isinstance(meta.get("attempts"), int):
            keep.add((slug, meta["attempts"]))
    for slug, attempts in sorted(logs.items()):
        for attempt, files in sorted(attempts.items()):
            if (slug, attempt) not in keep:
                for name in sorted(files):
                    old.remove(found, "log", workspace.logs_dir / name, old.by_slug.get(slug), dry_run)


def _spawn_logs(old: _Old, held: set[str], found: Sweep, dry_run: bool) -> None:
    """What ``spawn --detach``'s background runners printed (``logs/<agent>.spawn.log``)."""
    for path in sorted(old.workspace.logs_dir.glob("*.spawn.log")):
        slug = path.name.removesuffix(".spawn.log")
        if slug not in held:
            old.remove(found, "spawn_log", path, old.by_slug.get(slug), dry_run)


def _inputs(old: _Old, held: set[str], found: Sweep, dry_run: bool) -> None:
    """The inputs a task's last attempt read (``state/inputs/<agent>.txt`` and ``<agent>/``):
    its next attempt writes them anew."""
    top = inputs_dir(old.workspace)
    try:
        names = sorted(os.listdir(top))
    except OSError:
        return
    for name in names:
        slug = name.removesuffix(".txt")
        if slug not in held and not name.startswith("."):  # (a temporary file being written)
            old.remove(found, "inputs", top / name, old.by_slug.get(slug), dry_run)


def _cache(old: _Old, found: Sweep, dry_run: bool) -> None:
    """Cache entries but the one each task's current result came from (``reuse.came_from``): a
    run that would look it up finds it still. A task no longer in the plan has no current result
    to keep an entry for."""
    from orchestrator.run.resume.reuse import came_from

    top = cache.directory(old.workspace)
    try:
        names = sorted(os.listdir(top))
    except OSError:
        return
    owners = {cache.task_directory(old.workspace, task_id).name: task_id for task_id in old.tasks}
    for name in names:
        task_id = owners.get(name)
        current = _result(old.workspace, old.tasks[task_id]) if task_id is not None else None
        for path in sorted((top / name).glob("*.md")):
            if not cache.is_key(path.stem):  # (not a file a run wrote, nor would look up)
                continue
            entry = cache.find(old.workspace, task_id, path.stem) if task_id is not None else None
            if current is None or entry is None or not came_from(current, entry):
                old.remove(found, "cache", path, task_id, dry_run)


def _result(workspace: Workspace, task: Task) -> tuple[ResultRecord, str] | None:
    """Its current result: its record, and its output as the cache's entries give theirs (``cache.find``)."""
    path = workspace.result(task)
    meta, body = read_metadata(path), read_output(path)
    record = ResultRecord.from_mapping(meta) if meta is not None else None
    return (record, body) if body is not None and record is not None else None


def stale_pid(workspace: Workspace) -> int | None:
    """The pid ``state/runner.lock`` holds: a dead runner's, once the lock could be taken (a
    holder that let go of it properly leaves the file empty)."""
    try:
        text = workspace.lock_file.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isascii() and text.isdigit() else None
