"""A rate-limited run loses nothing: the real ``claude`` CLI against a fake Messages API that turns
requests away with 429, as an API at its limit does.

Skipped, with the reason shown, only where the CLI is not installed (``tools/install-claude.sh``
needs npm); CI installs it and runs these.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fakeapi import FakeAnthropic, Reply, claude_env, find_claude

from orchestrator import documents

CLAUDE = find_claude()
pytestmark = [
    pytest.mark.claude,
    pytest.mark.skipif(CLAUDE is None, reason="claude CLI not installed: run tools/install-claude.sh (needs npm)"),
]

TASK = re.compile(r"Task ID\*\*: (T-\d+)")


def tool_results(body: dict[str, Any]) -> int:
    return sum(
        1
        for message in body.get("messages") or []
        if isinstance(message.get("content"), list)
        for block in message["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result"
    )


def test_a_rate_limited_run_loses_no_task_spends_no_retry_and_redoes_no_step(tmp_path: Path) -> None:
    # Each task runs a command, then its next request is turned away three times: claude re-sends
    # twice itself (CLAUDE_CODE_MAX_RETRIES=2) and gives up, and its attempt ends rate-limited.
    # With `retries: 0` such a task used to fail; now it waits for the API (spending no retry)
    # and its session goes on where it stopped: the command is not run again.
    refused: Counter[str] = Counter()

    def script(body: dict[str, Any]) -> Reply:
        found = TASK.search(json.dumps(body.get("messages")))
        task = found.group(1) if found else "?"
        if tool_results(body) == 0:
            return Reply.tool("Bash", {"command": f"echo {task} >> steps.txt", "description": "Record"})
        if refused[task] < 3:
            refused[task] += 1
            return Reply.rate_limited(retry_after=1)
        return Reply.say(f"{task} done")

    workspace = tmp_path / ".orchestrator"
    workspace.mkdir()
    (workspace / "master_plan.md").write_text(
        "---\nbackend: claude\nmax_parallel: 2\nretries: 0\nallowed_tools: [Bash]\ntimeout: 90\n---\n"
        "# Plan\n\n## Task Decomposition\n| Task ID | Description | Dependencies |\n|---|---|---|\n"
        "| T-01 | Record one step | None |\n| T-02 | Record another step | None |\n",
        encoding="utf-8",
    )
    assert CLAUDE is not None
    with FakeAnthropic(script) as api:
        env = claude_env(api.base_url, tmp_path / "claude-config")
        env.update(ORCHESTRATOR_CLAUDE_BIN=CLAUDE, HOME=str(tmp_path))
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator", "run", str(workspace), "--json"],
            env=env, capture_output=True, text=True, timeout=150,
        )  # fmt: skip
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    retried = [e for e in events if e["event"] == "task_retrying"]
    assert sorted(e["task"] for e in retried) == ["T-01", "T-02"]
    assert all(e["error_class"] == "rate_limit" and e["delay"] >= 1.0 for e in retried)
    for agent, task in (("agent-01", "T-01"), ("agent-02", "T-02")):
        document = documents.read_document(workspace / "results" / f"{agent}-result.md")
        assert document is not None
        meta, body = document
        assert meta["status"] == "completed" and meta["attempts"] == 2 and body.strip() == f"{task} done"
    # One line a task: the second attempt continued the session instead of starting over.
    assert sorted((tmp_path / "steps.txt").read_text().split()) == ["T-01", "T-02"]


def test_without_claude_s_own_retries_every_429_holds_the_backend_and_nothing_is_lost(tmp_path: Path) -> None:
    # CLAUDE_CODE_MAX_RETRIES=0: every 429 ends its attempt, and claude does not pass the API's
    # retry-after on. The API admits 60 requests a minute (a bucket holding 2); 10 one-request
    # tasks at max_parallel 5. The claude window is halved on the first burst, and after each 429
    # the runner sees, nothing of claude starts for at least a second (the least the API asks):
    # a window alone lets short attempts through too fast. (How few 429s that leaves is bench W7's
    # figure, not this test's: it depends on how fast the machine starts claude.)
    from fakeapi import RateLimit

    workspace = tmp_path / ".orchestrator"
    workspace.mkdir()
    rows = "".join(f"| T-{n:02d} | Say done | None |\n" for n in range(1, 11))
    (workspace / "master_plan.md").write_text(
        "---\nbackend: claude\nmax_parallel: 5\nretries: 0\ntimeout: 90\n"
        "env: {CLAUDE_CODE_MAX_RETRIES: '0'}\n---\n"
        "# Plan\n\n## Task Decomposition\n| Task ID | Description | Dependencies |\n|---|---|---|\n" + rows,
        encoding="utf-8",
    )
    assert CLAUDE is not None
    bucket = RateLimit(60.0, burst=2)
    with FakeAnthropic(lambda body: Reply.say("done"), rate_limit=bucket) as api:
        env = claude_env(api.base_url, tmp_path / "claude-config")
        env.update(ORCHESTRATOR_CLAUDE_BIN=CLAUDE, HOME=str(tmp_path))
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator", "run", str(workspace), "--json"],
            env=env, capture_output=True, text=True, timeout=150,
        )  # fmt: skip
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sum(1 for e in events if e["event"] == "task_completed") == 10  # nothing lost
    assert bucket.rejected, "the test's API refused nothing: it tests nothing"
    when = [(e["event"], datetime.fromisoformat(e["time"]).timestamp()) for e in events if "time" in e]
    limited = [t for kind, t in when if kind == "task_retrying"]
    starts = [t for kind, t in when if kind == "task_started"]
    assert limited
    for seen in limited:  # (the event times are to the millisecond)
        too_soon = [round(t - seen, 3) for t in starts if seen < t < seen + 0.995]
        assert not too_soon, f"claude attempts started {too_soon} s after a 429"
