"""The run as a user sees it: failures and skips, upstream results, final_output.md, the plan's status
sections, the JSON event stream and the plain output."""

from __future__ import annotations

import itertools
import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from runner_helpers import (
    CLI,
    HANG_GUARD,
    Spec,
    cli,
    cli_in_process,
    kill_leftovers,
    pid_gone,
    read_pids,
    result_body,
    results,
    run,
    statuses,
    workspace,
    write_plan,
)

from orchestrator import load_plan
from orchestrator.output.reporter import describe
from orchestrator.plan.config.settings import format_duration


def test_failure_skips_exactly_the_downstream_tasks(tmp_path: Path) -> None:
    specs = [
        Spec("A", "echo failing >&2\nexit 5"),
        Spec("B", "echo b", deps=["A"]),
        Spec("C", "echo c", deps=["B"]),
        Spec("D", "echo d", deps=["A", "E"]),
        Spec("E", "sleep 0.2\necho e"),
        Spec("F", "echo f", deps=["E"]),
        Spec("G", "echo g"),
    ]
    write_plan(tmp_path, specs, {"max_parallel": 2})
    result = run(tmp_path)
    assert result.code == 1
    assert statuses(tmp_path) == {
        "A": "failed",
        "B": "skipped",
        "C": "skipped",
        "D": "skipped",
        "E": "completed",
        "F": "completed",
        "G": "completed",
    }
    assert sorted(result.tasks("task_started")) == ["A", "E", "F", "G"]
    skipped = {e["task"]: e["reason"] for e in result.events if e["event"] == "task_skipped"}
    assert skipped == {"B": "upstream A failed", "C": "upstream A failed", "D": "upstream A failed"}
    meta = results(tmp_path)["A"]
    assert meta["reason"] == "exit code 5" and meta["exit_code"] == 5
    assert "failing" in result_body(tmp_path, "A")  # the stderr tail is in the failed result
    assert result.finished()["counts"]["skipped"] == 3


def test_fail_fast_stops_launching(tmp_path: Path) -> None:
    specs = [
        Spec("T-01", "exit 1"),
        Spec("T-02", "sleep 0.5\necho two"),
        Spec("T-03", "echo three"),
        Spec("T-04", "echo four", deps=["T-02"]),
    ]
    write_plan(tmp_path, specs, {"max_parallel": 2})
    result = run(tmp_path, "--fail-fast")
    assert result.code == 1
    assert sorted(result.tasks("task_started")) == ["T-01", "T-02"]
    # What was running is stopped (``test_fail_fast_stops_the_attempts_in_flight``); nothing new starts.
    assert statuses(tmp_path) == {"T-01": "failed", "T-02": "cancelled", "T-03": "skipped", "T-04": "skipped"}
    reasons = {e["task"]: e["reason"] for e in result.events if e["event"] == "task_skipped"}
    assert reasons["T-03"] == "not started: --fail-fast: T-01 failed"
    assert reasons["T-04"] == "upstream T-02 was cancelled"
    assert result.finished()["stopped"] == "--fail-fast: T-01 failed"
    # Without --fail-fast the independent tasks go on.
    for path in (workspace(tmp_path) / "results").iterdir():
        path.unlink()
    result = run(tmp_path)
    assert statuses(tmp_path) == {"T-01": "failed", "T-02": "completed", "T-03": "completed", "T-04": "completed"}


LONG = "echo $$ > long.pid; sleep 30 & echo $! > child.tmp; mv child.tmp child.pid; wait"  # a group with a child


