"""The machine's rules: each named, declaring the stimuli it answers and the moves it governs
(``pending→running``, ``running→retrying``), kept in one ordered list, ``RULES``.

``Machine.handle`` asks each rule in turn; a rule answers with the instructions its move takes
(none when the move is not its own). A ``final`` rule that answered settles the stimulus: the
rules after it are not asked (a task given up at its gate does not start; an attempt that fails
over is no failure the cost limit is judged on, as it never was). What an attempt's outcome
means is ``machine/policy.decide``'s, asked once per outcome (``Context.decision``) and read here.

As Prefect's orchestration rules: a rule is small, knows the states it governs, and the policy is
the order of the list.
"""

from __future__ import annotations

from orchestrator.machine import instructions as do
from orchestrator.machine import policy
from orchestrator.machine import stimuli as on
from orchestrator.machine.asked import CANCELLED, REVIVED, answer_asked, cancel_asked, retry_asked, word_asked
from orchestrator.machine.rule import Context, Move, Rule, moves
from orchestrator.state.approvals import APPROVED, Decision, rejected_cause, standing_on
from orchestrator.state.causes import Cause, CauseKind
from orchestrator.vocabulary import ErrorClass, TaskStatus, money

__all__ = ["BY_NAME", "RULES", "Context", "Move", "Rule", "moves"]


# --- pending→running: a task the queue weighs, then one taken from it ---------------------------


def _hold(s: on.Offered, c: Context) -> list[do.Instruction]:
    """A person holds it (its Blocked cell, its gate, the budget): it waits, for that."""
    held = c.held(s.task)
    return [do.Wait(stimulus=s.id, task=s.task, why="held", cause=held)] if held is not None else []


def _not_before(s: on.Offered | on.Scheduled, _: Context) -> list[do.Instruction]:
    """Its Not before, judged on the clock it is told: not come, it waits until then; come, a
    queued task waiting for it is ready (an offered one goes on to the next rule)."""
    if s.not_before is None or s.not_before <= s.now:
        return [do.TimeCame(stimulus=s.id, task=s.task)] if isinstance(s, on.Scheduled) else []
    return [
        do.Wait(stimulus=s.id, task=s.task, why="not before", cause=Cause(CauseKind.NOT_BEFORE, until=s.not_before))
    ]


def _dependencies(s: on.Offered, _: Context) -> list[do.Instruction]:
    """What its dependencies have not done yet, it waits for (never so in a run: its queue offers
    a task once they are done with; a view replaying the rules over a plan between runs asks)."""
    return [do.Wait(stimulus=s.id, task=s.task, why="dependencies")] if s.waiting_on else []


def _admit(s: on.Offered, _: Context) -> list[do.Instruction]:
    return [] if s.admitted else [do.Wait(stimulus=s.id, task=s.task, why="no room")]


def _take(s: on.Offered, _: Context) -> list[do.Instruction]:
    return [do.Take(stimulus=s.id, task=s.task)]


def _blocked_backend(s: on.Taken, _: Context) -> list[do.Instruction]:
    if s.blocked is None:
        return []
    cause = Cause.of(CauseKind.STOPPED, f"not started: {s.blocked}")
    return [do.GiveUp(stimulus=s.id, task=s.task, status=TaskStatus.SKIPPED, cause=cause)]


def _result_awaits_word(s: on.Taken, _: Context) -> list[do.Instruction]:
    """Its work is done in an earlier run: it waits for a word, not to run."""
    if not s.awaits_word:
        return []
    return [do.AwaitWord(stimulus=s.id, task=s.task, gate="after", cause=Cause(CauseKind.HELD, gate="after"))]


def _condition(s: on.Taken, _: Context) -> list[do.Instruction]:
    """Its Condition, decided on its dependencies' outcomes and the fields it reads: false, it is
    bypassed; one that needs what an upstream did not leave, skipped (bypassed) for it; one that
    cannot be decided, failed (``policy.condition``)."""
    if s.condition is None:
        return []
    verdict = policy.condition(s.condition)
    if verdict is None:
        return []
    status, cause = verdict
    return [do.GiveUp(stimulus=s.id, task=s.task, status=status, cause=cause)]


def _standing(s: on.Taken, c: Context) -> Decision | None:
    """The last word said at its gate before it starts (as the machine holds it) if it stands now
    (``Decision.stands``): made on the inputs it has now, else, with either unknown, since its last
    completed result."""
    state = c.tasks.get(s.task)
    return standing_on(state.word if state is not None else None, s.inputs, s.done)


