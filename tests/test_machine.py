"""The run's machine (``machine``): one test per rule, each feeding a stimulus of plain values
and comparing the instructions it returns, whole. No process, no file, no clock."""

from __future__ import annotations

import ast
import dataclasses
import random
import re
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

import orchestrator
from orchestrator.backends.base import AgentResult
from orchestrator.machine import RULES, Machine
from orchestrator.machine.instructions import (
    Adopt,
    Already,
    AwaitWord,
    BlockBackend,
    Cancel,
    CancelWaiting,
    Chosen,
    Complete,
    Fail,
    FailOver,
    ForgetSession,
    GiveUp,
    Halt,
    Hedge,
    Instruction,
    Join,
    Judge,
    KeepApart,
    KeepRacing,
    KeepSession,
    Launch,
    Noted,
    PauseGroup,
    Refuse,
    Reject,
    Release,
    Requeue,
    Resolve,
    RetryLater,
    Reuse,
    Revive,
    Settle,
    SettleRow,
    Shows,
    SkipDownstream,
    Start,
    StayFailed,
    StopAttempt,
    StopLanes,
    StopRunning,
    Take,
    TakeWord,
    TimeCame,
    Wait,
)
from orchestrator.machine.stimuli import (
    AnswerAsked,
    AttemptCancelled,
    AttemptEnded,
    Budget,
    CancelAsked,
    Found,
    Judged,
    LaneEnded,
    MergeConflicted,
    Offered,
    RetryAsked,
    RowAdded,
    Scheduled,
    Starting,
    Straggling,
    Taken,
    Tick,
    WordAsked,
    WordSaid,
)
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.table.conditions import ConditionError, compile_condition
from orchestrator.run.telling import Desk
from orchestrator.state.approvals import Decision, rejected_cause
from orchestrator.state.causes import Cause, CauseKind
from orchestrator.state.taskstate import TaskState
from orchestrator.state.words.questions import Question, Reply
from orchestrator.vocabulary import ErrorClass, TaskStatus

SETTINGS = Settings(retries=2, backoff_base=1.0, backoff_factor=2.0, backoff_cap=60.0, backend="claude")
FALLING = SETTINGS.replace(fallback=("codex",))  # (a task that names a fallback backend)
NOW = 1000.0  # loop time
HELD = Cause.of(CauseKind.HELD, "waiting for the lawyers")
SPENT = Budget(spent=1.2, limit=1.0)  # (the run's spend past its max_cost, at_budget: stop)
OVER = ("cost limit reached: $1.2000 of $1.0000", "stopped: the run reached its cost limit of $1.00")


def handle(stimulus: object, machine: Machine | None = None) -> list[Instruction]:
    """What the machine says to ``stimulus``, each instruction without the name of the rule that said
    it (``test_each_instruction_carries_the_rule_that_said_it`` holds that apart)."""
    said = (machine or Machine(rng=random.Random(3))).handle(stimulus)  # type: ignore[arg-type]
    return [msgspec.structs.replace(instruction, rule="") for instruction in said]


def ended(error: ErrorClass | None = None, *, machine: Machine | None = None, **facts: object) -> list[Instruction]:
    """What an attempt of T-01 that ended with ``error`` (``None``: completed) leads to."""
    result = facts.pop("result", None) or AgentResult(
        error is None, error_class=error, message="boom" if error else None
    )
    settings = facts.pop("settings", SETTINGS)
    stimulus = AttemptEnded(id=7, task="T-01", result=result, attempt=1, settings=settings, now=NOW, **facts)  # type: ignore[arg-type]
    return handle(stimulus, machine)


def with_word(said: Decision) -> Machine:
    """A machine that holds ``said`` as the last word at T-01's gate before it starts (``TaskState.word``)."""
    return Machine(tasks={"T-01": TaskState(TaskStatus.PENDING, word=said)})


def word(decision: str, reason: str = "") -> Decision:
    return Decision(task="T-01", decision=decision, reason=reason, time="2025-11-25T14:02:00Z", by="ada")


# --- pending→running: the queue weighs a task --------------------------------------------------------


def held_by_a_person(task: str = "T-01") -> Machine:
    """A machine that holds ``task`` back for a person (its Blocked cell): the ``hold`` rule reads it there."""
    return Machine(tasks={task: TaskState(TaskStatus.PENDING, hold=HELD)})


def test_hold_keeps_a_task_a_person_holds_in_the_queue_whatever_else_is_true() -> None:
    offered = Offered(id=1, task="T-01", not_before=2e9, admitted=False)
    assert handle(offered, held_by_a_person()) == [Wait(stimulus=1, task="T-01", why="held", cause=HELD)]


def test_not_before_keeps_a_task_whose_time_has_not_come() -> None:
    offered = Offered(id=2, task="T-01", not_before=2e9, now=1e9, admitted=False)
    until = Cause(CauseKind.NOT_BEFORE, until=2e9)
    assert handle(offered) == [Wait(stimulus=2, task="T-01", why="not before", cause=until)]


def test_not_before_judges_the_time_itself_on_the_clock_it_is_told() -> None:
    """The loop tells a task's Not before as planned, and the clock: whether it has come is the
    rule's. Offered when it has come, the task goes on (no room here: it waits for that); a queued
    task told at a turn of the loop waits until then, or is ready again once it came."""
    until = Cause(CauseKind.NOT_BEFORE, until=2e9)
    assert handle(Offered(id=3, task="T-01", not_before=2e9, now=2e9 + 1, admitted=False)) == [
        Wait(stimulus=3, task="T-01", why="no room")
    ]
    assert handle(Scheduled(id=4, task="T-01", not_before=2e9, now=2e9 - 1)) == [
        Wait(stimulus=4, task="T-01", why="not before", cause=until)
    ]
    assert handle(Scheduled(id=5, task="T-01", not_before=2e9, now=2e9)) == [TimeCame(stimulus=5, task="T-01")]