def test_fail_fast_stops_the_attempts_in_flight(tmp_path: Path) -> None:
    """T-01 fails while T-02 (a shell and its child, in their own group) runs: the run stops
    T-02 as a cancel would, its whole group gone, and says why; `retry` takes it up again."""
    specs = [
        Spec("T-01", "while [ ! -e child.pid ]; do sleep 0.05; done; exit 1"),
        Spec("T-02", LONG),
        Spec("T-03", "echo three", deps=["T-02"]),
    ]
    write_plan(tmp_path, specs, {"max_parallel": 2, "kill_grace": 1})
    began = time.monotonic()
    try:
        result = run(tmp_path, "--fail-fast")
        took = time.monotonic() - began
        pids = [int((tmp_path / name).read_text()) for name in ("long.pid", "child.pid")]
        assert all(pid_gone(pid) for pid in pids), "T-02's group outlived the run that stopped it"
    finally:
        kill_leftovers(tmp_path, read_pids(tmp_path).values())
    assert took < 20, "the run waited for T-02 to end by itself"
    assert result.code == 1
    why = "stopped: T-01 failed and the run fails fast"
    found = results(tmp_path)
    assert (found["T-01"]["status"], found["T-02"]["status"]) == ("failed", "cancelled")
    assert found["T-02"]["reason"] == why and found["T-02"]["duration"] > 0
    assert (found["T-03"]["status"], found["T-03"]["reason"]) == ("skipped", "upstream T-02 was cancelled")
    cancelled = [e for e in result.events if e["event"] == "task_cancelled"]
    assert [(e["task"], e["reason"]) for e in cancelled] == [("T-02", why)]
    finished = result.finished()
    assert finished["stopped"] == "--fail-fast: T-01 failed" and finished["cancelled"] == ["T-02"]
    assert finished["exit_code"] == 1
    assert re.fullmatch(rf"⏹️ T-02 \[Agent-02\] cancelled after \S+: {why}", describe(cancelled[0]) or "")
    assert "`orchestrator retry T-02` runs a cancelled task again" in (describe(finished) or "")
    assert why in cli_in_process(tmp_path, "status").stdout
    assert why in (workspace(tmp_path) / "final_output.md").read_text()
    # A cancelled task stays so in a plain run, as one a person cancelled; `retry` takes it up.
    plan = workspace(tmp_path) / "master_plan.md"
    plan.write_text(plan.read_text().replace("sleep 30", "sleep 0").replace("exit 1", "exit 0"))
    assert run(tmp_path).tasks("task_started") == ["T-01"]
    assert cli(tmp_path, "retry", "T-02").code == 0
    again = run(tmp_path)
    assert again.code == 0, again.stdout + again.stderr
    assert statuses(tmp_path) == dict.fromkeys(("T-01", "T-02", "T-03"), "completed")


def test_fail_fast_does_not_wait_for_a_pending_retry(tmp_path: Path) -> None:
    specs = [
        Spec("T-01", "sleep 0.3\nexit 1", retries=0),
        Spec("T-02", "exit 1"),  # fails at once; its retry waits up to 1000 s of backoff
        Spec("T-03", "echo three", deps=["T-02"]),
    ]
    write_plan(tmp_path, specs, {"retries": 3, "backoff_base": 1000, "backoff_cap": 1000})
    began = time.monotonic()
    result = run(tmp_path, "--fail-fast", timeout=60)
    assert time.monotonic() - began < 20, "the runner waited out a retry that --fail-fast would never start"
    assert result.code == 1
    assert result.kinds("T-02")[:2] == ["task_started", "task_retrying"]
    found = statuses(tmp_path)
    assert found["T-01"] == "failed"
    assert found["T-02"] == "failed" and found["T-03"] == "skipped"  # T-02 ran, and failed
    assert results(tmp_path)["T-02"]["reason"] == "exit code 1; not attempted again: --fail-fast: T-01 failed"


def test_upstream_results_reach_the_command_backend_on_stdin(tmp_path: Path) -> None:
    settings = {"backend": "command", "command": ["bash", "-c", "cat; echo OUTPUT-OF-$ORCHESTRATOR_TASK_ID"]}
    write_plan(tmp_path, [Spec("T-01", "unused"), Spec("T-02", "unused", deps=["T-01"])], settings)
    result = run(tmp_path)
    assert result.code == 0, result.stderr
    one = result_body(tmp_path, "T-01")
    assert "Agent-01 Task Assignment" in one and one.rstrip().endswith("OUTPUT-OF-T-01")
    two = result_body(tmp_path, "T-02")
    brief_at = two.index("Agent-02 Task Assignment")
    upstream_at = two.index("## Upstream results")
    assert brief_at < upstream_at
    assert "### T-01: Task T-01 (`.orchestrator/results/agent-01-result.md`)" in two
    assert "OUTPUT-OF-T-01" in two[upstream_at:]
    assert two.rstrip().endswith("OUTPUT-OF-T-02")
    # What went to stdin is kept next to the logs.
    stdin = (workspace(tmp_path) / "logs" / "agent-02.attempt-1.in").read_text()
    assert stdin == two[: len(stdin)]  # the agent got the brief and upstream results, nothing else


def test_input_cap_truncates_upstream_with_a_note(tmp_path: Path) -> None:
    settings = {
        "backend": "command",
        "command": ["bash", "-c", "cat; echo OUTPUT-OF-$ORCHESTRATOR_TASK_ID"],
        "input_cap": 300,
    }
    specs = [Spec("T-01", "unused"), Spec("T-02", "unused"), Spec("T-03", "unused", deps=["T-01", "T-02"])]
    write_plan(tmp_path, specs, settings)
    result = run(tmp_path)
    assert result.code == 0, result.stderr
    stdin = (workspace(tmp_path) / "logs" / "agent-03.attempt-1.in").read_text()
    upstream = stdin[stdin.index("## Upstream results") :]
    assert "OUTPUT-OF-T-01" not in upstream and "OUTPUT-OF-T-02" not in upstream
    for task in ("01", "02"):
        full = len(result_body(tmp_path, f"T-{task}").strip())
        assert f"… {full - 150:,} more characters in `.orchestrator/results/agent-{task}-result.md`" in upstream


