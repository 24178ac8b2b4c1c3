"""``orchestrator report``: how a run went, from its result files.

Figures (from the results' frontmatter, ``state.results.ResultRecord``, and for a task retried
in the run that made its result, the journal's times of its earlier attempts: ``final.as_spent``):

- ``wall_seconds``: time during which at least one task ran (``final.busy_time``: the gaps
  between resumed runs do not count), ``work_seconds``: the sum of the tasks' spans;
- per task two times: ``duration``, its last attempt's (what ``status``, its result and
  ``history`` say), and ``span``, from its first attempt's start to its last's end in the run
  that made its result (``final.as_spent``: retries and the waits between them in it);
- ``speedup``: work ÷ wall; ``parallel_efficiency``: speed-up ÷ ``max_parallel`` (1.0: every
  slot was busy all the time), the slots the run that made the results had (``run --max-parallel``
  replaces the plan's: ``state.events.run_slots``), and ``plan_max_parallel``, the plan's;
- ``critical_path``: the longest dependency chain by the tasks' spans, and ``critical_ratio``:
  wall ÷ its length (1.0: the run was as fast as the dependencies allow);
- ``measured``: false when a task that ran was simulated (the fake executor: its duration is
  noise): then speed-up, efficiency, critical path and ratio are not given (``None``, empty);
- per task and per backend: attempts, retries, duration and span, cost and tokens. A task's attempts are
  those of the run of it that produced its result (``run_attempts``), its retries every one of
  them after the first: each came after a failure or a limit. The attempts earlier runs made of
  it (before a re-run, a ``reset``, an edit, an interruption) are not retries: ``history`` lists
  every attempt;
- the timeline (``timeline.py``): an SVG Gantt chart and mermaid ``gantt``;
- the synthesis's spend (``state/kept/synthesis.json``), counted in the totals as final_output.md does.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from orchestrator.output.final import busy_time, span_of
from orchestrator.output.learning import markdown_lines
from orchestrator.output.timeline import Bar, bars, mermaid, svg
from orchestrator.output.views import NOT_MEASURED, REUSED, SIMULATED, simulated_mark
from orchestrator.plan.config.params import shown_values
from orchestrator.plan.config.settings import format_duration
from orchestrator.plan.graph import critical_path
from orchestrator.plan.model import Plan
from orchestrator.plan.table.times import iso, spoken_in
from orchestrator.state.kept.synthesis import Spent
from orchestrator.state.status import TaskView
from orchestrator.vocabulary import TaskStatus, counted


@dataclass(slots=True)
class Report:
    figures: dict[str, Any]
    bars: list[Bar]

    def as_json(self) -> dict[str, Any]:
        return self.figures

    def svg(self, title: str = "Timeline") -> str:
        return svg(self.bars, title)

    def mermaid(self) -> str:
        return mermaid(self.bars)


def build(plan: Plan, views: list[TaskView], synthesis: Spent | None = None, slots: int | None = None) -> Report:
    """The figures of ``views``; ``synthesis``: what the aggregating agent spent (no task, yet
    spend: counted in the totals, as final_output.md counts it, and shown apart); ``slots``: the
    ``max_parallel`` the run ran with (the plan's when ``None``)."""
    ran = [v for v in views if v.duration is not None and v.status != TaskStatus.SKIPPED]
    wall = busy_time(ran)
    work = sum(span_of(v) for v in ran)
    path, length = critical_path(plan.graph, {v.id: span_of(v) for v in ran})
    # A simulated task's duration is sub-millisecond noise: no speed-up nor critical path is made of it.
    noise = any(v.simulated for v in ran)
    path = path if ran and not noise else []
    speedup = work / wall if wall and work and not noise else None
    max_parallel = slots or plan.settings.max_parallel
    backends: dict[str, dict[str, Any]] = {}
    kinds: dict[str, dict[str, Any]] = {}  # the same, by task type
    tasks: list[dict[str, Any]] = []
    for view in views:
        backend = view.backend or plan.settings_for(plan.tasks[view.id]).backend
        tasks.append(
            {
                "id": view.id,
                "name": view.name,
                "agent": view.agent,
                "backend": backend,
                "type": view.type,
                "status": str(view.status),
                "reason": view.reason,  # as status gives it: a bypassed task's condition and what it saw
                "cause": view.cause.as_json() if view.cause is not None else None,  # (as status --json has it)
                "started": view.started,
                "finished": view.finished,
                "duration": view.duration,  # its last attempt's
                "span": view.span,  # its first attempt's start to its last's end (``final.as_spent``)
                "attempts": view.run_attempts,
                "retries": max(view.run_attempts - 1, 0),
                "cost_usd": view.cost_usd,
                "tokens": view.tokens,
                "critical": view.id in path,
                "simulated": view.simulated,
                "worker": view.worker,
                "reused": view.reused,  # from the cache, no process started: why (``run/resume/reuse``)
                **_timed(plan.tasks[view.id].not_before),
            }
        )
        if view.run_attempts == 0 and view.duration is None:
            continue  # never ran: no figures for its backend
        _count(backends, backend, view)
        if view.type:
            _count(kinds, view.type, view)
    costs = [v.cost_usd for v in views if v.cost_usd is not None]
    tokens = [v.tokens for v in views if v.tokens is not None]
    figures: dict[str, Any] = {
        "tasks": tasks,
        "counts": {str(s): n for s in TaskStatus if (n := sum(1 for v in views if v.status == s))},
        "simulated": sum(1 for v in views if v.simulated),
        "reused": sum(1 for v in views if v.reused),
        "wall_seconds": round(wall, 3) if wall is not None else None,
        "work_seconds": round(work, 3),
        "speedup": round(speedup, 3) if speedup else None,
        "max_parallel": max_parallel,
        "plan_max_parallel": plan.settings.max_parallel,
        "parallel_efficiency": round(speedup / max_parallel, 3) if speedup else None,
        "critical_path": {"tasks": path, "seconds": round(length, 3) if path else None},
        "critical_ratio": round(wall / length, 3) if wall and path and length else None,
        "measured": not noise,
        "retries": sum(t["retries"] for t in tasks),
        "cost_usd": _total(costs, synthesis.cost_usd if synthesis else None, 6),
        "tokens": _total(tokens, synthesis.tokens if synthesis else None),
        "backends": backends,
        "types": kinds,
        "synthesis": {"cost_usd": synthesis.cost_usd, "tokens": synthesis.tokens} if synthesis else None,
        "params": dict(plan.params),
    }
    return Report(figures, bars(plan, views, set(path)))


def _count(totals: dict[str, dict[str, Any]], key: str, view: TaskView) -> None:
    """``view``'s figures added to ``totals[key]`` (tasks, attempts, seconds, cost, tokens)."""
    found = totals.setdefault(key, {"tasks": 0, "attempts": 0, "seconds": 0.0, "cost_usd": None, "tokens": None})
    found["tasks"] += 1
    found["attempts"] += view.run_attempts
    found["seconds"] = round(found["seconds"] + span_of(view), 3)
    if view.cost_usd is not None:
        found["cost_usd"] = round((found["cost_usd"] or 0.0) + view.cost_usd, 6)
    if view.tokens is not None:
        found["tokens"] = (found["tokens"] or 0) + view.tokens


def _timed(moment: float | None) -> dict[str, Any]:
    """A task's ``not_before`` (its Not before cell), for the tasks that have one."""
    return {"not_before": iso(moment)} if moment is not None else {}


def _total(values: list[Any], synthesis: Any, digits: int | None = None) -> Any:
    if not values and synthesis is None:
        return None
    total = sum(values) + (synthesis or 0)
    return round(total, digits) if digits is not None else total


def _part(f: dict[str, Any], key: str, shown: str) -> str:
    """``shown`` (a total), and how much of it was the synthesis's when it spent any."""
    part = (f.get("synthesis") or {}).get(key)
    if part is None:
        return shown
    if key == "cost_usd":
        return f"{shown} (the synthesis {_money(part)} of it)"
    return f"{shown} (the synthesis {_num(part)} of them)"


def _money(value: float | None) -> str:
    return f"${value:.4f}" if value is not None else "-"


def _num(value: int | None) -> str:
    return f"{value:,}" if value is not None else "-"


def markdown(report: Report, title: str, svg_name: str | None) -> str:
    f = report.figures
    path = f["critical_path"]
    lines = [
        f"# Run report: {title}",
        "",
        "| | |",
        "|---|---|",
        f"| Tasks | {len(f['tasks'])}: {', '.join(f'{n} {s}' for s, n in f['counts'].items())}{_made_up(f)} |",
        f"| Time with a task running | {format_duration(f['wall_seconds'])} |",
        f"| Sum of task spans | {format_duration(f['work_seconds'])} |",
        f"| Speed-up | {_measured(f, _ratio(f['speedup']))} |",
        f"| Parallel efficiency | {_measured(f, _efficiency(f))} |",
        f"| Critical path (longest in time) | {_measured(f, _path(path, ' -> '))} |",
        f"| Time with a task running ÷ critical path | {_measured(f, _ratio(f['critical_ratio']))} |",
        f"| Retries | {f['retries']} |",
        f"| Cost | {_part(f, 'cost_usd', _money(f['cost_usd']))} |",
        f"| Tokens | {_part(f, 'tokens', _num(f['tokens']))} |",
        *([f"| Parameters | {_params(f)} |"] if f["params"] else []),
        *([f"| Schedule | {f['schedule_note'].removeprefix('📅 ')} |"] if f.get("schedule_note") else []),
        *([f"| Restored | {f['restored_note'].removeprefix('⏪ ')} |"] if f.get("restored_note") else []),
        "",
        "## By backend",
        "",
        "| Backend | Tasks | Attempts | Span | Cost | Tokens |",
        "|---|---|---|---|---|---|",
    ]
    for name, b in f["backends"].items():
        lines.append(_totals_row(name, b))
    if f["types"]:  # (a plan without task types has no such table)
        lines += [
            "",
            "## By task type",
            "",
            "| Type | Tasks | Attempts | Span | Cost | Tokens |",
            "|---|---|---|---|---|---|",
        ]
        lines += [_totals_row(name, b) for name, b in f["types"].items()]
    lines += ["", "## Tasks", "", "| Task | Status | Backend | Duration | Span | Attempts | Cost | Tokens |"]
    lines.append("|---|---|---|---|---|---|---|---|")
    for t in f["tasks"]:
        mark, status = " ⭐" if t["critical"] else "", t["status"] + simulated_mark(t["simulated"])
        status += f" on {t['worker']}" if t.get("worker") else ""
        if t["status"] == TaskStatus.WAITING and t.get("not_before"):
            status += f" (not before {t['not_before']})"
        status += _why_bypassed(t).replace("|", "\\|")
        if t.get("reused"):
            status += f" ({REUSED} reused: {spoken_in(t['reused'])})"
        lines.append(
            f"| {t['id']}{mark} | {status} | {t['backend']} | {format_duration(t['duration'])} | "
            f"{format_duration(t['span'])} | {t['attempts']} | {_money(t['cost_usd'])} | {_num(t['tokens'])} |"
        )
    lines += ["", "⭐ on the critical path.", ""]
    lines += markdown_lines(f)  # (the estimates against what they took; the run before)
    lines += ["## Timeline", ""]
    if svg_name:
        lines += [f"![timeline]({svg_name})", ""]
    lines += ["```mermaid", report.mermaid(), "```"]
    return "\n".join(lines) + "\n"


def _why_bypassed(task: dict[str, Any]) -> str:
    """``: condition false: ...`` after a bypassed task's status: not run, and why (no failure)."""
    if task["status"] != TaskStatus.BYPASSED or not task.get("reason"):
        return ""
    return f": {task['reason']}"


def _reused(task: dict[str, Any]) -> str:
    """`` (reused)`` after the status of a task whose result came from the cache (``run/resume/reuse``)."""
    return " (reused)" if task.get("reused") else ""


def _totals_row(name: str, b: dict[str, Any]) -> str:
    return (
        f"| {name} | {b['tasks']} | {b['attempts']} | {format_duration(b['seconds'])} | "
        f"{_money(b['cost_usd'])} | {_num(b['tokens'])} |"
    )


def html(report: Report, title: str) -> str:
    """A self-contained page: the markdown's tables as HTML, the SVG inline; no script, no link."""
    f = report.figures
    rows = "".join(
        f"<tr><td>{escape(t['id'])}{' ⭐' if t['critical'] else ''}</td><td>{escape(t['name'])}</td>"
        f"<td>{escape(t['status'] + simulated_mark(t['simulated']) + _reused(t) + _why_bypassed(t))}</td>"
        f"<td>{escape(t['backend'])}</td>"
        f"<td>{format_duration(t['duration'])}</td><td>{format_duration(t['span'])}</td>"
        f"<td>{t['attempts']}</td><td>{_money(t['cost_usd'])}</td><td>{_num(t['tokens'])}</td></tr>"
        for t in f["tasks"]
    )
    path = f["critical_path"]
    summary = [
        *([("Simulated", _made_up(f).strip(" ()"))] if f["simulated"] else []),
        ("Time with a task running", format_duration(f["wall_seconds"])),
        ("Sum of task spans", format_duration(f["work_seconds"])),
        ("Speed-up", _measured(f, _ratio(f["speedup"]))),
        ("Parallel efficiency", _measured(f, _efficiency(f))),
        ("Critical path (longest in time)", _measured(f, _path(path, " → "))),
        ("Retries", str(f["retries"])),
        ("Cost", _part(f, "cost_usd", _money(f["cost_usd"]))),
        ("Tokens", _part(f, "tokens", _num(f["tokens"]))),
        *([("Parameters", shown_values(f["params"]))] if f["params"] else []),
        *([("Schedule", f["schedule_note"].removeprefix("📅 "))] if f.get("schedule_note") else []),
        *([("Restored", f["restored_note"].removeprefix("⏪ "))] if f.get("restored_note") else []),
    ]
    head = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in summary)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left}</style></head><body>"
        f"<h1>Run report: {escape(title)}</h1><table>{head}</table>"
        "<h2>Timeline</h2>"
        f"{report.svg(title)}"
        "<h2>Tasks</h2><table><tr><th>Task</th><th>Name</th><th>Status</th><th>Backend</th><th>Duration</th><th>Span</th>"
        f"<th>Attempts</th><th>Cost</th><th>Tokens</th></tr>{rows}</table></body></html>\n"
    )


