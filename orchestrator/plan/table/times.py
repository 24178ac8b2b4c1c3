"""Moments in time as a plan writes them and as every command shows them: ISO 8601, with a zone.

A task's ``Not before`` cell (``2026-12-01T09:00Z``, ``2026-12-01 09:00+01:00``) is read here; a
time without a zone is refused, never guessed: the machine that runs the plan (a server in UTC, a
laptop abroad) would read it in its own zone. Shown back as local time with its offset.

Where a sentence for people holds a moment a file keeps exactly (a reused result's reason:
``same inputs as the run of 2026-11-25T14:02:33.116+00:00``), ``spoken_in`` says it as people
read time (``... of 25 Nov 14:02``): ``status``, a run's lines, ``report``, final_output.md and
the dashboard all say it so; ``--json`` keeps the exact moment.
"""

from __future__ import annotations

import datetime as dt
import re

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


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")  # (no locale's)
MOMENT = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d)")  # with its zone


def spoken(moment: dt.datetime, now: dt.datetime | None = None) -> str:
    """``moment`` as people read time, on this machine's clock: ``25 Nov 14:02``, and its year
    when that is not ``now``'s (``25 Nov 2025 14:02``)."""
    local = moment.astimezone()
    this_year = (now or dt.datetime.now()).astimezone().year
    year = f" {local.year}" if local.year != this_year else ""
    return f"{local.day} {MONTHS[local.month - 1]}{year} {local:%H:%M}"


def spoken_in(text: str) -> str:
    """``text`` with each ISO 8601 moment in it (one with its zone) said as ``spoken`` says it."""

    def said(found: re.Match[str]) -> str:
        try:
            return spoken(dt.datetime.fromisoformat(found.group(0)))
        except ValueError:  # (not a moment after all: 2026-13-45T...)
            return found.group(0)

    return MOMENT.sub(said, text)
