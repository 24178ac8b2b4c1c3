"""A row's items' failures, notified as a digest: one notification a row at most each
``timing.notify_digest`` seconds, the first failures named, the rest counted (an ``items_failed``
event), instead of one ``task_failed`` an item: a systematic error over 5,000 items is one message a
minute, not 5,000. The first failure of a row, with no digest of it told within the interval,
goes at once; the others wait for the interval's end, or the run's (``due``, ``all``).

Pure: fed each failure and the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.state.events.tasks import ItemsFailed, TaskFailed

NAMED = 5  # items a digest names


@dataclass(slots=True)
class _Pending:
    items: list[str] = field(default_factory=list)
    reason: str = ""


class Digest:
    def __init__(self, every: float) -> None:
        self.every = every
        self.told_at: dict[str, float] = {}  # row -> when its last digest was told
        self.pending: dict[str, _Pending] = {}
        self.total: dict[str, int] = {}  # row -> its items failed so far

    def failed(self, event: TaskFailed, now: float) -> list[ItemsFailed]:
        """An item's failure (``event``, of ``T-03[N]``): the digest to tell now, if its row's is due."""
        row = event.task.partition("[")[0]
        pending = self.pending.setdefault(row, _Pending(reason=event.reason))
        pending.items.append(event.task)
        self.total[row] = self.total.get(row, 0) + 1
        return self.due(now, only=row)

    def due(self, now: float, *, only: str | None = None) -> list[ItemsFailed]:
        """The digests whose interval is over (each row's told at most each ``every`` seconds)."""
        rows = [only] if only is not None else list(self.pending)
        return [
            self._told(row, now)
            for row in rows
            if row in self.pending and now - self.told_at.get(row, -1e18) >= self.every
        ]

    def all(self, now: float) -> list[ItemsFailed]:
        """What is left to tell, as the run ends."""
        return [self._told(row, now) for row in list(self.pending)]

    def next_at(self) -> float | None:
        """When the next pending digest falls due."""
        times = [self.told_at.get(row, 0.0) + self.every for row in self.pending]
        return min(times) if times else None

    def _told(self, row: str, now: float) -> ItemsFailed:
        pending = self.pending.pop(row)
        self.told_at[row] = now
        return ItemsFailed(task=row, failed=len(pending.items), items=tuple(pending.items[:NAMED]),
                           reason=pending.reason, total=self.total[row])  # fmt: skip
