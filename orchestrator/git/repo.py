"""Git, run as a program: an argument list (never a shell string), in its own process group,
always waited for; what it refused is one ``GitError`` naming the command and git's last line.

Only this module starts git. Every call clears the variables that would point git somewhere else
(``GIT_DIR``, ``GIT_WORK_TREE``, ``GIT_INDEX_FILE``: set when a run is started from a git hook)
and never lets it prompt. Commits the tool makes on a person's behalf carry their identity when
git has one, else ``orchestrator <orchestrator@localhost>`` (``identity``), and are never signed
or passed through hooks: the ``verify`` setting is how a run checks work.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from orchestrator.errors import GitError

FALLBACK_NAME = "orchestrator"
FALLBACK_EMAIL = "orchestrator@localhost"
_CLEARED = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR", "GIT_PREFIX")


@dataclass(frozen=True, slots=True)
class Done:
    """How one git command ended."""

    code: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    def last_line(self) -> str:
        lines = [line.strip() for line in (self.err or self.out).splitlines() if line.strip()]
        return lines[-1] if lines else f"exit code {self.code}"


def _environment(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_EDITOR": "true", "GIT_MERGE_AUTOEDIT": "no"})
    env.update(extra or {})
    return env


def git(
    args: Sequence[str],
    cwd: Path,
    *,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    timeout: float | None = 600.0,
) -> Done:
    """``git <args>`` in ``cwd``; with ``check``, a non-zero exit is a ``GitError``."""
    try:
        process = subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_environment(env),
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        if exc.filename in (None, "git"):
            raise GitError("git is not installed (isolation: worktree needs it): install git") from None
        raise GitError(f"{cwd}: no such directory") from None
    try:
        out, err = process.communicate(timeout=timeout)
    except BaseException:  # a timeout, Ctrl-C: the whole group goes, and is waited for
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    done = Done(process.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
    if check and not done.ok:
        raise GitError(f"git {' '.join(args[:2])}: {done.last_line()}")
    return done


def toplevel(directory: Path) -> Path | None:
    """The root of the git working tree ``directory`` is in, or ``None`` (not in one, or no git)."""
    try:
        done = git(["rev-parse", "--show-toplevel"], directory, check=False)
    except GitError:
        return None
    return Path(done.out.strip()) if done.ok and done.out.strip() else None


def rev(tree: Path, ref: str) -> str | None:
    """The commit ``ref`` names, or ``None``."""
    done = git(["rev-parse", "-q", "--verify", f"{ref}^{{commit}}"], tree, check=False)
    return done.out.strip() if done.ok else None


def is_ancestor(tree: Path, older: str, newer: str) -> bool:
    return git(["merge-base", "--is-ancestor", older, newer], tree, check=False).code == 0


def branch_exists(tree: Path, branch: str) -> bool:
    return git(["show-ref", "--verify", "-q", f"refs/heads/{branch}"], tree, check=False).ok


def has_directory(tree: Path, ref: str, relative: str) -> bool:
    """Whether the commit ``ref`` holds the directory ``relative`` (to the repository's top): git
    keeps a directory only with a file in it, so one with nothing committed is not there."""
    if relative in ("", "."):
        return True
    done = git(["cat-file", "-t", f"{ref}:{relative}"], tree, check=False)
    return done.ok and done.out.strip() == "tree"


def current_branch(tree: Path) -> str | None:
    """The branch checked out in ``tree`` (its short name), or ``None`` when HEAD is detached."""
    head = git(["symbolic-ref", "-q", "--short", "HEAD"], tree, check=False)
    return head.out.strip() or None if head.ok else None


def checked_out(tree: Path) -> dict[str, Path]:
    """Each branch checked out in a worktree of the repository (the main one included), and
    where; a worktree whose directory is gone (git calls it prunable) holds none."""
    done = git(["worktree", "list", "--porcelain"], tree)
    found: dict[str, Path] = {}
    for block in done.out.split("\n\n"):
        fields = dict(line.partition(" ")[::2] for line in block.splitlines() if line)
        gone = "prunable" in fields or not Path(fields.get("worktree", "")).is_dir()  # (older git: no "prunable")
        if "worktree" in fields and "branch" in fields and not gone:
            found[fields["branch"].removeprefix("refs/heads/")] = Path(fields["worktree"])
    return found


def tracked(directory: Path) -> list[str]:
    """The files under ``directory`` that git tracks, relative to it (none outside a repository)."""
    try:
        done = git(["ls-files", "-z"], directory, check=False)
    except GitError:  # no git, or no such directory
        return []
    return [name for name in done.out.split("\0") if name] if done.ok else []


def changes(tree: Path, *, untracked: bool = True) -> list[str]:
    """What ``git status`` shows changed in ``tree`` (untracked files too, unless told not)."""
    mode = "--untracked-files=all" if untracked else "--untracked-files=no"
    done = git(["status", "--porcelain=v1", mode], tree)
    return [line for line in done.out.splitlines() if line.strip()]


def status(tree: Path) -> tuple[list[str], list[str]]:
    """What ``git status`` finds in ``tree``, in one call: the changes (as ``changes`` lists them,
    untracked files too), and the files there that git ignores, by name: never committed (``add
    -A`` leaves them out), so no merge carries them."""
    done = git(["status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignored"], tree)
    changed: list[str] = []
    ignored: list[str] = []
    entries = iter(done.out.split("\0"))
    for entry in entries:
        if len(entry) < 4:
            continue
        if entry.startswith("!! "):
            ignored.append(entry[3:])
            continue
        changed.append(entry)
        if entry[0] in "RC":  # a rename or copy: the name it came from follows
            next(entries, None)
    return changed, sorted(ignored)


def changed_files(tree: Path) -> list[str]:
    """The tracked files of ``tree`` with uncommitted changes (staged or not), by name."""
    done = git(["status", "--porcelain=v1", "-z", "--untracked-files=no"], tree)
    names: list[str] = []
    entries = iter(done.out.split("\0"))
    for entry in entries:
        if len(entry) < 4:
            continue
        names.append(entry[3:])
        if entry[0] in "RC":  # a rename or copy: the name it came from follows
            next(entries, None)
    return names


def merging(tree: Path) -> bool:
    """Whether a merge is in progress in ``tree`` (a resolution task's worktree, mid-resolution)."""
    return rev(tree, "MERGE_HEAD") is not None


def unmerged(tree: Path) -> list[str]:
    """The files a merge in progress left in conflict."""
    done = git(["diff", "--name-only", "--diff-filter=U"], tree, check=False)
    return sorted({line for line in done.out.splitlines() if line})


def merge_conflicts(tree: Path, ours: str, theirs: str) -> list[str]:
    """The files a merge of ``theirs`` into ``ours`` would leave in conflict, found without touching
    a worktree, the index or a ref (``git merge-tree``); none when it merges cleanly, or when git
    cannot tell (unrelated histories: the merge itself says why)."""
    done = git(["merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", ours, theirs], tree, check=False)
    if done.code != 1:
        return []
    return sorted({name for name in done.out.split("\0")[1:] if name})


_BEGIN, _MIDDLE, _END = re.compile(r"^<{7}( |$)"), re.compile(r"^={7}$"), re.compile(r"^>{7}( |$)")


def conflict_at(text: str) -> int | None:
    """The line where ``text`` still holds a conflict as git marks one (a ``<<<<<<<`` line, then
    ``=======``, then ``>>>>>>>``), or ``None``: a lone ``=======`` (a heading's underline) is none."""
    state, begun = 0, 0
    for number, line in enumerate(text.splitlines(), start=1):
        if state == 0 and _BEGIN.match(line):
            state, begun = 1, number
        elif state == 1 and _MIDDLE.match(line):
            state = 2
        elif state == 2 and _END.match(line):
            return begun
    return None


@cache
def _configured(tree: Path, key: str) -> bool:
    return git(["config", "--get", key], tree, check=False).ok


def identity(tree: Path) -> list[str]:
    """``-c`` options for a commit the tool makes: the person's git identity when it has one (from
    git's config or the environment), else the fallback; never signed."""
    options = ["-c", "commit.gpgSign=false"]
    for key, variables, fallback in (
        ("user.name", ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"), FALLBACK_NAME),
        ("user.email", ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL", "EMAIL"), FALLBACK_EMAIL),
    ):
        if not any(os.environ.get(v) for v in variables) and not _configured(tree, key):
            options += ["-c", f"{key}={fallback}"]
    return options


def commit_all(tree: Path, message: str, *, env: Mapping[str, str] | None = None) -> bool:
    """Commit everything changed in ``tree`` (new files too), or the merge in progress there;
    whether a commit was made. ``env``: the identity to commit as (``GIT_AUTHOR_NAME``...)."""
    git(["add", "-A"], tree)
    staged = not git(["diff", "--cached", "--quiet"], tree, check=False).ok
    if not staged and not merging(tree):
        return False
    git([*identity(tree), "commit", "--no-verify", "-q", "-m", message], tree, env=env)
    return True


def diffstat(tree: Path, since: str, until: str = "HEAD") -> str:
    """``git diff --stat`` from the merge base of ``since`` and ``until`` to ``until``: the work on
    a branch since it left ``since``."""
    done = git(["diff", "--stat=100", f"{since}...{until}"], tree, check=False)
    return done.out.rstrip()
