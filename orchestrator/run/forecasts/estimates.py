"""What a task will take, learned from the runs before (``state/kept/history``), and what that says
of the run's end: ``status`` and ``status --json``'s ``eta``, and the order a run starts its
ready tasks in (``Scheduler``: the longest remaining path of these estimates first).

A task's estimate is, first found: the median of its own completed attempts made with the brief
and settings it has now (``source`` ``history``); of its own completed attempts under another
brief (``task``: last night's batch); of the tasks of its kind, its type, else its profile and backend, else its backend
(``kind``: each attempt counted as its ``task_started`` says it ran, a task gone from the plan
too); its plan row's ``Estimate`` cell (``plan``); else ``DEFAULT_SECONDS`` (``default``).
What the tasks left cost is the spend forecast's (``run/forecasts/spend``: its p50s, the one
source of an expected cost). The time left is the longer of the
heaviest remaining chain of estimates and the remaining work spread over ``max_parallel`` slots
(a running task counts what its estimate says is left of it).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchestrator.output.tasktable import ends_at
from orchestrator.plan.graph import heaviest_up_to
from orchestrator.plan.model import Plan, Task
from orchestrator.state.events import EventRecord
from orchestrator.state.kept.history import ended, seconds
from orchestrator.state.status import TaskView
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import TaskStatus

DEFAULT_SECONDS = 60.0  # a task with no history, none of its kind, and no Estimate cell
_LEFT = (TaskStatus.PENDING, TaskStatus.WAITING, TaskStatus.RUNNING, TaskStatus.RETRYING)
_HELD = (TaskStatus.AWAITING_APPROVAL, TaskStatus.BLOCKED)  # a person's word starts them


@dataclass(frozen=True, slots=True)
class Estimate:
    seconds: float
    source: str  # "history", "task", "kind", "plan" or "default"


def _middle(values: list[float]) -> float:
    """The median of ``values``: ``statistics`` imported when a run's history gives one (``status``
    of a plan never run needs it not)."""
    import statistics

    return statistics.median(values)


def _median(values: list[float] | None) -> float | None:
    return _middle(values) if values else None


def learn(
    all_events: Iterable[EventRecord],
    kinds: Mapping[str, str],
    *,
    briefs: Mapping[str, str] | None = None,
    given: Mapping[str, float] | None = None,
) -> dict[str, Estimate]:
    """Each task of ``kinds`` (task id -> its kind)'s estimate, from the event log's attempts (an
    attempt of the tasks of a kind is one whose ``task_started`` says so; one of a log from before
    it did, of a task ``kinds`` gives that kind);
    ``briefs``: each task's brief fingerprint now (its own history under it comes first);
    ``given``: the plan's Estimate cells."""
    took: dict[tuple[str, str | None], list[float]] = defaultdict(list)  # (task, brief) -> seconds
    of_kind: dict[tuple[str, str], list[float]] = defaultdict(list)  # (kind, task) -> seconds
    for attempt in ended(all_events):
        if attempt["outcome"] != "completed" or attempt.get("simulated"):
            continue
        key = (attempt["task"], attempt.get("brief"))
        # The kind its task_started recorded (a task gone from the plan, an attempt on a fallback
        # backend counted as what it was); a log from before that said it: the plan's.
        kind = attempt.get("kind") or kinds.get(attempt["task"])
        duration = seconds(attempt)
        if duration is not None:
            took[key].append(duration)
            if kind:
                of_kind[(kind, attempt["task"])].append(duration)
    any_took: dict[str, list[float]] = defaultdict(list)  # task -> seconds, whatever its brief
    for (task, _), durations in took.items():
        any_took[task] += durations
    by_kind: dict[str, list[float]] = defaultdict(list)  # kind -> the median of each of its tasks
    for (kind, _), durations in of_kind.items():
        by_kind[kind].append(_middle(durations))
    briefs, given = briefs or {}, given or {}
    by_row: dict[str, list[float]] = defaultdict(list)  # a row run per item -> its items' durations
    for (task, _), durations in took.items():
        if "[" in task:
            by_row[task.partition("[")[0]] += durations
    found: dict[str, Estimate] = {}
    for task, kind in kinds.items():
        own = (task, briefs.get(task)) if briefs.get(task) else None
        if own is not None and took.get(own):
            guess = Estimate(_middle(took[own]), "history")
        elif any_took.get(task):
            guess = Estimate(_middle(any_took[task]), "task")
        elif by_row.get(task):  # (a row: what one of its items takes, ``eta`` counts its items left)
            guess = Estimate(_middle(by_row[task]), "task")
        elif by_kind.get(kind):
            guess = Estimate(_middle(by_kind[kind]), "kind")
        elif given.get(task):
            guess = Estimate(given[task], "plan")
        else:
            guess = Estimate(DEFAULT_SECONDS, "default")
        found[task] = guess
    return found


def for_run(plan: Plan, workspace: Workspace, briefs: Mapping[str, str]) -> dict[str, Estimate]:
    """The estimates of a run's tasks, learned once as the run starts: what its ready queue orders
    by. ``briefs``: the brief key of each task it runs (``run/resume/selection.brief_keys``)."""
    from orchestrator.state import events

    given = {t.id: t.estimate for t in plan.tasks.values() if t.estimate}
    return learn(events.each(workspace.events_file), kinds_of(plan, workspace), briefs=briefs, given=given)


