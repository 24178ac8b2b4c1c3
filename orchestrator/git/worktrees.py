"""The worktrees of a workspace: one per task that runs with ``isolation: worktree``, on its own
branch, and one for the integration branch the merge queue merges into. None of them is the
person's checkout, which nothing here changes (its HEAD is read, once, as the run's base).

    .orchestrator/worktrees/<task id>/     branch <integration_branch>-<task id>
    .orchestrator/worktrees/.integration/  branch <integration_branch>

A task's worktree is made the first time the task runs: from the integration branch (the base
commit plus every task merged so far, its upstream tasks among them), then each upstream branch
not merged yet (a resolution task's: its conflict is left there to resolve). Before every later
attempt it is found again as it was left, a kill -9 included: what an interrupted attempt left
uncommitted is committed for it, and the integration branch merged in (what a rerun builds on).
After each attempt everything in it is committed, with a message naming the task (``finish``).
No worktree with uncommitted or unmerged work is removed: ``prune`` takes only merged or empty ones,
and never one whose task has an attempt open (a dead runner's, whose processes may still write).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import GitError
from orchestrator.git.repo import (
    branch_exists,
    changes,
    checked_out,
    commit_all,
    conflict_at,
    current_branch,
    diffstat,
    git,
    identity,
    is_ancestor,
    merging,
    rev,
    status,
    toplevel,
    unmerged,
)
from orchestrator.git.treestate import States, raced_task
from orchestrator.git.work import Work, ignored_files
from orchestrator.state import store

_MAKING = threading.Lock()
INTEGRATION_DIR = ".integration"  # (no task id starts with a dot)
STATES = ("clean", "dirty", "ignored", "empty", "merged", "conflicted")


@dataclass(frozen=True, slots=True)
class Tree:
    """One worktree of the workspace, as ``orchestrator worktrees`` lists it."""

    task: str | None  # None: the integration branch's
    path: Path
    branch: str | None
    state: str  # clean (committed, not merged yet), dirty, ignored, empty (nothing of its own), merged, conflicted
    bytes: int
    ignored: tuple[str, ...] = ()  # a task's: files there git ignores (never committed, never merged)


def ref_part(task_id: str) -> str:
    """``task_id`` as part of a git ref: an instance's ``T-03[2]`` is ``T-03@2`` (git takes no ``[``)."""
    return task_id.replace("[", "@").replace("]", "") if "[" in task_id else task_id


def task_of_ref(part: str) -> str:
    """The task id ``ref_part`` made ``part`` of."""
    row, at, number = part.rpartition("@")
    return f"{row}[{number}]" if at and number.isdigit() else part


