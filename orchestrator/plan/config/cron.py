"""A cron expression, as Debian's cron reads it: checked, and when it last fired and fires next.

Five fields, ``minute hour day-of-month month day-of-week``, each ``*``, a number, a range
``a-b``, a step ``*/n`` or ``a-b/n``, or a comma list of those; months and weekdays also by their
first three letters (``jan``, ``mon-fri``), Sunday as 0 or 7; or one of the shorthands
``@hourly``, ``@daily`` (``@midnight``), ``@weekly``, ``@monthly``, ``@yearly`` (``@annually``).
When both day fields are restricted (neither begins with ``*``), a day matching either one fires,
as cron does. Times are the machine's local time, as cron's are.

Checked here rather than by a library such as croniter: cron itself is the one that fires the
line, and croniter accepts what Debian's cron refuses (a sixth field of seconds, ``L``, ``#``,
``5/15``), which would pass ``schedule add`` and never fire; a few dozen lines hold cron's rules
exactly, with no dependency added.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NAMES = {3: {name: n + 1 for n, name in enumerate(_MONTHS)}, 4: {name: n for n, name in enumerate(_DAYS)}}
SHORTHANDS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_FORM = "five fields: minute hour day-of-month month day-of-week, such as '0 2 * * *' (02:00 every day)"
_SEARCH_DAYS = 8 * 366 + 1  # a 29 February that is a given weekday comes back within 28 years; 8 cover most


@dataclass(frozen=True, slots=True)
class Cron:
    """A checked expression: the values each field matches."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 Sunday .. 6 Saturday (7 read as 0)
    any_day: bool  # either day field begins with '*': both must match; else either may

    def matches_day(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        in_month, in_week = day.day in self.days, (day.isoweekday() % 7) in self.weekdays
        return (in_month and in_week) if self.any_day else (in_month or in_week)

    def previous(self, moment: dt.datetime) -> dt.datetime | None:
        """The last minute at or before ``moment`` (naive local time) the expression fires, or
        ``None`` when it has not within eight years."""
        for back in range(_SEARCH_DAYS):
            day = moment.date() - dt.timedelta(days=back)
            if not self.matches_day(day):
                continue
            hours = sorted((h for h in self.hours if back or h <= moment.hour), reverse=True)
            for hour in hours:
                today = not back and hour == moment.hour
                minutes = [m for m in self.minutes if not today or m <= moment.minute]
                if minutes:
                    return dt.datetime.combine(day, dt.time(hour, max(minutes)))
        return None

    def following(self, moment: dt.datetime) -> dt.datetime | None:
        """The first minute after ``moment`` (naive local time) the expression fires, or ``None``."""
        start = moment.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        for ahead in range(_SEARCH_DAYS):
            day = start.date() + dt.timedelta(days=ahead)
            if not self.matches_day(day):
                continue
            for hour in sorted(h for h in self.hours if ahead or h >= start.hour):
                today = not ahead and hour == start.hour
                minutes = [m for m in self.minutes if not today or m >= start.minute]
                if minutes:
                    return dt.datetime.combine(day, dt.time(hour, min(minutes)))
        return None


def parse(text: str) -> Cron:
    """The expression ``text``; a ``ValueError`` saying what is wrong, and what to write, if it is not one."""
    words = text.split()
    if len(words) == 1 and words[0].startswith("@"):
        if words[0].lower() == "@reboot":
            raise ValueError("@reboot is no time of day: give a schedule of times, such as '0 2 * * *' or @daily")
        shorthand = SHORTHANDS.get(words[0].lower())
        if shorthand is None:
            raise ValueError(f"{words[0]} is not a cron shorthand: use one of {', '.join(SHORTHANDS)}, or {_FORM}")
        words = shorthand.split()
    if len(words) != 5:
        raise ValueError(f"{len(words)} field{'' if len(words) == 1 else 's'} where cron wants {_FORM}")
    sets = [_field(word, index) for index, word in enumerate(words)]
    weekdays = frozenset(day % 7 for day in sets[4])
    cron = Cron(" ".join(words), sets[0], sets[1], sets[2], sets[3], weekdays, words[2][0] == "*" or words[4][0] == "*")
    if cron.following(dt.datetime(2000, 1, 1)) is None:  # (2000: a leap year, a 29 February then)
        raise ValueError("it never fires: no month has that day (such as 30 February) — check the day and month")
    return cron


def _field(word: str, index: int) -> frozenset[int]:
    name, low, high = _FIELDS[index]
    found: set[int] = set()
    for part in word.split(","):
        span, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not (step_text.isascii() and step_text.isdigit()) or int(step_text) == 0:
                raise ValueError(f"{name} '{word}': the step after / must be a whole number, 1 or more")
            step = int(step_text)
        if span == "*":
            first, last = low, high
        elif "-" in span:
            start, _, end = span.partition("-")
            first, last = _number(start, index, word), _number(end, index, word)
            if first > last:
                raise ValueError(f"{name} '{word}': the range {span} runs backwards — write the lower value first")
        elif step_text:
            raise ValueError(f"{name} '{word}': cron takes a step after * or a range only — write {span}-{high}/{step}")
        else:
            first = last = _number(span, index, word)
        found.update(range(first, last + 1, step))
    return frozenset(found)


def _number(text: str, index: int, word: str) -> int:
    name, low, high = _FIELDS[index]
    value = _NAMES.get(index, {}).get(text.lower())
    if value is not None:
        return value
    if not (text.isascii() and text.isdigit()):
        named = " or a name such as jan" if index == 3 else " or a name such as mon" if index == 4 else ""
        raise ValueError(f"{name} '{word}': '{text}' is not a number{named} — cron wants {_FORM}")
    if not low <= int(text) <= high:
        raise ValueError(f"{name} '{word}': {text} is out of range {low}-{high}")
    return int(text)
