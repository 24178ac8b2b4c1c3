"""Checks that need more than the plan file: backends exist and are configured, profiles exist."""

from __future__ import annotations

from orchestrator import backends
from orchestrator.errors import PlanError, Problem
from orchestrator.plan.model import Plan
from orchestrator.plan.profiles import Profiles
from orchestrator.plan.settings import suggest
from orchestrator.state.workspace import Workspace


def check_plan(plan: Plan, workspace: Workspace, profiles: Profiles | None = None) -> None:
    """Raise ``PlanError`` with every problem: unknown backends, a backend missing a setting, unknown profiles."""
    profiles = profiles or Profiles(workspace)
    problems = profiles.problems(plan)
    known = backends.names()
    file = plan.path.name
    seen: set[str] = set()
    for task in plan.tasks.values():
        settings = profiles.settings_for(plan, task)
        name = settings.backend
        if name not in known:
            line = task.line if task.backend else 1
            where = f"{task.id}: " if task.backend else ""
            problems.append(
                Problem(
                    file,
                    line,
                    f"{where}unknown backend '{name}'{suggest(name, known)}",
                    f"use one of: {', '.join(known)}",
                )
            )
            seen.add(name)
            continue
        if name in seen:
            continue
        seen.add(name)
        why = backends.get(name).check(settings)
        if why:
            problems.append(Problem(file, 1, f"backend '{name}': {why}", "set it in the frontmatter"))
    if problems:
        # The same problem for many tasks is said once.
        unique = list({str(p): p for p in problems}.values())
        raise PlanError(unique)
