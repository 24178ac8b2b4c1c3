"""The run's core: a machine with no I/O. Told what happens (``stimuli``), it answers with what
to do (``instructions``), by named rules in one ordered list (``rules.RULES``); the loop
(``run/scheduler``) reads the world into stimuli and carries the instructions out
(``run/interpreter``). Dask's worker state machine is the model: ``handle_stimulus`` returns
instructions, each carrying the id of the stimulus it answers."""

from __future__ import annotations

from orchestrator.machine.core import Machine
from orchestrator.machine.rules import RULES, Rule

__all__ = ["RULES", "Machine", "Rule"]
