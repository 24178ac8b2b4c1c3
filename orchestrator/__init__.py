"""orchestrator: run a markdown plan of atomic tasks as real sub-agents, in parallel, in dependency order.

The public API: load a plan and look at its tasks, run it (``Runner``), the executors
a run can use, the words of its outcomes, and the errors it can raise. Everything else is
internal; docs/ARCHITECTURE.md says where it lives. Every name but ``__version__`` is imported
when first used (PEP 562): importing the package, as every command does before it runs, costs
nothing beyond what that command needs (``--version`` needs no plan, ``status`` no anyio), but
for the registries of the executors and the backends, which tell the plan layer their names
(``plan/config/kinds``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# The registries of the backends and the executors, imported first so that every name (and each
# backend's Access presets) is in ``plan/config/kinds`` before any plan is read (the composition root of
# the layers); each backend's and executor's module is imported when first used.
from orchestrator import backends as _backends  # noqa: F401
from orchestrator import lazy
from orchestrator.executors import registry as _executors  # noqa: F401
from orchestrator.version import __version__

if TYPE_CHECKING:
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
    from orchestrator.executors import Executor, FakeExecutor, LocalExecutor
    from orchestrator.plan import Plan, Task, parse_plan
    from orchestrator.plan.config.settings import Settings
    from orchestrator.run import Runner, RunOptions, RunSummary
    from orchestrator.state.plans import load_plan
    from orchestrator.state.workspace import Workspace
    from orchestrator.vocabulary import ErrorClass, ExitCode, TaskStatus

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
        "AgentCallError": "orchestrator.errors",
        "BackendUnavailableError": "orchestrator.errors",
        "LockedError": "orchestrator.errors",
        "OrchestratorError": "orchestrator.errors",
        "PlanError": "orchestrator.errors",
        "Problem": "orchestrator.errors",
        "UsageError": "orchestrator.errors",
        "WorkspaceError": "orchestrator.errors",
        "ErrorClass": "orchestrator.vocabulary",
        "ExitCode": "orchestrator.vocabulary",
        "TaskStatus": "orchestrator.vocabulary",
        "Plan": "orchestrator.plan",
        "Task": "orchestrator.plan",
        "parse_plan": "orchestrator.plan",
        "Settings": "orchestrator.plan.config.settings",
        "Workspace": "orchestrator.state.workspace",
        "load_plan": "orchestrator.state.plans",
        "Executor": "orchestrator.executors",
        "FakeExecutor": "orchestrator.executors",
        "LocalExecutor": "orchestrator.executors",
        "RunOptions": "orchestrator.run",
        "RunSummary": "orchestrator.run",
        "Runner": "orchestrator.run",
    },
)
