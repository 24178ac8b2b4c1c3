"""The compact table of a run's rows over many items: an instance that completed leaves the run's
plan (``run/rows``), and its row keeps of it what the row still needs: that it completed (a byte an
item) and what it spent, added to the row's sums. Its answer stays where it was written, in its
result file in the row's folder, read again as the row's result is streamed.

At 100,000 items the run then holds a window of tasks and a table of 100 kB, not 100,000 tasks,
views and results (some 4 kB each), whatever the row's size.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.state.results import ResultRecord


@dataclass(slots=True)
class Spend:
    """What instances spent, summed: cost (``None`` while none reported one), tokens by kind, seconds."""

    cost: float | None = None
    tokens: dict[str, int] = field(default_factory=dict)
    duration: float = 0.0

    def add(self, record: ResultRecord) -> None:
        if record.cost_usd is not None:
            self.cost = (self.cost or 0.0) + record.cost_usd
        for kind, count in (record.tokens or {}).items():
            self.tokens[kind] = self.tokens.get(kind, 0) + count
        self.duration += record.duration or 0.0

    def fields(self) -> dict[str, Any]:
        """As a row's result records them (``cost_usd``, ``tokens``, ``duration``)."""
        cost = None if self.cost is None else round(self.cost, 6)
        return {"cost_usd": cost, "tokens": dict(self.tokens) or None, "duration": round(self.duration, 3)}


class ItemTable:
    """Each row's instances that completed and left the run's plan, and what they spent."""

    def __init__(self) -> None:
        self._left: dict[str, bytearray] = {}  # row -> a byte an item (by number - 1): 1 once it left
        self._spent: dict[str, Spend] = {}
        self.simulated = 0  # of them, made up by the fake executor (``run_finished`` counts them)

    def keeps(self, row: str, items: int) -> None:
        """``row``, of ``items`` items, has its instances leave the plan as they complete."""
        self._left.setdefault(row, bytearray(items))
        self._spent.setdefault(row, Spend())

    def kept(self, row: str) -> bool:
        return row in self._left

    def leave(self, row: str, number: int, record: ResultRecord) -> None:
        """Instance ``number`` of ``row`` completed with ``record``, and left the plan."""
        self._left[row][number - 1] = 1
        self._spent[row].add(record)
        self.simulated += bool(record.simulated)

    def completed(self, row: str, number: int) -> bool:
        """Whether instance ``number`` of ``row`` completed and left the plan."""
        left = self._left.get(row)
        return left is not None and bool(left[number - 1])

    def spent(self, row: str, rest: Iterable[ResultRecord]) -> Spend:
        """What ``row``'s instances spent: those that left the plan, and ``rest``'s records."""
        found = self._spent.get(row)
        total = Spend(found.cost, dict(found.tokens), found.duration) if found is not None else Spend()
        for record in rest:
            total.add(record)
        return total
