"""The agent conformance suite (tests/agentsuite.py) over the real claude CLI against a fake of its vendor's API."""

from __future__ import annotations

import pytest
from agentclis import CLAUDE, CLAUDE_OLDEST
from agentsuite import AgentSuite, ResumedCost

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
