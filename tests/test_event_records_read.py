"""Reading the event log yields records (issue 65): every kind written through the run's writer
reads back as the record that was written, by every reader (``read_all``, ``each``,
``read_new``); a line of a kind this version does not know, or one lacking what its kind needs,
is an ``UnknownEvent`` that keeps its line, and no reader stumbles on it; a line of a version
before reads as its record says, and is handed on as it was written (``watch --json``, the
chain ``verify`` checks)."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

from record_samples import sample
from runner_helpers import cli_in_process

from orchestrator.output.learning import learning
from orchestrator.output.lines import describe
from orchestrator.state import events
from orchestrator.state.events import EventLog, EventRecord, UnknownEvent
from orchestrator.state.events.audit import audit
from orchestrator.state.events.base import event_name, task_of
from orchestrator.state.events.records import RECORDS
from orchestrator.state.events.reporter import EventReporter
from orchestrator.state.events.runs import RunFinished, RunStarted
from orchestrator.state.events.tasks import TaskCompleted, TaskStarted
from orchestrator.state.kept.history import attempts_of
from orchestrator.state.workspace import Workspace

RUN = "2026-11-23T10:00:00.000+01:00"


def every_kind() -> list[EventRecord]:
    """A record of every kind, each field given a value (none left out)."""
    made: list[EventRecord] = []
    for record in RECORDS.values():
        hints = typing.get_type_hints(record)
        given = {
            spec.name: sample(hints[spec.name])
            for spec in dataclasses.fields(record)
            if spec.init and spec.name not in ("time", "run")
        }
        made.append(record(time="2026-11-23T10:00:01.000+01:00", **given))
    return made


def workspace_at(tmp_path: Path) -> Workspace:
    root = tmp_path / ".orchestrator"
    (root / "state").mkdir(parents=True)
    return Workspace(root)


def test_every_kind_written_by_the_run_reads_back_as_the_record_written(tmp_path: Path) -> None:
    workspace = workspace_at(tmp_path)
    path = workspace.events_file
    written = every_kind()
    log = EventLog(path, RUN)
    for record in written:
        log.tell(record)
    log.close()
    expected = [dataclasses.replace(record, run=RUN) for record in written]  # (the run's log gives its run)
    cursor = events.Cursor()
    for found in (events.read_all(path), list(events.each(path)), events.read_new(path, cursor)):
        assert found == expected
        assert [type(record) for record in found] == [type(record) for record in written]
    assert cursor.offset == path.stat().st_size
    # Each keeps its line as written, the chain's ``prev`` in it; the chain holds.
    lines = [json.loads(line) for line in path.read_bytes().splitlines()]
    found = events.read_all(path)
    assert [record.as_line() for record in found] == lines
    assert all("prev" in record.as_line() and "prev" not in record.as_json() for record in found)
    checked = audit(workspace)  # (its samples name results as no run does: what it says of them aside)
    assert checked.chained_from == 1 and checked.lines == len(written)
    assert [f.what for f in checked.findings if "records a result" not in f.what] == []


def test_a_line_of_a_kind_unknown_or_lacking_what_its_kind_needs_is_kept_as_it_is(tmp_path: Path) -> None:
    workspace = workspace_at(tmp_path)
    path = workspace.events_file
    future = {"event": "task_teleported", "run": RUN, "v": 9, "time": "2026-11-23T10:00:02.000+01:00", "task": "T-01"}
    lacking = {"event": "task_failed", "run": RUN, "time": "2026-11-23T10:00:03.000+01:00", "task": "T-02"}  # no reason
    started = TaskStarted(task="T-01", agent="Agent-01", name="One", attempt=1, in_run=1, of=1, backend="shell",
                          kind=None, log=None, run=RUN)  # fmt: skip
    done = TaskCompleted(task="T-01", agent="Agent-01", name="One", duration=1.0, attempts=1, cost_usd=None,
                         attempt_cost_usd=None, tokens=None, attempt_tokens=None, result="r", warning=None,
                         simulated=False, run=RUN)  # fmt: skip
    events.append(path, [started, future, lacking, done])
    found = events.read_all(path)
    assert [type(record) for record in found] == [TaskStarted, UnknownEvent, UnknownEvent, TaskCompleted]
    unknown = found[1]
    assert isinstance(unknown, UnknownEvent)
    assert (unknown.kind, unknown.run, unknown.time, unknown.data["v"]) == ("task_teleported", RUN, future["time"], 9)
    assert event_name(unknown) == "task_teleported" and task_of(unknown) == "T-01" and task_of(found[2]) == "T-02"
    assert unknown.as_json() == future and {**future, "prev": unknown.as_line()["prev"]} == unknown.as_line()
    # No reader stumbles on it: a reporter hands it to ``any_event``, it has no line, the readers
    # that fold the log pass it by.
    told: list[str] = []

    class Told(EventReporter[None]):
        def any_event(self, event: EventRecord) -> None:
            told.append(event_name(event))

    for record in found:
        Told().tell(record)
    assert told == ["task_started", "task_teleported", "task_failed", "task_completed"]
    assert describe(unknown) is None and describe(found[2]) is None
    assert [(a["task"], a["outcome"]) for a in attempts_of(found)] == [("T-01", "completed")]
    assert learning(found) == {"estimates": None, "compared": None}
    # Written again (a test's, or a tool's that hands a line on), it is the line it was, but for its link.
    events.append(tmp_path / "again.jsonl", found)
    again = events.read_all(tmp_path / "again.jsonl")
    assert [r.as_json() for r in again] == [r.as_json() for r in found]
    assert audit(workspace).ok


def test_a_line_of_a_version_before_reads_as_its_record_and_is_handed_on_as_written(tmp_path: Path) -> None:
    """A line without ``v`` nor the keys added since reads with what ``added`` says; ``watch --json``
    prints every line as it was written (its keys, its ``prev``), byte for byte as before records."""
    workspace = workspace_at(tmp_path)
    path = workspace.events_file
    (workspace.root / "master_plan.md").write_text("# Plan\n", encoding="utf-8")
    old_start = {"event": "run_started", "run": RUN, "time": RUN, "to_run": 1, "already_done": 0}
    old_task = {"event": "task_started", "run": RUN, "time": "2026-11-23T10:00:01.000+01:00", "task": "T-01"}
    future = {"event": "task_teleported", "run": RUN, "v": 9, "time": "2026-11-23T10:00:02.000+01:00"}
    old_end = {"event": "run_finished", "run": RUN, "time": "2026-11-23T10:00:05.000+01:00", "counts": {},
               "exit_code": 0, "final_output": None, "wall_seconds": 5.0}  # fmt: skip
    events.append(path, [old_start, old_task, future, old_end])
    found = events.read_all(path)
    start, task, _, end = found
    assert isinstance(start, RunStarted) and (start.pid, start.limits, start.max_parallel) == (0, {}, None)
    assert isinstance(task, TaskStarted)
    assert (task.agent, task.attempt, task.in_run, task.backend, task.log) == ("", 1, 0, None, None)
    assert isinstance(end, RunFinished) and end.wall_seconds == 5.0 and end.stopped is None
    assert "v" not in task.as_line() and task.as_json()["v"] == 1  # (its line as it was; its record's own)
    assert events.live_run(path) is None and events.last_run(path) == start  # (no runner said: none alive)
    assert events.task_limits(start, "T-01") is None  # (it recorded none)
    assert events.last_run_seconds(path) == 5.0
    watched = cli_in_process(tmp_path, "watch", "--json")
    assert watched.code == 0, watched.stderr
    said = [json.dumps(json.loads(line), ensure_ascii=False) for line in path.read_bytes().splitlines()]
    assert watched.stdout.splitlines() == said
