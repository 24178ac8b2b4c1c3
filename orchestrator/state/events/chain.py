"""The event log's hash chain: every line written carries ``prev``, the digest of the whole line
before it (its newline included), and ``state/events.head`` holds where the chain ends.

An edit of a line, a line inserted, removed or moved, each leaves a line whose ``prev`` is not the
digest of the line before it: ``verify`` (``audit``) names the first. Cutting lines off the end
leaves no such line, so the head, kept beside the log, says how many lines the log had, how many
bytes, and the digest of its last line. A writer takes its turn under one lock
(``state/events.lock``): it reads the head and the log's size, the last line only when the head
does not say it, writes its lines in one ``write()`` and the new head (``append``). The runner
does that once per flush, a few syscalls and, while it is the only writer, no read of the log.

The head is one record of ``HEAD_SIZE`` bytes, overwritten in place by one ``pwrite``: within one
disk sector, which a disk writes whole, and read under the lock, so no reader sees half of one.
Not a temp file renamed over it, as ``store`` writes a file: on ext4 a rename over a file first
writes the new file's data out (its replace-by-rename heuristic), 2 ms a flush here, 0.6 ms a task
of a 1,000-task run.

What a writer finds, and chains to:

- the head agrees with the log (the line that ends where it says is the one it says, whatever
  was appended after it: a writer killed between its two writes, a line of a version before):
  the log's last line, as it is;
- the head does not agree (lines cut off, the last line edited): the line the head says came
  last, so that the first new line does not chain where the log was changed, and ``verify``
  names it: a writer never covers up a change;
- no head (a log from before the chain, or none yet): the last line, or nothing (``NOTHING``)
  for an empty log. A log whose lines before carry no ``prev`` is the chain's unchained past.

A line torn by a power cut (the file ends without a newline) is ended by the next writer, which
starts on a new line: the torn line is a line of the chain, that nothing reads (the log's
readers skip a line that is no JSON), and the next line chains to it as it stands.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

try:  # (hashlib would load OpenSSL's bindings: a few ms of every command that appends a line)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - an interpreter built without it
    from hashlib import blake2b

from orchestrator.state import store
from orchestrator.state.lock import turn

HEAD_NAME = "events.head"
HEAD_SIZE = 128  # bytes of the head's record: JSON, padded with spaces, and a newline
LOCK_NAME = "events.lock"
KEY = "prev"  # the key each line's link is under: last in the line, after every key of its event
_SUFFIX = b', "prev": "'
_BLOCK = 1 << 16  # bytes read at a time, backwards, to find where a line begins
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | _NOFOLLOW  # the log, as a writer opens it


def digest(data: bytes) -> str:
    """The chain's digest of ``data``: BLAKE2b of 20 bytes, in hex (40 characters)."""
    return blake2b(data, digest_size=20).hexdigest()


NOTHING = digest(b"")  # the ``prev`` of a log's first line: nothing came before it


def head_file(log: Path) -> Path:
    return log.with_name(HEAD_NAME)


def lock_file(log: Path) -> Path:
    return log.with_name(LOCK_NAME)


@dataclass(frozen=True, slots=True)
class Head:
    """Where the chain ends: the log's ``lines`` and ``bytes`` after its last write, and the
    ``digest`` of its last line. A copy kept elsewhere anchors the log to that moment."""

    lines: int
    bytes: int
    digest: str

    def as_json(self) -> dict[str, int | str]:
        return {"lines": self.lines, "bytes": self.bytes, "digest": self.digest}


class BadHead(ValueError):
    """``state/events.head`` is there and holds no head this version writes."""


