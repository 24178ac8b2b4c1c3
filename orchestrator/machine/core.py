"""The machine: ``handle(stimulus) -> instructions``, its rules asked in their order (``RULES``).

It keeps what the rules need of the past (the retries each task has spent: ``RetryBook``) and
numbers the stimuli (``stamp``); it reads no file, no clock and no process, so a test feeds it
plain values and compares what it says (``tests/test_machine.py``).
"""

from __future__ import annotations

import itertools
import random

import msgspec

from orchestrator.machine.instructions import Instruction
from orchestrator.machine.retries import RetryBook
from orchestrator.machine.rules import RULES, Context, Rule, moves
from orchestrator.machine.stimuli import Stimulus


class Machine:
    def __init__(
        self, *, retries: RetryBook | None = None, rng: random.Random | None = None, rules: tuple[Rule, ...] = RULES
    ) -> None:
        self.retries = retries if retries is not None else RetryBook()
        self.rng = rng if rng is not None else random.Random()
        self.rules = rules
        self._ids = itertools.count(1)

    def stamp(self) -> int:
        """The id of the next stimulus: the loop's count of what it told the machine."""
        return next(self._ids)

    def handle(self, stimulus: Stimulus) -> list[Instruction]:
        """What ``stimulus`` leads to: each rule that answers its kind asked in turn, until a final
        one has answered."""
        context = Context(stimulus, self.retries, self.rng)
        for rule in self.rules:
            if isinstance(stimulus, rule.stimuli):
                said = [msgspec.structs.replace(i, rule=rule.name) for i in rule.says(stimulus, context)]
                context.said.extend(said)
                if said and rule.final:
                    break
        return context.said

    def governing(self, move: str) -> list[str]:
        """The names of the rules that govern ``move`` (``running→failed``), in their order."""
        (wanted,) = moves(move)
        return [rule.name for rule in self.rules if wanted in rule.moves]
