"""Pauses that outlive the runner: a usage limit with a reset time is kept in state/pause.json.

A pause holds the tasks of one limit group (``limit_group``: by default the backend's name), every
backend that shares that account's limit; ``"*"`` (a file an older version wrote) holds them all.
"""

from __future__ import annotations

import contextlib
import json
import time
from datetime import datetime
from typing import Any

from orchestrator.documents import read_regular
from orchestrator.state import store
from orchestrator.state.workspace import Workspace

DEFAULT_PAUSE = 300.0  # seconds, when a usage limit names no reset time
PASSED_PAUSE = 10.0  # seconds, when the reset time it names has passed by the time it is read


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")


class Pause:
    """Persisted so that a restarted runner honours a pause its predecessor started."""

    def __init__(self, workspace: Workspace) -> None:
        self.path = workspace.state_dir / "pause.json"
        self.until = 0.0  # the latest end of any group's pause
        self.groups: dict[str, float] = {}  # limit group -> when its pause ends (seconds since the epoch)
        data = read_pause(workspace)
        if data is not None:
            with contextlib.suppress(TypeError, ValueError, AttributeError):  # a file edited by hand
                self.until = float(data.get("until", 0.0))
                groups = data.get("groups")
                self.groups = {str(k): float(v) for k, v in groups.items()} if groups else {"*": self.until}

    def until_for(self, group: str) -> float:
        return max(self.groups.get(group, 0.0), self.groups.get("*", 0.0))

    def remaining(self, group: str = "*") -> float:
        return max(0.0, self.until_for(group) - time.time())

    def start(self, reset_at: float | None, backend: str, reason: str, group: str | None = None) -> tuple[str, bool]:
        """Pause ``group`` (by default ``backend``'s) until ``reset_at``; when it names none, for
        ``DEFAULT_PAUSE``; when it has passed already (an agent slow to report it), only briefly:
        the limit is likely lifted. Returns the end, and whether the pause is new (the group was
        not paused yet): the other tasks that meet the same limit join it unannounced."""
        now = time.time()
        group = group or backend
        if not reset_at:
            until = now + DEFAULT_PAUSE
        elif reset_at > now:
            until = reset_at
        else:
            until = now + PASSED_PAUSE
        new = self.until_for(group) <= now
        self.groups = {g: t for g, t in self.groups.items() if t > now}
        self.groups[group] = max(self.groups.get(group, 0.0), until)
        self.until = max(self.groups.values())
        data = {
            "until": self.until,
            "until_iso": _iso(self.until),
            "backend": backend,
            "reason": reason,
            "groups": self.groups,
        }
        store.write_text(self.path, json.dumps(data, indent=2) + "\n")
        return _iso(self.until_for(group)), new

    def clear_if_over(self) -> None:
        if self.path.exists() and self.until <= time.time():  # (every group's pause over)
            with contextlib.suppress(OSError):
                self.path.unlink()


def read_pause(workspace: Workspace) -> dict[str, Any] | None:
    try:
        data = json.loads(read_regular(workspace.state_dir / "pause.json"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def paused(workspace: Workspace) -> bool:
    """Whether a usage-limit pause is in force now."""
    data = read_pause(workspace)
    try:
        return data is not None and float(data.get("until", 0)) > time.time()
    except (TypeError, ValueError):  # a file edited by hand
        return False


def status_notes(workspace: Workspace) -> dict[str, Any]:
    """For ``status``: a pause still in force, in words and as data."""
    data = read_pause(workspace)
    if data is None or not paused(workspace):
        return {}
    note = f"⏸️ paused until {data.get('until_iso')}: {data.get('reason')} (backend {data.get('backend')})"
    return {"paused_until": data.get("until_iso"), "pause_reason": data.get("reason"), "notes": [note]}
