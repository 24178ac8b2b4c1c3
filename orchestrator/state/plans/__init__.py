"""A workspace's plan: assembled (``loading``: the plan's file read with what the workspace keeps
for it), and what it keeps: each task's agent id (``identity``) and the parameters' values the
last runs gave (``params``)."""

from orchestrator.state.plans.loading import load_plan, plan_of

__all__ = ["load_plan", "plan_of"]
