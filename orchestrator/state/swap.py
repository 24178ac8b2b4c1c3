"""The one way the tool rewrites master_plan.md, a file a person edits while runs go on.

``rewrite`` never loses an edit made while it works: it swaps its new file with the old one in
one step (``store.exchange``), then compares what it took out with what it read. If a person (or
an editor) saved meanwhile, their file is what came out: the change is made to *that* text and
swapped in again (theirs is swapped straight back first, so that nobody reads a file without
their save). An editor that writes in place into the file it opened just before the swap is
caught by reading what came out again a few milliseconds later, and, should its write come later
still, at the next rewrite of the file (the file taken out is kept open until then, and a run
rewrites the file within a second or two of such a write: ``saved_late``). Should somebody
change our file in the instant before it is swapped back, their change is kept beside
the plan (``master_plan.md.saved-<time>-<pid>``), never dropped.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator import timing
from orchestrator.documents import read_regular
from orchestrator.plan.model import READ_LIMIT
from orchestrator.state import store

_ATTEMPTS = 50  # swaps tried while others keep saving the file
_HELD_AT_MOST = 8  # plan files whose last swapped-out file is kept open (``_Held``)


class PlanFileUnreadable(ValueError):
    """Raised by ``rewrite`` when the plan file is not UTF-8 (a person is mid-edit, say): nothing
    of ours is written, and the file stays as it is (or, a person's late save being such a text,
    becomes that save as it is: ``saved_late``)."""


def rewrite(path: Path, change: Callable[[str], str], *, durable: bool = True) -> bool:
    """Replace ``path`` with ``change(its text)``, never losing a save someone made meanwhile;
    ``False`` when that changes nothing or there is no file (at any moment: a tool that saves by
    deleting and writing anew may have it gone for an instant). A byte order mark stays. A late
    save (``saved_late``) is what is changed, or, when it is no text ``change`` takes, is put
    back as it is before ``PlanFileUnreadable`` is raised."""
    return rewrite_utf8(path, lambda data: change(data.decode("utf-8")).encode("utf-8"), durable=durable)


def rewrite_utf8(path: Path, change: Callable[[bytes], bytes], *, durable: bool = True) -> bool:
    """``rewrite``, ``change`` given the text's UTF-8 (checked, its byte order mark left out) and
    giving back the new text's: a large plan is never held decoded, 4 bytes a character once it
    holds one emoji."""
    try:
        return _rewrite(path, change, durable)
    except FileNotFoundError:
        _held.drop(path)
        return False


def _rewrite(path: Path, change: Callable[[bytes], bytes], durable: bool) -> bool:
    expected = _read(path)  # what we believe the file holds
    held = _held.take(path)
    failed = False
    try:
        return _rewrite_from(path, change, durable, expected, held)
    except BaseException:
        failed = True
        raise
    finally:
        if held is not None and failed and held.unsaved:  # its late save is for the next rewrite: never dropped
            _held.give_back(path, held)
        elif held is not None:
            held.out.close()


def _rewrite_from(
    path: Path, change: Callable[[bytes], bytes], durable: bool, expected: bytes, held: _Kept | None
) -> bool:
    late = held.late_save(expected) if held is not None else None
    source = late if late is not None else expected  # the text to change: the person's latest
    for _ in range(_ATTEMPTS):
        try:
            data = _changed(source, change)
        except PlanFileUnreadable:
            if held is not None and source is late:  # their late save is no text we can change: back as it is
                _put_back(path, source, expected, durable)
                held.unsaved = False
            raise
        if data == expected:  # the file holds just that already
            return source is not expected
        temp = Path(store.write_temp(path, data, sync=durable))
        try:
            current = _read(path)
            if current != expected:  # saved while the new text was made: start from that save
                os.unlink(temp)
                expected = source = current
                continue
            swapped = store.exchange(temp, path)
        except FileNotFoundError:  # gone meanwhile: ours goes too, nothing is put in its place
            temp.unlink(missing_ok=True)
            raise
        if not swapped:  # no atomic swap here: replace, and hope
            store.replace(temp, path, durable=durable)
            return True
        if not _holds(temp, expected):  # saved between the look and the swap: theirs goes back
            _swap_back(temp, path, data)
            expected = source = _read(path)
            continue
        out = _Out(temp, expected)
        if out.settled():
            _held.keep(path, out, data)
            if durable:
                store.fsync_directory(path.parent)
            return True
        expected, source = data, out.steady()  # a late save into the file taken out: it gets the blocks
        out.close()
    # Saved again and again faster than we can swap: put their latest back as it is.
    store.write_bytes(path, source, durable=durable)
    return True


def _read(path: Path) -> bytes:
    """The plan file's bytes; a FIFO or a device put in its place is an ``OSError``, not a hang."""
    return read_regular(path, READ_LIMIT)


def _swap_back(temp: Path, path: Path, ours: bytes) -> None:
    """Put the person's file (swapped out to ``temp`` an instant ago) back at ``path``. Should
    someone have changed ours in that instant, their change is kept beside the plan, never lost."""
    store.exchange(temp, path)
    came_back = temp.read_bytes()
    if came_back == ours:
        os.unlink(temp)
        return
    os.rename(temp, _aside(path))


def _put_back(path: Path, late: bytes, ours: bytes, durable: bool) -> None:
    """Put a person's late save back at ``path`` as it is, if the plan still holds ``ours``;
    else (saved again since) the newer save stays, and the late one is kept beside it."""
    temp = Path(store.write_temp(path, late, sync=durable))
    if not store.exchange(temp, path):
        store.replace(temp, path, durable=durable)
        return
    if temp.read_bytes() == ours:
        os.unlink(temp)
        return
    store.exchange(temp, path)  # (the newer save back; the late one out, where it goes aside)
    os.rename(temp, _aside(path))


