"""Every attempt of every run, read from the event log (``state/events.jsonl``), each with how it
ended: what ``history`` shows, what ``history --stats`` sums up, and what the estimates of a
run's remaining time learn from (``run.estimates``). A ``reset`` forgets results, never this."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestrator.state import events

ENDS = {"task_completed", "task_failed", "task_retrying", "task_interrupted", "task_cancelled"}
_ENDS = ENDS


def attempts_of(all_events: list[events.Event]) -> list[dict[str, Any]]:
    """Every attempt the event log tells of, oldest first, each with how it ended."""
    found: list[dict[str, Any]] = []
    open_: dict[tuple[Any, str], dict[str, Any]] = {}
    runs: dict[Any, dict[str, Any]] = {}
    for event in all_events:
        kind, run, task = event["event"], event.get("run"), str(event.get("task", ""))
        if kind == "run_started":
            runs[run] = {"started": event, "finished": False}
        elif kind == "run_finished" and run in runs:
            runs[run]["finished"], runs[run]["stopped"] = True, event.get("stopped")
        elif kind == "task_started":
            attempt = {"run": run, "task": task, "agent": event.get("agent"), "attempt": event.get("attempt"),
                       "started": event.get("time"), "ended": None, "outcome": "running", "reason": None,
                       "cost_usd": None, "log": event.get("log"), "simulated": False,
                       "brief": event.get("brief")}  # fmt: skip
            open_[(run, task)] = attempt
            found.append(attempt)
        elif kind in _ENDS and (run, task) in open_:
            attempt = open_.pop((run, task))
            attempt["ended"] = event.get("time")
            attempt["outcome"] = {"task_retrying": "retried"}.get(kind, kind.removeprefix("task_"))
            attempt["reason"] = event.get("reason") or event.get("warning")
            attempt["cost_usd"] = event.get("attempt_cost_usd", event.get("cost_usd"))  # its own
            attempt["tokens"] = event.get("tokens")
            attempt["simulated"] = event.get("simulated") is True  # the fake executor's: nothing ran
    for (run, _task), attempt in open_.items():
        state = runs.get(run)
        if state is not None and events.stopped_on_error(state.get("stopped")):  # (the run said why)
            attempt["outcome"], attempt["reason"] = "interrupted", f"the run stopped on an {state['stopped']}"
        elif state is not None and (state["finished"] or not events.runner_alive(state["started"])):
            attempt["outcome"] = "lost"
            attempt["reason"] = "its runner ended without saying how it ended (killed?)"
    return found


def seconds(attempt: dict[str, Any]) -> float | None:
    try:
        return (datetime.fromisoformat(attempt["ended"]) - datetime.fromisoformat(attempt["started"])).total_seconds()
    except (TypeError, ValueError):
        return None