def test_dependencies_keeps_a_task_whose_upstream_is_not_done_with() -> None:
    """A run's queue offers no such task; a view replaying the rules over a plan between runs does."""
    offered = Offered(id=5, task="T-02", waiting_on=("T-01",), admitted=False)
    assert handle(offered) == [Wait(stimulus=5, task="T-02", why="dependencies")]
    held = Offered(id=6, task="T-02", waiting_on=("T-01",))  # (a Blocked cell says more)
    assert handle(held, held_by_a_person("T-02")) == [Wait(stimulus=6, task="T-02", why="held", cause=HELD)]


def test_admit_keeps_a_task_admission_has_no_room_for() -> None:
    assert handle(Offered(id=3, task="T-01", admitted=False)) == [Wait(stimulus=3, task="T-01", why="no room")]


def test_take_hands_out_a_task_nothing_holds() -> None:
    assert handle(Offered(id=4, task="T-01")) == [Take(stimulus=4, task="T-01")]


# --- pending→running: a task taken from the queue ---------------------------------------------------


def test_blocked_backend_skips_a_task_whose_backend_is_not_logged_in_before_its_gates() -> None:
    taken = Taken(id=5, task="T-01", blocked="claude is not logged in (no key)", awaits_word=True, gate="before")
    cause = Cause.of(CauseKind.STOPPED, "not started: claude is not logged in (no key)")
    assert handle(taken) == [GiveUp(stimulus=5, task="T-01", status=TaskStatus.SKIPPED, cause=cause)]


def test_result_awaits_word_holds_a_result_that_awaits_a_word_instead_of_running_it_again() -> None:
    taken = Taken(id=6, task="T-01", awaits_word=True, gate="after")
    held = Cause(CauseKind.HELD, gate="after")
    assert handle(taken) == [AwaitWord(stimulus=6, task="T-01", gate="after", cause=held)]


def _judged(text: str, outcomes: dict[str, str], outputs: dict[str, dict[str, object] | None]) -> Judged:
    """``text``, a Condition of T-01 (on T-00), read as the loop reads it, with the facts it is told."""
    try:
        read = compile_condition(text, ("T-00", "T-01"), ("T-00",))
    except ConditionError as exc:
        return Judged(text=text, read=None, problem=str(exc), outcomes=outcomes)
    return Judged(text=text, read=read, outcomes=outcomes, outputs=outputs)


def test_condition_gives_up_a_task_its_condition_shuts_before_its_gate_asks() -> None:
    """The loop tells the Condition and what it reads (its upstream's outcome and fields); the
    ``condition`` rule decides: false, bypassed with what it saw, before its gate asks."""
    cause = Cause.condition_false("T-00.n > 1", "T-00 completed, T-00.n = 0")
    taken = Taken(id=7, task="T-01", condition=_judged("T-00.n > 1", {"T-00": "completed"}, {"T-00": {"n": 0}}),
                  gate="before")  # fmt: skip
    assert handle(taken) == [GiveUp(stimulus=7, task="T-01", status=TaskStatus.BYPASSED, cause=cause)]


@pytest.mark.parametrize(
    ("text", "outcome", "fields", "then"),
    [
        ("T-00.n > 1", "completed", {"n": 2}, None),  # (true: it runs, past the rule)
        ("T-00 failed", "failed", None, None),
        ("T-00.n > 1", "failed", None, (TaskStatus.SKIPPED, Cause.upstream("T-00", TaskStatus.FAILED))),
        ("T-00.n > 1", "bypassed", None, (TaskStatus.BYPASSED, Cause.upstream("T-00", TaskStatus.BYPASSED))),
        ("T-00.n > 1", "completed", {"m": 2}, TaskStatus.FAILED),  # (a field not there: never a false condition)
        ("T-00.n >", "completed", {"n": 2}, TaskStatus.FAILED),  # (it cannot be read)
    ],
)
def test_condition_decides_on_the_facts_it_is_told(
    text: str, outcome: str, fields: dict[str, object] | None, then: object
) -> None:
    taken = Taken(id=8, task="T-01", condition=_judged(text, {"T-00": outcome}, {"T-00": fields}))
    said = handle(taken)
    if then is None:
        assert [type(i) for i in said] == [Start]
    elif isinstance(then, tuple):
        assert said == [GiveUp(stimulus=8, task="T-01", status=then[0], cause=then[1])]
    else:
        [given_up] = said
        assert isinstance(given_up, GiveUp) and given_up.status == then and given_up.cause is not None
        assert given_up.cause.kind == CauseKind.CONDITION, given_up.cause


def test_approve_before_holds_a_task_with_no_word_that_stands_and_keeps_it_ready() -> None:
    held = Cause(CauseKind.HELD, gate="before")
    assert handle(Taken(id=8, task="T-01", gate="before")) == [
        AwaitWord(stimulus=8, task="T-01", gate="before", cause=held),
        Requeue(stimulus=8, task="T-01"),
    ]


def test_approve_before_rejects_a_task_whose_standing_word_is_a_rejection() -> None:
    said = word("rejected", "not now")
    cause = Cause(CauseKind.REJECTED, gate="before", by="ada", said="not now")
    assert rejected_cause(said, "before") == cause
    assert handle(Taken(id=9, task="T-01", gate="before"), with_word(said)) == [
        GiveUp(stimulus=9, task="T-01", status=TaskStatus.REJECTED, cause=cause)
    ]