def test_an_agent_that_runs_outside_the_project_directory_gets_paths_it_can_open(tmp_path: Path) -> None:
    """QA pass 3: an agent with ``cwd: sub`` (or its own worktree) was told the rest of an
    upstream result was in `.orchestrator/results/...`, a path that does not exist from where it
    runs. It gets absolute paths there, and where the brief's own paths start; the agent opens
    the path it is given."""
    # The stand-in agent reads the file its prompt names, from where it runs (sub/).
    opener = 'p=$(cat); printf "%s\\n" "$p"; f=$(printf "%s" "$p" | grep -o "[^\\`]*agent-01-result.md" | tail -1); '
    opener += 'if test -r "$f"; then echo "OPENED $f"; fi'
    settings = {"backend": "command", "command": ["bash", "-c", opener], "input_cap": 40, "cwd": "sub"}
    write_plan(tmp_path, [Spec("T-01", "unused"), Spec("T-02", "unused", deps=["T-01"])], settings)
    (tmp_path / "sub").mkdir()
    result = run(tmp_path)
    assert result.code == 0, result.stderr
    stdin = (workspace(tmp_path) / "logs" / "agent-02.attempt-1.in").read_text()
    upstream = stdin[stdin.index("## Upstream results") :]
    results_file = workspace(tmp_path).resolve() / "results" / "agent-01-result.md"
    assert f"### T-01: Task T-01 (`{results_file}`)" in upstream
    assert f"more characters in `{results_file}`" in upstream
    assert f"the brief's paths start at `{tmp_path.resolve()}`" in upstream
    assert result_body(tmp_path, "T-02").rstrip().endswith(f"OPENED {results_file}")


def test_shell_tasks_get_upstream_result_paths(tmp_path: Path) -> None:
    specs = [
        Spec("T-01", "echo first-output"),
        Spec(
            "T-02", 'for f in $ORCHESTRATOR_INPUTS; do cat "$f"; done\necho "id=$ORCHESTRATOR_TASK_ID"', deps=["T-01"]
        ),
    ]
    write_plan(tmp_path, specs)
    assert run(tmp_path).code == 0
    body = result_body(tmp_path, "T-02")
    assert "first-output" in body and "id=T-02" in body


def test_final_output_even_when_tasks_failed(tmp_path: Path) -> None:
    # Table order is not dependency order: results must still come dependencies first.
    specs = [
        Spec("T-03", "echo RESULT-THREE", deps=["T-02"]),
        Spec("T-02", "echo RESULT-TWO", deps=["T-01"]),
        Spec("T-01", "sleep 0.2\necho RESULT-ONE"),
        Spec("T-04", "echo oops >&2\nexit 2"),
        Spec("T-05", "echo never", deps=["T-04"]),
    ]
    write_plan(tmp_path, specs)
    result = run(tmp_path)
    assert result.code == 1
    final_path = workspace(tmp_path) / "final_output.md"
    final = final_path.read_text()
    assert "## Summary" in final
    assert "| Tasks | 5: 3 completed, 1 failed, 1 skipped |" in final
    rows = {
        line.split("|")[1].strip(): line.split("|")[2].strip() for line in final.splitlines() if line.count("|") == 3
    }
    assert any(name.startswith("Wall time") and value.endswith("s") for name, value in rows.items())
    assert rows["Critical path (longest in time)"].startswith("T-01 -> T-02 -> T-03 (")
    assert rows["Speed-up vs sequential"].endswith("×")
    positions = [final.index(f"RESULT-{word}") for word in ("ONE", "TWO", "THREE")]
    assert positions == sorted(positions)
    assert "never" not in final
    problems = final[final.index("## Failed and skipped tasks") :]
    assert "| T-04 | ❌ Failed | exit code 2 | `.orchestrator/results/agent-04-result.md` |" in problems
    assert "| T-05 | ⏭️ Skipped | upstream T-04 failed |" in problems
    assert result.finished()["final_output"] == ".orchestrator/final_output.md"

    # `aggregate` rebuilds the same file from the results on disk.
    final_path.unlink()
    rebuilt = cli(tmp_path, "aggregate")
    assert rebuilt.code == 0, rebuilt.stderr
    assert final_path.read_text() == final


