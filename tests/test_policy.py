"""The decision core and admission, with plain values: no process, no event loop, no clock."""

from __future__ import annotations

import itertools
import random
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.backends.base import AgentResult
from orchestrator.machine.policy import Block, Complete, Fail, Pause, Retry, backoff, decide
from orchestrator.machine.retries import RetryBook
from orchestrator.plan.config.settings import Settings
from orchestrator.run.limits.admission import RAMP_INTERVAL, Admission, Slot
from orchestrator.run.limits.windows import UNKNOWN_WAIT, Window
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


def test_an_attempt_that_lost_its_worker_spends_a_retry_as_the_readme_says() -> None:
    """A Dask worker lost mid-attempt is a transient failure (``attempts.Launcher``): retried as
    any is, spending one of the task's retries, and failed when none is left. The README said it
    was "retried on another", as if for free."""
    lost = outcome(ErrorClass.TRANSIENT, message="lost its worker: w1 left the cluster")
    again = decide(lost, attempt=1, retries_used=0, settings=SETTINGS, rng=random.Random(2))
    assert isinstance(again, Retry) and again.spends_retry and again.error_class is ErrorClass.TRANSIENT
    spent = decide(lost, attempt=3, retries_used=2, settings=SETTINGS, rng=random.Random(2))
    assert spent == Fail("lost its worker: w1 left the cluster (after 3 attempts)", ErrorClass.TRANSIENT)
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    said = " ".join(readme[readme.index("a worker lost mid-attempt") :].split()[:30])
    assert "it spends one of the task's `retries` (with none left the task fails)" in said, said


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
    assert all(isinstance(d, Retry) and not d.spends_retry for d in free) and book.used("T-01") == 0
    late = book.decide("T-01", limited, attempt=3, settings=settings, rng=rng, now=120.0)  # 120 s after the first
    assert isinstance(late, Retry) and late.spends_retry and book.used("T-01") == 1
    other = book.decide("T-01", transient, attempt=4, settings=settings, rng=rng, now=121.0)  # the streak ends
    assert isinstance(other, Retry) and book.used("T-01") == 2
    again = book.decide("T-01", limited, attempt=5, settings=settings, rng=rng, now=500.0)
    assert isinstance(again, Retry) and not again.spends_retry and book.used("T-01") == 2
    assert isinstance(book.decide("T-02", transient, attempt=1, settings=settings, rng=rng, now=0.0), Retry)
    assert (book.used("T-01"), book.used("T-02")) == (2, 1)
    assert {task: state.retries for task, state in book.tasks.items()} == {"T-01": 2, "T-02": 1}  # (the tasks' states)


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


def test_a_rate_limit_halves_what_was_in_flight_once_a_round_then_gives_slots_back_ever_more_slowly() -> None:
    admission = Admission(max_parallel=8)
    admission.tick(0.0)
    for n in range(8):
        admission.started(f"t{n}", Slot(None, "claude"))
    admission.tick(100.0)
    began = admission.ended("t0")
    assert admission.rate_limited("claude", now=100.0, retry_after=2.0, started=began)  # 8 in flight: 4
    window = admission.windows["claude"]
    assert window.cap == 4 and window.ramp_at == 100.0 + 4 * RAMP_INTERVAL
    # The others of that round, let in by the window before the cut: no second cut.
    for n in range(1, 4):
        assert not admission.rate_limited("claude", now=100.5, retry_after=2.0, started=admission.ended(f"t{n}"))
    assert window.cap == 4
    admission.tick(101.0)
    admission.started("late", Slot(None, "claude"))  # 5 in flight, one of them started after the cut
    admission.tick(102.0)
    assert admission.rate_limited("claude", now=102.0, started=admission.ended("late"))  # a new round: cut
    assert window.cap == 2 and window.cuts == 2
    for n in range(4, 8):
        admission.ended(f"t{n}")
    gaps = []
    now = window.ramp_at
    while window.ramp_at is not None:
        gaps.append(window.ramp_at)
        admission.tick(window.ramp_at)
    steps = [round(b - a, 6) for a, b in itertools.pairwise(gaps)]
    # One slot each interval x window; the slots back to 4 and past it, where the last burst came
    # after one at 8, twice as slow; past 4 with no 429, the ceiling is forgotten.
    assert steps == [RAMP_INTERVAL * n for n in (6, 8, 5, 6, 7)] and window.cap == 8, steps
    assert now == 102.0 + 2 * RAMP_INTERVAL


def test_bursts_in_a_row_at_the_same_window_make_the_slot_back_to_it_wait_ever_longer() -> None:
    """W7 with claude's retries off: the API's limit sat just above one attempt at a time, and
    the window went back to 2 every 5 s, each time for a 429 (0.55 refusals a completed task).
    Each burst in a row at the same window doubles the wait for the slot back to it (4x at most);
    one that comes higher up, or a window past it with no 429, starts afresh."""
    window = Window(limit=8)
    assert window.limited(0.0, retry_after=1.0, started=0.0, flight=2) and window.cap == 1
    waits = []
    now = 0.0
    for _ in range(5):  # back to 2, refused there again
        assert window.ramp_at is not None
        waits.append(window.ramp_at - now)
        now = window.ramp_at
        window.tick(now)
        assert window.cap == 2
        now += 0.5
        assert window.limited(now, retry_after=1.0, started=now - 0.1, flight=2) and window.cap == 1
    assert waits == [RAMP_INTERVAL, 2 * RAMP_INTERVAL, 4 * RAMP_INTERVAL, 4 * RAMP_INTERVAL, 4 * RAMP_INTERVAL]
    # Past the ceiling with no 429: forgotten, one slot each interval x window again.
    window.tick(window.ramp_at or 0.0)
    now = window.ramp_at or 0.0
    window.tick(now)
    assert window.cap == 3 and window.ceiling == 0 and window.ramp_at == now + 3 * RAMP_INTERVAL


