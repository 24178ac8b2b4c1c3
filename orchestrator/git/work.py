"""``Work``: what one attempt in a worktree left on its task's branch. Its own module, importing
nothing, because every ``ProcessRun`` may carry one (``executors.base``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Work:
    """What a task's attempt left on its branch: recorded in its result file."""

    branch: str
    commit: str | None
    diffstat: str  # ``git diff --stat`` of the branch since it left the integration branch
    problem: str | None = None  # why its work could not be committed (it is still in the worktree)
    unresolved: tuple[str, ...] = ()  # a merge left in conflict: files still holding git's markers
    strayed: bool = False  # the attempt left its worktree off its branch, on work the branch cannot take