def _approve_before(s: on.Taken, c: Context) -> list[do.Instruction]:
    """No word that stands: it waits at its gate, ready, for when it is approved."""
    if s.gate != "before":
        return []
    word = _standing(s, c)
    if word is None:
        cause = Cause(CauseKind.HELD, gate="before")
        return [do.AwaitWord(stimulus=s.id, task=s.task, gate="before", cause=cause),
                do.Requeue(stimulus=s.id, task=s.task)]  # fmt: skip
    if word.decision != APPROVED:
        cause = rejected_cause(word, "before")
        return [do.GiveUp(stimulus=s.id, task=s.task, status=TaskStatus.REJECTED, cause=cause)]
    return []


def _start(s: on.Taken, c: Context) -> list[do.Instruction]:
    """It starts: past its gate by the word that stands for it, the cause says so."""
    word = _standing(s, c) if s.gate == "before" else None
    cause = Cause(CauseKind.APPROVED, gate="before", by=word.by or None) if word is not None else None
    return [do.Start(stimulus=s.id, task=s.task, cause=cause)]


def _row(s: on.Starting, _: Context) -> list[do.Instruction]:
    """A row run once per item starts no attempt of its own: its instances run, and it settles on them."""
    return [do.SettleRow(stimulus=s.id, task=s.task)] if s.row else []


def _conflict(s: on.Starting, _: Context) -> list[do.Instruction]:
    """A task ``on_conflict: fail`` failed, unchanged since, whose conflict a person has not
    resolved: it stays failed, told again, and what depends on it is skipped."""
    if s.conflict is None:
        return []
    return [do.StayFailed(stimulus=s.id, task=s.task, why=s.conflict),
            do.SkipDownstream(stimulus=s.id, task=s.task, status=TaskStatus.FAILED)]  # fmt: skip


def _reuse(s: on.Starting, _: Context) -> list[do.Instruction]:
    """The cache keeps a completed result for the inputs it has now: that result, no process."""
    return [do.Reuse(stimulus=s.id, task=s.task), do.Release(stimulus=s.id, task=s.task)] if s.cached else []


def _launch(s: on.Starting, _: Context) -> list[do.Instruction]:
    return [do.Launch(stimulus=s.id, task=s.task)]


# --- running→*: an attempt ended ----------------------------------------------------------------


def _fail_over(s: on.AttemptEnded, _: Context) -> list[do.Instruction]:
    """Its backend is down (its breaker open) and its task names a fallback that is up: its next
    attempt starts now, there, spending no retry; another vendor's agent starts afresh."""
    over = policy.fails_over(s.result, s.settings, s.breaker, s.fallback)
    if over is None:
        return []
    said: list[do.Instruction] = []
    if s.result.error_class is ErrorClass.AUTH:  # (what has no fallback is skipped, as always)
        said.append(do.BlockBackend(stimulus=s.id, backend=s.settings.backend, why=s.down))
    return [*said, do.ForgetSession(stimulus=s.id, task=s.task),
            do.FailOver(stimulus=s.id, task=s.task, reason=over)]  # fmt: skip


def _session(s: on.AttemptEnded, c: Context) -> list[do.Instruction]:
    """The session the next attempt continues, on the worker that ran it. After a pause (a usage
    limit), the session the attempt had. After a rate limit: the API turned its next request away,
    not the session, which goes on where it stopped, told to go on if the task is unchanged. Only
    a session that got an answer (in this attempt or one it continued): one whose first request
    was refused has done nothing yet. A session that could not be continued: start afresh."""
    decision, result = c.decision, s.result
    session = result.session_id
    answered = s.resumed == session or bool(result.tokens and result.tokens.get("output"))
    limited = isinstance(decision, policy.Retry) and decision.rate_limited and answered
    if session and (isinstance(decision, policy.Pause) or limited):
        return [do.KeepSession(stimulus=s.id, task=s.task, session=session)]
    if isinstance(decision, policy.Complete | policy.Pause):
        return []
    return [do.ForgetSession(stimulus=s.id, task=s.task)]


def _complete(s: on.AttemptEnded, c: Context) -> list[do.Instruction]:
    decision = c.decision
    if not isinstance(decision, policy.Complete):
        return []
    return [do.Complete(stimulus=s.id, task=s.task, warning=decision.warning, awaiting=s.approval == "after")]


