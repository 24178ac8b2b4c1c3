"""What state each task is in, read from the workspace files (results and running markers)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from .plan import Plan
from .workspace import Workspace
from .yamlout import load_simple

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

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
    try:
        data = yaml.load("".join(lines), Loader=_YAML_LOADER)
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


def read_running(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _iso(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def collect(plan: Plan, workspace: Workspace) -> list[TaskView]:
    """The state of every task, in table order.

    A result file decides completed/failed/skipped/interrupted; a running marker whose runner is
    alive means running; otherwise a task is pending when its dependencies are completed and
    waiting when they are not.
    """
    views: dict[str, TaskView] = {}
    # Names are compared as strings: building two Path objects per task costs more than the rest.
    results = set(_names(workspace.results_dir))
    running = set(_names(workspace.state_dir))
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
        marker = read_running(workspace.running(task)) if f"{slug}.running.json" in running else None
        if marker is not None:
            if pid_alive(int(marker.get("runner_pid", 0))):
                view.status = RETRYING if marker.get("retrying") else RUNNING
                view.started = _iso(marker.get("started"))
                view.attempts = int(marker.get("attempt", 1))
            else:
                view.status = INTERRUPTED
                view.reason = f"runner (pid {marker.get('runner_pid')}) is gone; attempt left behind"
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
