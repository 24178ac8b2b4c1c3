"""What a notification says: one event as generic JSON, a Slack message or a Discord message.

Generic JSON is the event as the run reports it (``run --json``), with ``workspace`` and a
one-line ``text`` added. Slack gets ``{"text", "blocks"}`` (mrkdwn), Discord ``{"content"}``
(markdown, at most 2,000 characters, Discord's own limit).
"""

from __future__ import annotations

from typing import Any

from orchestrator.plan.settings import format_duration

Event = dict[str, Any]
DISCORD_LIMIT = 2000


def headline(event: Event, project: str) -> str:
    """One line a person reads on a phone: what happened, to which task, in which project."""
    kind = event.get("event")
    task = event.get("task", "")
    agent = f" [{event['agent']}]" if event.get("agent") else ""
    where = f" — {project}" if project else ""
    if kind == "run_finished":
        counts = event.get("counts") or {}
        parts = ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in counts.items() if n) or "nothing ran"
        cost = f"; cost ${event['cost_usd']:.4f}" if event.get("cost_usd") else ""
        mark = "✅" if event.get("exit_code") == 0 else "❌"
        stopped = f" ({event['stopped']})" if event.get("stopped") else ""
        wall = format_duration(event.get("wall_seconds"))
        return f"{mark} run finished in {wall}: {parts}{cost}{stopped}{where}"
    if kind == "task_failed":
        return f"❌ {task}{agent} failed: {event.get('reason', '')}{where}"
    if kind == "run_paused":
        return f"⏸️ run paused until {event.get('until', '?')}: {event.get('reason', '')}{where}"
    if kind == "task_stuck":
        return f"⚠️ {task}{agent} looks stuck: {event.get('why', '')}{where}"
    if kind in ("deadline_at_risk", "deadline_missed"):
        return f"{event.get('message', kind)}{where}"
    name = f" {event['name']}" if event.get("name") else ""
    if kind == "task_completed":
        took = f" in {format_duration(event['duration'])}" if event.get("duration") is not None else ""
        cost = f", ${event['cost_usd']:.4f}" if event.get("cost_usd") else ""
        return f"✅ {task}{agent}{name} completed{took}{cost}{where}"
    if kind == "task_started":
        return f"🔵 {task}{agent}{name} started{where}"
    if kind == "approval_requested":
        return f"✋ {task}{agent}{name} {event.get('reason', 'awaits approval')}{where}"
    if kind == "task_blocked":
        return f"🚧 {task}{agent}{name} is blocked: {event.get('reason', '')}{where}"
    return f"{kind}: {task}{where}".strip()


def _details(event: Event) -> list[str]:
    """Lines below the headline: a failure's last lines of stderr."""
    return [str(line) for line in (event.get("stderr_tail") or ())][-10:]


def payload(event: Event, fmt: str, *, workspace: str, project: str) -> dict[str, Any]:
    """The body posted for ``event`` in format ``fmt`` (``generic``, ``slack``, ``discord``)."""
    text = headline(event, project)
    details = _details(event)
    if fmt == "slack":
        body = f"*{_slack_escape(text)}*"
        if details:
            body += "\n```" + _slack_escape("\n".join(details)).replace("```", "'''") + "```"
        return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": body[:3000]}}]}
    if fmt == "discord":
        content = f"**{_discord_escape(text)}**"
        if details:
            content += "\n```\n" + "\n".join(details).replace("```", "'''") + "\n```"
        return {"content": fit_discord(content)}
    return {**event, "workspace": workspace, "text": text}


def fit_discord(content: str) -> str:
    """``content`` within Discord's limit, said to be cut when it is (a code block left open is closed)."""
    if len(content) <= DISCORD_LIMIT:
        return content
    cut = content[: DISCORD_LIMIT - 20]
    if cut.count("```") % 2:
        cut += "\n```"
    return cut + "\n… (cut)"


def _slack_escape(text: str) -> str:
    """Slack's three control characters, as its mrkdwn wants them."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _discord_escape(text: str) -> str:
    """Markdown characters in names and reasons shown as themselves inside Discord's bold."""
    for char in ("\\", "*", "_", "~", "`", "|"):
        text = text.replace(char, "\\" + char)
    return text