def test_plan_status_blocks_are_written_and_nothing_else(tmp_path: Path) -> None:
    """Every byte a person wrote stays, a section of theirs named like the tool's included; the
    status blocks go after it all, between their markers, and a second run rewrites only them."""
    specs = [Spec("T-01", "echo one"), Spec("T-02", "exit 1"), Spec("T-03", "echo three", deps=["T-02"])]
    between = "## Agent Assignment\nplaceholder written by a person\n"
    after = "## Notes\nKeep   these  bytes ✨ exactly.\n\n| not | a task table |\n|---|---|\n| x | y |\n"
    plan_file = write_plan(tmp_path, specs, between=between, after=after)
    original = plan_file.read_text()
    result = run(tmp_path)
    assert result.code == 1
    updated = plan_file.read_text()
    assert updated.startswith(original)
    blocks = updated[len(original) :]
    assert blocks.lstrip("\n").startswith("## Agent Assignment\n<!-- orchestrator:begin status ")
    status = blocks[: blocks.index("<!-- orchestrator:end status -->")]
    assert "| T-01 | Agent-01 | ✅ Completed |" in status
    assert "| T-02 | Agent-02 | ❌ Failed |" in status
    assert "| T-03 | Agent-03 | ⏭️ Skipped |" in status
    assert "**Totals**: 3 tasks: 1 completed, 1 failed, 1 skipped" in status
    graph = blocks[blocks.index("## Dependency Graph") :]
    assert "```mermaid" in graph and "✅ T-01" in graph and "❌ T-02" in graph
    assert graph.endswith("<!-- orchestrator:end graph -->\n")
    load_plan(workspace(tmp_path))  # still a valid plan
    assert run(tmp_path, "--rerun", "T-01").code == 1
    again = plan_file.read_text()
    assert again.startswith(original) and again.count("<!-- orchestrator:begin status") == 1


def test_json_event_stream(tmp_path: Path) -> None:
    specs = [Spec("T-01", "echo one"), Spec("T-02", "exit 1"), Spec("T-03", "echo three", deps=["T-02"])]
    write_plan(tmp_path, specs)
    result = run(tmp_path)
    assert result.code == 1
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == len(result.events)
    for event in result.events:
        assert isinstance(event["event"], str) and isinstance(event["time"], str)
    assert result.events[0]["event"] == "run_started"
    assert result.events[0]["to_run"] == 3 and result.events[0]["already_done"] == 0
    finished = result.finished()
    assert finished["exit_code"] == 1
    assert {k: v for k, v in finished["counts"].items() if v} == {"completed": 1, "failed": 1, "skipped": 1}
    kinds = result.kinds()
    assert kinds.count("task_started") == 2 and kinds.count("run_finished") == 1
    assert result.kinds("T-01") == ["task_started", "task_completed"]
    assert result.kinds("T-02") == ["task_started", "task_failed"]
    assert result.kinds("T-03") == ["task_skipped"]


def test_plain_output_without_a_tty_is_one_line_per_change(tmp_path: Path) -> None:
    specs = [Spec("T-01", "echo one"), Spec("T-02", "exit 1"), Spec("T-03", "echo three", deps=["T-02"])]
    write_plan(tmp_path, specs)
    result = cli(tmp_path, "run")
    assert result.code == 1
    assert "\x1b" not in result.stdout  # no terminal control codes
    lines = result.stdout.splitlines()
    assert len(lines) == 8, result.stdout
    assert lines[0].startswith("▶ run: 3 to run, 0 already done")
    assert lines[-2].startswith("■ run finished in ")
    assert lines[-1].startswith("next: `orchestrator logs T-02` shows why it failed")
    middle = sorted(lines[1:-2])
    assert [line.split()[0] for line in middle] == ["⏭️", "✅", "❌", "🔵", "🔵"]
    assert any(line.startswith("❌ T-02 [Agent-02] failed: exit code 1") for line in middle)
    assert any(line.startswith("⏭️ T-03 [Agent-03] skipped: upstream T-02 failed") for line in middle)


def test_exit_codes_for_a_bad_plan_and_no_workspace(tmp_path: Path) -> None:
    missing = cli(tmp_path, "run")
    assert missing.code == 2 and "no such workspace" in missing.stderr
    write_plan(tmp_path, [Spec("T-01", "echo one")], {"backend": "nonesuch"})
    bad = cli(tmp_path, "run", "--json")
    assert bad.code == 2
    assert json.loads(bad.stdout.splitlines()[-1])["ok"] is False
    assert "unknown backend 'nonesuch'" in bad.stderr
    assert not (workspace(tmp_path) / "results").exists()
    write_plan(tmp_path, [Spec("T-01", "echo one")], {"backend": "command"})
    assert cli(tmp_path, "run").code == 2  # the command backend without a command
    write_plan(tmp_path, [Spec("T-01", "echo one")])
    assert cli(tmp_path, "run", "--max-parallel", "0").code == 2
    ok = cli(tmp_path, "run", ".orchestrator")
    assert ok.code == 0, ok.stderr