def test_approve_before_judges_whether_the_last_word_stands_on_the_inputs_it_is_told() -> None:
    """The machine holds the last word said at the gate, the loop tells what it stands on; whether
    it stands is the rule's (``Decision.stands``): a word made on other inputs than the task has now does not
    (it is asked again); with the inputs unknown, one said before its last completed result does
    not (used up by it), one said since does."""
    held = [AwaitWord(stimulus=12, task="T-01", gate="before", cause=Cause(CauseKind.HELD, gate="before")),
            Requeue(stimulus=12, task="T-01")]  # fmt: skip
    on_inputs = dataclasses.replace(word("approved"), inputs="v2-p-t1-u1")
    assert handle(Taken(id=12, task="T-01", gate="before", inputs="v2-p-t2-u1"), with_word(on_inputs)) == held
    assert [type(i) for i in handle(Taken(id=12, task="T-01", gate="before", inputs="v2-q-t1-u1"),
                                    with_word(on_inputs))] == [Start]  # fmt: skip
    approved = word("approved")
    used_up = handle(Taken(id=12, task="T-01", gate="before", done="2025-11-25T15:00:00Z"), with_word(approved))
    assert used_up == held
    since = handle(Taken(id=12, task="T-01", gate="before", done="2025-11-25T13:00:00Z"), with_word(approved))
    assert [type(i) for i in since] == [Start]


def test_start_starts_a_task_approved_at_its_gate_and_one_with_no_gate() -> None:
    approved = Cause(CauseKind.APPROVED, gate="before", by="ada")  # (what lets it past its gate, said)
    said = handle(Taken(id=10, task="T-01", gate="before"), with_word(word("approved")))
    assert said == [Start(stimulus=10, task="T-01", cause=approved)]
    assert handle(Taken(id=11, task="T-02", gate="after")) == [Start(stimulus=11, task="T-02")]


def test_row_settles_a_row_run_per_item_on_its_instances_whatever_else_is_true() -> None:
    said = handle(Starting(id=12, task="T-03", row=True, conflict="unresolved", cached=True))
    assert said == [SettleRow(stimulus=12, task="T-03")]


def test_conflict_keeps_a_task_failed_whose_conflict_is_not_resolved_and_skips_what_needs_it() -> None:
    said = handle(Starting(id=13, task="T-01", conflict="resolve it by hand: ...", cached=True))
    assert said == [
        StayFailed(stimulus=13, task="T-01", why="resolve it by hand: ..."),
        SkipDownstream(stimulus=13, task="T-01", status=TaskStatus.FAILED),
    ]


def test_reuse_takes_the_caches_result_for_the_same_inputs_and_releases_what_needs_it() -> None:
    said = handle(Starting(id=14, task="T-01", cached=True))
    assert said == [Reuse(stimulus=14, task="T-01"), Release(stimulus=14, task="T-01")]


def test_launch_starts_an_attempt_when_nothing_else_settles_the_task() -> None:
    assert handle(Starting(id=15, task="T-01")) == [Launch(stimulus=15, task="T-01")]


# --- running→*: an attempt ended ----------------------------------------------------------------------


def test_fail_over_sends_the_next_attempt_to_a_fallback_spending_no_retry_and_judging_no_budget() -> None:
    machine = Machine(rng=random.Random(3))
    why = "failing over to codex: claude: not authenticated (no key)"
    said = ended(ErrorClass.AUTH, machine=machine, breaker="claude: not authenticated (no key)", fallback="codex",
                 settings=FALLING, down="claude: not authenticated (no key)", budget=SPENT, fail_fast=True)  # fmt: skip
    assert said == [
        BlockBackend(stimulus=7, backend="claude", why="claude: not authenticated (no key)"),
        ForgetSession(stimulus=7, task="T-01"),
        FailOver(stimulus=7, task="T-01", reason=why),
    ]
    assert machine.retries.used("T-01") == 0


def test_fail_over_of_a_backend_down_for_a_while_blocks_nothing() -> None:
    said = ended(ErrorClass.TRANSIENT, breaker="claude: 3 server errors in a row", fallback="codex", settings=FALLING)
    assert [type(i) for i in said] == [ForgetSession, FailOver]


def test_fail_over_is_judged_on_the_breakers_facts_by_the_rule() -> None:
    """The loop tells why its backend's breaker is open and which fallback is up; whether the
    attempt fails over is the rule's: not when it completed, not for a task that names no
    fallback, not with its breaker closed or no fallback up."""
    down = "claude: 3 server errors in a row"
    assert FailOver not in [type(i) for i in ended(breaker=down, fallback="codex")]  # (no fallback named)
    assert FailOver not in [type(i) for i in ended(ErrorClass.TRANSIENT, fallback="codex", settings=FALLING)]
    assert FailOver not in [type(i) for i in ended(ErrorClass.TRANSIENT, breaker=down, settings=FALLING)]
    assert FailOver not in [type(i) for i in ended(breaker=down, fallback="codex", settings=FALLING)]  # (completed)


def test_complete_writes_the_result_and_approve_after_releases_what_needs_it() -> None:
    result = AgentResult(True, message="2 tool calls denied")
    assert ended(result=result) == [
        Complete(stimulus=7, task="T-01", warning="2 tool calls denied", awaiting=False),
        Release(stimulus=7, task="T-01"),
    ]


def test_approve_after_holds_a_completed_result_for_a_persons_word() -> None:
    held = Cause(CauseKind.HELD, gate="after")
    assert ended(approval="after") == [
        Complete(stimulus=7, task="T-01", warning=None, awaiting=True),
        AwaitWord(stimulus=7, task="T-01", gate="after", cause=held),
    ]


def test_retry_waits_a_jittered_backoff_and_spends_a_retry() -> None:
    machine = Machine(rng=random.Random(3))
    after = random.Random(3).uniform(0.0, 1.0)  # the first retry's ceiling: backoff_base
    assert ended(ErrorClass.EXIT, machine=machine) == [
        ForgetSession(stimulus=7, task="T-01"),
        RetryLater(stimulus=7, task="T-01", after=after, at=NOW + after, reason="boom", backend="claude"),
    ]
    assert machine.retries.used("T-01") == 1


def test_session_goes_on_after_a_rate_limit_that_came_after_an_answer() -> None:
    result = AgentResult(False, error_class=ErrorClass.RATE_LIMIT, message="429", session_id="s-1",
                         tokens={"output": 12}, retry_after=5.0)  # fmt: skip
    said = ended(result=result)
    assert said[0] == KeepSession(stimulus=7, task="T-01", session="s-1")
    assert isinstance(said[1], RetryLater) and said[1].rate_limited and said[1].after >= 5.0
    assert len(said) == 2


