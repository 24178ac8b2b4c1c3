"""What ``status`` and ``list`` show, derived once: a snapshot of the workspace as plain data.

Deriving it reads the whole plan and every state file (``derive``: the plan layer, the views
``freshness`` judges, the estimates from the event log); printing it needs none of that. So
what is derived is kept beside the workspace (``state/snapshots``: ``state/snapshot.shown``) under
the stamp of its sources, and ``status`` and ``list`` print from it while their sources are the
same, without importing the parser, markdown-it or jinja: a plan read once.

The payload holds what they print, made once: ``data``, ``status --json``'s object with its
``tasks`` left out; ``table``, the status table; ``tasks``, ``status --json``'s tasks, marshalled
apart (``status`` never unpacks them); ``lines``, what ``status`` prints below the table after
the estimate; and ``extras``, each task's assignee and tags, which ``list`` adds to ``status
--json``'s fields (``shown_rows``). What depends on the time is kept only until it changes
(``_until``): a Not before, a pause; a task running, a deadline or a schedule (whose verdict
and next firing change with the clock) are shown and not kept. An estimate's end
(``eta.expected_end``) is worked out from now whenever it is shown.
"""

from __future__ import annotations

import contextlib
import marshal
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from orchestrator.output.tasktable import ends_at, eta_line, status_table
from orchestrator.state.plans import plan_of
from orchestrator.state.snapshots import snapshot

if TYPE_CHECKING:
    from orchestrator.plan.model import Plan, Task
    from orchestrator.state.snapshots.snapshot import Derived, Payload
    from orchestrator.state.status import TaskView
    from orchestrator.state.workspace import Workspace


def shown(workspace: Workspace, params: Mapping[str, str] | None = None) -> Payload:
    """What ``status`` (with ``params``, its ``--param`` values) and ``list`` show of ``workspace``
    now: from its snapshot when its sources are the same, else derived (and kept when it may be)."""
    given = dict(params or {})
    name = "shown.params" if given else "shown"  # (``list`` and a plain ``status`` share one)
    return snapshot.cached(
        workspace, name, lambda: derive(workspace, given), extra=[f"{k}={v}" for k, v in sorted(given.items())]
    )


def derive(workspace: Workspace, params: Mapping[str, str]) -> Derived:
    """What ``shown`` returns, worked out from the workspace's files, and until when it holds."""
    from orchestrator.plan.config.params import shown_values
    from orchestrator.run.forecasts.deadlines import deadline_line, workspace_verdicts
    from orchestrator.run.forecasts.spend import forecast_line, what_is_left
    from orchestrator.run.inflight.budgeting import standing
    from orchestrator.run.resume.freshness import current_views
    from orchestrator.state.context import status_lines
    from orchestrator.state.items import add_counts
    from orchestrator.state.summary import status_data

    plan = plan_of(workspace, params)
    views = current_views(plan, workspace)
    shown = [view.as_json() for view in views]
    add_counts(plan, workspace, shown)  # (a row run per item: its items' counts, kept beside them by the run)
    data = status_data(workspace, views, shown)
    data["tasks"] = None  # (``status_json`` puts them back, from ``tasks``: kept once)
    left, forecast = what_is_left(plan, workspace, views)  # (when, and what the tasks left cost)
    data.update(left)
    data["budget"] = standing(workspace, plan.settings.max_cost)  # (the run going on's: waiting at it?)
    data["deadlines"] = workspace_verdicts(plan, workspace, views)
    lines = [deadline_line(verdict) for verdict in data["deadlines"]]
    if (said := forecast_line(forecast, plan.settings.max_cost)) is not None:
        lines.insert(0, said)
    if data["budget"]["reached"]:
        spent, limit = data["budget"]["spent"], data["budget"]["limit"]
        waiting = ", ".join(data["budget"]["waiting"][:5])
        lines.insert(0, f"💰 the run going on waits at its budget (${spent:.4f} of ${limit:.2f}): {waiting} wait; "
                        "`orchestrator budget +USD` raises it")  # fmt: skip
    if plan.params:
        data["params"] = plan.params
        lines.append(f"Parameters: {shown_values(plan.params)}")
    lines += [*data.get("notes", []), *status_lines(data["discoveries"])]
    payload = {
        "data": data,
        "table": status_table(shown, data["counts"]),
        "tasks": marshal.dumps(shown),
        "lines": lines,
        "extras": [_list_only(plan.tasks[view.id]) for view in views],
    }
    return payload, _until(plan, workspace, views, data)


def task_json(task: Task, view: TaskView) -> dict[str, Any]:
    """One task as ``list --json`` shows it: ``status --json``'s fields, and the plan's assignee
    and tags."""
    return {**view.as_json(), **_list_only(task)}


def _list_only(task: Task) -> dict[str, Any]:
    """The fields of ``list --json`` that ``status --json`` has not (``extras``, in a snapshot)."""
    return {"assignee": task.profile, "tags": list(task.tags)}


def _until(plan: Plan, workspace: Workspace, views: list[TaskView], data: dict[str, Any]) -> float:
    """Until when what ``derive`` found holds with no file changed: for ever, unless the time
    changes it (a Not before comes, a pause ends); ``NEVER`` where it changes as the clock goes
    (a task running, its estimate counting down; a deadline's verdict; a schedule's next firing;
    a run started from outside, running, which its runner's end changes)."""
    from orchestrator.run.forecasts.deadlines import any_deadline
    from orchestrator.state.pause import read_pause
    from orchestrator.vocabulary import TaskStatus

    live = (TaskStatus.RUNNING, TaskStatus.RETRYING)
    launched = data.get("launched")
    if any(v.status in live for v in views) or any_deadline(plan) or data.get("schedule") is not None:
        return snapshot.NEVER
    if launched is not None and launched.get("running"):
        return snapshot.NEVER
    if data.get("budget", {}).get("reached"):  # (a run waiting at its budget: its runner may end unseen)
        return snapshot.NEVER
    now = time.time()
    moments = [task.not_before for task in plan.tasks.values() if task.not_before is not None]
    pause = read_pause(workspace) or {}
    with contextlib.suppress(TypeError, ValueError):  # (a file edited by hand: read as no pause, by status too)
        moments.append(float(pause.get("until", 0)))
    return min((moment for moment in moments if moment > now), default=snapshot.FOREVER)


def status_json(found: Payload) -> dict[str, Any]:
    """``status --json``'s object."""
    data = dict(found["data"])
    data["tasks"] = marshal.loads(found["tasks"])
    data["eta"] = _eta_now(data["eta"])
    return data


def status_text(found: Payload, table: str | None = None) -> str:
    """What ``status`` prints (``table``: another table of the tasks, a page of them)."""
    lines = [found["table"] if table is None else table]
    eta = _eta_now(found["data"]["eta"])
    if eta is not None:  # (None too while nothing is learned and no Estimate cell gives one)
        lines.append(eta_line(eta))
    return "\n".join([*lines, *found["lines"]])


def shown_rows(found: Payload) -> list[dict[str, Any]]:
    """Each task as ``list --json`` says it: ``status --json``'s fields, its assignee and tags."""
    rows: list[dict[str, Any]] = marshal.loads(found["tasks"])
    for row, extra in zip(rows, found["extras"], strict=True):
        row.update(extra)
    return rows


def _eta_now(eta: dict[str, Any] | None) -> dict[str, Any] | None:
    """An estimate kept in a snapshot, its end counted from now (nothing runs, or it would not
    have been kept: the time left is what it was)."""
    if eta is None:
        return None
    return {**eta, "expected_end": ends_at(eta["seconds_left"], time.time())}
