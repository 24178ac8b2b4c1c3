"""The run's board: where each task of this run stands as the loop moves it, and every move
recorded as it is made.

It keeps the ready queue (``plan/graph.ReadyQueue``), each task's attempts in this run (the one
running, the retry it waits for and the attempt that ended before it, the numbers, the retries
spent) and hands each move to the recorder. The loop (``run/scheduler``) and what a run takes
while it goes on (``run/inflight``: rows added and edited, cancels and retries) move tasks
through its methods, never through the queue or the recorder themselves: a task joins, is
rearranged, completes, is given up with what depends on it, is cancelled while it waits, is
revived.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from orchestrator.backends.base import AgentResult
from orchestrator.machine.retries import RetryBook
from orchestrator.plan.model import Plan, Task
from orchestrator.plan.queue import ReadyQueue
from orchestrator.run.attempts import Attempt, Outcome
from orchestrator.run.books import Purse, Stop
from orchestrator.run.held.holds import Holds
from orchestrator.run.recorder import Recorder
from orchestrator.state.causes import Cause, CauseKind
from orchestrator.state.journal import Journal
from orchestrator.state.results import ResultRecord
from orchestrator.state.status import TaskView
from orchestrator.state.taskstate import Numbers
from orchestrator.vocabulary import TaskStatus


class Board:
    """This run's tasks: the queue, what runs and what waits, and the recorder told of each move."""

    def __init__(
        self,
        plan: Plan,
        queue: ReadyQueue,
        recorder: Recorder,
        attempts: Mapping[str, int],
        retries: RetryBook | None = None,
    ) -> None:
        self.plan, self.queue, self.recorder = plan, queue, recorder
        self.running: dict[str, Attempt] = {}
        self.delayed: dict[str, float] = {}  # task -> loop time its next attempt may start
        self.waiting: dict[str, Outcome] = {}  # task -> the attempt that ended, whose next one is delayed
        self.retries = retries if retries is not None else RetryBook()  # (the machine's memory of them)
        # Each task's attempts' numbers, held in the machine's state of it (``TaskState``): its last
        # attempt's, in this run or an earlier one, and its first in this run.
        self.attempts = Numbers(self.retries.tasks, "attempt")
        self.attempts.update(attempts)
        self.first_attempt = Numbers(self.retries.tasks, "first")
        # Told of each task that ended, and whether it completed (``run/items``: a row's instances
        # counted for the views; the first that failed stops the others, when its row says so).
        self.ended: Callable[[str, bool], None] = lambda task_id, completed: None

    # --- what runs and what waits -----------------------------------------------------------------

    def busy(self, task_id: str) -> bool:
        """Whether ``task_id`` has an attempt running, or waits for its next one."""
        return task_id in self.running or task_id in self.delayed

    def untouched(self, task_id: str) -> bool:
        """Whether no attempt of ``task_id`` has started in this run (nor runs, nor waits)."""
        return not self.busy(task_id) and task_id not in self.first_attempt

    def attempt_of(self, task_id: str) -> Attempt | None:
        return self.running.get(task_id)

    def numbered(self, task_id: str) -> tuple[int, int]:
        """The number of ``task_id``'s next attempt, and of its first in this run."""
        number = self.attempts[task_id] = self.attempts.get(task_id, 0) + 1
        first = self.first_attempt.get(task_id) or number
        self.first_attempt[task_id] = first
        return number, first

    def later(self, task_id: str, when: float, outcome: Outcome) -> None:
        """``task_id``'s next attempt starts at loop time ``when``, after ``outcome``'s."""
        self.delayed[task_id] = when
        self.waiting[task_id] = outcome

    def back(self, task_id: str) -> None:
        """``task_id`` back in the queue: its retry due (the attempt it retries kept in ``waiting``
        until the next one starts: a run stopped before it does fails the task on it), or held at
        its gate before it starts."""
        self.delayed.pop(task_id, None)
        self.queue.push_back(task_id)

    # --- moves --------------------------------------------------------------------------------------

    def ready(self, task: Task) -> bool:
        """Whether every dependency of ``task`` has completed in this run's queue."""
        return all(dep in self.queue.done for dep in task.dependencies)

    def completed(self, task_id: str) -> None:
        for child in self.queue.complete(task_id):
            self.recorder.ready(child)
        self.ended(task_id, True)

    def give_up(self, task_id: str, status: TaskStatus, cause: Cause, *, attempts: int = 0) -> None:
        """``task_id`` will not run in this run: record why, and skip everything downstream (a
        bypassed task's is bypassed too: a false condition is no failure)."""
        in_run = attempts - self.first_attempt.get(task_id, attempts) + 1 if attempts else 0  # (one it could not start)
        self.recorder.not_run(self.plan.tasks[task_id], status, cause, attempts=attempts, run_attempts=in_run)
        self.skip_downstream(task_id, status)

    def skip_downstream(self, task_id: str, status: TaskStatus) -> None:
        """What depends on ``task_id``, which ended ``status`` and not completed, is given up."""
        self.skip(self.queue.fail(task_id), task_id, status)
        self.ended(task_id, False)

    def stop_unstarted(self, task_id: str, cause: Cause) -> None:
        """``task_id``, waiting or ready and never started in this run, will not start: skipped for
        ``cause`` (``run/items``: another instance of its row failed), with what depends on it."""
        doomed = self.queue.cancel(task_id)
        self.recorder.not_run(self.plan.tasks[task_id], TaskStatus.SKIPPED, cause)
        self.skip(doomed, task_id, TaskStatus.SKIPPED)

    def skip(self, doomed: list[str], task_id: str, status: TaskStatus) -> None:
        """Record the tasks of ``doomed`` given up for ``task_id``, which is ``status``: bypassed
        where it was bypassed (a false condition is no failure), else skipped."""
        given = TaskStatus.BYPASSED if status == TaskStatus.BYPASSED else TaskStatus.SKIPPED
        for child in doomed:
            self.delayed.pop(child, None)
            self.waiting.pop(child, None)
            self.recorder.not_run(self.plan.tasks[child], given, Cause.upstream(task_id, status))

    def join(self, task: Task, view: TaskView) -> None:
        """``task``, added to the plan while the run goes on, joins its queue: given up at once
        if a dependency will not complete in this run, else waiting or ready."""
        blocker = self.queue.add(task.id, priority=task.priority, order=self.plan.order[task.id])
        if blocker is not None:
            self.recorder.given_up(task, blocker)
        elif self.ready(task):
            view.move(TaskStatus.PENDING)

    def forget(self, task_ids: Collection[str]) -> None:
        """``task_ids``, completed instances that leave the run's plan (``run/rows``), out of the
        queue's memory (their attempts' numbers and retries are their views', which go too)."""
        self.queue.forget(task_ids)

    def rearrange(self, task: Task, view: TaskView) -> None:
        """``task``'s dependencies or priority changed (its row edited while it waits): its place
        in the queue again, or given up when a dependency will not complete in this run."""
        blocker = self.queue.requeue(task.id, priority=task.priority)
        if blocker is not None:
            self.recorder.given_up(task, blocker)
            self.skip_downstream(task.id, view.status)
        else:
            view.move(TaskStatus.PENDING if self.ready(task) else TaskStatus.WAITING)

    def cancel_waiting(self, task: Task, reason: Cause) -> None:
        """``task``, not running (queued, or waiting for its next attempt), cancelled for
        ``reason``; what depends on it skipped."""
        self.delayed.pop(task.id, None)
        waited = self.waiting.pop(task.id, None)  # the attempt whose retry it waited for
        doomed = self.queue.cancel(task.id)
        self.recorder.not_run(task, TaskStatus.CANCELLED, reason, attempts=self.attempts.get(task.id, 0),
                              run_attempts=waited.attempt.in_run if waited else 0,
                              started=waited.attempt.started if waited else None)  # fmt: skip
        self.skip(doomed, task.id, TaskStatus.CANCELLED)

    def revive(self, task: Task) -> tuple[list[str], dict[str, str]]:
        """``task``, finished and not completed, back in the queue with its retries afresh: the
        tasks that come back with it, and those that cannot (by the dependency that holds each
        back). Nothing changes when ``task`` itself cannot."""
        back, doomed = self.queue.revive(task.id, task.priority, self.plan.order[task.id])
        if task.id not in doomed:
            self.retries.afresh(task.id)
            self.first_attempt.pop(task.id, None)
        return back, doomed

    def rejected(self, task_id: str, cause: Cause, record: ResultRecord | None) -> None:
        """A person refused ``task_id`` at its gate (for ``cause``): it is rejected, unless its
        result says so already, and what depends on it skipped; one held before it starts is
        still queued."""
        if record is None or record.status != TaskStatus.REJECTED:  # (a gate before: no result yet)
            self.recorder.not_run(self.plan.tasks[task_id], TaskStatus.REJECTED, cause)
        self.skip(self.queue.cancel(task_id), task_id, TaskStatus.REJECTED)

    def cancelled(self, attempt: Attempt, reason: Cause, spent: AgentResult) -> None:
        """``attempt``, stopped (its spend booked: ``spent``), recorded cancelled for ``reason``;
        what depends on its task skipped."""
        task = attempt.task
        self.recorder.not_run(task, TaskStatus.CANCELLED, reason, attempts=attempt.number,
                              run_attempts=attempt.in_run, session=attempt.observer.session_id,
                              fingerprint=attempt.fingerprint, started=attempt.started, spent=spent)  # fmt: skip
        self.skip_downstream(task.id, TaskStatus.CANCELLED)

    def undone(self, stop: Stop, journal: Journal, purse: Purse, holds: Holds) -> None:
        """What the run leaves undone, recorded as it ends: attempts that were running when it was
        stopped (their outcome already in counts), retries that will not come, tasks never started
        (held ones, and what needs them, wait for a next run)."""
        why = Cause.of(CauseKind.INTERRUPTED, None if stop.interrupted else "stopped: the run ended on an error")
        for task_id, attempt in list(self.running.items()):
            journal.ended(task_id, attempt.number)
            spent = purse.so_far(task_id, attempt.in_run == 1, attempt.job.resume_session)
            self.recorder.interrupted(attempt, why, spent)
        self.running.clear()
        # Tasks whose last attempt ended and whose next one waits: that attempt is what happened.
        for task_id in list(self.delayed):
            outcome = self.waiting.pop(task_id, None)
            if stop.interrupted:
                self.recorder.stopped_waiting(self.plan.tasks[task_id], outcome)
            elif outcome is not None:
                self._not_retried(outcome, stop)
        self.delayed.clear()
        retried, self.waiting = self.waiting, {}  # (those whose retry came due: back in the queue)
        if stop.interrupted:
            return
        for task_id in holds.without(self.queue.drain()):
            status = self.recorder.views[task_id].status
            if status == TaskStatus.RETRYING and task_id in retried:  # (its retry came due, and did not start)
                self._not_retried(retried[task_id], stop)
            elif status in (TaskStatus.PENDING, TaskStatus.WAITING):
                reason = Cause.of(CauseKind.STOPPED, f"not started: {stop.why or 'run stopped'}")
                self.recorder.not_run(self.plan.tasks[task_id], TaskStatus.SKIPPED, reason)

    def _not_retried(self, outcome: Outcome, stop: Stop) -> None:
        failed = outcome.result.message or "failed"
        self.recorder.failed(outcome, f"{failed}; not attempted again: {stop.why or 'run stopped'}")
