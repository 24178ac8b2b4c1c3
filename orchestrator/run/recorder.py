"""What a run tells: result files, the live views of every task, and the event stream.

The scheduler decides; the recorder writes down what was decided, in one place: a task's result
file (atomic; made durable by the next flush, within a second), its ``TaskView`` (what the
status blocks of master_plan.md show) and the event a reporter shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import TypedDict

from orchestrator import documents
from orchestrator.backends.base import AgentResult, tail
from orchestrator.moments import iso_at
from orchestrator.output.reporter import Reporter
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.model import Plan, Task
from orchestrator.run.attempts import Attempt, Outcome
from orchestrator.run.resultfiles import ResultFiles
from orchestrator.run.told import completed_event, not_run_event, spent_of, started_event, total
from orchestrator.state.causes import Cause, CauseKind
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.runs import Notice, RunPaused
from orchestrator.state.events.tasks import (
    TaskBlocked,
    TaskFailed,
    TaskRetrying,
)
from orchestrator.state.journal import Journal
from orchestrator.state.results import ResultRecord, not_run_body
from orchestrator.state.status import TaskView
from orchestrator.state.words import questions
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import TaskStatus

_DONE_WORK = (TaskStatus.COMPLETED, TaskStatus.AWAITING_APPROVAL)  # an attempt that did the work
STDERR_TAIL = 3000  # characters of a failed attempt's stderr kept in its result file
TERMINAL_LINES = 5  # of them, the last lines shown under the failure in the terminal
TERMINAL_WIDTH = 200  # characters of each such line
# What a result records it was run from, its ``inputs`` digest: of a task, with the results its
# dependencies' are read from (``run/resume/basis.Basis.of``, handed in by the runner).
Inputs = Callable[[Task, Mapping[str, ResultRecord]], str]


def last_lines(text: str, count: int = TERMINAL_LINES, width: int = TERMINAL_WIDTH) -> list[str]:
    """The last ``count`` non-blank lines of ``text``, each cut to ``width`` characters: enough to
    see why a task failed without opening its log, never a screenful."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()][-count:]
    return [line if len(line) <= width else line[: width - 1] + "…" for line in lines]


