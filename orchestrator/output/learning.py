"""What ``report`` says of a run's estimates and of the run before it, from the event log
(``state/events.jsonl``: a ``reset`` forgets results, never that):

- ``estimates``: per task, what the run expected it to take (its ``task_started``'s ``estimate``)
  against what it took; and the error of the run's estimated length at 25, 50 and 75% of its
  wall time (``errors_at``: from the last ``run_estimate`` told before each point);
- ``previous``: the run before this one (the last that finished before it) beside it: makespan,
  cost, tokens, tasks failed and retried, and the tasks whose time changed most.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from orchestrator.state.events import EventRecord
from orchestrator.state.events.runs import RunEstimate, RunFinished, RunStarted
from orchestrator.state.events.tasks import TaskStarted
from orchestrator.state.kept.history import attempts_of, seconds

WAY = (0.25, 0.5, 0.75)  # the points of a run's way its estimate's error is said at
CHANGES = 5  # the tasks whose time changed most, shown


def _at(moment: object) -> float:
    return datetime.fromisoformat(str(moment)).timestamp()


def errors_at(started: str, finished: str, estimates: Iterable[RunEstimate]) -> dict[str, float | None]:
    """The signed error of the run's estimated length at each point of ``WAY`` of its wall time:
    (elapsed + the seconds left the last ``run_estimate`` before that point said − the length it
    had) ÷ the length it had; ``None`` where none was told before that point."""
    begin, end = _at(started), _at(finished)
    length = end - begin
    told = sorted((_at(e.time), float(e.seconds_left)) for e in estimates)
    found: dict[str, float | None] = {}
    for point in WAY:
        at = begin + point * length
        before = [(when, left) for when, left in told if when <= at]
        if not before or length <= 0:
            found[f"{round(point * 100)}%"] = None
            continue
        when, left = before[-1]
        found[f"{round(point * 100)}%"] = round(((when - begin) + left - length) / length, 4)
    return found


def _runs(all_events: list[EventRecord]) -> list[tuple[RunStarted, RunFinished | None]]:
    """Each run's run_started and run_finished (``None``: not finished), oldest first."""
    found: dict[str | None, tuple[RunStarted, RunFinished | None]] = {}
    for event in all_events:
        if isinstance(event, RunStarted):
            found[event.run] = (event, None)
        elif isinstance(event, RunFinished) and event.run in found:
            found[event.run] = (found[event.run][0], event)
    return list(found.values())


def _tokens(value: object) -> int:
    if isinstance(value, dict):
        return sum(int(v) for v in value.values() if isinstance(v, int | float))
    return int(value) if isinstance(value, int | float) else 0


def _summary(run: str | None, end: RunFinished | None, attempts: list[dict[str, Any]]) -> dict[str, Any]:
    mine = [a for a in attempts if a["run"] == run and not a.get("simulated")]
    costs = [float(a["cost_usd"]) for a in mine if a.get("cost_usd") is not None]
    took: dict[str, float] = {}
    for attempt in mine:
        if attempt["outcome"] == "completed" and (duration := seconds(attempt)) is not None:
            took[attempt["task"]] = duration
    return {
        "run": run,
        "makespan_seconds": end.wall_seconds if end is not None else None,
        "cost_usd": round(sum(costs), 6) if costs else None,
        "tokens": sum(_tokens(a.get("tokens")) for a in mine) or None,
        "failed": sum(1 for a in mine if a["outcome"] == "failed"),
        "retried": sum(1 for a in mine if a["outcome"] == "retried"),
        "took": took,
    }


_KEYS = ("run", "makespan_seconds", "cost_usd", "tokens", "failed", "retried")


def learning(all_events: list[EventRecord]) -> dict[str, Any]:
    """``report``'s ``estimates`` (``None`` when no run has finished) and ``compared`` (``None``
    with no run before it) for the workspace's last finished run."""
    runs = [(start, end) for start, end in _runs(all_events) if end is not None]
    if not runs:
        return {"estimates": None, "compared": None}
    start, end = runs[-1]
    run = start.run
    attempts = attempts_of(all_events)
    expected = {
        (e.task, e.attempt): e.estimate
        for e in all_events
        if isinstance(e, TaskStarted) and e.run == run and e.estimate is not None
    }
    tasks: list[dict[str, Any]] = []
    for attempt in attempts:
        guess = expected.get((attempt["task"], attempt["attempt"]))
        actual = seconds(attempt) if attempt["run"] == run and attempt["outcome"] == "completed" else None
        if guess is None or actual is None:
            continue
        error = round((float(guess) - actual) / actual, 4) if actual > 0 else None
        tasks.append({"id": attempt["task"], "estimate": guess, "actual": round(actual, 3), "error": error})
    told = [e for e in all_events if isinstance(e, RunEstimate) and e.run == run]
    found: dict[str, Any] = {
        "estimates": {"tasks": tasks, "run_error": errors_at(start.time, end.time, told)},
        "costs": forecast_against_cost(attempts, run),
        "compared": None,
    }
    if len(runs) > 1:
        now = _summary(run, end, attempts)
        before = _summary(runs[-2][0].run, runs[-2][1], attempts)
        shared = set(now["took"]) & set(before["took"])
        changes = sorted(shared, key=lambda t: (-abs(now["took"][t] - before["took"][t]), t))[:CHANGES]
        found["compared"] = {
            "this_run": {key: now[key] for key in _KEYS},
            "previous_run": {key: before[key] for key in _KEYS},
            "changes": [
                {"id": t, "before": round(before["took"][t], 3), "now": round(now["took"][t], 3)} for t in changes
            ],
        }
    return found


