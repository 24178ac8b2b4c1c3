"""A result whose event a kill prevented (issue 73): ``verify`` names it, and the next run records
it late when it is still what its runner wrote; never one a person edited since.

A runner writes a task's result, then tells of it in the event log at its loop's next write. A
soak killed 25 of 5,610 runners in between: their results had no event, ``verify`` was silent of
them, and one such result edited by hand passed. Here the runner is killed -9 at that moment for
real: with ``isolation: worktree``, the mark of a task's merge is cleared right after its result is
written (``MergeQueue.recorded``) and before the loop writes its events, and a git hook holds that
``update-ref -d`` while the runner is killed (``race_helpers.killed_at``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from race_helpers import killed_at
from runner_helpers import Spec, cli_in_process, run
from worktree_helpers import no_git_identity, plan, repository

from orchestrator.state.events import audit
from orchestrator.state.events.chain import digest

__all__ = ["no_git_identity"]  # (its git without an identity, for these tests too)

RESULT = ".orchestrator/results/agent-01-result.md"
MARK = "refs/orchestrator/merging/T-01/attempt-1"


def _killed_between_the_result_and_its_event(tmp_path: Path) -> Path:
    """A project whose run was killed -9 once T-01's result was written, before its event."""
    project = repository(tmp_path, {"base.txt": "base\n"})
    plan(project, [Spec("T-01", "echo one > one.txt; echo done"), Spec("T-02", "echo two", ["T-01"])], retries=0)
    killed_at(tmp_path, project, MARK, " update-ref -d ")
    assert (project / RESULT).exists(), "killed with T-01's result written"
    assert not [e for e in _events(project) if e["event"] == "task_completed"], "and before its event"
    return project


def _events(project: Path) -> list[dict[str, Any]]:
    log = project / ".orchestrator/state/events.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _journaled(project: Path) -> list[dict[str, Any]]:
    lines = (project / ".orchestrator/state/attempts.jsonl").read_text().splitlines()
    return [entry for entry in map(json.loads, lines) if entry["event"] in ("run", "result")]


def _verify(project: Path) -> tuple[int, dict[str, Any]]:
    said = cli_in_process(project, "verify", "--json")
    return said.code, json.loads(said.stdout)


def test_a_result_whose_event_a_kill_prevented_is_named_then_recorded_late_by_the_next_run(tmp_path: Path) -> None:
    project = _killed_between_the_result_and_its_event(tmp_path)
    written = (project / RESULT).read_bytes()
    first, result = _journaled(project)[-2:]  # (the killed run's line, then its result's: before the file)
    assert first["event"] == "run" and isinstance(first["events_at"], int)
    assert (result["task"], result["result"], result["digest"]) == ("T-01", "agent-01-result.md", digest(written))
    code, found = _verify(project)
    assert code == 1 and found["results"]["unrecorded"] == [RESULT], found
    assert found["findings"] == [{"file": RESULT, "line": None, "what": audit.UNRECORDED}]

    again = run(project)
    assert again.code == 0, again.stdout + again.stderr
    told = [e for e in _events(project) if e["event"] == "task_completed" and e["task"] == "T-01"]
    assert len(told) == 1, told
    assert told[0]["run"] == first["run"], "told as the run that wrote it"
    assert told[0]["cause"] == {"kind": "late", "pid": first["runner_pid"]}
    assert told[0]["result_digest"] == digest(written) and told[0]["result"].endswith("/results/agent-01-result.md")
    assert "T-01's result, written by a runner that died before it told of it, recorded late" in again.stdout
    started = [e["task"] for e in _events(project) if e["event"] == "task_started" and e["run"] != first["run"]]
    assert started == ["T-02"], "T-01 is not run again"
    assert (project / RESULT).read_bytes() == written
    code, found = _verify(project)
    assert code == 0 and found["results"]["matched"] == 2 and found["results"]["unrecorded"] == [], found
    assert not [e for e in _events(project) if e.get("cause", {}).get("kind") == "late" and e["task"] != "T-01"]
    assert run(project).code == 0  # (nothing left to tell: a run after tells of nothing again)
    assert len([e for e in _events(project) if e["event"] == "task_completed" and e["task"] == "T-01"]) == 1


def test_a_result_edited_after_the_kill_is_never_recorded_and_stays_named(tmp_path: Path) -> None:
    """The journal says what the runner wrote: a result whose bytes differ since (here a line a person
    added to its frontmatter) is not what that run produced, and is never told of as its."""
    project = _killed_between_the_result_and_its_event(tmp_path)
    path = project / RESULT
    path.write_text(path.read_text().replace("exit_code: 0", "exit_code: 0\nnote: checked by me"))
    edited = path.read_bytes()
    again = run(project)
    told = [e for e in _events(project) if e["event"] == "task_completed" and e["task"] == "T-01"]
    assert not [e for e in told if e.get("cause")], told  # never told late
    assert not [e for e in told if e["result_digest"] == digest(edited)], "never blessed"
    code, found = _verify(project)
    assert again.code == 0 and path.read_bytes() == edited  # (the body as the run wrote it: the task stays done)
    assert code == 1 and found["results"]["unrecorded"] == [RESULT], found


def test_an_items_result_whose_event_a_kill_prevented_is_recorded_late_from_its_rows_folder(tmp_path: Path) -> None:
    """As above for a row's item, whose result is in its row's folder: the journal names it there
    (``agent-01-items/agent-01[1]-result.md``), and the next run finds it by that name."""
    project = repository(tmp_path, {"base.txt": "base\n"})
    plan(project, [Spec("T-01", "echo item $ORCHESTRATOR_ITEM_NUMBER > item-$ORCHESTRATOR_ITEM_NUMBER.txt; echo done")],
         retries=0, max_parallel=1)  # fmt: skip
    path = project / ".orchestrator" / "master_plan.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("| Task ID |", "| Each | Task ID |", 1).replace("|---------|", "|---|---------|", 1)
                    .replace("| T-01 |", "| a, b | T-01 |", 1), encoding="utf-8")  # fmt: skip
    assert cli_in_process(project, "validate").code == 0, path.read_text()
    killed_at(tmp_path, project, "refs/orchestrator/merging/T-01@1/attempt-1", " update-ref -d ")
    item = project / ".orchestrator/results/agent-01-items/agent-01[1]-result.md"
    assert item.exists(), "killed with T-01[1]'s result written"
    written = item.read_bytes()
    result = _journaled(project)[-1]
    assert (result["task"], result["result"]) == ("T-01[1]", "agent-01-items/agent-01[1]-result.md")
    again = run(project)
    assert again.code == 0, again.stdout + again.stderr
    told = [e for e in _events(project) if e["event"] == "task_completed" and e["task"] == "T-01[1]"]
    assert [e["cause"]["kind"] for e in told] == ["late"], told
    assert told[0]["result"].endswith("/results/agent-01-items/agent-01[1]-result.md")
    assert item.read_bytes() == written
    code, found = _verify(project)
    assert code == 0 and found["results"]["unrecorded"] == [], found
