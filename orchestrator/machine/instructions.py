"""What the machine asks of the loop (its instructions): frozen records, each carrying the
``stimulus`` it answers and, where the move has one, its ``cause``. The loop carries them out in
order (``run/interpreter.Interpreter``); nothing here does anything.

    Take / Wait(task)                    the queue hands the task out now, or keeps it
    Start(task)                          past its gates: what its start finds is asked (``Starting``)
    SettleRow / StayFailed / Reuse(task) a row's instances run; its conflict stands; the cache's result
    Launch(task)                         its next attempt starts (``run/starts.Starts.launch``)
    GiveUp(task, status)                 it will not run in this run; what depends on it neither
    AwaitWord(task, gate) / Requeue      it waits for a person at its gate (a gate before: kept ready)
    KeepSession / ForgetSession(task)    the agent session its next attempt continues, or none
    Complete(task, warning, awaiting)    its result written (awaiting a word when ``awaiting``)
    Release(task)                        it counts as done: what depends on it may start
    RetryLater(task, after)              its next attempt after a backoff
    PauseGroup(task, until, group)       a usage limit: the group starts nothing until then
    BlockBackend(backend, why)           nothing more starts on the backend
    FailOver(task, reason)               its next attempt now, on a fallback, spending no retry
    Fail(task, reason) / SkipDownstream  it failed; what depends on it is skipped
    Halt(why)                            the run stops: fail-fast, the cost limit
    Cancel(task)                         its stopped attempt recorded cancelled
    Hedge(task)                          a second attempt beside a straggler, as a slot frees
    KeepRacing / StopLanes(task)         a race waits for its other attempts, or stops them
    Settle(task, attempt) / Judge(task)  the attempt whose outcome is the task's; best of N's judge asked
    KeepApart / Resolve(task)            a conflict: the task fails, kept to resolve by hand; or a resolution task
    Adopt(task, added)                   the resolution task its merge wrote joins the run, its dependents wait
    TakeWord(task, gate, decision)       a person's word at its gate taken: told, its result restated
    Reject(task)                         rejected at its gate: what depends on it skipped
    Noted(task)                          a word for a task at no gate: kept for when it gets there
    StopAttempt / CancelWaiting(task)    a cancel: its running attempt stopped; one not running cancelled
    Revive(task) / Refuse(task, why)     a retry: back in the queue; a request the run will not do, and why
    Join(task)                           a row added joins the queue
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.state.approvals import Decision
from orchestrator.state.causes import Cause
from orchestrator.vocabulary import TaskStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class Instruction:
    stimulus: int  # the id of the stimulus it answers
    cause: Cause | None = None  # why the task moves, where the move has a cause to record


@dataclass(frozen=True, slots=True, kw_only=True)
class Take(Instruction):
    task: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Wait(Instruction):
    task: str
    why: str  # held, not before, dependencies, no room


@dataclass(frozen=True, slots=True, kw_only=True)
class Start(Instruction):
    task: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SettleRow(Instruction):
    task: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StayFailed(Instruction):
    task: str
    why: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Reuse(Instruction):
    task: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Launch(Instruction):
    task: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GiveUp(Instruction):
    task: str
    status: TaskStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class AwaitWord(Instruction):
    task: str
    gate: str  # before, after


@dataclass(frozen=True, slots=True, kw_only=True)
class Requeue(Instruction):
    task: str


@dataclass(frozen=True, slots=True, kw_only=True)
class KeepSession(Instruction):
    task: str
    session: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ForgetSession(Instruction):
    task: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Complete(Instruction):
    task: str
    warning: str | None = None
    awaiting: bool = False  # its result awaits a person's word (a gate after)


@dataclass(frozen=True, slots=True, kw_only=True)
class Release(Instruction):
    task: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryLater(Instruction):
    task: str
    after: float  # seconds
    at: float  # loop time
    reason: str
    rate_limited: bool = False  # admission starts fewer at once on ``backend`` for a while
    backend: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseGroup(Instruction):
    task: str
    until: float | None  # epoch seconds; None: not said
    reason: str
    backend: str
    group: str  # the limit group (its backend, when it names none)


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockBackend(Instruction):
    backend: str
    why: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FailOver(Instruction):
    task: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Fail(Instruction):
    task: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SkipDownstream(Instruction):
    task: str
    status: TaskStatus  # what the task ended as


@dataclass(frozen=True, slots=True, kw_only=True)
class Halt(Instruction):
    why: str  # what the run's end says


@dataclass(frozen=True, slots=True, kw_only=True)
class Cancel(Instruction):
    task: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Hedge(Instruction):
    task: str


@dataclass(frozen=True, slots=True, kw_only=True)
class KeepRacing(Instruction):
    task: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StopLanes(Instruction):
    task: str
    attempts: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Settle(Instruction):
    task: str
    attempt: int  # the attempt whose outcome becomes the task's


@dataclass(frozen=True, slots=True, kw_only=True)
class Judge(Instruction):
    task: str
    judge: str


@dataclass(frozen=True, slots=True, kw_only=True)
class KeepApart(Instruction):
    task: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolve(Instruction):
    task: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Adopt(Instruction):
    task: str
    added: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class TakeWord(Instruction):
    task: str
    gate: str
    decision: Decision


@dataclass(frozen=True, slots=True, kw_only=True)
class Reject(Instruction):
    task: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Noted(Instruction):
    task: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StopAttempt(Instruction):
    task: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelWaiting(Instruction):
    task: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Revive(Instruction):
    task: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Refuse(Instruction):
    task: str
    why: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Join(Instruction):
    task: str
