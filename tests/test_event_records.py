"""Events as typed records (``state/events``): every kind has one record and one method of the
reporter interface; a record is its line and back; docs/events.schema.json is what the records
give, and the lines real runs and commands write (a failure, a retry, a gate, a cancel, a
condition's bypass, a result reused from the cache) validate against it; a log written before
versions reads as it did."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from record_samples import sample
from runner_helpers import cli, run, start, wait_until

from orchestrator.output.lines import Lines, describe
from orchestrator.plan.config.targets import EVENT_NAMES
from orchestrator.state.events import schema
from orchestrator.state.events.base import VERSION, EventKind, EventRecord, left_out_while_none
from orchestrator.state.events.records import RECORDS, parse
from orchestrator.state.events.reporter import EventReporter
from orchestrator.state.events.tasks import PermissionAsked, TaskCompleted, TaskFailed

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "docs" / "events.schema.json"


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))


def invalid(lines: list[dict[str, Any]]) -> list[str]:
    """What the schema finds wrong with each of ``lines``."""
    check = validator()
    return [f"{line.get('event')}: {error.message}" for line in lines for error in check.iter_errors(line)]


# --- the records, the interface, the schema --------------------------------------------------------


def test_every_kind_has_one_record_and_one_method_of_the_reporter_interface() -> None:
    assert set(RECORDS) == set(EventKind)
    for kind, record in RECORDS.items():
        assert record.event is kind
        method = getattr(EventReporter, str(kind))
        names = {r.__name__: r for r in RECORDS.values()}  # (the interface names them for type checkers only)
        assert typing.get_type_hints(method, localns=names)["event"] is record, kind
    own = [cls for cls in EventReporter.__mro__ if cls.__module__.startswith("orchestrator.")]  # (its bases too)
    methods = {name for cls in own for name in vars(cls) if not name.startswith("_")} - {"tell", "any_event"}
    assert methods == {str(kind) for kind in EventKind}


def test_the_kinds_a_notification_target_may_name_are_kinds_of_events() -> None:
    """``notify``'s ``events`` (plan/config/targets, a layer below the records) are names of kinds."""
    assert set(EVENT_NAMES) <= {str(kind) for kind in EventKind}


def test_the_schema_file_is_what_the_records_give() -> None:
    said = "docs/events.schema.json is not what the records give: python -m orchestrator.state.events.schema > it"
    assert SCHEMA.read_text(encoding="utf-8") == schema.text(), said
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA.read_text(encoding="utf-8")))


@pytest.mark.parametrize("kind", list(EventKind), ids=str)
def test_a_record_is_its_line_and_back_and_its_line_is_valid(kind: EventKind) -> None:
    record_type = RECORDS[kind]
    hints = typing.get_type_hints(record_type)
    own = [spec for spec in fields(record_type) if spec.init and spec.name not in ("time", "run")]  # (not `line`)
    full = record_type(**{spec.name: sample(hints[spec.name]) for spec in own})
    line = json.loads(json.dumps(full.as_json()))
    assert line["event"] == str(kind) and line["v"] == VERSION and "run" not in line
    assert next(iter(line)) == "event"
    assert parse(line) == full and invalid([line]) == []
    # The keys written only when they say something are left out while None; the others stay.
    left_out = {spec.name for spec in own if left_out_while_none(spec)}
    bare = record_type(**{spec.name: sample(hints[spec.name]) for spec in own if spec.name not in left_out})
    assert set(bare.as_json()) == {"event", "v", "time"} | {spec.name for spec in own} - left_out
    assert parse(bare.as_json()) == bare and invalid([bare.as_json()]) == []
    # Read as the dict it is written as (a reporter written against the events as dicts).
    for key, value in bare.as_json().items():
        assert bare[key] == value and bare.get(key) == value and key in bare
    assert bare.get("no such key", "-") == "-"


def test_a_line_lacking_what_its_kind_needs_or_of_a_kind_unknown_is_no_record() -> None:
    assert parse({"event": "task_failed", "task": "T-01"}) is None  # (no reason)
    assert parse({"event": "share", "writer": "x"}) is None  # (a kind this version does not know)
    assert parse({"time": "x"}) is None
    assert describe({"event": "task_failed", "task": "T-01"}) is None
    # Keys it does not know are left aside; one it lacks that a version before may not have written
    # reads as empty.
    told = parse({"event": "task_failed", "task": "T-01", "reason": "exit 1", "new_key": 1})
    assert told == TaskFailed(time="", task="T-01", agent="", reason="exit 1", cost_usd=None, attempt_cost_usd=None,
                              tokens=None, attempt_tokens=None)  # fmt: skip


