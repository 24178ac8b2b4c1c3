"""The rules that answer a request (``cancel``, ``retry``, ``approve``/``reject`` before the word
is written): of the run going on, or between runs, over the tasks as the machine holds them. Each
refusal is written once, here: every door that asks reads it from the machine's answer."""

from __future__ import annotations

from orchestrator.machine import instructions as do
from orchestrator.machine import stimuli as on
from orchestrator.machine.rule import Context, moves
from orchestrator.vocabulary import TaskStatus


def cancel_asked(s: on.CancelAsked, c: Context) -> list[do.Instruction]:
    """A cancel: a running attempt is stopped (recorded cancelled once its processes are gone:
    ``cancel``); a completed task is refused, and so is one finished already in the run going on;
    between runs, a cancelled one is so already, and any other is cancelled for the next run; in a
    run, any other (queued, held, waiting for its next attempt) is cancelled now, and what depends
    on it skipped."""
    status = c.status(s.task)
    if s.running:
        return [do.StopAttempt(stimulus=s.id, task=s.task, cause=s.cause)]
    if status == TaskStatus.COMPLETED and not s.busy:
        return [do.Refuse(stimulus=s.id, task=s.task, why=f"{s.task} is completed: there is nothing to cancel")]
    if status == TaskStatus.CANCELLED and not s.live:
        return [do.Already(stimulus=s.id, task=s.task, why=f"{s.task} is cancelled already")]
    if s.live and status.finished and not s.busy:
        return [do.Refuse(stimulus=s.id, task=s.task, why=f"{s.task} is {status} already")]
    return [do.CancelWaiting(stimulus=s.id, task=s.task, cause=s.cause)]


def retry_asked(s: on.RetryAsked, c: Context) -> list[do.Instruction]:
    """A retry: a task that ended and did not complete goes back in the queue, its retries afresh
    (and what its end skipped with it); one completed, one whose upstream is cancelled, one a
    fallback took over, or one asked of a run that is stopping is refused, saying what to do
    instead. One in the queue already is refused by a run, and is so already between runs, as is
    one the next run runs again anyway (failed, interrupted)."""
    status = c.status(s.task)
    if s.cancelled_upstream is not None:
        upstream = s.cancelled_upstream
        return [do.Refuse(stimulus=s.id, task=s.task, why=f"upstream {upstream} was cancelled: retry {upstream} first")]
    if s.busy or not status.finished:
        why = f"{s.task} is {status}: it is in the queue already"
        return [
            do.Refuse(stimulus=s.id, task=s.task, why=why)
            if s.live
            else do.Already(stimulus=s.id, task=s.task, why=why)
        ]
    if status == TaskStatus.COMPLETED:
        redo = f"`orchestrator run --rerun {s.task}` redoes it"
        return [do.Refuse(stimulus=s.id, task=s.task, why=f"{s.task} is completed ({redo})")]
    if status == TaskStatus.FAILED and s.settled:
        why = f"{s.task} failed, and a fallback took it over (the run was done): "
        why += f"`orchestrator run --rerun {s.task}` runs it again"
        return [do.Refuse(stimulus=s.id, task=s.task, why=why)]
    if s.stopping is not None:
        return [do.Refuse(stimulus=s.id, task=s.task, why=f"the run is stopping ({s.stopping})")]
    kept = status in (TaskStatus.CANCELLED, TaskStatus.REJECTED) or (s.settled and status in _STAYS)
    if not s.live and not kept:
        return [
            do.Already(stimulus=s.id, task=s.task, why=f"{s.task} ({status}) runs again in the next `orchestrator run`")
        ]
    return [do.Revive(stimulus=s.id, task=s.task)]


_STAYS = (TaskStatus.BYPASSED, TaskStatus.SKIPPED)  # (what the next run leaves as it is, when settled)


def word_asked(s: on.WordAsked, c: Context) -> list[do.Instruction]:
    """`approve` or `reject` of a task with nothing left to decide is refused: one past its gate
    before it starts (running), one completed (unless out of date), one rejected or cancelled (a
    retry asks again). Otherwise nothing is said: the word is written."""
    status = c.status(s.task)
    if status in (TaskStatus.RUNNING, TaskStatus.RETRYING) and s.gate == "before":
        why = f"{s.task} is {status}: its gate before it starts was passed"
    elif status == TaskStatus.COMPLETED and not s.out_of_date:
        why = f"{s.task} is completed: there is nothing to decide"
    elif status in (TaskStatus.REJECTED, TaskStatus.CANCELLED):
        why = f"{s.task} is {status}: `orchestrator retry {s.task}` asks again"
    else:
        return []
    return [do.Refuse(stimulus=s.id, task=s.task, why=why)]


CANCELLED = moves("running→cancelled", "pending→cancelled", "retrying→cancelled", "waiting→cancelled",
                  "blocked→cancelled", "awaiting_approval→cancelled")  # fmt: skip
REVIVED = moves("failed→pending", "cancelled→pending", "skipped→pending", "rejected→pending",
                "interrupted→pending", "bypassed→pending", "failed→waiting", "cancelled→waiting",
                "skipped→waiting", "rejected→waiting", "interrupted→waiting", "bypassed→waiting")  # fmt: skip
