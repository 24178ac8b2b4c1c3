"""The ``hedge`` setting (plan, type, or a task's Hedge cell): when a straggling attempt of a task
gets a second one beside it (``run/races/hedge.py`` races them, the first to complete wins).

    hedge: 2x      twice the p90 of the durations the task's kind has taken: in the runs before
                   (``history``) or in this run so far, the sooner (``run/races/bounds``)
    hedge: 10m     a fixed bound, whatever its kind took
    hedge: off     never (the default)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from orchestrator.plan.config.values import format_duration, parse_duration

_FACTOR_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*x\s*$")
_OFF = {"", "off", "no", "none", "false", "-", "—", "never"}
HINT = "use a factor of the p90 of its kind's durations (2x), a duration (10m), or off"


@dataclass(frozen=True, slots=True)
class Hedge:
    """A bound past which an attempt is a straggler: ``factor`` times the p90 of its kind's learned
    durations, or ``seconds`` exactly."""

    factor: float | None = None
    seconds: float | None = None

    def bound(self, p90: float | None) -> float | None:
        """Seconds an attempt may run before it is hedged; ``None``: not known (no history)."""
        if self.seconds is not None:
            return self.seconds
        return None if p90 is None or self.factor is None else self.factor * p90

    def __str__(self) -> str:
        if self.seconds is not None:
            return format_duration(self.seconds)
        return f"{self.factor:g}x"


def parse_hedge(value: object) -> Hedge | None:
    """``2x``, ``1.5x``, ``10m``, ``600``; ``off``, ``none``, ``false``: no hedge. Raises
    ``ValueError`` with what is wrong."""
    if value is None or value is False:
        return None
    if value is True:
        raise ValueError(f"true is not a hedge bound: {HINT}")
    text = str(value).strip().lower()
    if text in _OFF:
        return None
    match = _FACTOR_RE.match(text)
    if match is not None:
        factor = float(match.group(1))
        if not 1.0 <= factor < math.inf:
            raise ValueError(f"{text!r}: a factor under 1x would hedge most attempts; {HINT}")
        return Hedge(factor=factor)
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise ValueError(f"{str(value)[:40]!r} is not a hedge bound: {HINT}") from None
    return Hedge(seconds=seconds) if seconds else None