class _Kinds(EventReporter[str]):
    def any_event(self, event: EventRecord) -> str:
        return f"other {event.event}"

    def task_completed(self, event: TaskCompleted) -> str:
        return f"completed {event.task}"


def test_a_reporter_has_a_method_for_the_kinds_it_cares_about_and_a_default_for_the_rest() -> None:
    completed = TaskCompleted(task="T-01", agent="A", name="n", duration=0.1, attempts=1, cost_usd=None,
                              attempt_cost_usd=None, tokens=None, attempt_tokens=None, result="r", warning=None,
                              simulated=False)  # fmt: skip
    failed = TaskFailed(task="T-01", reason="exit 1", cost_usd=None, attempt_cost_usd=None, tokens=None,
                        attempt_tokens=None, agent="A")  # fmt: skip
    assert _Kinds().tell(completed) == "completed T-01"
    assert _Kinds().tell(failed) == "other task_failed"
    assert Lines().tell(failed) == "❌ T-01 [A] failed: exit 1"
    with pytest.raises(NotImplementedError, match="no any_event"):
        EventReporter[None]().tell(failed)


# --- what real runs and commands write -----------------------------------------------------------

PLAN = """---
backend: shell
retries: 0
backoff_base: 0.05
kill_grace: 1
cache: true
---
## Task Decomposition
| Task ID | Command | Dependencies | Condition | Approval | Output | Retries |
|---------|---------|--------------|-----------|----------|--------|---------|
| T-01 | echo '{"n": 0}' | None | | | n:int | |
| T-02 | echo clean | T-01 | T-01.n == 0 | | | |
| T-03 | echo dirty | T-01 | T-01.n > 0 | | | |
| T-04 | if [ -f again ]; then echo ok; else touch again; exit 3; fi | None | | | | 1 |
| T-05 | echo boom >&2; exit 2 | None | | | | |
| T-06 | echo never | T-05 | | | | |
| T-07 | echo gated | None | | before | | |
| T-08 | while [ ! -f go ]; do sleep 0.05; done | None | | | | |
"""


def test_the_lines_real_runs_and_commands_write_validate_against_the_schema(tmp_path: Path) -> None:
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir(parents=True)
    plan.write_text(PLAN, encoding="utf-8")
    runner = start(tmp_path)
    try:
        started = lambda: any(e["event"] == "task_started" and e["task"] == "T-08" for e in runner.events())  # noqa: E731
        wait_until(started, "T-08 to start")
        assert cli(tmp_path, "cancel", "T-08", "--reason", "not needed").code == 0
        assert runner.wait() == 1, runner.stderr.read_text()  # (T-05 failed; T-07 waits at its gate)
    finally:
        runner.stop_all()
    first = runner.events()
    assert cli(tmp_path, "share", "T-01", "the table has 40 rows").code == 0
    assert cli(tmp_path, "checkpoint", "save", "one").code == 0
    assert cli(tmp_path, "approve", "T-07").code == 0
    again = run(tmp_path, "--rerun", "T-01")  # T-01 prints the same: T-02's result comes from the cache
    assert again.code == 1, again.stderr
    logged = [json.loads(line) for line in (tmp_path / ".orchestrator/state/events.jsonl").read_text().splitlines()]
    assert invalid(logged) == [] and invalid(first) == [] and invalid(again.events) == []
    assert all(line["v"] == VERSION and "run" in line for line in logged)
    assert not any("run" in line for line in first + again.events)  # (run --json leaves it out)
    kinds = {line["event"] for line in logged}
    assert {
        "run_started", "task_started", "task_completed", "task_retrying", "task_failed", "task_skipped",
        "task_bypassed", "approval_requested", "cancel_requested", "task_cancelled", "shared",
        "checkpoint_saved", "run_finished",
    } <= kinds, kinds  # fmt: skip
    assert any(line["event"] == "task_completed" and line.get("reused") for line in logged)
    [cancelled] = [line for line in logged if line["event"] == "task_cancelled"]
    assert cancelled["cause"] == {"kind": "cancelled", "said": "not needed"} and cancelled["duration"] > 0
    # Every line the run printed is the line it logged, but for its run and its link in the log's
    # chain (cancel's request is cancel's).
    assert all(isinstance(line["prev"], str) for line in logged)
    run_name = logged[0]["run"]
    ours = [{k: v for k, v in line.items() if k not in ("run", "prev")} for line in logged if line["run"] == run_name]
    assert [line for line in ours if line["event"] != "cancel_requested"] == first


# --- a log written before versions ---------------------------------------------------------------

