"""A failure says why where the user is looking: the last lines of its stderr under the ❌ line,
and ``orchestrator logs TASK`` for all of it."""

from __future__ import annotations

import json
from pathlib import Path

from runner_helpers import Spec, cli, cli_in_process, run, write_plan

NOISY = 'echo "partial output"\nfor i in $(seq 1 30); do echo "noise $i" >&2; done\necho "fatal: disk full" >&2\nexit 4'


def test_the_last_lines_of_stderr_are_shown_under_a_failure(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", NOISY), Spec("T-02", "echo fine")])
    ran = cli(tmp_path, "run")
    assert ran.code == 1
    lines = ran.stdout.splitlines()
    at = lines.index("❌ T-01 [Agent-01] failed: exit code 4")
    assert lines[at + 1 : at + 7] == [
        "   │ noise 27",
        "   │ noise 28",
        "   │ noise 29",
        "   │ noise 30",
        "   │ fatal: disk full",
        "   └ all of it: orchestrator logs T-01",
    ]
    assert "noise 26" not in ran.stdout  # a few lines, not a screenful


def test_the_failed_event_carries_the_stderr_tail_trimmed(tmp_path: Path) -> None:
    long_line = "x" * 500
    write_plan(tmp_path, [Spec("T-01", f"echo {long_line} >&2\nexit 1")])
    ran = run(tmp_path)
    failed = next(e for e in ran.events if e["event"] == "task_failed")
    assert failed["stderr_tail"] == ["x" * 199 + "…"]
    write_plan(tmp_path, [Spec("T-01", "exit 1")])
    quiet = run(tmp_path)
    assert next(e for e in quiet.events if e["event"] == "task_failed")["stderr_tail"] == []
    assert "│" not in cli(tmp_path, "run").stdout


def test_logs_shows_an_attempts_output_and_stderr(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", 'echo "attempt $ORCHESTRATOR_ATTEMPT" >&2\necho out\nexit 1', retries=1)])
    assert cli(tmp_path, "run").code == 1
    shown = cli_in_process(tmp_path, "logs", "t-01")
    assert shown.code == 0, shown.stderr
    assert shown.stdout == (
        "T-01 [Agent-01] attempt 2, retry 1 of 1\n"
        "── stdout: .orchestrator/logs/agent-01.attempt-2.out\nout\n"
        "── stderr: .orchestrator/logs/agent-01.attempt-2.err\nattempt 2\n"
    )
    first = json.loads(cli_in_process(tmp_path, "logs", "T-01", "--attempt", "1", "--json").stdout)
    assert first["ok"] is True and first["attempt"] == 1 and first["attempts"] == [1, 2]
    assert {log["stream"]: log["text"] for log in first["logs"]} == {"out": "out\n", "err": "attempt 1\n"}
    assert first["logs"][0]["path"] == ".orchestrator/logs/agent-01.attempt-1.out"
    above = cli_in_process(tmp_path.parent, "logs", tmp_path.name, "T-01")
    assert f"── stderr: {tmp_path.name}/.orchestrator/logs/agent-01.attempt-2.err" in above.stdout


def test_logs_of_a_task_that_is_not_there_or_did_not_run(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo one"), Spec("T-02", "echo two", deps=["T-01"])])
    assert cli_in_process(tmp_path, "logs", "T-01").stderr.startswith("T-01 has no logs: it has not run yet")
    assert cli(tmp_path, "run").code == 0
    unknown = cli_in_process(tmp_path, "logs", "T-09", "--json")
    assert unknown.code == 2 and json.loads(unknown.stdout)["message"].startswith("no task T-09 in the plan")
    missing = cli_in_process(tmp_path, "logs", "T-02", "--attempt", "3")
    assert missing.code == 2 and missing.stderr.startswith("T-02 has no attempt 3; its attempts: 1")


def test_logs_says_a_log_its_result_names_is_gone_not_that_the_attempt_printed_nothing(tmp_path: Path) -> None:
    """QA: with its .out deleted, `logs` said "stdout: empty" (and 0 bytes in --json) for an
    attempt that printed hello, though its result names that log."""
    write_plan(tmp_path, [Spec("T-01", "echo hello")])
    assert run(tmp_path).code == 0
    (tmp_path / ".orchestrator/logs/agent-01.attempt-1.out").unlink()
    shown = cli_in_process(tmp_path, "logs", "T-01")
    assert shown.code == 0
    assert "── stdout: its log .orchestrator/logs/agent-01.attempt-1.out is gone (deleted since)" in shown.stdout
    assert "── stderr: empty" in shown.stdout  # (it printed nothing there: no log named)
    streams = {s["stream"]: s for s in json.loads(cli_in_process(tmp_path, "logs", "T-01", "--json").stdout)["logs"]}
    assert streams["out"]["gone"] == ".orchestrator/logs/agent-01.attempt-1.out" and streams["err"]["gone"] is None


def test_a_run_that_had_failures_ends_with_its_next_step(tmp_path: Path) -> None:
    """One rule everywhere: `logs` says why, a plain `run` retries (no `reset --failed` needed)."""
    write_plan(tmp_path, [Spec("T-01", "echo fine"), Spec("T-02", "exit 3"), Spec("T-03", "echo later", deps=["T-02"])])
    ran = cli(tmp_path, "run")
    assert ran.code == 1
    again = "`orchestrator run` runs what did not complete again (completed tasks are kept)"
    assert ran.stdout.splitlines()[-1] == f"next: `orchestrator logs T-02` shows why it failed; {again}"
    from_above = cli(tmp_path.parent, "run", tmp_path.name)
    named = again.replace("run`", f"run {tmp_path.name}`")
    assert (
        from_above.stdout.splitlines()[-1]
        == f"next: `orchestrator logs {tmp_path.name} T-02` shows why it failed; {named}"
    )
    check = cli_in_process(tmp_path, "check")
    assert "`orchestrator run` to retry" in check.stdout and "reset --failed" not in check.stdout
    write_plan(
        tmp_path, [Spec("T-01", "echo fine"), Spec("T-02", "echo fixed"), Spec("T-03", "echo later", deps=["T-02"])]
    )
    fixed = cli(tmp_path, "run")  # a plain run retries the failed task and its skipped dependent
    assert fixed.code == 0 and not fixed.stdout.splitlines()[-1].startswith("next:")
    assert "T-02 [Agent-02] completed" in fixed.stdout and "T-03 [Agent-03] completed" in fixed.stdout
