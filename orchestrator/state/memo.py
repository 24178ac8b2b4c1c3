"""What a long-lived process (``serve``, ``orchestrator mcp``) keeps of the files it read: a file's
parsed content (a plan, a result's record), kept by the file's identity and given again while the
file is the same, so that an agent polling ``status`` on a 1,000-task plan is answered without
reading 1,000 files again. Off in one-shot commands (``enable`` turns it on).

A file's identity is its inode, size, and mtime and ctime to the nanosecond, as git's index keeps
a file's: our own writes replace a file (a new inode), a person's edit changes its mtime and ctime
(which no one can set back). A file changed within ``RACY`` of being read is not kept: a clock
tick is coarser than a nanosecond (git's "racily clean" entries), so two edits of the same size
within one tick could look alike; such a file is read again each time until it has settled.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
RACY = 2_000_000_000  # nanoseconds a file must have been left alone before what was read of it is kept
LIMIT = 100_000  # entries kept at most (a second pass over a bigger workspace reads afresh)

_on = False
_kept: dict[Hashable, tuple[tuple[tuple[int, ...] | None, ...], Any]] = {}


def enable(on: bool = True) -> None:
    """Keep what is read from now on (``on``), or forget it all and keep nothing."""
    global _on
    _on = on
    _kept.clear()


def enabled() -> bool:
    return _on


def identity(path: str | os.PathLike[str]) -> tuple[int, ...] | None:
    """A file's identity (``None``: there is none): what must be the same for what was read of it to be."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _settled(stamps: Sequence[tuple[int, ...] | None]) -> bool:
    now = time.time_ns()
    return all(stamp is None or now - max(stamp[3], stamp[4]) > RACY for stamp in stamps)


def kept(key: Hashable, paths: Sequence[str | os.PathLike[str]], make: Callable[[], T]) -> T:
    """``make()``'s value, made once for ``paths`` as they are: given again while every one of them
    is the same file (``identity``), made again when any changed. With the memo off, ``make()``."""
    if not _on:
        return make()
    stamps = tuple(identity(path) for path in paths)
    found = _kept.get(key)
    if found is not None and found[0] == stamps:
        value: T = found[1]
        return value
    value = make()
    if tuple(identity(path) for path in paths) == stamps and _settled(stamps):  # (read whole, and settled)
        if len(_kept) >= LIMIT:
            _kept.clear()
        _kept[key] = (stamps, value)
    return value
