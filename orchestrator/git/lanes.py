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

from pathlib import Path

from orchestrator.git.repo import branch_exists, git, identity
from orchestrator.git.treestate import raced_task
from orchestrator.git.worktrees import Trees, lane_removal


def lane(task_id: str, attempt: int) -> str:
    """The name of attempt ``attempt``'s lane beside ``task_id``'s own worktree: ``T-01+3``."""
    return f"{task_id}+{attempt}"


class Lanes:
    """The lanes of one workspace's worktrees."""

    def __init__(self, trees: Trees) -> None:
        self.trees = trees

    def adopt(self, task_id: str, name: str, tip: str, lost: int) -> str | None:
        """Lane ``name``'s attempt won: ``task_id``'s branch moved to its commit ``tip``, the lane
        removed. What the losing attempt ``lost`` left in the task's worktree, committed or not (a
        new file too), is kept on a ref of its own, never merged, and the worktree left clean: the
        next attempt there would commit it as "work left by an interrupted attempt". That ref's
        name, when there was anything to keep."""
        path = self.trees.path(task_id)
        kept = keep_lost(path, f"refs/orchestrator/lost/{task_id}/attempt-{lost}", f"{task_id} attempt {lost}, lost")
        git(["reset", "-q", "--hard", tip], path)
        git(["clean", "-q", "-f", "-d"], path)  # (its untracked files: on the ref above, never merged)
        self.drop(name)
        return kept

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


def keep_lost(tree: Path, ref: str, message: str) -> str | None:
    """Everything in ``tree`` that differs from its HEAD (changed, new, deleted files; what
    ``.gitignore`` ignores aside), committed on ``ref`` through an index of its own: nothing in the
    tree, its index or its branch changes. ``ref``, or ``None`` when there was nothing to keep."""
    import os
    import tempfile

    if not git(["status", "--porcelain", "--untracked-files=all"], tree).out.strip():
        return None
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "GIT_INDEX_FILE": os.path.join(scratch, "index")}
        git(["read-tree", "HEAD"], tree, env=env)
        git(["add", "-A"], tree, env=env)
        written = git(["write-tree"], tree, env=env).out.strip()
        commit = git([*identity(tree), "commit-tree", written, "-p", "HEAD", "-m", message], tree).out.strip()
    git(["update-ref", ref, commit], tree)
    return ref
