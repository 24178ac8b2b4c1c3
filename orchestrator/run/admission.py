"""Whether another attempt may start now: one small unit, fed plain values, reading no clock.

global cap        ``max_parallel``; after a rate limit it is halved (at least 1), then given
                  back one slot every ``RAMP_INTERVAL`` seconds (additive increase,
                  multiplicative decrease), so a fleet settles near the rate the API admits
per-profile caps  a profile's ``max_parallel``
per-backend caps  the plan's ``backend_max_parallel`` (``{claude: 2}``)
blocked backends  not logged in: their tasks are skipped, not started
pause             a usage limit: nothing starts until its reset time (wall clock)
cost limit        ``max_cost``: nothing new starts once the run has cost that much
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

RAMP_INTERVAL = 5.0  # seconds between giving back one slot after a rate limit


@dataclass(frozen=True, slots=True)
class Slot:
    """What admission needs to know of an attempt: which profile and backend it counts against."""

    profile: str | None
    backend: str


class Admission:
    def __init__(
        self,
        *,
        max_parallel: int,
        profile_caps: Mapping[str, int] | None = None,
        backend_caps: Mapping[str, int] | None = None,
        max_cost: float | None = None,
        paused_until: float = 0.0,
    ) -> None:
        self.limit = max_parallel
        self.cap = max_parallel  # lower than the limit for a while after a rate limit
        self.profile_caps = dict(profile_caps or {})
        self.backend_caps = dict(backend_caps or {})
        self.max_cost = max_cost
        self.paused_until = paused_until  # seconds since the epoch
        self.ramp_at: float | None = None  # monotonic time of the next slot given back
        self.blocked: dict[str, str] = {}  # backend -> why nothing more starts on it
        self.cost = 0.0
        self.cost_seen = False
        self._running: dict[str, Slot] = {}
        self._last_cut: float | None = None

    # --- what is running ------------------------------------------------------------------------

    def started(self, task: str, slot: Slot) -> None:
        self._running[task] = slot

    def ended(self, task: str) -> None:
        self._running.pop(task, None)

    @property
    def running(self) -> int:
        return len(self._running)

    def full(self) -> bool:
        """No room under the global cap."""
        return len(self._running) >= self.cap

    def allows(self, slot: Slot) -> bool:
        """Whether the profile's and the backend's own caps leave room for ``slot``."""
        for key, caps, value in (
            ("profile", self.profile_caps, slot.profile),
            ("backend", self.backend_caps, slot.backend),
        ):
            limit = caps.get(value) if value is not None else None
            if limit is not None and sum(1 for s in self._running.values() if getattr(s, key) == value) >= limit:
                return False
        return True

    def admits(self, slot: Slot) -> bool:
        """Whether ``slot`` may be taken from the queue now: room under its caps, or a blocked
        backend (its task is then skipped, not started)."""
        return slot.backend in self.blocked or self.allows(slot)

    # --- rate limits: fewer at once for a while ---------------------------------------------------

    def rate_limited(self, now: float, wait: float = 0.0) -> None:
        """The API said "too many": halve the cap (once for a burst of such answers: not again
        within an interval of the last cut), and give slots back from when ``wait`` (what the
        API asked for) and one interval have passed."""
        if self._last_cut is None or now - self._last_cut >= RAMP_INTERVAL:
            self.cap = max(1, self.cap // 2)
            self._last_cut = now
        self.ramp_at = max(self.ramp_at or 0.0, now + max(wait, RAMP_INTERVAL))

    def tick(self, now: float) -> None:
        """Give back a slot when one is due."""
        if self.ramp_at is not None and now >= self.ramp_at:
            self.cap = min(self.limit, self.cap + 1)
            self.ramp_at = None if self.cap >= self.limit else now + RAMP_INTERVAL

    # --- pauses, blocked backends, cost -------------------------------------------------------------

    def pause(self, until: float) -> None:
        self.paused_until = max(self.paused_until, until)

    def paused_for(self, wall_now: float) -> float:
        """Seconds until the pause is over (0 when there is none)."""
        return max(0.0, self.paused_until - wall_now)

    def block(self, backend: str, reason: str) -> None:
        self.blocked.setdefault(backend, reason)

    def spend(self, cost: float | None) -> None:
        if cost is not None:
            self.cost += cost
            self.cost_seen = True

    def over_budget(self) -> bool:
        return self.max_cost is not None and self.cost >= self.max_cost
