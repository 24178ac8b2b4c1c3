"""What ``status --json`` says about a workspace, as data: one builder that ``status`` and
``serve`` (the dashboard's table and totals) share, so the two never disagree."""

from __future__ import annotations

import time
from typing import Any

from orchestrator.state import launches, schedule
from orchestrator.state.context import status_data as discoveries
from orchestrator.state.events import effects
from orchestrator.state.kept import checkpoints
from orchestrator.state.pause import status_notes
from orchestrator.state.status import TaskView, counts
from orchestrator.state.words import questions
from orchestrator.state.workspace import Workspace


def status_data(
    workspace: Workspace, views: list[TaskView], shown: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Every task's view (``views``, as ``views/replay.collect`` reads them; ``shown``: each one's
    ``as_json``, made already), how many are in each state, what they cost, a usage-limit pause
    in force (``paused_until``, ``notes``), and the workspace's schedule (``schedule``, and a
    note) when it has one, and a checkpoint restored since the last run started (``restored``,
    and a note), and the questions agents ask now (``asks``, and a note each)."""
    cost = [v.cost_usd for v in views if v.cost_usd is not None]
    data = {
        "workspace": str(workspace.root),
        "counts": counts(views),
        "total": len(views),
        "cost_usd": round(sum(cost), 6) if cost else None,
        "tasks": shown if shown is not None else [v.as_json() for v in views],
        "discoveries": discoveries(workspace),
        **status_notes(workspace),
    }
    found, notes = schedule_and_restore(workspace)
    data.update(found)
    delivered = effects.current(effects.ledger(workspace.events_file))
    if delivered:  # (what runs delivered: the pull request, the pushes, the comments, each with its link)
        data["effects"] = [entry.as_json() for entry in delivered]
        notes += [entry.said() for entry in delivered]
    asked = questions.pending(workspace)
    if asked:  # (an agent's questions waiting for a person: ``answer``, the dashboard, a link, GitHub)
        data["asks"] = [q.as_json() for q in asked]
        notes += [q.told() for q in asked]
    if notes:
        data["notes"] = [*data.get("notes", []), *notes]
    return data


def schedule_and_restore(workspace: Workspace) -> tuple[dict[str, Any], list[str]]:
    """The workspace's schedule (``schedule``) when it has one, the last run started from outside
    (``launched``: a webhook, the API, an MCP tool), and a checkpoint restored since
    the last run started (``restored``), with the line each is told in: what ``status`` and
    ``graph`` say of them."""
    found: dict[str, Any] = {}
    notes: list[str] = []
    planned = schedule.shown(workspace, time.time())
    if planned is not None:  # (as a pause: told when there is one)
        found["schedule"] = planned
        notes.append(schedule.note(planned))
    launched = launches.last(workspace)
    if launched is not None:  # (a run a webhook, the API or an MCP tool started: the last one)
        found["launched"] = launched
        notes.append(launches.note(launched))
    held = launches.plan_held(workspace)
    if held is not None:  # (a change of the plan a run from outside did not take: until the next run)
        found["plan_held"] = held
        notes.append(held)
    back = checkpoints.restored(workspace)
    if back is not None:  # (until the next run starts)
        found["restored"] = back
        notes.append(checkpoints.restored_note(back))
    return found, notes