def _adopt(s: on.AttemptEnded, c: Context) -> list[do.Instruction]:
    """A completed task whose merge wrote a resolution task into the plan (its conflict, ``on_conflict:
    resolve``): the resolution joins the run, and what depends on the task waits for it too."""
    if not (s.added and isinstance(c.decision, policy.Complete)):
        return []
    return [do.Adopt(stimulus=s.id, task=s.task, added=s.added)]


def _approve_after(s: on.AttemptEnded, c: Context) -> list[do.Instruction]:
    """A completed task whose gate is after: its result waits for a person's word, and so does
    what needs it; else what needs it may start."""
    if not isinstance(c.decision, policy.Complete):
        return []
    if s.approval == "after":
        return [do.AwaitWord(stimulus=s.id, task=s.task, gate="after", cause=Cause(CauseKind.HELD, gate="after"))]
    return [do.Release(stimulus=s.id, task=s.task)]


def _retry(s: on.AttemptEnded, c: Context) -> list[do.Instruction]:
    decision = c.decision
    if not isinstance(decision, policy.Retry):
        return []
    return [do.RetryLater(stimulus=s.id, task=s.task, after=decision.after, at=s.now + decision.after,
                          reason=decision.reason, rate_limited=decision.rate_limited,
                          backend=s.settings.backend)]  # fmt: skip


def _pause(s: on.AttemptEnded, c: Context) -> list[do.Instruction]:
    decision, settings = c.decision, s.settings
    if not isinstance(decision, policy.Pause):
        return []
    group = settings.limit_group or settings.backend
    return [do.PauseGroup(stimulus=s.id, task=s.task, until=decision.until, reason=decision.reason,
                          backend=settings.backend, group=group)]  # fmt: skip


def _block(s: on.AttemptEnded, c: Context) -> list[do.Instruction]:
    decision = c.decision
    if not isinstance(decision, policy.Block):
        return []
    return [do.BlockBackend(stimulus=s.id, backend=decision.backend, why=decision.blocked),
            do.Fail(stimulus=s.id, task=s.task, reason=decision.reason),
            do.SkipDownstream(stimulus=s.id, task=s.task, status=TaskStatus.FAILED)]  # fmt: skip


def _fail(s: on.AttemptEnded, c: Context) -> list[do.Instruction]:
    decision = c.decision
    if not isinstance(decision, policy.Fail):
        return []
    return [do.Fail(stimulus=s.id, task=s.task, reason=decision.reason),
            do.SkipDownstream(stimulus=s.id, task=s.task, status=TaskStatus.FAILED)]  # fmt: skip


def _fail_fast(s: on.AttemptEnded, c: Context) -> list[do.Instruction]:
    if not (s.fail_fast and not s.stopped and isinstance(c.decision, policy.Fail)):
        return []
    return [do.Halt(stimulus=s.id, why=f"--fail-fast: {s.task} failed", cause=Cause(CauseKind.STOPPED, task=s.task))]


def _budget(s: on.AttemptEnded | on.AttemptCancelled, c: Context) -> list[do.Instruction]:
    """Once the run has spent its ``max_cost`` (``at_budget: stop``), what runs is stopped, each
    attempt cancelled for the budget; the run goes on, and waits for a higher budget
    (``run/held/budget``), which brings them back (unless it stops already). (``at_budget:
    finish``: what runs finishes; the budget holds what has not started.)"""
    budget = s.budget
    if budget is None or not budget.stop or budget.spent < budget.limit or s.stopped:
        return []
    if any(isinstance(said, do.Halt | do.StopRunning) for said in c.said):
        return []
    why = f"cost limit reached: ${budget.spent:.4f} of ${budget.limit:.4f}"
    cause = Cause.of(CauseKind.BUDGET, f"stopped: the run reached its cost limit of {money(budget.limit)}")
    return [do.StopRunning(stimulus=s.id, why=why, cause=cause)]


def _cancel(s: on.AttemptCancelled, _: Context) -> list[do.Instruction]:
    return [do.Cancel(stimulus=s.id, task=s.task, cause=s.cause)]


# --- running→*: a race (a hedge beside a straggler, best of N) ---------------------------------------


def _hedge(s: on.Straggling, _: Context) -> list[do.Instruction]:
    """An attempt past its kind's bound straggles: a second one starts beside it as a slot frees."""
    return [do.Hedge(stimulus=s.id, task=s.task)] if s.bound is not None and s.elapsed >= s.bound else []


