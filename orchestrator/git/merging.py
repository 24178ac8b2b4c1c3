"""Merges: a task's branch into the integration branch (in the integration worktree, never the
person's checkout), undone when ``verify`` fails; and ``orchestrator merge``, the integration
branch into the person's branch, only when asked and only onto a clean working tree.

A conflict is never resolved here: it is read (the files, the conflicting hunks with both sides,
the commits on each side), the merge aborted, and the caller decides (a resolution task, or the
task fails with the conflict listed).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import GitError, UsageError
from orchestrator.git.repo import (
    branch_exists,
    changed_files,
    changes,
    conflict_at,
    current_branch,
    git,
    identity,
    is_ancestor,
    merge_conflicts,
    merging,
    rev,
    unmerged,
)
from orchestrator.vocabulary import counted, listed

HUNKS_CAP = 20_000  # characters of conflicting hunks a resolution task's brief holds
_CONTEXT = 3  # lines shown around each conflicting hunk
_BEGIN, _END = re.compile(r"^<{7}( |$)"), re.compile(r"^>{7}( |$)")


@dataclass(frozen=True, slots=True)
class Merged:
    before: str  # the integration branch before the merge
    after: str  # and after (the same: nothing was left to merge)


@dataclass(frozen=True, slots=True)
class Conflict:
    files: list[str]
    hunks: str  # each conflicting hunk with both sides between git's markers, a little context around
    ours: list[str] = field(default_factory=list)  # the integration branch's commits since the two parted
    theirs: list[str] = field(default_factory=list)  # the task branch's

    def listed(self) -> str:
        return ", ".join(self.files)


@dataclass(frozen=True, slots=True)
class TakenOut:
    """A merge's work taken back out of the integration branch (``Integration.take_out``)."""

    merge: str  # the merge commit that brought it in
    now: str  # the branch's commit now: the merge's first parent, or the commit reverting it
    reverted: bool  # a revert commit (something came after the merge, or another ref holds it)
    held: tuple[str, ...] = ()  # the refs besides the integration branch that hold the merge
    found: bool = False  # reverted already, by a run before (killed before it said so)

    def said(self, integration: str) -> str:
        """How, in a few words: ``integration`` set back, or the merge reverted and why."""
        if not self.reverted:
            return f"{integration} set back from its merge {self.merge[:12]} to {self.now[:12]}"
        if self.found:
            return f"its merge {self.merge[:12]} reverted by {self.now[:12]} already, by a run killed since"
        why = f"{self.held[0].removeprefix('refs/heads/')} holds it" if self.held else "work came after it"
        return f"its merge {self.merge[:12]} reverted by {self.now[:12]}, as {why}"


