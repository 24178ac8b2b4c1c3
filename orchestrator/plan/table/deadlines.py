"""A deadline, as a plan writes it: a task's ``Deadline`` cell, the run's ``deadline:`` setting.

Either a moment, ISO 8601 with its zone (``2026-12-01T09:00Z``, as a ``Not before`` cell: a time
without a zone is refused), or a duration from the start of the run (``45m``, ``2h``, ``3600``),
for a plan run every night whose moment moves with it. ``run/forecasts/deadlines`` says, from the
estimates, which will be missed before they are, and which were.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.plan.config.values import parse_duration
from orchestrator.plan.table.times import EXAMPLE, parse_instant

HINT = f"write an ISO 8601 time with its zone ({EXAMPLE}) or a duration from the run's start (45m, 2h)"


@dataclass(frozen=True, slots=True)
class Deadline:
    text: str  # as written
    at: float | None = None  # a moment (seconds since the epoch)
    after: float | None = None  # else seconds from the run's start

    def moment(self, run_started: float | None) -> float | None:
        """When it falls: its moment, or ``after`` the run's start (``None`` with no run started)."""
        if self.at is not None:
            return self.at
        return run_started + self.after if run_started is not None and self.after is not None else None


def parse_deadline(value: object) -> Deadline | None:
    """A deadline from a cell or a setting; ``None`` for none (empty, ``-``, ``none``); a
    ``ValueError`` saying what is wrong."""
    if value is None:
        return None
    text = str(value).strip()
    if text.lower() in {"", "-", "—", "none"}:
        return None
    if any(c.isdigit() for c in text[:4]) and ("-" in text[:8] or "T" in text):
        return Deadline(text, at=parse_instant(text))  # (a zone missing: said as for Not before)
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise ValueError(f"'{text}' is neither a time nor a duration") from None
    if seconds is None:
        return None
    return Deadline(text, after=seconds)
