"""The channels with the real ``claude`` CLI against the fake Messages API: a shell task's
discovery reaches the request of a claude task that starts later, and a claude agent calls the
channels with the command its prompt gives, from its Bash tool.

Skipped, with the reason shown, only where the CLI is not installed (CI installs it).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fakeapi import FakeAnthropic, Reply, claude_env, claude_missing, find_claude

from orchestrator.state import context, events
from orchestrator.state.workspace import Workspace

CLAUDE = find_claude()
pytestmark = [pytest.mark.claude, pytest.mark.skipif(CLAUDE is None, reason=claude_missing())]

HEADER = "---\nbackend: claude\nmax_parallel: 1\nretries: 0\ntimeout: 90\ninactivity_timeout: 60\n{settings}---\n"


def write_plan(root: Path, rows: str, details: str = "", settings: str = "") -> Workspace:
    workspace = root / ".orchestrator"
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "master_plan.md").write_text(
        HEADER.format(settings=settings) + "# Plan\n\n## Original Request\n> Test the channels\n\n"
        "## Task Decomposition\n| Task ID | Description | Dependencies | Backend |\n|---|---|---|---|\n"
        f"{rows}\n\n## Task Details\n{details}",
        encoding="utf-8",
    )
    return Workspace(workspace)


def environment(api: FakeAnthropic, tmp_path: Path) -> dict[str, str]:
    assert CLAUDE is not None
    config = tmp_path / "claude-config"
    config.mkdir(exist_ok=True)
    env = claude_env(api.base_url, config)
    env = {k: v for k, v in env.items() if not k.startswith("ORCHESTRATOR_") or k == "ORCHESTRATOR_TIMING"}
    env["ORCHESTRATOR_CLAUDE_BIN"] = CLAUDE
    env["HOME"] = str(tmp_path)
    return env


def run(tmp_path: Path, env: dict[str, str]) -> tuple[int, list[dict[str, Any]], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "run", str(tmp_path / ".orchestrator"), "--json"],
        env=env, capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    found = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc.returncode, found, proc.stdout + proc.stderr


def prompt_text(body: dict[str, Any]) -> str:
    """The text of the first user message of a request: the prompt the task was started with."""
    content = body["messages"][0]["content"]
    if isinstance(content, str):
        return content
    return "\n".join(block.get("text", "") for block in content if isinstance(block, dict))


def test_a_shell_discovery_changes_the_prompt_of_a_claude_task_that_starts_later(tmp_path: Path) -> None:
    rows = "| T-01 | Say hello | None | claude |\n| T-02 | Find | T-01 | shell |\n| T-03 | Use it | T-02 | claude |"
    script = '"$ORCHESTRATOR_PYTHON" -m orchestrator discover "$ORCHESTRATOR_TASK_ID" "DISCOVERY-7: pages hold 100"'
    workspace = write_plan(tmp_path, rows, f"\n### T-02 Find\n```bash\n{script}\n```\n")
    with FakeAnthropic([Reply.say("hello"), Reply.say("used it")]) as api:
        code, found, output = run(tmp_path, environment(api, tmp_path))
        first, later = (prompt_text(body) for body in api.main_requests)
    assert code == 0, output
    assert len(api.main_requests) == 2
    assert "DISCOVERY-7" not in first  # T-01 started before the discovery
    assert "## Discoveries so far" in later and "DISCOVERY-7: pages hold 100" in later
    assert "## Channels" in first and "-m orchestrator discover T-03" in later
    [event] = [e for e in events.read_all(workspace.events_file) if e["event"] == "discovered"]
    assert event["task"] == "T-02" and event["run"] is not None
    assert [e["event"] for e in found].count("task_completed") == 3


def test_a_claude_agent_calls_the_channels_with_the_command_its_prompt_gives(tmp_path: Path) -> None:
    """The agent runs, with its Bash tool, the share command exactly as its prompt spells it (from
    a directory of its own, with a PATH that has no orchestrator), and what it shared is there."""
    workspace = write_plan(tmp_path, "| T-01 | Share | None | claude |", settings="allowed_tools: [Bash]\n")
    called: list[str] = []

    def script(body: dict[str, Any]) -> Reply:
        if any(message["role"] == "assistant" for message in body["messages"]):
            return Reply.say("shared it")  # the tool call was made: its result follows it
        found = re.search(r'`([^`]+ share T-01 "<text>")`', prompt_text(body))
        assert found, prompt_text(body)
        command = found.group(1).replace("<text>", "shared from claude")
        called.append(command)
        where = 'echo "$ORCHESTRATOR_TASK_ID $ORCHESTRATOR_WORKSPACE" > env.txt'
        return Reply.tool("Bash", {"command": f"{where} && mkdir -p away && (cd away && PATH=/usr/bin:/bin {command})"})

    with FakeAnthropic(script) as api:
        code, _, output = run(tmp_path, environment(api, tmp_path))
    assert code == 0, output
    assert called and called[0].startswith(sys.executable)
    assert (tmp_path / "env.txt").read_text() == f"T-01 {workspace.root}\n"
    [entry] = context.read_kind(workspace, context.Kind.SHARE)
    assert (entry.task, entry.text) == ("T-01", "shared from claude")


def test_the_channel_commands_are_pre_approved_and_nothing_else_with_them(tmp_path: Path) -> None:
    """QA pass 3: under SKILL.md's own settings (acceptEdits, allowed_tools Read, Grep, Glob,
    Write) the discover command the prompt gives was denied, and the task failed as denied. An
    agent with a Bash tool has the channel commands pre-approved; any other command stays denied."""
    settings = 'permission_mode: acceptEdits\nallowed_tools: ["Read", "Grep", "Glob", "Write"]\n'
    workspace = write_plan(tmp_path, "| T-01 | Find | None | claude |", settings=settings)

    def script(body: dict[str, Any]) -> Reply:
        answers = sum(1 for message in body["messages"] if message["role"] == "assistant")
        if answers == 0:
            found = re.search(r'`([^`]+ discover T-01 "<text>")`', prompt_text(body))
            assert found, prompt_text(body)
            return Reply.tool("Bash", {"command": found.group(1).replace("<text>", "pages hold 100")})
        if answers == 1:
            # (not a file command such as `echo x > f` or `touch f`: acceptEdits runs those itself)
            return Reply.tool("Bash", {"command": 'python3 -c \'open("pwned.txt", "w")\''})
        return Reply.say("found it")

    with FakeAnthropic(script) as api:
        code, found, output = run(tmp_path, environment(api, tmp_path))
    [entry] = context.read_kind(workspace, context.Kind.DISCOVER)
    assert (entry.task, entry.text) == ("T-01", "pages hold 100")
    assert not (tmp_path / "pwned.txt").exists()
    [failed] = [e for e in found if e["event"] == "task_failed"]  # the other command was denied: not done
    assert "pwned.txt" in failed["reason"] and "discover" not in failed["reason"], output
    assert code == 1
