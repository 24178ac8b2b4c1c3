"""A branch pushed to a remote, and the remote asked where its branch stands: what a run's delivery
does with git (``run/deliver``). A remote is any git remote: a name of the repository's
(``origin``), a URL, or a path on disk (a bare repository).

A push never forces blindly: a branch the remote does not have is made, one it has is moved only
where the push holds what the remote holds (a fast-forward), or, given ``lease``, where the remote
still holds ``lease`` (what the tool pushed there itself: ``--force-with-lease``), so that nobody's
commit there is ever overwritten. What git refuses is a ``GitError`` with git's last line.

An agent in a worktree commits, and never pushes: its attempt's environment makes every push of
its processes go nowhere (``no_push``), unless its settings say ``agent_pushes: true``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from orchestrator.git.repo import git

PUSH_TIMEOUT = 300.0  # seconds a push or a look at the remote may take
# Where an agent's push goes instead of its remote: nowhere, its error saying why (git's own
# ``pushInsteadOf``, every URL and path rewritten; fetching is untouched).
NOWHERE = "/dev/null/no-push-from-an-agent-the-orchestrator-delivers/"


def no_push(env: Mapping[str, str]) -> dict[str, str]:
    """The variables that make every ``git push`` of a process with ``env`` (and its children) fail
    while fetches work: one more entry of git's ``GIT_CONFIG_COUNT`` configuration."""
    try:
        count = max(0, int(env.get("GIT_CONFIG_COUNT", "0")))
    except ValueError:
        count = 0
    return {"GIT_CONFIG_COUNT": str(count + 1), f"GIT_CONFIG_KEY_{count}": f"url.{NOWHERE}.pushInsteadOf",
            f"GIT_CONFIG_VALUE_{count}": ""}  # fmt: skip


def url_of(tree: Path, remote: str) -> str:
    """The URL ``remote`` stands for in ``tree``'s repository (a URL or a path: itself)."""
    done = git(["remote", "get-url", remote], tree, check=False)
    return done.out.strip() if done.ok and done.out.strip() else remote


def remote_sha(tree: Path, remote: str, branch: str) -> str | None:
    """The commit ``remote``'s branch ``branch`` is at, or ``None`` when it has no such branch."""
    done = git(["ls-remote", "--heads", "--", remote, f"refs/heads/{branch}"], tree, timeout=PUSH_TIMEOUT)
    for line in done.out.splitlines():
        sha, _, ref = line.partition("\t")
        if ref.strip() == f"refs/heads/{branch}":
            return sha.strip()
    return None


def push(tree: Path, remote: str, sha: str, branch: str, *, lease: str | None = None) -> None:
    """``sha`` pushed to ``remote`` as its branch ``branch``; with ``lease``, over what the remote
    holds when that is still ``lease``."""
    args = ["push", "--porcelain", "--no-verify"]
    if lease is not None:
        args.append(f"--force-with-lease=refs/heads/{branch}:{lease}")
    git([*args, "--", remote, f"{sha}:refs/heads/{branch}"], tree, timeout=PUSH_TIMEOUT)
