"""The agent conformance suite (tests/agentsuite.py) over the real gemini CLI against a fake of its vendor's API."""

from __future__ import annotations

import pytest
from agentclis import GEMINI
from agentsuite import AgentSuite

pytestmark = [pytest.mark.agents]


class TestGemini(AgentSuite):
    vendor = GEMINI
