"""Merge marks: where the integration branch stood before a task's branch was merged into it,
kept until a result records that merge.

A runner killed after it merged a task's branch and before it wrote the task's result, or while
``verify`` ran on the merge, leaves the merge in the integration branch with no result to say
so, in the second case never verified. The next run would run the task again and merge again on
top: the integration branch would keep a merge nobody recorded, and a failing ``verify`` would
undo only the new one. So the merge queue marks a merge before it makes it (``mark``:
``refs/orchestrator/merging/<task>/attempt-<n>``, the integration branch's tip then), and the
run clears the mark once the task's result is written (``clear``). A run that finds a mark no
result answers for (``unrecorded``) takes that merge back out of the integration branch as a
race's is taken out (``Integration.take_out``: the branch set back from it, or a revert), keeps
it on ``refs/orchestrator/lost/<task>/merge-<n>``, says so, and the task runs again as it would.

A runner killed while it takes a merge out leaves the mark: the next one finishes it, never
reverting twice (``take_out`` finds its revert again), and, the branch set back already, finds
no merge left to take out.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from orchestrator.git.lanes import keep_lost, lost_ref, marks
from orchestrator.git.merging import Integration, TakenOut
from orchestrator.git.repo import git, identity, is_ancestor, rev
from orchestrator.git.worktrees import Trees, ref_part

MERGING = "refs/orchestrator/merging/"  # where the integration branch stood before a merge: <task>/attempt-<n>


def merge_message(task_id: str) -> str:
    """The message of the merge commit that brings ``task_id``'s branch into the integration branch."""
    return f"orchestrator: merge {task_id}"


class MergeMarks:
    """The merge marks of one workspace's integration branch."""

    def __init__(self, trees: Trees) -> None:
        self.trees = trees

    def mark(self, task_id: str, number: int) -> None:
        """``task_id``'s attempt ``number`` is about to be merged: the integration branch's tip
        kept until a result records it (a mark of an earlier attempt of the task replaced)."""
        trees = self.trees
        tip = rev(trees.integration_path, "HEAD")
        if tip is None:
            return
        self.clear(task_id)
        git(["update-ref", f"{MERGING}{ref_part(task_id)}/attempt-{number}", tip], trees.repo)

    def clear(self, task_id: str, number: int | None = None) -> None:
        """``task_id``'s mark of attempt ``number`` (else all of its marks) removed: a result records
        its merge (or that there was none)."""
        if number is not None:
            git(["update-ref", "-d", f"{MERGING}{ref_part(task_id)}/attempt-{number}"], self.trees.repo)
            return
        for found in marks(self.trees.repo, MERGING, task_id):
            git(["update-ref", "-d", found.ref], self.trees.repo)

    def unrecorded(self, recorded: Mapping[str, int], racing: Collection[str] = ()) -> list[str]:
        """The merges a runner made and did not live to record (``recorded``: each task's last
        attempt whose merge, if any, a result records; none: 0) taken back out of the integration
        branch, each kept on ``refs/orchestrator/lost/<task>/merge-<n>``; a line for each. A task
        in ``racing`` had a race its runner did not record, which ``Lanes.unrecorded`` takes out
        (its branch set back where the race began): its mark is only removed. Every mark removed
        once dealt with (last: a runner killed before leaves it to the next)."""
        said: list[str] = []
        for found in marks(self.trees.repo, MERGING):
            if recorded.get(found.task, 0) < found.number and found.task not in racing:
                line = self._take_out(found.task, found.number, found.commit)
                if line is not None:
                    said.append(line)
            git(["update-ref", "-d", found.ref], self.trees.repo)
        return said

    def _take_out(self, task_id: str, number: int, base: str) -> str | None:
        """The merge of ``task_id``'s attempt ``number``, made on ``base``, taken out of the
        integration branch; the line saying so, ``None`` when there was none (nothing merged, or
        the merge was undone before the runner died)."""
        trees = self.trees
        integration = Integration(trees.integration_path)
        lost = lost_ref(task_id, f"merge-{number}")
        merge = self._merge_on(base, task_id)
        head = f"{task_id}'s merge into {trees.integration} (attempt {number}) was not recorded when its runner died"
        if merge is None:
            kept = rev(trees.repo, lost)
            if kept is None or is_ancestor(trees.repo, kept, "refs/heads/" + trees.integration):
                return None  # (never made, or undone: nothing of it is in the integration branch)
            return f"{head}: it was taken out by a run killed since, and is kept on {lost}; the task runs again"
        git(["update-ref", lost, merge], trees.repo)
        taken = integration.take_out(merge, lost)
        if taken is None:
            return (f"{head}, and it could not be taken out (its revert conflicts with what came after it; kept on "
                    f"{lost}): the task runs again and merges on top of it — to take it out, "
                    f"git -C {trees.integration_path} revert -m 1 {merge}")  # fmt: skip
        again = self._after_revert(task_id, number, merge, taken) if taken.reverted else "its branch as it was"
        return f"{head}: taken out ({taken.said(trees.integration)}), kept on {lost}; the task runs again on {again}"

    def _after_revert(self, task_id: str, number: int, merge: str, taken: TakenOut) -> str:
        """The task's branch after its merge was reverted: its commits are in the integration
        branch's history, so merging it again would bring only what comes after them. Its worktree
        moved to the integration branch's tip with the revert reverted on top (git's way to merge
        reverted work again: the work one new commit, merged and verified with what follows);
        when that revert conflicts, or the branch has no worktree, to the tip alone (its work on the
        lost ref; what the worktree held uncommitted on ``refs/orchestrator/lost/<task>/merge-<n>-left``).
        Where the task runs again, in a few words."""
        trees = self.trees
        branch, path = trees.branch(task_id), trees.path(task_id)
        tip = rev(trees.repo, f"refs/heads/{branch}")
        if tip is None or tip != rev(trees.repo, f"{merge}^2"):
            return "its branch as it was"  # (none, or moved on from what was merged: set up already)
        now = rev(trees.integration_path, "HEAD")
        assert now is not None
        if not (path / ".git").exists():
            git(["branch", "-q", "-f", branch, now], trees.repo)
            return f"its branch set to {trees.integration}'s tip, afresh"
        left = lost_ref(task_id, f"merge-{number}-left")
        keep_lost(path, left, f"{task_id}: left in its worktree when its merge was taken out")
        git(["reset", "-q", "--hard", now], path)
        git(["clean", "-q", "-f", "-d"], path)
        if git([*identity(path), "revert", "--no-edit", taken.now], path, check=False).ok:
            back = f"its work brought back there by reverting {taken.now[:12]}"
            return f"its branch set to {trees.integration}'s tip, {back}"
        git(["revert", "--abort"], path, check=False)
        git(["reset", "-q", "--hard", now], path)
        return f"its branch set to {trees.integration}'s tip, afresh (its work could not be brought back there)"

    def _merge_on(self, base: str, task_id: str) -> str | None:
        """The merge of ``task_id``'s branch made on ``base``: the commit after it on the integration
        branch's first-parent line, when that is its merge (the message says whose)."""
        ours = self.trees.integration_path
        done = git(["log", "--first-parent", "--reverse", "--format=%H %P%x09%s", f"{base}..HEAD"], ours, check=False)
        first = done.out.splitlines()[:1]
        if not first:
            return None
        commits, _, subject = first[0].partition("\t")
        commit, *parents = commits.split()
        return commit if parents[:1] == [base] and len(parents) == 2 and subject == merge_message(task_id) else None