def eta(
    plan: Plan,
    views: Iterable[TaskView],
    estimates: Mapping[str, Estimate],
    max_parallel: int,
    now: float | None = None,
    costs: Mapping[str, float] | None = None,
    items_left: Mapping[str, int] | None = None,
) -> dict[str, Any] | None:
    """``status --json``'s ``eta``: ``seconds_left``, ``expected_end`` (ISO), ``expected_cost``
    (what ``costs``, each task's forecast p50, says of the tasks left; ``None`` when none of them has
    one), ``tasks_left``, and how many estimates are learned; ``None`` when nothing is left to do.
    ``items_left``: a row run per item -> its items not done: the row weighs them all (its estimate
    is one item's), spread over ``max_parallel`` slots, not one task of one item's length."""
    now = time.time() if now is None else now
    left: dict[str, float] = {}
    extra = 0.0  # the work of a row's items beyond what its place in the chain weighs
    for view in views:
        if view.status not in _LEFT:
            continue
        guess = estimates[view.id].seconds if view.id in estimates else DEFAULT_SECONDS
        items = (items_left or {}).get(view.id, 0)
        if items > 1:  # (a row: its items in waves of max_parallel along the chain, all of them in the work)
            waves = -(-items // max(1, max_parallel))
            left[view.id] = guess * waves
            extra += guess * items - guess * waves
            continue
        if view.status == TaskStatus.RUNNING and view.started:
            ran = now - datetime.fromisoformat(view.started).timestamp()
            guess = max(guess - ran, 0.05 * guess)
        left[view.id] = guess
    if not left:
        return None
    chain = max(heaviest_up_to(dependencies(plan), left).values())
    seconds_left = max(chain, (sum(left.values()) + extra) / max(1, max_parallel))
    spent = [costs[t] for t in left if t in costs] if costs else []
    return {
        "seconds_left": round(seconds_left, 1),
        "expected_end": ends_at(seconds_left, now),
        "expected_cost": round(sum(spent), 6) if spent else None,
        "tasks_left": len(left),
        "learned": sum(1 for t in left if t in estimates and estimates[t].source not in ("default", "plan")),
        "given": sum(1 for t in left if t in estimates and estimates[t].source == "plan"),
    }


def known(found: Mapping[str, Any] | None) -> bool:
    """Whether an ``eta`` says anything: some task left has an estimate learned from the runs
    before, or an Estimate cell. One made of the 60 s defaults alone is no estimate, and no view
    shows it (``status``, ``--json``'s ``eta``, the live view, ``watch``, the dashboard)."""
    return found is not None and bool(found["learned"] or found["given"])


def workspace_eta(
    plan: Plan, workspace: Workspace, views: list[TaskView], costs: Mapping[str, float] | None = None
) -> dict[str, Any] | None:
    """When the work left should be done, and what it should cost (``costs``: each task's forecast
    p50), from the runs before: ``None`` with nothing left, or while no task left has a learned
    estimate or an Estimate cell (``known``)."""
    from orchestrator.state import events

    if not any(v.status in (TaskStatus.PENDING, TaskStatus.WAITING, TaskStatus.RUNNING) for v in views):
        return None
    given = {t.id: t.estimate for t in plan.tasks.values() if t.estimate}
    left = {v.id for v in views if v.status in _LEFT}
    if not events.size(workspace.events_file) and not left & given.keys():
        return None  # nothing learned, nothing given: no estimate (and no time spent finding so)
    learned = learn(events.each(workspace.events_file), kinds_of(plan, workspace), given=given)
    found = eta(plan, views, learned, plan.settings.max_parallel, costs=costs, items_left=items_left(plan, workspace))
    if found is None or not known(found):
        return None
    # A task at its gate, or held by its Blocked cell, waits for a person: no clock says when
    # the work after it ends, so the end is not told as if it ran on.
    found["waits_for"] = sorted(v.id for v in views if v.status in _HELD)
    return found


def items_left(plan: Plan, workspace: Workspace) -> dict[str, int]:
    """Each row run per item -> its items not done yet, as the run's summary of it says (all of
    them, when its list is known and no run wrote a summary)."""
    from orchestrator.state.items import summary_of

    found: dict[str, int] = {}
    for task in plan.tasks.values():
        if task.each is None:
            continue
        summary = summary_of(workspace, task.id)
        if summary is not None:
            ended = sum(
                n for state, n in summary.counts.items() if state in ("completed", "failed", "skipped", "cancelled")
            )
            found[task.id] = max(0, summary.total - ended)
        elif (listed := task.each.known_now()) is not None:
            found[task.id] = len(listed)
    return found


def dependencies(plan: Plan) -> dict[str, tuple[str, ...]]:
    """Each task's dependencies in the plan, for ``heaviest_up_to``: no networkx graph is built."""
    return {task.id: task.dependencies for task in plan.tasks.values()}


def kinds_of(plan: Plan, workspace: Workspace) -> dict[str, str]:
    """Each task's kind, for what a task with no history of its own is estimated from: its type,
    else its profile (or assignee label) and backend (``reviewer on claude``), else its backend."""
    from orchestrator.errors import OrchestratorError
    from orchestrator.plan.config.profiles import Profiles

    profiles = Profiles(workspace)
    kinds: dict[str, str] = {}
    for task in plan.tasks.values():
        try:
            kinds[task.id] = kind_of(task, profiles.settings_for(plan, task).backend)
        except OrchestratorError:
            kinds[task.id] = "?"
    return kinds


def kind_of(task: Task, backend: str) -> str:
    """``task``'s kind when it runs on ``backend``: its type, else its profile (or assignee label)
    and backend, else its backend. An attempt's ``task_started`` records it (``kind``)."""
    return task.type or (f"{task.profile} on {backend}" if task.profile else backend)