def _aside(path: Path) -> Path:
    return path.with_name(f"{path.name}.saved-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")


class _Out:
    """The file a swap took out, open, its name gone (nothing is left behind on disk)."""

    def __init__(self, temp: Path, held: bytes) -> None:
        """``held``: what the caller read in it after the swap. Kept as a digest until the next
        rewrite (a copy of a large plan would be most of what a run holds)."""
        self.fd = os.open(temp, os.O_RDONLY | os.O_CLOEXEC)
        os.unlink(temp)
        self.digest = _digest(held)
        self.key = self._key()

    def read(self) -> bytes:
        chunks = []
        offset = 0
        while chunk := os.pread(self.fd, 1 << 20, offset):
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks)

    def read_digest(self) -> bytes:
        """``_digest`` of what it holds, read a piece at a time (never a second copy of a plan whole)."""
        digest = hashlib.blake2b(digest_size=16)
        offset = 0
        while chunk := os.pread(self.fd, 1 << 16, offset):
            digest.update(chunk)
            offset += len(chunk)
        return digest.digest()

    def steady(self, looks: int = 40) -> bytes:
        """What it holds, read until two reads a moment apart agree (at most ``looks`` times): a
        save still being written is not taken halfway."""
        data = self.read()
        for _ in range(looks):
            time.sleep(timing.current().swap_settle)
            again = self.read()
            if again == data:
                break
            data = again
        return data

    def _key(self) -> tuple[int, int]:
        found = os.fstat(self.fd)
        return found.st_mtime_ns, found.st_size

    def written(self) -> float | None:
        """Seconds since it was last written, if it was since it was taken out (one ``fstat``)."""
        key = self._key()
        if key == self.key:
            return None
        return max(0.0, time.time() - key[0] / 1e9)

    def settled(self) -> bool:
        """Whether it still holds what it held, a moment later. An editor that saves in place may
        have opened the file just before the swap: its write then lands here, a little after."""
        time.sleep(timing.current().swap_settle)
        return self.read_digest() == self.digest

    def close(self) -> None:
        os.close(self.fd)


@dataclass(slots=True)
class _Kept:
    """A file a swap took out, held (``_Held``), and the digest of what the swap put in."""

    out: _Out
    put: bytes
    unsaved: bool = True  # a late save in it may not be in the plan yet (until ``late_save`` says)

    def late_save(self, live: bytes) -> bytes | None:
        """What a late in-place save wrote into it, if one did and the live file is still what
        the swap put in (else the live file is the newer save)."""
        now: bytes | None = None
        if _digest(live) == self.put and self.out.read_digest() != self.out.digest:
            now = self.out.steady()  # (a save still being written: its end, not its first bytes)
        self.unsaved = now is not None
        return now


class _Held:
    """The file each path's last swap took out, kept open until that path's next rewrite: a save
    that lands in it even later than ``_Out.settled`` looks is found then, and kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, _Kept] = {}

    def keep(self, path: Path, out: _Out, put: bytes) -> None:
        with self._lock:
            done = [self._files.pop(str(path), None)]
            self._files[str(path)] = _Kept(out, _digest(put))
            while len(self._files) > _HELD_AT_MOST:  # the longest held goes
                done.append(self._files.pop(next(iter(self._files))))
        for old in done:
            if old is not None:
                old.out.close()

    def give_back(self, path: Path, kept: _Kept) -> None:
        """``kept``, taken by a rewrite that did not get through, held again (unless a newer one is)."""
        with self._lock:
            if str(path) not in self._files:
                self._files[str(path)] = kept
                return
        kept.out.close()

    def written(self, path: Path) -> float | None:
        """``saved_late``'s answer."""
        with self._lock:
            kept = self._files.get(str(path))
            return kept.out.written() if kept is not None else None

    def take(self, path: Path) -> _Kept | None:
        with self._lock:
            return self._files.pop(str(path), None)

    def drop(self, path: Path) -> None:
        if (kept := self.take(path)) is not None:
            kept.out.close()


_held = _Held()


def saved_late(path: Path) -> float | None:
    """Seconds since a save was last written into the file this process's last ``rewrite`` of
    ``path`` took out; ``None`` when none was. An editor that writes in place, its file opened
    just before the swap, writes into that file after ``rewrite`` has looked. The plan on disk
    lacks that save until the next ``rewrite`` puts it back, so a process that goes on (a run)
    rewrites the file soon after the save is written (once it has been still for a moment: a
    save is not taken halfway), whether or not it has anything new of its own to show: the
    person's save is in the plan at once, not when the run next has news, and is not lost
    should the run be killed meanwhile."""
    return _held.written(path)


def _holds(path: Path, data: bytes, chunk: int = 1 << 16) -> bool:
    """Whether the file at ``path`` holds ``data``, read a piece at a time."""
    with path.open("rb") as handle:
        for start in range(0, len(data) + 1, chunk):
            if handle.read(chunk) != data[start : start + chunk]:
                return False
    return True


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _changed(data: bytes, change: Callable[[bytes], bytes]) -> bytes:
    bom = codecs.BOM_UTF8 if data.startswith(codecs.BOM_UTF8) else b""
    text = data[len(bom) :]
    if not _utf8(text):
        try:
            text.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise PlanFileUnreadable(f"line {line} is not valid UTF-8") from None
    return bom + change(text)


def _utf8(data: bytes, chunk: int = 1 << 16) -> bool:
    """Whether ``data`` is UTF-8, read a piece at a time (never the whole text decoded at once)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for start in range(0, len(data), chunk):
            decoder.decode(data[start : start + chunk])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True
