"""The agent conformance suite (tests/agentsuite.py) over the real codex CLI against a fake of its vendor's API."""

from __future__ import annotations

import pytest
from agentclis import CODEX
from agentsuite import AgentSuite

pytestmark = [pytest.mark.agents]


class TestCodex(AgentSuite):
    vendor = CODEX
