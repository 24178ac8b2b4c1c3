"""What a dependent task receives from upstream: its brief, then upstream results inline, capped."""

from __future__ import annotations

from orchestrator.documents import read_body
from orchestrator.plan.model import Plan, Task
from orchestrator.state.workspace import Workspace


def permissions_section(powers: str) -> str:
    """What an agent is told of its permissions: what it may do, and to say what it could not."""
    return (
        "## Your permissions\n\n"
        f"You run headless, with {powers}.\n"
        "A tool call outside these is denied. If a denied call keeps you from part of the task, "
        "say so in your answer: never report work as done that a denied call did not do.\n"
    )


def build_prompt(
    plan: Plan, workspace: Workspace, task: Task, brief: str, cap: int, permissions: str | None = None
) -> str:
    """The brief, what the agent may do (``permissions``: the backend's words, for agents), then
    each dependency's result body, sharing ``cap`` characters between them.

    Whatever does not fit is left in the result file, whose path is given so the agent can read it.
    The permissions go in the prompt, not the brief file: they follow from the settings, which a
    result's fingerprint covers already.
    """
    if permissions:
        brief = brief.rstrip() + "\n\n" + permissions_section(permissions)
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
