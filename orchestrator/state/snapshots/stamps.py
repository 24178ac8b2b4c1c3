"""What a workspace's views were derived from, as one value: the sources' stamp.

``status`` and ``list`` show what they derive from the plan and the state files; a snapshot of
it (``snapshots/snapshot``) is kept under the stamp of its sources, and used while the stamp is the
same. A process that lives long (``serve``, ``mcp``) may keep what it derived in memory under
the same stamp (``sources``, ``clock``, ``Stamp.settled``: the recipe is ``snapshot.cached``'s).

A stamp covers:

- master_plan.md's bytes, hashed: any change to them is a new stamp, a hand edit that keeps the
  file's size and sets its mtime back included;
- every other file the view is derived from (``SOURCES``: results, briefs, state, archive,
  context, checkpoints, templates, profiles, types.yaml; not logs/, state/inputs/, cache/ or
  worktrees/, which it never reads, nor the briefs and results of a row's instances (``T-03[2]``:
  a view reads the row's ``state/items``, which the run keeps)): its path, size, mtime, ctime and
  inode. A person can set mtime back, never ctime (the kernel sets it to now at every change, ``touch -d`` included),
  and a file replaced by a rename has another inode. A file being written beside its final name
  (``.tmp-*``, ``state/store``'s) and the snapshots themselves are left out;
- the directories profiles are read from outside the workspace (the project's ``.claude/agents``,
  the user's), the same way;
- what else changes what a command shows from the same files: the orchestrator's version and
  where it is installed (each of its files' mtime, size and inode), the
  interpreter, the time zone and the year (moments are shown in local time, the year when it is
  not this one), the working directory, and the variables the plan layer reads (``HOME``,
  ``CLAUDE_CONFIG_DIR``, ``TZ``, ``XDG_CONFIG_HOME``, every ``ORCHESTRATOR_*``).

A file's times are only as fine as its filesystem's clock (a few ms on ext4): a file changed
twice in one tick may keep its stamp. So, as git does with the entries of its index it calls
racily clean, a stamp is **settled** only when every source it covers was last changed before
the moment the view began to be derived, as the filesystem's own clock says (the ctime of a
file made then: ``clock``). A view derived from unsettled sources is shown once and not kept.
"""

from __future__ import annotations

import marshal
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

try:  # (hashlib would load OpenSSL's bindings: a few ms of every command)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - an interpreter built without it
    from hashlib import blake2b

from orchestrator.documents import TooLarge, read_regular
from orchestrator.paths import PLAN_FILE
from orchestrator.version import __version__

FORMAT = 3  # what a stamp covers: bump it when that changes
PLAN_READ = 16 << 20  # bytes of master_plan.md hashed at most (``plan/model.READ_LIMIT`` reads 10 MiB)
SNAPSHOT_PREFIX = "snapshot."  # state/snapshot.NAME: a snapshot is not a source of itself
TEMP_PREFIX = ".tmp-"  # a file written beside its final name (``state/store``), not a source yet
_PACKAGE = Path(__file__).resolve().parents[2]  # orchestrator/
_VARIABLES = ("HOME", "CLAUDE_CONFIG_DIR", "TZ", "XDG_CONFIG_HOME")


class Stamp:
    """The sources' stamp: ``key`` (a digest of everything it covers: equal keys, the same
    sources) and ``newest`` (the latest ctime among the files it covers, in ns)."""

    __slots__ = ("key", "newest")

    def __init__(self, key: bytes, newest: int) -> None:
        self.key = key
        self.newest = newest

    def settled(self, began: int) -> bool:
        """Whether every source was last changed before ``began`` (``clock``'s moment, taken
        before the view was derived): only then may the view be kept under this stamp."""
        return self.newest < began

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Stamp) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"Stamp({self.key.hex()[:12]}, newest={self.newest})"


