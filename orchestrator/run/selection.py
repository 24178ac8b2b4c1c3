"""Resume: which tasks are already done (same inputs, completed result) and what must run again.

A task's fingerprint covers its brief as it is on disk (hand edits included), the settings that
change what it does, and for each dependency that dependency's fingerprint and output hash. A
completed result whose fingerprint still matches is kept; anything else runs, and so does
everything downstream of it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import UsageError
from orchestrator.executors.process import any_member_since, group_alive, groups_with_environment, stop_group
from orchestrator.plan.parser import Plan
from orchestrator.plan.settings import Settings
from orchestrator.state import journal, store
from orchestrator.state.status import COMPLETED, read_metadata
from orchestrator.state.workspace import Workspace

# Settings that change what a task does (a new timeout or retry count does not).
_FINGERPRINT_SETTINGS = (
    "backend",
    "command",
    "cwd",
    "env",
    "model",
    "max_turns",
    "permission_mode",
    "allowed_tools",
    "append_system_prompt",
)


def settings_signature(settings: Settings, extra: str = "") -> str:
    data = {name: getattr(settings, name) for name in _FINGERPRINT_SETTINGS}
    return json.dumps(data, sort_keys=True, default=list) + extra


def fingerprint(brief: str, signature: str, upstream: list[tuple[str, Any, Any]]) -> str:
    payload = json.dumps([brief, signature, sorted(upstream, key=lambda u: u[0])], default=str)
    return store.sha256(payload)[:16]


@dataclass(slots=True)
class Selection:
    run: list[str]  # in table order
    done: set[str]  # completed and up to date
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # metadata of existing results


def read_results(plan: Plan, workspace: Workspace, present: set[str]) -> dict[str, dict[str, Any]]:
    """The metadata of each task's result file; ``present``: the names in results/ (the runner
    has just listed it)."""
    found: dict[str, dict[str, Any]] = {}
    for task in plan.tasks.values():
        path = workspace.result(task)
        if path.name in present:
            meta = read_metadata(path)
            if meta is not None:
                found[task.id] = meta
    return found


def select(
    plan: Plan,
    order: list[str],
    expected: dict[str, str],
    results: dict[str, dict[str, Any]],
    *,
    only: list[str] | None = None,
    rerun: list[str] | None = None,
) -> Selection:
    """What this run must do. ``order`` is a topological order; ``expected`` the fingerprints now."""
    done: set[str] = set()
    for task_id in order:
        meta = results.get(task_id)
        if (
            meta is not None
            and meta.get("status") == COMPLETED
            and meta.get("fingerprint") == expected.get(task_id)
            and all(dep in done for dep in plan.tasks[task_id].dependencies)
        ):
            done.add(task_id)
    if only:
        unknown = [t for t in only if t not in plan.tasks]
        if unknown:
            raise UsageError(f"--only: no task {', '.join(unknown)} in the plan")
        for task_id in only:
            missing = [d for d in plan.tasks[task_id].dependencies if results.get(d, {}).get("status") != COMPLETED]
            if missing:
                raise UsageError(
                    f"--only {task_id}: its dependencies {', '.join(missing)} are not completed — "
                    f"run them first (orchestrator run), or drop --only"
                )
        # The named tasks run; what they depend on counts as done as long as it completed.
        completed = {t for t, m in results.items() if m.get("status") == COMPLETED}
        return Selection([t for t in plan.tasks if t in only], (completed | done) - set(only), results)
    if rerun:
        unknown = [t for t in rerun if t not in plan.tasks]
        if unknown:
            raise UsageError(f"--rerun: no task {', '.join(unknown)} in the plan")
        for task_id in rerun:
            done -= {task_id} | plan.downstream(task_id)
    return Selection([t for t in plan.tasks if t not in done], done, results)


def expected_fingerprints(
    plan: Plan, order: list[str], briefs: dict[str, str], signatures: dict[str, str], results: dict[str, dict[str, Any]]
) -> dict[str, str]:
    """Fingerprints the tasks with a completed result would have if run now against the results on
    disk: what tells whether that result is still up to date. A task with no completed result runs
    anyway, and hashing its brief for nothing cost a fresh 1,000-task run 30 ms."""
    expected: dict[str, str] = {}
    for task_id in order:
        meta = results.get(task_id)
        if meta is None or meta.get("status") != COMPLETED:
            continue
        upstream = upstream_of(plan.tasks[task_id].dependencies, results)
        expected[task_id] = fingerprint(briefs[task_id], signatures[task_id], upstream)
    return expected


def upstream_of(dependencies: Iterable[str], results: dict[str, dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    """What a task's fingerprint takes from its dependencies: each one's fingerprint and output hash."""
    return [(d, results.get(d, {}).get("fingerprint"), results.get(d, {}).get("output_hash")) for d in dependencies]


# --- attempts a dead runner left behind -------------------------------------------------------


@dataclass(slots=True)
class Orphan:
    task: str
    pgid: int
    alive: bool
    session_id: str | None
    pgid_start: int | None = None  # <= the leader's start (ticks since boot): older members do not count

    def running(self) -> bool:
        """Whether the attempt's process group still runs (not a reused id, not only zombies)."""
        return self.pgid > 0 and group_alive(self.pgid) and any_member_since(self.pgid, self.pgid_start)


def find_orphans(workspace: Workspace) -> list[Orphan]:
    """Every attempt the journal has open, for a runner that holds the workspace lock; ``alive``
    when its process group still runs.

    Holding the lock means no other runner is alive, so each open attempt was left by a dead one
    — whatever process has its runner's pid now (pids are reused, soon in a container).
    """
    orphans: list[Orphan] = []
    for attempt in journal.read(workspace.journal_file).open.values():
        found = [Orphan(attempt.task, attempt.pgid, False, attempt.session_id, attempt.pgid_start)]
        if attempt.pgid == 0:  # killed while spawning it: its processes say which attempt they are
            marks = journal.attempt_environment(workspace.root, attempt.task, attempt.attempt)
            groups = groups_with_environment(marks)
            found = [Orphan(attempt.task, pgid, False, attempt.session_id) for pgid in sorted(groups)] or found
        for orphan in found:
            orphan.alive = orphan.running()
            orphans.append(orphan)
    return orphans


async def settle_orphans(workspace: Workspace, *, wait: bool, grace: float) -> list[Orphan]:
    """Stop (or wait for) attempts a dead runner left running. The caller then starts the journal
    afresh (``Journal.begin``), which forgets them.

    Call it holding the workspace lock (see ``find_orphans``).
    """
    import asyncio  # here: the commands that import this module for the rest run no event loop

    orphans = find_orphans(workspace)
    for orphan in orphans:
        if orphan.alive:
            if wait:
                while orphan.running():
                    await asyncio.sleep(0.2)
            else:
                await stop_group(orphan.pgid, grace)
    return orphans
