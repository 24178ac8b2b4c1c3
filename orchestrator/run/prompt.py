"""What a dependent task receives from upstream: its brief, then upstream results inline, capped."""

from __future__ import annotations

from orchestrator.documents import read_body
from orchestrator.plan.model import Plan, Task
from orchestrator.state.workspace import Workspace


def build_prompt(plan: Plan, workspace: Workspace, task: Task, brief: str, cap: int) -> str:
    """The brief followed by each dependency's result body, sharing ``cap`` characters between them.

    Whatever does not fit is left in the result file, whose path is given so the agent can read it.
    """
    if not task.dependencies:
        return brief
    share = cap // len(task.dependencies) if cap else 0
    parts = [brief.rstrip(), "", "## Upstream results", ""]
    for dep in task.dependencies:
        path = workspace.result(plan.tasks[dep])
        body = read_body(path) or ""
        where = workspace.relative(path)
        parts.append(f"### {dep}: {plan.tasks[dep].title} (`{where}`)")
        parts.append("")
        if not body:
            parts.append("(no output)")
        elif len(body) <= share:
            parts.append(body)
        else:
            parts.append(body[:share].rstrip())
            parts.append(f"\n… {len(body) - share:,} more characters in `{where}`")
        parts.append("")
    return "\n".join(parts)