class Integration:
    """The integration worktree (never the person's checkout): a task's branch merged into the
    integration branch there (a merge commit; a conflict read and the merge aborted), undone when
    ``verify`` fails, what ``verify`` changed tidied away, and what a branch still holds of a
    conflict at its tip."""

    def __init__(self, path: Path) -> None:
        self.path = path  # the integration branch's worktree (``Trees.integration_path``)

    def merge(self, branch: str, message: str) -> Merged | Conflict:
        """Merge ``branch`` into the integration branch, a merge commit; a conflict is read and the
        merge aborted (the integration branch is as it was)."""
        path = self.path
        before = rev(path, "HEAD")
        assert before is not None
        if is_ancestor(path, branch, "HEAD"):
            return Merged(before, before)
        args = [*identity(path), "merge", "--no-ff", "--no-verify", "--no-edit", "-q", "-m", message, branch]
        done = git(args, path, check=False)
        if done.ok:
            return Merged(before, rev(path, "HEAD") or before)
        if not merging(path):
            raise GitError(f"git merge {branch}: {done.last_line()}")
        files = unmerged(path)
        ours, theirs = _log(path, "MERGE_HEAD", "HEAD"), _log(path, "HEAD", "MERGE_HEAD")
        conflict = Conflict(files, conflict_hunks(path, files), ours, theirs)
        git(["merge", "--abort"], path)
        return conflict

    def undo(self, before: str) -> None:
        """Put the integration branch back where it was before a merge (a failed ``verify``)."""
        git(["reset", "--hard", "-q", before], self.path)

    def merge_of(self, tip: str, depth: int = 1000) -> str | None:
        """The merge commit that brought ``tip`` into the integration branch (``tip`` its second
        parent), on the branch's first-parent line within its last ``depth`` commits; ``None``
        when none there did."""
        done = git(["rev-list", "--first-parent", "--parents", "-n", str(depth), "HEAD"], self.path)
        for line in done.out.splitlines():
            commit, *parents = line.split()
            if tip in parents[1:]:
                return commit
        return None

    def take_out(self, merge: str, keep: str) -> TakenOut | None:
        """The work ``merge`` brought in taken back out of the integration branch: the branch set
        back to the merge's first parent when the merge is its tip and no other ref holds it
        (a branch, a tag, a remote's branch: one a task started since merged it into, one the
        person brought it into), the merge kept on ``keep`` first; else a commit reverting it
        (git's own, which names the merge: one made before, by a runner killed after it, is
        found again, not made twice), as history that is held elsewhere is never rewritten.
        ``None``: the revert conflicts with what came after the merge (given up: the branch as
        it was)."""
        path = self.path
        grep = f"--grep=^This reverts commit {merge}"  # (the line git's revert writes)
        done = git(["log", "--first-parent", "--format=%H", grep, f"{merge}..HEAD"], path)
        if done.out.split():
            return TakenOut(merge, done.out.split()[0], reverted=True, found=True)
        own = git(["symbolic-ref", "-q", "HEAD"], path).out.strip()
        refs = ["refs/heads/", "refs/remotes/", "refs/tags/"]
        holders = git(["for-each-ref", "--contains", merge, "--format=%(refname)", *refs], path).out.split()
        held = [ref for ref in holders if ref != own]
        if rev(path, "HEAD") == merge and not held:
            before = rev(path, f"{merge}^1")
            assert before is not None
            git(["update-ref", keep, merge], path)
            git(["reset", "--hard", "-q", before], path)
            return TakenOut(merge, before, reverted=False)
        if not git([*identity(path), "revert", "--no-edit", "-m", "1", merge], path, check=False).ok:
            git(["revert", "--abort"], path, check=False)
            git(["reset", "--hard", "-q", "HEAD"], path)
            return None
        return TakenOut(merge, rev(path, "HEAD") or merge, reverted=True, held=tuple(held))

    def tidy(self) -> None:
        """What ``verify`` changed in the integration worktree's tracked files goes: it is no task's
        work, and the next merge needs a clean tree."""
        if changes(self.path, untracked=False):
            git(["reset", "--hard", "-q", "HEAD"], self.path)

    def conflict_markers(self, branch: str) -> list[str]:
        """Files that a merge into the branch left in conflict and that still hold one at its tip (a
        ``<<<<<<<``, ``=======``, ``>>>>>>>`` run of lines), as ``file:line``: a resolution left half
        done (committed with its markers) is not merged. Only where a conflict was: a file a task
        writes with such lines on purpose (a guide to git, a test's fixture) is its work."""
        found: list[str] = []
        for name in sorted(_conflicted(self.path, branch)):
            shown = git(["show", f"{branch}:{name}"], self.path, check=False)
            if not shown.ok:
                continue
            line = conflict_at(shown.out)
            if line is not None:
                found.append(f"{name}:{line}")
        return found


def _log(path: Path, since: str, until: str) -> list[str]:
    done = git(["log", "--oneline", "--no-decorate", "-n", "20", f"{since}..{until}"], path, check=False)
    return done.out.splitlines()


def conflict_hunks(tree: Path, files: list[str]) -> str:
    """The conflicting hunks of ``files`` in ``tree`` as git left them (both sides between its
    markers), a few lines of context around each, under a heading per file; at most ``HUNKS_CAP``."""
    parts: list[str] = []
    for name in files:
        try:
            lines = (tree / name).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            parts.append(f"--- {name}: (deleted on one side, changed on the other)")
            continue
        shown: list[str] = []
        index = 0
        while index < len(lines):
            if not _BEGIN.match(lines[index]):
                index += 1
                continue
            end = index
            while end < len(lines) and not _END.match(lines[end]):
                end += 1
            start, stop = max(0, index - _CONTEXT), min(len(lines), end + 1 + _CONTEXT)
            shown.append(f"@@ lines {start + 1}-{stop} @@")
            shown += lines[start:stop]
            index = end + 1
        parts.append(f"--- {name}\n" + ("\n".join(shown) if shown else "(a conflict of the whole file)"))
    text = "\n\n".join(parts)
    if len(text) > HUNKS_CAP:
        text = text[:HUNKS_CAP] + "\n[... cut: run `git diff` in the worktree for the rest]"
    return text


def _conflicted(path: Path, branch: str) -> set[str]:
    """The files the merges made on ``branch`` since it left the integration branch (checked out
    at ``path``) had in conflict, and that the branch changed: each merge done again by
    ``git merge-tree``, which touches nothing."""
    merges = git(["rev-list", "--merges", "--parents", f"HEAD..{branch}"], path, check=False)
    files: set[str] = set()
    for line in merges.out.splitlines():
        parents = line.split()[1:]
        if len(parents) == 2:  # (the tool never makes an octopus merge)
            files.update(merge_conflicts(path, parents[0], parents[1]))
    if not files:
        return files
    changed = git(["diff", "--name-only", "-z", "--diff-filter=AM", f"HEAD...{branch}"], path, check=False)
    return files & set(changed.out.split("\0"))


@dataclass(frozen=True, slots=True)
class UserMerge:
    branch: str  # the person's branch
    how: str  # "fast-forward", "merge commit" or "up to date"
    commit: str
    conflicts: list[str] = field(default_factory=list)  # set: nothing was changed
    before: str = ""  # the branch's commit before: `git reset --hard` to it undoes the merge
    commits: int = 0  # the integration branch's commits the branch did not have, which it now has


