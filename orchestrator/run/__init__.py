"""Run: the loop that starts attempts in dependency order within limits, the pure decision of
what an outcome means (``decide``), admission, and what a run writes down.

``Runner`` is imported when first asked for: ``validate`` uses this package's
preflight checks and must not pay for anyio. So are ``decide`` and ``Decision``: ``status``
imports ``run/resume/freshness``, and the backends ``policy`` brings cost it 30 ms.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator import lazy

if TYPE_CHECKING:
    from orchestrator.machine.policy import Decision, decide
    from orchestrator.run.prepare import RunOptions
    from orchestrator.run.runner import Runner, RunSummary

__all__ = ["Decision", "RunOptions", "RunSummary", "Runner", "decide"]

__getattr__ = lazy.exports(
    __name__,
    {
        "Decision": "orchestrator.machine.policy",
        "decide": "orchestrator.machine.policy",
        "RunOptions": "orchestrator.run.prepare",
        "RunSummary": "orchestrator.run.runner",
        "Runner": "orchestrator.run.runner",
    },
)
