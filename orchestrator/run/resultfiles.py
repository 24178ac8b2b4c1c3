"""The result files a run writes (``ResultFiles``): each one's body rendered from
``result.md.j2``; its digest journaled before it is written (a kill between the file and its
event: the next run tells of it, ``state/events/untold``); a file there that was no result of its
task as the tool wrote it kept beside it, with a notice; those written since the last flush, for
it to make durable (``run/flushing``); and what each task's end tells of its file (``verify``
checks the digest).

The recorder (``run/recorder``) decides what a result says and moves the task's view; this puts it
on disk.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypedDict

from orchestrator.output.markup import output_form
from orchestrator.output.templates import Lenient
from orchestrator.plan.model import Plan, Task
from orchestrator.state.events import untold
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.runs import Notice
from orchestrator.state.journal import Journal
from orchestrator.state.results import ResultRecord, write_result
from orchestrator.state.workspace import Workspace


class Told(TypedDict):
    """A result file written, as the event of its task's end tells it (``verify`` checks it)."""

    result: str  # the file, as ``task_completed``'s ``result`` names it
    result_digest: str  # of its bytes


class ResultFiles:
    """The results of one run's tasks, as files; ``emit``: what tells a notice."""

    def __init__(self, workspace: Workspace, plan: Plan, journal: Journal, emit: Callable[[EventRecord], None]) -> None:
        self.workspace, self.plan, self.journal, self._emit = workspace, plan, journal, emit
        # (a result is never lost to a template: should the workspace's fail on one, the packaged one)
        self.templates = Lenient(workspace, lambda message: emit(Notice(message=message)))
        # each task's result file as last written, for its event to tell: the digest of its bytes
        # (its name is the task's: 100,000 items held a dict of two strings each)
        self._digests: dict[str, str] = {}
        self._unsynced: list[Path] = []  # written, not yet made durable (``take_unsynced``)
        # told each task whose result is written, once it is (the merge queue clears its merge's mark)
        self.on_written: list[Callable[[str], None]] = []

    def body(self, record: ResultRecord, output: str, stderr: str = "") -> str:
        """The result file's text below its frontmatter: what the attempt printed, the end of its
        stderr for a failure, its logs."""
        status = record.status
        return self.templates.render(
            "result.md.j2",
            task=self.plan.tasks[record.task],
            status=str(status),
            icon=status.icon,
            reason=record.reason or "",
            output=output.rstrip(),
            stderr_tail=stderr,
            format=output_form(self.plan.settings.result_format, record.backend),
            logs=list(record.logs),
            simulated=record.simulated,
        )

    def put(self, task: Task, record: ResultRecord, body: str | Iterable[str]) -> None:
        """``record`` and ``body`` written as ``task``'s result file (atomically; durable at the
        next flush)."""
        path = self.workspace.result(task)
        folder = () if task.row is None else (path.parent,)  # (a row's items': the row's folder too)
        self.workspace.check_inside(*folder)  # not through a symlink put in results/' place meanwhile
        # looked for each time, not in a listing made at the start: a person may write there meanwhile
        exists = os.path.lexists(path)
        line = functools.partial(untold.line, record.task, record.attempts, self.workspace.result_file(task))
        written = write_result(
            path, record, body, durable=False, exists=exists, before=lambda digest: self.journal.append(line(digest))
        )
        if written.kept is not None:  # (nothing of a person's is moved without a word, as `cancel` says it)
            self._emit(Notice(message=written.kept.notice(self.workspace.relative(path))))
        self._digests[task.id] = written.digest
        self._unsynced.append(path)

    def digest(self, task_id: str) -> str | None:
        """The digest of ``task_id``'s result file as this run last wrote it (``None``: it wrote none)."""
        return self._digests.get(task_id)

    def told(self, task: Task) -> Told:
        """What the event of ``task``'s end tells of the result file this run wrote for it."""
        return Told(result=self.workspace.result_name(task), result_digest=self._digests[task.id])

    def forget(self, task_id: str) -> None:
        """``task_id``'s result's digest no longer held: its end was told (``Recorder.forget``)."""
        self._digests.pop(task_id, None)

    def take_unsynced(self) -> list[Path]:
        """The result files written since the last call: for the flush that makes them durable."""
        paths, self._unsynced = self._unsynced, []
        return paths