def test_session_is_forgotten_after_a_rate_limit_on_its_first_request() -> None:
    result = AgentResult(False, error_class=ErrorClass.RATE_LIMIT, message="429", session_id="s-1")
    assert ended(result=result)[0] == ForgetSession(stimulus=7, task="T-01")


def test_pause_stops_the_limit_group_until_the_reset_and_keeps_the_session() -> None:
    result = AgentResult(False, error_class=ErrorClass.USAGE_LIMIT, message="limit", session_id="s-2", reset_at=2e9)
    stimulus = AttemptEnded(id=8, task="T-01", result=result, attempt=1, now=NOW,
                            settings=SETTINGS.replace(limit_group="team"))  # fmt: skip
    assert handle(stimulus) == [
        KeepSession(stimulus=8, task="T-01", session="s-2"),
        PauseGroup(stimulus=8, task="T-01", until=2e9, reason="limit", backend="claude", group="team"),
    ]


def test_pause_with_no_session_keeps_whatever_session_the_task_had() -> None:
    result = AgentResult(False, error_class=ErrorClass.USAGE_LIMIT, message="limit")
    assert ended(result=result) == [
        PauseGroup(stimulus=7, task="T-01", until=None, reason="limit", backend="claude", group="claude")
    ]


def test_block_fails_the_task_and_blocks_its_backend_with_no_fallback() -> None:
    assert ended(ErrorClass.AUTH) == [
        ForgetSession(stimulus=7, task="T-01"),
        BlockBackend(stimulus=7, backend="claude", why="claude is not logged in (boom)"),
        Fail(stimulus=7, task="T-01", reason="boom"),
        SkipDownstream(stimulus=7, task="T-01", status=TaskStatus.FAILED),
    ]


def test_fail_fails_the_task_once_its_retries_are_spent_and_skips_what_depends_on_it() -> None:
    stimulus = AttemptEnded(id=9, task="T-01", result=AgentResult(False, error_class=ErrorClass.EXIT, message="boom"),
                            attempt=3, settings=SETTINGS.replace(retries=0), now=NOW)  # fmt: skip
    assert handle(stimulus) == [
        ForgetSession(stimulus=9, task="T-01"),
        Fail(stimulus=9, task="T-01", reason="boom (after 3 attempts)"),
        SkipDownstream(stimulus=9, task="T-01", status=TaskStatus.FAILED),
    ]


def test_fail_fast_halts_the_run_at_a_failure_unless_it_stopped_already() -> None:
    halt = Halt(stimulus=7, why="--fail-fast: T-01 failed", cause=Cause(CauseKind.STOPPED, task="T-01"))
    failing = AgentResult(False, error_class=ErrorClass.START, message="boom")
    assert ended(result=failing, fail_fast=True)[-1] == halt
    assert Halt not in [type(i) for i in ended(result=failing, fail_fast=True, stopped=True)]
    assert Halt not in [type(i) for i in ended(ErrorClass.AUTH, fail_fast=True)]  # (a backend blocked: no halt)


def test_at_budget_stop_what_runs_is_stopped_once_its_spend_reaches_the_limit_after_what_the_attempt_did() -> None:
    """``at_budget: stop`` (``over_budget`` told): what runs is stopped for the budget, the run goes
    on (to wait for a higher budget: no halt); a run halting already (fail-fast) stops it itself."""
    stop = StopRunning(stimulus=7, why=OVER[0], cause=Cause.of(CauseKind.BUDGET, OVER[1]))
    assert ended(budget=SPENT) == [
        Complete(stimulus=7, task="T-01", warning=None, awaiting=False),
        Release(stimulus=7, task="T-01"),
        stop,
    ]
    failing = AgentResult(False, error_class=ErrorClass.START, message="boom")
    said = [i for i in ended(result=failing, fail_fast=True, budget=SPENT) if isinstance(i, Halt | StopRunning)]
    assert [(type(h), h.why) for h in said] == [(Halt, "--fail-fast: T-01 failed")]  # (the halt stops what runs)


def test_the_budget_is_judged_on_the_runs_spend_and_its_limit_by_the_rule() -> None:
    """The loop tells what the run spent and its max_cost; whether that stops what runs is the
    ``budget`` rule's: not below the limit, not with ``at_budget: finish`` (the run finishes what
    runs, and the budget holds what has not started), at the limit exactly, yes."""
    stops = [type(i) for i in ended(budget=Budget(spent=0.99, limit=1.0))]
    assert StopRunning not in stops
    assert StopRunning not in [type(i) for i in ended(budget=Budget(spent=1.5, limit=1.0, stop=False))]
    [at] = [i for i in ended(budget=Budget(spent=1.0, limit=1.0)) if isinstance(i, StopRunning)]
    assert at.why == "cost limit reached: $1.0000 of $1.0000"
    assert at.cause == Cause.of(CauseKind.BUDGET, "stopped: the run reached its cost limit of $1.00")
    assert StopRunning not in [type(i) for i in ended()]  # (no max_cost: nothing to reach)


def test_cancel_records_a_stopped_attempt_cancelled_after_judging_the_budget() -> None:
    why = Cause.of(CauseKind.CANCELLED, "not needed")
    assert handle(AttemptCancelled(id=12, task="T-01", cause=why, budget=SPENT)) == [
        StopRunning(stimulus=12, why=OVER[0], cause=Cause.of(CauseKind.BUDGET, OVER[1])),
        Cancel(stimulus=12, task="T-01", cause=why),
    ]
    assert handle(AttemptCancelled(id=13, task="T-01", cause=why, budget=SPENT, stopped=True)) == [
        Cancel(stimulus=13, task="T-01", cause=why)
    ]


# --- a person's word, the clock, a row added -------------------------------------------------------------


