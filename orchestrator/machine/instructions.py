"""What the machine asks of the loop (its instructions): frozen records, each carrying the
``stimulus`` it answers and, where the move has one, its ``cause``. The loop carries them out in
order (``run/interpreter.Interpreter``); nothing here does anything.

    Take / Wait(task)                    the queue hands the task out now, or keeps it
    TimeCame(task)                       its Not before has come: ready again
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
    Already(task, why)                   with no run going on, what a request asks holds already: nothing done
    Chosen(task, question)               the question a person's answer is for
    Join(task)                           a row added joins the queue
    Shows(task, status, note)            a task joins a view in the state its files leave it in
"""

from __future__ import annotations

import msgspec

from orchestrator.state.approvals import Decision
from orchestrator.state.causes import Cause
from orchestrator.vocabulary import TaskStatus


class Instruction(msgspec.Struct, frozen=True, kw_only=True):
    stimulus: int  # the id of the stimulus it answers
    cause: Cause | None = None  # why the task moves, where the move has a cause to record
    rule: str = ""  # the rule that said it (``Machine.handle``): the moves it makes must be that rule's


class Take(Instruction, frozen=True, kw_only=True):
    task: str


class Wait(Instruction, frozen=True, kw_only=True):
    task: str
    why: str  # held, not before, dependencies, no room


class TimeCame(Instruction, frozen=True, kw_only=True):
    """``task``'s Not before has come: it waits for it no more (ready, pending)."""

    task: str


class Start(Instruction, frozen=True, kw_only=True):
    task: str


class SettleRow(Instruction, frozen=True, kw_only=True):
    task: str


class StayFailed(Instruction, frozen=True, kw_only=True):
    task: str
    why: str


class Reuse(Instruction, frozen=True, kw_only=True):
    task: str


class Launch(Instruction, frozen=True, kw_only=True):
    task: str


class GiveUp(Instruction, frozen=True, kw_only=True):
    task: str
    status: TaskStatus


class AwaitWord(Instruction, frozen=True, kw_only=True):
    task: str
    gate: str  # before, after


class Requeue(Instruction, frozen=True, kw_only=True):
    task: str


class KeepSession(Instruction, frozen=True, kw_only=True):
    task: str
    session: str


class ForgetSession(Instruction, frozen=True, kw_only=True):
    task: str


class Complete(Instruction, frozen=True, kw_only=True):
    task: str
    warning: str | None = None
    awaiting: bool = False  # its result awaits a person's word (a gate after)


class Release(Instruction, frozen=True, kw_only=True):
    task: str


class RetryLater(Instruction, frozen=True, kw_only=True):
    task: str
    after: float  # seconds
    at: float  # loop time
    reason: str
    rate_limited: bool = False  # admission starts fewer at once on ``backend`` for a while
    backend: str = ""


class PauseGroup(Instruction, frozen=True, kw_only=True):
    task: str
    until: float | None  # epoch seconds; None: not said
    reason: str
    backend: str
    group: str  # the limit group (its backend, when it names none)


class BlockBackend(Instruction, frozen=True, kw_only=True):
    backend: str
    why: str


class FailOver(Instruction, frozen=True, kw_only=True):
    task: str
    reason: str


class Fail(Instruction, frozen=True, kw_only=True):
    task: str
    reason: str


class SkipDownstream(Instruction, frozen=True, kw_only=True):
    task: str
    status: TaskStatus  # what the task ended as


class Halt(Instruction, frozen=True, kw_only=True):
    why: str  # what the run's end says


class StopRunning(Instruction, frozen=True, kw_only=True):
    """What runs is stopped (each attempt as a cancel stops it, for ``cause``), and the run goes
    on: ``at_budget: stop`` at the budget, where the run then waits for a higher one."""

    why: str


class Cancel(Instruction, frozen=True, kw_only=True):
    task: str


class Hedge(Instruction, frozen=True, kw_only=True):
    task: str


class KeepRacing(Instruction, frozen=True, kw_only=True):
    task: str


class StopLanes(Instruction, frozen=True, kw_only=True):
    task: str
    attempts: tuple[int, ...]


class Settle(Instruction, frozen=True, kw_only=True):
    task: str
    attempt: int  # the attempt whose outcome becomes the task's


class Judge(Instruction, frozen=True, kw_only=True):
    task: str
    judge: str


class KeepApart(Instruction, frozen=True, kw_only=True):
    task: str


class Resolve(Instruction, frozen=True, kw_only=True):
    task: str


class Adopt(Instruction, frozen=True, kw_only=True):
    task: str
    added: tuple[str, ...]


class TakeWord(Instruction, frozen=True, kw_only=True):
    task: str
    gate: str
    decision: Decision


class Reject(Instruction, frozen=True, kw_only=True):
    task: str


class Noted(Instruction, frozen=True, kw_only=True):
    task: str


class StopAttempt(Instruction, frozen=True, kw_only=True):
    task: str


class CancelWaiting(Instruction, frozen=True, kw_only=True):
    task: str


class Revive(Instruction, frozen=True, kw_only=True):
    task: str


class Refuse(Instruction, frozen=True, kw_only=True):
    task: str
    why: str


class Already(Instruction, frozen=True, kw_only=True):
    task: str
    why: str  # what holds already, said as the answer


class Join(Instruction, frozen=True, kw_only=True):
    task: str


class Shows(Instruction, frozen=True, kw_only=True):
    """``task`` joins a view (``views/replay``) in ``status``, for its ``cause`` (else an
    attempt's own words, ``note``): the state the workspace's files leave it in between runs."""

    task: str
    status: TaskStatus
    note: str | None = None


class Chosen(Instruction, frozen=True, kw_only=True):
    """The question (its id) a person's answer to ``task``'s agent is for."""

    task: str
    question: str