def _params(f: dict[str, Any]) -> str:
    return shown_values(f["params"]).replace("|", "\\|")


def _efficiency(f: dict[str, Any]) -> str:
    """``100% of 1 slot``, and where the slots came from when the run's are not the plan's."""
    shown = f"{_percent(f['parallel_efficiency'])} of {counted(f['max_parallel'], 'slot')}"
    if f["max_parallel"] == f["plan_max_parallel"]:
        return shown
    return f"{shown} (the run's max_parallel, as --max-parallel set it; the plan's is {f['plan_max_parallel']})"


def _measured(f: dict[str, Any], shown: str) -> str:
    """``shown``, or that it was not measured when a task it counts was simulated."""
    return shown if f["measured"] else NOT_MEASURED


def _made_up(f: dict[str, Any]) -> str:
    """How many of the results are simulated (the fake executor's: nothing ran, their figures are
    made up), in brackets; nothing when none is."""
    count = f["simulated"]
    return f" ({count} {SIMULATED}: the fake executor ran nothing, their figures are made up)" if count else ""


def _path(path: dict[str, Any], arrow: str) -> str:
    """The critical path and its length; "-" and why when no task has a duration to chain."""
    if not path["tasks"]:
        return "- (no task ran to an end)"
    return f"{arrow.join(path['tasks'])} ({format_duration(path['seconds'])})"


def _ratio(value: float | None) -> str:
    return f"{value:.2f}×" if value else "-"


def _percent(value: float | None) -> str:
    return f"{value * 100:.0f}%" if value is not None else "-"