def test_a_brief_is_read_when_its_task_starts(tmp_path: Path) -> None:
    """What an agent gets is its brief as it is on disk when it starts: an edit made while the run
    goes on reaches it, and a brief removed by then fails that task with a reason (and the next
    run renders it again, keeping the edit: the edited task does not run again)."""
    edit = (
        'if [ "$ORCHESTRATOR_TASK_ID" = T-01 ]; then '
        'sed -i "s/Agent-02 Task Assignment/EDITED BRIEF/" "$ORCHESTRATOR_WORKSPACE/agent_tasks/agent-02.md"; '
        'rm "$ORCHESTRATOR_WORKSPACE/agent_tasks/agent-03.md"; fi'
    )
    settings = {"backend": "command", "command": ["bash", "-c", f"cat; {edit}"]}
    specs = [Spec("T-01", "unused"), Spec("T-02", "unused", deps=["T-01"]), Spec("T-03", "unused", deps=["T-01"])]
    write_plan(tmp_path, specs, settings)
    first = run(tmp_path)
    assert first.code == 1, first.stderr
    assert "EDITED BRIEF" in result_body(tmp_path, "T-02")
    assert statuses(tmp_path) == {"T-01": "completed", "T-02": "completed", "T-03": "failed"}
    assert results(tmp_path)["T-03"]["reason"] == (
        "its brief .orchestrator/agent_tasks/agent-03.md is gone: run again to render it"
    )
    second = run(tmp_path)
    assert second.code == 0, second.stderr
    assert second.tasks("task_started") == ["T-03"]


def test_a_run_in_process_leaves_nothing_open(tmp_path: Path) -> None:
    """A program may run plans in-process: a run closes what it opened (it once left the stream
    its attempts report on open, a ResourceWarning when collected, an error under pytest)."""
    import gc

    from orchestrator import Workspace
    from orchestrator.run.runner import run as run_in_process

    write_plan(tmp_path, [Spec("A", "echo a"), Spec("B", "echo b", deps=["A"])])
    summary = run_in_process(Workspace.find(tmp_path))
    assert summary.exit_code == 0
    gc.collect()


def test_a_run_in_process_leaves_the_garbage_collector_as_it_found_it(tmp_path: Path) -> None:
    """The runner holds off cycle collection between an attempt's end and the next start: after
    a run the collector is on again, or still off if the caller had turned it off."""
    import gc

    from orchestrator import Workspace
    from orchestrator.run.runner import RunOptions
    from orchestrator.run.runner import run as run_in_process

    specs = [Spec("A", "true"), Spec("B", "true"), Spec("C", "true", deps=["A", "B"])]
    write_plan(tmp_path, specs, {"max_parallel": 1})
    assert gc.isenabled()
    assert run_in_process(Workspace.find(tmp_path)).exit_code == 0
    assert gc.isenabled()
    gc.disable()
    try:
        assert run_in_process(Workspace.find(tmp_path), RunOptions(rerun=["A"])).exit_code == 0
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_reader_that_goes_away_does_not_stop_the_run(tmp_path: Path) -> None:
    """``orchestrator run | head -1``: the events that no one reads any more are dropped, the run
    goes on to the end and records every result."""
    write_plan(tmp_path, [Spec(f"T-{i:02d}", f"sleep 0.{i % 3}; echo {i}") for i in range(1, 13)], {"max_parallel": 3})
    runner = subprocess.Popen(
        [*CLI, "run"], cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert runner.stdout is not None and runner.stderr is not None
    first = runner.stdout.readline()
    runner.stdout.close()  # as head -1 does
    code = runner.wait(timeout=HANG_GUARD)
    stderr = runner.stderr.read().decode()
    runner.stderr.close()
    assert first.startswith("▶ run: 12 to run".encode())
    assert code == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
    assert statuses(tmp_path) == {f"T-{i:02d}": "completed" for i in range(1, 13)}


def test_a_slow_status_rewrite_does_not_make_the_loop_spin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """master_plan.md's status blocks are written by a worker thread; while one such write is
    slow (a disk that takes its time over an fsync), the loop waits as usual: it neither turns
    round and round until the write is done nor starts another write or sync meanwhile."""
    import threading

    from orchestrator import Workspace
    from orchestrator.run import runner
    from orchestrator.run.limits.admission import Admission
    from orchestrator.state import planfile

    write_plan(tmp_path, [Spec("A", "sleep 1.5; echo a"), Spec("B", "sleep 1.5; echo b")], {"max_parallel": 2})
    plan_file = workspace(tmp_path) / "master_plan.md"
    real_rewrite = planfile.rewrite_blocks  # (what the run writes its status blocks with)
    plan_writes: list[float] = []
    turns = [0]

    def slow_rewrite(path: Path, blocks: Any, **options: Any) -> bool:
        if path == plan_file and threading.current_thread() is not threading.main_thread():
            plan_writes.append(time.monotonic())
            time.sleep(1.0)
        return real_rewrite(path, blocks, **options)

    real_tick = Admission.tick  # (once each turn of the loop)

    def counted(self: Admission, now: float, wall: float | None = None) -> None:
        turns[0] += 1
        real_tick(self, now, wall)

    monkeypatch.setattr(planfile, "rewrite_blocks", slow_rewrite)
    monkeypatch.setattr(Admission, "tick", counted)
    summary = runner.run(Workspace.find(tmp_path))
    assert summary.exit_code == 0
    assert 1 <= len(plan_writes) <= 2  # one at the start, perhaps one a second later: never overlapping
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(plan_writes))
    assert 0 < turns[0] < 50, f"{turns[0]} turns of the loop for two tasks"


