"""Starting a ready task: what it takes between the queue's pop and its attempt's first line.

A task popped from the ready queue, past admission and its gate (``Scheduler._fill``), starts
here: its brief's fingerprints (with its upstream results, and without), a merge conflict of its
own still unresolved (it stays failed), the cache (a result kept for the same inputs: no process
started), its attempt's number and backend (its own, or a fallback while its own is down:
``run/limits/failover``), the journal's trace a later run resumes from, admission's slot, and
the ``task_started`` line. What it returns, the loop runs (``Scheduler._attempt``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping

from orchestrator.backends.base import CannotInvoke
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.model import Plan
from orchestrator.run.attempts import Attempt, Launcher, Resumable
from orchestrator.run.board import Board
from orchestrator.run.limits.admission import Admission, Slot
from orchestrator.run.limits.failover import Breakers
from orchestrator.run.recorder import Recorder
from orchestrator.run.resume.reuse import Reuse
from orchestrator.run.resume.selection import Upstream, fingerprint, upstream_of
from orchestrator.run.rows import Rows
from orchestrator.run.worktrees.merges import MergeQueue
from orchestrator.state.causes import Cause, CauseKind
from orchestrator.state.events.tasks import TaskFailover
from orchestrator.state.journal import Journal
from orchestrator.state.results import ResultRecord
from orchestrator.vocabulary import TaskStatus


class Starts:
    """What starts each ready task of a run: an attempt made ready to run, or the task settled
    without one (its conflict unresolved, its result from the cache, a backend it cannot call)."""

    def __init__(
        self,
        *,
        plan: Plan,
        settings: Mapping[str, Settings],
        signatures: Mapping[str, str],
        records: Mapping[str, ResultRecord],
        sessions: Mapping[str, Resumable],
        launcher: Launcher,
        recorder: Recorder,
        journal: Journal,
        admission: Admission,
        breakers: Breakers,
        board: Board,
        expected: Mapping[str, float],
        merges: MergeQueue | None,
        reuse: Reuse | None,
        rows: Rows | None = None,
    ) -> None:
        self.plan, self.settings, self.signatures, self.records = plan, settings, signatures, records
        self.sessions = sessions  # task -> agent session an interrupted attempt left, to resume
        self.launcher, self.recorder, self.journal = launcher, recorder, journal
        self.admission, self.breakers, self.board = admission, breakers, board
        self.expected = expected  # task -> what the run expects it to take (``Forecast.expected``)
        self.merges, self.reuse = merges, reuse
        self.rows = rows  # the rows run once per item (``run/items``): settled at their turn, no attempt
        if rows is not None:
            rows.attach(board)

    def slot(self, task_id: str) -> Slot:
        """What of admission's limits ``task_id`` counts against: its profile, its backend (its
        own, or a fallback while its own is down), its limit group."""
        settings = self.settings[task_id]
        backend = self.breakers.choose(settings, time.time(), self.admission.blocked)[0]
        return Slot(self.plan.tasks[task_id].profile, backend, settings.limit_group)

    def start(self, task_id: str) -> Attempt | None:
        """``task_id``'s next attempt, journaled, counted as running and told; ``None`` when the
        task was settled without one."""
        self.recorder.workspace.check_inside()  # its logs go nowhere a symlink put meanwhile leads
        task = self.plan.tasks[task_id]
        upstream = upstream_of(task.upstream_ids, self.records)
        of_brief, key = _fingerprints(self.signatures[task_id], upstream)
        if task.each is not None and self.rows is not None:
            self.rows.settle(task, of_brief)  # (its instances are what runs)
            return None
        if self.merges is not None and self.merges.unresolved(task, self.records.get(task_id), of_brief, self.recorder):
            self.board.skip_downstream(task_id, TaskStatus.FAILED)  # its conflict not resolved yet: it stays failed
            return None
        if self.reuse is not None and self.reuse.reuse(task, of_brief) is not None:
            self.board.completed(task_id)  # the cache held its inputs' result: no process started
            return None
        number, first = self.board.numbered(task_id)
        try:
            backend, fallen = self.breakers.choose(self.settings[task_id], time.time(), self.admission.blocked)
            attempt = self.launcher.prepare(
                task, number, of_brief, resume=self.sessions.get(task_id), on=backend, brief_key=key
            )
        except CannotInvoke as exc:
            self.board.give_up(task_id, TaskStatus.FAILED, Cause.of(CauseKind.FAILED, str(exc)), attempts=number)
            return None
        attempt.started, attempt.in_run = time.time(), number - first + 1
        attempt.estimate = self.expected.get(task_id)  # (what the run expects of it: ``report``)
        # A kill -9 leaves a trace, and what it was started with: a later run resumes it only if unchanged.
        self.journal.spawning(task_id, task.agent, number, self.launcher.executor.name,
                              attempt.fingerprint, attempt.told, attempt.in_run, at=attempt.started)  # fmt: skip
        self.board.running[task_id] = attempt
        self.board.waiting.pop(task_id, None)  # (the attempt it retries, if it does: it has its next)
        self.admission.started(task_id, self.slot(task_id))
        self.recorder.started(attempt)
        if task.row is not None and self.rows is not None:
            self.rows.touched(task.row)  # (its row's counts: one more running)
        if fallen is not None:
            self.recorder.emit(TaskFailover(task=task_id, backend=backend, fallback_from=fallen, attempt=number,
                                            reason=self.breakers.why(fallen)))  # fmt: skip
        return attempt


def _fingerprints(signature: str, upstream: Upstream) -> tuple[Callable[[str], str], Callable[[str], str]]:
    """A brief's fingerprint with its inputs (what a result records), and without (what its
    estimate learns by: ``task_started``'s ``brief``)."""
    with_inputs = functools.partial(fingerprint, signature=signature, upstream=upstream)
    return with_inputs, functools.partial(fingerprint, signature=signature, upstream=[])
