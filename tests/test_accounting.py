"""How attempts are counted and shown: ``logs`` lists every attempt the journal knows (one that
printed nothing too), ``status`` keeps the attempt a killed runner left, and ``report``'s retries
and the status block's "(N attempts)" count the attempts of the run that produced the result."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from runner_helpers import (
    Spec,
    cli,
    cli_in_process,
    kill_leftovers,
    open_attempts,
    read_pids,
    start,
    wait_until,
    write_plan,
)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """The test's project directory; task processes it leaves are killed at the end."""
    yield tmp_path
    kill_leftovers(tmp_path, read_pids(tmp_path).values())


def _interrupt(project: Path, name: str, sig: int = signal.SIGINT, *args: str) -> None:
    """Start a run (with ``args``) in the background and stop it with ``sig`` once its attempt runs."""
    runner = start(project, *args, name=name)
    try:
        wait_until(lambda: bool(open_attempts(project)), "the attempt to start")
        runner.kill(sig)
        runner.wait()
    finally:
        runner.cleanup()


# Sleeps, printing nothing, until the file ``fast`` is there; its pid is left for the cleanup.
QUIET_UNLESS_FAST = 'echo $$ > "$ORCHESTRATOR_TASK_ID.pid"\ntest -e fast || exec sleep 60\necho one'


def test_logs_shows_a_quiet_attempt_as_empty_not_missing(project: Path) -> None:
    write_plan(project, [Spec("T-01", "true")])
    assert cli(project, "run").code == 0
    shown = cli_in_process(project, "logs", "T-01")
    assert shown.code == 0, shown.stderr
    assert shown.stdout == "T-01 [Agent-01] attempt 1\n── stdout: empty\n── stderr: empty\n"
    data = json.loads(cli_in_process(project, "logs", "T-01", "--json").stdout)
    assert data["attempt"] == 1 and data["attempts"] == [1]
    assert data["logs"] == [
        {"stream": "out", "path": None, "bytes": 0, "text": "", "gone": None},
        {"stream": "err", "path": None, "bytes": 0, "text": "", "gone": None},
    ]
    follow = cli(project, "logs", "T-01", "--follow")
    assert (follow.code, follow.stdout, follow.stderr) == (0, "", "")


def test_logs_counts_the_attempts_interrupted_before_they_printed(project: Path) -> None:
    """Two runs stopped by Ctrl-C while the task slept (no log file made), then one that finishes."""
    write_plan(project, [Spec("T-01", QUIET_UNLESS_FAST)])
    _interrupt(project, "first")
    _interrupt(project, "second")
    (project / "fast").touch()
    assert cli(project, "run").code == 0
    shown = cli_in_process(project, "logs", "T-01")
    assert shown.code == 0, shown.stderr
    assert shown.stdout == (
        "T-01 [Agent-01] attempt 3, in its 3rd run\n"
        "── stdout: .orchestrator/logs/agent-01.attempt-3.out\none\n── stderr: empty\n"
    )
    second = cli_in_process(project, "logs", "T-01", "--attempt", "2")
    assert second.code == 0, second.stderr
    assert second.stdout == "T-01 [Agent-01] attempt 2, in its 2nd run\n── stdout: empty\n── stderr: empty\n"
    data = json.loads(cli_in_process(project, "logs", "T-01", "--attempt", "1", "--json").stdout)
    assert data["attempts"] == [1, 2, 3] and [log["bytes"] for log in data["logs"]] == [0, 0]
    missing = cli_in_process(project, "logs", "T-01", "--attempt", "7")
    assert missing.code == 2 and missing.stderr.startswith("T-01 has no attempt 7; its attempts: 1-3")
    assert cli(project, "logs", "T-01", "--follow").stdout == "one\n"


