"""Error classes from what agent CLIs say: HTTP statuses and the words of their messages."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

from orchestrator.vocabulary import ErrorClass

_USAGE = re.compile(
    r"usage limit|limit reached|hit your [\w -]{0,20}limit|quota (?:exceeded|exhausted)|resource_exhausted"
    r"|out of (?:credits|extra usage)|weekly limit|session limit",
    re.I,
)
_RATE = re.compile(r"rate.?limit|too many requests|temporarily limiting|overloaded|\b429\b|\b529\b", re.I)
_AUTH = re.compile(
    r"invalid api key|invalid x-api-key|authentication|unauthori[sz]ed|not logged in|please run /login|log ?in"
    r"|\b401\b|oauth token|credentials",
    re.I,
)
# The API refused the request itself: sent again, it is refused again.
_REQUEST = re.compile(
    r"prompt is too long|context (?:length|window) (?:exceeded|is too)|too many tokens|invalid_request_error"
    r"|request too large|api error:? 4(?:00|13)\b",
    re.I,
)
_TRANSIENT = re.compile(
    r"connection|disconnect|network|timed? ?out|econn|socket|fetch failed|\b5\d\d\b|internal server error"
    r"|service unavailable|bad gateway|unable to connect",
    re.I,
)


def classify(message: str, status: int | None = None) -> ErrorClass:
    """The error class for an agent's error message and (when known) the API's HTTP status."""
    if status in (401, 403):
        return ErrorClass.AUTH
    if _USAGE.search(message) and reset_time(message) is not None:
        return ErrorClass.USAGE_LIMIT
    if status in (429, 529) or _RATE.search(message):
        return ErrorClass.USAGE_LIMIT if _USAGE.search(message) else ErrorClass.RATE_LIMIT
    if _USAGE.search(message):
        return ErrorClass.USAGE_LIMIT
    if _AUTH.search(message):
        return ErrorClass.AUTH
    if re.search(r"max(?:imum)?[ _-]?turns", message, re.I):
        return ErrorClass.MAX_TURNS
    if re.search(r"budget", message, re.I):
        return ErrorClass.MAX_BUDGET
    if status in (400, 413) or (status is None and _REQUEST.search(message)):
        return ErrorClass.REQUEST
    if (status is not None and status >= 500) or _TRANSIENT.search(message):
        return ErrorClass.TRANSIENT
    return ErrorClass.TRANSIENT if status is None and not message else ErrorClass.AGENT_ERROR


def reset_time(message: str, now: float | None = None) -> float | None:
    """When a usage limit lifts, from the forms agent CLIs use:

    ``Claude AI usage limit reached|1767225600`` (epoch seconds), ``resets 3pm``, ``resets at 15:30``,
    ``resets in 2h 30m`` / ``try again in 45 minutes``, codex's ``try again at 9:57 PM`` and ``try
    again at Nov 26th, 2026 9:57 PM`` (local time). A clock time with no seconds that fell in the
    minute before ``now`` is now (the limit lifts within it), not the same time tomorrow.
    """
    now = time.time() if now is None else now
    match = re.search(r"\|(\d{10})\b", message)
    if match:
        return float(match.group(1))
    match = re.search(
        r"(?:resets?|try again|retry)\s+in\s+((?:\d+\s*(?:h|hours?|m|min|minutes?|s|sec|seconds?)\s*)+)", message, re.I
    )
    if match:
        total = 0.0
        for number, unit in re.findall(r"(\d+)\s*([hms])", match.group(1), re.I):
            total += int(number) * {"h": 3600, "m": 60, "s": 1}[unit.lower()]
        return now + total if total else None
    utc = re.search(r"\(UTC\)|\bUTC\b", message) is not None
    current = datetime.fromtimestamp(now, tz=UTC) if utc else datetime.fromtimestamp(now)
    match = _AGAIN_AT.search(message)
    if match:  # codex: "try again at 9:57 PM", "try again at Nov 26th, 2026 9:57 PM"
        return _again_at(match, current)
    match = re.search(
        r"resets?\s+(?:on\s+)?([A-Z][a-z]{2})[a-z]*\s+(\d{1,2}),?\s*(\d{1,2})(?::(\d{2}))?\s*(am|pm)?", message
    )
    if match:  # "resets Nov 24, 6:48am (UTC)"
        try:
            month = datetime.strptime(match.group(1), "%b").month
        except ValueError:
            return None
        hour = _hour(int(match.group(3)), (match.group(5) or "").lower())
        try:
            target = current.replace(
                month=month,
                day=int(match.group(2)),
                hour=hour,
                minute=int(match.group(4) or 0),
                second=0,
                microsecond=0,
            )
        except ValueError:
            return None
        if target <= current:
            target = target.replace(year=target.year + 1)
        return target.timestamp()
    match = re.search(r"resets?\s+(?:at\s+)?(\d{1,2})(?::(\d{2}))?\s*(am|pm)?", message, re.I)
    if match:
        hour = int(match.group(1))
        minute = int(match.group(2) or 0)
        meridiem = (match.group(3) or "").lower()
        if meridiem == "pm" and hour < 12:
            hour += 12
        if meridiem == "am" and hour == 12:
            hour = 0
        if hour > 23 or minute > 59:
            return None
        target = current.replace(hour=hour, minute=minute, second=0, microsecond=0)
        return _ahead(target, current, timedelta(days=1)).timestamp()
    return None


_AGAIN_AT = re.compile(
    r"(?:try again|retry)\s+at\s+(?:([A-Z][a-z]{2})[a-z]*\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(?:(\d{4})\s+)?)?"
    r"(\d{1,2}):(\d{2})\s*([AaPp][Mm])?"
)


def _again_at(match: re.Match[str], current: datetime) -> float | None:
    month, day, year, hour, minute, meridiem = match.groups()
    try:
        target = current.replace(
            hour=_hour(int(hour), (meridiem or "").lower()), minute=int(minute), second=0, microsecond=0
        )
        if month:
            target = target.replace(month=datetime.strptime(month, "%b").month, day=int(day))
        if year:
            return target.replace(year=int(year)).timestamp()
    except ValueError:
        return None
    if not month:
        return _ahead(target, current, timedelta(days=1)).timestamp()
    if target > current - timedelta(minutes=1):
        return max(target, current).timestamp()
    try:
        return target.replace(year=target.year + 1).timestamp()
    except ValueError:
        return None


def _ahead(target: datetime, current: datetime, period: timedelta) -> datetime:
    """``target``, a clock time to the minute: the next one after ``current``, or ``current``
    itself when it fell in the minute before (the limit lifts within that minute)."""
    if target > current:
        return target
    if current - target < timedelta(minutes=1):
        return current
    return target + period


def _hour(hour: int, meridiem: str) -> int:
    if meridiem == "pm" and hour < 12:
        return hour + 12
    if meridiem == "am" and hour == 12:
        return 0
    return hour
