"""What the machine holds of a task (``TaskState``): plain data, no file, clock or process, so the
machine (``machine/``) holds it and a task's view (``state/status.TaskView``) reads it."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.state.causes import Cause
from orchestrator.vocabulary import TaskStatus

if TYPE_CHECKING:
    from orchestrator.state.approvals import Decision


@dataclass(slots=True)
class TaskState:
    """What the machine holds of one task (``machine.Machine.tasks``): its status, why it is in it
    (``cause``; else an attempt's own words, ``note``), the retries it has spent in this run, its
    rate-limited attempts in a row (how many, and when the first of them ended), whether a person
    holds it back (``hold``: why; its Blocked cell, or its Approval ``gate`` it waits at), the last
    word said at its gate before it starts (``word``: whether it stands is the machine's rule's),
    and its attempts' numbers.
    A run's machine holds the very records its views read (``TaskView.state``): one state, not a
    copy."""

    status: TaskStatus
    cause: Cause | None = None
    note: str | None = None
    retries: int = 0
    limited: tuple[int, float] | None = None
    hold: Cause | None = None
    gate: str | None = None  # the gate it waits at for a person's word: before, after
    word: Decision | None = None  # the last word a person said at its gate before it starts, as last read
    attempt: int = 0  # the number of its last attempt, in this run or an earlier one (0: none yet)
    first: int = 0  # the number of its first attempt in this run (0: none started in it)


class Numbers(MutableMapping[str, int]):
    """One number the machine holds of each task (``field``: ``attempt``, its last attempt's;
    ``first``, its first in this run), as a mapping: a task with none (0) is not in it. A task
    the machine does not hold (yet) keeps its number here, beside it."""

    def __init__(self, tasks: MutableMapping[str, TaskState], field: str) -> None:
        self._tasks, self._field = tasks, field
        self._beside: dict[str, int] = {}

    def __getitem__(self, task: str) -> int:
        state = self._tasks.get(task)
        value: int = getattr(state, self._field) if state is not None else self._beside.get(task, 0)
        if not value:
            raise KeyError(task)
        return value

    def __setitem__(self, task: str, value: int) -> None:
        state = self._tasks.get(task)
        if state is None:
            self._beside[task] = value
        else:
            setattr(state, self._field, value)

    def __delitem__(self, task: str) -> None:
        self[task]  # (KeyError for one it has none of)
        self[task] = 0
        self._beside.pop(task, None)

    def __iter__(self) -> Iterator[str]:
        yield from (task for task, state in self._tasks.items() if getattr(state, self._field))
        yield from (task for task, value in self._beside.items() if value and task not in self._tasks)

    def __len__(self) -> int:
        return sum(1 for _ in self)