def test_status_counts_the_attempt_a_killed_runner_left(project: Path) -> None:
    """Attempt 1 completes; attempt 2 (a re-run) is left running by a kill -9 of its runner."""
    write_plan(project, [Spec("T-01", QUIET_UNLESS_FAST)])
    (project / "fast").touch()
    assert cli(project, "run").code == 0
    (project / "fast").unlink()
    _interrupt(project, "killed", signal.SIGKILL, "--rerun", "T-01")
    # (its spawn line's moment, the runner's own, as its result would have said: not its start line's, later)
    started = next(a for a in _journal(project) if a["event"] == "spawn" and a["attempt"] == 2)["at"]
    data = json.loads(cli_in_process(project, "status", "--json").stdout)
    [task] = data["tasks"]
    assert (task["status"], task["attempts"], task["started"]) == ("interrupted", 2, started)
    assert task["finished"] is None and task["duration"] is None  # attempt 1's, not this one's
    row = next(line for line in cli_in_process(project, "status").stdout.splitlines() if line.startswith("T-01"))
    assert row.split()[3:6] == ["Interrupted", "-", "1"]  # the one attempt of its run (its number: 2)


def _journal(project: Path) -> list[dict[str, object]]:
    text = (project / ".orchestrator" / "state" / "attempts.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


FLAKY = "test -e flaky.flag || { touch flaky.flag; exit 1; }\necho b"  # fails once, then succeeds


def _report(project: Path) -> dict[str, dict[str, object]]:
    shown = cli_in_process(project, "report", "--json")
    assert shown.code == 0, shown.stderr
    data = json.loads(shown.stdout)
    return {"total": {"retries": data["retries"]}, **{t["id"]: t for t in data["tasks"]}}


def _labels(project: Path) -> dict[str, str]:
    """Each task's status cell in master_plan.md's status block (its rows: | T-01 | Agent-01 | ✅ ...)."""
    text = (project / ".orchestrator" / "master_plan.md").read_text(encoding="utf-8")
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in text.splitlines() if line.startswith("| T-")]
    return {row[0]: row[2] for row in rows if row[1].startswith("Agent-")}


def test_retries_count_only_the_attempts_after_a_failure_in_the_run_of_the_result(project: Path) -> None:
    """T-02 fails once and succeeds in its retry; after `reset --all` both run again and succeed
    at once: the attempts of the first run are no retries of the second, though numbers go on."""
    write_plan(project, [Spec("T-01", "echo a"), Spec("T-02", FLAKY, retries=1)])
    assert cli(project, "run").code == 0
    report = _report(project)
    assert report["total"]["retries"] == 1
    assert (report["T-01"]["attempts"], report["T-01"]["retries"]) == (1, 0)
    assert (report["T-02"]["attempts"], report["T-02"]["retries"]) == (2, 1)
    assert _labels(project) == {"T-01": "✅ Completed", "T-02": "✅ Completed (2 attempts)"}
    assert "| Retries | 1 |" in cli_in_process(project, "report").stdout

    assert cli(project, "reset", "--all").code == 0
    assert cli(project, "run").code == 0
    status = {t["id"]: t for t in json.loads(cli_in_process(project, "status", "--json").stdout)["tasks"]}
    assert [(status[t]["attempts"], status[t]["run_attempts"]) for t in ("T-01", "T-02")] == [(2, 1), (3, 1)]
    report = _report(project)
    assert report["total"]["retries"] == 0
    assert [(report[t]["attempts"], report[t]["retries"]) for t in ("T-01", "T-02")] == [(1, 0), (1, 0)]
    assert _labels(project) == {"T-01": "✅ Completed", "T-02": "✅ Completed"}
    assert "| Retries | 0 |" in cli_in_process(project, "report").stdout
    assert cli_in_process(project, "logs", "T-02").stdout.startswith("T-02 [Agent-02] attempt 3, in its 2nd run\n")


def test_a_live_retry_begins_a_new_run_of_the_task_in_the_journal_too(project: Path) -> None:
    """`orchestrator retry` of a failed task in the run going on begins a new run of it (its
    first attempt again): status, from the journal, says so while it runs and after a kill -9."""
    wait = 'echo $$ > "$ORCHESTRATOR_TASK_ID.pid"; while [ ! -f go ]; do sleep 0.05; done'
    write_plan(project, [Spec("T-01", f"test -f fixed\n{wait}"), Spec("T-02", wait)])
    runner = start(project, name="retry")
    try:
        wait_until(lambda: _task(project, "T-01")["status"] == "failed", "T-01 to fail")
        (project / "fixed").touch()
        assert cli(project, "retry", "T-01").code == 0
        wait_until(lambda: any(a["task"] == "T-01" for a in open_attempts(project)), "T-01 to run again")
        running = _task(project, "T-01")
        assert (running["status"], running["attempts"], running["run_attempts"]) == ("running", 2, 1)
        runner.kill(signal.SIGKILL)
        runner.wait()
    finally:
        runner.cleanup()
    left = _task(project, "T-01")
    assert (left["status"], left["attempts"], left["run_attempts"]) == ("interrupted", 2, 1)


