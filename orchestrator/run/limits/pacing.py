"""Spend spread over time (``max_cost_per_hour``): the generic cell rate algorithm (GCRA, as ATM
switches and API gateways pace requests), with dollars for cells.

    pace      ``rate`` = the hourly figure / 3600 dollars a second
    debt      ``due``: the moment the dollars spent so far would have been spent at the pace; each
              attempt's cost, as it is booked, pushes it on by cost / rate (from now, if it lies
              behind)
    room      an attempt starts when the debt ahead of now, with what the attempts running are
              expected to cost, is at most ``TOLERANCE`` seconds of the pace (with no debt one
              always starts: a task dearer than that is not held for ever): over any 10 minutes
              the run spends its pace, give or take half a minute's worth and one attempt

Pure: fed the loop's clock, reading none.
"""

from __future__ import annotations

from dataclasses import dataclass

TOLERANCE = 30.0  # seconds of the pace an attempt may run ahead of it (a 20th of 10 minutes)
POLL = 1.0  # seconds at most between looks while the run is paced


@dataclass(slots=True)
class Pacer:
    per_hour: float
    due: float | None = None  # when what was spent is paid off at the pace (the loop's clock)

    @property
    def rate(self) -> float:
        return self.per_hour / 3600.0

    def spent(self, now: float, cost: float) -> None:
        """``cost`` dollars booked at ``now``."""
        if cost > 0 and self.per_hour > 0:
            self.due = max(self.due if self.due is not None else now, now) + cost / self.rate

    def ahead(self, now: float, running: float = 0.0) -> float:
        """Seconds of the pace the spend (with ``running``: what the attempts in flight are expected
        to cost) is ahead of ``now``."""
        debt = max(0.0, (self.due or now) - now)
        return debt + (running / self.rate if self.per_hour > 0 else 0.0)

    def room(self, now: float, running: float, expected: float = 0.0) -> bool:
        """Whether an attempt may start at ``now``, those running expected to cost ``running``:
        when the spend so far and theirs is at most ``TOLERANCE`` ahead of the pace (its own,
        ``expected``, is added once it starts: the pace is kept on average, and a burst is at most
        the tolerance and one attempt)."""
        return self.ahead(now, running) <= TOLERANCE

    def next_room(self, now: float, running: float) -> float | None:
        """When to look again while the spend is ahead of the pace (``None``: it is not)."""
        debt = max(0.0, (self.due or now) - now)
        if debt <= 0:
            return None
        return now + min(POLL, debt)
