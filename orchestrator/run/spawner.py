"""Each started attempt run as a task of the loop's task group, and its ``Outcome`` handed back
through the ``Inbox``: raced when its task hedges, landed by the merge queue with isolation:
worktree, journaled line by line, and a bug of ours made this task's failure, never the run's."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from anyio.abc import TaskGroup

from orchestrator.run.attempts import Attempt
from orchestrator.run.parts import Parts
from orchestrator.state.events.runs import Notice
from orchestrator.state.journal import Journal


class Spawner:
    """Runs attempts in ``group`` (set by the loop once it is open); ``stopped(attempt)``, on the
    loop, for one whose processes a cancel stopped."""

    def __init__(self, parts: Parts, stopped: Callable[[Attempt], object]) -> None:
        self.parts, self.stopped = parts, stopped
        self.group: TaskGroup | None = None

    def spawn(self, attempt: Attempt) -> None:
        assert self.group is not None, "an attempt started before the loop opened its task group"
        self.group.start_soon(self._run, attempt, name=f"{attempt.task.id} attempt {attempt.number}")

    async def _run(self, attempt: Attempt) -> None:
        task, p = attempt.task, self.parts
        trace = Trace(p.journal, task.id, task.agent, attempt.number, p.launcher.executor.name,
                      lambda: attempt.observer.session_id)  # fmt: skip
        with attempt.stoppable():  # `orchestrator cancel` and the run's stop cancel it (``run/inflight/live``)
            try:
                ran = p.hedger.wrap(attempt, on_start=trace.started, on_line=trace.line, tell=self._notice)
                outcome = await (p.merges.landed(attempt, p.records.get(task.id), ran) if p.merges else ran())
            except Exception as exc:  # a bug of ours (a parser, a callback): this task fails, not the run
                outcome = p.launcher.internal_error(attempt, exc)
            p.inbox.put(outcome)
        if attempt.scope and attempt.scope.cancelled_caught:  # its processes are gone: now it is recorded cancelled
            p.inbox.change(functools.partial(self.stopped, attempt))

    def _notice(self, message: str) -> None:
        """What tells a notice an attempt has for the run (``Launcher.run``'s ``tell``): on the loop."""
        self.parts.inbox.change(functools.partial(self.parts.recorder.emit, Notice(message=message)))


class Trace:
    """One attempt's lines in the journal as it runs: where it runs once its executor started it
    (``started``, given the executor's handle), and the agent's session id once the attempt's
    output tells it, and again whenever it changes (``line``, at each line it prints): a run after
    a kill -9 resumes that session."""

    def __init__(
        self, journal: Journal, task: str, agent: str, attempt: int, executor: str, session: Callable[[], str | None]
    ) -> None:
        self.journal, self.task, self.agent, self.attempt, self.executor = journal, task, agent, attempt, executor
        self._session = session
        self._journaled: str | None = None  # (the session id last journaled)

    def started(self, handle: Mapping[str, Any]) -> None:
        self.journal.started(self.task, self.agent, self.attempt, self.executor, handle)

    def line(self, _: bytes) -> None:
        session = self._session()
        if session and session != self._journaled:
            self._journaled = session
            self.journal.session(self.task, self.attempt, session)