def read_head(log: Path) -> Head | None:
    """The log's head, ``None`` when there is none; ``BadHead`` for a file that is none."""
    try:
        fd = os.open(head_file(log), os.O_RDONLY | os.O_CLOEXEC | _NOFOLLOW)
        try:
            data = json.loads(os.read(fd, HEAD_SIZE))  # (a longer file: what is past the record is no part of it)
        finally:
            os.close(fd)
        found = Head(int(data["lines"]), int(data["bytes"]), str(data["digest"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadHead(str(exc)) from None
    if found.lines < 1 or found.bytes < found.lines or len(found.digest) != len(NOTHING):
        raise BadHead(f"{found} is no head of a log")
    return found


def write_head(log: Path, head: Head) -> None:
    """``head`` as the log's, in place (see the module's docstring); through no symlink."""
    record = json.dumps(head.as_json()).encode("ascii").ljust(HEAD_SIZE - 1) + b"\n"
    fd = os.open(head_file(log), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | _NOFOLLOW, 0o666)
    try:
        if os.pwrite(fd, record, 0) != len(record):
            raise OSError(errno.EIO, "written short")
    except OSError as exc:
        raise store.named_error(exc, head_file(log)) from exc
    finally:
        os.close(fd)


def link(line: bytes, prev: str) -> bytes:
    """``line`` (one JSON object and its newline) with ``prev`` as its last key."""
    body = line[:-2]  # (without ``}\n``)
    joint = _SUFFIX if body.rstrip() != b"{" else _SUFFIX[2:]
    return body + joint + prev.encode("ascii") + b'"}\n'


def linked(lines: Sequence[bytes], prev: str) -> tuple[bytes, str]:
    """``lines`` each linked to the one before it, the first to ``prev``: their bytes, and the
    digest of the last."""
    out: list[bytes] = []
    for line in lines:
        line = link(line, prev)
        prev = digest(line)
        out.append(line)
    return b"".join(out), prev


def line_before(fd: int, end: int) -> bytes:
    """The line of the file ``fd`` that ends at byte ``end`` (its newline included, when it has
    one), read backwards a block at a time: never the whole log."""
    pieces: list[bytes] = []
    stop = end
    while stop > 0:
        start = max(0, stop - _BLOCK)
        block = os.pread(fd, stop - start, start)
        # (the line's own newline, at ``end - 1``, is not where it begins)
        found = block.rfind(b"\n", 0, len(block) - 1 if stop == end else len(block))
        if found >= 0:
            pieces.append(block[found + 1 :])
            break
        pieces.append(block)
        stop = start
    return b"".join(reversed(pieces))


def count_lines(fd: int, start: int, end: int) -> int:
    """How many newlines the file ``fd`` holds from byte ``start`` to ``end``, a block at a time."""
    count = 0
    while start < end:
        block = os.pread(fd, min(1 << 20, end - start), start)
        if not block:
            break
        count += block.count(b"\n")
        start += len(block)
    return count


def _holds(fd: int, size: int, head: Head) -> bool:
    """Whether the log, ``size`` bytes, still has the line ``head`` says ended it then."""
    if head.bytes > size:
        return False
    last = line_before(fd, head.bytes)
    return last.endswith(b"\n") and digest(last) == head.digest


def _start(fd: int, size: int, head: Head | None) -> tuple[bool, str, int]:
    """Where the next lines go in the log open at ``fd`` (``size`` bytes): whether it ends torn
    (no newline: the next write starts with one), the ``prev`` of its first line, and how many
    lines the log holds then (a torn line counted, ended)."""
    torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
    if head is not None and head.bytes == size and not torn:
        return False, head.digest, head.lines  # (the one writer since: nothing read)
    if head is not None and not _holds(fd, size, head):
        return torn, head.digest, count_lines(fd, 0, size) + torn
    counted = head.lines + count_lines(fd, head.bytes, size) if head is not None else count_lines(fd, 0, size)
    if size == 0:
        return False, NOTHING, 0
    last = line_before(fd, size) + (b"\n" if torn else b"")
    return torn, digest(last), counted + torn


def append(path: Path, lines: Sequence[bytes], fd: int | None = None, *, within: float | None = None) -> None:
    """``lines`` (whole JSON lines) appended to the log at ``path`` in one write, each linked to
    the one before it, and its head written after: all under the log's lock, so that a run and
    commands appending at once never chain two lines to the same one. ``fd``: the log open with
    ``FLAGS`` (the runner keeps it open); else it is opened here. ``within``: seconds the lock
    is waited for at most (a command's; a run waits for its turn), then ``LockedError``, nothing
    written."""
    with turn(lock_file(path), within=within):
        _append_held(path, lines, fd)


@contextlib.contextmanager
def holding(path: Path, *, within: float | None = None) -> Iterator[Callable[[Sequence[bytes]], None]]:
    """The log's lock held while its holder writes elsewhere first, then appends here as ``append``
    does, under the same hold: ``approve`` records a person's word, then asks the run going on to
    take it, or does neither (``within``: as ``append``'s)."""
    with turn(lock_file(path), within=within):
        yield lambda lines: _append_held(path, lines)


def _append_held(path: Path, lines: Sequence[bytes], fd: int | None = None) -> None:
    """``append``'s write, its caller holding the log's lock."""
    own = os.open(path, FLAGS, 0o666) if fd is None else fd
    try:
        size = os.fstat(own).st_size
        try:
            head = read_head(path)
        except BadHead:
            head = None  # (``verify`` says it; the log is not held up by it)
        torn, prev, count = _start(own, size, head)
        data, last = linked(lines, prev)
        data = b"\n" + data if torn else data
        store.write_all(own, data, path)
        write_head(path, Head(count + len(lines), size + len(data), last))
    finally:
        if fd is None:
            os.close(own)
