"""Lanes: the worktrees of attempts raced beside a task's own (``run/races/hedge``). A lane is a worktree
and branch of its own, ``<task>+<attempt>`` (no task id holds a ``+``), begun from the task's
branch; when its attempt wins, the task's branch is moved to its commit (what the stopped attempt
left there is dropped, never merged), and a lane, won or lost, is removed.

A runner killed mid-race leaves its lanes (``left``): the next run, once it has stopped their
attempts, removes those with nothing of their own and keeps every other, never merged, saying
where; ``cleanup`` (``Trees.prune``) does the same, a lane with work kept until the person
removes it.
"""

from __future__ import annotations

from orchestrator.git.repo import branch_exists, git
from orchestrator.git.treestate import raced_task
from orchestrator.git.worktrees import Trees, lane_removal


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

    def left(self) -> list[str]:
        """The lanes a race left whose runner died (their attempts stopped first: none runs now):
        each with nothing of its own removed; each other kept, never merged, in one line saying
        whose it is, where and how the person removes it."""
        said: list[str] = []
        for tree in self.trees.listing(lanes_only=True):
            if tree.state == "empty":
                self.drop(str(tree.task))
                continue
            owner, number = raced_task(tree.task), str(tree.task).partition("+")[2]
            where = f"{tree.path}" + (f" (branch {tree.branch})" if tree.branch else "")
            what = f"{tree.state}: kept, never merged — take what you need, then {lane_removal(tree)}"
            said.append(f"{owner}'s attempt {number}, raced when its runner died, left work in {where}, {what}")
        return said
