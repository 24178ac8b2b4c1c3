"""The agent conformance suite (tests/agentsuite.py) over the real gemini CLI against a fake of its vendor's API."""

from __future__ import annotations

import pytest
from agentclis import GEMINI
from agentsuite import AgentSuite

# (a hang guard: an orchestrator run of a slow-starting CLI under load, two in some tests, and opencode
# backing off a quota for 62 s before it gives up)
pytestmark = [pytest.mark.agents, pytest.mark.timeout(480)]


class TestGemini(AgentSuite):
    vendor = GEMINI
