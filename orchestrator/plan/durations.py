"""Durations and sizes as a plan writes them (``5m``, ``1h30m``, ``30d``, ``64M``), and a duration
as every command prints it (``format_duration``). Apart from the settings, which use them, so that
a setting's own module (``plan/hedging``) may read a duration too."""

from __future__ import annotations

import math
import re

__all__ = ["NONE_WORDS", "format_duration", "parse_duration", "parse_retention", "parse_size", "shown_value"]

_DURATION_RE = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m)?\s*(?:(\d+(?:\.\d+)?)\s*s?)?\s*$")
NONE_WORDS = {"none", "null", "off", "never", "no", "-", "—", "0", ""}


def shown_value(value: object) -> str:
    """``repr(value)`` cut short: a message about a value is one line, whatever the value."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_duration(value: object) -> float | None:
    """Seconds from ``300``, ``"300s"``, ``"5m"``, ``"1h30m"``; ``None``/``0``/``"none"`` mean no limit."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{shown_value(value)} is not a duration")
    if isinstance(value, int | float):
        if value < 0 or math.isnan(value) or math.isinf(value):
            raise ValueError(f"{shown_value(value)} is not a duration")
        return float(value) or None
    text = str(value).strip().lower()
    if text in NONE_WORDS:
        return None
    match = _DURATION_RE.match(text)
    if not match or not any(match.groups()):
        raise ValueError(f"{shown_value(value)} is not a duration")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    return total or None


_DAYS_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|w)\s*$")


def parse_retention(value: object) -> float | None:
    """A duration (``parse_duration``), or days and weeks (``30d``, ``2w``): how long logs are kept."""
    match = _DAYS_RE.match(str(value).lower()) if isinstance(value, str) else None
    if match is None:
        return parse_duration(value)
    return float(match.group(1)) * (86400 if match.group(2) == "d" else 7 * 86400) or None


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([kmg])(?:i?b)?|b)?\s*$")
_SIZE_UNITS = {None: 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(value: object) -> int | None:
    """Bytes from ``1048576``, ``"512k"``, ``"64M"``, ``"64MB"``, ``"1 GiB"`` (K, M and G are powers of
    1024); ``None``/``"none"`` mean no limit. At least 1 KiB: a cap must leave room to say why."""
    if value is None or (isinstance(value, str) and value.strip().lower() in {"none", "null", "off", "no", "-"}):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{shown_value(value)} is not a size")
    if isinstance(value, int | float):
        number = float(value)
    else:
        match = _SIZE_RE.match(str(value).lower())
        if not match:
            raise ValueError(f"{shown_value(value)} is not a size (use bytes, or 512K, 64M, 1G)")
        number = float(match.group(1)) * _SIZE_UNITS[match.group(2)]
    if math.isnan(number) or math.isinf(number) or number < 1024:
        raise ValueError(f"{shown_value(value)} is below the minimum of 1K")
    return int(number)


def format_duration(seconds: float | None) -> str:
    """``75.3`` -> ``"1m15s"``; under a minute one decimal (``12.5s``), under a second two
    (``0.04s``: a quick task read ``0.0s``, as if it took no time), and under a hundredth
    ``<0.01s``. Every duration the tool prints goes through here (the dashboard's app.js has
    the same rule)."""
    if seconds is None:
        return "-"
    if seconds <= 0:
        return "0s"
    if seconds < 0.005:
        return "<0.01s"
    if seconds < 0.995:  # 0.996 would print as 1.00s
        return f"{seconds:.2f}s"
    if seconds < 59.95:  # 59.96 would print as 60.0s
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds + 0.5), 60)  # half up, as app.js's Math.round
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s"