class Recorder:
    def __init__(
        self,
        workspace: Workspace,
        plan: Plan,
        settings: Mapping[str, Settings],
        views: dict[str, TaskView],
        reporter: Reporter,
        journal: Journal,
        inputs: Inputs | None = None,
    ) -> None:
        self.workspace = workspace
        self._inputs = inputs  # what a completed result records it was run from
        self.plan = plan
        self.settings = settings
        self.views = views
        self.reporter = reporter
        self.journal = journal
        self.records: dict[str, ResultRecord] = {}  # written in this run
        self.files = ResultFiles(workspace, plan, journal, self.emit)  # (``run/resultfiles``)

    def emit(self, event: EventRecord) -> None:
        """``event`` told: shown by the reporter, kept in the run's event log."""
        self.reporter.event(event)

    # --- live states ------------------------------------------------------------------------------

    def started(self, attempt: Attempt) -> None:
        task = attempt.task
        view = self.views[task.id]
        view.move(TaskStatus.RUNNING)
        # (from the first attempt of this run of the task: not an earlier run's start)
        view.started = iso_at(attempt.started) if attempt.in_run == 1 or not view.started else view.started
        view.attempts, view.run_attempts = attempt.number, attempt.in_run
        self.emit(started_event(self.workspace, attempt))
        if attempt.session == "restarted":
            self.emit(Notice(message=f"{task.id} changed since its interrupted attempt: it starts a new agent session"))

    def retrying(self, outcome: Outcome, delay: float, reason: str) -> None:
        task = outcome.attempt.task
        self.views[task.id].move(TaskStatus.RETRYING)
        self.journal.retrying(task.id, outcome.attempt.number)
        self.emit(
            TaskRetrying(
                task=task.id,
                agent=task.agent,
                attempt=outcome.attempt.number + 1,
                delay=delay,
                reason=reason,
                error_class=outcome.result.error_class,
                cost_usd=outcome.result.attempt_cost_usd,  # the attempt's own (history shows each)
                tokens=total(outcome.result.attempt_tokens),  # (its own too)
            )
        )

    def paused(self, task: Task, until: str, reason: str, group: str | None) -> None:
        """``task`` waits for a usage limit's reset; ``group``: the limit group whose pause it
        starts (told once), None when it joins one already told."""
        self.views[task.id].move(TaskStatus.WAITING)
        if group is not None:
            self.emit(RunPaused(task=task.id, until=until, reason=reason, limit_group=group))

    def ready(self, task_id: str) -> None:
        """A waiting task's dependencies have all completed."""
        view = self.views[task_id]
        if view.status == TaskStatus.WAITING:
            view.move(TaskStatus.PENDING)

    # --- results ----------------------------------------------------------------------------------

    def completed(self, outcome: Outcome, warning: str | None, *, awaiting: bool = False) -> ResultRecord:
        """``awaiting``: its Approval gate is after it: its result awaits a person's word (``run/held/gates``)."""
        status = TaskStatus.AWAITING_APPROVAL if awaiting else TaskStatus.COMPLETED
        record = self._write_attempt(outcome, status, warning)
        if not awaiting:
            self.told_completed(outcome.attempt.task, record, outcome.result)
        return record

    def recovered(self, task: Task, record: ResultRecord, text: str) -> None:
        """``task`` completed with ``text`` in an attempt the runner that started it did not
        live to record (``run/resume/recovery`` made ``record`` from its log): recorded as it would
        have been."""
        record = replace(record, inputs=self.inputs_of(task))
        self.write(task, record, self.files.body(record, text))
        self.told_completed(task, record)

    def told_completed(self, task: Task, record: ResultRecord, last: AgentResult | None = None) -> None:
        # ``last``: its last attempt's result, with what that attempt alone spent (none: the record's)
        self.emit(completed_event((task.id, task.agent, task.title), record, self.workspace.result_name(task), last,
                                  self.files.digest(task.id)))  # fmt: skip

    def failed(self, outcome: Outcome, reason: str) -> None:
        stderr = _stderr(self.workspace, outcome)
        self._write_attempt(outcome, TaskStatus.FAILED, reason, stderr)
        task = outcome.attempt.task
        self.emit(
            TaskFailed(
                task=task.id,
                agent=task.agent,
                attempt=outcome.attempt.number,
                reason=reason,
                stderr_tail=tuple(last_lines(stderr)),
                simulated=outcome.run.simulated,
                **spent_of(outcome.result),
                worker=outcome.run.worker or None,
                **self.files.told(task),
            )
        )

    def not_run(
        self,
        task: Task,
        status: TaskStatus,
        cause: Cause,
        *,
        attempts: int = 0,
        run_attempts: int = 0,
        session: str | None = None,
        fingerprint: str | None = None,
        started: float | None = None,
        spent: AgentResult | None = None,
        cost_usd: float | None = None,
    ) -> None:
        """A task that ends this run without an attempt of its own to show, for ``cause``: skipped,
        bypassed, interrupted, cancelled, rejected, or failed before it could start (``attempts``:
        the number of its last attempt, of this run or an earlier one; ``run_attempts``: how many
        this run made; ``session``, ``fingerprint``: an interrupted attempt's agent session, and
        what that attempt was started with; ``started``: when the attempt that this ends started
        (wall clock), for a duration from then to now: a task cancelled once it had started took
        that long; ``spent``: the result its cost and tokens are read from, else ``cost_usd``:
        what its attempts of this run of it spent)."""
        now = time.time()
        reason = cause.sentence(task.id)
        record = ResultRecord(
            task=task.id,
            agent=task.agent,
            name=task.title,
            status=status,
            attempts=attempts,
            run_attempts=run_attempts,
            reason=reason,
            cause=cause,
            inputs=self.inputs_of(task) if status == TaskStatus.REJECTED else None,  # (refused on these)
            started=iso_at(started) if started else None,
            finished=iso_at(now),
            duration=round(now - started, 3) if started else None,
            backend=self.settings[task.id].backend,
            fingerprint=fingerprint,
            session_id=session,
            **(_costs(spent) if spent is not None else _Costs(cost_usd=cost_usd, tokens=None)),
        )
        self.write(task, record, not_run_body(task.id, status, reason))
        self.emit(replace(not_run_event(task, status, cause, reason, record.duration, spent), **self.files.told(task)))

    def given_up(self, task: Task, blocker: str) -> None:
        """``task`` will not run: ``blocker``, which it depends on, will not complete (failed,
        given up, not in this run). Skipped, or bypassed for a bypassed one."""
        status = self.views[blocker].status
        given = TaskStatus.BYPASSED if status == TaskStatus.BYPASSED else TaskStatus.SKIPPED
        self.not_run(task, given, Cause.upstream(blocker, status))

    def blocked(self, task: Task, cause: Cause) -> None:
        """``task`` held by a person: it does not start, and what needs it waits (no result)."""
        view = self.views[task.id]
        view.move(TaskStatus.BLOCKED, cause)
        self.emit(TaskBlocked(task=task.id, agent=task.agent, name=task.title, reason=view.reason or "", cause=cause))

    def interrupted(self, attempt: Attempt, why: Cause, spent: float | None = None) -> None:
        """An attempt stopped before its end: its agent session and what it was started with are
        kept, for a later run to go on from; ``spent``: what its run of the task spent so far."""
        session = attempt.observer.session_id
        self.not_run(attempt.task, TaskStatus.INTERRUPTED, why, attempts=attempt.number, run_attempts=attempt.in_run,
                     session=session, fingerprint=attempt.fingerprint, cost_usd=spent)  # fmt: skip

    def stopped_waiting(self, task: Task, outcome: Outcome | None) -> None:
        """The run was interrupted while ``task`` waited for its next attempt, after ``outcome``."""
        reason = Cause.of(CauseKind.INTERRUPTED, "interrupted by the user before its next attempt")
        last = outcome.attempt if outcome is not None else None
        self.not_run(task, TaskStatus.INTERRUPTED, reason, attempts=last.number if last else 0,
                     run_attempts=last.in_run if last else 0,
                     cost_usd=outcome.result.cost_usd if outcome else None)  # (the task's so far)  # fmt: skip

    def still_failed(self, task: Task, record: ResultRecord, why: str) -> None:
        """``task`` stays failed as ``record`` says, not run again (``run/worktrees/handmerge``: its conflict
        is not resolved yet): shown failed, and ``why``; its result file as it was."""
        self.records[task.id] = record
        self.views[task.id].move(record.status, record.cause, note=record.reason)
        self.views[task.id].take_details(record, self.workspace.result_name(task))
        self.emit(TaskFailed(task=task.id, agent=task.agent, attempt=record.attempts, reason=why, cost_usd=None,
                             attempt_cost_usd=None, tokens=None, attempt_tokens=None))  # fmt: skip

    def forget(self, task_id: str) -> ResultRecord | None:
        """``task_id``'s result as this run wrote it (``None``: it wrote none), no longer held (an
        instance that leaves the run's plan: ``run/itemtable``); the file stays."""
        self.files.forget(task_id)
        return self.records.pop(task_id, None)

    def inputs_of(self, task: Task) -> str | None:
        """The digest of what ``task`` ran from (``run/resume/basis``), its dependencies' results as the
        run has them."""
        return self._inputs(task, self.records) if self._inputs is not None else None

    def _write_attempt(
        self, outcome: Outcome, status: TaskStatus, reason: str | None, stderr: str = ""
    ) -> ResultRecord:
        task = outcome.attempt.task
        inputs = self.inputs_of(task) if status in _DONE_WORK else None
        record = attempt_record(self.workspace, outcome, status, reason, inputs)
        self.write(task, record, self.files.body(record, outcome.result.text, stderr))
        return record

    def write(self, task: Task, record: ResultRecord, body: str | Iterable[str]) -> None:
        """``task`` moved to ``record`` (its state, its cause): the move checked against the state
        machine first (``IllegalTransition``, nothing written), then its result written, then its view."""
        view = self.views[task.id]
        view.status.to(record.status)
        self.files.put(task, record, body)
        self.records[task.id] = record
        if view.status == TaskStatus.RETRYING:  # its retry will not come: status no longer shows it retrying
            self.journal.settled(task.id)
        view.move(record.status, record.cause, note=record.reason if record.cause is None else None)
        view.take_details(record, self.workspace.result_name(task))
        for told_of in self.files.on_written:
            told_of(task.id)


