"""The event log, ``state/events.jsonl``: what every run told, kept across runs, safe for many writers."""

from __future__ import annotations

import json
import multiprocessing
import random
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from runner_helpers import Spec, run, workspace, write_plan

from orchestrator.state import events
from orchestrator.state.events import log


def _log(project: Path) -> list[dict[str, object]]:
    return [e.as_line() for e in events.read_all(workspace(project) / "state" / "events.jsonl")]


def test_a_run_keeps_what_it_told_and_the_next_run_adds_below(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo one"), Spec("T-02", "echo two", deps=["T-01"])])
    first = run(tmp_path)
    assert first.code == 0, first.stderr
    logged = _log(tmp_path)
    # Exactly what the run printed with --json, each event tagged with its run.
    assert [e["event"] for e in logged] == first.kinds()
    runs = {e["run"] for e in logged}
    assert len(runs) == 1 and logged[0]["event"] == "run_started" and logged[-1]["event"] == "run_finished"
    assert logged[-1]["exit_code"] == 0

    second = run(tmp_path)  # nothing left to run: a short run, logged after the first
    assert second.code == 0, second.stderr
    both = _log(tmp_path)
    assert both[: len(logged)] == logged
    later = both[len(logged) :]
    assert later[0]["event"] == "run_started" and later[0]["run"] not in runs
    start = events.last_run_start(workspace(tmp_path) / "state" / "events.jsonl")
    assert start is not None
    cursor = events.Cursor(start)
    assert [e.as_line() for e in events.read_new(workspace(tmp_path) / "state" / "events.jsonl", cursor)] == later


def _append_many(path: str, writer: int) -> None:
    for number in range(200):
        events.append(Path(path), [{"event": "share", "writer": writer, "n": number, "text": "x" * 300}])


def test_many_writers_at_once_leave_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "state" / "events.jsonl"
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_append_many, args=(str(path), w)) for w in range(6)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    lines = path.read_bytes().splitlines()
    assert len(lines) == 6 * 200
    seen = {(e["writer"], e["n"]) for e in map(json.loads, lines)}
    assert len(seen) == 6 * 200


