"""What the machine holds of a task (``TaskState``): plain data, no file, clock or process, so the
machine (``machine/``) holds it and a task's view (``state/status.TaskView``) reads it."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.state.causes import Cause
from orchestrator.vocabulary import TaskStatus


@dataclass(slots=True)
class TaskState:
    """What the machine holds of one task (``machine.Machine.tasks``): its status, why it is in it
    (``cause``; else an attempt's own words, ``note``), the retries it has spent in this run, its
    rate-limited attempts in a row (how many, and when the first of them ended), and whether a
    person holds it back (``hold``: why; its Blocked cell, or its Approval ``gate`` it waits at).
    A run's machine holds the very records its views read (``TaskView.state``): one state, not a
    copy."""

    status: TaskStatus
    cause: Cause | None = None
    note: str | None = None
    retries: int = 0
    limited: tuple[int, float] | None = None
    hold: Cause | None = None
    gate: str | None = None  # the gate it waits at for a person's word: before, after