def test_output_is_whole_when_the_cli_exits_without_the_interpreters_shutdown(tmp_path: Path) -> None:
    """The CLI ends with ``os._exit`` once a command is done: whatever its output streams still
    buffer (block-buffered into a pipe, as without PYTHONUNBUFFERED) must be written first."""
    specs = [Spec(f"T-{i:03d}", f"echo {i}", inline=True) for i in range(1, 121)]
    write_plan(tmp_path, specs)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    for args, code in ((["run"], 0), (["status", "--json"], 0), (["graph"], 0), (["run", "--only", "T-999"], 2)):
        completed = subprocess.run(
            [*CLI, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=HANG_GUARD, check=False
        )
        assert completed.returncode == code, completed.stderr
        if args == ["run"]:
            lines = completed.stdout.splitlines()
            assert len(lines) == 2 + 2 * len(specs) and lines[-1].startswith("■ run finished in "), lines[-3:]
        elif args[0] == "status":
            assert len(json.loads(completed.stdout)["tasks"]) == len(specs)
        elif args[0] == "graph":
            assert all(spec.id in completed.stdout for spec in specs)
        else:
            assert completed.stderr.strip(), "the error message went missing"


def test_a_profiler_gets_to_write_its_data(tmp_path: Path) -> None:
    """Under a profiler (or coverage, or a debugger) the CLI exits the normal way, so that what
    the tool gathered is written at exit; otherwise it skips the interpreter's shutdown."""
    write_plan(tmp_path, [Spec("T-01", "echo one")])
    profile = tmp_path / "run.prof"
    completed = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "orchestrator", "run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert profile.stat().st_size > 0


def test_a_launch_made_ahead_records_the_brief_as_edited_since(tmp_path: Path) -> None:
    """While every slot is busy, the next shell task's launch is made ahead of its start, its
    brief read then. An edit to that brief before the task starts still counts: the task records
    the brief as edited (its fingerprint), so the next run finds nothing changed to run again."""
    brief = '"$ORCHESTRATOR_WORKSPACE/agent_tasks/agent-02.md"'
    edit = f'sleep 0.3; sed -i "s/Exercise the runner./Exercise the runner, edited./" {brief}; sleep 0.1'
    write_plan(tmp_path, [Spec("A", edit, priority="P0"), Spec("B", "echo b")], {"max_parallel": 1})
    first = run(tmp_path)
    assert first.code == 0, first.stderr
    assert first.tasks("task_started") == ["A", "B"]
    assert "edited." in (workspace(tmp_path) / "agent_tasks" / "agent-02.md").read_text(encoding="utf-8")
    second = run(tmp_path)
    assert second.code == 0, second.stderr
    assert second.tasks("task_started") == []


def test_a_launch_made_ahead_finds_a_program_installed_since(tmp_path: Path) -> None:
    """A launch made ahead is used only while fresh: a program put on ``$PATH`` ahead of the one
    found when it was made, a while before the task starts, is the one that runs (as bash would
    find it)."""
    first, second = tmp_path / "bin1", tmp_path / "bin2"
    first.mkdir()
    second.mkdir()
    (second / "mytool").write_text("#!/bin/sh\necho from-bin2\n", encoding="utf-8")
    (second / "mytool").chmod(0o755)
    install = f"sleep 0.2; printf '#!/bin/sh\\necho from-bin1\\n' > {first}/mytool; chmod +x {first}/mytool; sleep 0.8"
    write_plan(tmp_path, [Spec("A", install, priority="P0"), Spec("B", "mytool")], {"max_parallel": 1})
    env = {**os.environ, "PATH": f"{first}:{second}:{os.environ['PATH']}"}
    done = cli(tmp_path, "run", "--json", env=env)
    assert done.code == 0, done.stderr
    assert "from-bin1" in result_body(tmp_path, "B")


FAKE_CLAUDE = Path(__file__).resolve().parent.parent / "examples" / "bin" / "fake-claude"


def test_the_offline_fake_claude_says_it_is_fake_and_costs_nothing(tmp_path: Path) -> None:
    """examples/bin/fake-claude used to answer "Done: T-01." at $0.0125 and 1,280 tokens: its
    results and final_output.md read like real, paid-for work. Now its text and its session id
    say it is fake, and it reports no cost, tokens or turns it never had."""
    write_plan(tmp_path, [Spec("T-01", "unused"), Spec("T-02", "unused", deps=["T-01"])], {"backend": "claude"})
    result = cli(tmp_path, "run", "--json", env={"ORCHESTRATOR_CLAUDE_BIN": str(FAKE_CLAUDE)})
    assert result.code == 0, result.stderr
    for task in ("T-01", "T-02"):
        meta = results(tmp_path)[task]
        assert result_body(tmp_path, task) == f"[fake-claude: no model ran; this text is made up] {task} was not done."
        assert meta["session_id"] == f"fake-claude-{task}"
        assert not {"cost_usd", "tokens", "turns"} & set(meta), meta
    assert result.finished()["cost_usd"] is None
    final = (workspace(tmp_path) / "final_output.md").read_text(encoding="utf-8")
    assert "$" not in final and "no model ran" in final
    status = json.loads(cli_in_process(tmp_path, "status", "--json").stdout)
    assert status["cost_usd"] is None

    asked = cli(tmp_path, "run", "--json", "--rerun", "T-01", env={
        "ORCHESTRATOR_CLAUDE_BIN": str(FAKE_CLAUDE), "FAKE_CLAUDE_COST": "0.0125"
    })  # fmt: skip
    assert asked.code == 0, asked.stderr
    assert results(tmp_path)["T-01"]["cost_usd"] == 0.0125
    assert "and so is its cost of $0.0125 (FAKE_CLAUDE_COST)" in result_body(tmp_path, "T-01")


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        pytest.param(None, "-", id="none"),
        pytest.param(0.0, "0s", id="nothing"),
        pytest.param(0.004, "<0.01s", id="under-a-hundredth"),
        pytest.param(0.04, "0.04s", id="40ms"),
        pytest.param(0.13, "0.13s", id="130ms"),
        pytest.param(0.996, "1.0s", id="rounds-to-a-second"),
        pytest.param(12.34, "12.3s", id="seconds"),
        pytest.param(59.96, "1m00s", id="rounds-to-a-minute"),
        pytest.param(75.3, "1m15s", id="minutes"),
        pytest.param(3725.0, "1h02m05s", id="hours"),
    ],
)
def test_the_one_duration_format(seconds: float | None, shown: str) -> None:
    """A task of 40 ms read "0.0s", as if it took no time; 59.96 s read "60.0s"."""
    assert format_duration(seconds) == shown


