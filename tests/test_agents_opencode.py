"""The agent conformance suite (tests/agentsuite.py) over the real opencode CLI against a fake of its vendor's API."""

from __future__ import annotations

import pytest
from agentclis import OPENCODE
from agentsuite import AgentSuite

pytestmark = [pytest.mark.agents]


class TestOpencode(AgentSuite):
    vendor = OPENCODE
