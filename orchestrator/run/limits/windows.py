"""How many attempts of one backend may be in flight, and how far apart they start: AIMD, as
TCP's congestion control does, with the rate the API admits learned and paced, as TCP's BBR does.

    window   starts at the backend's limit (``max_parallel``, or its ``backend_max_parallel``); a
             number, not only a count: 1.5 is one attempt in flight and a second half the time
    pace     once cut, starts are spaced by the attempts' usual duration (those the API did not
             refuse, smoothed) over the window (a window of 1.5 and attempts of 4.5 s: one start
             each 3 s), so a fleet's requests come evenly at the rate the window stands for, not
             in the bursts a sliding or fixed window of the API refuses; ``ceil(window)`` at most
    429      the first: the window becomes half (``DECREASE``, at least 1) of what was in flight
             when the refused attempt ran (the window itself, if fewer). A later one, the API
             having let attempts in since the cut before: the window becomes ``LEARNED`` of the
             attempts in flight on average from when the fleet sent again to this 429 (raised
             halfway to those of its last ``RECENT`` seconds, if more), or of itself if less: the
             rate the API admitted, learned, rather than a halving. Once a round: a 429 of an
             attempt started before the last cut cuts no more (it was let in by the window then cut).
             No attempt of the backend starts before the API's ``retry-after`` has passed (a
             floor, always honoured). An agent that does not pass the API's retry-after on (claude
             with ``CLAUDE_CODE_MAX_RETRIES=0`` says only "429") gets ``UNKNOWN_WAIT``, the least
             the Messages API asks, doubled for each round cut in a row with nothing let in
             between (``UNKNOWN_WAIT_CAP`` at most), and from the third in a row no later than
             just past the clock's next minute (a vendor's fixed window, so many requests a clock
             minute, starts afresh there); while it refuses in a row, one attempt at a time
             probes it. Cuts in a row, the API shut, learn no rate
    ramp     from ``RAMP_INTERVAL`` after the last 429 (or its retry-after, if longer), the window
             grows each ``RAMP_INTERVAL`` x the window without a 429: by a slot until a rate is
             learned, then by ``LEARNED_STEP`` of itself (a larger window is probed more slowly:
             each step more is one more chance of a 429), up to the limit
    ceiling  the window a 429 burst came at (once a rate is learned: that rate) is remembered; a
             step that takes the window back past it waits twice as long for each time in a row
             a burst came at it or below (``BACKOFF_CAP`` times at most), as TCP's CUBIC lingers
             near the window that lost last: where the API's limit sits just above a window,
             probing it again every few seconds only buys 429s. Once the window is well past the
             ceiling without a 429, it is forgotten

Pure: fed plain values, reading no clock (the times are the loop's monotonic clock; ``wall``, when
given, the epoch's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

RAMP_INTERVAL = 5.0  # seconds: a burst of 429s within it is one cut; a step given back each
DECREASE = 0.5  # the first 429 burst: the window becomes this much of what was in flight
LEARNED = 0.95  # a later 429: the window becomes this much of the rate admitted since the cut before
LEARNED_STEP = 0.05  # once a rate is learned, the window grows by this much of itself each ramp interval
FLOOR = 0.5  # the least window: one attempt in flight half the time
UNKNOWN_WAIT = 1.0  # seconds: the floor after a 429 whose retry-after the agent did not say
UNKNOWN_WAIT_CAP = 30.0
MINUTE = 60.0  # a fixed window's length, as vendors count limits a minute
BACKOFF_CAP = 4  # the slowest a step back to the ceiling comes: 4 x its interval
SMOOTH = 0.3  # the weight of an attempt's duration in the usual one
RECENT = 10.0  # seconds: the span before a 429 whose attempts in flight say the rate admitted, at least


@dataclass(slots=True)
class Window:
    limit: int
    cap: float = 0.0  # attempts that may be in flight now, on average (set to ``limit`` when 0)
    hold_until: float = 0.0  # no attempt starts before (the API's retry-after)
    ramp_at: float | None = None  # when the window next grows
    last_cut: float | None = None
    cuts: int = 0  # 429 bursts seen (the window was cut that many times)
    streak: int = 0  # rounds cut in a row, no step given back between (doubles ``UNKNOWN_WAIT``)
    ceiling: float = 0.0  # the window the last 429 burst came at (0: none, or passed since)
    misses: int = 0  # bursts in a row at or below ``ceiling``: the step back to it waits 2**misses longer
    flight: int = 0  # attempts in flight, as ``start`` and ``end`` told
    duration: float | None = None  # the attempts' usual duration (those not refused), smoothed
    last_start: float | None = None
    area: float = 0.0  # attempt-seconds in flight since the window was made
    area_at: float = 0.0  # when ``area`` was last brought up to date
    mark: tuple[float, float] | None = None  # (time, area) from the first start after the last cut
    resumed: bool = True  # an attempt has started since the last cut (``mark`` is set)
    learned: bool = False  # the window was set from a rate the API admitted
    blind: bool = False  # the last 429 said no retry-after: when the API admits again is not known
    ending: list[float] = field(default_factory=list)  # when the attempts told ended started, not yet settled
    trail: list[tuple[float, float]] = field(default_factory=list)  # (time, area) over the last ``RECENT`` s

    def __post_init__(self) -> None:
        self.cap = self.cap or float(self.limit)

    # --- what runs ------------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """An attempt of the backend started at ``now``."""
        self._settle(now)
        if not self.resumed:  # (what the API admits is measured from when the fleet sends again)
            self.mark, self.resumed = (now, self.area), True
        self.flight += 1
        self.last_start = now

    def end(self, began: float) -> None:
        """An attempt of the backend that started at ``began`` ended; it is settled at the next
        ``tick`` or ``start`` (the loop's time then), unless ``limited`` says the API refused it
        first: a refused attempt's time is not an attempt's usual duration."""
        self.ending.append(began)

    def _settle(self, now: float) -> None:
        self._count(now)
        for began in self.ending:
            self.flight = max(0, self.flight - 1)
            if self.streak and self.last_cut is not None and began >= self.last_cut:  # (the API admits again)
                self.streak = 0
                self.ramp_at = min(self.ramp_at or math.inf, now + RAMP_INTERVAL * max(1.0, self.cap))
            took = max(0.0, now - began)
            self.duration = took if self.duration is None else self.duration + SMOOTH * (took - self.duration)
        self.ending.clear()

    def _count(self, now: float) -> None:
        if now > self.area_at:
            self.area += self.flight * (now - self.area_at)
            self.area_at = now
            self.trail.append((now, self.area))
            while len(self.trail) > 2 and self.trail[1][0] <= now - RECENT:
                self.trail.pop(0)

    def _area_at(self, when: float) -> float:
        """``area`` as it stood at ``when`` (within ``RECENT`` of the last count)."""
        before = [(t, a) for t, a in self.trail if t <= when]
        after = [(t, a) for t, a in self.trail if t > when]
        if not before or not after:
            return before[-1][1] if before else (after[0][1] if after else self.area)
        (t0, a0), (t1, a1) = before[-1], after[0]
        return a0 + (a1 - a0) * (when - t0) / (t1 - t0)

    # --- the API's word -------------------------------------------------------------------------

    def limited(
        self,
        now: float,
        retry_after: float = 0.0,
        *,
        started: float | None = None,
        flight: int = 0,
        wall: float | None = None,
    ) -> bool:
        """A 429 at ``now``; ``retry_after``: seconds the API asked; ``started``: when the refused
        attempt started; ``flight``: the attempts of the backend in flight then, it included;
        ``wall``: the epoch's time then. True when it cut the window."""
        self._count(now)
        if started is not None and started in self.ending:  # (its time is not an attempt's usual one)
            self.ending.remove(started)
            self.flight = max(0, self.flight - 1)
        self._settle(now)
        cut = self.last_cut is None or (started is None or started >= self.last_cut)
        if cut:
            admitted = self._admitted(now)
            if admitted is not None:  # (the rate learned: the window just under it, probed above it slowly)
                self.misses = self.misses + 1 if self.learned else 0
                self.ceiling = max(FLOOR, min(self.cap, admitted))
                self.cap = max(FLOOR, self.ceiling * LEARNED)
                self.learned = True
            elif not (self.learned and self.streak):  # (a rate learned, the API shut: the rate holds)
                level = min(self.cap, float(flight) or self.cap)  # the window the burst came at
                self.misses = self.misses + 1 if self.ceiling and level <= self.ceiling else 0
                self.ceiling = level
                self.cap = max(1.0, math.floor(level * DECREASE))
            self.cuts += 1
            self.streak += 1
            self.last_cut = now
            self.resumed = False
        self.blind = retry_after <= 0
        if retry_after <= 0:  # (not said: the least the API asks, longer each round in a row)
            retry_after = min(UNKNOWN_WAIT_CAP, UNKNOWN_WAIT * 2 ** max(0, self.streak - 1))
            if wall is not None and self.streak > 2:  # (shut this long: perhaps until the minute)
                retry_after = min(retry_after, max(UNKNOWN_WAIT, MINUTE - wall % MINUTE + UNKNOWN_WAIT / 2))
        self.hold_until = max(self.hold_until, now + retry_after)
        later = now + max(retry_after, self._interval())  # (a new cut starts the ramp afresh)
        self.ramp_at = later if cut else max(self.ramp_at or 0.0, later)
        return cut

    def _admitted(self, now: float) -> float | None:
        """The attempts in flight on average since the fleet sent again after the last cut
        (raised halfway to those of the last ``RECENT`` seconds, when more: a sliding window
        counts only its last seconds, and a slow start before them says little of its rate),
        when what came between says the API's rate: not at the first cut (the API's burst let
        more through at first), nor in a row of cuts with nothing let in between (the API was
        shut)."""
        if self.mark is None or not self.resumed or self.streak > 0 or now <= self.mark[0]:
            return None
        since, area = self.mark
        whole = (self.area - area) / (now - since)
        if now - since <= RECENT:
            return whole
        return max(whole, (whole + (self.area - self._area_at(now - RECENT)) / RECENT) / 2)

    # --- time passing ---------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Grow the window when a step is due."""
        self._settle(now)
        if self.ramp_at is not None and now >= self.ramp_at:
            step = LEARNED_STEP * self.cap if self.learned else 1.0  # (a rate learned: probed a little at a time)
            if self.ceiling and self.cap < self.ceiling:  # (up to the ceiling, then past it: two steps)
                step = min(step, self.ceiling - self.cap)
            self.cap = min(float(self.limit), self.cap + step)
            self.streak = 0
            if self.ceiling and self.cap > self.ceiling * (1 + 2 * LEARNED_STEP):  # past it, and no 429: forgotten
                self.ceiling, self.misses = 0.0, 0
            self.ramp_at = None if self.cap >= self.limit else now + self._interval()

    def _interval(self) -> float:
        """How long until the window next grows: ``RAMP_INTERVAL`` x the window, longer when that
        step takes it back to its ceiling after bursts in a row there."""
        near = self.ceiling > 0 and self.cap + (LEARNED_STEP * self.cap if self.learned else 1) >= self.ceiling
        slower = 2 ** min(self.misses, BACKOFF_CAP.bit_length() - 1) if near else 1
        return RAMP_INTERVAL * max(1.0, self.cap) * slower

    def _paced(self) -> float | None:
        """When the next attempt may start, spaced from the last by the usual duration over the
        window (None: no spacing, the window never cut or no attempt's duration known yet)."""
        if self.cap >= self.limit or self.duration is None or self.last_start is None:
            return None
        return self.last_start + self.duration / self.cap

    def room(self, running: int, now: float) -> bool:
        """Whether one more attempt may start at ``now`` with ``running`` in flight."""
        paced = self._paced()
        most = 1 if self.streak and self.blind else math.ceil(self.cap)  # (shut, until when not said: one probes)
        return running < most and now >= self.hold_until and (paced is None or now >= paced)

    def next_change(self, now: float) -> float | None:
        """The next time ``room`` or ``cap`` may change without an attempt ending."""
        paced = self._paced()
        later = [t for t in (self.hold_until, paced) if t is not None and t > now]
        times = [t for t in (self.ramp_at, *later) if t is not None]
        return min(times) if times else None