def test_a_quick_tasks_duration_reads_the_same_wherever_it_is_shown(tmp_path: Path) -> None:
    """The run's line, status, the report, final_output.md and the plan's status block all show a
    task's duration through format_duration: never "0.0s" for a task that took some time."""
    write_plan(tmp_path, [Spec("T-01", "true", name="Quick")])
    result = cli(tmp_path, "run")
    assert result.code == 0, result.stderr
    took = format_duration(results(tmp_path)["T-01"]["duration"])
    assert took != "0.0s" and re.fullmatch(r"<0\.01s|\d+\.\d\ds|\d+\.\ds|\d+m\d\ds", took), took
    assert f"✅ T-01 [Agent-01] completed in {took}\n" in result.stdout
    assert re.search(rf"^T-01 .*✅ Completed +{re.escape(took)} ", cli_in_process(tmp_path, "status").stdout, re.M)
    assert f"| T-01 ⭐ | completed | shell | {took} |" in cli_in_process(tmp_path, "report").stdout
    assert f"### T-01 Quick (Agent-01, {took})" in (workspace(tmp_path) / "final_output.md").read_text()
    assert f"| {took} |" in (workspace(tmp_path) / "master_plan.md").read_text()
    for text in (result.stdout, cli_in_process(tmp_path, "status").stdout, cli_in_process(tmp_path, "report").stdout):
        assert " 0.0s" not in text and "(0.0s)" not in text


def test_a_retry_line_names_the_attempt_to_come_and_a_short_wait_in_hundredths(tmp_path: Path) -> None:
    """It read "retry 2 in 0.0s" under `retries: 2`: neither the retry's number nor a wait."""
    write_plan(tmp_path, [Spec("T-01", "exit 3")], {"retries": 1, "backoff_base": 0.1})
    result = cli(tmp_path, "run")
    assert result.code == 1
    line = r"^🔄 T-01 \[Agent-01\] exit code 3; attempt 2 in (0\.\d\d|<0\.01)s$"  # (the wait is jittered: tiny too)
    assert re.search(line, result.stdout, re.M), result.stdout


