"""Which tasks may be raced (a straggler's hedge, best of N): work that is safe to do twice at
once. Apart from ``run/races/hedge``, which runs the races, so that ``validate`` may say which tasks
may be raced without loading the run's machinery."""

from __future__ import annotations

from orchestrator import backends
from orchestrator.errors import OrchestratorError
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.model import Plan, Task

_SHELL = ("shell", "command")


def refusal(plan: Plan, task: Task, settings: Settings, *, field: str = "hedge") -> str | None:
    """Why ``task`` may not be raced (``None``: it may, when its ``field``, ``hedge`` or ``best_of``,
    is set): work that is not safe to do twice at once."""
    if settings.backend in _SHELL:
        kind = plan.type_of(task)
        own = task.hedge_set if field == "hedge" else task.best_of is not None
        if not (own or (kind is not None and kind.sets(field))):
            cell = "Hedge" if field == "hedge" else "Best of"
            return f"a shell task is raced only when its own {cell} cell or type says so"
        return None
    if settings.isolation == "worktree":
        return None
    try:
        read_only = backends.get(settings.backend).read_only(settings)
    except OrchestratorError:
        read_only = False
    return None if read_only else "it may edit files outside a worktree (two attempts would edit the same files)"