def merge_into_checkout(
    repo: Path,
    integration: str,
    mode: str,
    *,
    workspace_dir: Path,
    dry_run: bool = False,
    told: Callable[[UserMerge], None] | None = None,
) -> UserMerge:
    """``orchestrator merge``: the integration branch (``integration``) into the branch checked out
    in the person's checkout of ``repo``, whose workspace is ``workspace_dir``. ``mode``: ``ff``
    (fast-forward or nothing), ``no-ff`` (always a merge commit) or ``auto`` (a fast-forward when it
    can be, else a merge commit). Refused (``UsageError``) on a working tree with uncommitted
    changes to tracked files or with files git does not track where the integration branch adds
    files, or a detached HEAD. A conflict aborts the merge: the checkout is left exactly as it was,
    and the files are listed. ``told`` hears what is about to move (the branch, from which commit,
    by how many) before it moves; ``dry_run``: only that."""
    if not branch_exists(repo, integration):
        raise UsageError(f"no branch {integration} yet: run the plan first (its tasks need isolation: worktree)")
    branch = current_branch(repo)
    if branch is None:
        raise UsageError(f"{repo}: HEAD is detached — check out the branch to merge {integration} into, then run again")
    if merging(repo):
        raise UsageError(f"{repo}: a merge is in progress — finish or abort it, then run `orchestrator merge` again")
    dirty = changed_files(repo)
    if dirty:
        raise UsageError(_dirty(repo, workspace_dir, dirty))
    in_the_way = _untracked_in_the_way(repo, integration)
    if in_the_way:
        said = f"{counted(len(in_the_way), 'file')}: {listed(in_the_way[:3], len(in_the_way))}"
        raise UsageError(
            f"{repo}: your working tree has files git does not track where {integration} adds files ({said}) — "
            "move them out of the way, then run `orchestrator merge` again; nothing was changed"
        )
    before = rev(repo, "HEAD") or ""
    if is_ancestor(repo, integration, "HEAD"):
        return UserMerge(branch, "up to date", before, before=before)
    fast = is_ancestor(repo, "HEAD", integration)
    if mode == "ff" and not fast:
        raise UsageError(f"{branch} cannot be fast-forwarded to {integration}: use --no-ff for a merge commit")
    commits = int(git(["rev-list", "--count", f"HEAD..{integration}"], repo).out.strip() or 0)
    how = "fast-forward" if fast and mode != "no-ff" else "merge commit"
    about = UserMerge(branch, how, rev(repo, integration) or "", before=before, commits=commits)
    if told is not None:
        told(about)  # what is about to move, said before it moves
    if dry_run:
        return about
    flag = {"ff": "--ff-only", "no-ff": "--no-ff"}.get(mode, "--ff")
    message = f"Merge {integration} (orchestrator)"
    done = git([*identity(repo), "merge", flag, "--no-edit", "-q", "-m", message, integration], repo, check=False)
    if not done.ok:
        files = unmerged(repo)
        if merging(repo):
            git(["merge", "--abort"], repo)
        if not files:
            raise GitError(f"git merge {integration}: {done.last_line()}")
        return UserMerge(branch, "conflict", rev(repo, "HEAD") or "", files, before=before)
    return UserMerge(branch, how, rev(repo, "HEAD") or "", before=before, commits=commits)


def _untracked_in_the_way(repo: Path, integration: str) -> list[str]:
    """The files of the checkout that git does not track at paths the merge of ``integration``
    would write: added on its side since the branches parted, and not in HEAD. Git refuses to
    write over an untracked one with only "Aborting", and writes over an ignored one without a
    word: neither is the person's to lose."""
    added = set(_names(repo, f"HEAD...{integration}"))  # (renames as an add: the new path is written)
    return [name for name in _names(repo, "HEAD", integration) if name in added and os.path.lexists(repo / name)]


def _names(repo: Path, *revisions: str) -> list[str]:
    done = git(["diff", "--name-only", "-z", "--no-renames", "--diff-filter=A", *revisions, "--"], repo)
    return [name for name in done.out.split("\0") if name]


def _dirty(repo: Path, workspace_dir: Path, files: list[str]) -> str:
    """Why ``orchestrator merge`` will not merge onto ``files`` of ``repo`` changed and not
    committed: each named (a few, then how many more), and when the workspace's own files
    (``workspace_dir``'s) are among them (git tracks ``.orchestrator/``, which a run writes), what
    to do about that."""
    said = f"{counted(len(files), 'file')}: {listed(files[:3], len(files))}"
    message = (
        f"{repo}: your working tree has uncommitted changes ({said}) — commit them, then run "
        "`orchestrator merge` again; nothing was changed"
    )
    workspace = workspace_dir.resolve()
    if workspace.is_relative_to(repo.resolve()):
        mine = workspace.relative_to(repo.resolve()).as_posix()
        if any(name.startswith(f"{mine}/") for name in files):
            message += (
                f" ({mine}/ is tracked by git, and a run writes there: keep it out of git,"
                f" git rm -r --cached {mine} and add it to .gitignore)"
            )
    return message
