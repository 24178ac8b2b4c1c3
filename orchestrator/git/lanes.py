"""Lanes: the worktrees of attempts raced beside a task's own (``run/races/hedge``). A lane is a worktree
and branch of its own, ``<task>+<attempt>`` (no task id holds a ``+``), begun from the task's
branch; when its attempt wins, the task's branch is moved to its commit (what the stopped attempt
left there is dropped, never merged), and a lane, won or lost, is removed.
"""

from __future__ import annotations

from orchestrator.git.repo import branch_exists, git
from orchestrator.git.worktrees import Trees


def lane(task_id: str, attempt: int) -> str:
    """The name of attempt ``attempt``'s lane beside ``task_id``'s own worktree: ``T-01+3``."""
    return f"{task_id}+{attempt}"


class Lanes:
    """The lanes of one workspace's worktrees."""

    def __init__(self, trees: Trees) -> None:
        self.trees = trees

    def adopt(self, task_id: str, name: str, tip: str) -> None:
        """Lane ``name``'s attempt won: ``task_id``'s branch moved to its commit ``tip``, the lane removed."""
        git(["reset", "-q", "--hard", tip], self.trees.path(task_id))
        self.drop(name)

    def drop(self, name: str) -> None:
        """Lane ``name``'s worktree and branch removed: its attempt lost, its work is never merged."""
        trees = self.trees
        path = trees.path(name)
        if path.exists():
            git(["worktree", "remove", "--force", "--force", str(path)], trees.repo, check=False)
        git(["worktree", "prune"], trees.repo, check=False)
        if branch_exists(trees.repo, trees.branch(name)):
            git(["branch", "-q", "-D", trees.branch(name)], trees.repo, check=False)