@pytest.mark.parametrize(
    ("gate", "decision", "then"),
    [
        pytest.param("before", "approved", [], id="approved-before"),
        pytest.param("after", "approved", [Release(stimulus=14, task="T-01")], id="approved-after"),
        pytest.param(
            "after",
            "rejected",
            [Reject(stimulus=14, task="T-01", cause=Cause(CauseKind.REJECTED, gate="after", by="ada", said="no"))],
            id="rejected-after",
        ),
    ],
)
def test_word_taken_at_a_gate(gate: str, decision: str, then: list[Instruction]) -> None:
    said = word(decision, "no" if decision == "rejected" else "")
    stimulus = WordSaid(id=14, task="T-01", decision=said)
    at_gate = Machine(tasks={"T-01": TaskState(TaskStatus.AWAITING_APPROVAL, hold=HELD, gate=gate)})
    assert handle(stimulus, at_gate) == [TakeWord(stimulus=14, task="T-01", gate=gate, decision=said), *then]


def test_word_for_a_task_at_no_gate_is_noted_for_when_it_gets_there() -> None:
    assert handle(WordSaid(id=15, task="T-01", decision=word("approved"))) == [Noted(stimulus=15, task="T-01")]


def test_retry_due_puts_each_task_due_back_in_the_queue() -> None:
    """The loop tells its clock and when each waiting retry may start; the rule says which are due."""
    assert handle(Tick(id=16, now=NOW, waiting={"T-01": NOW - 1, "T-03": NOW + 1, "T-02": NOW})) == [
        Requeue(stimulus=16, task="T-01"),
        Requeue(stimulus=16, task="T-02"),
    ]
    assert handle(Tick(id=17, now=NOW)) == []


def test_join_takes_a_row_added_into_the_queue() -> None:
    assert handle(RowAdded(id=18, task="T-09")) == [Join(stimulus=18, task="T-09")]


# --- running→*: a race ------------------------------------------------------------------------------------


def test_hedge_starts_a_second_attempt_once_one_passes_its_kinds_bound() -> None:
    assert handle(Straggling(id=30, task="T-01", elapsed=9.9, bound=10.0)) == []
    assert handle(Straggling(id=31, task="T-01", elapsed=12.0, bound=None)) == []  # (no bound known yet)
    assert handle(Straggling(id=32, task="T-01", elapsed=10.0, bound=10.0)) == [Hedge(stimulus=32, task="T-01")]


def test_race_the_first_to_complete_wins_one_failed_gives_the_other_its_chance_both_failed_the_later() -> None:
    won = handle(LaneEnded(id=33, task="T-01", attempt=2, completed=True, running=(1,)))
    assert won == [StopLanes(stimulus=33, task="T-01", attempts=(1,)), Settle(stimulus=33, task="T-01", attempt=2)]
    chance = handle(LaneEnded(id=34, task="T-01", attempt=1, completed=False, running=(2,)))
    assert chance == [KeepRacing(stimulus=34, task="T-01")]
    later = handle(LaneEnded(id=35, task="T-01", attempt=2, completed=False))
    assert later == [Settle(stimulus=35, task="T-01", attempt=2)]


def test_best_of_judge_first_stops_the_rest_other_judges_wait_for_every_candidate() -> None:
    first = handle(LaneEnded(id=36, task="T-01", attempt=3, completed=True, running=(1,), unstarted=1, judge="first"))
    assert first == [StopLanes(stimulus=36, task="T-01", attempts=(1,)), Judge(stimulus=36, task="T-01", judge="first")]
    waits = LaneEnded(id=37, task="T-01", attempt=3, completed=True, unstarted=1, judge="longest")
    assert handle(waits) == [KeepRacing(stimulus=37, task="T-01")]  # (a candidate still to run)
    last = handle(LaneEnded(id=38, task="T-01", attempt=1, completed=False, judge="longest"))
    assert last == [Judge(stimulus=38, task="T-01", judge="longest")]


def test_merge_fails_a_conflicted_task_kept_apart_or_writes_its_resolution_as_on_conflict_says() -> None:
    assert handle(MergeConflicted(id=40, task="T-01", on_conflict="fail")) == [KeepApart(stimulus=40, task="T-01")]
    assert handle(MergeConflicted(id=41, task="T-01", on_conflict="resolve")) == [Resolve(stimulus=41, task="T-01")]


def test_adopt_has_a_conflicts_resolution_join_the_run_before_what_needs_its_task_is_released() -> None:
    assert ended(added=("T-01-merge",)) == [
        Complete(stimulus=7, task="T-01"),
        Adopt(stimulus=7, task="T-01", added=("T-01-merge",)),
        Release(stimulus=7, task="T-01"),
    ]


# --- what is asked of a run going on: a cancel, a retry ------------------------------------------------

CANCEL = Cause.of(CauseKind.CANCELLED, "not needed")


def holding(status: TaskStatus, task: str = "T-01") -> Machine:
    """A machine that holds ``task`` in ``status`` (a request's rules read it there, not from the request)."""
    return Machine(tasks={task: TaskState(status)}, rng=random.Random(3))


def test_cancel_asked_stops_a_running_attempt_refuses_a_finished_task_and_cancels_any_other() -> None:
    running = CancelAsked(id=50, task="T-01", cause=CANCEL, running=True)
    assert handle(running, holding(TaskStatus.RUNNING)) == [StopAttempt(stimulus=50, task="T-01", cause=CANCEL)]
    done = CancelAsked(id=51, task="T-01", cause=CANCEL, running=False)
    nothing = Refuse(stimulus=51, task="T-01", why="T-01 is completed: there is nothing to cancel")
    assert handle(done, holding(TaskStatus.COMPLETED)) == [nothing]
    waits = CancelAsked(id=52, task="T-01", cause=CANCEL, running=False, busy=True)
    assert handle(waits, holding(TaskStatus.FAILED)) == [CancelWaiting(stimulus=52, task="T-01", cause=CANCEL)]


