"""``orchestrator history``: every attempt of every run, from the event log, and how each ended;
``--stats``, their figures per task and per kind of task."""

from __future__ import annotations

import contextlib
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from orchestrator.commands.calling import Call, Result
from orchestrator.errors import UsageError
from orchestrator.plan.config.settings import format_duration
from orchestrator.state import approvals, events
from orchestrator.state.events import effects
from orchestrator.state.events.runs import EffectDone, EffectFailed, EffectIntended
from orchestrator.state.events.tasks import TaskSpawned
from orchestrator.state.kept.history import attempts_of
from orchestrator.state.kept.history import seconds as _seconds
from orchestrator.state.plans import plan_of

if TYPE_CHECKING:
    from orchestrator.state.workspace import Workspace


def _stats(workspace: Workspace, attempts: list[dict[str, Any]]) -> Result:
    """``history --stats``: per task and per kind of task (its type, else its profile and backend,
    else its backend: as each attempt's ``task_started`` says, else as the plan says now)."""
    from orchestrator.errors import OrchestratorError
    from orchestrator.output.stats import history_stats, stats_text
    from orchestrator.run.forecasts.estimates import kinds_of

    for attempt in attempts:
        attempt["duration"] = _seconds(attempt)
    kinds: dict[str, str] = {}
    with contextlib.suppress(OrchestratorError):  # (a plan that does not load now: kinds unknown, figures kept)
        kinds = kinds_of(plan_of(workspace), workspace)
    stats = history_stats(attempts, kinds)
    return Result({"ok": True, **stats}, shown=lambda: stats_text(stats) + "\n")


def _labelled(workspace: Workspace, every: list[events.EventRecord], wanted: list[str]) -> set[str]:
    """The tasks (lowered) with every label of ``wanted`` (``--label`` repeated, or a comma list):
    as the plan's Tags column says, or as ``spawn`` gave them (its ``task_spawned`` events: a task
    whose row is gone since is found too)."""
    from orchestrator.commands.words import tags

    labels: dict[str, set[str]] = {}
    for event in every:
        if isinstance(event, TaskSpawned) and isinstance(event.labels, tuple):
            labels.setdefault(event.task.lower(), set()).update(str(x).lower() for x in event.labels)
    if workspace.plan_file.exists():
        for task in plan_of(workspace).tasks.values():
            labels.setdefault(task.id.lower(), set()).update(tag.lower() for tag in task.tags)
    asked = {label.lower() for label in tags(wanted)}
    return {task for task, have in labels.items() if asked <= have}


def history(call: Call) -> Result:
    """Every attempt of every run (of one task, ``TASK``; with a label, ``--label``), and how each
    ended; ``--stats``: their figures per task and per kind."""
    from orchestrator.output.views import simulated_mark

    args, workspace = call.args, call.workspace
    wanted = args.task
    every = events.read_all(workspace.events_file)
    attempts = attempts_of(every)
    if args.label:
        labelled = _labelled(workspace, every, args.label)
        attempts = [a for a in attempts if str(a["task"]).lower() in labelled]
    if wanted is not None:
        plan = plan_of(workspace)
        lowered = {task_id.lower(): task_id for task_id in plan.tasks}
        known = {str(a["task"]).lower() for a in attempts}
        if wanted.lower() not in lowered and wanted.lower() not in known:
            raise UsageError(f"no task {wanted} in the plan or its history")
        attempts = [a for a in attempts if str(a["task"]).lower() == wanted.lower()]
    if args.stats:  # (of the task asked for, if one is)
        return _stats(workspace, attempts)
    for attempt in attempts:
        attempt["duration"] = _seconds(attempt)
    said = [w for w in approvals.every(workspace) if wanted is None or w.task.lower() == wanted.lower()]

    delivered = _delivered(every) if wanted is None and not args.label else {}

    def text() -> str:
        if not attempts and not delivered:
            labels = f" labelled {', '.join(args.label)}" if args.label else ""
            return "no attempt recorded yet" + (f" for {wanted}" if wanted else "") + labels + "\n"
        out: list[str] = []
        for run in sorted({*(str(a["run"]) for a in attempts), *delivered}):
            out.append(f"run {run.replace('T', ' ')[:19]}{_forecast_of(attempts, run)}")
            for attempt in (a for a in attempts if str(a["run"]) == run):
                out.append("  " + _attempt_line(attempt, simulated_mark(attempt["simulated"])))
                out += ["    " + _asked_line(asked) for asked in attempt.get("asked", ())]
            out += ["  " + line for line in effects.said(delivered.get(run, []))]
        if said:
            out.append("words at the gates")
        for word in said:
            mark = "👍" if word.decision == approvals.APPROVED else "👎"
            out.append(f"  {mark} {word.task} {approvals.said(word)}" + (f" — {word.url}" if word.url else ""))
        return "".join(line + "\n" for line in out)

    shown = [entry.as_json() for entries in delivered.values() for entry in entries]
    return Result({"ok": True, "attempts": attempts, "words": [_word_json(w) for w in said], "effects": shown},
                  shown=text)  # fmt: skip


def _attempt_line(attempt: dict[str, Any], simulated: str) -> str:
    cost = f" ${attempt['cost_usd']:.4f}" if attempt.get("cost_usd") is not None else ""
    if attempt.get("expected_cost") is not None:
        cost += f" (forecast ${attempt['expected_cost']:.4f})"
    took = f" in {format_duration(attempt['duration'])}" if attempt["duration"] is not None else ""
    why = f": {attempt['reason']}" if attempt.get("reason") else ""
    return f"{attempt['task']} attempt {attempt['attempt']}: {attempt['outcome']}{simulated}{took}{cost}{why}"


def _delivered(every: list[events.EventRecord]) -> dict[str, list[effects.Entry]]:
    """Each run's outward effects (``state/events/effects``), as that run left each: done, failed, unknown."""
    runs: dict[str, list[events.EventRecord]] = {}
    for event in every:
        if event.run is not None and isinstance(event, EffectIntended | EffectDone | EffectFailed):
            runs.setdefault(event.run, []).append(event)
    return {run: list(effects.read(told).values()) for run, told in runs.items()}


def _forecast_of(attempts: list[dict[str, Any]], run: object) -> str:
    """A run's header's word on its cost: what its tasks' forecasts added up to against what
    those tasks spent (``: forecast $0.4000, spent $0.3000``, as ``report`` reckons them);
    nothing for a run with no forecast."""
    from orchestrator.output.learning import forecast_against_cost

    found = forecast_against_cost(attempts, run)
    if found is None:
        return ""
    return f": forecast ${found['run']['forecast']:.4f}, spent ${found['run']['actual'] or 0.0:.4f}"


def _word_json(word: approvals.Decision) -> dict[str, Any]:
    return {key: value for key, value in asdict(word).items() if value not in (None, "")}


def _asked_line(asked: dict[str, Any]) -> str:
    """A question an attempt asked, and who answered it how."""
    mark = "👍 allowed" if asked.get("answer") == "allow" else "👎 denied"
    by = " (no answer in time)" if asked.get("by") == "timeout" else f" by {asked.get('by')}" if asked.get("by") else ""
    via = f" ({asked['via']})" if asked.get("via") else ""
    short = f" {asked['id']}:" if asked.get("id") else ""  # (``Q2``, as the run's line says it)
    return f"{mark}{short} {asked.get('said')}{by}{via}" + (", and from then on" if asked.get("always") else "")
