"""The rules that answer a request (``cancel``, ``retry``, ``approve``/``reject`` before the word
is written, ``answer``: which question a word is for): of the run going on, or between runs, over
the tasks as the machine holds them and the facts told. Each refusal is written once, here: every
door that asks reads it from the machine's answer."""

from __future__ import annotations

from orchestrator.machine import instructions as do
from orchestrator.machine import stimuli as on
from orchestrator.machine.rule import Context, moves
from orchestrator.state.words.questions import TIMEOUT, Question, Reply, closed
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


def answer_asked(s: on.AnswerAsked, _: Context) -> list[do.Instruction]:
    """A person's answer is for the question it names while that is open; else for the one question
    the task asks now, unless the question before that one closed with nobody's word (a word typed
    for a question that timed out must not answer the next). Refused otherwise, in one line that
    names what the task asks now and what to type."""
    task, found, now = s.task, s.asked, s.now
    asking = [q for q, reply in found if not closed(q, reply, now)]
    if s.named is not None:
        match = next(((q, reply) for q, reply in found if q.named(s.named)), None)
        now_asked = asking_now(asking, task, s.word, comment=s.comment)  # (what refusing it adds)
        if match is None:
            known = ", ".join(q.short for q, _ in found) or "none yet"
            why = f"{task} has no question {s.named} (its questions: {known})" + now_asked
        elif closed(*match, now):
            question, reply = match
            why = f"{task}'s {question.short}, {question.said}, is closed: {_how(reply)}" + now_asked
        else:
            return [do.Chosen(stimulus=s.id, task=task, question=match[0].question)]
        return [do.Refuse(stimulus=s.id, task=task, why=why)]
    if not asking:
        last = f" (its {found[-1][0].short}, {found[-1][0].said}, closed: {_how(found[-1][1])})" if found else ""
        return [do.Refuse(stimulus=s.id, task=task, why=f"{task} asks nothing now{last}")]
    if len(asking) > 1:
        listed = "; ".join(f"{q.short}, {q.said}" for q in asking)
        form = asking[0].form(s.word, comment=s.comment)
        why = f"{task} asks {len(asking)} questions ({listed}) — name the one you answer: `{form}`"
        return [do.Refuse(stimulus=s.id, task=task, why=why)]
    only = asking[0]
    before = [(q, reply) for q, reply in found if q.number < only.number]
    if before and _unanswered(*before[-1]):
        question, reply = before[-1]
        why = (
            f"{task}'s {question.short}, {question.said}, closed with nobody's word ({_how(reply)}), and it asks "
            f"{only.short} now: {only.said} — a word for {only.short} names it: "
            f"`{only.form(s.word, comment=s.comment)}`"
        )
        return [do.Refuse(stimulus=s.id, task=task, why=why)]
    return [do.Chosen(stimulus=s.id, task=task, question=only.question)]


def asking_now(asking: list[Question], task: str, word: str = "allow|deny", *, comment: bool = False) -> str:
    """What a refusal adds: `` — it asks Q2 now: Bash(...): `orchestrator answer T-03 Q2 allow` ``."""
    if not asking:
        return f" — {task} asks nothing now"
    more = f" (and {len(asking) - 1} more)" if len(asking) > 1 else ""
    return f" — it asks {asking[0].short} now: {asking[0].said}{more}: `{asking[0].form(word, comment=comment)}`"


def _unanswered(question: Question, reply: Reply | None) -> bool:
    """Whether ``question`` closed with no person's word: denied at its ``until``."""
    return reply is None or reply.by == TIMEOUT


def _how(reply: Reply | None) -> str:
    """How a question closed: ``denied: no answer within 2s``, ``allowed by ann``."""
    if reply is None:
        return "denied: no answer in time"
    if reply.by == TIMEOUT:
        return f"denied: {reply.reason or 'no answer in time'}"
    return f"{'allowed' if reply.allowed else 'denied'} by {reply.by or 'someone'}"