def test_retry_asked_revives_a_task_that_ended_short_and_refuses_what_it_cannot_do_saying_why() -> None:
    assert handle(RetryAsked(id=53, task="T-01"), holding(TaskStatus.FAILED)) == [Revive(stimulus=53, task="T-01")]
    said = {
        status: handle(RetryAsked(id=54, task="T-01", busy=busy, stopping=stopping), holding(status))[0]
        for status, busy, stopping in [
            (TaskStatus.RUNNING, True, None),
            (TaskStatus.COMPLETED, False, None),
            (TaskStatus.CANCELLED, False, "--fail-fast: T-02 failed"),
        ]
    }
    assert said == {
        TaskStatus.RUNNING: Refuse(stimulus=54, task="T-01", why="T-01 is running: it is in the queue already"),
        TaskStatus.COMPLETED: Refuse(
            stimulus=54, task="T-01", why="T-01 is completed (`orchestrator run --rerun T-01` redoes it)"
        ),
        TaskStatus.CANCELLED: Refuse(stimulus=54, task="T-01", why="the run is stopping (--fail-fast: T-02 failed)"),
    }


# --- the same, asked with no run going on (``live=False``), and a word before it is written -----------


def test_cancel_between_runs_cancels_what_the_next_run_would_start_and_is_so_already_for_a_cancelled_one() -> None:
    """Between runs, a failed task is one the next run starts again: a cancel keeps it from that,
    where the run going on refuses it (it ended in that run); a cancelled one is so already, said
    as an answer, not a refusal (issue 74: these were an if/elif ladder of their own)."""

    def asked(status: TaskStatus, live: bool) -> list[Instruction]:
        return handle(CancelAsked(id=60, task="T-01", cause=CANCEL, running=False, live=live), holding(status))

    assert asked(TaskStatus.FAILED, live=False) == [CancelWaiting(stimulus=60, task="T-01", cause=CANCEL)]
    assert asked(TaskStatus.FAILED, live=True) == [Refuse(stimulus=60, task="T-01", why="T-01 is failed already")]
    assert asked(TaskStatus.CANCELLED, live=False) == [
        Already(stimulus=60, task="T-01", why="T-01 is cancelled already")
    ]
    nothing = Refuse(stimulus=60, task="T-01", why="T-01 is completed: there is nothing to cancel")
    assert asked(TaskStatus.COMPLETED, live=False) == asked(TaskStatus.COMPLETED, live=True) == [nothing]


def test_retry_between_runs_revives_what_stays_and_says_what_runs_anyway_and_refuses_saying_why() -> None:
    def asked(status: TaskStatus, **facts: object) -> Instruction:
        (said,) = handle(RetryAsked(id=61, task="T-02", live=False, **facts), holding(status, "T-02"))  # type: ignore[arg-type]
        return said

    revive = Revive(stimulus=61, task="T-02")
    assert asked(TaskStatus.CANCELLED) == asked(TaskStatus.REJECTED) == revive
    assert asked(TaskStatus.SKIPPED, settled=True) == asked(TaskStatus.BYPASSED, settled=True) == revive
    again = "T-02 (failed) runs again in the next `orchestrator run`"
    assert asked(TaskStatus.FAILED) == Already(stimulus=61, task="T-02", why=again)
    queued = "T-02 is pending: it is in the queue already"
    assert asked(TaskStatus.PENDING) == Already(stimulus=61, task="T-02", why=queued)
    upstream = "upstream T-01 was cancelled: retry T-01 first"
    assert asked(TaskStatus.SKIPPED, cancelled_upstream="T-01") == Refuse(stimulus=61, task="T-02", why=upstream)
    assert asked(TaskStatus.WAITING, cancelled_upstream="T-01") == Refuse(stimulus=61, task="T-02", why=upstream)
    fallback = asked(TaskStatus.FAILED, settled=True)
    assert isinstance(fallback, Refuse) and "a fallback took it over" in fallback.why


def test_a_word_on_a_task_with_nothing_left_to_decide_is_refused_before_it_is_written() -> None:
    def asked(status: TaskStatus, gate: str = "before", out_of_date: bool = False) -> list[Instruction]:
        asked = WordAsked(id=62, task="T-04", approve=True, gate=gate, out_of_date=out_of_date)
        return handle(asked, holding(status, "T-04"))

    assert asked(TaskStatus.AWAITING_APPROVAL) == asked(TaskStatus.PENDING) == asked(TaskStatus.RUNNING, "after") == []
    assert asked(TaskStatus.COMPLETED, out_of_date=True) == []
    passed = Refuse(stimulus=62, task="T-04", why="T-04 is running: its gate before it starts was passed")
    assert asked(TaskStatus.RUNNING) == [passed]
    assert asked(TaskStatus.COMPLETED) == [
        Refuse(stimulus=62, task="T-04", why="T-04 is completed: there is nothing to decide")
    ]
    again = "T-04 is rejected: `orchestrator retry T-04` asks again"
    assert asked(TaskStatus.REJECTED, "after") == [Refuse(stimulus=62, task="T-04", why=again)]


# --- the machine itself --------------------------------------------------------------------------------------


def test_the_rules_are_one_ordered_list_each_named_once_and_declaring_its_moves() -> None:
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names))
    assert all(rule.stimuli for rule in RULES) and all(
        rule.moves for rule in RULES if rule.name not in ("session", "word-asked", "answer-asked")
    )
    assert Machine().governing("running→failed") == ["block", "fail", "race", "best-of", "merge"]
    assert Machine().governing("pending→running") == ["start", "row", "launch"]
    assert Machine().governing("pending→completed") == ["row", "reuse"]


