"""One task seen through to its end, wherever it runs: what ``orchestrator spawn`` waits for.

The task's row is in the plan already (``spawn`` wrote it as ``add`` does). From the event log's
offset where it was written, its end is looked for in the events of every run:

- a run going on takes the row (its live queue, ``run/inflight/live``) and runs it: its events are shown
  as they come, until the task's own end (``task_completed``, ``task_failed``...);
- with no run going on, a run of just that task is started in this process, as ``run --only ID``
  starts one (signals are that run's: Ctrl-C stops its attempt, and the run records it
  interrupted); if another run took the workspace first, that one is followed instead, and a
  run that ends without the task (a ``run --only`` of other tasks that began before the row was
  written) is waited out, and then the task gets its own run;
- a runner that dies with the task unfinished is followed by a run of its own here, which takes
  up what the dead runner left (``executor.settle``, ``run/resume/recovery``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator import timing
from orchestrator.errors import LockedError
from orchestrator.output.reporter import Reporter
from orchestrator.state import events
from orchestrator.state.events import EventRecord
from orchestrator.state.events.base import task_of
from orchestrator.state.events.runs import RunFinished, RunStarted
from orchestrator.state.events.tasks import TaskCancelled, TaskCompleted, TaskFailed, TaskInterrupted, TaskSkipped
from orchestrator.state.plans import plan_of
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import ExitCode, TaskStatus

#: The events that end a task in a run, and the state each leaves it in.
ENDS: dict[type[EventRecord], TaskStatus] = {
    TaskCompleted: TaskStatus.COMPLETED,
    TaskFailed: TaskStatus.FAILED,
    TaskSkipped: TaskStatus.SKIPPED,
    TaskCancelled: TaskStatus.CANCELLED,
    TaskInterrupted: TaskStatus.INTERRUPTED,
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the task ended: its state, the run that ended it, and whether that run was one this
    process started (``False``: a run that was going on took the task)."""

    task: str
    status: str
    reason: str | None
    run: str | None
    own_run: bool

    @property
    def exit_code(self) -> int:
        """0 completed; 130 interrupted (Ctrl-C, SIGTERM or SIGHUP of the run, or of ``spawn``);
        1 every other end (failed, skipped, cancelled)."""
        if self.status == TaskStatus.COMPLETED:
            return ExitCode.OK
        return ExitCode.INTERRUPTED if self.status == TaskStatus.INTERRUPTED else ExitCode.FAILED


def see_through(
    workspace: Workspace,
    task_id: str,
    since: int,
    *,
    show: Callable[[EventRecord], None],
    reporter: Callable[[], Reporter],
) -> Outcome:
    """Wait for ``task_id`` to end, from the event log's offset ``since``, running it here when no
    run going on will: ``show`` is handed the task's events of runs this process did not start
    (a run of its own shows its events through ``reporter()``)."""
    cursor = events.Cursor(since)
    own: set[str] = set()  # the runs this process started
    followed: set[str] = set()  # the runs that had an event of the task
    tries = 0
    while True:
        for event in events.read_new(workspace.events_file, cursor):
            run = event.run
            if isinstance(event, RunStarted) and event.pid == os.getpid():
                own.add(str(run))
            if (task_of(event) or "").lower() == task_id.lower():
                followed.add(str(run))
                if str(run) not in own:
                    show(event)
                if isinstance(event, TaskCompleted | TaskFailed | TaskSkipped | TaskCancelled | TaskInterrupted):
                    reason = (event.warning if isinstance(event, TaskCompleted) else event.reason) or None
                    return Outcome(task_id, ENDS[type(event)], reason, run, str(run) in own)
            elif isinstance(event, RunFinished) and str(run) in followed:
                # A run that had the task ended without an end of it: its result says how it stands.
                return _as_recorded(workspace, task_id, run, str(run) in own)
        if events.live_run(workspace.events_file) is not None:
            time.sleep(timing.current().follow_poll)
            continue
        if tries >= 3:  # runs of its own that never told of it: not waited for a fourth time
            return Outcome(task_id, TaskStatus.FAILED, "its run ended without running it", None, True)
        tries += 1
        try:
            _run_alone(workspace, task_id, reporter())
        except LockedError:  # another run took the workspace first: followed, then tried again
            time.sleep(timing.current().follow_poll)


def _run_alone(workspace: Workspace, task_id: str, reporter: Reporter) -> None:
    """A run of just ``task_id``, in this process, as ``run --only`` starts one."""
    from orchestrator.executors import LocalExecutor
    from orchestrator.run.prepare import RunOptions
    from orchestrator.run.runner import Runner

    try:
        # This process starts nothing but attempts: whatever is handed to it is theirs.
        Runner(workspace, RunOptions(only=[task_id]), reporter, LocalExecutor(whole_process=True)).run()
    finally:
        reporter.close()


def _as_recorded(workspace: Workspace, task_id: str, run: object, own_run: bool) -> Outcome:
    """The task's state as its result file records it (a run that ended without its end event)."""
    from orchestrator.state.results import read_record

    plan = plan_of(workspace)
    task = plan.tasks.get(task_id)
    record = read_record(workspace.result(task), task.id) if task is not None else None
    if record is None:
        return Outcome(task_id, TaskStatus.FAILED, "its run ended without a result for it", str(run), own_run)
    return Outcome(task_id, str(record.status), record.reason, str(run), own_run)
