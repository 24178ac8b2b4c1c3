"""Check, before a run starts, each template the workspace overrides that the run renders only
after its tasks have started: a broken one then stops the run with nothing written (as
``templates.md`` promises), not after every task ran and was paid for.

Checked without rendering: the template compiles, and uses no variable it is not given (a
misspelt name). What it does with the values cannot be known before the run: a template that
takes ``completed | last`` is fine once a task has completed, and so is not refused before.
The brief's template needs no check: briefs are rendered before anything starts. A result file's
falls back to the packaged template with a notice, so that a finished task's work is kept.
"""

from __future__ import annotations

from orchestrator.output import final, sections
from orchestrator.output.templates import Templates
from orchestrator.plan.model import Plan
from orchestrator.state.workspace import Workspace

FINAL_TEMPLATE = "final_output.md.j2"


def try_overrides(plan: Plan, workspace: Workspace) -> None:
    """Raise the ``PlanError`` of an overridden status-block or final-output template that does
    not compile or names a variable it is not given. Costs nothing without overrides."""
    templates = Templates.of(workspace)
    late = dict(sections.GIVEN) if plan.settings.status_blocks else {}
    late[FINAL_TEMPLATE] = final.GIVEN
    for name, given in late.items():
        if templates.overridden(name):
            templates.check_names(name, given)
