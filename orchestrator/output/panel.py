"""The live view of a run on a terminal: its lines, which stay, above a panel of counts, a
progress bar and the running tasks with their clocks (rich).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.output.lines import Lines, estimate_line
from orchestrator.output.quiet import Quiet
from orchestrator.output.reporter import Reporter, reader_gone
from orchestrator.output.views import SIMULATED
from orchestrator.plan.config.settings import format_duration
from orchestrator.printable import visible
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.runs import RunEstimate, RunPaused, RunStarted
from orchestrator.state.events.tasks import (
    ApprovalRequested,
    ItemsKnown,
    TaskAdded,
    TaskBypassed,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskInterrupted,
    TaskRejected,
    TaskRequeued,
    TaskRetrying,
    TaskSkipped,
    TaskStarted,
)

_Ended = (
    TaskCompleted
    | TaskFailed
    | TaskSkipped
    | TaskCancelled
    | TaskBypassed
    | TaskRejected
    | TaskInterrupted
    | TaskRetrying
    | ApprovalRequested
)


class LiveReporter(Reporter):
    """On a terminal: the lines of ``PlainReporter``, which stay on screen (as cargo's or docker
    build's do), above a panel of counts, a progress bar and the running tasks with their
    clocks. Lines gathered from events are printed, and the panel redrawn, on ``flush`` (once per
    turn of the run's loop) and every second (``tick``), so a long agent is seen to be running,
    not hung. The panel goes at the end; the lines stay."""

    def __init__(self, *, verbose: bool = False) -> None:
        from rich.console import Console
        from rich.live import Live

        self.closed = False  # the terminal went away: nothing more is shown
        self.console = Console()
        self.running: dict[str, tuple[str, float]] = {}
        self.done = {"completed": 0, "failed": 0, "skipped": 0}
        self.total = 0
        self.rows: dict[str, list[int]] = {}  # a row run per item -> [completed, failed or skipped, items]
        self.paused: str | None = None
        self.estimate: str | None = None  # the run's end as its latest run_estimate said it
        self.simulated = False  # run --executor fake: the panel says nothing it shows is real work
        self.lines = Lines()  # (the workspace its paths are from: the run's)
        self.quiet = Quiet(verbose=verbose)  # (a row over many items: its counts in the panel, not a line each)
        self._lines: list[str] = []
        # Redrawn by the run itself (``flush``, ``tick``), never by a thread of rich's own: what
        # the panel shows is changed and drawn on one thread, and a closed terminal is met there.
        self.live = Live(self._render(), console=self.console, auto_refresh=False, transient=True)
        self._guarded(self.live.__enter__)

    def _render(self) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        table = Table.grid(padding=(0, 2))
        finished = sum(self.done.values())
        colour = "red" if self.done["failed"] else "green"  # rich's own is red-pink: red says a task failed
        table.add_row(
            ProgressBar(
                total=max(self.total, 1), completed=finished, width=30, complete_style=colour, finished_style=colour
            ),
            f"{finished}/{self.total}  🔵 {len(self.running)} running  ✅ {self.done['completed']}  "
            f"❌ {self.done['failed']}  ⏭️ {self.done['skipped']}",
        )
        for row, (done, bad, items) in list(self.rows.items())[:8]:  # (one bar a row run per item)
            style = "red" if bad else "green"
            bar = ProgressBar(total=max(items, 1), completed=done + bad, width=30, complete_style=style,
                              finished_style=style)  # fmt: skip
            table.add_row(bar, Text(f"📦 {row}: {done:,} of {items:,} done" + (f", {bad:,} not" if bad else "")))
        if self.simulated:
            table.add_row(f"🎭 {SIMULATED}", "the fake executor runs nothing: every result is made up")
        # What a plan or an agent wrote (a task's name, a pause's reason) goes in as Text: drawn as
        # written, never read as rich markup (a name holding "[/]" stopped the run), its control
        # characters made visible where it enters the panel (``event``).
        if self.paused:
            table.add_row("⏸️ paused", Text(self.paused))
        if self.estimate:
            table.add_row("", Text(self.estimate))
        now = time.monotonic()
        for task, (name, since) in list(self.running.items())[:20]:
            table.add_row(Text(f"  {task}"), Text(f"{format_duration(now - since)}  {name}"))
        if len(self.running) > 20:
            table.add_row("", f"… and {len(self.running) - 20} more")
        return table

    # --- the panel, from the events: each shown as its line, after what it changes -----------------

    def any_event(self, event: EventRecord) -> None:
        self._lines += self.quiet.lines(event, self.lines.said(event))

    def run_started(self, event: RunStarted) -> None:
        self.total, self.simulated, self.paused = event.to_run, bool(event.simulated), None
        self.lines.workspace = Path(event.workspace) if event.workspace else self.lines.workspace
        self.any_event(event)

    def task_started(self, event: TaskStarted) -> None:
        self.running[event.task] = (visible(event.name), time.monotonic())  # (the plan's words)
        self.paused = None
        self.any_event(event)

    def task_completed(self, event: TaskCompleted) -> None:
        self._ended(event, "completed")
        self.paused = None

    def task_failed(self, event: TaskFailed) -> None:
        self._ended(event, "failed")

    # (a task cancelled, bypassed or rejected is done with, as a skip is)
    def task_skipped(self, event: TaskSkipped) -> None:
        self._ended(event, "skipped")

    def task_cancelled(self, event: TaskCancelled) -> None:
        self._ended(event, "skipped")

    def task_bypassed(self, event: TaskBypassed) -> None:
        self._ended(event, "skipped")

    def task_rejected(self, event: TaskRejected) -> None:
        self._ended(event, "skipped")

    def task_interrupted(self, event: TaskInterrupted) -> None:
        self._ended(event, None)

    def task_retrying(self, event: TaskRetrying) -> None:
        self._ended(event, None)

    def approval_requested(self, event: ApprovalRequested) -> None:
        self._ended(event, None)

    def task_added(self, event: TaskAdded) -> None:
        self.total += 1
        self.any_event(event)

    def items_known(self, event: ItemsKnown) -> None:
        self.rows[event.task] = [0, 0, event.items]
        if event.joined:  # (instances that were not in the run's count at its start)
            self.total += event.items
        self.any_event(event)

    def task_requeued(self, event: TaskRequeued) -> None:
        self.total += 1  # (counted done once already: it is to do again)
        self.any_event(event)

    def run_estimate(self, event: RunEstimate) -> None:
        self.estimate = visible(estimate_line(event))
        self.any_event(event)

    def run_paused(self, event: RunPaused) -> None:
        self.paused = visible(f"until {event.until}: {event.reason}")  # (the agent's words)
        self.any_event(event)

    def _ended(self, event: _Ended, count: str | None) -> None:
        """A running task's attempt ended: off the panel's running tasks; ``count``: the count it adds to."""
        self.running.pop(event.task, None)
        if count is not None:
            self.done[count] += 1
            row = self.rows.get(event.task.partition("[")[0]) if event.task.endswith("]") else None
            if row is not None:
                row[0 if count == "completed" else 1] += 1
        self.any_event(event)

    def flush(self) -> None:
        """Print the lines gathered (above the panel, where they stay; as text, never as rich
        markup) in one write, and redraw the panel."""
        self._guarded(lambda: self.live.update(self._render(), refresh=True))  # what a print below redraws
        if self._lines:
            text = "\n".join(self._lines)
            self._lines.clear()
            self._guarded(lambda: self.live.console.print(text, markup=False, highlight=False, emoji=False))

    def tick(self) -> None:
        self.flush()

    def _guarded(self, draw: Callable[[], object]) -> None:
        if self.closed:
            return
        try:
            draw()
        except OSError as exc:  # the terminal was closed: the run goes on, unseen
            self.closed = True
            reader_gone(sys.stdout, exc)

    def close(self) -> None:
        self.flush()
        try:
            self.live.__exit__(None, None, None)
        except OSError as exc:
            reader_gone(sys.stdout, exc)
