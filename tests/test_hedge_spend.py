"""What a race's loser spent (``run/races/hedge.py``, ``backends/claude.py``): a claude attempt stopped
mid-run, before its ``result`` event, counts the tokens its stream told of, in the task's
figures, the run's, ``history`` and ``report``; its cost, which claude never said, is not made up.

The real ``claude`` CLI against the fake Messages API (tests/fakeapi.py): the first attempt reads a
file, then its next turn's stream hangs; the hedge answers at once and wins.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fakeapi import FakeAnthropic, Reply, claude_missing, find_claude
from runner_helpers import cli, results

CLAUDE = find_claude()
pytestmark = [pytest.mark.claude, pytest.mark.skipif(CLAUDE is None, reason=claude_missing())]


def test_a_hedged_claude_stopped_mid_run_counts_the_tokens_its_stream_told(tmp_path: Path) -> None:
    from test_claude_backend import environment, write_plan

    write_plan(tmp_path, [("T-01", "Name a colour", "None")], extra="read", column="Access",
               settings="max_parallel: 2\nhedge: 5s\nretries: 0")  # fmt: skip
    (tmp_path / "notes.txt").write_text("blue\n")
    firsts: list[int] = []

    def script(body: dict[str, Any]) -> Reply:
        if "tool_result" in json.dumps(body["messages"]):  # the first attempt's second turn: a stall
            return Reply.hang(120)
        firsts.append(1)
        return Reply.tool("Read", {"file_path": str(tmp_path / "notes.txt")}) if len(firsts) == 1 else Reply.say("blue")

    with FakeAnthropic(script) as api:
        env = environment(api, tmp_path)
        done = subprocess.run([sys.executable, "-m", "orchestrator", "run", str(tmp_path / ".orchestrator"), "--json"],
                              env=env, capture_output=True, text=True, timeout=150, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    won = next(e for e in events if e["event"] == "task_hedge_won")
    assert won["attempt"] == 2 and won["lost"] == 1
    assert won["tokens"] == 101 and won["cost_usd"] is None  # turn 1 as its stream told it; no cost said
    completed = next(e for e in events if e["event"] == "task_completed")
    total = completed["tokens"]
    assert total == completed["attempt_tokens"] + 101  # the winner's own and the loser's
    assert completed["cost_usd"] == completed["attempt_cost_usd"]  # (the loser's cost is not known)
    tokens = results(tmp_path)["T-01"]["tokens"]
    assert sum(tokens.values()) == total and tokens["input"] >= 200  # (both attempts' first turns)
    attempts = json.loads(cli(tmp_path, "history", "--json", env=env).stdout)["attempts"]
    lost = next(a for a in attempts if a["outcome"] == "hedge_lost")
    assert lost["attempt"] == 1 and lost["tokens"] == 101
    figures = json.loads(cli(tmp_path, "report", "--format", "json", env=env).stdout)
    assert figures["tasks"][0]["tokens"] == total


def test_a_race_cancelled_counts_what_both_attempts_spent(tmp_path: Path) -> None:
    from runner_helpers import wait_until
    from test_claude_backend import environment, write_plan

    write_plan(tmp_path, [("T-01", "Name a colour", "None")], extra="read", column="Access",
               settings="max_parallel: 2\nhedge: 5s\nretries: 0")  # fmt: skip
    (tmp_path / "notes.txt").write_text("blue\n")

    def script(body: dict[str, Any]) -> Reply:  # every attempt reads a file, then stalls
        if "tool_result" in json.dumps(body["messages"]):
            return Reply.hang(120)
        return Reply.tool("Read", {"file_path": str(tmp_path / "notes.txt")})

    with FakeAnthropic(script) as api:
        env = environment(api, tmp_path)
        argv = [sys.executable, "-m", "orchestrator", "run", str(tmp_path / ".orchestrator"), "--json"]
        out = tmp_path / "run.out"
        with out.open("wb") as sink:
            runner = subprocess.Popen(argv, env=env, stdout=sink, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: sum("tool_result" in json.dumps(b["messages"]) for b in api.main_requests) == 2,
                       "both attempts to stall on their second turn", timeout=60)  # fmt: skip
            assert cli(tmp_path, "cancel", "T-01", env=env).code == 0
            assert runner.wait(timeout=60) != 0
        finally:
            if runner.poll() is None:
                runner.kill()
                runner.wait()
    events = [json.loads(line) for line in out.read_text().splitlines() if line.startswith("{")]
    assert [e["attempt"] for e in events if e["event"] == "task_hedged"] == [2]
    cancelled = next(e for e in events if e["event"] == "task_cancelled")
    assert cancelled["tokens"] == 202, cancelled  # the straggler's first turn and its hedge's
    assert sum(results(tmp_path)["T-01"]["tokens"].values()) == 202
    attempts = json.loads(cli(tmp_path, "history", "--json", env=env).stdout)["attempts"]
    told = {a["attempt"]: (a["outcome"], a["tokens"]) for a in attempts}
    assert told == {1: ("cancelled", 101), 2: ("cancelled", 101)}, attempts  # each its own spend


def test_a_hedge_that_finished_as_its_runner_died_is_kept_from_its_log(tmp_path: Path) -> None:
    # Killed mid-race, the straggler unfinished and its hedge's log ending with claude's result (it
    # had finished, its runner had copied its last line): the next run keeps the hedge's answer.
    import signal

    from runner_helpers import kill_attempts, wait_until
    from test_claude_backend import environment, write_plan

    workspace = write_plan(tmp_path, [("T-01", "Name a colour", "None")], extra="read", column="Access",
                           settings="max_parallel: 2\nhedge: 3s\nretries: 0")  # fmt: skip
    with FakeAnthropic(lambda body: Reply.hang(120)) as api:
        env = environment(api, tmp_path)
        argv = [sys.executable, "-m", "orchestrator", "run", str(workspace), "--json"]
        runner = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)  # fmt: skip
        try:
            wait_until(lambda: len(api.main_requests) == 2, "the straggler and its hedge to ask", timeout=60)
            runner.send_signal(signal.SIGKILL)
            runner.wait(timeout=30)
        finally:
            if runner.poll() is None:
                runner.kill()
        kill_attempts(tmp_path)  # (its agent gone: nothing more reaches its log)
        usage = {"input_tokens": 100, "output_tokens": 20}
        done = {"type": "result", "subtype": "success", "is_error": False, "result": "blue", "session_id": "s-2",
                "total_cost_usd": 0.0008, "usage": usage, "num_turns": 1}  # fmt: skip
        with (workspace / "logs" / "agent-01.attempt-2.out").open("a") as log:
            log.write(json.dumps(done) + "\n")
        again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=150, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    events = [json.loads(line) for line in again.stdout.splitlines() if line.startswith("{")]
    assert not [e for e in events if e["event"] == "task_started"]  # nothing ran again
    meta = results(tmp_path)["T-01"]
    assert meta["status"] == "completed" and "recovered from the log of attempt 2" in meta["reason"]