# What ``status`` and ``list`` read under a workspace, each directory to the depth it is read at
# (1: its own files, and its directories' names; ``None``: all the way down). Not logs/, state/inputs/,
# cache/ or worktrees/ (whole checkouts): 7,000 files after a run of 1,000 tasks, none of them read.
# ``tests/test_snapshot.py`` holds this to every file a status of a busy workspace opens or lists.
SOURCES: tuple[tuple[str, int | None], ...] = (
    ("", 1),  # master_plan.md (its bytes), types.yaml
    ("state", 1),
    ("state/items", 1),  # (a row run per item: its counts, ``state/items``)
    ("results", 1),
    ("agent_tasks", 1),  # (a brief edited by hand makes its completed task out of date)
    ("archive", 1),
    ("context", 1),
    ("checkpoints", 2),  # (each one's manifest)
    ("templates", None),
    ("agents", None),
)


def sources(root: Path, extra: Iterable[str] = ()) -> Stamp:
    """The stamp of the workspace at ``root`` now; ``extra``: plain values the view depends on
    beside its files (a command's options), which the key covers too."""
    digest = blake2b(digest_size=20)
    digest.update(marshal.dumps((FORMAT, tuple(extra), _setting())))
    plan = os.path.join(root, PLAN_FILE)
    newest = _plan(plan, digest)
    entries: list[tuple[object, ...]] = []
    state = os.path.join(root, "state")
    for top, depth in _places(root):
        newest = max(newest, _tree(top, depth, entries, plan, snapshots=top == state))
    digest.update(marshal.dumps(entries))
    return Stamp(digest.digest(), newest)


def covered(root: Path) -> set[str]:
    """The paths of every file and directory a stamp of ``root`` covers (its tests' question:
    is each file a command reads among them?)."""
    entries: list[tuple[object, ...]] = []
    places = _places(root)
    for top, depth in places:
        _tree(top, depth, entries, None)
    return {top for top, _ in places} | {str(entry[0]) for entry in entries}


def _places(root: Path) -> list[tuple[str, int | None]]:
    """``SOURCES`` under ``root``, and the profiles' directories outside it, each with its depth."""
    found = [(os.path.join(root, place) if place else str(root), depth) for place, depth in SOURCES]
    return found + [(directory, None) for directory in _profile_dirs(root)]


def digest(data: bytes | memoryview) -> bytes:
    """A digest of ``data`` as the stamps make theirs: what a snapshot's content is checked by."""
    return blake2b(data, digest_size=20).digest()


def _plan(path: str, digest: Any) -> int:
    """master_plan.md's bytes into ``digest`` (its own times do not matter: a copy of the same
    bytes is the same plan), and its ctime (``Stamp.newest``: a plan saved as it is read is
    unsettled). Only a regular file is read: a FIFO or /dev/zero in its place would block or
    never end, and the command says what it is."""
    try:
        data = read_regular(Path(path), PLAN_READ)
        digest.update(data)
        return os.stat(path).st_ctime_ns
    except TooLarge as exc:
        digest.update(f"too large: {exc.size}".encode())
    except OSError as exc:  # (missing, not a file: the command says so, and its stamp which)
        digest.update(f"no plan: {exc.errno} {exc.strerror}".encode())
    return 0


