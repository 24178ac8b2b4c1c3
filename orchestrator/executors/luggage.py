"""What travels with an attempt to a worker that does not share the runner's files, and what comes back.

A cluster without a shared filesystem (the plan's ``shared_filesystem: false``): the worker does
not see the project or ``.orchestrator/``, and the runner stays the one writer of both.

    the runner: pack(launch, workspace) ──▶ Luggage ──(with the attempt)──▶ the worker: unpack
        the files of the workspace the launch names (its inputs listing, the upstream results
        it lists, the bodies directory), under a copy of the workspace in a directory of the
        attempt's own, every path to them in its environment and arguments rewritten;
        its working directory: empty, or, for a task with ``isolation: worktree``, a clone of
        its branch from a git bundle (the runner's worktree of it: the run's base commit with
        what the task builds on merged)
    the worker: the process runs there ──▶ gather ──▶ Returned ──▶ the runner: unload
        the files it wrote in its working directory, written into the launch's ``cwd``; or its
        work committed on its branch (the commit the runner would make, message and author
        alike), the new commits in a git bundle fetched into the task's worktree: the merge
        queue takes it from there exactly as a local worktree task's.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import GitError
from orchestrator.executors.base import Checkout
from orchestrator.git.repo import commit_all, current_branch, git, rev

_MOST = 256 * 1024 * 1024  # bytes of files an attempt may send back (its working directory, not a checkout)


@dataclass(frozen=True, slots=True)
class Luggage:
    workspace: str  # the runner's workspace: the prefix of every path rewritten
    files: Mapping[str, bytes]  # path under the workspace -> its bytes
    bundle: bytes | None = None  # the task's branch (isolation: worktree), else None
    branch: str = ""
    start: str = ""  # the commit the branch is at as the attempt starts
    inside: str = ""  # the working directory, relative to the checkout's top
    message: str = ""
    author: Mapping[str, str] = field(default_factory=dict)  # GIT_AUTHOR_NAME ... of the runner's commits


@dataclass(frozen=True, slots=True)
class Returned:
    files: Mapping[str, tuple[bytes, bool]] = field(default_factory=dict)  # relative path -> (bytes, executable)
    bundle: bytes | None = None  # the branch's new commits


# --- on the runner -----------------------------------------------------------------------------


def pack(
    workspace: Path, cwd: Path, env: Mapping[str, str], argv: tuple[str, ...], checkout: Checkout | None
) -> Luggage:
    """What an attempt needs of this machine on a worker that does not share its files."""
    root = str(workspace)
    files: dict[str, bytes] = {}
    named = [*env.values(), *argv]
    listing = env.get("ORCHESTRATOR_INPUTS_FILE")
    if listing and os.path.isfile(listing):
        named += Path(listing).read_text(encoding="utf-8").splitlines()
    for value in named:
        for path in _under(value, root):
            files.setdefault(os.path.relpath(path, root), Path(path).read_bytes())
    if checkout is None:
        return Luggage(root, files)
    tree = checkout.tree
    branch, start = current_branch(tree), rev(tree, "HEAD")
    if branch is None or start is None:
        raise GitError(f"{tree}: not on its branch, so it cannot be sent to a worker")
    with tempfile.TemporaryDirectory(prefix="orchestrator-bundle-") as temp:
        bundle = Path(temp) / "branch.bundle"
        git(["bundle", "create", "-q", str(bundle), f"refs/heads/{branch}"], tree)
        data = bundle.read_bytes()
    inside = os.path.relpath(cwd, tree)
    return Luggage(root, files, data, branch, start, inside, checkout.message, _author(tree))


def unload(returned: Returned, cwd: Path, checkout: Checkout | None, luggage: Luggage) -> None:
    """What an attempt sent back, where it would have been had it run here."""
    from orchestrator.state import store

    for name, (data, executable) in returned.files.items():
        path = cwd / name
        store.write_bytes(path, data)
        if executable:
            path.chmod(path.stat().st_mode | 0o111)
    if returned.bundle is None or checkout is None:
        return
    with tempfile.TemporaryDirectory(prefix="orchestrator-bundle-") as temp:
        bundle = Path(temp) / "work.bundle"
        bundle.write_bytes(returned.bundle)
        git(["fetch", "-q", str(bundle), f"refs/heads/{luggage.branch}"], checkout.tree)
        git(["merge", "--ff-only", "-q", "FETCH_HEAD"], checkout.tree)


def _under(value: str, root: str) -> Iterator[str]:
    """The files ``value`` names under ``root`` (a file, or the files of a directory)."""
    if not value.startswith(root + os.sep) or "\n" in value:
        return
    if os.path.isfile(value):
        yield value
    elif os.path.isdir(value):
        for top, _, names in os.walk(value):
            yield from (os.path.join(top, name) for name in names if os.path.isfile(os.path.join(top, name)))


def _author(tree: Path) -> dict[str, str]:
    """The identity the runner's own commits have there, for the worker's commit to have it too."""
    found: dict[str, str] = {}
    for role in ("AUTHOR", "COMMITTER"):
        done = git(["var", f"GIT_{role}_IDENT"], tree, check=False)
        name, _, rest = done.out.partition(" <")
        if done.ok and rest:
            found[f"GIT_{role}_NAME"], found[f"GIT_{role}_EMAIL"] = name, rest.split(">", 1)[0]
    return found


# --- on the worker -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Unpacked:
    place: Path  # the attempt's own directory on the worker (removed by ``gather``'s caller)
    work: Path  # its working directory's top: the checkout, or an empty directory
    cwd: str
    env: dict[str, str]
    argv: tuple[str, ...]


def unpack(luggage: Luggage, env: Mapping[str, str], argv: tuple[str, ...], under: str | None) -> Unpacked:
    """The attempt's directory on this worker, its files written and its paths rewritten."""
    place = Path(tempfile.mkdtemp(prefix="orchestrator-attempt-", dir=under))
    try:
        copy = str(place / "workspace")
        for name, data in luggage.files.items():
            path = Path(copy) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data.replace(os.fsencode(luggage.workspace + os.sep), os.fsencode(copy + os.sep)))
        work = place / "work"
        if luggage.bundle is None:
            work.mkdir()
            cwd = work
        else:
            bundle = place / "branch.bundle"
            bundle.write_bytes(luggage.bundle)
            git(["clone", "-q", "-b", luggage.branch, str(bundle), str(work)], place)
            cwd = work / luggage.inside

        def moved(value: str) -> str:
            return value.replace(luggage.workspace + os.sep, copy + os.sep)

        rewritten = {name: moved(value) for name, value in env.items()}
        return Unpacked(place, work, str(cwd), rewritten, tuple(moved(arg) for arg in argv))
    except BaseException:
        shutil.rmtree(place, ignore_errors=True)
        raise


def gather(luggage: Luggage, unpacked: Unpacked) -> Returned:
    """What the attempt leaves to send back: its work committed and bundled, or its files."""
    work = unpacked.work
    if luggage.bundle is not None:
        commit_all(work, luggage.message, env=luggage.author)
        if rev(work, "HEAD") == luggage.start:
            return Returned()
        bundle = unpacked.place / "work.bundle"
        git(["bundle", "create", "-q", str(bundle), f"refs/heads/{luggage.branch}", f"^{luggage.start}"], work)
        return Returned(bundle=bundle.read_bytes())
    files: dict[str, tuple[bytes, bool]] = {}
    total = 0
    for top, _, names in os.walk(work):
        for name in names:
            path = os.path.join(top, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            total += os.path.getsize(path)
            if total > _MOST:
                raise OSError(f"it wrote more than {_MOST // 2**20} MiB in its working directory on the worker")
            files[os.path.relpath(path, work)] = (Path(path).read_bytes(), os.access(path, os.X_OK))
    return Returned(files=files)
