"""The attempt journal: what a reader makes of the lines a runner appends, torn ones included."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.moments import iso_at
from orchestrator.state.journal import Journal, read
from orchestrator.state.procs import process_started


def test_open_attempts_follow_start_session_end(tmp_path: Path) -> None:
    path = tmp_path / "attempts.jsonl"
    journal = Journal(path)
    journal.begin()
    journal.started("T-01", "Agent-01", 1, "local", {"pgid": 111, "pgid_start": 5})
    journal.started("T-02", "Agent-02", 1, "local", {"pgid": 222, "pgid_start": None})
    journal.session("T-01", 1, "abc")
    journal.ended("T-02", 1)
    journal.retrying("T-02", 1)
    journal.started("T-03", "Agent-03", 2, "local", {"pgid": 333, "pgid_start": 7})
    journal.ended("T-03", 1)  # the end of an earlier attempt does not close this one
    journal.close()
    state = read(path)
    assert state.runner_pid == os.getpid()
    assert state.runner_start is not None and state.runner_start == process_started(os.getpid())
    assert sorted(state.open) == ["T-01", "T-03"]
    first = state.open["T-01"]
    assert (first.agent, first.attempt, first.executor) == ("Agent-01", 1, "local")
    assert first.handle == {"pgid": 111, "pgid_start": 5}
    assert first.session_id == "abc"
    assert first.started is not None
    assert state.open["T-03"].attempt == 2
    assert state.retrying == {"T-02"}


def test_an_open_attempt_keeps_the_fingerprint_it_was_spawned_with(tmp_path: Path) -> None:
    """What a kill -9 leaves: the next run continues the session only if the task is unchanged,
    so the fingerprint of the spawn line must survive the start line after it."""
    path = tmp_path / "attempts.jsonl"
    journal = Journal(path)
    journal.begin()
    journal.spawning("T-01", "Agent-01", 2, "local", "f" * 64)
    journal.started("T-01", "Agent-01", 2, "local", {"pgid": 111})
    journal.session("T-01", 2, "abc")
    journal.spawning("T-02", "Agent-02", 1, "local")  # no fingerprint: a version before them
    journal.started("T-02", "Agent-02", 1, "local", {"pgid": 222})
    journal.spawning("T-03", "Agent-03", 1, "local", "a" * 64)
    journal.started("T-03", "Agent-03", 2, "local", {"pgid": 333})  # another attempt's start
    journal.close()
    state = read(path)
    assert state.open["T-01"].fingerprint == "f" * 64 and state.open["T-01"].session_id == "abc"
    assert state.open["T-02"].fingerprint is None
    assert state.open["T-03"].fingerprint is None


def test_retry_ends_when_the_next_attempt_starts_or_the_task_settles(tmp_path: Path) -> None:
    path = tmp_path / "attempts.jsonl"
    journal = Journal(path)
    journal.begin()
    journal.retrying("T-01", 1)
    journal.retrying("T-02", 1)
    journal.started("T-01", "Agent-01", 2, "local", {"pgid": 111})
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
    assert state.open["T-01"].handle == {"pgid": 9, "pgid_start": None}


def test_begin_starts_a_new_run_below_the_old_ones_and_a_missing_journal_reads_empty(tmp_path: Path) -> None:
    """An earlier run's lines stay (``history`` reads them); ``read`` sees the last run's only."""
    path = tmp_path / "attempts.jsonl"
    assert read(path).open == {} and read(path).runner_pid is None
    old = '{"event": "run", "runner_pid": 7}\n{"event": "start", "task": "T-01", "attempt": 1, "pgid": 9}\n'
    path.write_text(old + '{"event": "end", "task"')  # its last line torn by a power cut
    journal = Journal(path)
    journal.begin()
    journal.close()
    state = read(path)
    assert state.open == {} and state.runner_pid == os.getpid()
    lines = path.read_text().splitlines()
    assert path.read_text().startswith(old) and len(lines) == 4
    assert json.loads(lines[-1])["runner_pid"] == os.getpid()


def test_a_finished_journal_is_read_from_its_ends(tmp_path: Path) -> None:
    """``finished`` last: nothing is open, whatever lines before it say (they are not parsed)."""
    path = tmp_path / "attempts.jsonl"
    journal = Journal(path)
    journal.begin()
    journal.started("T-01", "Agent-01", 1, "local", {"pgid": 111})
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
    for when in stamps:
        zone = datetime.fromtimestamp(when, UTC).astimezone().tzinfo
        assert iso_at(when) == datetime.fromtimestamp(when, zone).isoformat(timespec="milliseconds")


def test_each_line_is_on_disk_as_soon_as_it_is_said(tmp_path: Path) -> None:
    """A runner killed at any moment leaves every line it appended: no buffering."""
    path = tmp_path / "attempts.jsonl"
    journal = Journal(path)
    journal.begin()
    journal.spawning("T-01", "Agent-01", 1)
    assert list(read(path).open) == ["T-01"] and read(path).open["T-01"].handle is None
    journal.started("T-01", "Agent-01", 1, "local", {"pgid": 42, "pgid_start": 7})
    assert read(path).open["T-01"].handle == {"pgid": 42, "pgid_start": 7}
    journal.ended("T-01", 1)
    assert read(path).open == {}
    journal.close()


def test_a_journal_of_version_0_1_reads_its_process_group_as_a_local_handle(tmp_path: Path) -> None:
    path = tmp_path / "attempts.jsonl"
    path.write_text(
        '{"event": "run", "runner_pid": 7}\n'
        '{"event": "start", "task": "T-01", "agent": "Agent-01", "attempt": 1, "pgid": 9, "pgid_start": 3}\n'
    )
    found = read(path).open["T-01"]
    assert (found.executor, found.handle) == ("local", {"pgid": 9, "pgid_start": 3})


def test_a_failed_write_names_the_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    path = tmp_path / "attempts.jsonl"
    journal = Journal(path)
    journal.begin()

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError) as raised:
        journal.ended("T-01", 1)
    assert raised.value.filename == str(path)
    monkeypatch.undo()
    journal.close()


def test_attempts_of_one_task_reads_only_its_lines_and_all_of_them(tmp_path: Path) -> None:
    """``logs`` asks one task's attempts of a journal that may hold millions of lines: only lines
    naming the task are parsed, and a task whose id begins another's, or is not ASCII, is found."""
    from orchestrator.state.journal import _line, attempts_of

    path = tmp_path / "attempts.jsonl"
    lines = [_line({"event": "run", "runner_pid": 1, "at": "x"})]
    for task, number in (("T-1", 1), ("T-10", 1), ("T-1", 2), ("Tâche-1", 3), ("T-10", 4)):
        lines.append(_line({"event": "spawn", "task": task, "agent": "A", "attempt": number, "at": "x"}))
    lines.append(b'{"event": "spawn", "task": "T-1", "attempt": 9')  # torn by a crash: skipped
    path.write_bytes(b"".join(lines))
    assert attempts_of(path, "T-1") == {1, 2}
    assert attempts_of(path, "T-10") == {1, 4}
    assert attempts_of(path, "Tâche-1") == {3}
    assert attempts_of(path, "T") == set()