def test_a_reader_takes_whole_lines_only_and_skips_torn_ones(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"event": "a"}\n{"event": "b", "torn\n{"event": "c"}\n{"event": "d"')
    cursor = events.Cursor()
    assert [e["event"] for e in events.read_new(path, cursor)] == ["a", "c"]
    with path.open("ab") as file:
        file.write(b"}\n")
    assert [e["event"] for e in events.read_new(path, cursor)] == ["d"]
    assert events.read_new(path, cursor) == []


def _naive_new(data: bytes, offset: int, only: tuple[bytes, ...]) -> tuple[list[bytes], int]:
    """What ``read_new`` reads, as it read it before it went a block at a time: the whole file."""
    rest = data[offset:]
    end = rest.rfind(b"\n") + 1
    lines = rest[:end].splitlines()
    return [line for line in lines if any(word in line for word in only)], offset + end


def _naive_start(data: bytes) -> int | None:
    found = data.rfind(b'{"event": "run_started"')
    while found > 0 and data[found - 1 : found] != b"\n":
        found = data.rfind(b'{"event": "run_started"', 0, found)
    return found if found >= 0 else None


def test_a_look_for_some_lines_reads_a_block_at_a_time_and_finds_what_a_whole_read_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``read_new(only=...)`` and ``last_run_start`` read the log a block at a time: the same lines
    and offsets as a read of the whole file, wherever a block ends (mid-line, mid-word, lines
    longer than a block, a carriage return, a torn last line); and a look through a log of 20 MB
    for one kind of line holds a block of it, not the log."""
    rng = random.Random(5)
    kinds = [b"run_started", b"task_started", b"task_completed", b"checkpoint_restored"]
    lines = []
    for n in range(400):
        kind = rng.choice(kinds)
        pad = b"x" * rng.choice([0, 5, 40, 300])
        head = b'{"event": "' + kind + b'"' if rng.random() < 0.9 else b' {"event": "' + kind + b'"'
        lines.append(head + b', "n": ' + str(n).encode() + b', "pad": "' + pad + b'"}')
    lines[7] += b"\r" + b'{"event": "task_started", "n": -1}'  # (splitlines splits there too)
    data = b"\n".join(lines) + b'\n{"event": "task_started", "torn'
    path = tmp_path / "events.jsonl"
    path.write_bytes(data)
    for block in (7, 23, 64, 1000, 1 << 20):
        monkeypatch.setattr(log, "_BLOCK", block)
        assert events.last_run_start(path) == _naive_start(data)
        for only in ((b'"run_started"',), (b'"task_', b'"checkpoint_restored"'), (b"pad",), (b"none here",)):
            for offset in (0, len(lines[0]) + 1, len(data) // 2 - 3):
                cursor = events.Cursor(offset)
                want, end = _naive_new(data, offset, only)
                assert [e.as_line() for e in events.read_new(path, cursor, only=only)] == [
                    json.loads(line) for line in want
                ]
                assert cursor.offset == end
    assert events.last_run_start(tmp_path / "none.jsonl") is None
    path.write_bytes(b"")
    assert events.last_run_start(path) is None and events.read_new(path, events.Cursor(), only=(b"x",)) == []

    monkeypatch.setattr(log, "_BLOCK", 1 << 20)
    line = b'{"event": "task_started", "run": "r", "pad": "' + b"p" * 400 + b'"}\n'
    path.write_bytes(b'{"event": "run_started", "run": "r"}\n' + line * 50_000 + b'{"event": "checkpoint_restored"}\n')
    tracemalloc.start()
    try:
        found = events.read_new(path, events.Cursor(events.last_run_start(path) or 0), only=(b'"checkpoint_restored"',))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [e.as_line() for e in found] == [{"event": "checkpoint_restored"}]
    assert peak < 5 * (1 << 20), peak  # (the whole log is 22 MB)


def test_each_event_is_read_a_block_at_a_time_as_a_whole_read_reads_them_and_the_estimates_fold_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``events.each`` gives what ``read_all`` gives, wherever a block ends (mid-line, lines
    longer than a block, a carriage return, a torn line, a torn last line); and the estimates a
    run starts with, learned from a log of 10,000 attempts through it, never hold the log parsed
    whole: a fraction of what reading it all takes."""
    from orchestrator.run.forecasts.estimates import learn

    rng = random.Random(9)
    lines = [b'{"event": "run_started", "run": "r"}']
    for n in range(300):
        pad = b"y" * rng.choice([0, 9, 70, 500])
        lines.append(
            b'{"event": "task_started", "run": "r", "task": "T-' + str(n).encode() + b'", "p": "' + pad + b'"}'
        )
    lines[5] += b"\r" + b'{"event": "task_started", "n": -1}'
    lines[9] = b'{"event": "task_started", "torn'  # (a power cut mid-line, the log going on after it)
    data = b"\n".join(lines) + b'\n{"event": "task_completed", "torn'
    path = tmp_path / "events.jsonl"
    path.write_bytes(data)
    for block in (5, 31, 100, 4096, 1 << 20):
        monkeypatch.setattr(log, "_BLOCK", block)
        assert list(events.each(path)) == events.read_all(path)
    assert list(events.each(tmp_path / "none.jsonl")) == []

    monkeypatch.setattr(log, "_BLOCK", 1 << 20)
    day = "2026-11-26T06:00:00.000+00:00"
    with path.open("wb") as out:
        out.write(b'{"event": "run_started", "run": "r", "time": "' + day.encode() + b'"}\n')
        for n in range(10_000):
            task = f"T-{n:05d}"
            common = f'"run": "r", "task": "{task}", "attempt": 1, "time": "{day}", "agent": "Agent-{n}"'
            out.write(f'{{"event": "task_started", {common}, "kind": "shell", "brief": "b{n}"}}\n'.encode())
            out.write(f'{{"event": "task_completed", {common}, "duration": 1.5, "cost_usd": 0.01}}\n'.encode())
        out.write(b'{"event": "run_finished", "run": "r"}\n')
    kinds = {f"T-{n:05d}": "shell" for n in range(10_000)}

    def peak_of(read: Any) -> tuple[int, Any]:
        tracemalloc.start()
        try:
            found = learn(read(path), kinds)
            return tracemalloc.get_traced_memory()[1], found
        finally:
            tracemalloc.stop()

    streamed, learned = peak_of(events.each)
    whole, as_before = peak_of(events.read_all)
    assert learned == as_before and learned["T-00007"].source == "task"
    assert streamed < 0.6 * whole, (streamed, whole)
