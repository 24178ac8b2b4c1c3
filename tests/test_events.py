"""The event log, ``state/events.jsonl``: what every run told, kept across runs, safe for many writers."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

from runner_helpers import Spec, run, workspace, write_plan

from orchestrator.state import events


def _log(project: Path) -> list[dict[str, object]]:
    return events.read_all(workspace(project) / "state" / "events.jsonl")


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
    assert events.read_new(workspace(tmp_path) / "state" / "events.jsonl", cursor) == later


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