def test_the_worker_of_an_attempt_is_its_end_lines_or_while_it_runs_its_start_lines(tmp_path: Path) -> None:
    from orchestrator.state.journal import workers_of

    path = tmp_path / "attempts.jsonl"
    journal = Journal(path)
    journal.begin()
    handle = {"key": "orchestrator-T1-1-x", "scheduler": "tcp://127.0.0.1:1"}
    journal.started("T1", "Agent-01", 1, "dask", handle)
    journal.started("T1", "Agent-01", 1, "dask", {**handle, "worker": "w1"})  # once a worker runs it
    journal.started("T2", "Agent-02", 1, "dask", {**handle, "worker": "w2"})
    assert workers_of(path, "T1") == {1: "w1"} and workers_of(path, "T2") == {1: "w2"}  # still running
    journal.ended("T1", 1, "w1")
    journal.started("T1", "Agent-01", 2, "dask", {**handle, "worker": "w2"})
    journal.ended("T1", 2)  # lost before its worker said its name: its start line's is the word
    journal.started("T1", "Agent-01", 3, "dask", {**handle, "worker": "w1"})
    journal.ended("T1", 3, "w3")  # (an end line's worker is the last word)
    journal.started("T1", "Agent-01", 3, "dask", {**handle, "worker": "w4"})
    journal.close()
    assert workers_of(path, "T1") == {1: "w1", 2: "w2", 3: "w3"}
    assert workers_of(path, "T3") == {} and workers_of(tmp_path / "none.jsonl", "T1") == {}


def test_the_attempts_of_a_race_are_each_open_until_each_ends(tmp_path: Path) -> None:
    """A hedge (or best of N's others) runs beside its task's attempt: a dead runner's race leaves
    both open, each settled; one ended leaves the other its task's open attempt."""
    path = tmp_path / "attempts.jsonl"
    journal = Journal(path)
    journal.begin()
    journal.spawning("T-01", "Agent-01", 1, "dask", "f" * 64)
    journal.started("T-01", "Agent-01", 1, "dask", {"key": "k1"})
    journal.spawning("T-01", "Agent-01", 2, "dask", "f" * 64)
    journal.started("T-01", "Agent-01", 2, "dask", {"key": "k2"})
    journal.started("T-01", "Agent-01", 1, "dask", {"key": "k1", "worker": "w1"})  # (its worker, told late)
    journal.session("T-01", 1, "s1")
    state = read(path)
    assert sorted((o.attempt, o.handle["key"]) for o in state.every_open() if o.handle) == [(1, "k1"), (2, "k2")]
    own = state.open["T-01"]  # the task's own: where a next run goes on from (its worktree, its session)
    assert own.attempt == 1 and own.handle == {"key": "k1", "worker": "w1"} and state.beside[("T-01", 2)].attempt == 2
    assert own.session_id == "s1" and own.fingerprint == "f" * 64
    journal.ended("T-01", 1)  # the hedge won: the straggler stopped, the hedge is the task's attempt now
    state = read(path)
    assert state.open["T-01"].attempt == 2 and not state.beside
    journal.ended("T-01", 2)
    journal.close()
    assert read(path).every_open() == []


def test_iso_at_follows_a_zone_set_anew(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process whose zone changes (``TZ`` and ``time.tzset``) writes the same moment in the new
    zone at once, not in the one it wrote that second in before."""
    when = 1_795_000_000.25  # (a moment in November: no summer time in either zone)
    try:
        for zone, said in (("UTC", "+00:00"), ("Asia/Tokyo", "+09:00"), ("UTC", "+00:00")):
            monkeypatch.setenv("TZ", zone)
            time.tzset()
            assert iso_at(when).endswith(f".250{said}"), zone
    finally:
        monkeypatch.undo()
        time.tzset()