def _race(s: on.LaneEnded, _: Context) -> list[do.Instruction]:
    """A hedge's race: the first to complete wins and the other is stopped; one failed, the other
    has its chance; both failed, the one that ended last is the task's outcome."""
    if s.judge is not None:
        return []
    if s.completed:
        stop = [do.StopLanes(stimulus=s.id, task=s.task, attempts=s.running)] if s.running else []
        return [*stop, do.Settle(stimulus=s.id, task=s.task, attempt=s.attempt)]
    if s.running:
        return [do.KeepRacing(stimulus=s.id, task=s.task)]
    return [do.Settle(stimulus=s.id, task=s.task, attempt=s.attempt)]


def _best_of(s: on.LaneEnded, _: Context) -> list[do.Instruction]:
    """Best of N: judge ``first`` takes the first to complete and stops the rest (those not started
    never start); any other judge waits for every candidate to run and end, then chooses among
    those that completed."""
    if s.judge is None:
        return []
    first = s.judge == "first" and s.completed
    if (s.running or s.unstarted) and not first:
        return [do.KeepRacing(stimulus=s.id, task=s.task)]
    stop = [do.StopLanes(stimulus=s.id, task=s.task, attempts=s.running)] if s.running else []
    return [*stop, do.Judge(stimulus=s.id, task=s.task, judge=s.judge)]


def _merge(s: on.MergeConflicted, _: Context) -> list[do.Instruction]:
    """A completed task's branch conflicts with the integration branch: ``on_conflict: fail``, it
    fails, its work kept apart for a person to resolve on its branch; else a resolution task."""
    if s.on_conflict == "fail":
        return [do.KeepApart(stimulus=s.id, task=s.task)]
    return [do.Resolve(stimulus=s.id, task=s.task)]


# --- a person's word, the clock, a row added ------------------------------------------------------


def _word(s: on.WordSaid, c: Context) -> list[do.Instruction]:
    """A word on a task at its gate (as the machine holds it): taken (before: it starts; after:
    its result counts, or is rejected); on one at no gate: kept in the approvals file for when it
    gets there."""
    state = c.tasks.get(s.task)
    gate = state.gate if state is not None else None
    if gate is None:
        return [do.Noted(stimulus=s.id, task=s.task)]
    took = do.TakeWord(stimulus=s.id, task=s.task, gate=gate, decision=s.decision)
    if s.decision.decision != APPROVED:
        return [took, do.Reject(stimulus=s.id, task=s.task, cause=rejected_cause(s.decision, gate))]
    return [took, do.Release(stimulus=s.id, task=s.task)] if gate == "after" else [took]


def _found(s: on.Found, _: Context) -> list[do.Instruction]:
    """A task as the workspace's files leave it between runs, joining a view: an attempt of it
    open is running while the run that opened it is alive, interrupted once that run is gone;
    waiting for its next attempt in a run alive, retrying; a row run per item, running while an
    item of it runs; else what its result records (no result: pending), and a result file that
    cannot be read says so where nothing else says why."""
    status, cause, note = s.recorded or TaskStatus.PENDING, s.cause, s.note
    if s.attempt:
        status, note = TaskStatus.RUNNING if s.alive else TaskStatus.INTERRUPTED, None
        cause = None if s.alive else Cause(CauseKind.INTERRUPTED, pid=s.runner)
    elif s.alive and (s.retrying or s.row_running):
        status, cause, note = TaskStatus.RETRYING if s.retrying else TaskStatus.RUNNING, None, None
    if s.unreadable is not None and cause is None and note is None:
        note = f"its result file cannot be read ({s.unreadable}); the next run keeps it aside"
    return [do.Shows(stimulus=s.id, task=s.task, status=status, cause=cause, note=note)]


def _due(s: on.Tick, _: Context) -> list[do.Instruction]:
    """Each task whose next attempt may start by now goes back in the queue (in the order they wait)."""
    return [do.Requeue(stimulus=s.id, task=task) for task, when in s.waiting.items() if when <= s.now]


def _join(s: on.RowAdded, _: Context) -> list[do.Instruction]:
    return [do.Join(stimulus=s.id, task=s.task)]


_STOPPED = moves("pending→skipped", "waiting→skipped", "retrying→failed")
_ENDED = moves("running→completed", "running→failed", "running→awaiting_approval", "running→running")

