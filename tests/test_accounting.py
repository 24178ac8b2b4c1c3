"""How attempts are counted and shown: ``logs`` lists every attempt the journal knows (one that
printed nothing too), ``status`` keeps the attempt a killed runner left, and ``report``'s retries
and the status block's "(N attempts)" count the attempts of the run that produced the result."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from runner_helpers import Spec, cli, kill_leftovers, open_attempts, read_pids, start, wait_until, write_plan


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
    shown = cli(project, "logs", "T-01")
    assert shown.code == 0, shown.stderr
    assert shown.stdout == "T-01 [Agent-01] attempt 1 of 1\n── stdout: empty\n── stderr: empty\n"
    data = json.loads(cli(project, "logs", "T-01", "--json").stdout)
    assert data["attempt"] == 1 and data["attempts"] == [1]
    assert data["logs"] == [
        {"stream": "out", "path": None, "bytes": 0, "text": ""},
        {"stream": "err", "path": None, "bytes": 0, "text": ""},
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
    shown = cli(project, "logs", "T-01")
    assert shown.code == 0, shown.stderr
    assert shown.stdout == (
        "T-01 [Agent-01] attempt 3 of 3\n── stdout: .orchestrator/logs/agent-01.attempt-3.out\none\n── stderr: empty\n"
    )
    second = cli(project, "logs", "T-01", "--attempt", "2")
    assert second.code == 0, second.stderr
    assert second.stdout == "T-01 [Agent-01] attempt 2 of 3\n── stdout: empty\n── stderr: empty\n"
    data = json.loads(cli(project, "logs", "T-01", "--attempt", "1", "--json").stdout)
    assert data["attempts"] == [1, 2, 3] and [log["bytes"] for log in data["logs"]] == [0, 0]
    missing = cli(project, "logs", "T-01", "--attempt", "7")
    assert missing.code == 2 and missing.stderr.startswith("T-01 has no attempt 7; its attempts: 1-3")
    assert cli(project, "logs", "T-01", "--follow").stdout == "one\n"


def test_status_counts_the_attempt_a_killed_runner_left(project: Path) -> None:
    """Attempt 1 completes; attempt 2 (a re-run) is left running by a kill -9 of its runner."""
    write_plan(project, [Spec("T-01", QUIET_UNLESS_FAST)])
    (project / "fast").touch()
    assert cli(project, "run").code == 0
    (project / "fast").unlink()
    _interrupt(project, "killed", signal.SIGKILL, "--rerun", "T-01")
    started = next(a for a in _journal(project) if a["event"] == "start" and a["attempt"] == 2)["at"]
    data = json.loads(cli(project, "status", "--json").stdout)
    [task] = data["tasks"]
    assert (task["status"], task["attempts"], task["started"]) == ("interrupted", 2, started)
    assert task["finished"] is None and task["duration"] is None  # attempt 1's, not this one's
    row = next(line for line in cli(project, "status").stdout.splitlines() if line.startswith("T-01"))
    assert row.split()[3:6] == ["Interrupted", "-", "2"]


def _journal(project: Path) -> list[dict[str, object]]:
    text = (project / ".orchestrator" / "state" / "attempts.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]