def test_a_window_is_cut_to_half_what_was_in_flight_not_half_itself() -> None:
    admission = Admission(max_parallel=8)
    admission.started("a", Slot(None, "claude"))
    admission.started("b", Slot(None, "claude"))
    admission.rate_limited("claude", now=1.0, started=admission.ended("a"))
    assert admission.windows["claude"].cap == 1  # 2 in flight: halving 8 to 4 would slow nothing


def test_each_backend_has_its_own_window_under_the_global_cap_and_its_own_cap() -> None:
    admission = Admission(max_parallel=6, backend_caps={"codex": 2})
    claude, codex = Slot(None, "claude"), Slot(None, "codex")
    for _ in range(3):  # 6 -> 3 -> 1 (three rounds), codex untouched
        admission.rate_limited("claude", now=admission.now)
        admission.now += 1
    assert admission.windows["claude"].cap == 1
    admission.started("a", claude)
    assert not admission.allows(claude) and admission.allows(codex)
    admission.started("b", codex)
    admission.started("c", codex)
    assert not admission.allows(codex)  # its own cap, 2, is its window's limit
    assert admission.window("codex").limit == 2


def test_the_api_asked_wait_is_a_floor_before_the_backend_s_next_attempt() -> None:
    admission = Admission(max_parallel=4)
    claude, codex = Slot(None, "claude"), Slot(None, "codex")
    admission.tick(10.0)
    admission.started("a", claude)
    admission.started("b", claude)
    admission.rate_limited("claude", now=10.0, retry_after=30.0, started=admission.ended("a"))
    admission.ended("b")
    assert admission.windows["claude"].cap == 1 and admission.ramp_at == 40.0  # the floor's end: the next change
    admission.tick(39.9)
    assert not admission.allows(claude) and admission.allows(codex)  # nothing in flight, yet it waits
    admission.tick(40.0)
    assert admission.allows(claude) and admission.windows["claude"].cap == 2  # and the ramp starts then


def test_a_pause_and_the_cost_limit() -> None:
    admission = Admission(max_parallel=2, max_cost=0.10, paused={"*": 50.0})  # (a pause of every group)
    assert admission.paused_for(40.0, "claude") == 10.0 and admission.paused_for(60.0) == 0.0
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
    assert 0 < pause.remaining("claude") <= PASSED_PAUSE
    pause = PauseFile(Workspace(tmp_path))
    pause.groups.clear()
    pause.start(time.time() + 3, "claude", "limit")
    assert 2 < pause.remaining("claude") <= 3
    pause.groups.clear()
    pause.start(None, "claude", "limit")
    assert pause.remaining("claude") > DEFAULT_PAUSE - 5


def test_a_usage_limit_pauses_its_limit_group_only_once_and_a_restart_keeps_it(tmp_path: Path) -> None:
    from orchestrator.state.pause import Pause as PauseFile
    from orchestrator.state.workspace import Workspace

    (tmp_path / "state").mkdir()
    pause = PauseFile(Workspace(tmp_path))
    assert pause.start(time.time() + 60, "claude", "limit")[1]  # new: told
    assert not pause.start(time.time() + 60, "claude", "limit")[1]  # the same limit met again: not told
    assert pause.start(time.time() + 30, "codex", "limit")[1]  # another account's
    again = PauseFile(Workspace(tmp_path))
    assert again.remaining("claude") > 55 and 25 < again.remaining("codex") <= 30 and again.remaining("gemini") == 0
    admission = Admission(max_parallel=2, paused=again.groups)
    admission.tick(0.0, time.time())
    assert not admission.admits(Slot(None, "claude")) and not admission.admits(Slot(None, "shell", "codex"))
    assert admission.admits(Slot(None, "gemini"))


def test_a_429_whose_retry_after_is_not_said_holds_the_backend_a_second_doubled_each_round_in_a_row() -> None:
    window = Window(limit=4)
    assert window.limited(10.0, started=9.0, flight=4) and window.hold_until == 10.0 + UNKNOWN_WAIT
    assert not window.limited(10.2, started=9.5, flight=3)  # the same round: no cut, the same floor from now
    assert window.hold_until == 10.2 + UNKNOWN_WAIT
    assert window.limited(12.0, started=11.5, flight=2) and window.hold_until == 12.0 + 2 * UNKNOWN_WAIT
    window.tick(window.ramp_at or 0.0)  # a slot given back: the streak is over
    assert window.limited(40.0, started=39.0, flight=2) and window.hold_until == 40.0 + UNKNOWN_WAIT
    assert window.limited(41.5, started=41.0, flight=1, retry_after=3.0) and window.hold_until == 44.5  # said: as said
