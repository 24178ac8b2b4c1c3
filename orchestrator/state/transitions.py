"""The one place a run changes a task's state: ``moved`` checks the move against the state machine
(``vocabulary.TRANSITIONS``, drawn in workflow.md): a move the diagram has no arrow for raises
``IllegalTransition``, a bug of ours, never the plan's. ``TaskView.move`` (a task's live view in a
run) and the rewrites of a result that awaited a person's word (``approvals.restate``) go through it.

With ``ORCHESTRATOR_TRACE_STATES`` naming a file, each move is appended to it as one JSON line,
``{"task", "from", "to", "cause", "pid"}`` (``cause``: the move's, as data; ``null`` for none),
and ``stimulus`` (``{"id", "kind"}``) when a run's machine made it answering one (``answering``:
what happened that led to it, as Dask's worker state machine keeps a stimulus id on every
transition): what the tests read to see every move a run made, the moves no event tells included
(a waiting task turning pending)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from orchestrator.state.causes import Cause
from orchestrator.vocabulary import IllegalTransition, TaskStatus

TRACE = "ORCHESTRATOR_TRACE_STATES"
_ANSWERING: ContextVar[tuple[int, str] | None] = ContextVar("answering", default=None)
# The rule whose instruction is being carried out, the task it is about, and the moves it governs
# (``None`` first: a task joining the run): that task moved outside them is a rule that moved what it
# does not govern. (What the move brings its dependents to, released or skipped, is theirs.)
Governed = tuple[str, str | None, frozenset[tuple[TaskStatus | None, TaskStatus]]]
_GOVERNED: ContextVar[Governed | None] = ContextVar("governed", default=None)


@contextmanager
def governed(rule: str, task: str | None, moves: frozenset[tuple[TaskStatus | None, TaskStatus]]) -> Iterator[None]:
    """The moves made inside carry out an instruction of ``rule`` (the machine's) about ``task``,
    which governs ``moves``: ``moved`` holds that task's to them."""
    token = _GOVERNED.set((rule, task, moves))
    try:
        yield
    finally:
        _GOVERNED.reset(token)


@contextmanager
def answering(number: int, kind: str) -> Iterator[None]:
    """The moves made inside answer stimulus ``number`` of ``kind`` (``machine``): the trace says so."""
    token = _ANSWERING.set((number, kind))
    try:
        yield
    finally:
        _ANSWERING.reset(token)


def joined(task: str, new: TaskStatus) -> TaskStatus:
    """``new``, the state ``task`` joins in (a view's, ``views/replay``: as the workspace's files
    leave it), once the rule carried out governs joining in it."""
    ruling = _GOVERNED.get()
    if ruling is not None and ruling[1] == task and (None, new) not in ruling[2]:
        raise IllegalTransition(f"the rule {ruling[0]} made {task} join in {new}, a move it does not govern")
    return new


def moved(task: str, old: TaskStatus, new: TaskStatus, cause: Cause | None = None) -> TaskStatus:
    """``new``, once the move of ``task`` from ``old`` to it, for ``cause``, is an arrow of the
    state machine."""
    found = old.to(new)
    ruling = _GOVERNED.get()
    if ruling is not None and ruling[1] == task and found != old and not {(old, found), (None, found)} & ruling[2]:
        raise IllegalTransition(f"the rule {ruling[0]} moved {task} from {old} to {found}, a move it does not govern")
    if found != old:
        path = os.environ.get(TRACE)
        if path:
            why = cause.as_json() if cause is not None else None
            data = {"task": task, "from": str(old), "to": str(found), "cause": why, "pid": os.getpid()}
            if (stimulus := _ANSWERING.get()) is not None:
                data["stimulus"] = {"id": stimulus[0], "kind": stimulus[1]}
            line = json.dumps(data)
            line += "\n"
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())  # (one write of one line: moves of two processes never mix)
            finally:
                os.close(fd)
    return found
