"""What a run makes durable and shows as it goes (``Flusher``): about once a second, the results
written since are fsynced and master_plan.md's status blocks rewritten when they would show
something new (in a worker thread), a row's counts written for the views; at the run's end, the
blocks one last time, durably.

The plan is the person's file: a run never ends because it cannot show its status there (the
file is not UTF-8 mid-edit, a marker is broken, it is read-only or gone for a moment); it says so
once, and goes on with the plan it loaded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import anyio

from orchestrator import timing
from orchestrator.output.templates import Renders
from orchestrator.run.recorder import Recorder
from orchestrator.run.resume.blocks import Blocks
from orchestrator.run.resume.prepared import Prepared
from orchestrator.run.rows import Rows
from orchestrator.state import planfile, store
from orchestrator.state.results import ResultRecord
from orchestrator.state.workspace import Workspace


class Flusher:
    """A run's once-a-second durability and status blocks; ``tell``: a notice said now."""

    def __init__(self, workspace: Workspace, templates: Renders, tell: Callable[[str], None], *, only: bool) -> None:
        self.workspace = workspace
        self.blocks = Blocks(workspace, templates, only=only)  # what the blocks show now
        self._tell = tell
        self._unreadable_told = False

    async def every_second(
        self, prepared: Prepared, recorder: Recorder, started: anyio.Event, rows: Rows | None
    ) -> None:
        """From the first tasks' start (the first flush shows them running) until cancelled."""
        await started.wait()
        while True:
            began = time.perf_counter()
            if rows is not None:
                rows.flush()  # (rows run per item: their counts, for the views)
            await self.flush(prepared, recorder)
            await anyio.sleep(max(timing.current().flush, (time.perf_counter() - began) * 10))  # a big plan: a tenth

    async def flush(self, prepared: Prepared, recorder: Recorder) -> None:
        """Make the results written since the last flush durable, and rewrite the status blocks
        (their text made here; the writes, fsyncs included, in a worker thread)."""
        paths = recorder.files.take_unsynced()
        plan_file = self.workspace.plan_file
        blocks = await self.blocks.due(prepared, _held(prepared, recorder), new_results=bool(paths))
        if not paths and blocks is None:
            return  # nothing new to make durable or to show: most seconds of a run of agents

        def write() -> str | None:
            store.sync_files(paths)
            return _rewrite(plan_file, blocks, durable=False) if blocks is not None else None

        problem = await anyio.to_thread.run_sync(write)
        if problem is not None:
            self.blocks.forget()
        self._unreadable(problem)

    def last(self, prepared: Prepared, recorder: Recorder) -> None:
        """The run's end: what it wrote made durable, and the blocks written one last time (marked
        as status marks them: what it did not run, a row edited since)."""
        store.sync_files(recorder.files.take_unsynced())
        if prepared.plan.settings.status_blocks:
            blocks = self.blocks.final(prepared, _held(prepared, recorder))
            self._unreadable(_rewrite(self.workspace.plan_file, blocks, durable=True))

    def _unreadable(self, problem: str | None) -> None:
        if problem is not None and not self._unreadable_told:
            self._unreadable_told = True
            name = self.workspace.relative(self.workspace.plan_file)
            self._tell(
                f"{name}: its status blocks are not updated ({problem}); the run goes on with the plan it loaded"
            )


def _held(prepared: Prepared, recorder: Recorder) -> dict[str, ResultRecord]:
    """The results a run holds: those on disk at its start, then its own."""
    return {**prepared.records, **recorder.records}


def _rewrite(plan_file: Path, blocks: list[planfile.Block], *, durable: bool) -> str | None:
    """Put the status blocks into the plan file; what kept them out, if anything."""
    try:
        planfile.rewrite_blocks(plan_file, blocks, durable=durable)
    except (planfile.PlanFileUnreadable, OSError) as exc:
        return str(exc)
    return None
