"""A row run over many items, told as a person can read it: its items' starts, completions and
skips not line by line but counted, its progress one line every few seconds while it changes
(``📦 T-03: 1,234 of 5,000 items done, 2 failed, 8 running``), its first failures each told (at
most ``SHOWN_FAILURES`` a row, then counted), and the row's own end as always. ``run --verbose``
and ``watch --verbose`` (or ``watch T-03``, for that row) tell every item, as every other task is
told. The event log and ``--json`` keep every event: this is what a person reads.

Pure of I/O: fed each event with the line it would have, and the clock (``progress``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.state.events.base import EventKind, EventRecord

SHOWN_FAILURES = 5  # an item's failure told in full, at most this many a row
EVERY = 5.0  # seconds at least between two progress lines of a row
_ENDED = {EventKind.TASK_COMPLETED: "done", EventKind.TASK_FAILED: "failed", EventKind.TASK_SKIPPED: "failed",
          EventKind.TASK_CANCELLED: "failed", EventKind.TASK_INTERRUPTED: "failed"}  # fmt: skip
_COUNTED = {EventKind.TASK_STARTED, EventKind.TASK_RETRYING, EventKind.TASK_REQUEUED, *_ENDED}


@dataclass(slots=True)
class _Row:
    items: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    told_failures: int = 0
    told: tuple[int, int, int] = (0, 0, 0)  # (done, failed, running) when its progress was last told
    at: float = 0.0  # when it was last told

    def line(self, row: str) -> str:
        of = f" of {self.items:,}" if self.items else ""
        failed = f", {self.failed:,} failed" if self.failed else ""
        running = f", {self.running:,} running" if self.running else ""
        return f"📦 {row}: {self.done:,}{of} items done{failed}{running}"


class Quiet:
    """Which lines of a run's events a person is shown; ``verbose``: every one; ``row``: that
    row's items every one (``watch T-03``)."""

    def __init__(self, *, verbose: bool = False, row: str | None = None, clock: Callable[[], float] = time.monotonic):
        self.verbose, self.row, self.clock = verbose, row, clock
        self.rows: dict[str, _Row] = {}

    def lines(self, event: EventRecord, line: str | None) -> list[str]:
        """What ``event`` (whose line is ``line``) shows: its line, nothing (an item counted), or its
        line and a word that the items' further failures are counted, not told."""
        task = getattr(event, "task", None)
        if event.event == EventKind.ITEMS_KNOWN and isinstance(task, str):
            self.rows.setdefault(task, _Row()).items = int(getattr(event, "items", 0) or 0)
        if not isinstance(task, str) or "[" not in task or event.event not in _COUNTED:
            if isinstance(task, str) and task in self.rows and event.event in _ENDED:
                del self.rows[task]  # (the row's own end: told as any task's)
            return [line] if line is not None else []
        row_id = task.partition("[")[0]
        row = self.rows.setdefault(row_id, _Row())
        ended = _ENDED.get(event.event)
        if event.event == EventKind.TASK_STARTED:
            row.running += 1
        elif ended is not None or event.event == EventKind.TASK_RETRYING:
            row.running = max(0, row.running - 1)
            if ended == "done":
                row.done += 1
            elif ended == "failed":
                row.failed += 1
        if self.verbose or self.row == row_id:
            return [line] if line is not None else []
        if event.event == EventKind.TASK_FAILED and line is not None and row.told_failures < SHOWN_FAILURES:
            row.told_failures += 1
            if row.told_failures == SHOWN_FAILURES:
                return [line, f"📦 {row_id}: its items' further failures are counted, not told (`orchestrator watch "
                              f"{row_id}` tells each; `orchestrator list --status failed` lists them)"]  # fmt: skip
            return [line]
        return []

    def progress(self) -> list[str]:
        """A line for each row whose counts changed since it was last told, ``EVERY`` seconds ago
        or more (and the first time as soon as it has any)."""
        now, found = self.clock(), []
        for row_id, row in self.rows.items():
            counts = (row.done, row.failed, row.running)
            if counts != row.told and (now - row.at >= EVERY or row.told == (0, 0, 0)) and not self.verbose:
                row.told, row.at = counts, now
                found.append(row.line(row_id))
        return found