def forecast_against_cost(attempts: list[dict[str, Any]], run: object) -> dict[str, Any] | None:
    """Per task of ``run`` that had a forecast (its first attempt's ``expected_cost``, as its
    ``task_started`` told it: ``run/forecasts/spend``), that against what its attempts in the run
    spent, and the run's sums; ``None`` when no task of it had one. ``report``'s, and each run's
    header in ``history``."""
    expected: dict[str, float] = {}
    for attempt in attempts:
        if attempt["run"] == run and attempt.get("expected_cost") is not None:
            expected.setdefault(attempt["task"], float(attempt["expected_cost"]))
    if not expected:
        return None
    spent: dict[str, float] = {}
    for attempt in attempts:
        if attempt["run"] == run and attempt["task"] in expected and attempt.get("cost_usd") is not None:
            spent[attempt["task"]] = spent.get(attempt["task"], 0.0) + float(attempt["cost_usd"])
    tasks = [{"id": t, "forecast": round(f, 6), "actual": round(spent[t], 6) if t in spent else None,
              "error": _error(f, spent.get(t))} for t, f in expected.items()]  # fmt: skip
    forecast, actual = sum(expected.values()), sum(spent.values()) if spent else None
    run_figures = {"forecast": round(forecast, 6), "actual": round(actual, 6) if actual is not None else None,
                   "error": _error(forecast, actual)}  # fmt: skip
    return {"tasks": tasks, "run": run_figures}


def _error(forecast: float, actual: float | None) -> float | None:
    """How far off a forecast was, of what was spent (+25%: it said a quarter more)."""
    return round((forecast - actual) / actual, 4) if actual else None


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.0f}%"


def markdown_lines(found: Mapping[str, Any]) -> list[str]:
    """``report``'s sections of the estimates and of the run before, in markdown (none: nothing)."""
    from orchestrator.plan.config.settings import format_duration

    lines: list[str] = []
    estimates = found.get("estimates")
    if estimates and (estimates["tasks"] or any(v is not None for v in estimates["run_error"].values())):
        errors = ", ".join(f"{_signed(v)} at {point}" for point, v in estimates["run_error"].items())
        lines += ["## Estimates", "", f"The run's estimated length, against what it took: {errors} of the way.", ""]
        lines += ["| Task | Estimate | Actual | Error |", "|---|---|---|---|"]
        lines += [
            f"| {t['id']} | {format_duration(t['estimate'])} | {format_duration(t['actual'])} | {_signed(t['error'])} |"
            for t in estimates["tasks"]
        ]
        lines.append("")
    costs = found.get("costs")
    if costs:
        whole = costs["run"]
        spent = f"{_money(whole['actual'])} ({_signed(whole['error'])})"
        said = f"The run's forecast: ${whole['forecast']:.4f}; spent: {spent}."
        lines += ["## Forecast against cost", "", said, "", "| Task | Forecast | Spent | Error |", "|---|---|---|---|"]
        lines += [f"| {t['id']} | ${t['forecast']:.4f} | {_money(t['actual'])} | {_signed(t['error'])} |"
                  for t in costs["tasks"]]  # fmt: skip
        lines.append("")
    compared = found.get("compared")
    if compared:
        now, before = compared["this_run"], compared["previous_run"]

        money = _money
        rows = [
            ("Makespan", format_duration(before["makespan_seconds"]), format_duration(now["makespan_seconds"])),
            ("Cost", money(before["cost_usd"]), money(now["cost_usd"])),
            ("Tokens", str(before["tokens"] or "-"), str(now["tokens"] or "-")),
            ("Attempts failed", str(before["failed"]), str(now["failed"])),
            ("Attempts retried", str(before["retried"]), str(now["retried"])),
        ]
        lines += ["## Compared with the previous run", "", "| | Previous run | This run |", "|---|---|---|"]
        lines += [f"| {name} | {a} | {b} |" for name, a, b in rows]
        if compared["changes"]:
            changed = ", ".join(
                f"{c['id']} {format_duration(c['before'])} → {format_duration(c['now'])}" for c in compared["changes"]
            )
            lines += ["", f"Biggest changes in a task's time: {changed}."]
        lines.append("")
    return lines
