"""The one way anything in a run tells the machine what happened (``Desk.tell``), and what it is
told back (``Verdict``).

The loop tells it of a ready task, an attempt's end, a person's word; a race (``run/races``), of a
straggler and of each of its attempts' ends; the merge queue, of a conflict; a request answered
(``run/inflight/answers``), of a cancel or a retry. Each is told here, and what the machine says is
carried out by the one interpreter (``run/interpreter``): what a part must do in its own place (a
race stops its lanes, a merge keeps a branch apart) comes back to it as a ``Verdict``, plain data
the interpreter filled in; no part reads an instruction itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.backends.base import AgentResult
from orchestrator.machine import instructions as do
from orchestrator.machine.core import Machine
from orchestrator.machine.instructions import Instruction
from orchestrator.machine.stimuli import Stimulus
from orchestrator.run.attempts import Attempt, Outcome
from orchestrator.state.transitions import answering


@dataclass(slots=True)
class Verdict:
    """What the part that told the machine is to do itself, as the interpreter read it."""

    take: bool = False  # the queue hands the task out now (``Take``)
    until: float | None = None  # it waits for its Not before, until then (``Wait``, not before)
    noted: bool = False  # a word kept for when its task reaches its gate (``Noted``)
    hedge: bool = False  # a straggler: a second attempt starts beside it (``Hedge``)
    racing: bool = False  # a race waits for its other attempts (``KeepRacing``)
    stop: tuple[int, ...] = ()  # the race's attempts to stop (``StopLanes``)
    settle: int | None = None  # the attempt whose outcome is the task's (``Settle``)
    judge: str | None = None  # best of N's judge, asked now (``Judge``)
    apart: bool = False  # a conflict: the task fails, its branch kept to resolve by hand (``KeepApart``)
    resolve: bool = False  # a conflict: a resolution task is written (``Resolve``)
    stop_attempt: bool = False  # a cancel: the running attempt is stopped (``StopAttempt``)
    cancel_waiting: bool = False  # a cancel: the task, not running, is cancelled now (``CancelWaiting``)
    revive: bool = False  # a retry: the task goes back in the queue (``Revive``)
    refused: str | None = None  # a request the run will not do: why (``Refuse``)
    already: str | None = None  # between runs, what a request asks holds already: what to say (``Already``)
    chosen: str | None = None  # the question a person's answer is for (``Chosen``)


Fill = Callable[[Any, Verdict], None]

# The instructions a teller carries out in its own place: each fills in its verdict.
TOLD_BACK: dict[type[Instruction], Fill] = {
    do.Take: lambda _, v: setattr(v, "take", True),
    do.Noted: lambda _, v: setattr(v, "noted", True),
    do.Hedge: lambda _, v: setattr(v, "hedge", True),
    do.KeepRacing: lambda _, v: setattr(v, "racing", True),
    do.StopLanes: lambda i, v: setattr(v, "stop", i.attempts),
    do.Settle: lambda i, v: setattr(v, "settle", i.attempt),
    do.Judge: lambda i, v: setattr(v, "judge", i.judge),
    do.KeepApart: lambda _, v: setattr(v, "apart", True),
    do.Resolve: lambda _, v: setattr(v, "resolve", True),
    do.StopAttempt: lambda _, v: setattr(v, "stop_attempt", True),
    do.CancelWaiting: lambda _, v: setattr(v, "cancel_waiting", True),
    do.Revive: lambda _, v: setattr(v, "revive", True),
    do.Refuse: lambda i, v: setattr(v, "refused", i.why),
    do.Already: lambda i, v: setattr(v, "already", i.why),
    do.Chosen: lambda i, v: setattr(v, "chosen", i.question),
}


@dataclass(frozen=True, slots=True)
class Scene:
    """What the instructions answering one stimulus may need beyond their fields, and the
    ``verdict`` they fill in for the teller."""

    outcome: Outcome | None = None  # the attempt that ended
    began: float | None = None  # admission's moment it began (a rate limit's window learns from it)
    now: float = 0.0  # loop time it ended at
    attempt: Attempt | None = None  # the attempt a cancel stopped
    spent: AgentResult | None = None  # what it spent until then
    verdict: Verdict = field(default_factory=Verdict)


class Carrier(Protocol):
    """What carries out the machine's instructions (``run/interpreter.Interpreter``)."""

    def carry(self, said: list[Instruction], scene: Scene | None = None) -> Verdict: ...


class Between:
    """The carrier of a request made with no run going on (``run/inflight/requests``,
    ``decisions``): the machine's answer to it is told back whole, for the request to carry out."""

    def carry(self, said: list[Instruction], scene: Scene | None = None) -> Verdict:
        verdict = (scene if scene is not None else Scene()).verdict
        for instruction in said:
            TOLD_BACK[type(instruction)](instruction, verdict)
        return verdict


class Desk:
    """The run's machine, told through its interpreter (``carrier``, given by the loop once made)."""

    def __init__(self, machine: Machine, carrier: Carrier | None = None) -> None:
        self.machine = machine
        self.carrier = carrier

    def stamp(self) -> int:
        """The id of the next stimulus (``Machine.stamp``)."""
        return self.machine.stamp()

    def tell(self, stimulus: Stimulus, scene: Scene | None = None) -> Verdict:
        """``stimulus`` told to the machine, what it says carried out; what the teller does itself, back."""
        assert self.carrier is not None, "the machine told before the run's interpreter was made"
        with answering(stimulus.id, type(stimulus).__name__):  # (each move it leads to says so: the state trace)
            return self.carrier.carry(self.machine.handle(stimulus), scene)