class Trees:
    """The worktrees of one workspace in the git repository of its project."""

    def __init__(self, repo: Path, directory: Path, integration: str) -> None:
        self.repo = repo  # the top of the person's checkout
        self.directory = directory  # .orchestrator/worktrees
        self.integration = integration

    @classmethod
    def of(cls, project_dir: Path, workspace_root: Path, integration: str, *, missing: str = "") -> Trees:
        """The worktrees of the workspace at ``workspace_root``; ``missing``: what a command
        that finds no repository says after the fact (a run: that it needs one)."""
        repo = toplevel(project_dir)
        if repo is None:
            said = missing or "isolation: worktree needs one: run `git init` there and commit"
            raise GitError(f"{project_dir} is not in a git repository: {said}")
        return cls(repo, workspace_root / "worktrees", integration)

    def branch(self, task_id: str) -> str:
        return f"{self.integration}-{ref_part(task_id)}"

    def path(self, task_id: str) -> Path:
        return self.directory / task_id

    @property
    def integration_path(self) -> Path:
        return self.directory / INTEGRATION_DIR

    def inside(self, directory: Path, tree: Path) -> Path:
        """Where ``directory`` of the person's checkout is in ``tree``."""
        try:
            relative = directory.resolve().relative_to(self.repo.resolve())
        except ValueError:
            raise GitError(f"{directory} is outside the git repository {self.repo}: no worktree holds it") from None
        return tree / relative

    # --- a run ------------------------------------------------------------------------------------

    def prepare(self) -> str:
        """The run's base commit (the person's HEAD), with the integration branch and its worktree
        made, or found again, and holding it."""
        base = rev(self.repo, "HEAD")
        if base is None:
            raise GitError(f"{self.repo}: the repository has no commit yet: commit once, then run")
        if not branch_exists(self.repo, self.integration):
            git(["branch", self.integration, base], self.repo)
        path = self._made(self.integration_path, self.integration, None)
        if merging(path):  # a merge a dead runner left half-way
            git(["merge", "--abort"], path)
        if changes(path, untracked=False):
            raise GitError(f"{path}: uncommitted changes on {self.integration} — commit or discard them, then run")
        if not is_ancestor(path, base, "HEAD"):
            if is_ancestor(path, "HEAD", base):
                git(["merge", "--ff-only", "-q", base], path)
            else:
                if not self._merge(path, base, f"orchestrator: bring {base[:12]} into {self.integration}"):
                    files = ", ".join(unmerged(path)) or "some files"
                    git(["merge", "--abort"], path)
                    said = by_hand(self.repo, self.integration)
                    raise GitError(f"your HEAD conflicts with {self.integration} in {files} — {said}{RUN_AGAIN}")
        return base

    def open(self, task_id: str, upstream: Sequence[str] = (), *, start: str | None = None) -> Path:
        """The worktree ``task_id`` runs in, made or found again and holding what it builds on;
        raises ``GitError`` when that cannot be (nothing of it is lost). ``start``: where a new
        branch begins (a lane's: its task's branch, or a full ref, where its race began), else the
        integration branch."""
        start = start if start is not None and self._known(start) else self.integration
        path = self._made(self.path(task_id), self.branch(task_id), start)
        strayed = bring_home(path, self.branch(task_id))
        if strayed is not None:  # an attempt left it on work its branch cannot take: nothing is moved
            raise GitError(strayed)
        if merging(path):  # a resolution task mid-way: it goes on with the conflict as it is
            return path
        if changes(path):
            commit_all(path, f"{task_id}: work left by an interrupted attempt")
        for ref in (self.integration, *(self.branch(u) for u in upstream)):
            if not branch_exists(self.repo, ref) or is_ancestor(path, ref, "HEAD"):
                continue
            if not self._merge(path, ref, f"{task_id}: merge {ref}"):
                if ref != self.integration:
                    return path  # an upstream branch in conflict: the task is to resolve it
                files = unmerged(path)
                git(["merge", "--abort"], path)
                raise GitError(
                    f"its branch {self.branch(task_id)} conflicts with {self.integration} in {', '.join(files)}"
                    f" — resolve it in {path} (`git merge {self.integration}`, resolve those files, `git add` them"
                    " and `git commit`), then run again"
                )
        return path

    def _known(self, start: str) -> bool:
        """Whether ``start`` names a commit a branch may begin at: a branch, or a full ref."""
        return rev(self.repo, start) is not None if start.startswith("refs/") else branch_exists(self.repo, start)

    def finish(self, task_id: str, message: str) -> Work:
        """Commit everything the attempt changed in ``task_id``'s worktree on its branch: its work,
        recorded. A worktree the attempt left on another branch or a detached HEAD is first brought
        back to its branch (``bring_home``), or, when that cannot be, nothing is committed or moved
        and the work says why: what is recorded is always the tip of the branch that is merged."""
        path, branch = self.path(task_id), self.branch(task_id)
        try:
            strayed = bring_home(path, branch)
            if strayed is not None:
                return Work(branch, rev(path, f"refs/heads/{branch}"), "", problem=strayed, strayed=True)
            left = tuple(f for f in unmerged(path) if _conflicted(path / f)) if merging(path) else ()
            if left:  # a resolution left half done stays as it is, mid-merge, to go on with
                problem = f"the conflict is not resolved in {', '.join(left)}: resolve it in {path}, then run again"
                return Work(branch, rev(path, "HEAD"), "", problem=problem, unresolved=left)
            commit_all(path, message)
            tip = f"refs/heads/{branch}"
            ignored = tuple(status(path)[1])  # what no commit takes: told, and its worktree kept
            return Work(branch, rev(path, tip), diffstat(path, self.integration, tip), ignored=ignored)
        except (GitError, OSError) as exc:
            return Work(branch, None, "", problem=f"its work could not be committed ({exc}); it is in {path}")

    def _made(self, path: Path, branch: str, start: str | None) -> Path:
        """The worktree at ``path`` on ``branch`` (made from ``start`` when the branch is new)."""
        if (path / ".git").is_file():
            return path
        with _MAKING:  # one worktree made at a time: git's own metadata is shared by them all
            return self._make(path, branch, start)

    def _make(self, path: Path, branch: str, start: str | None) -> Path:
        if (path / ".git").is_file():
            return path
        self._directory()
        git(["worktree", "prune"], self.repo)  # a worktree somebody deleted by hand is forgotten
        if branch_exists(self.repo, branch):
            git(["worktree", "add", "-q", str(path), branch], self.repo)
        else:
            git(["worktree", "add", "-q", "-b", branch, str(path), start or "HEAD"], self.repo)
        return path

    def _directory(self) -> None:
        """worktrees/, ignored by git as a whole: the person's `git status` does not list it."""
        ignore = self.directory / ".gitignore"
        if not ignore.exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            store.write_text(ignore, "# Written by orchestrator: task worktrees are not part of your checkout.\n*\n")

    @staticmethod
    def _merge(path: Path, ref: str, message: str) -> bool:
        """Merge ``ref`` into the branch of ``path`` (a merge commit); False on a conflict, which
        is left in place."""
        args = [*identity(path), "merge", "--no-ff", "--no-verify", "--no-edit", "-q", "-m", message, ref]
        done = git(args, path, check=False)
        if done.ok:
            return True
        if not merging(path):  # not a conflict: git refused for another reason
            raise GitError(f"git merge {ref}: {done.last_line()}")
        return False

    # --- what is there ----------------------------------------------------------------------------

    def listing(self, lanes_only: bool = False) -> list[Tree]:
        """Every worktree of this workspace, the integration branch's first (``lanes_only``: the
        raced lanes alone, ``raced_task``)."""
        done = git(["worktree", "list", "--porcelain"], self.repo)
        found: list[Tree] = []
        mine = self.directory.resolve()
        judge = States(self.repo, self.integration, self.branch)
        for block in done.out.split("\n\n"):
            fields = dict(line.partition(" ")[::2] for line in block.splitlines() if line)
            where = fields.get("worktree")
            if not where or Path(where).resolve().parent != mine:
                continue
            path = Path(where)
            if lanes_only and raced_task(path.name) is None:
                continue
            branch = fields["branch"].removeprefix("refs/heads/") if "branch" in fields else None
            task = None if path.name == INTEGRATION_DIR else path.name
            state, ignored = judge.of(path, branch, task)
            found.append(Tree(task, path, branch, state, disk_use(path), ignored))
        return sorted(found, key=lambda t: (t.task is not None, t.task or ""))

    def prune(self, busy: Collection[str] = (), *, dry_run: bool = False) -> Pruned:
        """Remove the merged and the empty task worktrees (and their task branches: every commit of a
        merged one is in the integration branch, an empty one holds no work at all), and the integration
        branch's once nothing is left there that is not merged; what was removed, what was kept and
        why, and the bytes freed. A worktree with any uncommitted or unmerged work stays (git itself
        refuses to remove a dirty one: no ``--force`` is ever given), and no branch but a task's own
        is deleted. Never beside a run (its caller holds the workspace lock); ``busy``: the tasks
        the journal shows with an attempt still open (a dead runner's: its processes may still
        write there), whose worktrees stay, the integration branch's with them. ``dry_run``: what
        would go, nothing removed (``cleanup --dry-run``)."""
        pruned = Pruned()
        trees = self.listing()
        for tree in trees:
            if tree.task is None:
                continue
            owner = raced_task(tree.task) or tree.task  # (a raced lane: its task's)
            if owner in busy:
                pruned.kept.append(Kept(tree, f"{owner} has an attempt still open ({STILL_OPEN})"))
                continue
            if tree.state not in ("merged", "empty"):
                pruned.kept.append(Kept(tree, _why(tree)))
                continue
            if not dry_run:
                git(["worktree", "remove", str(tree.path)], self.repo)
                own = tree.branch == self.branch(tree.task)
                # empty: nothing of its own, though the integration branch may have been merged in
                # (a merge commit the integration branch lacks); merged: every commit in it
                if (
                    own
                    and tree.branch
                    and (tree.state == "empty" or is_ancestor(self.repo, tree.branch, self.integration))
                ):
                    git(["branch", "-D", "-q", tree.branch], self.repo)
            pruned.removed.append(tree)
            pruned.freed += tree.bytes
        for tree in trees:
            if tree.task is not None:
                continue
            why = self._integration_kept(tree, busy, len(pruned.kept))
            if why is not None:
                pruned.kept.insert(0, Kept(tree, why))
                continue
            if not dry_run:
                git(["worktree", "remove", str(tree.path)], self.repo)
            pruned.removed.append(tree)
            pruned.freed += tree.bytes
        if not dry_run:
            git(["worktree", "prune"], self.repo)
        return pruned

    def _integration_kept(self, tree: Tree, busy: Collection[str], kept: int) -> str | None:
        """Why ``prune`` keeps the integration branch's worktree, or ``None``: it may go. While the
        branch holds work your checked-out branch does not have, its worktree stays: it is what keeps
        another workspace of the repository from taking the branch up (``validate`` and ``run`` refuse
        a branch checked out in another workspace's integration worktree), and merging it."""
        if busy:
            names = ", ".join(sorted(busy))
            return f"{names} {'has' if len(busy) == 1 else 'have'} an attempt still open ({STILL_OPEN})"
        if kept:
            return f"{kept} task worktree{'s' if kept > 1 else ''} kept, whose work merges into it"
        if tree.state != "clean":
            return f"{tree.state}: {WHY_KEPT.get(tree.state, 'not merged')}"
        if not is_ancestor(self.repo, self.integration, "HEAD"):
            yours = current_branch(self.repo) or "your HEAD"
            return f"{self.integration} has work not merged into {yours} — `orchestrator merge` brings it"
        return None


