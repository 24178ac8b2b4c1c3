"""The agent conformance suite (tests/agentsuite.py) over the real codex CLI against a fake of its vendor's API,
and what codex alone does: its sandbox's refusals, and its shell's start-up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from agentclis import CODEX
from agenthome import hostile_start_up
from agentsuite import Agent, AgentSuite, result, run, write_plan
from agentwalls import Tools, WallsSuite
from fakeapi import Reply

# (a hang guard: an orchestrator run of a slow-starting CLI under load, two in some tests, and opencode
# backing off a quota for 62 s before it gives up)
pytestmark = [pytest.mark.agents, pytest.mark.timeout(480)]


class TestCodex(AgentSuite):
    vendor = CODEX


# codex refuses a command its sandbox stopped within 150 ms of its start before the command's item
# begins (no item: the session file tells it); a slower one it begins, and it ends "failed". A
# command that sleeps first is always the slower kind, as any command is on a loaded machine.
SLOW = "sleep 0.5; "


def _commands(log: Path) -> list[dict[str, object]]:
    """The commands codex's JSON says completed (ran, or declined)."""
    events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    items = [event.get("item") for event in events if event.get("type") == "item.completed"]
    return [item for item in items if isinstance(item, dict) and item.get("type") == "command_execution"]


class TestCodexSandbox(Agent):
    vendor = CODEX

    def test_a_write_the_read_only_sandbox_stopped_after_it_began_fails_the_task_as_denied(
        self, tmp_path: Path, binary: str
    ) -> None:
        """Under ``Access: read`` the model runs ``touch``, the sandbox stops it ("Read-only file
        system", exit 1, an item that ran ``failed``), and the model says it made the file: denied,
        as a write refused before its item began is."""
        made = tmp_path / "made_ro.txt"
        write_plan(tmp_path, self.vendor, ["| T-01 | Create made_ro.txt | None | read |"], access=True)
        script = [
            Reply.tool("exec_command", {"cmd": f"{SLOW}touch {made.name}"}),
            Reply.say("I created made_ro.txt. Done."),
        ]
        with self.vendor.fake(script) as api:
            code, events, stderr = run(tmp_path, self.environment(api, tmp_path, binary))
        ran = _commands(tmp_path / ".orchestrator" / "logs" / "agent-01.attempt-1.out")
        assert [(c["status"], c["exit_code"]) for c in ran] == [("failed", 1)], ran  # the path this test is about
        assert "Read-only file system" in str(ran[0]["aggregated_output"])
        assert code == 1, (events, stderr)
        meta, _ = result(tmp_path)
        assert meta["status"] == "failed" and meta["error_class"] == "denied", meta
        assert meta["permission_denials"] == 1 and f"touch {made.name}" in meta["reason"], meta
        assert not made.exists()

    @pytest.mark.parametrize(
        ("access", "command"),
        [
            pytest.param("read", "grep -q absent notes.txt", id="read-only-grep-finds-nothing"),
            pytest.param("edit", "touch made.txt && false", id="writable-exit-1"),
        ],
    )
    def test_a_command_that_failed_on_its_own_is_no_refusal(
        self, tmp_path: Path, binary: str, access: str, command: str
    ) -> None:
        self.notes(tmp_path)
        write_plan(tmp_path, self.vendor, [f"| T-01 | Look | None | {access} |"], access=True)
        script = [Reply.tool("exec_command", {"cmd": SLOW + command}), Reply.say("It exited 1, as expected. Done.")]
        with self.vendor.fake(script) as api:
            code, events, stderr = run(tmp_path, self.environment(api, tmp_path, binary))
        ran = _commands(tmp_path / ".orchestrator" / "logs" / "agent-01.attempt-1.out")
        assert [(c["status"], c["exit_code"]) for c in ran] == [("failed", 1)], ran
        assert code == 0, (events, stderr)
        meta, _ = result(tmp_path)
        assert meta["status"] == "completed" and "permission_denials" not in meta, meta


class TestCodexShell(Agent):
    vendor = CODEX

    def test_the_users_shell_start_up_never_reaches_its_commands(
        self, tmp_path: Path, binary: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """codex starts a login shell of $HOME once a session and runs each command in a bash that
        reads $BASH_ENV: the test's codex has a HOME of its own and none of those variables."""
        marker = tmp_path / "marker"
        hostile_start_up(tmp_path / "user", marker, monkeypatch)
        write_plan(tmp_path, self.vendor, ["| T-01 | Say hi | None |"])
        with self.vendor.fake([Reply.tool("exec_command", {"cmd": "echo hi"}), Reply.say("It said hi.")]) as api:
            code, events, stderr = run(tmp_path, self.environment(api, tmp_path, binary))
        assert code == 0, (events, stderr)
        ran = _commands(tmp_path / ".orchestrator" / "logs" / "agent-01.attempt-1.out")
        assert [(c["status"], c["aggregated_output"]) for c in ran] == [("completed", "hi\n")], ran
        assert not marker.exists(), marker.read_text()


def _patch(path: str, text: str) -> Reply:
    lines = "".join(f"+{line}\n" for line in text.splitlines())
    return Reply.tool("apply_patch", {"input": f"*** Begin Patch\n*** Add File: {path}\n{lines}*** End Patch\n"})


class TestCodexWalls(WallsSuite):
    """Its patches and its commands run in a permission profile of its own whose sandbox holds
    the walls read-only: under ``Access: edit`` (``workspace-write``), and with no sandbox of
    codex's at all (``permission_mode: danger-full-access``)."""

    vendor = CODEX
    tools = Tools(
        write=_patch,
        run=lambda command: Reply.tool("exec_command", {"cmd": SLOW + command}),
        edit={},
        shell={"permission_mode": "danger-full-access"},
        shell_access="",
    )