def test_watch_before_any_run_says_it_is_waiting_off_a_terminal_too(tmp_path: Path) -> None:
    """QA pass 3: on a pipe (a script, an agent's Bash tool) ``watch`` with no run yet printed
    nothing at all, for ever. It says why it waits, on stderr, then follows the run that starts."""
    write_plan(tmp_path, [Spec("T-01", "echo one")])
    watcher = subprocess.Popen(
        [*CLI, "watch"], cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert watcher.stderr is not None
        readable, _, _ = select.select([watcher.stderr], [], [], HANG_GUARD)
        assert readable, "watch said nothing while it waited"
        said = watcher.stderr.readline().decode()
        assert said.startswith("waiting for a run to start in .orchestrator/ … (no run has started there yet")
        assert run(tmp_path).code == 0
        out, _ = watcher.communicate(timeout=HANG_GUARD)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 0
    assert "T-01" in out.decode() and "run finished" in out.decode()


def test_reset_takes_ids_as_run_only_does_and_never_an_empty_list_for_all(tmp_path: Path) -> None:
    """QA pass 3: ``reset T-01,T-02`` was refused ("no task T-01,T-02") though ``run --only``
    takes that list; ids are taken in any case. An empty id (a script's empty list) is refused,
    never taken for every task."""
    write_plan(tmp_path, [Spec("T-01", "echo one"), Spec("T-02", "echo two"), Spec("T-03", "echo three")])
    assert run(tmp_path).code == 0
    for empty in ("", " , "):  # ("" names the current directory, which holds the workspace: no task named)
        refused = cli(tmp_path, "reset", empty)
        assert refused.code == 2, refused.stderr
        assert refused.stderr.startswith(("reset: no task id given", "say what to reset")), refused.stderr
    assert set(statuses(tmp_path).values()) == {"completed"}
    reset = cli(tmp_path, "reset", "t-01,T-02", "--json")
    assert reset.code == 0, reset.stderr
    assert json.loads(reset.stdout)["reset"] == ["T-01", "T-02"]
    assert statuses(tmp_path) == {"T-03": "completed"}
    unknown = cli(tmp_path, "reset", "T-03,T-9")
    assert unknown.code == 2 and unknown.stderr.startswith("no task T-9 in the plan")
    assert statuses(tmp_path) == {"T-03": "completed"}  # nothing reset on a refusal


def test_plan_refuses_an_empty_request_before_asking_anyone(tmp_path: Path) -> None:
    """QA pass 3: ``plan ""`` called (and paid) the planner with nothing to plan."""
    for request in ("", "   "):
        refused = cli(tmp_path, "plan", ".orchestrator", request, "--backend", "claude")
        assert refused.code == 2, refused.stderr
        assert refused.stderr.startswith("plan needs a request: say what you want done")
    assert not (tmp_path / ".orchestrator").exists()


def test_output_prints_a_completed_tasks_answer_alone_and_says_why_there_is_none(tmp_path: Path) -> None:
    """`output T-01` prints the result's body, no YAML header (a '---' line the task printed is
    kept); --json adds the result's file and metadata. A task with no result yet, or one whose
    result is no completed one, is one line on stderr and exit 1; a task not in the plan, exit 2."""
    write_plan(
        tmp_path,
        [
            Spec("T-01", "printf '# Found\\n\\n---\\nname: not a header\\n'"),
            Spec("T-02", "echo broken >&2; exit 3"),
            Spec("T-03", "echo later", deps=["T-02"]),
        ],
    )
    before = cli_in_process(tmp_path, "output", "T-01")
    assert (before.code, before.stdout) == (1, "")
    assert before.stderr == "T-01 has no result yet: run it first (`orchestrator run --only T-01`)\n"
    assert run(tmp_path).code == 1
    shown = cli_in_process(tmp_path, "output", "t-01")
    assert (shown.code, shown.stdout, shown.stderr) == (0, "# Found\n\n---\nname: not a header\n", "")
    as_json = cli_in_process(tmp_path, "output", ".orchestrator", "T-01", "--json")
    assert as_json.code == 0
    data = json.loads(as_json.stdout)
    assert data["output"] == "# Found\n\n---\nname: not a header\n"  # (what it printed, its newline too)
    assert data["result_file"] == ".orchestrator/results/agent-01-result.md"
    assert data["metadata"]["status"] == "completed" and data["metadata"]["task"] == "T-01"
    failed = cli_in_process(tmp_path, "output", "T-02")
    assert (failed.code, failed.stdout) == (1, "")
    assert failed.stderr.startswith("T-02 has no output: its result says failed (")
    assert failed.stderr.endswith("— `orchestrator logs T-02` shows what it printed\n")
    assert len(failed.stderr.splitlines()) == 1
    skipped = cli_in_process(tmp_path, "output", "T-03", "--json")
    assert skipped.code == 1
    assert json.loads(skipped.stdout)["error"] == "NoOutputError"
    unknown = cli_in_process(tmp_path, "output", "T-04")
    assert unknown.code == 2 and unknown.stderr.startswith("no task T-04 in the plan")
