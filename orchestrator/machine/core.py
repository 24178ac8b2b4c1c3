"""The machine: ``handle(stimulus) -> instructions``, its rules asked in their order (``RULES``).

It holds the tasks (``tasks``: each one's ``TaskState``, its status, cause and the retries it has
spent; a run's machine holds the very records its views read) and numbers the stimuli (``stamp``);
it reads no file, no clock and no process, so a test feeds it plain values and compares what it
says (``tests/test_machine.py``).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import MutableMapping

import msgspec

from orchestrator.machine.instructions import Instruction
from orchestrator.machine.retries import RetryBook
from orchestrator.machine.rules import RULES, Context, Rule, moves
from orchestrator.machine.stimuli import Stimulus
from orchestrator.state.taskstate import TaskState


class Machine:
    def __init__(
        self,
        *,
        tasks: MutableMapping[str, TaskState] | None = None,
        rng: random.Random | None = None,
        rules: tuple[Rule, ...] = RULES,
    ) -> None:
        self.tasks: MutableMapping[str, TaskState] = tasks if tasks is not None else {}
        self.retries = RetryBook(self.tasks)  # (each task's retries, read from and booked in ``tasks``)
        self.rng = rng if rng is not None else random.Random()
        self.rules = rules
        self._asked: dict[type[Stimulus], tuple[Rule, ...]] = {}
        self._ids = itertools.count(1)

    def stamp(self) -> int:
        """The id of the next stimulus: the loop's count of what it told the machine."""
        return next(self._ids)

    def handle(self, stimulus: Stimulus) -> list[Instruction]:
        """What ``stimulus`` leads to: each rule that answers its kind asked in turn, until a final
        one has answered."""
        context = Context(stimulus, self.retries, self.rng)
        kind = type(stimulus)
        asked = self._asked.get(kind)
        if asked is None:  # (the rules that answer its kind, in their order: worked out once a kind)
            asked = self._asked[kind] = tuple(rule for rule in self.rules if issubclass(kind, rule.stimuli))
        for rule in asked:
            said = [msgspec.structs.replace(i, rule=rule.name) for i in rule.says(stimulus, context)]
            context.said.extend(said)
            if said and rule.final:
                break
        return context.said

    def governing(self, move: str) -> list[str]:
        """The names of the rules that govern ``move`` (``running→failed``), in their order."""
        (wanted,) = moves(move)
        return [rule.name for rule in self.rules if wanted in rule.moves]
