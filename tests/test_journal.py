"""The attempt journal: what a reader makes of the lines a runner appends, torn ones included."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.state.journal import Journal, iso_at, read


def test_open_attempts_follow_start_session_end(tmp_path: Path) -> None:
    path = tmp_path / "attempts.jsonl"
    journal = Journal(path)
    journal.begin()
    journal.started("T-01", "Agent-01", 1, 111, 5)
    journal.started("T-02", "Agent-02", 1, 222, None)
    journal.session("T-01", 1, "abc")
    journal.ended("T-02", 1)
    journal.retrying("T-02", 1)
    journal.started("T-03", "Agent-03", 2, 333, 7)
    journal.ended("T-03", 1)  # the end of an earlier attempt does not close this one
    journal.close()
    state = read(path)
    assert state.runner_pid == os.getpid()
    assert sorted(state.open) == ["T-01", "T-03"]
    first = state.open["T-01"]
    assert (first.agent, first.attempt, first.pgid, first.pgid_start) == ("Agent-01", 1, 111, 5)
    assert first.session_id == "abc"
    assert first.started is not None
    assert state.open["T-03"].attempt == 2
    assert state.retrying == {"T-02"}


def test_retry_ends_when_the_next_attempt_starts_or_the_task_settles(tmp_path: Path) -> None:
    path = tmp_path / "attempts.jsonl"
    journal = Journal(path)
    journal.begin()
    journal.retrying("T-01", 1)
    journal.retrying("T-02", 1)
    journal.started("T-01", "Agent-01", 2, 111, None)
    journal.settled("T-02")
    journal.close()
    assert read(path).retrying == set()


def test_torn_and_foreign_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "attempts.jsonl"
    path.write_bytes(
        b'{"event": "run", "runner_pid": 7}\n'
        b'{"event": "start", "task": "T-01", "attempt": 1, "pgid": 9}\n'
        b"not json at all\n"
        b'["a list"]\n'
        b'{"event": "start", "task": "T-02"\n'  # torn by a power cut
        b'{"event": "start", "attempt": 1}\n'  # no task
        b'{"event": "end", "task": "T-01", "attempt": "one"}\n'  # wrong type: does not close T-01
        b"\xff\xfe\n"
    )
    state = read(path)
    assert state.runner_pid == 7
    assert list(state.open) == ["T-01"]
    assert state.open["T-01"].pgid == 9


def test_begin_starts_afresh_and_a_missing_journal_reads_empty(tmp_path: Path) -> None:
    path = tmp_path / "attempts.jsonl"
    assert read(path).open == {} and read(path).runner_pid is None
    path.write_text('{"event": "start", "task": "T-01", "attempt": 1, "pgid": 9}\n')
    journal = Journal(path)
    journal.begin()
    journal.close()
    state = read(path)
    assert state.open == {} and state.runner_pid == os.getpid()
    assert len(path.read_text().splitlines()) == 1


def test_a_finished_journal_is_read_from_its_ends(tmp_path: Path) -> None:
    """``finished`` last: nothing is open, whatever lines before it say (they are not parsed)."""
    path = tmp_path / "attempts.jsonl"
    journal = Journal(path)
    journal.begin()
    journal.started("T-01", "Agent-01", 1, 111, None)
    journal.finish()
    journal.close()
    state = read(path)
    assert state.open == {} and state.retrying == set() and state.runner_pid == os.getpid()
    with path.open("a") as handle:  # a later line: not finished any more
        handle.write('{"event": "start", "task": "T-02", "attempt": 1, "pgid": 5}\n')
    assert sorted(read(path).open) == ["T-01", "T-02"]


_NEAR_A_SECOND = st.builds(
    lambda second, off: second + off,
    st.integers(min_value=-(10**9), max_value=4 * 10**9),
    st.sampled_from([0.0, 0.0005, 0.0004995, 0.0004996, 0.9994999, 0.9995, 0.9999994, 0.9999995, 0.9999996, 0.5]),
)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.floats(min_value=-(10**9), max_value=4 * 10**9) | _NEAR_A_SECOND, min_size=1, max_size=6))
def test_iso_at_is_datetime_isoformat(stamps: list[float]) -> None:
    # In sequence, as a run calls it: the text kept for one second must never leak into another.
    for when in stamps:
        zone = datetime.fromtimestamp(when, UTC).astimezone().tzinfo
        assert iso_at(when) == datetime.fromtimestamp(when, zone).isoformat(timespec="milliseconds")


def test_iso_at_follows_a_change_of_the_local_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    when = 1_800_000_000.25
    try:
        monkeypatch.setenv("TZ", "UTC")
        time.tzset()
        assert iso_at(when) == "2027-01-15T08:00:00.250+00:00"
        monkeypatch.setenv("TZ", "Asia/Kolkata")
        time.tzset()  # noticed with the next lookup, at most a minute later
        assert iso_at(when + 61) == "2027-01-15T13:31:01.250+05:30"
    finally:
        monkeypatch.undo()
        time.tzset()


def _events(path: Path) -> list[str]:
    return [line.split('"')[3] for line in path.read_text().splitlines()]


def test_lines_wait_for_a_flush_and_a_spawn_line_goes_out_at_once(tmp_path: Path) -> None:
    """A turn's lines leave in one write; a spawn line must be on disk before its process starts,
    so it takes what was waiting with it, in order."""
    path = tmp_path / "attempts.jsonl"
    journal = Journal(path)
    journal.begin()
    journal.started("T-01", "Agent-01", 1, 111, 5)
    journal.ended("T-01", 1)
    assert _events(path) == ["run"]
    journal.spawning("T-02", "Agent-02", 1)
    assert _events(path) == ["run", "start", "end", "spawn"]
    journal.started("T-02", "Agent-02", 1, 222, 5)
    journal.flush()
    assert _events(path) == ["run", "start", "end", "spawn", "start"]
    journal.ended("T-02", 1)
    journal.close()  # nothing waiting is lost
    assert _events(path)[-1] == "end"
    assert not read(path).open


def test_a_line_asks_for_one_flush_after_the_turn(tmp_path: Path) -> None:
    path = tmp_path / "attempts.jsonl"
    scheduled: list[Callable[[], None]] = []
    journal = Journal(path, scheduled.append)
    journal.begin()
    journal.started("T-01", "Agent-01", 1, 111, 5)
    journal.session("T-01", 1, "abc")
    assert len(scheduled) == 1 and _events(path) == ["run"]
    scheduled.pop()()  # the event loop's next turn
    assert _events(path) == ["run", "start", "session"]
    journal.ended("T-01", 1)
    assert len(scheduled) == 1
    journal.close()


_NAMES = st.text(max_size=12) | st.sampled_from(["T-01", "Agent-01", 'a"b', "back\\slash", "tab\t", "é🤖", "\x00\x1f"])
_INTS = st.integers(min_value=0, max_value=2**40)


@settings(max_examples=300, deadline=None)
@given(_NAMES, _NAMES, _INTS, _INTS, st.none() | _INTS)
def test_attempt_lines_are_what_the_json_encoder_writes(
    task: str, agent: str, attempt: int, pgid: int, pgid_start: int | None
) -> None:
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "attempts.jsonl"
        journal = Journal(path)
        journal.begin()
        journal.spawning(task, agent, attempt)
        journal.started(task, agent, attempt, pgid, pgid_start)
        journal.ended(task, attempt)
        journal.close()
        lines = path.read_bytes().splitlines(keepends=True)[1:]
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))
    stamps = [json.loads(line)["at"] for line in lines]
    expected = [
        {"event": "spawn", "task": task, "agent": agent, "attempt": attempt, "at": stamps[0]},
        {"event": "start", "task": task, "agent": agent, "attempt": attempt, "pgid": pgid,
         "pgid_start": pgid_start, "at": stamps[1]},
        {"event": "end", "task": task, "attempt": attempt, "at": stamps[2]},
    ]  # fmt: skip
    assert lines == [encoder.encode(entry).encode("utf-8") + b"\n" for entry in expected]


def test_a_failed_flush_after_the_turn_keeps_the_lines_for_the_next_one(tmp_path: Path) -> None:
    """The event loop would only log an error raised in its callback: the lines stay, and the
    runner's own flush (before its loop waits) meets the error where it is handled."""
    path = tmp_path / "attempts.jsonl"
    scheduled: list[Callable[[], None]] = []
    journal = Journal(path, scheduled.append)
    journal.begin()
    good = journal._fd
    journal._fd = os.open(path, os.O_RDONLY)  # writes now fail (EBADF)
    journal.ended("T-01", 1)
    scheduled.pop()()
    with pytest.raises(OSError):
        journal.flush()
    os.close(journal._fd)
    journal._fd = good
    journal.flush()
    assert _events(path) == ["run", "end"]
    journal.close()