def _task(project: Path, task_id: str) -> dict[str, object]:
    tasks = json.loads(cli_in_process(project, "status", "--json").stdout)["tasks"]
    found: dict[str, object] = next(t for t in tasks if t["id"] == task_id)
    return found


def test_an_attempt_that_could_not_start_counts_in_its_run(project: Path) -> None:
    """A brief edited into one without its script: the attempt is numbered and failed, and it was
    this run's first (``run_attempts`` said 0)."""
    write_plan(project, [Spec("T-01", "echo a")])
    assert cli(project, "run").code == 0
    brief = project / ".orchestrator" / "agent_tasks" / "agent-01.md"
    brief.write_text(brief.read_text(encoding="utf-8").replace("```bash\necho a\n```", "Say a."), encoding="utf-8")
    assert cli(project, "run").code == 1
    shown = json.loads(cli_in_process(project, "status", "--json").stdout)
    (task,) = shown["tasks"]
    assert (task["status"], task["attempts"], task["run_attempts"]) == ("failed", 2, 1)


def test_an_attempt_is_told_against_its_runs_budget_and_the_run_apart(project: Path) -> None:
    """With retries: 0 the third run's log header said `attempt 3 of 3`, which reads as "retries
    used up"; and a run's lines named an attempt two ways side by side (`attempt 3 in 0.65s`,
    then `started (attempt 2 of 3)`). An attempt is named by one number everywhere, its files'
    (which `logs --attempt` takes), a retry's place against its run's budget said as `retry 1 of
    2`, and which run it was after the first. status's Attempts column counts the run's
    attempts, as report does."""
    write_plan(project, [Spec("T-01", "echo one", retries=0)])
    for _ in range(3):
        ran = cli(project, "run", "--rerun", "T-01")
        assert ran.code == 0 and "(attempt" not in ran.stdout  # a new run of a task is no retry
    assert cli_in_process(project, "logs", "T-01").stdout.splitlines()[0] == (
        "T-01 [Agent-01] attempt 3, in its 3rd run"
    )
    assert cli(project, "reset", "--all").code == 0
    assert "(attempt" not in cli(project, "run").stdout
    assert cli_in_process(project, "logs", "T-01").stdout.splitlines()[0] == (
        "T-01 [Agent-01] attempt 4, in its 4th run"
    )
    # A retry says which of its run's attempts it is; status and report count them alike.
    flaky = "test -e tried || { touch tried; exit 3; }\necho two"
    write_plan(project, [Spec("T-01", "echo one", retries=0), Spec("T-02", flaky, retries=2)])
    ran = cli(project, "run")
    assert ran.code == 0 and "🔵 T-02 [Agent-02] started (attempt 2, retry 1 of 2): " in ran.stdout
    assert "; attempt 2 in " in ran.stdout  # (the retrying line names it so too)
    assert cli_in_process(project, "logs", "T-02").stdout.splitlines()[0] == "T-02 [Agent-02] attempt 2, retry 1 of 2"
    row = next(
        line.split() for line in cli_in_process(project, "status").stdout.splitlines() if line.startswith("T-01 ")
    )
    assert row[5] == "1"  # its 4th run's one attempt, not its number 4
    shown = {t["id"]: t for t in json.loads(cli_in_process(project, "status", "--json").stdout)["tasks"]}
    reported = {t["id"]: t for t in json.loads(cli_in_process(project, "report", "--json").stdout)["tasks"]}
    for task in ("T-01", "T-02"):
        assert shown[task]["run_attempts"] == reported[task]["attempts"]
    assert (shown["T-01"]["attempts"], shown["T-02"]["run_attempts"]) == (4, 2)