def attempt_record(
    ws: Workspace, outcome: Outcome, status: TaskStatus, reason: str | None, inputs: str | None
) -> ResultRecord:
    """The result an attempt's ``outcome`` leaves its task in ``status``: what it ran from
    (``inputs``, for a result that did the work), what it did, spent and printed."""
    attempt, run, result = outcome.attempt, outcome.run, outcome.result
    task = attempt.task
    # A race's attempts are the task's too (a hedge's loser, best of N's other candidates): the run
    # made them all, as the log files and `history` count them (``attempts`` stays the one chosen).
    raced = [outcome.raced.lost] if outcome.raced is not None else []
    raced += [int(str(c["attempt"])) for c in outcome.judged.candidates] if outcome.judged is not None else []
    others = len(set(raced) - {attempt.number})
    logs = [
        ws.log_name(task, attempt.number, stream)
        for stream, size in (("out", run.stdout_bytes), ("err", run.stderr_bytes))
        if size
    ]
    return ResultRecord(
        task=task.id,
        agent=task.agent,
        name=task.title,
        status=status,
        attempts=attempt.number,
        run_attempts=attempt.in_run + others,
        reason=reason,
        exit_code=result.exit_code if result.exit_code is not None else run.exit_code,
        error_class=None if status in _DONE_WORK else result.error_class,
        started=iso_at(attempt.started),
        finished=iso_at(outcome.finished),
        duration=round(outcome.finished - attempt.started, 3),
        backend=attempt.settings.backend,
        fallback_from=attempt.fallback_from,
        fingerprint=attempt.fingerprint,
        output_hash=documents.sha256(result.text)[:16],
        inputs=inputs,
        session_id=result.session_id or attempt.observer.session_id,
        cost_usd=result.cost_usd,
        tokens=result.tokens,
        turns=result.turns,
        permission_denials=len(result.permission_denials) or None,
        asked=(tuple(questions.of_attempt(ws, task.id, attempt.number)) or None) if attempt.settings.ask else None,
        logs=tuple(logs),
        simulated=run.simulated,
        worker=run.worker,
        branch=run.work.branch if run.work else None,
        commit=run.work.commit if run.work else None,
        diffstat=(run.work.diffstat or None) if run.work else None,
        merge=outcome.merged,
        hedged=outcome.raced.frontmatter(attempt.number) if outcome.raced else None,
        best_of=outcome.judged.frontmatter() if outcome.judged else None,
    )


class _Costs(TypedDict):
    cost_usd: float | None
    tokens: dict[str, int] | None


def _costs(spent: AgentResult | None) -> _Costs:
    """A result's ``cost_usd`` and ``tokens``: what its task spent in this run (``TaskSpend``)."""
    return {"cost_usd": spent.cost_usd if spent else None, "tokens": spent.tokens if spent else None}


def _stderr(workspace: Workspace, outcome: Outcome) -> str:
    """The end of a failed attempt's stderr log (3,000 characters), for its result and the terminal."""
    if not outcome.run.stderr_bytes:
        return ""
    attempt = outcome.attempt
    return tail(workspace.log(attempt.task, attempt.number, "err"), STDERR_TAIL).rstrip()
