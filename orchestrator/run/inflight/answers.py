"""A run's answers to what is asked of it from outside while it goes on: `orchestrator cancel`,
`retry`, `approve` and `reject` (``run/inflight/requests`` appends them to the event log;
``LiveQueue`` reads them and hands each here, on the loop). Each is answered by an event:
``task_cancelled``, ``task_requeued``, ``approval_noted`` or ``request_refused``, which the
command that asked waits for. A running attempt asked to stop is recorded cancelled once its
processes are gone (``cancelled``, which the loop asks of every attempt that ends); the run's own
stop (fail-fast, the cost limit) stops every running attempt the same way (``stop_running``).
"""

from __future__ import annotations

from orchestrator.backends.base import AgentResult
from orchestrator.machine.stimuli import CancelAsked, RetryAsked
from orchestrator.plan.model import Plan, Task
from orchestrator.run.attempts import Attempt
from orchestrator.run.recorder import Recorder
from orchestrator.run.resume.prepared import Prepared
from orchestrator.run.resume.selection import GIVEN_BACK
from orchestrator.run.scheduler import Scheduler
from orchestrator.state import approvals, store
from orchestrator.state.causes import Cause
from orchestrator.state.events.runs import RequestRefused
from orchestrator.state.events.tasks import ApprovalNoted, PermissionAnswered, PermissionAsked, TaskRequeued
from orchestrator.state.words import questions
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import TaskStatus


