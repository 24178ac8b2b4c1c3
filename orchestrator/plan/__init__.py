"""Plan in: master_plan.md parsed into a validated ``Plan`` of ``Task`` rows and its task graph.

Nothing here writes a file or starts a process; the layers above read plans through it. Its names
are imported when first used (PEP 562): a module that needs ``plan.model`` alone (the workspace's
paths, ``--version``) does not pay for the parser and markdown-it.
"""

from typing import TYPE_CHECKING

from orchestrator import lazy

if TYPE_CHECKING:
    from orchestrator.paths import PLAN_FILE
    from orchestrator.plan.config.settings import Settings
    from orchestrator.plan.identity import Book
    from orchestrator.plan.model import Plan, Task
    from orchestrator.plan.parser import parse_plan, read_plan

__all__ = ["PLAN_FILE", "Book", "Plan", "Settings", "Task", "parse_plan", "read_plan"]

__getattr__ = lazy.exports(
    __name__,
    {
        "Book": "orchestrator.plan.identity",
        "PLAN_FILE": "orchestrator.paths",
        "Plan": "orchestrator.plan.model",
        "Task": "orchestrator.plan.model",
        "parse_plan": "orchestrator.plan.parser",
        "read_plan": "orchestrator.plan.parser",
        "Settings": "orchestrator.plan.config.settings",
    },
)
