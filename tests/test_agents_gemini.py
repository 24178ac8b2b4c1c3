"""The agent conformance suite (tests/agentsuite.py) over the real gemini CLI against a fake of its vendor's API."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from agentclis import GEMINI, required
from agentsuite import AgentSuite, result, run, write_plan
from agentwalls import Tools, WallsSuite
from fakeapi import Reply

# (a hang guard: an orchestrator run of a slow-starting CLI under load, two in some tests, and opencode
# backing off a quota for 62 s before it gives up)
pytestmark = [pytest.mark.agents, pytest.mark.timeout(480)]


class TestGemini(AgentSuite):
    vendor = GEMINI


def test_the_thinking_is_counted_as_output(tmp_path: Path) -> None:
    """The API bills the model's thinking (``thoughtsTokenCount``) as output beside its answer
    (``candidatesTokenCount``); gemini's stats leave it out of ``output_tokens`` but keep it in
    ``total_tokens``: the task records all of it, once, as output."""
    suite = TestGemini()
    binary = suite.vendor.binary()
    if binary is None:
        if required():
            pytest.fail(suite.vendor.missing())
        pytest.skip(suite.vendor.missing())
    notes = suite.notes(tmp_path)
    write_plan(tmp_path, suite.vendor, ["| T-01 | Read notes.txt and tell the secret word | None |"])
    script = [
        replace(suite.vendor.read(notes), thought_tokens=7),
        Reply.say("The secret word is forty-two.", thought_tokens=5),
    ]
    with suite.vendor.fake(script) as api:
        code, events, stderr = run(tmp_path, suite.environment(api, tmp_path, binary))
        given, taken = api.billed
    assert code == 0, (events, stderr)
    meta, _ = result(tmp_path)
    assert meta["status"] == "completed", meta
    assert meta["tokens"]["output"] == taken and sum(meta["tokens"].values()) == given + taken, (
        meta["tokens"],
        given,
        taken,
    )


class TestGeminiWalls(WallsSuite):
    """Its file tools are denied by a policy of its own (``--admin-policy``) under ``Access:
    edit`` (``auto_edit``); its shell tool, offered only in ``yolo``, which no rule of gemini's
    holds, runs behind bubblewrap's walls (``backends/fence``)."""

    vendor = GEMINI
    tools = Tools(
        write=lambda path, text: Reply.tool("write_file", {"file_path": path, "content": text}),
        run=lambda command: Reply.tool("run_shell_command", {"command": command}),
        edit={},
        shell={"permission_mode": "yolo"},
        shell_access="",
    )


def test_its_policy_refuses_a_push_in_a_worktree_before_git_runs(tmp_path: Path) -> None:
    """Its own rule (``--admin-policy``'s ``commandPrefix``) refuses ``git push`` in a worktree:
    the answer its model reads is the policy's, not git's (the push never ran)."""
    from orchestrator.backends.gemini import DELIVERED
    from orchestrator.git.remote import NOWHERE

    suite = TestGeminiWalls()
    binary = suite.vendor.binary()
    if binary is None:
        if required():
            pytest.fail(suite.vendor.missing())
        pytest.skip(suite.vendor.missing())
    suite.test_in_a_worktree_its_shell_tool_pushes_nothing_and_the_task_is_not_done(tmp_path, binary)
    log = (tmp_path / "project" / ".orchestrator" / "logs" / "agent-01.attempt-1.out").read_text(encoding="utf-8")
    assert DELIVERED in log and NOWHERE not in log, log[-3000:]
