"""A worktree's state, as ``orchestrator worktrees`` lists it and ``Trees.prune`` judges it: what
it holds against the integration branch (a raced lane, ``git/lanes``: against its task's branch
first). Apart from ``Trees``, which makes, finds and prunes the worktrees: this only reads them.

    missing     its directory is gone
    conflicted  a merge left to resolve (or its branch would conflict with the integration branch)
    dirty       uncommitted changes
    ignored     files git ignores, never committed nor merged
    empty       nothing of its own (a raced lane: nothing beyond its task's branch)
    merged      every commit of it is in the integration branch
    clean       committed, not merged yet
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from orchestrator.git.repo import branch_exists, git, is_ancestor, merge_conflicts, merging, rev, status


def raced_task(name: str | None) -> str | None:
    """The task whose raced lane (``git/lanes``) the worktree ``name`` is: ``T-01+2``, ``T-01``;
    None for a task's own worktree (no task id holds a ``+``)."""
    return name.partition("+")[0] if name and "+" in name else None


class States:
    """The states of one workspace's worktrees: ``branch`` names a task's branch."""

    def __init__(self, repo: Path, integration: str, branch: Callable[[str], str]) -> None:
        self.repo, self.integration, self.branch = repo, integration, branch

    @functools.cached_property
    def line(self) -> set[str]:
        """The commits of the integration branch's own line (first parents): a task branch whose tip
        is one of them never had a commit of its own (it was made there and nothing was committed:
        a task still running, or one that changed nothing), where a merged one is reached through
        a merge."""
        done = git(["rev-list", "--first-parent", self.integration, "--"], self.repo, check=False)
        return set(done.out.split()) if done.ok else set()

    def of(self, path: Path, branch: str | None, task: str | None) -> tuple[str, tuple[str, ...]]:
        """The worktree's state, and the files there git ignores: a task's, which no commit takes
        (those ``verify`` leaves in the integration worktree are not counted). They are work not
        merged: a worktree holding them is ``ignored`` (when not conflicted or dirty already)."""
        if not path.is_dir():
            return "missing", ()
        changed, ignored = status(path)  # (one call: changes and ignored files both)
        left = tuple(ignored) if task is not None else ()
        if merging(path):
            return "conflicted", left
        if changed:
            return "dirty", left
        if left:
            return "ignored", left
        if task is None or branch is None:
            return "clean", left
        owner = raced_task(task)  # a raced lane: nothing of its own when its task's branch holds all it has
        mine = self.branch(owner) if owner is not None else None
        if mine is not None and branch_exists(self.repo, mine) and is_ancestor(path, "HEAD", mine):
            return "empty", left
        if is_ancestor(path, "HEAD", self.integration):
            return "empty" if rev(path, "HEAD") in self.line else "merged", left
        base = git(["merge-base", self.integration, "HEAD"], path, check=False)
        if base.ok and git(["diff", "--quiet", base.out.strip(), "HEAD", "--"], path, check=False).code == 0:
            return "empty", left  # (the integration branch merged in before an attempt, and nothing of its own)
        return "conflicted" if merge_conflicts(path, self.integration, "HEAD") else "clean", left
