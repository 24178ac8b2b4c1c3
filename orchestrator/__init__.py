"""orchestrator: run a markdown plan of atomic tasks as real sub-agents, in parallel, in dependency order.

The public API: load a plan and look at its tasks, run it (``Runner``), the executors
a run can use, the words of its outcomes, and the errors it can raise. Everything else is
internal; docs/ARCHITECTURE.md says where it lives. The names that start a run are imported when
first used: a command that only reads a plan should not pay for anyio. Importing the package
imports the registries of the executors and the backends, which tell the plan layer their names
(``plan/kinds``): the composition root of the layers.
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING

# The registries of the backends and the executors, imported first so that every name (and each
# backend's Access presets) is in ``plan/kinds`` before any plan is read; each backend's and
# executor's module is imported when first used.
from orchestrator import backends as _backends  # noqa: F401
from orchestrator import lazy
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

# (the registries of the backends and the executors: see above)
from orchestrator.executors import registry as _executors  # noqa: F401
from orchestrator.plan import Plan, Task, parse_plan
from orchestrator.plan.settings import Settings
from orchestrator.state.workspace import Workspace, load_plan
from orchestrator.vocabulary import ErrorClass, ExitCode, TaskStatus

if TYPE_CHECKING:
    from orchestrator.executors import Executor, FakeExecutor, LocalExecutor
    from orchestrator.run import Runner, RunOptions, RunSummary

__all__ = [
    "AgentCallError",
    "BackendUnavailableError",
    "ErrorClass",
    "Executor",
    "ExitCode",
    "FakeExecutor",
    "LocalExecutor",
    "LockedError",
    "OrchestratorError",
    "Plan",
    "PlanError",
    "Problem",
    "RunOptions",
    "RunSummary",
    "Runner",
    "Settings",
    "Task",
    "TaskStatus",
    "UsageError",
    "Workspace",
    "WorkspaceError",
    "__version__",
    "load_plan",
    "parse_plan",
]

__getattr__ = lazy.exports(
    __name__,
    {
        "Executor": "orchestrator.executors",
        "FakeExecutor": "orchestrator.executors",
        "LocalExecutor": "orchestrator.executors",
        "RunOptions": "orchestrator.run",
        "RunSummary": "orchestrator.run",
        "Runner": "orchestrator.run",
    },
)
