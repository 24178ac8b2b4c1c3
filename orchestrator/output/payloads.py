"""What a notification says: one event as generic JSON, a Slack message or a Discord message.

Generic JSON is the event as the run reports it (``run --json``), with ``workspace`` and a
one-line ``text`` added: its headline, ``Headline``'s (a method per kind of event that has one of
its own; the others say their kind and task). Slack gets ``{"text", "blocks"}`` (mrkdwn), Discord ``{"content"}``
(markdown, at most 2,000 characters, Discord's own limit).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.plan.config.settings import format_duration
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.reporter import EventReporter
from orchestrator.state.events.runs import BudgetReached, DeadlineAtRisk, DeadlineMissed, RunFinished, RunPaused
from orchestrator.state.events.tasks import (
    ApprovalRequested,
    ItemsFailed,
    PermissionAsked,
    TaskBlocked,
    TaskCompleted,
    TaskFailed,
    TaskStarted,
    TaskStuck,
)
from orchestrator.vocabulary import question_id

DISCORD_LIMIT = 2000


def headline(event: EventRecord, project: str) -> str:
    """One line a person reads on a phone: what happened, to which task, in which project."""
    return Headline(f" — {project}" if project else "").tell(event)


def _agent(agent: str | None) -> str:
    return f" [{agent}]" if agent else ""


def _name(name: str) -> str:
    return f" {name}" if name else ""


class Headline(EventReporter[str]):
    """Each event's headline; ``where``: the project, as the headline ends."""

    def __init__(self, where: str) -> None:
        self.where = where

    def any_event(self, event: EventRecord) -> str:
        return f"{event.event}: {getattr(event, 'task', None) or ''}{self.where}".strip()

    def run_finished(self, event: RunFinished) -> str:
        counts = event.counts or {}
        parts = ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in counts.items() if n) or "nothing ran"
        cost = f"; cost ${event.cost_usd:.4f}" if event.cost_usd else ""
        mark = "✅" if event.exit_code == 0 else "❌"
        stopped = f" ({event.stopped})" if event.stopped else ""
        wall = format_duration(event.wall_seconds)
        return f"{mark} run finished in {wall}: {parts}{cost}{stopped}{self.where}"

    def task_failed(self, event: TaskFailed) -> str:
        return f"❌ {event.task}{_agent(event.agent)} failed: {event.reason}{self.where}"

    def run_paused(self, event: RunPaused) -> str:
        return f"⏸️ run paused until {event.until or '?'}: {event.reason}{self.where}"

    def budget_reached(self, event: BudgetReached) -> str:
        return f"💰 {event.message}{self.where}"

    def items_failed(self, event: ItemsFailed) -> str:
        more = event.failed - len(event.items)
        named = ", ".join(event.items) + (f" and {more:,} more" if more > 0 else "")
        total = f"; {event.total:,} in all" if event.total > event.failed else ""
        items = f"{event.failed:,} item{'s' if event.failed != 1 else ''}"
        return f"❌ {event.task}: {items} failed ({named}){total}: {event.reason}{self.where}"

    def task_stuck(self, event: TaskStuck) -> str:
        return f"⚠️ {event.task}{_agent(event.agent)} looks stuck: {event.why}{self.where}"

    def deadline_at_risk(self, event: DeadlineAtRisk) -> str:
        return f"{event.message}{self.where}"

    def deadline_missed(self, event: DeadlineMissed) -> str:
        return f"{event.message}{self.where}"

    def task_completed(self, event: TaskCompleted) -> str:
        took = f" in {format_duration(event.duration)}" if event.duration is not None else ""
        cost = f", ${event.cost_usd:.4f}" if event.cost_usd else ""
        return f"✅ {event.task}{_agent(event.agent)}{_name(event.name)} completed{took}{cost}{self.where}"

    def task_started(self, event: TaskStarted) -> str:
        return f"🔵 {event.task}{_agent(event.agent)}{_name(event.name)} started{self.where}"

    def approval_requested(self, event: ApprovalRequested) -> str:
        said = event.reason or "awaits approval"
        return f"✋ {event.task}{_agent(event.agent)}{_name(event.name)} {said}{self.where}"

    def permission_asked(self, event: PermissionAsked) -> str:
        short = question_id(event.number)
        form = f" — `orchestrator answer {event.task} {short} allow|deny`" if short else ""
        return f"✋ {event.task}{_agent(event.agent)} asks{f' {short}'.rstrip()}: {event.said}{form}{self.where}"

    def task_blocked(self, event: TaskBlocked) -> str:
        return f"🚧 {event.task}{_agent(event.agent)}{_name(event.name)} is blocked: {event.reason}{self.where}"


def _details(event: EventRecord) -> list[str]:
    """Lines below the headline: a failure's last lines of stderr."""
    lines = event.stderr_tail if isinstance(event, TaskFailed) else None
    return [str(line) for line in (lines or ())][-10:]


def payload(
    event: EventRecord, fmt: str, *, workspace: str, project: str, links: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The body posted for ``event`` in format ``fmt`` (``generic``, ``slack``, ``discord``);
    ``links``: a gate's or a question's, each word (approve, reject; allow, deny) its URL, which a
    person opens to see what it does and then confirms (a GET does nothing)."""
    text = headline(event, project)
    details = _details(event)
    if fmt == "slack":
        body = f"*{_slack_escape(text)}*"
        if details:
            body += "\n```" + _slack_escape("\n".join(details)).replace("```", "'''") + "```"
        blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": body[:3000]}}]
        if links:  # (a button with a url opens it in the browser: the page there asks to confirm)
            buttons = [_slack_button(word, url) for word, url in links.items()]
            blocks.append({"type": "actions", "elements": buttons})
        return {"text": text, "blocks": blocks}
    if fmt == "discord":
        content = f"**{_discord_escape(text)}**"
        if links:
            content += "\n" + " · ".join(f"[{word.capitalize()}](<{url}>)" for word, url in links.items())
        if details:
            content += "\n```\n" + "\n".join(details).replace("```", "'''") + "\n```"
        return {"content": fit_discord(content)}
    return {**event.as_json(), "workspace": workspace, "text": text, **({"links": dict(links)} if links else {})}


def _slack_button(word: str, url: str) -> dict[str, Any]:
    style = {"approve": "primary", "allow": "primary", "reject": "danger", "deny": "danger"}.get(word)
    button = {"type": "button", "text": {"type": "plain_text", "text": word.capitalize()}, "url": url}
    return {**button, "action_id": word, **({"style": style} if style else {})}


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
