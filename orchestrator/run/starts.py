"""Starting a ready task: what it takes between the queue's pop and its attempt's first line.

A task popped from the ready queue, past admission and its gate (``Scheduler._fill``), starts
here. ``facts`` finds what the machine's rules decide its start by (``Starting``): its brief's
fingerprints (with its upstream results, and without), whether it is a row run per item, a merge
conflict of its own still unresolved, a result the cache keeps for the same inputs. What they
say is carried out here: its row settled on its instances (``settle_row``), it stays failed
(``stay_failed``), the cache's result recorded, no process started (``reused``), or its attempt
(``launch``): its number and backend (its own, or a fallback while its own is down:
``run/limits/failover``), the journal's trace a later run resumes from, admission's slot, and
the ``task_started`` line. What ``launch`` returns, the loop runs (``run/spawner``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from orchestrator.backends.base import CannotInvoke
from orchestrator.machine.stimuli import Starting
from orchestrator.output.briefs import OnStart
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.model import Plan
from orchestrator.run.attempts import Attempt, Launcher, Resumable
from orchestrator.run.board import Board
from orchestrator.run.limits.admission import Admission, Slot
from orchestrator.run.limits.failover import Breakers
from orchestrator.run.recorder import Recorder
from orchestrator.run.resume.reuse import Kept, Reuse
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
        briefs: OnStart | None = None,
    ) -> None:
        self.plan, self.settings, self.signatures, self.records = plan, settings, signatures, records
        self.sessions = sessions  # task -> agent session an interrupted attempt left, to resume
        self.launcher, self.recorder, self.journal = launcher, recorder, journal
        self.admission, self.breakers, self.board = admission, breakers, board
        self.expected = expected  # task -> what the run expects it to take (``Forecast.expected``)
        self.costs: Mapping[str, float] = {}  # task -> what it is expected to cost (``run/forecasts/spend``'s p50)
        self.tokens: Mapping[str, float] = {}  # task -> the tokens it is expected to use (their p50)
        self.merges, self.reuse = merges, reuse
        self.rows = rows  # the rows run once per item (``run/items``): settled at their turn, no attempt
        self.briefs = briefs  # what makes a row's instance's brief as it starts
        self._found: dict[str, _Found] = {}  # (``facts``, for the instruction that follows)
        if rows is not None:
            rows.attach(board)

    def slot(self, task_id: str) -> Slot:
        """What of admission's limits ``task_id`` counts against: its profile, its backend (its
        own, or a fallback while its own is down), its limit group."""
        settings = self.settings[task_id]
        backend = self.breakers.choose(settings, time.time(), self.admission.blocked)[0]
        return Slot(self.plan.tasks[task_id].profile, backend, settings.limit_group, self.costs.get(task_id),
                    self.tokens.get(task_id))  # fmt: skip

    def facts(self, task_id: str, stimulus: int) -> Starting:
        """What starting ``task_id`` finds, for the machine's rules (``row``, ``conflict``,
        ``reuse``, ``launch``): its brief's fingerprints kept for what they decide."""
        self.recorder.workspace.check_inside()  # its logs go nowhere a symlink put meanwhile leads
        task = self.plan.tasks[task_id]
        upstream = upstream_of(task.upstream_ids, self.records)
        of_brief, key = _fingerprints(self.signatures[task_id], upstream)
        found = _Found(of_brief, key)
        self._found[task_id] = found
        if task.row is not None and self.briefs is not None:  # (a row's instance: its brief made as it starts)
            found.unrendered = self.briefs.render(task_id)
        if task.each is not None and self.rows is not None:
            return Starting(id=stimulus, task=task_id, row=True)
        if self.merges is not None:
            found.conflict = self.merges.unresolved(task, self.records.get(task_id), of_brief)
            if found.conflict is not None:
                return Starting(id=stimulus, task=task_id, conflict=found.conflict)
        found.kept = self.reuse.found(task) if self.reuse is not None else None
        return Starting(id=stimulus, task=task_id, cached=found.kept is not None)

    def settle_row(self, task_id: str) -> None:
        """A row run once per item: its instances are what runs (``run/rows``)."""
        assert self.rows is not None
        self.rows.settle(self.plan.tasks[task_id], self._found.pop(task_id).of_brief)

    def stay_failed(self, task_id: str, why: str) -> None:
        """Its conflict not resolved yet: it stays failed as its result says, told again."""
        self._found.pop(task_id, None)
        record = self.records[task_id]
        self.recorder.still_failed(self.plan.tasks[task_id], record, why)

    def reused(self, task_id: str) -> None:
        """The cache's result for its inputs, recorded: no process started."""
        found = self._found.pop(task_id)
        assert self.reuse is not None and found.kept is not None
        self.reuse.reuse(self.plan.tasks[task_id], found.kept, found.of_brief)

    def launch(self, task_id: str) -> Attempt | None:
        """``task_id``'s next attempt, journaled, counted as running and told; ``None`` when its
        backend cannot be called (it failed)."""
        task = self.plan.tasks[task_id]
        of_brief, key = (found := self._found.pop(task_id)).of_brief, found.key
        number, first = self.board.numbered(task_id)
        try:
            if found.unrendered is not None:
                raise CannotInvoke(found.unrendered)
            backend, fallen = self.breakers.choose(self.settings[task_id], time.time(), self.admission.blocked)
            attempt = self.launcher.prepare(
                task, number, of_brief, resume=self.sessions.get(task_id), on=backend, brief_key=key
            )
        except CannotInvoke as exc:
            self.board.give_up(task_id, TaskStatus.FAILED, Cause.of(CauseKind.FAILED, str(exc)), attempts=number)
            return None
        attempt.started, attempt.in_run = time.time(), number - first + 1
        attempt.estimate = self.expected.get(task_id)  # (what the run expects of it: ``report``)
        attempt.expected_cost = self.costs.get(task_id)
        # A kill -9 leaves a trace, and what it was started with: a later run resumes it only if unchanged.
        self.journal.spawning(task_id, task.agent, number, self.launcher.executor.name,
                              attempt.fingerprint, attempt.told, attempt.in_run, at=attempt.started)  # fmt: skip
        self.board.running[task_id] = attempt
        self.board.waiting.pop(task_id, None)  # (the attempt it retries, if it does: it has its next)
        self.admission.started(task_id, self.slot(task_id))
        self.recorder.started(attempt)
        if task.row is not None and self.rows is not None:
            self.rows.shown.touched(task.row)  # (its row's counts: one more running)
        if fallen is not None:
            self.recorder.emit(TaskFailover(task=task_id, backend=backend, fallback_from=fallen, attempt=number,
                                            reason=self.breakers.why(fallen)))  # fmt: skip
        return attempt


@dataclass(slots=True)
class _Found:
    """What ``Starts.facts`` found of a task, kept for the instruction the machine answers with."""

    of_brief: Callable[[str], str]  # its brief's fingerprint with its inputs
    key: Callable[[str], str]  # and without
    conflict: str | None = None
    kept: Kept | None = None
    unrendered: str | None = None  # why its brief could not be made as it starts (``OnStart``)


def _fingerprints(signature: str, upstream: Upstream) -> tuple[Callable[[str], str], Callable[[str], str]]:
    """A brief's fingerprint with its inputs (what a result records), and without (what its
    estimate learns by: ``task_started``'s ``brief``)."""
    with_inputs = functools.partial(fingerprint, signature=signature, upstream=upstream)
    return with_inputs, functools.partial(fingerprint, signature=signature, upstream=[])
