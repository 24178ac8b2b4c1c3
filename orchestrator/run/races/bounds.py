"""When an attempt is a straggler (``run/races/hedge`` races it): the bound its ``hedge`` setting gives
it, worked out from what its kind took, and kept live while the run goes on.

A factor (``hedge: 2x``) multiplies the p90 of a kind's completed attempts (``estimates.kind_of``:
its type, else profile and backend). Two cohorts give one: the runs before, learned from the event
log as the run starts, and this run's own, which grows as its attempts of the kind complete (only
completed attempts that ran a process: a stopped race's loser never counts, a winner counts as its
task's attempt). Each gives a p90 once it holds ``MIN_COHORT`` durations, and the sooner of the two
is the bound: a batch whose siblings all took 40 s here knows an attempt at 5 minutes is stuck,
whatever last week's runs took, and a first run with no history learns from its own siblings. With
neither, only the timeout's 80% (when a task has one) bounds it, the moment ``task_stuck`` warns.

A race waiting for its attempt's bound reads it again each time a sibling of its kind completes
(``Cohorts.waking``: its wait is cut short), never on a clock: a bound moves only then.
"""

from __future__ import annotations

import bisect
import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import anyio

from orchestrator.plan.config.settings import Settings, format_duration
from orchestrator.state.events import EventRecord
from orchestrator.state.kept.history import ended, seconds

MIN_COHORT = 3  # completed attempts of a kind before its p90 is trusted
STUCK_SHARE = 0.8  # with no history: the timeout's share at which a task is stuck (``run/notices/notify``)


def cohorts(all_events: Iterable[EventRecord], kinds: Mapping[str, str]) -> dict[str, list[float]]:
    """Each kind's durations: its completed attempts (not simulated), as ``task_started`` recorded
    their kind (else the plan's kind of their task)."""
    found: dict[str, list[float]] = {}
    for attempt in ended(all_events):
        if attempt["outcome"] != "completed" or attempt.get("simulated"):
            continue
        kind = attempt.get("kind") or kinds.get(attempt["task"])
        took = seconds(attempt)
        if kind and took is not None:
            found.setdefault(str(kind), []).append(took)
    return found


def p90(durations: list[float] | None) -> float | None:
    """The 90th percentile of ``durations`` (``None``: fewer than ``MIN_COHORT``), as
    ``statistics.quantiles(method="inclusive")`` cuts it."""
    return _p90_of_sorted(sorted(durations)) if durations else None


def _p90_of_sorted(durations: list[float]) -> float | None:
    """``p90`` of durations already sorted: read off in constant time (a kind's cohort in this run
    is kept sorted, and read again at each completion: sorting 10,000 durations each time is not)."""
    if len(durations) < MIN_COHORT:
        return None
    place, share = divmod(9 * (len(durations) - 1), 10)
    return (durations[place] * (10 - share) + durations[place + 1] * share) / 10


@dataclass(frozen=True, slots=True)
class Bound:
    seconds: float
    why: str  # where it comes from, for the event's line


def bound_of(settings: Settings, learned: list[float] | None, ran: list[float] | None = None) -> Bound | None:
    """When an attempt with ``settings`` is a straggler (``None``: never, or not yet), its kind
    having taken ``learned`` in the runs before and ``ran`` in this one (each sorted)."""
    hedge = settings.hedge
    if hedge is None:
        return None
    if hedge.seconds is not None:
        return Bound(hedge.seconds, f"hedge: {hedge}")
    found: list[Bound] = []
    for where, durations in (("in the runs before", learned or []), ("in this run", ran or [])):
        p = _p90_of_sorted(durations)
        bound = hedge.bound(p)
        if bound is not None:
            found.append(Bound(bound, f"{hedge} the p90 of its kind {where} ({format_duration(p)}, "
                                      f"{len(durations)} attempts)"))  # fmt: skip
    if found:
        return min(found, key=lambda b: b.seconds)  # (a tie: the runs before's, known from the start)
    if settings.timeout:  # no history: as late as the stuck warning
        return Bound(settings.timeout * STUCK_SHARE, "80% of its timeout (its kind has no history yet)")
    return None


class Cohorts:
    """What each kind took: in the runs before (``learned``), and in this run (``ran``, sorted), to
    which each attempt that completes adds its time; and the races waiting on a kind's bound, each
    woken when that kind's cohort grows."""

    def __init__(self, learned: dict[str, list[float]]) -> None:
        self.learned = {kind: sorted(durations) for kind, durations in learned.items()}
        self.ran: dict[str, list[float]] = {}
        self._waiting: dict[str, set[anyio.CancelScope]] = {}

    def bound(self, kind: str, settings: Settings) -> Bound | None:
        """When an attempt of ``kind`` with ``settings`` is a straggler, as its kind's cohorts say now."""
        return bound_of(settings, self.learned.get(kind), self.ran.get(kind))

    def took(self, kind: str, seconds: float) -> None:
        """An attempt of ``kind`` completed in ``seconds``: in its cohort, and every race waiting on
        the kind's bound woken to read it again."""
        bisect.insort(self.ran.setdefault(kind, []), seconds)
        for scope in self._waiting.get(kind, ()):
            scope.cancel()

    @contextlib.contextmanager
    def waking(self, kind: str, scope: anyio.CancelScope) -> Iterator[None]:
        """``scope``, a race's wait for its bound, cancelled when an attempt of ``kind`` completes."""
        waiting = self._waiting.setdefault(kind, set())
        waiting.add(scope)
        try:
            yield
        finally:
            waiting.discard(scope)
