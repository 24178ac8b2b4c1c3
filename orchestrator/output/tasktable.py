"""The status table, its summary line and its estimate line, from the tasks as ``status --json``
says them: plain data, which a snapshot (``state/snapshots``) holds, so that ``status`` prints
them without importing the plan's classes. ``output/views`` and the status blocks word their
summary here too: one wording."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.plan.config.values import format_duration
from orchestrator.plan.table.times import spoken_in
from orchestrator.printable import visible
from orchestrator.vocabulary import TaskStatus, counted

OUT_OF_DATE = "out of date"  # beside a completed task's status when `run` would run it again
REUSED = "♻️"  # beside a result reused from the cache (``run/resume/reuse``): no process started
SIMULATED = "simulated"  # beside a result the fake executor made up: no process ran (``TaskView.simulated``)

Shown = Mapping[str, Any]  # a task as ``status --json`` says it (``TaskView.as_json``)


def simulated_mark(simulated: bool) -> str:
    """`` (simulated)`` after whatever a read-out says of a made-up result, nothing after a real one:
    the one wording of every read-out (status, run's lines, history, graph, check, report)."""
    return f" ({SIMULATED})" if simulated else ""


def label(status: str, out_of_date: str | None) -> str:
    """The status as a person reads it: ``✅ Completed · out of date`` for a completed task that
    ``run`` would run again."""
    return TaskStatus(status).label + (f" · {OUT_OF_DATE}" if out_of_date else "")


def summary_text(
    total: int,
    found: Mapping[str, int],
    *,
    stale: int,
    reused: int,
    made_up: int,
    costs: Sequence[float],
    tokens: Sequence[int],
) -> str:
    """``1000 tasks: 100 pending, 900 waiting``, and what is out of date, reused, simulated, spent."""
    parts = [f"{found[s]} {s.replace('_', ' ')}" for s in TaskStatus if found.get(s)]
    text = f"{counted(total, 'task')}: " + (", ".join(parts) if parts else "none")
    if stale:
        text += f" ({stale} {OUT_OF_DATE}: run does {'it' if stale == 1 else 'them'} again)"
    if reused:
        text += f" ({reused} reused from the cache)"
    if made_up:  # (as the run's last line says it: made-up results never pass for real ones)
        text += f" ({made_up} {SIMULATED})"
    if costs:
        text += f"; cost ${sum(costs):.4f}"
    if tokens:
        text += f"; {sum(tokens):,} tokens"
    return text


def summary(tasks: Sequence[Shown], found: Mapping[str, int]) -> str:
    return summary_text(
        len(tasks),
        found,
        stale=sum(1 for t in tasks if t["out_of_date"]),
        reused=sum(1 for t in tasks if t["reused"]),
        made_up=sum(1 for t in tasks if t["simulated"]),
        costs=[t["cost_usd"] for t in tasks if t["cost_usd"] is not None],
        tokens=[t["tokens"] for t in tasks if t["tokens"] is not None],
    )


def status_table(tasks: Sequence[Shown], found: Mapping[str, int]) -> str:
    """A plain-text table for terminals and logs (no colour codes, so it pipes cleanly)."""
    typed = any(t["type"] for t in tasks)  # a Type column for a plan with task types
    headers = ["Task", "Agent", *(["Type"] if typed else []), "Status", "Duration", "Attempts", "Cost", "Name / reason"]
    rows = [
        [
            t["id"],
            t["agent"],
            *([t["type"] or "-"] if typed else []),
            label(t["status"], t["out_of_date"]) + (f" on {t['worker']}" if t["worker"] else ""),
            format_duration(t["duration"]) if t["duration"] is not None else "-",
            # The attempts of the run of the task that made this state, as ``report`` counts them
            # (its files' numbers go on across runs: ``logs`` and ``history`` tell them): 0 for a
            # result reused from the cache, or a task cancelled before it started again.
            str(t["run_attempts"]) if t["attempts"] else "-",
            f"${t['cost_usd']:.4f}" if t["cost_usd"] is not None else "-",
            t["name"]
            + (f" — {visible(t['reason'])}" if t["reason"] else "")
            + simulated_mark(t["simulated"])
            + (f" — {REUSED} reused: {spoken_in(t['reused'])}" if t["reused"] else "")
            + (f" — {visible(t['raced'])}" if t["raced"] else "")
            + (f" — {t['items']['said']}" if t.get("items") else "")
            + (f" — will run again: {t['out_of_date']}" if t["out_of_date"] else ""),
        ]
        for t in tasks
    ]
    cell_widths = [[_width(cell) for cell in row] for row in rows]  # once per cell: 70,000 at 10,000 tasks
    widths = [max([len(h)] + [cw[i] for cw in cell_widths]) for i, h in enumerate(headers)]
    lines = ["  ".join(_pad(h, widths[i]) for i, h in enumerate(headers)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    last = len(headers) - 1
    for row, cw in zip(rows, cell_widths, strict=True):
        cells = [row[i] + " " * (widths[i] - cw[i]) for i in range(last)]
        cells.append(row[last])  # the last column is not padded: the line ends there
        lines.append("  ".join(cells).rstrip())
    lines.append("")
    lines.append(summary(tasks, found))
    return "\n".join(lines)


def ends_at(seconds_left: float, now: float) -> str:
    """When work of ``seconds_left`` begun ``now`` ends: local ISO 8601 to the second (an ``eta``'s
    ``expected_end``)."""
    return dt.datetime.fromtimestamp(now + seconds_left).astimezone().isoformat(timespec="seconds")


def eta_line(found: Mapping[str, Any]) -> str:
    """``status``'s line of an ``eta`` (``run/forecasts/estimates.eta``)."""
    cost = f", expected cost ${found['expected_cost']:.4f}" if found["expected_cost"] is not None else ""
    end = found["expected_end"][11:16]
    learned = f"{found['learned']} of {found['tasks_left']} tasks' estimates learned from earlier runs"
    if found.get("given"):
        learned += f", {found['given']} from the plan's Estimate cells"
    held = found.get("waits_for")
    if held:  # the end is a person's word away: the work, not a time of day
        who = ", ".join(held)
        left = format_duration(found["seconds_left"])
        return f"Estimated: {left} of work left, after a person's word on {who}{cost}; {learned}"
    return f"Estimated: {format_duration(found['seconds_left'])} left (ends about {end}){cost}; {learned}"


def _width(text: str) -> int:
    # Status icons are double width on a terminal; the variation selector is zero width.
    if text.isascii():
        return len(text)
    return len(text.replace("\ufe0f", "")) + sum(1 for ch in text if ord(ch) > 0x2000 and ch != "\ufe0f")


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))