def test_each_instruction_carries_the_rule_that_said_it_and_a_move_outside_its_rules_is_refused() -> None:
    """The interpreter holds the moves an instruction makes of its task to the rule that said it
    (``state/transitions.governed``): a rule that moved what it does not govern is a defect, said
    where it happens, not a state nothing checks (issue 74)."""
    from orchestrator.state.transitions import governed, moved
    from orchestrator.vocabulary import IllegalTransition

    said = held_by_a_person().handle(Offered(id=1, task="T-01"))
    assert [i.rule for i in said] == ["hold"]
    said = Machine(rng=random.Random(3)).handle(
        AttemptEnded(id=2, task="T-01", result=AgentResult(True), attempt=1, settings=SETTINGS, now=NOW)
    )
    assert {i.rule for i in said} >= {"complete"} and all(i.rule for i in said)
    rule = next(r for r in RULES if r.name == "hold")
    with governed(rule.name, "T-01", frozenset(rule.moves)):
        assert moved("T-01", TaskStatus.PENDING, TaskStatus.BLOCKED) == TaskStatus.BLOCKED
        assert moved("T-02", TaskStatus.PENDING, TaskStatus.RUNNING) == TaskStatus.RUNNING  # (another task's)
        with pytest.raises(IllegalTransition, match="the rule hold moved T-01 from pending to running"):
            moved("T-01", TaskStatus.PENDING, TaskStatus.RUNNING)


def test_every_declared_move_is_an_arrow_of_the_state_machine_and_a_state_that_is_one() -> None:
    """A rule's moves are pairs of real states, read at import: a move the diagram has no arrow for
    (``retrying→pending``, once declared by ``retry-due``) or a state that is none (``taken``) is an
    error there, never a string nothing checks (issue 74)."""
    from orchestrator.machine.rules import moves
    from orchestrator.vocabulary import TRANSITIONS

    declared = [(rule.name, move) for rule in RULES for move in rule.moves]
    assert len(declared) > 40
    for name, (old, new) in declared:
        assert isinstance(new, TaskStatus) and (old is None or isinstance(old, TaskStatus)), name
        assert old is None or old == new or new in TRANSITIONS[old], (name, old, new)
    for wrong, said in (("retrying→pending", "no arrow"), ("pending→taken", "'taken' is not a valid TaskStatus")):
        with pytest.raises(ValueError, match=said):
            moves(wrong)


def test_every_instruction_is_carried_out_by_the_one_interpreter_and_read_nowhere_else() -> None:
    """The interpreter's table has a line for every kind of instruction a run is told (all but a
    view's ``Shows``); what a race, a merge or a
    request's answer does in its own place comes back to it as a ``Verdict`` (``run/telling``), so
    no other module of run/ reads an instruction (issue 74: 11 kinds were read by the type of the
    last one said)."""
    from typing import cast

    from orchestrator.machine import instructions as do
    from orchestrator.run.interpreter import Interpreter
    from orchestrator.run.parts import Parts

    kinds = {
        k for k in vars(do).values() if isinstance(k, type) and issubclass(k, Instruction) and k is not Instruction
    }
    assert len(kinds) > 30
    desk = Desk(Machine())
    # (``Shows``: a task joining a view between runs, said only to the views' desk, ``views/replay``)
    assert Interpreter(cast(Parts, None), print, desk.tell, int).kinds == kinds - {do.Shows}
    run = Path(orchestrator.__file__).parent / "run"
    modules = sorted(run.rglob("*.py"))
    assert len(modules) > 40
    readers = [
        str(path.relative_to(run))
        for path in modules
        if re.search(r"machine(\.instructions| import instructions)", path.read_text(encoding="utf-8"))
    ]
    assert readers == ["interpreter.py", "telling.py"]


def test_a_race_a_merge_and_a_request_are_told_back_what_to_do() -> None:
    """Told through the run's desk, each gets a verdict the interpreter filled in from what the
    machine said: a conflict kept apart or resolved, the race's loser stopped and the winner
    settled, a retry of a completed task refused with the rule's words."""
    from typing import cast

    from orchestrator.run.interpreter import Interpreter
    from orchestrator.run.parts import Parts

    desk = Desk(Machine(tasks={"T-01": TaskState(TaskStatus.COMPLETED)}))
    desk.carrier = Interpreter(cast(Parts, None), print, desk.tell, desk.stamp)
    assert desk.tell(MergeConflicted(id=desk.stamp(), task="T-01", on_conflict="fail")).apart
    resolved = desk.tell(MergeConflicted(id=desk.stamp(), task="T-01", on_conflict="resolve"))
    assert resolved.resolve and not resolved.apart
    won = desk.tell(LaneEnded(id=desk.stamp(), task="T-01", attempt=2, completed=True, running=(1,)))
    assert (won.stop, won.settle, won.racing) == ((1,), 2, False)
    waits = desk.tell(LaneEnded(id=desk.stamp(), task="T-01", attempt=2, completed=False, running=(1,)))
    assert waits.racing and waits.settle is None
    refused = desk.tell(RetryAsked(id=desk.stamp(), task="T-01"))
    assert refused.refused is not None and "completed" in refused.refused and not refused.revive
    desk.machine.tasks["T-01"].status = TaskStatus.FAILED
    assert desk.tell(RetryAsked(id=desk.stamp(), task="T-01")).revive


def test_the_machine_numbers_its_stimuli_and_every_instruction_answers_one() -> None:
    machine = Machine()
    first, second = machine.stamp(), machine.stamp()
    assert (first, second) == (1, 2)
    said = machine.handle(Taken(id=second, task="T-01", gate="before"))
    assert {i.stimulus for i in said} == {2}


ALLOWED = {
    "orchestrator.backends.base",
    "orchestrator.plan.config.settings",
    "orchestrator.plan.table.conditions",
    "orchestrator.machine.policy",
    "orchestrator.state.approvals",
    "orchestrator.state.causes",
    "orchestrator.state.taskstate",
    "orchestrator.state.words.questions",
    "orchestrator.vocabulary",
}
NO_IO = {"anyio", "asyncio", "time", "os", "pathlib", "subprocess", "shutil", "io", "socket", "threading"}


