"""orchestrator: run a markdown plan of atomic tasks as real sub-agents, in parallel, in dependency order.

The public API is small: load a plan, look at its tasks, and the errors it can raise.
"""

from __future__ import annotations

__version__ = "0.1.0"

from orchestrator.errors import (
    AgentCallError,
    BackendUnavailableError,
    LockedError,
    OrchestratorError,
    PlanError,
    Problem,
    UsageError,
    WorkspaceError,
)
from orchestrator.plan import Plan, Task, parse_plan
from orchestrator.plan.settings import Settings
from orchestrator.state.workspace import Workspace, load_plan

__all__ = [
    "AgentCallError",
    "BackendUnavailableError",
    "LockedError",
    "OrchestratorError",
    "Plan",
    "PlanError",
    "Problem",
    "Settings",
    "Task",
    "UsageError",
    "Workspace",
    "WorkspaceError",
    "__version__",
    "load_plan",
    "parse_plan",
]
