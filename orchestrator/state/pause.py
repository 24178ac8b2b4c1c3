"""Run-wide pauses that outlive the runner: a usage limit with a reset time is kept in state/pause.json."""

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
        self.until = 0.0
        data = read_pause(workspace)
        if data is not None:
            self.until = float(data.get("until", 0.0))

    def remaining(self) -> float:
        return max(0.0, self.until - time.time())

    def start(self, reset_at: float | None, backend: str, reason: str) -> str:
        """Pause until ``reset_at``; when it names none, for ``DEFAULT_PAUSE``; when it has passed
        already (an agent slow to report it), only briefly: the limit is likely lifted."""
        now = time.time()
        if not reset_at:
            until = now + DEFAULT_PAUSE
        elif reset_at > now:
            until = reset_at
        else:
            until = now + PASSED_PAUSE
        self.until = max(self.until, until)
        data = {"until": self.until, "until_iso": _iso(self.until), "backend": backend, "reason": reason}
        store.write_text(self.path, json.dumps(data, indent=2) + "\n")
        return _iso(self.until)

    def clear_if_over(self) -> None:
        if self.path.exists() and self.remaining() <= 0:
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
