"""The status blocks of master_plan.md: a table of every task's state, and the task graph.

Their text comes from ``assignment.md.j2`` and ``dependency_graph.md.j2``; where they go in the
file, and how the file is rewritten without losing a person's edit, is ``state.planfile``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.output.templates import Renders, Templates
from orchestrator.output.views import MERMAID_MAX_TASKS, mermaid, simulated_mark, status_label, summary_line
from orchestrator.plan.config.settings import format_duration
from orchestrator.plan.model import Plan
from orchestrator.state import planfile
from orchestrator.state.status import TaskView, counts
from orchestrator.state.workspace import Workspace
from orchestrator.views.replay import collect

# What each template of the status blocks is given (``output.trial`` checks an override uses no other name).
GIVEN = {"assignment.md.j2": ("rows", "summary"), "dependency_graph.md.j2": ("mermaid",)}


def status_blocks(plan: Plan, views: Sequence[TaskView], templates: Renders) -> list[planfile.Block]:
    """The two tool-written blocks of master_plan.md, as they are for ``views``."""
    rows = [
        {
            "id": v.id,
            "agent": v.agent,
            "label": status_label(v)
            + (f" ({v.run_attempts} attempts)" if v.run_attempts > 1 else "")
            + simulated_mark(v.simulated),
            "start": _clock(v.started),
            "end": _clock(v.finished),
            "duration": format_duration(v.duration) if v.duration is not None else "-",
            "cost": f"${v.cost_usd:.4f}" if v.cost_usd is not None else "-",
        }
        for v in views
    ]
    table = templates.render("assignment.md.j2", rows=rows, summary=summary_line(views, counts(views)))
    graph = templates.render("dependency_graph.md.j2", mermaid=mermaid(plan, views, limit=MERMAID_MAX_TASKS))
    return [planfile.Block("status", "Agent Assignment", table), planfile.Block("graph", "Dependency Graph", graph)]


@dataclass(frozen=True, slots=True)
class Rendered:
    """The status blocks as rendered for ``views``, kept to be written later (``render`` renders
    them before it writes anything, so that a broken template writes nothing) and used then as
    long as the workspace still says the same: rendered once, not twice (80 ms at 10,000 tasks)."""

    views: list[TaskView]
    blocks: list[planfile.Block]


def render_status(plan: Plan, workspace: Workspace, views: list[TaskView] | None = None) -> Rendered:
    """The status blocks for ``views`` (the workspace as it is now: ``run/resume/freshness.current_views``)."""
    if views is None:
        views = collect(plan, workspace)
    return Rendered(views, status_blocks(plan, views, Templates.of(workspace)))


def _clock(stamp: str | None) -> str:
    if not stamp:
        return "-"
    return stamp.replace("T", " ")[:19]


def update_plan_file(
    plan: Plan,
    workspace: Workspace,
    views: Sequence[TaskView] | None = None,
    *,
    durable: bool = True,
    rendered: Rendered | None = None,
) -> bool:
    """Put the status blocks into master_plan.md as it is on disk now (a person's edits since the
    plan was loaded are kept); whether the file changed. Raises ``planfile.PlanFileUnreadable``
    when the file is not UTF-8 at the moment. A plan with ``status_blocks: false`` is left alone.
    ``rendered``: blocks rendered earlier, used if ``views`` (read now) still say the same.
    Pass ``views`` from ``run/resume/freshness.current_views`` for the blocks to tell which completed
    tasks are out of date (this layer cannot: ``collect`` alone does not)."""
    if not plan.settings.status_blocks:
        return False
    if views is None:
        views = collect(plan, workspace)
    if rendered is not None and rendered.views == list(views):
        blocks = rendered.blocks
    else:
        blocks = status_blocks(plan, views, Templates.of(workspace))
    return planfile.rewrite_blocks(workspace.plan_file, blocks, durable=durable)
