"""Moments in time as a plan writes them and as every command shows them: ISO 8601, with a zone.

A task's ``Not before`` cell (``2026-12-01T09:00Z``, ``2026-12-01 09:00+01:00``) is read here; a
time without a zone is refused, never guessed: the machine that runs the plan (a server in UTC, a
laptop abroad) would read it in its own zone. Shown back as local time with its offset.
"""

from __future__ import annotations

import datetime as dt

EXAMPLE = "2026-12-01T09:00Z"
HINT = f"write an ISO 8601 time with its zone, such as {EXAMPLE} (UTC) or 2026-12-01T09:00+01:00"


def parse_instant(text: str) -> float:
    """The moment ``text`` names (seconds since the epoch); a ``ValueError`` saying what is wrong."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"'{text.strip()}' is not an ISO 8601 time") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"'{text.strip()}' has no time zone, so it would mean another moment on another machine")
    return moment.timestamp()


def iso(epoch: object) -> str | None:
    """An epoch as local ISO 8601 to the second (``2026-12-01T10:00:00+01:00``); ``None`` for none."""
    if not isinstance(epoch, int | float) or isinstance(epoch, bool):
        return None
    return dt.datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")


NOT_BEFORE = "not before "  # how the reason of a task waiting for its Not before begins


def not_before_reason(moment: float) -> str:
    """Why a task waits for its time: ``not before 2026-12-01T10:00:00+01:00``."""
    return f"{NOT_BEFORE}{iso(moment)}"
