"""``check``'s report, for a terminal, markdown, Discord or Slack: one section per workspace.

Discord gets its markdown within its 2,000-character limit (``payloads.fit_discord``); Slack its
mrkdwn (``*bold*``, ``•`` bullets, ``&<>`` escaped).
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.output.payloads import fit_discord
from orchestrator.plan.config.settings import format_duration
from orchestrator.state import launches
from orchestrator.state.health import Health
from orchestrator.vocabulary import counted, listed

FORMATS = ("text", "markdown", "discord", "slack")
MARKS = {
    **{
        "dead_runner": "💀",
        "overdue": "⏰",
        "silent": "🔇",
        "paused": "⏸️",
        "failed": "❌",
        "awaiting_approval": "✋",
        "interrupted": "⏹️",
        "plan": "📝",
        "simulated": "🎭",
        "schedule_overdue": "📅",
        "schedule_failed": "📅",
        "launch_failed": "🪝",
        "deadline_at_risk": "⏰",
        "deadline_missed": "⏰",
        "run_error": "🛑",
    },
    "out_of_date": "🔁",  # not a finding: told beside them
}


Section = tuple[str, Health | None, str | None]  # the workspace as named, its health, or why there is none


def _totals(health: Health) -> str:
    parts = [f"{n} {state.replace('_', ' ')}" for state, n in health.counts.items() if n]
    line = f"tasks: {', '.join(parts)}" if parts else "no results yet"
    if health.runner_alive:
        line += f"; runner pid {health.runner_pid} running"
    last = health.last_run
    if last and not health.runner_alive:
        wall = last.get("wall_seconds")
        took = format_duration(float(wall)) if isinstance(wall, int | float) else "-"
        line += f"; last run finished {last.get('time')} in {took} (exit {last.get('exit_code')})"
    if health.schedule:
        line += f"; scheduled '{health.schedule['cron']}', next at {health.schedule['next']}"
    if health.launched:
        launched = health.launched
        line += f"; last started by {launched['source']} at {launched['started']} ({launches.ended(launched)})"
    return line


def _title(name: str, health: Health | None) -> str:
    if health is None:
        return f"⛔ {name}: cannot be checked"
    if health.ok:
        return f"✅ {name}: all well"
    count = len(health.findings)
    return f"⚠️ {name}: {count} thing{'s' if count != 1 else ''} need{'s' if count == 1 else ''} attention"


def render(sections: Sequence[Section], fmt: str) -> str:
    """The digest of ``sections`` in ``fmt`` (one of ``FORMATS``)."""
    blocks = [_section(name, health, error, fmt) for name, health, error in sections]
    text = "\n\n".join(blocks)
    return fit_discord(text) if fmt == "discord" else text


def _stale(health: Health) -> str:
    """The tasks ``run`` would run again: told, never a finding (nothing for a person to fix)."""
    ids = list(health.out_of_date)
    return (
        f"{counted(len(ids), 'completed task')} out of date "
        f"({listed(ids[:5], len(ids))}): `orchestrator run` runs {'it' if len(ids) == 1 else 'them'} again"
    )


def _section(name: str, health: Health | None, error: str | None, fmt: str) -> str:
    title = _title(name, health)
    # Each line's mark (its finding's, else none) and its words: a format's bullet goes before
    # the mark, the text format's "•" in its stead ("- •" in markdown and Discord was two).
    items: list[tuple[str, str]] = [("", str(error))] if health is None else []
    if health is not None and not health.ok:
        items += [(MARKS.get(f.kind, ""), f.message) for f in health.findings]
    if health is not None and health.out_of_date:
        items.append((MARKS["out_of_date"], _stale(health)))
    totals = _totals(health) if health else ""
    if fmt == "text":
        lines = [f"{mark or '•'} {words}" if health is not None else words for mark, words in items]
        return "\n".join([title, *(f"  {line}" for line in lines), *([f"  {totals}"] if totals else [])])
    lines = [f"{mark} {words}" if mark else words for mark, words in items]
    if fmt == "slack":
        esc = _slack
        body = [f"• {esc(line)}" for line in lines]
        return "\n".join([f"*{esc(title)}*", *body, f"_{esc(totals)}_" if totals else ""]).rstrip()
    heading = f"## {title}" if fmt == "markdown" else f"**{title}**"
    body = [f"- {line}" for line in lines]
    return "\n".join([heading, *body, f"*{totals}*" if totals else ""]).rstrip()


def _slack(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