# fmt: off
# A task given up that a person holds since: the next run offers it again, and holds it (a view reads it so).
_HELD_AGAIN = ("failed→blocked", "skipped→blocked", "interrupted→blocked")
RULES: tuple[Rule, ...] = (
    Rule("hold", moves("pending→blocked", "waiting→blocked", *_HELD_AGAIN), (on.Offered,), _hold, final=True),
    Rule("not-before", moves("pending→waiting", "waiting→pending"), (on.Offered, on.Scheduled), _not_before,
         final=True),
    Rule("dependencies", moves("pending→waiting"), (on.Offered,), _dependencies, final=True),
    Rule("admit", moves("pending→pending", "pending→waiting"), (on.Offered,), _admit, final=True),  # (a view: waiting)
    Rule("take", moves("pending→pending"), (on.Offered,), _take),
    Rule("blocked-backend", moves("pending→skipped"), (on.Taken,), _blocked_backend, final=True),
    Rule("result-awaits-word", moves("pending→awaiting_approval"), (on.Taken,), _result_awaits_word, final=True),
    Rule("condition", moves("pending→bypassed", "pending→skipped", "pending→failed"), (on.Taken,), _condition,
         final=True),
    Rule("approve-before", moves("pending→awaiting_approval", "pending→rejected", "pending→pending"), (on.Taken,),
         _approve_before, final=True),
    Rule("start", moves("pending→running", "retrying→running"), (on.Taken,), _start),
    Rule("row", moves("pending→running", "pending→completed", "pending→waiting", "pending→failed"), (on.Starting,),
         _row, final=True),  # (a row's own state follows its items': settled at once when they are)
    Rule("conflict", moves("pending→failed", "retrying→failed"), (on.Starting,), _conflict, final=True),
    Rule("reuse", moves("pending→completed"), (on.Starting,), _reuse, final=True),
    Rule("launch", moves("pending→running", "retrying→running", "pending→failed", "retrying→failed"), (on.Starting,),
         _launch),  # (an attempt that cannot start, its brief unfit or its sandbox missing, fails its task)
    Rule("fail-over", moves("running→retrying"), (on.AttemptEnded,), _fail_over, final=True),
    Rule("session", (), (on.AttemptEnded,), _session),  # (no move: which session the next attempt continues)
    Rule("complete", moves("running→completed", "running→awaiting_approval"), (on.AttemptEnded,), _complete),
    Rule("adopt", moves("→pending", "→waiting"), (on.AttemptEnded,), _adopt),
    Rule("approve-after", moves("completed→awaiting_approval", "completed→completed"), (on.AttemptEnded,),
         _approve_after),
    Rule("retry", moves("running→retrying"), (on.AttemptEnded,), _retry),
    Rule("pause", moves("running→retrying", "running→waiting"), (on.AttemptEnded,), _pause),
    Rule("block", moves("running→failed"), (on.AttemptEnded,), _block),
    Rule("fail", moves("running→failed"), (on.AttemptEnded,), _fail),
    Rule("fail-fast", _STOPPED, (on.AttemptEnded,), _fail_fast),
    Rule("budget", _STOPPED, (on.AttemptEnded, on.AttemptCancelled), _budget),
    Rule("cancel", moves("running→cancelled"), (on.AttemptCancelled,), _cancel),
    Rule("hedge", moves("running→running"), (on.Straggling,), _hedge),
    Rule("race", _ENDED, (on.LaneEnded,), _race),
    Rule("best-of", _ENDED, (on.LaneEnded,), _best_of),
    Rule("merge", moves("running→failed", "running→completed"), (on.MergeConflicted,), _merge),
    Rule(
        "word",
        moves("awaiting_approval→pending", "awaiting_approval→completed", "awaiting_approval→rejected",
              "awaiting_approval→waiting"),
        (on.WordSaid,),
        _word,
    ),
    Rule("cancel-asked", CANCELLED, (on.CancelAsked,), cancel_asked),
    Rule("retry-asked", REVIVED, (on.RetryAsked,), retry_asked),
    Rule("word-asked", (), (on.WordAsked,), word_asked),  # (no move: whether the word is written at all)
    Rule("answer-asked", (), (on.AnswerAsked,), answer_asked),  # (no move: which question a word is for)
    Rule("found", moves(*(f"→{status}" for status in TaskStatus)), (on.Found,), _found),  # (joining a view)
    Rule("retry-due", moves("retrying→running"), (on.Tick,), _due),  # (its next attempt starts: requeued first)
    Rule("join", moves("→waiting", "→pending", "→skipped"), (on.RowAdded,), _join),
)
# fmt: on
BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}
