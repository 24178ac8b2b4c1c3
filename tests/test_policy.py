"""The decision core and admission, with plain values: no process, no event loop, no clock."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.backends.base import AgentResult
from orchestrator.plan.settings import Settings
from orchestrator.run.admission import RAMP_INTERVAL, Admission, Slot
from orchestrator.run.policy import Block, Complete, Fail, Pause, Retry, backoff, decide
from orchestrator.run.scheduler import RetryBook
from orchestrator.vocabulary import ErrorClass

SETTINGS = Settings(retries=2, backoff_base=1.0, backoff_factor=2.0, backoff_cap=60.0, backend="claude")


def outcome(error: ErrorClass | None, **fields: object) -> AgentResult:
    return AgentResult(error is None, error_class=error, **fields)  # type: ignore[arg-type]


def test_a_completed_attempt_completes_its_task_and_keeps_its_warning() -> None:
    decision = decide(outcome(None, message="2 tool calls denied"), attempt=1, retries_used=0, settings=SETTINGS,
                      rng=random.Random(1))  # fmt: skip
    assert decision == Complete("2 tool calls denied")


@pytest.mark.parametrize(
    "error",
    [ErrorClass.EXIT, ErrorClass.TIMEOUT, ErrorClass.HANG, ErrorClass.TRANSIENT, ErrorClass.AGENT_ERROR],
)
def test_retryable_failures_are_retried_until_the_retries_are_spent(error: ErrorClass) -> None:
    rng = random.Random(7)
    first = decide(outcome(error, message="boom"), attempt=1, retries_used=0, settings=SETTINGS, rng=rng)
    assert isinstance(first, Retry) and first.error_class is error and not first.rate_limited
    assert 0.0 <= first.after <= 1.0  # the first backoff's ceiling is backoff_base
    last = decide(outcome(error, message="boom"), attempt=3, retries_used=2, settings=SETTINGS, rng=rng)
    assert last == Fail("boom (after 3 attempts)", error)


@pytest.mark.parametrize("error", [ErrorClass.START, ErrorClass.MAX_TURNS, ErrorClass.MAX_BUDGET, ErrorClass.REQUEST])
def test_failures_no_retry_can_mend_fail_at_once(error: ErrorClass) -> None:
    decision = decide(outcome(error, message="no"), attempt=1, retries_used=0, settings=SETTINGS, rng=random.Random())
    assert decision == Fail("no", error)


def test_a_rate_limit_waits_at_least_what_the_api_asked() -> None:
    decision = decide(
        outcome(ErrorClass.RATE_LIMIT, message="429", retry_after=30.0),
        attempt=1,
        retries_used=0,
        settings=SETTINGS,
        rng=random.Random(3),
    )
    assert isinstance(decision, Retry) and decision.rate_limited and decision.after >= 30.0


def test_tasks_told_the_same_wait_do_not_come_back_together() -> None:
    rng = random.Random(5)
    told = outcome(ErrorClass.RATE_LIMIT, message="429", retry_after=4.0)
    waits = [decide(told, attempt=1, retries_used=0, settings=SETTINGS, rng=rng) for _ in range(8)]
    afters = [w.after for w in waits if isinstance(w, Retry)]
    assert len(afters) == 8 and all(4.0 <= a <= 4.8 for a in afters)
    assert len(set(afters)) == 8


def test_a_rate_limit_spends_no_retry_even_with_none_left() -> None:
    limited = outcome(ErrorClass.RATE_LIMIT, message="429", retry_after=2.0)
    for settings in (SETTINGS, SETTINGS.replace(retries=0)):
        decision = decide(limited, attempt=5, retries_used=settings.retries, settings=settings, rng=random.Random(2),
                          limited=4, waited=100.0)  # fmt: skip
        assert isinstance(decision, Retry) and decision.rate_limited and not decision.spends_retry
        assert decision.error_class is ErrorClass.RATE_LIMIT and decision.after >= 2.0


@pytest.mark.parametrize("limited", [0, 1, 3, 6, 20])
def test_the_wait_after_a_rate_limit_grows_with_the_limits_in_a_row_up_to_the_cap(limited: int) -> None:
    limit = outcome(ErrorClass.RATE_LIMIT, message="529")  # no retry-after: the backoff alone
    waits = [
        decide(limit, attempt=1, retries_used=0, settings=SETTINGS, rng=random.Random(seed), limited=limited)
        for seed in range(50)
    ]
    afters = [w.after for w in waits if isinstance(w, Retry)]
    assert len(afters) == 50 and all(0.0 <= a <= min(60.0, 2.0**limited) for a in afters)
    assert len(set(afters)) == 50  # full jitter: tasks limited together come back apart


def test_a_rate_limit_longer_than_the_timeout_spends_the_retries_then_fails() -> None:
    limited = outcome(ErrorClass.RATE_LIMIT, message="429")
    settings = SETTINGS.replace(timeout=600.0)
    spent = decide(limited, attempt=9, retries_used=0, settings=settings, rng=random.Random(1), limited=8,
                   waited=600.0)  # fmt: skip
    assert isinstance(spent, Retry) and spent.rate_limited and spent.spends_retry
    last = decide(limited, attempt=11, retries_used=2, settings=settings, rng=random.Random(1), limited=10,
                  waited=700.0)  # fmt: skip
    assert last == Fail("429 (after 11 attempts)", ErrorClass.RATE_LIMIT)
    endless = settings.replace(timeout=None)  # no time limit: the task may wait for the API for ever
    free = decide(limited, attempt=11, retries_used=2, settings=endless, rng=random.Random(1), limited=10,
                  waited=86_400.0)  # fmt: skip
    assert isinstance(free, Retry) and not free.spends_retry


def test_other_failures_spend_a_retry() -> None:
    decision = decide(outcome(ErrorClass.TRANSIENT, message="502"), attempt=1, retries_used=0, settings=SETTINGS,
                      rng=random.Random(4), limited=3, waited=10.0)  # fmt: skip
    assert isinstance(decision, Retry) and decision.spends_retry and not decision.rate_limited


def test_the_retry_book_keeps_a_task_s_rate_limits_in_a_row_apart_from_its_retries() -> None:
    book, rng = RetryBook(), random.Random(6)
    settings = SETTINGS.replace(timeout=100.0)
    limited, transient = outcome(ErrorClass.RATE_LIMIT, message="429"), outcome(ErrorClass.TRANSIENT, message="502")
    free = [
        book.decide("T-01", limited, attempt=n, settings=settings, rng=rng, now=now) for n, now in ((1, 0), (2, 60))
    ]
    assert all(isinstance(d, Retry) and not d.spends_retry for d in free) and book.used == {}
    late = book.decide("T-01", limited, attempt=3, settings=settings, rng=rng, now=120.0)  # 120 s after the first
    assert isinstance(late, Retry) and late.spends_retry and book.used == {"T-01": 1}
    other = book.decide("T-01", transient, attempt=4, settings=settings, rng=rng, now=121.0)  # the streak ends
    assert isinstance(other, Retry) and book.used == {"T-01": 2}
    again = book.decide("T-01", limited, attempt=5, settings=settings, rng=rng, now=500.0)
    assert isinstance(again, Retry) and not again.spends_retry and book.used == {"T-01": 2}
    assert isinstance(book.decide("T-02", transient, attempt=1, settings=settings, rng=rng, now=0.0), Retry)
    assert book.used == {"T-01": 2, "T-02": 1}


def test_a_usage_limit_pauses_and_spends_no_retry() -> None:
    decision = decide(
        outcome(ErrorClass.USAGE_LIMIT, message="resets 9am", reset_at=1_900_000_000.0),
        attempt=1,
        retries_used=2,  # none left: a pause is not a retry
        settings=SETTINGS,
        rng=random.Random(),
    )
    assert decision == Pause(1_900_000_000.0, "resets 9am")


def test_not_logged_in_blocks_the_backend() -> None:
    decision = decide(outcome(ErrorClass.AUTH, message="401"), attempt=1, retries_used=0, settings=SETTINGS,
                      rng=random.Random())  # fmt: skip
    assert decision == Block("claude", "401")
    assert isinstance(decision, Block) and decision.blocked == "claude is not logged in (401)"


@given(st.integers(1, 30), st.integers(0, 2**32 - 1))
def test_backoff_is_full_jitter_under_a_growing_capped_ceiling(retry: int, seed: int) -> None:
    delay = backoff(retry, SETTINGS, random.Random(seed))
    assert 0.0 <= delay <= min(60.0, 2.0 ** (retry - 1))


# --- admission ------------------------------------------------------------------------------------


def test_the_global_cap_and_the_profile_and_backend_caps() -> None:
    admission = Admission(max_parallel=3, profile_caps={"reviewer": 1}, backend_caps={"codex": 1})
    reviewer, codex, plain = Slot("reviewer", "claude"), Slot(None, "codex"), Slot(None, "claude")
    assert admission.allows(reviewer) and admission.allows(codex)
    admission.started("a", reviewer)
    assert not admission.allows(reviewer) and admission.allows(plain)
    admission.started("b", codex)
    assert not admission.allows(codex)
    admission.started("c", plain)
    assert admission.full()
    admission.ended("a")
    assert not admission.full() and admission.allows(reviewer)


def test_a_rate_limit_halves_the_cap_once_a_burst_then_gives_slots_back() -> None:
    admission = Admission(max_parallel=8)
    admission.rate_limited(now=100.0, wait=2.0)
    admission.rate_limited(now=100.5, wait=2.0)  # the same burst: no second cut
    assert admission.cap == 4
    assert admission.ramp_at == 100.5 + RAMP_INTERVAL
    admission.tick(now=101.0)
    assert admission.cap == 4  # not due yet
    caps = []
    now = admission.ramp_at
    while admission.ramp_at is not None:
        admission.tick(now)
        caps.append(admission.cap)
        now += RAMP_INTERVAL
    assert caps == [5, 6, 7, 8]  # one slot an interval, up to max_parallel, then no more ramp
    admission.rate_limited(now=now + 60, wait=0.0)  # a later burst cuts again
    assert admission.cap == 4


def test_the_api_asked_wait_delays_the_first_slot_given_back() -> None:
    admission = Admission(max_parallel=2)
    admission.rate_limited(now=0.0, wait=30.0)
    assert admission.cap == 1 and admission.ramp_at == 30.0


def test_a_pause_and_the_cost_limit() -> None:
    admission = Admission(max_parallel=2, max_cost=0.10, paused_until=50.0)
    assert admission.paused_for(40.0) == 10.0 and admission.paused_for(60.0) == 0.0
    admission.pause(45.0)  # an earlier end does not shorten a pause
    assert admission.paused_for(40.0) == 10.0
    admission.spend(None)
    assert not admission.cost_seen
    admission.spend(0.06)
    assert admission.cost_seen and not admission.over_budget()
    admission.spend(0.04)
    assert admission.over_budget()


def test_a_blocked_backend_keeps_its_first_reason() -> None:
    admission = Admission(max_parallel=2)
    admission.block("claude", "first")
    admission.block("claude", "second")
    assert admission.blocked == {"claude": "first"}


def test_a_usage_limit_whose_reset_has_passed_pauses_briefly_not_five_minutes(tmp_path: Path) -> None:
    """An agent slow to report the limit: its reset time is already past when the runner reads
    it. The limit is likely lifted; waiting the five minutes kept for no reset time at all is wrong."""
    from orchestrator.state.pause import DEFAULT_PAUSE, PASSED_PAUSE
    from orchestrator.state.pause import Pause as PauseFile
    from orchestrator.state.workspace import Workspace

    (tmp_path / "state").mkdir()
    pause = PauseFile(Workspace(tmp_path))
    pause.start(time.time() - 0.5, "claude", "limit")
    assert 0 < pause.remaining() <= PASSED_PAUSE
    pause = PauseFile(Workspace(tmp_path))
    pause.until = 0.0
    pause.start(time.time() + 3, "claude", "limit")
    assert 2 < pause.remaining() <= 3
    pause.until = 0.0
    pause.start(None, "claude", "limit")
    assert pause.remaining() > DEFAULT_PAUSE - 5
