"""What a rule of the machine is (``Rule``: a name, the moves it governs, the stimuli it answers,
what it says), how its moves are written (``moves``: ``pending→running``, checked against the
state machine at import), and the ``Context`` it is asked in. The rules themselves: ``rules``
(the run's) and ``asked`` (a request's: cancel, retry, a word)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from orchestrator.machine import instructions as do
from orchestrator.machine import policy
from orchestrator.machine import stimuli as on
from orchestrator.machine.retries import RetryBook
from orchestrator.state.causes import Cause
from orchestrator.vocabulary import TRANSITIONS, TaskStatus


class Context:
    """One stimulus being handled: what the rules before have said of it, the tasks as the
    machine holds them (``status``), and (an attempt's outcome) what ``policy.decide`` makes of
    it, asked once."""

    def __init__(self, stimulus: on.Stimulus, retries: RetryBook, rng: random.Random) -> None:
        self.stimulus = stimulus
        self.said: list[do.Instruction] = []
        self._retries, self._rng = retries, rng
        self.tasks = retries.tasks  # (the machine's: ``Machine.tasks``)

    def status(self, task: str) -> TaskStatus:
        """``task``'s status, as the machine holds it."""
        return self.tasks[task].status

    def held(self, task: str) -> Cause | None:
        """Why a person holds ``task`` back, as the machine holds it (``None``: nobody does)."""
        state = self.tasks.get(task)
        return state.hold if state is not None else None

    @cached_property
    def decision(self) -> policy.Decision:
        ended = self.stimulus
        assert isinstance(ended, on.AttemptEnded)
        return self._retries.decide(
            ended.task, ended.result, attempt=ended.attempt, settings=ended.settings, rng=self._rng, now=ended.now
        )


# A move a rule governs: from a state to a state (``None`` first: a task new to the run, joining it).
Move = tuple[TaskStatus | None, TaskStatus]


def moves(*written: str) -> tuple[Move, ...]:
    """Moves as the rules write them, ``pending→running`` (``→pending``: joining), read into real
    states; ``ValueError`` at import for a state that is none, or a move that is no arrow of
    ``TRANSITIONS`` (staying where it is is one)."""
    found: list[Move] = []
    for text in written:
        before, _, after = text.partition("→")
        old = TaskStatus(before) if before else None
        new = TaskStatus(after)
        if old is not None and new != old and new not in TRANSITIONS[old]:
            raise ValueError(f"{text}: no arrow of the state machine (vocabulary.TRANSITIONS)")
        found.append((old, new))
    return tuple(found)


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    moves: tuple[Move, ...]  # the moves it governs (``moves``): checked at import, and as each is made
    stimuli: tuple[type[on.Stimulus], ...]  # the stimuli it answers
    says: Callable[[Any, Context], list[do.Instruction]] = field(repr=False)
    final: bool = False  # once it has answered, no rule after it is asked

    def governs(self, old: TaskStatus, new: TaskStatus) -> bool:
        """Whether moving a task from ``old`` to ``new`` is this rule's to make."""
        return (old, new) in self.moves or (None, new) in self.moves
