"""A moment as the tool writes it in its files (the journal, the event log, results, words): local
time with its UTC offset, to the millisecond, ``2026-11-21T09:00:00.000+01:00``; and read back.

People read moments as ``plan/table/times`` says them (``25 Nov 14:02``); this is how they are kept.
"""

from __future__ import annotations

import functools
import math
import time
from datetime import datetime


def now_iso() -> str:
    """Now, local time with its UTC offset, to the millisecond: 2026-11-21T09:00:00.000+01:00."""
    return iso_at(time.time())


def iso_at(when: float) -> str:
    """``when`` (seconds since the epoch) as ``now_iso`` writes it. The second is rounded as
    ``datetime.fromtimestamp`` rounds it (to the microsecond, half to even) and written out once a
    second (``_second``): a run writes some eight times an item, and the zone's lookup is most of
    a write's cost."""
    fraction, whole = math.modf(when)
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        whole, micro = whole + 1, micro - 1_000_000
    elif micro < 0:
        whole, micro = whole - 1, micro + 1_000_000
    date, zone = _second(int(whole), time.tzname)
    return f"{date}.{micro // 1000:03d}{zone}"


@functools.lru_cache(maxsize=4)
def _second(whole: int, names: tuple[str, str]) -> tuple[str, str]:
    """The second ``whole`` as ``iso_at`` writes it, up to its fraction, and its zone's offset.
    ``names``: the zone's (``time.tzname``), so that a zone set anew (``time.tzset``) is not
    written from before it was."""
    written = datetime.fromtimestamp(whole).astimezone().isoformat(timespec="seconds")
    return written[:19], written[19:]


def epoch_of(iso: str | None) -> float | None:
    """A time as ``now_iso`` writes it, in seconds since the epoch; None when absent or unreadable."""
    try:
        return datetime.fromisoformat(iso).timestamp() if iso else None
    except ValueError:
        return None
