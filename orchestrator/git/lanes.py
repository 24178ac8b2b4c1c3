"""Lanes: the worktrees of attempts raced beside a task's own (``run/races/hedge``). A lane is a worktree
and branch of its own, ``<task>+<attempt>`` (no task id holds a ``+``), begun from the task's
branch; when its attempt wins, the task's branch is moved to its commit (what the stopped attempt
left there is dropped, never merged), and a lane, won or lost, is removed.

A runner killed mid-race leaves its lanes (``left``): the next run, once it has stopped their
attempts, removes those with nothing of their own and keeps every other, never merged, saying
where; ``cleanup`` (``Trees.prune``) does the same, a lane with work kept until the person
removes it.

It may also leave the task's own branch moved by the race (its winner adopted) or holding what
its own attempt did, with no result to say so: the next attempt there would build on it, and a
second race's winner would merge on top of the first's. So where the task's branch stood when a
race began is marked (``mark``: ``refs/orchestrator/race/<task>/attempt-<n>``), until a result
records that race or a later attempt; a run that finds a mark no result answers for
(``unrecorded``) keeps what the branch gained since on a ref of its own, never merged, and sets
the branch back: the task races again from where the first race began. When that runner had
merged the race's work into the integration branch already, the merge is taken back out of it
(the branch set back from it, or a revert: ``Integration.take_out``), so that the race run again
leaves one winner's work there, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from orchestrator.git.merging import Integration
from orchestrator.git.repo import branch_exists, git, identity, is_ancestor, rev
from orchestrator.git.treestate import raced_task
from orchestrator.git.worktrees import Trees, lane_removal, ref_part, task_of_ref

RACES = "refs/orchestrator/race/"  # where a race's task branch stood when it began: <task>/attempt-<n>


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
        next attempt there would commit it as "work left by an interrupted attempt", and the
        branch moved off its commits would leave them to git's collector. That ref's name, when
        there was anything to keep."""
        path = self.trees.path(task_id)
        ref = lost_ref(task_id, f"attempt-{lost}")
        kept = keep_lost(path, ref, f"{task_id} attempt {lost}, lost")
        if kept is None and not is_ancestor(path, "HEAD", tip):  # (its work committed: the branch's own)
            git(["update-ref", ref, "HEAD"], path)
            kept = ref
        git(["reset", "-q", "--hard", tip], path)
        git(["clean", "-q", "-f", "-d"], path)  # (its untracked files: on the ref above, never merged)
        self.drop(name)
        return kept

    def drop(self, name: str, task_id: str | None = None, attempt: int | None = None) -> str | None:
        """Lane ``name``'s worktree and branch removed: its attempt lost, its work is never merged.
        A losing lane's (``task_id``'s ``attempt``) commits the race began without are kept first
        on ``refs/orchestrator/lost/<task>/attempt-<n>``, as the task's own attempt's are when it
        loses (``adopt``): nothing we remove takes work with it. That ref, when kept."""
        trees = self.trees
        kept = self._keep_lane(name, task_id, attempt) if task_id is not None and attempt is not None else None
        path = trees.path(name)
        if path.exists():
            git(["worktree", "remove", "--force", "--force", str(path)], trees.repo, check=False)
        git(["worktree", "prune"], trees.repo, check=False)
        if branch_exists(trees.repo, trees.branch(name)):
            git(["branch", "-q", "-D", trees.branch(name)], trees.repo, check=False)
        return kept

    def _keep_lane(self, name: str, task_id: str, attempt: int) -> str | None:
        """A losing lane's work, committed on its branch (what it left uncommitted too, beside it),
        kept on its lost ref: the commits its branch holds beyond where its race began."""
        trees = self.trees
        path, ref = trees.path(name), lost_ref(task_id, f"attempt-{attempt}")
        kept = keep_lost(path, ref, f"{task_id} attempt {attempt}, lost") if path.exists() else None
        tip = rev(trees.repo, f"refs/heads/{trees.branch(name)}")
        began = self.began(task_id)
        if kept is None and tip is not None and (began is None or not is_ancestor(trees.repo, tip, began)):
            git(["update-ref", ref, tip], trees.repo)
            kept = ref
        return kept

    def mark(self, task_id: str, number: int) -> None:
        """A race of ``task_id`` begins with its attempt ``number``: where the task's branch stands
        (the integration branch's tip when it has none yet) kept until a result records the race."""
        trees = self.trees
        base = rev(trees.repo, f"refs/heads/{trees.branch(task_id)}")
        base = base or rev(trees.repo, f"refs/heads/{trees.integration}")
        if base is None:
            return
        for found in marks(trees.repo, RACES, task_id):
            git(["update-ref", "-d", found.ref], trees.repo)
        git(["update-ref", f"{RACES}{ref_part(task_id)}/attempt-{number}", base], trees.repo)

    def began(self, task_id: str) -> str | None:
        """Where ``task_id``'s race began (its mark's ref), for its lanes to begin there too: not
        from the task's branch as it is when a slot frees, which may hold its own attempt's work
        by then (a winning lane would carry it, and it would merge with the winner's)."""
        found = marks(self.trees.repo, RACES, task_id)
        return found[-1].ref if found else None

    def unrecorded(self, recorded: Mapping[str, int]) -> list[str]:
        """The marks of races a runner began and did not live to record (``recorded``: each task's
        last attempt a result records, none: 0): what each task's branch and worktree gained since
        kept on ``refs/orchestrator/lost/<task>/race-<n>``, never merged, and the branch set back
        where its race began; a line for each that kept anything. The marks of recorded races
        removed."""
        said: list[str] = []
        for found in marks(self.trees.repo, RACES):
            if recorded.get(found.task, 0) < found.number:
                kept = self._set_back(found.task, found.number, found.commit)
                if kept is not None:
                    said.append(kept)
            git(["update-ref", "-d", found.ref], self.trees.repo)
        return said

    def racing(self, recorded: Mapping[str, int]) -> set[str]:
        """The tasks whose race marks no result answers for (``recorded`` as ``unrecorded`` reads
        it): those ``unrecorded`` will set back, their merge taken out with them."""
        return {found.task for found in marks(self.trees.repo, RACES) if recorded.get(found.task, 0) < found.number}

    def _set_back(self, task_id: str, number: int, base: str) -> str | None:
        """``task_id``'s branch (and its worktree) set back to ``base``, what it held beyond kept;
        the line saying so, ``None`` when it held nothing beyond."""
        trees = self.trees
        branch, path = trees.branch(task_id), trees.path(task_id)
        ref = lost_ref(task_id, f"race-{number}")
        tip = rev(trees.repo, f"refs/heads/{branch}")
        if tip is None:
            return None
        worktree = (path / ".git").exists()
        if worktree and keep_lost(path, ref, f"{task_id}: the race from attempt {number}, unrecorded") is not None:
            tip = rev(trees.repo, ref) or tip  # (what its worktree held uncommitted, on top of its branch)
        if tip == base:
            return None
        git(["update-ref", ref, tip], trees.repo)
        where = f"its work is kept on {ref}, never merged, and the task races again from where that race began"
        if is_ancestor(trees.repo, tip, f"refs/heads/{trees.integration}"):  # (first: the branch not yet set
            where = self._take_out(tip, ref)  # back, a runner killed here leaves it to the next)
        if worktree:
            git(["reset", "-q", "--hard", base], path)
            git(["clean", "-q", "-f", "-d"], path)
        else:
            git(["branch", "-q", "-f", branch, base], trees.repo)
        return f"{task_id}'s race from attempt {number} was not recorded when its runner died: {where}"

    def _take_out(self, tip: str, ref: str) -> str:
        """The race's work, ``tip``, which its runner merged into the integration branch before it
        died, taken back out of it (``Integration.take_out``), so that the race run again merges
        one winner's work, once; the merge kept on ``<ref>-merge`` when the branch is set back
        from it. What was done, as the rest of the line about the race."""
        trees = self.trees
        integration = Integration(trees.integration_path)
        merge = integration.merge_of(tip)
        taken = integration.take_out(merge, f"{ref}-merge") if merge is not None else None
        if taken is None:
            by_hand = f"git -C {trees.integration_path} revert -m 1 {merge}" if merge else "revert its merge by hand"
            return (f"it was merged into {trees.integration} before the runner died and could not be taken out "
                    f"(kept on {ref} too); the task races again from where that race began, on top of it — "
                    f"to keep one winner's work, {by_hand}")  # fmt: skip
        if not taken.reverted:
            ref = f"{ref} (its merge on {ref}-merge)"
        return (f"it was merged into {trees.integration} before the runner died and is taken out again "
                f"({taken.said(trees.integration)}); its work is kept on {ref}, never merged, "
                "and the task races again from where that race began")  # fmt: skip

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


