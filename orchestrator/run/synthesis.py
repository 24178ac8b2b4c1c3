"""Aggregation by an agent: one more agent call reads the request and every result and writes a synthesis.

The synthesis goes above the per-task results in final_output.md; the deterministic concatenation
stays the default.
"""

from __future__ import annotations

import anyio

from orchestrator import backends
from orchestrator.backends.base import Job
from orchestrator.documents import read_output
from orchestrator.errors import AgentCallError, UsageError
from orchestrator.executors.base import Executor
from orchestrator.output.final import Synthesis
from orchestrator.plan.model import Plan, Task
from orchestrator.run.attempts import call_agent
from orchestrator.state.workspace import Workspace
from orchestrator.views.replay import collect
from orchestrator.vocabulary import TaskStatus

_INSTRUCTIONS = """You are the aggregator of a plan whose tasks were run by other agents in parallel.
Below are the original request and every task's result. Write the synthesis: one coherent answer to
the original request built from these results. Say plainly where results are missing, failed or
contradict each other; never invent results. Answer in markdown, without a top-level heading."""


def synthesis_prompt(plan: Plan, workspace: Workspace, cap: int) -> str:
    views = {v.id: v for v in collect(plan, workspace)}
    ids = plan.topological_order()
    share = max(1000, cap // max(1, len(ids)))
    parts = [_INSTRUCTIONS, "", "## Original request", "", plan.request or "(none given)", "", "## Results", ""]
    for task_id in ids:
        task = plan.tasks[task_id]
        view = views[task_id]
        path = workspace.result(task)
        parts.append(f"### {task_id}: {task.title} — {view.status}")
        if view.status == TaskStatus.COMPLETED:
            body = (read_output(path) or "").rstrip("\n")
            if len(body) > share:
                body = body[:share] + f"\n… more in `{workspace.relative(path)}`"
            parts.append(body or "(no output)")
        elif view.reason:
            parts.append(f"(not completed: {view.reason})")
        parts.append("")
    return "\n".join(parts)


def synthesize(plan: Plan, workspace: Workspace) -> Synthesis:
    """Run the aggregating agent once; raises ``AgentCallError`` if it fails."""
    return anyio.run(synthesize_async, plan, workspace)


async def synthesize_async(plan: Plan, workspace: Workspace, executor: Executor | None = None) -> Synthesis:
    """``synthesize`` on ``executor`` (the run's: a fake run's synthesis is made up too)."""
    settings = plan.settings
    backend = backends.get(settings.backend)
    if not backend.reads_prompt:
        raise UsageError(f"aggregation by an agent needs an agent backend ({backends.listing(backends.prompted())})")
    prompt = synthesis_prompt(plan, workspace, max(settings.input_cap * 5, 50_000))
    task = Task(id="aggregate", name="Synthesis", description=prompt, agent="aggregator")
    job = Job(task, settings, prompt, prompt, workspace.project_dir, workspace.root, 1)
    result, launch = await call_agent(backend, job, workspace.logs_dir / "aggregator", executor)
    if not result.completed:
        written = [path for path in (launch.stderr, launch.stdout) if path.exists()]  # (made by a first byte)
        see = f" (see {', '.join(workspace.relative(path) for path in written)})" if written else ""
        raise AgentCallError(f"the aggregating agent failed: {result.message}{see}")
    tokens = sum(result.tokens.values()) if result.tokens else None
    return Synthesis(result.text.strip(), result.cost_usd, tokens)