def clock(directory: Path) -> int:
    """The filesystem's time now, in ns, as it stamps a file it changes (its own clock: coarser
    than ``time.time_ns`` and, on a network filesystem, the server's): the ctime of a file made
    in ``directory`` and removed. ``OSError`` where no file can be made there."""
    path = os.path.join(directory, f"{TEMP_PREFIX}clock.{os.getpid()}.{time.monotonic_ns()}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        return os.fstat(fd).st_ctime_ns
    finally:
        os.close(fd)
        os.unlink(path)


def _setting() -> tuple[Any, ...]:
    """What changes what is shown from the same files: the code, the clock's zone and year, where
    the command stands, the variables the plan layer reads."""
    now = time.localtime()
    try:
        zone = os.stat("/etc/localtime")
        zone_file: tuple[int, int] = (zone.st_ino, zone.st_mtime_ns)
    except OSError:
        zone_file = (0, 0)
    try:
        here = os.getcwd()
    except OSError:  # (a directory removed under the command)
        here = ""
    variables = sorted((k, v) for k, v in os.environ.items() if k in _VARIABLES or k.startswith("ORCHESTRATOR_"))
    return (
        __version__,
        str(_PACKAGE),
        _code(),
        sys.hexversion,
        marshal.version,
        now.tm_year,
        now.tm_gmtoff,
        zone_file,
        here,
        tuple(variables),
    )


def _code() -> tuple[tuple[object, ...], ...]:
    """Each of the package's files (not ``__pycache__``) with its mtime, size and inode, as this
    process found them first (the code it runs is the code it loaded): an install or a checkout
    replaces a file, an editor writes one in place or replaces it. Not the directories' mtimes:
    those change when a ``__pycache__`` is first made in one, which a command importing a module
    for the first time does, and every process started before would then disagree with every
    process started after on the same sources."""
    if not _CODE:
        found: list[tuple[object, ...]] = []
        stack = [str(_PACKAGE)]
        while stack:
            directory = stack.pop()
            try:
                with os.scandir(directory) as listing:
                    for entry in listing:
                        if entry.name == "__pycache__":
                            continue
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                            continue
                        info = entry.stat(follow_symlinks=False)
                        found.append((entry.path, info.st_mtime_ns, info.st_size, info.st_ino))
            except OSError:
                found.append((directory, "error"))
        _CODE.append(tuple(sorted(found)))
    return _CODE[0]


_CODE: list[tuple[tuple[object, ...], ...]] = []


def _profile_dirs(root: Path) -> list[str]:
    """The profiles' directories outside the workspace (``plan/config/profiles.search_dirs``,
    which reads the same variables; the workspace's own agents/ is in its tree)."""
    config = os.environ.get("CLAUDE_CONFIG_DIR")
    user = os.path.expanduser(config) if config else os.path.join(os.path.expanduser(os.environ.get("HOME", "~")),
                                                                 ".claude")  # fmt: skip
    return [os.path.join(root.parent, ".claude", "agents"), os.path.join(user, "agents")]


def _tree(
    top: str, depth: int | None, entries: list[tuple[object, ...]], plan: str | None, *, snapshots: bool = False
) -> int:
    """Every file and directory under ``top`` to ``depth`` (through links, each directory once)
    appended to ``entries`` as (path, size, mtime, ctime, inode), a directory as (path,): its own
    times change as files are written in it, which its entries say already; the ``plan`` (its
    bytes are hashed) and, in state/ (``snapshots``), the snapshots left out. In the order the
    directory lists them: the same while it is the same. Returns the newest ctime."""
    newest = 0
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[str, int]] = [(top, 1)]
    while stack:
        directory, level = stack.pop()
        try:
            info = os.stat(directory)
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            listing = os.scandir(directory)
        except FileNotFoundError:
            continue
        except OSError as exc:  # (unreadable: its state is what it is, and says so)
            entries.append((directory, "error", exc.errno))
            continue
        with listing:
            for entry in listing:
                name = entry.name
                if (
                    name.startswith(TEMP_PREFIX)
                    or (snapshots and name.startswith(SNAPSHOT_PREFIX))
                    or entry.path == plan
                    or "[" in name  # an instance's brief or result: a view reads its row's state/items instead
                ):
                    continue
                try:
                    if entry.is_dir():
                        entries.append((entry.path,))
                        if depth is None or level < depth:
                            stack.append((entry.path, level + 1))
                        continue
                    stat = entry.stat()
                except OSError:  # (gone meanwhile, or a link to nothing)
                    entries.append((entry.path, "missing"))
                    continue
                entries.append((entry.path, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino))
                newest = max(newest, stat.st_ctime_ns)
    return newest
