"""Deadlines (``plan/table/deadlines``): which the estimates say a task or the run will miss, before it
does, and which were missed. ``status`` and ``check`` say so; a run tells it once of each
(``deadline_at_risk``, ``deadline_missed``: events a notification can be sent for).

A task will miss its deadline when now plus the heaviest chain of estimates of the work left up
to it (what it waits for, and itself: a running task counts what is left of it) ends after it;
it has missed it when it completed after it, or is not done and the deadline has passed. The
run: its expected end (``estimates.eta``) against ``deadline:``, and once finished its end. A
deadline given as a duration counts from the start of the last run (none started: not judged).
Only estimates say a deadline is at risk: while no task of a task's chain (for the run: no task
left) has one learned or given, the 60 s defaults say nothing, as ``eta`` is not shown then; a
missed deadline is a fact, said always.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from orchestrator.plan.graph import heaviest_up_to
from orchestrator.plan.model import Plan
from orchestrator.plan.table.deadlines import Deadline
from orchestrator.plan.table.times import iso
from orchestrator.run.forecasts.estimates import DEFAULT_SECONDS, Estimate, dependencies, eta, kinds_of, known, learn
from orchestrator.state.status import TaskView
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import TaskStatus

_LEFT = (TaskStatus.PENDING, TaskStatus.WAITING, TaskStatus.RUNNING, TaskStatus.RETRYING)
RUN = "run"  # what a verdict on the run's own deadline names as its task


def _at(moment: str | None) -> float | None:
    try:
        return datetime.fromisoformat(moment).timestamp() if moment else None
    except ValueError:
        return None


def verdicts(
    plan: Plan,
    views: Iterable[TaskView],
    estimates: Mapping[str, Estimate],
    max_parallel: int,
    run_started: float | None,
    run_finished: float | None = None,
    now: float | None = None,
) -> list[dict[str, Any]]:
    """Each deadline missed or expected to be: ``{"task" (``RUN`` for the run's), "deadline" (ISO),
    "state": "at_risk" | "missed", "expected_end" (ISO, for one at risk; when it ended, for a
    task that completed late)}``, in table order, the run's last."""
    now = time.time() if now is None else now
    views = list(views)
    left: dict[str, float] = {}
    for view in views:
        if view.status in _LEFT:
            guess = estimates[view.id].seconds if view.id in estimates else DEFAULT_SECONDS
            if view.status == TaskStatus.RUNNING and _at(view.started) is not None:
                guess = max(guess - (now - (_at(view.started) or now)), 0.05 * guess)
            left[view.id] = guess
    up_to: dict[str, float] = {}
    sure: dict[str, float] = {}  # > 0: a task of its chain has an estimate learned or given
    if left and any(plan.tasks[t].deadline for t in left if t in plan.tasks):
        needs = dependencies(plan)
        up_to = heaviest_up_to(needs, left)  # (its chain up to it)
        sure = heaviest_up_to(needs, {t: float(_known(estimates, t)) for t in left})
    found: list[dict[str, Any]] = []
    for view in views:
        task = plan.tasks.get(view.id)
        due = task.deadline.moment(run_started) if task is not None and task.deadline else None
        if due is None or task is None or task.deadline is None:
            continue
        found += _judge(view.id, task.deadline, due, view, up_to.get(view.id), now, sure.get(view.id, 0.0) > 0)
    deadline = plan.settings.deadline
    due = deadline.moment(run_started) if deadline is not None else None
    if deadline is not None and due is not None:
        if left:
            expected = eta(plan, views, estimates, max_parallel, now)
            seconds = float(expected["seconds_left"]) if expected else 0.0
            found += _verdict(RUN, deadline, due, now + seconds, now, done=False, sure=known(expected))
        elif run_finished is not None:
            found += _verdict(RUN, deadline, due, run_finished, now, done=True)
    return found


def _known(estimates: Mapping[str, Estimate], task: str) -> bool:
    """Whether ``task``'s estimate is learned or given: the 60 s default is no estimate."""
    return task in estimates and estimates[task].source != "default"


def _judge(
    task: str, deadline: Deadline, due: float, view: TaskView, chain: float | None, now: float, sure: bool
) -> list[dict[str, Any]]:
    if view.status == TaskStatus.COMPLETED:
        ended = _at(view.finished)
        return _verdict(task, deadline, due, ended, now, done=True) if ended is not None else []
    if chain is not None:  # still to do
        return _verdict(task, deadline, due, now + chain, now, done=False, sure=sure)
    return _verdict(task, deadline, due, None, now, done=False)  # failed, skipped: missed once it passes


def _verdict(
    task: str, deadline: Deadline, due: float, end: float | None, now: float, *, done: bool, sure: bool = False
) -> list[dict[str, Any]]:
    """``sure``: the expected ``end`` rests on an estimate learned or given, not on the defaults
    alone: only then is a deadline said to be at risk (a missed one is a fact, said always)."""
    shown = {"task": task, "deadline": iso(due), "written": deadline.text, "done": done}
    if done:
        return [{**shown, "state": "missed", "expected_end": iso(end)}] if end is not None and end > due else []
    if now > due:
        return [{**shown, "state": "missed", "expected_end": iso(end) if end is not None else None}]
    if sure and end is not None and end > due:
        return [{**shown, "state": "at_risk", "expected_end": iso(end)}]
    return []


def deadline_line(verdict: Mapping[str, Any]) -> str:
    """How ``status``, ``check`` and the run say a verdict: its times to the minute, or to the
    second where the deadline is seconds away from the end (``30s`` after the run's start)."""
    who = "the run" if verdict["task"] == RUN else str(verdict["task"])
    due, end = _clocks(str(verdict["deadline"]), verdict.get("expected_end"))
    if verdict["state"] == "at_risk":
        return f"⏰ {who} will miss its deadline {due} ({verdict['written']}): expected about {end}"
    if verdict.get("done"):
        return f"⏰ {who} missed its deadline {due} ({verdict['written']}): ended {end}"
    return f"⏰ {who} missed its deadline {due} ({verdict['written']}): not done yet"


_SECONDS_AWAY = 600  # a deadline and an end closer than this are told to the second


def _clocks(deadline: str, end: object) -> tuple[str, str]:
    """The deadline and the (expected) end as a clock says them: ``HH:MM``, or ``HH:MM:SS`` when
    the end (or, with none, now) is within ten minutes of the deadline (``14:05`` and ``14:05``
    said nothing of a deadline 20 seconds missed)."""
    due = datetime.fromisoformat(deadline)
    then = datetime.fromisoformat(end) if isinstance(end, str) and end else None
    away = (then.timestamp() if then is not None else time.time()) - due.timestamp()
    shape = "%H:%M:%S" if abs(away) < _SECONDS_AWAY else "%H:%M"
    return due.strftime(shape), then.strftime(shape) if then is not None else ""


def any_deadline(plan: Plan) -> bool:
    return plan.settings.deadline is not None or any(t.deadline is not None for t in plan.tasks.values())


def workspace_verdicts(plan: Plan, workspace: Workspace, views: list[TaskView]) -> list[dict[str, Any]]:
    """``verdicts`` as ``status`` and ``check`` give them: the estimates learned from the event
    log, a duration counted from the last run's start."""
    from orchestrator.state import events

    if not any_deadline(plan):
        return []
    from orchestrator.state.events.runs import RunFinished, RunStarted  # (the records: the log is read)

    every = events.read_all(workspace.events_file)
    started = finished = None
    for event in every:
        if isinstance(event, RunStarted):
            started, finished, run = _at(event.time), None, event.run
        elif isinstance(event, RunFinished) and started is not None and event.run == run:
            finished = _at(event.time)
    given = {t.id: t.estimate for t in plan.tasks.values() if t.estimate}
    learned = learn(every, kinds_of(plan, workspace), given=given)
    return verdicts(plan, views, learned, plan.settings.max_parallel, started, finished)