class Answers:
    """What the run does with each request for one of its tasks, on the loop."""

    def __init__(self, workspace: Workspace, prepared: Prepared, scheduler: Scheduler, recorder: Recorder) -> None:
        self.workspace, self.prepared, self.scheduler = workspace, prepared, scheduler
        self._emit = recorder.emit
        self.cancelling: dict[str, tuple[Cause, str]] = {}  # task -> (why, request), its attempt being stopped
        scheduler.cancelled = self.cancelled
        scheduler.stop.attempts = self.stop_running  # (fail-fast, the cost limit)

    @property
    def plan(self) -> Plan:
        return self.prepared.plan

    def refuse(self, kind: str, task_id: str, request: str, reason: str) -> None:
        if request:  # (none: the run's own stop, whose answer nobody waits for)
            self._emit(RequestRefused(task=task_id, request=request, request_kind=kind, reason=reason))

    def _known(self, kind: str, task_id: str, request: str) -> Task | None:
        """The task a request names, or ``None`` with the request refused."""
        task = self.plan.tasks.get(task_id)
        rows = self.scheduler.parts.starts.rows
        if task is None and rows is not None:
            task = rows.summoned(task_id)  # (an instance that waits to join the run: it joins now)
        if task is None:
            self.refuse(kind, task_id, request, f"no task {task_id} in this run")
        return task

    def cancel(self, task_id: str, request: str, reason: Cause) -> None:
        """What the machine's ``cancel-asked`` rule says of a cancel, carried out."""
        board = self.scheduler.board
        task = self._known("cancel", task_id, request)
        if task is None:
            return
        running = board.attempt_of(task_id)
        desk = self.scheduler.desk
        asked = CancelAsked(id=desk.stamp(), task=task_id, cause=reason, running=running is not None,
                            busy=board.busy(task_id))  # fmt: skip
        said = desk.tell(asked)
        if said.stop_attempt and running is not None:
            self.cancelling[task_id] = (reason, request)
            running.stop()  # ``cancelled`` records it once its processes are gone
        elif said.refused is not None:
            self.refuse("cancel", task_id, request, said.refused)
        elif said.cancel_waiting:
            self.scheduler.holds.release(task_id)  # (held at its gate, or by its Blocked cell: a retry asks again)
            board.cancel_waiting(task, reason)

    def decide(self, task_id: str, request: str, _reason: Cause) -> None:
        """`orchestrator approve` or `reject`, whose decision is in state/approvals.jsonl already."""
        decision = approvals.latest(self.workspace).get(task_id)
        if decision and self._known("decide", task_id, request) and not self.scheduler.decide(task_id, decision):
            self._emit(ApprovalNoted(task=task_id, request=request, decision=decision.decision))

    def asked(self, task_id: str, question: str, _reason: Cause) -> None:
        """An agent's question (``orchestrator mcp --permission-tool`` wrote it): told, and notified."""
        found = questions.read(self.workspace)[0].get(question)
        task = self.plan.tasks.get(task_id)
        if found is not None and task is not None:
            said = PermissionAsked(task=task_id, agent=task.agent, name=task.title, attempt=found.attempt,
                                   question=question, number=found.number, tool=found.tool, said=found.said,
                                   until=found.until)  # fmt: skip
            self._emit(said)

    def answered(self, task_id: str, question: str, _reason: Cause) -> None:
        """A question's answer (written already, where the asking agent reads it): told."""
        asked, replies = questions.read(self.workspace)
        got, found = replies.get(question), asked.get(question)
        task = self.plan.tasks.get(task_id)
        if got is not None and task is not None:
            self._emit(PermissionAnswered(task=task_id, agent=task.agent, question=question,
                                          number=found.number if found else 0, said=got.said, answer=got.answer,
                                          by=got.by, via=got.via, url=got.url, always=got.always,
                                          reason=got.reason))  # fmt: skip

    def cancelled(self, attempt: Attempt, result: AgentResult | None) -> bool:
        """On the loop, for an attempt that ended (``result``: what it did; ``None``: stopped by
        its cancel, its processes gone): whether it was cancelled, and if so it is recorded
        cancelled. An attempt that completed before its cancel could stop it stays completed."""
        task = attempt.task
        asked = self.cancelling.pop(task.id, None)
        if asked is None or self.scheduler.board.attempt_of(task.id) is not attempt:
            return False
        reason, request = asked
        if result is not None and (result.completed or not request):  # (the run's stop: what ended is what it did)
            self.refuse("cancel", task.id, request, f"{task.id} completed before it could be stopped")
            return False
        self.scheduler.cancelled_attempt(attempt, reason, result)
        return True

    def retry(self, task_id: str, request: str, _reason: Cause) -> None:
        """What the machine's ``retry-asked`` rule says of a retry, carried out."""
        board = self.scheduler.board
        task = self._known("retry", task_id, request)
        if task is None:
            return
        asked = RetryAsked(id=self.scheduler.desk.stamp(), task=task_id, busy=board.busy(task_id),
                           stopping=self.scheduler.stop.stopping)  # fmt: skip
        said = self.scheduler.desk.tell(asked)
        if said.refused is not None:
            self.refuse("retry", task_id, request, said.refused)
        elif said.revive:
            self._revive(task, request)

    def revive(self, task_id: str, request: str) -> None:
        """``task_id``, stopped for the budget, back in the queue once it is raised (as a retry brings it)."""
        self._revive(self.plan.tasks[task_id], request)

    def _revive(self, task: Task, request: str) -> None:
        """``task`` back in the queue (``Revive``), what its end skipped with it, each told."""
        board, views, task_id = self.scheduler.board, self.prepared.views, task.id
        back, doomed = board.revive(task)
        if task_id in doomed:
            blocker = doomed[task_id]
            said = Cause.upstream(blocker, self.prepared.views[blocker].status).sentence(task_id)
            self.refuse("retry", task_id, request, f"{said}: retry {blocker} first")
            return
        if task_id not in self.prepared.selection.run:
            self.prepared.selection.run.append(task_id)
        for node in back:
            view = views[node]
            was = view.status
            ready = board.ready(self.plan.tasks[node])
            if was in GIVEN_BACK:  # a later run must not hold it back any more (nor its gate's old word)
                store.remove(self.workspace.result(self.plan.tasks[node]), durable=False)
                if was == TaskStatus.REJECTED:
                    approvals.record(self.workspace, node, approvals.REOPENED)
            view.move(TaskStatus.PENDING if ready else TaskStatus.WAITING)
            self._emit(TaskRequeued(task=node, agent=self.plan.tasks[node].agent, was=str(was), request=request))

    def stop_running(self, reason: Cause) -> None:
        """The run stops (fail-fast, its cost limit: ``Stop.halt``): every attempt running now is
        stopped as a cancel stops one, and recorded cancelled with ``reason`` (``cancelled``; one a
        person is cancelling already keeps the person's reason)."""
        for task_id, attempt in self.scheduler.board.running.items():
            self.cancelling.setdefault(task_id, (reason, ""))  # (no request: nobody waits for an answer)
            attempt.stop()
