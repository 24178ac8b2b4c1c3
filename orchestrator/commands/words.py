"""What the words of a command line mean where several commands take them: a count, a duration
as the plan writes it, a priority, tags, a task type. Each is refused in one line naming the accepted forms."""

from __future__ import annotations

import argparse
from collections.abc import Collection
from typing import TYPE_CHECKING

from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from orchestrator.plan.model import Plan, Task


def count(text: str) -> int:
    """A count (of retries), for argparse: 0 or more."""
    if not (text.strip().isascii() and text.strip().isdigit()):  # (str.isdigit takes "２" and "²" too)
        raise argparse.ArgumentTypeError(f"'{text}' is not a count: use 0, 1, 2...")
    return int(text)


def question(text: str) -> str:
    """An agent's question as a person names it (``Q2``, ``q2``: ``Q2``), for argparse."""
    import re

    if not re.fullmatch(r"[Qq][1-9][0-9]{0,8}", text.strip()):
        raise argparse.ArgumentTypeError(f"'{text}' is not a question's id: use Q1, Q2... as status shows it")
    return text.strip().upper()


def duration(text: str) -> float | None:
    """A duration as the settings take it (``300``, ``5m``, ``1h30m``, ``none``), for argparse."""
    from orchestrator.plan.config.settings import parse_duration

    try:
        return parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration: use seconds, 90s, 5m, 1h30m or none") from None


def positive_duration(text: str) -> float:
    """A duration that is one (``30m``, ``2h``; not ``none`` nor 0), for argparse."""
    value = duration(text)
    if value is None or value <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' is no time to wait: use 90s, 30m, 2h")
    return value


PRIORITIES = ("critical", "high", "normal", "low", "P0", "P1", "P2", "P3")  # what -p takes (P0 runs first)


def priority(given: str | None) -> str | None:
    """A priority as the plan's cell will hold it (``P0``-``P3``); a number is refused: in some
    task managers 10 runs first, here P10 would run last, so the words say which is meant."""
    from orchestrator.plan.table.cells import NUMBER_RE, parse_priority

    if given is None:
        return None
    accepted = "critical, high, normal or low, or P0-P3 (P0 runs first)"
    if NUMBER_RE.fullmatch(given.strip()):
        raise UsageError(f"--priority {given}: a number means opposite things in different tools — use {accepted}")
    try:
        level = parse_priority(given)
    except ValueError:
        raise UsageError(f"--priority {given}: not a priority — use {accepted}") from None
    if level > 3:
        raise UsageError(f"--priority {given}: use {accepted}")
    return f"P{level}"  # as the plan's other rows say it


def tags(given: list[str] | None) -> list[str]:
    """``--tag`` repeated or with commas, each once, in the order given."""
    found: list[str] = []
    for part in given or ():
        for tag in part.replace(",", " ").split():
            if tag not in found:
                found.append(tag)
    return found


def duration_text(given: str | None, flag: str) -> str | None:
    """A duration as given (``10m``), once it reads as one: the plan says it as its writer did."""
    from orchestrator.plan.config.settings import parse_duration

    if given is None:
        return None
    try:
        parse_duration(given)
    except ValueError:
        raise UsageError(f"{flag} {given}: not a duration — use seconds, 90s, 10m, 1h30m or none") from None
    return given.strip()


def each(given: str) -> str:
    """An Each cell as given (``en, fr, de``, ``glob: docs/*.md``), once it reads as one."""
    from orchestrator.plan.table.items import HINT, parse_each

    try:
        parse_each(given)
    except ValueError as exc:
        raise UsageError(f"--each {given}: {exc} — {HINT}") from None
    return given.strip()


def task_type(given: str | None, known: Collection[str]) -> str | None:
    """A task type as the plan's Type cell will hold it: one of ``known`` (the plan's types), or
    ``""`` for none (``none`` or an empty word)."""
    from orchestrator.plan.config.settings import suggest

    if given is None:
        return None
    name = given.strip().lower()
    if name in {"", "none", "-"}:
        return ""
    if name not in known:
        raise UsageError(
            f"--type {given}: no such type{suggest(name, sorted(known))} — use one of: {', '.join(sorted(known))}, "
            "or define it under 'types:' in the plan's settings"
        )
    return name


def task_id_in(plan: Plan, wanted: str, *, after: str = "") -> str:
    """``wanted`` as the plan spells it (task ids are not case-sensitive), else a ``UsageError``
    naming the closest id (``after``: what the message adds, such as "nothing was written")."""
    from orchestrator.errors import UsageError
    from orchestrator.plan.config.settings import suggest

    lowered = {task_id.lower(): task_id for task_id in plan.tasks}
    if wanted.lower() not in lowered:
        instance = instance_in(plan, wanted)
        if instance is not None:
            return instance.id
        tail = f" — {after}" if after else ""
        raise UsageError(f"no task {wanted} in the plan{suggest(wanted, list(plan.tasks))}{tail}")
    return lowered[wanted.lower()]


def task_in(plan: Plan, wanted: str, *, after: str = "") -> Task:
    """The task ``wanted`` names (ids are not case-sensitive), else a ``UsageError`` (``task_id_in``)."""
    task_id = task_id_in(plan, wanted, after=after)
    return plan.tasks[task_id] if task_id in plan.tasks else instance_in(plan, task_id) or plan.tasks[task_id]


def instance_in(plan: Plan, wanted: str) -> Task | None:
    """The instance ``T-03[2]`` names of a row run per item (``plan/instances.addressed``), or ``None``."""
    from orchestrator.plan.instances import addressed
    from orchestrator.plan.table.items import split_instance

    split = split_instance(wanted)
    if split is None:
        return None
    rows = {task_id.lower(): task for task_id, task in plan.tasks.items() if task.each is not None}
    row = rows.get(split[0].lower())
    return addressed(row, split[1]) if row is not None else None
