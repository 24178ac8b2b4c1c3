"""Render once, before a run starts, each template the workspace overrides that the run renders
only after its tasks have started: a broken one then stops the run with nothing written (as
``templates.md`` promises), not after every task ran and was paid for.

The brief's template needs no trial: briefs are rendered before anything starts. A result file's
falls back to the packaged template with a notice, so that a finished task's work is kept.
"""

from __future__ import annotations

from orchestrator.output.final import build
from orchestrator.output.sections import status_blocks
from orchestrator.output.templates import Templates
from orchestrator.plan.model import Plan
from orchestrator.state.status import collect
from orchestrator.state.workspace import Workspace

STATUS_TEMPLATES = ("assignment.md.j2", "dependency_graph.md.j2")
FINAL_TEMPLATE = "final_output.md.j2"


def try_overrides(plan: Plan, workspace: Workspace) -> None:
    """Raise the ``PlanError`` that rendering an overridden status block or final output would
    raise later, rendering each with the workspace as it is now. Costs nothing without overrides."""
    templates = Templates.of(workspace)
    status = plan.settings.status_blocks and any(templates.overridden(name) for name in STATUS_TEMPLATES)
    final = templates.overridden(FINAL_TEMPLATE)
    if not status and not final:
        return
    views = collect(plan, workspace)
    if status:
        status_blocks(plan, views, templates)
    if final:
        build(plan, workspace, views)