class Mark(NamedTuple):
    """A ref that marks where something stood when a task's attempt began: ``<kind>/<task>/attempt-<n>``."""

    ref: str
    task: str
    number: int  # the attempt
    commit: str  # what it holds


def marks(repo: Path, kind: str, task_id: str | None = None) -> list[Mark]:
    """The marks under ``kind`` (``RACES``, ``git/marks.MERGING``) of ``task_id``, else of every task."""
    under = f"{kind}{ref_part(task_id)}/" if task_id is not None else kind
    done = git(["for-each-ref", "--format=%(refname) %(objectname)", under], repo)
    found: list[Mark] = []
    for ref, _, commit in (line.partition(" ") for line in done.out.splitlines()):
        part, _, number = ref.removeprefix(kind).rpartition("/attempt-")
        if commit:
            found.append(Mark(ref, task_of_ref(part), int(number), commit))
    return found


def lost_ref(task_id: str, what: str) -> str:
    """Where work taken from ``task_id`` is kept, never merged: ``what`` is whose (a losing attempt's,
    ``attempt-2``; a race's, ``race-1``; a merge's, ``merge-1``): ``refs/orchestrator/lost/T-01/attempt-2``."""
    return f"refs/orchestrator/lost/{ref_part(task_id)}/{what}"


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
