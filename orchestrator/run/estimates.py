"""What a task will take, learned from the runs before (``state.history``), and what that says
of the run's end: ``status`` and ``status --json``'s ``eta``.

A task's estimate is the median of its own completed attempts' durations (and costs); with no
history of its own, the median of the tasks of its kind (its type, else its backend); with none
at all, ``DEFAULT_SECONDS``. The time left is the longer of the heaviest remaining chain of
estimates and the remaining work spread over ``max_parallel`` slots (a running task counts what
its estimate says is left of it).
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchestrator.plan.graph import remaining_path
from orchestrator.plan.model import Plan
from orchestrator.plan.settings import format_duration
from orchestrator.state.history import attempts_of, seconds
from orchestrator.state.status import TaskView
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import TaskStatus

DEFAULT_SECONDS = 60.0  # a task with no history, and no task of its kind with any
_LEFT = (TaskStatus.PENDING, TaskStatus.WAITING, TaskStatus.RUNNING, TaskStatus.RETRYING)


@dataclass(frozen=True, slots=True)
class Estimate:
    seconds: float
    cost_usd: float | None
    source: str  # "history", "kind" or "default"


def learn(all_events: Iterable[dict[str, Any]], kinds: Mapping[str, str]) -> dict[str, Estimate]:
    """Each task of ``kinds`` (task id -> its kind)'s estimate, from the event log's attempts."""
    took: dict[str, list[float]] = defaultdict(list)
    cost: dict[str, list[float]] = defaultdict(list)
    for attempt in attempts_of(list(all_events)):
        if attempt["outcome"] != "completed" or attempt.get("simulated"):
            continue
        duration = seconds(attempt)
        if duration is not None:
            took[attempt["task"]].append(duration)
        if attempt.get("cost_usd") is not None:
            cost[attempt["task"]].append(float(attempt["cost_usd"]))
    by_kind: dict[str, list[float]] = defaultdict(list)
    kind_cost: dict[str, list[float]] = defaultdict(list)
    for task, kind in kinds.items():
        if took.get(task):
            by_kind[kind].append(statistics.median(took[task]))
        if cost.get(task):
            kind_cost[kind].append(statistics.median(cost[task]))
    found: dict[str, Estimate] = {}
    for task, kind in kinds.items():
        own_cost = statistics.median(cost[task]) if cost.get(task) else None
        if took.get(task):
            found[task] = Estimate(statistics.median(took[task]), own_cost, "history")
        elif by_kind.get(kind):
            guess = statistics.median(kind_cost[kind]) if kind_cost.get(kind) else None
            found[task] = Estimate(statistics.median(by_kind[kind]), guess, "kind")
        else:
            found[task] = Estimate(DEFAULT_SECONDS, None, "default")
    return found


def eta(
    plan: Plan,
    views: Iterable[TaskView],
    estimates: Mapping[str, Estimate],
    max_parallel: int,
    now: float | None = None,
) -> dict[str, Any] | None:
    """``status --json``'s ``eta``: ``seconds_left``, ``expected_end`` (ISO), ``expected_cost``
    (``None`` when no task left has a cost history), ``tasks_left``, and how many estimates are
    learned; ``None`` when nothing is left to do."""
    now = time.time() if now is None else now
    left: dict[str, float] = {}
    for view in views:
        if view.status not in _LEFT:
            continue
        guess = estimates[view.id].seconds if view.id in estimates else DEFAULT_SECONDS
        if view.status == TaskStatus.RUNNING and view.started:
            ran = now - datetime.fromisoformat(view.started).timestamp()
            guess = max(guess - ran, 0.05 * guess)
        left[view.id] = guess
    if not left:
        return None
    chain = max(remaining_path(plan.graph, left, within=left).values())
    seconds_left = max(chain, sum(left.values()) / max(1, max_parallel))
    costs = [estimates[t].cost_usd for t in left if t in estimates and estimates[t].cost_usd is not None]
    return {
        "seconds_left": round(seconds_left, 1),
        "expected_end": datetime.fromtimestamp(now + seconds_left).astimezone().isoformat(timespec="seconds"),
        "expected_cost": round(sum(c for c in costs if c is not None), 6) if costs else None,
        "tasks_left": len(left),
        "learned": sum(1 for t in left if t in estimates and estimates[t].source != "default"),
    }


def workspace_eta(plan: Plan, workspace: Workspace, views: list[TaskView]) -> dict[str, Any] | None:
    """When the work left should be done, and what it should cost, from the runs before."""
    from orchestrator.errors import OrchestratorError
    from orchestrator.plan.profiles import Profiles
    from orchestrator.state import events

    if not any(v.status in (TaskStatus.PENDING, TaskStatus.WAITING, TaskStatus.RUNNING) for v in views):
        return None
    profiles = Profiles(workspace)
    try:
        kinds = {
            t.id: str(getattr(t, "type", None) or profiles.settings_for(plan, t).backend) for t in plan.tasks.values()
        }
    except OrchestratorError:
        kinds = {t.id: "?" for t in plan.tasks.values()}
    return eta(plan, views, learn(events.read_all(workspace.events_file), kinds), plan.settings.max_parallel)


def kinds_of(plan: Plan, workspace: Workspace) -> dict[str, str]:
    """Each task's kind, for what a task with no history of its own is estimated from: its type,
    else its backend."""
    from orchestrator.errors import OrchestratorError
    from orchestrator.plan.profiles import Profiles

    profiles = Profiles(workspace)
    kinds: dict[str, str] = {}
    for task in plan.tasks.values():
        try:
            kinds[task.id] = str(getattr(task, "type", None) or profiles.settings_for(plan, task).backend)
        except OrchestratorError:
            kinds[task.id] = "?"
    return kinds


def eta_line(found: dict[str, Any]) -> str:
    cost = f", expected cost ${found['expected_cost']:.4f}" if found["expected_cost"] is not None else ""
    end = found["expected_end"][11:16]
    learned = f"{found['learned']} of {found['tasks_left']} tasks' estimates learned from earlier runs"
    return f"Estimated: {format_duration(found['seconds_left'])} left (ends about {end}){cost}; {learned}"
