"""Whether another attempt may start now: one small unit, fed plain values, reading no clock.

global cap        ``max_parallel``
per-backend AIMD  each backend's own window of attempts in flight (``run/limits/windows``): cut on
                  a 429 burst (halved, then to the rate the API admitted), its starts spaced at it,
                  grown each ``RAMP_INTERVAL`` x window without one, the API's retry-after a floor
                  before the backend's next attempt; a fleet settles near the rate the API
                  admits, and one backend's limit does not slow another
per-profile caps  a profile's ``max_parallel``
per-backend caps  the plan's ``backend_max_parallel`` (``{claude: 2}``): the window's limit
blocked backends  not logged in: their tasks are skipped, not started
pause             a usage limit: nothing of its limit group (``limit_group``, by default the
                  backend) starts until its reset time (wall clock); ``"*"``: every group
cost limit        ``max_cost``: an attempt starts only when its expected cost (``Slot.expected_cost``)
                  fits what is left once the attempts running are counted at theirs
                  (``fits``); at the limit nothing new starts (``run/held/budget``: the run
                  waits for a higher budget; ``at_budget: stop``: what runs is stopped too)
pace              ``max_cost_per_hour``: spend spread over time (``run/limits/pacing``); a backend's
                  ``backend_tokens_per_minute``: its tokens spread so (``Slot.expected_tokens``)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.run.limits.pacing import Pacer
from orchestrator.run.limits.windows import RAMP_INTERVAL, Window

__all__ = ["RAMP_INTERVAL", "Admission", "Slot"]


@dataclass(frozen=True, slots=True)
class Slot:
    """What admission needs to know of an attempt: which profile and backend it counts against."""

    profile: str | None
    backend: str
    group: str | None = None  # its limit group (``limit_group``); None: the backend's own
    expected_cost: float | None = None  # what its attempt is expected to cost (its forecast's p50)
    expected_tokens: float | None = None  # the tokens it is expected to use (its forecast's p50)

    @property
    def limit(self) -> str:
        return self.group or self.backend


class Admission:
    def __init__(
        self,
        *,
        max_parallel: int,
        profile_caps: Mapping[str, int] | None = None,
        backend_caps: Mapping[str, int] | None = None,
        max_cost: float | None = None,
        paused: Mapping[str, float] | None = None,
        pacer: Pacer | None = None,
        token_pace: Mapping[str, int] | None = None,
    ) -> None:
        self.limit = max_parallel
        self.windows: dict[str, Window] = {}  # backend -> its AIMD window (made when first needed)
        self.now = 0.0  # the loop's monotonic time, as ``tick`` last saw it
        self.profile_caps = dict(profile_caps or {})
        self.backend_caps = dict(backend_caps or {})
        self.max_cost = max_cost
        self.paused = dict(paused or {})  # limit group ("*": all) -> when its pause ends (epoch seconds)
        self.wall = 0.0  # the wall clock, as ``tick`` last saw it
        self.blocked: dict[str, str] = {}  # backend -> why nothing more starts on it
        self.cost = 0.0
        self.cost_seen = False
        self.pacer = pacer  # ``max_cost_per_hour`` (None: spend is not paced)
        self.committed: dict[str, float] = {}  # task -> what its attempt running is expected to cost
        # backend -> its tokens a minute, paced (``backend_tokens_per_minute``: in tokens an hour)
        self.token_pacers = {b: Pacer(float(n) * 60) for b, n in (token_pace or {}).items()}
        self._running: dict[str, Slot] = {}
        self._since: dict[str, float] = {}  # task -> when its attempt started (the loop's clock)
        # Stragglers past their bound waiting for a slot for their hedge (``run/races/hedge``): the next
        # slots that free are theirs, before the ready queue's.
        self.reserved = 0

    # --- what is running ------------------------------------------------------------------------

    def started(self, task: str, slot: Slot) -> None:
        self._running[task] = slot
        self._since[task] = self.now
        if slot.expected_cost:
            self.committed[task] = slot.expected_cost
        self.window(slot.backend).start(self.now)  # (its pace, and what the API admits, learned)

    def _tokens_on(self, backend: str) -> float:
        """The tokens the attempts of ``backend`` in flight are expected to use."""
        return sum(s.expected_tokens or 0.0 for s in self._running.values() if s.backend == backend)

    def ended(self, task: str, tokens: float | None = None) -> float | None:
        """``task``'s attempt is over (``tokens``: what it used, paced when its backend's are);
        when it started (the loop's clock), if it was running."""
        slot = self._running.pop(task, None)
        began = self._since.pop(task, None)
        if slot is not None and began is not None:
            self.window(slot.backend).end(began)
        if slot is not None and tokens and (paced := self.token_pacers.get(slot.backend)) is not None:
            paced.spent(self.now, tokens)
        self.committed.pop(task, None)
        return began

    @property
    def running(self) -> int:
        return len(self._running)

    def full(self) -> bool:
        """No room under the global cap (the slots stragglers wait for, for their hedges, held)."""
        return len(self._running) + self.reserved >= self.limit

    def room_for_hedge(self) -> bool:
        """A slot free for a straggler's hedge (one of those ``reserved``)."""
        return len(self._running) < self.limit

    def window(self, backend: str) -> Window:
        if backend not in self.windows:
            self.windows[backend] = Window(min(self.limit, self.backend_caps.get(backend, self.limit)))
        return self.windows[backend]

    def allows(self, slot: Slot) -> bool:
        """Whether the backend's window and the profile's and backend's own caps leave room for ``slot``."""
        window = self.windows.get(slot.backend)
        if window is not None and not window.room(self.on(slot.backend), self.now):
            return False
        for key, caps, value in (
            ("profile", self.profile_caps, slot.profile),
            ("backend", self.backend_caps, slot.backend),
        ):
            limit = caps.get(value) if value is not None else None
            if limit is not None and sum(1 for s in self._running.values() if getattr(s, key) == value) >= limit:
                return False
        return True

    def holding(self, slot: Slot) -> str | None:
        """What keeps ``slot`` from a free slot now, in the words of the setting that does (the
        first that holds); ``None``: nothing does."""
        if len(self._running) >= self.limit:
            return f"max_parallel {self.limit} ({len(self._running)} running)"
        window = self.windows.get(slot.backend)
        if window is not None and not window.room(self.on(slot.backend), self.now):
            return f"{slot.backend}'s rate limit ({window.cap:.3g} at once since its API answered 429)"
        for key, caps, value in (
            ("profile", self.profile_caps, slot.profile),
            ("backend", self.backend_caps, slot.backend),
        ):
            limit = caps.get(value) if value is not None else None
            if limit is not None and sum(1 for s in self._running.values() if getattr(s, key) == value) >= limit:
                return f"the {key} {value}'s max_parallel {limit}"
        return None

    def on(self, backend: str) -> int:
        """Attempts of ``backend`` in flight."""
        return sum(1 for s in self._running.values() if s.backend == backend)

    def admits(self, slot: Slot) -> bool:
        """Whether ``slot`` may be taken from the queue now: room under its caps, or a blocked
        backend (its task is then skipped, not started)."""
        if self.paused_for(self.wall, slot.limit) > 0 or not self.fits(slot):
            return False
        if self.pacer is not None and not self.pacer.room(self.now, sum(self.committed.values()),
                                                          slot.expected_cost or 0):  # fmt: skip
            return False
        tokens = self.token_pacers.get(slot.backend)
        if tokens is not None and not tokens.room(self.now, self._tokens_on(slot.backend), slot.expected_tokens or 0):
            return False
        return slot.backend in self.blocked or self.allows(slot)

    def fits(self, slot: Slot) -> bool:
        """Whether ``slot``'s attempt fits the budget: the run has not spent its ``max_cost``, and
        what it is expected to cost fits what is left once the attempts running are counted at
        what they are expected to cost (an attempt with no forecast counts nothing)."""
        if self.max_cost is None:
            return True
        if self.over_budget():
            return False
        return self.cost + sum(self.committed.values()) + (slot.expected_cost or 0.0) <= self.max_cost

    # --- rate limits: fewer at once for a while ---------------------------------------------------

    def rate_limited(self, backend: str, now: float, retry_after: float = 0.0, started: float | None = None) -> bool:
        """``backend``'s API said "too many" at ``now`` to an attempt (ended) that ``started`` then,
        asking ``retry_after`` seconds: its window is cut (once a round; True when it was), and
        nothing of it starts before the retry-after."""
        flight = self.on(backend) + 1  # (the refused attempt's too)
        return self.window(backend).limited(now, retry_after, started=started, flight=flight, wall=self.wall or None)

    def tick(self, now: float, wall: float | None = None) -> None:
        """Give back the slots that are due (``now``: the loop's clock; ``wall``: seconds since the epoch)."""
        self.now = now
        self.wall = self.wall if wall is None else wall
        for window in self.windows.values():
            window.tick(now)

    @property
    def ramp_at(self) -> float | None:
        """The next time a window gives a slot back or its retry-after floor ends."""
        times = [t for w in self.windows.values() if (t := w.next_change(self.now)) is not None]
        pacers = [self.pacer] if self.pacer is not None else []
        times += [t for p in [*pacers, *self.token_pacers.values()] if (t := p.next_room(self.now, 0.0)) is not None]
        return min(times) if times else None

    # --- pauses, blocked backends, cost -------------------------------------------------------------

    def pause(self, until: float, group: str = "*") -> None:
        self.paused[group] = max(self.paused.get(group, 0.0), until)

    def paused_for(self, wall_now: float, group: str = "*") -> float:
        """Seconds until ``group``'s pause is over (0 when there is none)."""
        return max(0.0, max(self.paused.get(group, 0.0), self.paused.get("*", 0.0)) - wall_now)

    def next_unpause(self, wall_now: float) -> float | None:
        """Seconds until the first pause in force ends (None when none is)."""
        left = [until - wall_now for until in self.paused.values() if until > wall_now]
        return min(left) if left else None

    def block(self, backend: str, reason: str) -> None:
        self.blocked.setdefault(backend, reason)

    def spend(self, cost: float | None) -> None:
        if cost is not None:
            self.cost += cost
            self.cost_seen = True
            if self.pacer is not None:
                self.pacer.spent(self.now, cost)

    def over_budget(self) -> bool:
        """Whether the run has spent its ``max_cost`` (none: never)."""
        return self.max_cost is not None and self.cost >= self.max_cost