RUN = "2026-11-21T06:23:12.740+00:00"
OLD: list[dict[str, Any]] = [  # lines as versions before wrote them: no "v", and fewer keys the further back
    {"event": "run_started", "run": RUN, "time": RUN, "to_run": 1, "already_done": 0, "max_parallel": 4,
     "workspace": "/nowhere/.orchestrator", "pid": 4242},
    {"event": "task_started", "run": RUN, "time": RUN, "task": "T-01", "agent": "Agent-01", "name": "Greet",
     "attempt": 1},
    {"event": "task_retrying", "run": RUN, "time": RUN, "task": "T-01", "agent": "Agent-01", "attempt": 2,
     "delay": 0.05, "reason": "exit code 3"},
    {"event": "task_started", "run": RUN, "time": RUN, "task": "T-01", "agent": "Agent-01", "name": "Greet",
     "attempt": 2},
    {"event": "task_completed", "run": RUN, "time": RUN, "task": "T-01", "agent": "Agent-01", "duration": 0.124,
     "attempts": 2, "cost_usd": None, "result": ".orchestrator/results/agent-01-result.md", "warning": None},
    {"event": "notice", "run": None, "message": "disk almost full"},
    {"event": "run_finished", "run": RUN, "time": RUN, "counts": {"completed": 1, "failed": 0}, "wall_seconds": 0.25,
     "exit_code": 0, "cost_usd": None, "stopped": None, "final_output": ".orchestrator/final_output.md"},
]  # fmt: skip
SAID = [
    "▶ run: 1 to run, 0 already done, max 4 in parallel",
    "🔵 T-01 [Agent-01] started: Greet",
    "🔄 T-01 [Agent-01] exit code 3; attempt 2 in 0.05s",
    "🔵 T-01 [Agent-01] started (attempt 2, retry 1): Greet",  # (its budget unsaid then)
    "✅ T-01 [Agent-01] completed in 0.12s",
    "ℹ️ disk almost full",
    "■ run finished in 0.25s: 1 completed → .orchestrator/final_output.md",
]


def test_a_log_written_before_versions_reads_as_it_did(tmp_path: Path) -> None:
    assert [describe(line) for line in OLD] == SAID
    # A run_started older still (no max_parallel) had no line, and has none; it is a record all the same.
    oldest = {k: v for k, v in OLD[0].items() if k != "max_parallel"}
    assert describe(oldest) is None and parse(oldest) is not None
    log = tmp_path / ".orchestrator" / "state" / "events.jsonl"
    log.parent.mkdir(parents=True)
    (tmp_path / ".orchestrator" / "master_plan.md").write_text(PLAN, encoding="utf-8")
    log.write_text("".join(json.dumps(line) + "\n" for line in OLD), encoding="utf-8")
    history = json.loads(cli(tmp_path, "history", "--json").stdout)
    assert [(a["task"], a["attempt"], a["outcome"]) for a in history["attempts"]] == [
        ("T-01", 1, "retried"),
        ("T-01", 2, "completed"),
    ]
    watched = cli(tmp_path, "watch")
    assert watched.code == 0, watched.stderr
    for line in SAID:
        assert line.splitlines()[0] in watched.stdout, watched.stdout


def test_a_record_registers_itself_and_a_kind_has_one_record() -> None:
    """Issue 65: "event records register themselves". The table every reader, reporter and the
    schema read is the records' own; a second record of a kind is refused where it is written."""
    from dataclasses import dataclass
    from typing import ClassVar

    from orchestrator.state.events.base import registered

    assert registered() == RECORDS and set(RECORDS) == set(EventKind)
    assert RECORDS[EventKind.TASK_COMPLETED] is TaskCompleted  # (the class dataclass made last, with its slots)
    with pytest.raises(TypeError, match=r"two records of the kind task_failed: TaskFailed and .*Another"):

        @dataclass(frozen=True, slots=True, kw_only=True)
        class Another(EventRecord):
            event: ClassVar[EventKind] = EventKind.TASK_FAILED

    assert registered()[EventKind.TASK_FAILED] is TaskFailed


def test_a_questions_deadline_reads_as_a_deadline_not_as_its_outcome() -> None:
    """Issue 78: "(no answer by 23:12: denied)" read as if it had been denied already."""
    until = dt.datetime(2026, 11, 27, 23, 12).astimezone().isoformat()
    asked = PermissionAsked(task="T-01", agent="A", name="n", attempt=1, question="q-1", number=2, tool="Bash",
                            said="Bash(curl x)", until=until)  # fmt: skip
    said = Lines().tell(asked) or ""
    assert said.startswith("✋ T-01 [A] asks Q2: Bash(curl x) (denied unless answered by ") and "23:12" in said, said
    assert Lines().tell(dataclasses.replace(asked, until=None)) == "✋ T-01 [A] asks Q2: Bash(curl x)"