STILL_OPEN = "its runner died: `orchestrator run` settles it"
WHY_KEPT = {
    "clean": "committed, not merged yet",
    "dirty": "uncommitted changes",
    "conflicted": "a merge left to resolve",
    "missing": "its directory is gone: `git worktree prune` forgets it",
}


@dataclass(frozen=True, slots=True)
class Kept:
    """A worktree ``prune`` left in place, and why (one line)."""

    tree: Tree
    why: str


@dataclass(slots=True)
class Pruned:
    """What ``prune`` did: the worktrees removed, those kept and why, the bytes freed."""

    removed: list[Tree] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)
    freed: int = 0


def _why(tree: Tree) -> str:
    """Why ``prune`` keeps a task's worktree (or a raced lane) that is neither merged nor empty."""
    owner = raced_task(tree.task)
    if owner is not None:  # a race its runner never decided: what the attempt did is kept, never merged
        number = str(tree.task).partition("+")[2]
        said = f"{tree.state}: attempt {number} of {owner}, raced when its runner died: its work is never merged"
        return f"{said} — take what you need, then remove it: {lane_removal(tree)}"
    if tree.state == "ignored":
        said = f"ignored: {ignored_files(tree.ignored)}, never committed nor merged"
        return f"{said} — take what you need, then remove it yourself (git worktree remove --force {tree.path})"
    return f"{tree.state}: {WHY_KEPT.get(tree.state, 'not merged')}"


