"""What state each task is in, read from the workspace files (results and the attempt journal)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.plan.parser import Plan
from orchestrator.state import journal
from orchestrator.state.workspace import Workspace
from orchestrator.state.yamlout import load_simple, safe_load

PENDING, WAITING, RUNNING, RETRYING = "pending", "waiting", "running", "retrying"
COMPLETED, FAILED, SKIPPED, INTERRUPTED = "completed", "failed", "skipped", "interrupted"
STATES = (PENDING, WAITING, RUNNING, RETRYING, COMPLETED, FAILED, SKIPPED, INTERRUPTED)
ICONS = {
    PENDING: "🟡",
    WAITING: "⏸️",
    RUNNING: "🔵",
    RETRYING: "🔄",
    COMPLETED: "✅",
    FAILED: "❌",
    SKIPPED: "⏭️",
    INTERRUPTED: "⏹️",
}


def label(state: str) -> str:
    """``"completed"`` -> ``"✅ Completed"``."""
    return f"{ICONS.get(state, '?')} {state.capitalize()}"


@dataclass(slots=True)
class TaskView:
    """One task's state as a person (or ``--json``) sees it."""

    id: str
    agent: str
    name: str
    status: str
    dependencies: list[str]
    priority: str
    started: str | None = None
    finished: str | None = None
    duration: float | None = None
    attempts: int = 0
    reason: str | None = None
    backend: str | None = None
    cost_usd: float | None = None
    tokens: int | None = None
    session_id: str | None = None
    fingerprint: str | None = None
    result_file: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("fingerprint")
        data.pop("extra")
        return data


def read_metadata(path: Path) -> dict[str, Any] | None:
    """Only the frontmatter of a result file: a result body may be many megabytes of output."""
    try:
        with path.open("r", encoding="utf-8") as handle:
            if handle.readline().strip() != "---":
                return None
            lines: list[str] = []
            for line in handle:
                if line.rstrip("\r\n") == "---":
                    break
                lines.append(line)
            else:
                return None
    except (OSError, UnicodeDecodeError):
        return None
    fast = load_simple(lines)  # what we wrote ourselves, read without PyYAML
    if fast is not None:
        return fast
    import yaml  # only for a file edited by hand: importing PyYAML costs as much as the rest of status

    try:
        data = safe_load("".join(lines))
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _iso(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def collect(plan: Plan, workspace: Workspace) -> list[TaskView]:
    """The state of every task, in table order.

    A result file decides completed/failed/skipped/interrupted; an attempt the journal has open
    means running while its runner is alive (retrying while it waits for a backoff), interrupted
    once the runner is gone; otherwise a task is pending when its dependencies are completed and
    waiting when they are not.
    """
    views: dict[str, TaskView] = {}
    # Names are compared as strings: building two Path objects per task costs more than the rest.
    results = set(_names(workspace.results_dir))
    attempts = journal.read(workspace.journal_file)
    runner_alive = attempts.runner_pid is not None and pid_alive(attempts.runner_pid)
    for task in plan.tasks.values():
        view = TaskView(task.id, task.agent, task.title, PENDING, list(task.dependencies), task.priority_name)
        slug = task.slug
        meta = None
        if f"{slug}-result.md" in results:
            result_path = workspace.result(task)
            meta = read_metadata(result_path)
        if meta is not None:
            view.status = str(meta.get("status", FAILED))
            view.started = _iso(meta.get("started"))
            view.finished = _iso(meta.get("finished"))
            duration = meta.get("duration")
            view.duration = float(duration) if isinstance(duration, int | float) else None
            view.attempts = int(meta.get("attempts") or 0)
            view.reason = meta.get("reason")
            view.backend = meta.get("backend")
            cost = meta.get("cost_usd")
            view.cost_usd = float(cost) if isinstance(cost, int | float) else None
            tokens = meta.get("tokens")
            if isinstance(tokens, dict):
                view.tokens = sum(int(v) for v in tokens.values() if isinstance(v, int))
            elif isinstance(tokens, int):
                view.tokens = tokens
            view.session_id = meta.get("session_id")
            view.fingerprint = meta.get("fingerprint")
            view.result_file = workspace.result_name(task)
        attempt = attempts.open.get(task.id)
        if attempt is not None:
            if runner_alive:
                view.status = RUNNING
                view.started = attempt.started
                view.attempts = attempt.attempt
            else:
                view.status = INTERRUPTED
                view.reason = f"runner (pid {attempts.runner_pid}) is gone; attempt left behind"
        elif runner_alive and task.id in attempts.retrying:
            view.status = RETRYING
        views[task.id] = view
    for view in views.values():
        if view.status == PENDING and any(views[d].status != COMPLETED for d in view.dependencies):
            view.status = WAITING
    return list(views.values())


def _names(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError:
        return []


def counts(views: list[TaskView]) -> dict[str, int]:
    found = {state: 0 for state in STATES}
    for view in views:
        found[view.status] = found.get(view.status, 0) + 1
    return found
