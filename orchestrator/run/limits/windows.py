"""How many attempts of one backend may be in flight: AIMD, as TCP's congestion control does.

    window   starts at the backend's limit (``max_parallel``, or its ``backend_max_parallel``)
    429      the window becomes half (``DECREASE``, at least 1) of what was in flight when the
             refused attempt ran (the window itself, if fewer); once a round: a 429 of an attempt
             started before the last cut cuts no more (it was let in by the window then cut).
             No attempt of the backend starts before the API's ``retry-after`` has passed (a
             floor, always honoured). An agent that does not pass the API's retry-after on (claude
             with ``CLAUDE_CODE_MAX_RETRIES=0`` says only "429") gets ``UNKNOWN_WAIT``, the least
             the Messages API asks, doubled for each round cut in a row with no slot given back
             between (``UNKNOWN_WAIT_CAP`` at most): a window of 1 still sends too fast when
             attempts are short, and only spacing them slows it
    ramp     from ``RAMP_INTERVAL`` after the last 429 (or its retry-after, if longer), one slot
             given back each ``RAMP_INTERVAL`` x the window without a 429 (a larger window is
             probed more slowly: each slot more is one more chance of a 429), up to the limit
    ceiling  the window a 429 burst came at is remembered; a slot that takes the window back to
             it waits twice as long for each time in a row a burst came at it or below
             (``BACKOFF_CAP`` times at most), as TCP's CUBIC lingers near the window that lost
             last: where the API's limit sits just above a window, probing it again every few
             seconds only buys 429s. Once the window is past the ceiling without a 429, it is forgotten

Pure: fed plain values, reading no clock (the times are the loop's monotonic clock).
"""

from __future__ import annotations

from dataclasses import dataclass

RAMP_INTERVAL = 5.0  # seconds: a burst of 429s within it is one cut; one slot given back each
DECREASE = 0.5  # the window is multiplied by it on a 429 burst
UNKNOWN_WAIT = 1.0  # seconds: the floor after a 429 whose retry-after the agent did not say
UNKNOWN_WAIT_CAP = 30.0
BACKOFF_CAP = 4  # the slowest a slot back to the ceiling comes: 4 x its interval


@dataclass(slots=True)
class Window:
    limit: int
    cap: int = 0  # attempts that may be in flight now (set to ``limit`` when 0)
    hold_until: float = 0.0  # no attempt starts before (the API's retry-after)
    ramp_at: float | None = None  # when the next slot is given back
    last_cut: float | None = None
    cuts: int = 0  # 429 bursts seen (the window was cut that many times)
    streak: int = 0  # rounds cut in a row, no slot given back between (doubles ``UNKNOWN_WAIT``)
    ceiling: int = 0  # the window the last 429 burst came at (0: none, or passed since)
    misses: int = 0  # bursts in a row at or below ``ceiling``: the slot back to it waits 2**misses longer

    def __post_init__(self) -> None:
        self.cap = self.cap or self.limit

    def limited(self, now: float, retry_after: float = 0.0, *, started: float | None = None, flight: int = 0) -> bool:
        """A 429 at ``now``; ``retry_after``: seconds the API asked; ``started``: when the refused
        attempt started; ``flight``: the attempts of the backend in flight then, it included.
        True when it cut the window."""
        cut = self.last_cut is None or (started is None or started >= self.last_cut)
        if cut:
            level = min(self.cap, flight or self.cap)  # the window the burst came at
            self.misses = self.misses + 1 if self.ceiling and level <= self.ceiling else 0
            self.ceiling = level
            self.cap = max(1, int(level * DECREASE))
            self.cuts += 1
            self.streak += 1
            self.last_cut = now
        if retry_after <= 0:  # (not said: the least the API asks, longer each round in a row)
            retry_after = min(UNKNOWN_WAIT_CAP, UNKNOWN_WAIT * 2 ** max(0, self.streak - 1))
        self.hold_until = max(self.hold_until, now + retry_after)
        later = now + max(retry_after, self._interval())  # (a new cut starts the ramp afresh)
        self.ramp_at = later if cut else max(self.ramp_at or 0.0, later)
        return cut

    def tick(self, now: float) -> None:
        """Give back a slot when one is due."""
        if self.ramp_at is not None and now >= self.ramp_at:
            self.cap = min(self.limit, self.cap + 1)
            self.streak = 0
            if self.ceiling and self.cap > self.ceiling:  # past where it lost, and no 429: forgotten
                self.ceiling = self.misses = 0
            self.ramp_at = None if self.cap >= self.limit else now + self._interval()

    def _interval(self) -> float:
        """How long until the next slot is given back: ``RAMP_INTERVAL`` x the window, longer when
        that slot takes the window back to its ceiling after bursts in a row there."""
        slower = 2 ** min(self.misses, BACKOFF_CAP.bit_length() - 1) if self.cap + 1 >= self.ceiling > 0 else 1
        return RAMP_INTERVAL * self.cap * slower

    def room(self, running: int, now: float) -> bool:
        """Whether one more attempt may start at ``now`` with ``running`` in flight."""
        return running < self.cap and now >= self.hold_until

    def next_change(self, now: float) -> float | None:
        """The next time ``room`` or ``cap`` may change without an attempt ending."""
        times = [t for t in (self.ramp_at, self.hold_until if self.hold_until > now else None) if t is not None]
        return min(times) if times else None
