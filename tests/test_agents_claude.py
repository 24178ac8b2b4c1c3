"""The agent conformance suite (tests/agentsuite.py) over the real claude CLI against a fake of its vendor's API."""

from __future__ import annotations

import pytest
from agentclis import CLAUDE, CLAUDE_OLDEST
from agentsuite import AgentSuite, ResumedCost
from agentwalls import Tools, WallsSuite
from fakeapi import Reply

# (a hang guard: an orchestrator run of a slow-starting CLI under load, two in some tests, and opencode
# backing off a quota for 62 s before it gives up)
pytestmark = [pytest.mark.agents, pytest.mark.timeout(480)]


class TestClaude(AgentSuite):
    vendor = CLAUDE


class TestOldestClaude(ResumedCost):
    """claude 2.1.197, the oldest the backend accepts: up to 2.1.276 a resumed invocation's
    ``total_cost_usd`` is its own cost, not the session's running total (``backends/claude.py``
    reads the version from ``system/init``)."""

    vendor = CLAUDE_OLDEST


class TestClaudeWalls(WallsSuite):
    """Its file tools are denied by its rules (``permissions.deny``), in the mode that checks
    nothing else (``bypassPermissions``); its commands, pre-approved under ``Access: edit``
    (``allowed_tools: [Bash]``: no rule reads their paths), run in its sandbox, whose file system
    is read-only there."""

    vendor = CLAUDE
    tools = Tools(
        write=lambda path, text: Reply.tool("Write", {"file_path": path, "content": text}),
        run=lambda command: Reply.tool("Bash", {"command": command}),
        edit={"permission_mode": "bypassPermissions", "env": '{IS_SANDBOX: "1"}'},
        shell={"allowed_tools": "[Bash]"},
        edit_access="",
    )
