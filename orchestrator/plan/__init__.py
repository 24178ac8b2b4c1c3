"""Plan in: master_plan.md parsed into a validated ``Plan`` of ``Task`` rows and its task graph.

Nothing here writes a file or starts a process; the layers above read plans through it.
"""

from orchestrator.plan.identity import Book
from orchestrator.plan.model import PLAN_FILE, Plan, Task
from orchestrator.plan.parser import parse_plan, read_plan
from orchestrator.plan.settings import Settings

__all__ = ["PLAN_FILE", "Book", "Plan", "Settings", "Task", "parse_plan", "read_plan"]