def test_the_machine_reads_no_file_no_clock_and_no_process() -> None:
    """What the machine imports: the records it reads and the pure decisions (``policy``), never
    anyio, a clock or a file; nor calls ``open``."""
    folder = Path(orchestrator.__file__).parent / "machine"
    found: dict[str, set[str]] = {}
    modules = sorted(folder.glob("*.py"))
    assert len(modules) >= 6, modules  # (a test over no file checks nothing: it once read a folder gone)
    for path in modules:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names |= {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
                names.add("open()")
        bad = {n for n in names if n.split(".")[0] in NO_IO or n == "open()"}
        ours = {n for n in names if n.startswith("orchestrator.") and not n.startswith("orchestrator.machine")}
        bad |= {n for n in ours if n not in ALLOWED and n.rsplit(".", 1)[0] not in ALLOWED}
        if bad:
            found[path.name] = bad
    assert found == {}


def test_found_joins_a_task_in_the_state_the_workspaces_files_leave_it_in() -> None:
    """Between runs, a view's machine is told what the files say (``Found``): an open attempt runs
    while its runner lives and is interrupted once it is gone; one waiting for its retry, or a
    row whose item runs, with its runner alive; else its result's state (none: pending), with a
    result file that cannot be read saying so where nothing else says why."""

    def shows(**facts: object) -> tuple[TaskStatus, Cause | None, str | None]:
        [said] = handle(Found(id=1, task="T-01", **facts))  # type: ignore[arg-type]
        assert isinstance(said, Shows) and said.task == "T-01"
        return said.status, said.cause, said.note

    failed = Cause.of(CauseKind.STOPPED, "not started")
    assert shows() == (TaskStatus.PENDING, None, None)
    assert shows(recorded=TaskStatus.FAILED, cause=failed) == (TaskStatus.FAILED, failed, None)
    assert shows(recorded=TaskStatus.FAILED, note="boom") == (TaskStatus.FAILED, None, "boom")
    assert shows(recorded=TaskStatus.FAILED, attempt=True, alive=True) == (TaskStatus.RUNNING, None, None)
    gone = Cause(CauseKind.INTERRUPTED, pid=4242)
    assert shows(attempt=True, runner=4242) == (TaskStatus.INTERRUPTED, gone, None)
    assert shows(recorded=TaskStatus.FAILED, retrying=True, alive=True) == (TaskStatus.RETRYING, None, None)
    assert shows(recorded=TaskStatus.FAILED, retrying=True) == (TaskStatus.FAILED, None, None)  # (its runner gone)
    assert shows(row_running=True, alive=True) == (TaskStatus.RUNNING, None, None)
    unreadable = "its result file cannot be read (no frontmatter); the next run keeps it aside"
    assert shows(unreadable="no frontmatter") == (TaskStatus.PENDING, None, unreadable)


def _question(number: int, until: str | None = "2026-01-01T10:00:00Z") -> Question:
    said = f"Bash(step {number})"
    return Question(task="T-03", question=f"q-{number}", said=said, tool="Bash", attempt=1, time="", until=until,
                    number=number)  # fmt: skip


def _reply(number: int, by: str = "ann", answer: str = "allow") -> Reply:
    return Reply(task="T-03", question=f"q-{number}", said=f"Bash(step {number})", answer=answer, by=by, time="")


def test_answer_asked_picks_the_question_a_word_is_for_or_refuses_saying_what_the_task_asks_now() -> None:
    """Which question a person's answer is for is the ``answer-asked`` rule's, on the task's
    questions and their answers as told: the one it names while open, else the one it asks now;
    refused (one line, what it asks now, what to type) for a name that is none, a question closed,
    none asked, several asked, or the one before closed with nobody's word."""
    before = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    after = datetime(2026, 1, 1, 11, 0, tzinfo=UTC)

    def told(*asked: tuple[Question, Reply | None], named: str | None = None, now: datetime = before) -> Instruction:
        [said] = handle(AnswerAsked(id=70, task="T-03", named=named, asked=asked, now=now))
        return said

    one, two = _question(1), _question(2)
    assert told((one, None)) == Chosen(stimulus=70, task="T-03", question="q-1")
    assert told((one, _reply(1)), (two, None), named="q2") == Chosen(stimulus=70, task="T-03", question="q-2")
    assert told((one, _reply(1)), (two, None), named="q-2") == Chosen(stimulus=70, task="T-03", question="q-2")
    refusals = {
        "no such": told((one, None), named="Q7"),
        "closed": told((one, _reply(1, answer="deny")), (two, None), named="Q1"),
        "none": told((one, _reply(1))),
        "several": told((one, None), (two, None)),
        "after a timeout": told((one, _reply(1, by="timeout")), (two, None)),
        "past its until": told((one, None), now=after),
    }
    whys = {name: said.why for name, said in refusals.items() if isinstance(said, Refuse)}
    assert whys == {
        "no such": "T-03 has no question Q7 (its questions: Q1) — it asks Q1 now: Bash(step 1): "
        "`orchestrator answer T-03 Q1 allow|deny`",
        "closed": "T-03's Q1, Bash(step 1), is closed: denied by ann — it asks Q2 now: Bash(step 2): "
        "`orchestrator answer T-03 Q2 allow|deny`",
        "none": "T-03 asks nothing now (its Q1, Bash(step 1), closed: allowed by ann)",
        "several": "T-03 asks 2 questions (Q1, Bash(step 1); Q2, Bash(step 2)) — name the one you answer: "
        "`orchestrator answer T-03 Q1 allow|deny`",
        "after a timeout": "T-03's Q1, Bash(step 1), closed with nobody's word (denied: no answer in time), and it "
        "asks Q2 now: Bash(step 2) — a word for Q2 names it: `orchestrator answer T-03 Q2 allow|deny`",
        "past its until": "T-03 asks nothing now (its Q1, Bash(step 1), closed: denied: no answer in time)",
    }
    on_github = handle(AnswerAsked(id=71, task="T-03", asked=((one, None), (two, None)), word="allow", comment=True,
                                   now=before))  # fmt: skip
    assert isinstance(on_github[0], Refuse) and on_github[0].why.endswith("`/allow T-03 Q1`")
