"""What a command derived from a workspace, kept beside it: ``state/snapshot.NAME``.

``status`` and ``list`` derive what they show from the plan and the state files: the plan read
(markdown-it, the plan layer's classes, jinja for a condition), each result, the journal, the
event log for the estimates. Derived once, it is kept here under the stamp of its sources
(``snapshots/stamps``), and a later command whose sources have the same stamp loads it instead, as
``git status`` trusts its index and ninja its log: plain data, read with ``marshal``, without
importing what derived it.

Nothing shown ever comes from a stale snapshot:

- its key is the sources' stamp now, which any change to them changes (a hand edit of the plan
  that keeps its size and sets its mtime back included: the plan's bytes are hashed);
- it is kept only when its sources were settled before it began to be derived (``Stamp.settled``)
  and, when what it shows depends on the time (a task's Not before, a pause), until that time
  (``until``);
- a file that is not one (another version's, corrupt, cut short by a crash) is ignored and
  derived again: it opens with this format's magic, the key, and a digest of the rest.

Written atomically (a temp file renamed over it: concurrent commands each write a whole one,
the last one stays), and never through a symlink out of the workspace. A snapshot is a cache:
deleting it costs one command its time, nothing else.

A process that lives long (``serve``, ``mcp``) keeps what it derives in memory the same way:
``began = stamps.clock(state_dir)``; derive; ``stamp = stamps.sources(root)``; keep it while
``stamp.settled(began)``; use it while ``stamps.sources(root) == stamp``.
"""

from __future__ import annotations

import marshal
import os
import stat
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from orchestrator.state.snapshots.stamps import SNAPSHOT_PREFIX, Stamp, clock, digest, sources

if TYPE_CHECKING:
    from orchestrator.state.workspace import Workspace

MAGIC = b"orchsnp1"  # this format; another version's file is ignored
_DIGEST = 20
_HEADER = len(MAGIC) + 2 * _DIGEST
FOREVER = float("inf")
NEVER = 0.0  # a view that holds only now (a task running): shown, not kept
# How far behind this machine's clock a filesystem's may be, at most: its coarse tick (1-10 ms
# on Linux), or a network server's clock a little off.
MARGIN = 1_000_000_000

Payload = dict[str, Any]
Derived = tuple[Payload, float]  # what is shown, and until when it holds (``FOREVER``, ``NEVER``, an epoch)


def path_of(workspace: Workspace, name: str) -> str:
    return os.path.join(workspace.state_dir, SNAPSHOT_PREFIX + name)


def cached(workspace: Workspace, name: str, derive: Callable[[], Derived], extra: Iterable[str] = ()) -> Payload:
    """``derive()``'s payload for the workspace's sources now: the snapshot ``name`` when its
    stamp is theirs (``extra``: plain values the payload depends on beside them, a command's
    options), else derived, and kept when it may be."""
    stamp = sources(workspace.root, extra)
    found = load(workspace, name, stamp)
    if found is not None:
        return found
    began = _clock(workspace)
    payload, until = derive()
    if began is not None and until > time.time() and _state_dir(workspace):
        after = sources(workspace.root, extra)  # (what it was derived from: any change since ``began`` unsettles it)
        if after.settled(began):
            save(workspace, name, after, payload, until)
    return payload


def load(workspace: Workspace, name: str, stamp: Stamp) -> Payload | None:
    """The snapshot ``name`` if it is this format's, whole, of ``stamp`` and still holds; else ``None``."""
    try:
        fd = os.open(path_of(workspace, name), os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        data = _read(fd, info.st_size)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) < _HEADER or data[: len(MAGIC)] != MAGIC or data[len(MAGIC) : len(MAGIC) + _DIGEST] != stamp.key:
        return None
    body = memoryview(data)[_HEADER:]
    if digest(body) != data[len(MAGIC) + _DIGEST : _HEADER]:
        return None
    try:
        until, payload = marshal.loads(body)
    except (ValueError, EOFError, TypeError):
        return None
    if not isinstance(payload, dict) or not isinstance(until, float) or not time.time() < until:
        return None
    return payload


def save(workspace: Workspace, name: str, stamp: Stamp, payload: Payload, until: float = FOREVER) -> bool:
    """Keep ``payload`` as the snapshot ``name`` of ``stamp``, until ``until``; ``False`` when it
    cannot be (a payload of more than plain data, a workspace that cannot be written)."""
    from orchestrator.errors import WorkspaceError
    from orchestrator.state import store

    try:
        body = marshal.dumps((float(until), payload))
    except ValueError:  # (not plain data: a bug of the caller's, which its tests catch)
        return False
    data = store.Pieces(MAGIC + stamp.key + digest(body), body)  # (the body not copied: 50 MB at 50,000 tasks)
    try:
        workspace.check_inside()
        # Not durable: after a power cut it may be cut short, which its digest tells.
        store.write_bytes(workspace.state_dir / (SNAPSHOT_PREFIX + name), data, durable=False)
    except (OSError, WorkspaceError):
        return False
    return True


def _clock(workspace: Workspace) -> int | None:
    """When deriving began, as the filesystem's clock says: ``stamps.clock`` in the workspace's
    state/; before a command made it, this machine's clock less ``MARGIN`` (a command that fails
    then leaves nothing behind, not even a directory's time changed). ``None`` where nothing can
    be kept."""
    from orchestrator.errors import WorkspaceError

    try:
        workspace.check_inside()
        if not os.path.isdir(workspace.state_dir):
            return time.time_ns() - MARGIN
        return clock(workspace.state_dir)
    except (OSError, WorkspaceError):
        return None


def _state_dir(workspace: Workspace) -> bool:
    """Whether the workspace has its state/ (made now if need be, before the stamp it is kept
    under is taken: a directory made after would be a change of its sources)."""
    try:
        os.makedirs(workspace.state_dir, exist_ok=True)
    except OSError:
        return False
    return True


def _read(fd: int, size: int) -> bytes:
    """The file's bytes: in one read, as a regular file of ``size`` gives them (a file that grew
    since is not whole: its digest tells)."""
    data = os.read(fd, size)
    while len(data) < size and (more := os.read(fd, size - len(data))):
        data += more
    return data
