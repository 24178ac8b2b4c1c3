"""A workspace's schedule, ``state/schedule.json``: what ``schedule add`` put in the crontab, and
how its scheduled runs went, for ``check`` (the heartbeat) and ``schedule list``.

::

    {"cron": "0 2 * * *", "added": 1764036000.0, "fired": 1764122400.1, "finished": 1764122460.5,
     "exit_code": 0, "skipped": null, "skips": 0}

``fired``: when cron last started ``schedule fire`` (a run, or a skip); ``finished`` and
``exit_code``: how the last scheduled run that started ended; ``skipped``: when a firing last found
the previous run still going (``skips``: how many times). The crontab line is the schedule itself:
this file only remembers, and ``schedule remove`` deletes it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

from orchestrator.documents import read_regular
from orchestrator.plan.table.times import iso
from orchestrator.state import store
from orchestrator.state.workspace import Workspace

SCHEDULE_NAME = "schedule.json"
LOG_NAME = "schedule.log"  # under logs/: what each scheduled run printed, appended
GRACE = 600.0  # seconds after a firing is due before a run that has not started is overdue


def path_of(workspace: Workspace) -> Path:
    return workspace.state_dir / SCHEDULE_NAME


def log_of(workspace: Workspace) -> Path:
    return workspace.logs_dir / LOG_NAME


def read(workspace: Workspace) -> dict[str, Any] | None:
    """The record, or ``None`` when the workspace has no schedule (or its file is unreadable)."""
    try:
        data = json.loads(read_regular(path_of(workspace)))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("cron"), str) else None


def write(workspace: Workspace, record: dict[str, Any]) -> None:
    workspace.state_dir.mkdir(parents=True, exist_ok=True)
    store.write_text(path_of(workspace), json.dumps(record, indent=2) + "\n")


def added(workspace: Workspace, expression: str) -> dict[str, Any]:
    """Record a schedule added (or its expression changed): what came before of its runs is kept."""
    record = read(workspace) or {}
    record.update(cron=expression, added=time.time())
    record.setdefault("skips", 0)
    write(workspace, record)
    return record


def update(workspace: Workspace, **fields: Any) -> None:
    """Note what a firing did (``fired``, ``finished``, ``exit_code``, ``skipped``) in the record,
    made if ``schedule add`` left none (a crontab line written by hand)."""
    record = read(workspace) or {"cron": "", "added": None, "skips": 0}
    if fields.pop("skip", False):
        record["skips"] = int(record.get("skips") or 0) + 1
    record.update(fields)
    write(workspace, record)


def removed(workspace: Workspace) -> None:
    store.remove(path_of(workspace))


def due(record: dict[str, Any], now: float) -> float | None:
    """When the schedule last fired at or before ``now`` (epoch), ``None`` if not known."""
    from orchestrator.plan.config import cron  # (when a schedule is read: `status` of a plan with none needs it not)

    try:
        expression = cron.parse(str(record.get("cron") or ""))
    except ValueError:
        return None
    last = expression.previous(dt.datetime.fromtimestamp(now))
    return last.timestamp() if last is not None else None


def next_firing(expression: str, now: float | None = None) -> float | None:
    from orchestrator.plan.config import cron  # (when a schedule is read: `status` of a plan with none needs it not)

    try:
        parsed = cron.parse(expression)
    except ValueError:
        return None
    moment = dt.datetime.fromtimestamp(time.time() if now is None else now)
    following = parsed.following(moment)
    return following.timestamp() if following is not None else None


def shown(workspace: Workspace, now: float) -> dict[str, Any] | None:
    """The record as ``check --json`` and ``status --json`` show it: ``cron``, ``next``, ``fired``,
    ``finished``, ``exit_code``, ``skipped``, ``skips``, ``log``; ``None`` without a schedule."""
    record = read(workspace)
    if record is None:
        return None
    return {
        "cron": record["cron"],
        "next": iso(next_firing(record["cron"], now)),
        "fired": iso(record.get("fired")),
        "finished": iso(record.get("finished")),
        "exit_code": record.get("exit_code"),
        "skipped": iso(record.get("skipped")),
        "skips": record.get("skips") or 0,
        "log": workspace.relative(log_of(workspace)),
    }


def note(shown: dict[str, Any]) -> str:
    """The line ``status`` and ``report`` give a schedule (``shown``'s dict)."""
    if shown["fired"] is None:
        last = "not fired yet"
    elif shown["finished"] is None or shown["finished"] < shown["fired"]:  # (one offset: ISO text compares)
        last = f"last fired {shown['fired']}, its run not finished"
    else:
        last = f"last fired {shown['fired']} (exit {shown['exit_code']})"
    skips = f"; {shown['skips']} skipped while a run went on" if shown["skips"] else ""
    return f"📅 scheduled '{shown['cron']}': next at {shown['next']}; {last}{skips}"


def problems(workspace: Workspace, now: float) -> list[tuple[str, str]]:
    """What ``check`` reports of the schedule, as ``(kind, message)``: ``schedule_overdue``, no
    scheduled run started since the expression last fired (``GRACE`` after it); ``schedule_failed``,
    the last scheduled run ended with an exit code that is neither 0, a skip, nor a stop where a
    person is needed (4: the tasks that wait for one are ``check``'s own findings)."""
    record = read(workspace)
    if record is None:
        return []
    found: list[tuple[str, str]] = []
    when = due(record, now - GRACE)
    fired, since = record.get("fired"), record.get("added")
    started = max(x for x in (fired, since, 0.0) if isinstance(x, int | float))
    if when is not None and started < when:
        last = f"the last at {iso(fired)}" if iso(fired) else "none since it was added"
        found.append(
            (
                "schedule_overdue",
                f"the schedule '{record['cron']}' was due at {iso(when)} and no scheduled run started ({last}) "
                "— is cron running? `orchestrator schedule list` shows the crontab's lines",
            )
        )
    code = record.get("exit_code")
    # (0: done; 3: a firing skipped while the run before still went; 4: it stopped where a person
    # is needed, at a gate or a Blocked cell: ``check`` tells which task awaits whom, not a failure)
    if isinstance(code, int) and code not in (0, 3, 4):
        log = workspace.relative(log_of(workspace))
        found.append(
            (
                "schedule_failed",
                f"the last scheduled run, started {iso(fired)}, exited {code} — its output is in {log}",
            )
        )
    return found
