"""``history --stats``: where a plan spends its time and money across runs, from the attempts
the event log tells of (``state/kept/history.attempts_of``): per task, and per kind of task (its type,
else its profile and backend, else its backend), how many runs, how often it completed, its
median and p90 durations, cost and tokens; the slowest tasks and those that fail most.
Simulated attempts (the fake executor's: nothing ran) count for nothing.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from orchestrator.plan.config.settings import format_duration


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _figures(attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """``runs``: the runs of a task (for a kind: of each of its tasks), each counted a success
    when one of its attempts completed."""
    runs = {(a["run"], a["task"]) for a in attempts}
    done_runs = {(a["run"], a["task"]) for a in attempts if a["outcome"] == "completed"}
    took = [a["duration"] for a in attempts if a["outcome"] == "completed" and a.get("duration") is not None]
    costs = [a["cost_usd"] for a in attempts if a.get("cost_usd") is not None]
    tokens = [a["tokens"] for a in attempts if a.get("tokens") is not None]
    return {
        "runs": len(runs),
        "attempts": len(attempts),
        "completed": len(done_runs),
        "failed_attempts": sum(1 for a in attempts if a["outcome"] in ("failed", "retried")),
        "success_rate": round(len(done_runs) / len(runs), 3) if runs else None,
        "median_seconds": round(statistics.median(took), 3) if took else None,
        "p90_seconds": _quantile(took, 0.9),
        "cost_usd": round(sum(costs), 6) if costs else None,
        "tokens": sum(tokens) if tokens else None,
    }


def history_stats(attempts: Iterable[dict[str, Any]], kinds: Mapping[str, str]) -> dict[str, Any]:
    """The figures, by task and by kind, and the slowest and most failed. An attempt counts under
    the kind its ``task_started`` recorded (on a fallback backend: that one's), else under its
    task's in the plan now (``kinds``: an event log from before attempts said it); a task's own
    kind is the plan's, else its last attempt's (a task gone from the plan), else ``?``."""
    real = [a for a in attempts if not a.get("simulated") and a["outcome"] not in ("running",)]
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for attempt in real:
        by_task[attempt["task"]].append(attempt)
        by_kind[attempt.get("kind") or kinds.get(attempt["task"], "?")].append(attempt)

    def kind(task: str, found: list[dict[str, Any]]) -> str:
        return kinds.get(task) or next((a["kind"] for a in reversed(found) if a.get("kind")), "?")

    tasks = {task: {"kind": kind(task, found), **_figures(found)} for task, found in by_task.items()}
    timed = [t for t in tasks if tasks[t]["median_seconds"] is not None]
    return {
        "tasks": tasks,
        "kinds": {kind: _figures(found) for kind, found in sorted(by_kind.items())},
        "slowest": sorted(timed, key=lambda t: -tasks[t]["median_seconds"])[:5],
        "most_failed": [
            t for t in sorted(tasks, key=lambda t: -tasks[t]["failed_attempts"]) if tasks[t]["failed_attempts"]
        ][:5],
    }


def stats_text(stats: Mapping[str, Any]) -> str:
    """The figures as a person reads them: one table by task, one by kind, and the headlines."""
    if not stats["tasks"]:
        return "no attempt recorded yet"

    def row(name: str, f: Mapping[str, Any]) -> str:
        rate = f"{f['success_rate']:.0%}" if f["success_rate"] is not None else "-"
        cost = f"${f['cost_usd']:.4f}" if f["cost_usd"] is not None else "-"
        tokens = f"{f['tokens']:,}" if f["tokens"] is not None else "-"
        return (f"{name:<14} {f['runs']:>4} {rate:>8} {format_duration(f['median_seconds']):>8} "
                f"{format_duration(f['p90_seconds']):>8} {cost:>10} {tokens:>10}")  # fmt: skip

    head = f"{'':<14} {'runs':>4} {'success':>8} {'median':>8} {'p90':>8} {'cost':>10} {'tokens':>10}"
    lines = ["By task", head.replace(" " * 14, "task".ljust(14), 1)]
    lines += [row(task, figures) for task, figures in sorted(stats["tasks"].items())]
    lines += ["", "By kind (type, else profile and backend, else backend)", head.replace(" " * 14, "kind".ljust(14), 1)]
    lines += [row(kind, figures) for kind, figures in stats["kinds"].items()]
    if stats["slowest"]:
        lines += ["", "Slowest (median): " + ", ".join(stats["slowest"])]
    if stats["most_failed"]:
        lines += ["Most often failed: " + ", ".join(stats["most_failed"])]
    return "\n".join(lines)