def bring_home(path: Path, branch: str) -> str | None:
    """Put the worktree at ``path`` back on its task's ``branch`` when an attempt left it on another
    branch or a detached HEAD (``git switch``, ``git checkout <commit>``): when what HEAD holds
    builds on ``branch``, the branch is fast-forwarded to it (the attempt's commits are its work;
    the other branch stays where it is) and HEAD set to the branch, its files and index untouched.
    ``None`` when the worktree is on ``branch`` now; else one line saying what was found and what
    to do, with nothing committed or moved."""
    ref = f"refs/heads/{branch}"
    on = git(["symbolic-ref", "-q", "HEAD"], path, check=False)
    if on.ok and on.out.strip() == ref:
        return None
    name = on.out.strip().removeprefix("refs/heads/") if on.ok else None
    head, tip = rev(path, "HEAD"), rev(path, ref)
    found = (f"branch {name}" if name else "a detached HEAD") + (f" ({head[:12]})" if head else "")
    where = f"its worktree {path} is on {found}, not on its branch {branch}"
    if tip is None:
        return (
            f"{where}, which is gone: nothing of it was merged — make it there (git switch -c {branch}), then run again"
        )
    if head is not None and is_ancestor(path, tip, head):
        elsewhere = checked_out(path).get(branch)
        if elsewhere is not None:
            said = f"{where}, which is checked out in {elsewhere}: nothing of it was merged"
            return f"{said} — switch that worktree to another branch, then run again"
        why = f"orchestrator: fast-forward to {found}, where the task left its worktree"
        git(["update-ref", "-m", why, ref, head, tip], path)  # (only from ``tip``: nothing of it is lost)
        git(["symbolic-ref", "-m", why, "HEAD", ref], path)
        return None
    keep = f"git merge {name or str(head)[:12]}"
    return (
        f"{where}, and that does not build on it: nothing of it was merged, and all of it is kept there"
        f" — bring that work onto {branch} (git switch {branch}, then {keep}), then run again"
    )


def lane_removal(tree: Tree) -> str:
    """The commands that remove a raced lane kept for its work: the person's to give."""
    branch = f"; git branch -D {tree.branch}" if tree.branch else ""
    return f"git worktree remove --force {tree.path}{branch}"


RUN_AGAIN = ", then `orchestrator run` again"  # (after ``by_hand``, when a run was refused)


def by_hand(repo: Path, integration: str) -> str:
    """What to do when ``integration`` and the person's branch conflict in files a message has
    named: the merge the tool never makes in their checkout, made there by them (``merge``, and a
    run, which builds on both, say the same)."""
    return f"run `git merge {integration}` in your checkout ({repo}), resolve those files and commit"


def _conflicted(path: Path) -> bool:
    try:
        return conflict_at(path.read_text(encoding="utf-8", errors="replace")) is not None
    except OSError:  # deleted on one side: whether that stands is for git to say
        return False


def disk_use(path: Path) -> int:
    """Bytes ``path`` takes on disk (allocated blocks; links not followed)."""
    total = 0
    for root, dirs, files in os.walk(path, followlinks=False):
        for name in (*dirs, *files):
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                continue
    return total
