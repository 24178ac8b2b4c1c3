"""The agent conformance suite (tests/agentsuite.py) over the real opencode CLI against a fake of its vendor's API."""

from __future__ import annotations

import pytest
from agentclis import OPENCODE
from agentsuite import AgentSuite
from agentwalls import Tools, WallsSuite
from fakeapi import Reply

# (a hang guard: an orchestrator run of a slow-starting CLI under load, two in some tests, and opencode
# backing off a quota for 62 s before it gives up)
pytestmark = [pytest.mark.agents, pytest.mark.timeout(480)]


class TestOpencode(AgentSuite):
    vendor = OPENCODE


def _patch(path: str, text: str) -> Reply:
    lines = "".join(f"+{line}\n" for line in text.splitlines())
    return Reply.tool("apply_patch", {"patchText": f"*** Begin Patch\n*** Add File: {path}\n{lines}*** End Patch"})


class TestOpencodeWalls(WallsSuite):
    """Under ``Access: edit`` its tools (bash with no rule of opencode's to hold it) run behind
    bubblewrap's walls (``backends/fence``): its patches, and its commands."""

    vendor = OPENCODE
    tools = Tools(
        write=_patch,
        run=lambda command: Reply.tool("bash", {"command": command, "description": "as asked"}),
        edit={},
        shell={},
    )
