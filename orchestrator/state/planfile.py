"""master_plan.md's tool-written blocks, and the one way the tool rewrites that file.

The tool writes only between its own two marker lines::

    ## Agent Assignment
    <!-- orchestrator:begin status — written by orchestrator on every render and run; ... -->
    | Task ID | Agent | Status | ...
    <!-- orchestrator:end status -->

Every other byte of the file is the person's, before, between and after the blocks, and stays as
it is. A block that is missing is appended at the end of the file with its heading; a plan written
by version 0.1 (whose two sections had no markers) has exactly its old generated lines replaced.

``rewrite`` never loses an edit made while it works: it swaps its new file with the old one in
one step (``store.exchange``), then compares what it took out with what it read. If a person (or
an editor) saved meanwhile, their file is what came out: the blocks are put into *that* text and
swapped in again (theirs is swapped straight back first, so that nobody reads a file without
their save). An editor that writes in place into the file it opened just before the swap is
caught by reading what came out again a few milliseconds later, and, should its write come later
still, at the next rewrite of the file (the file taken out is kept open until then, and a run
rewrites the file within a second of such a write: ``saved_late``). Should
somebody change our file in the instant before it is swapped back, their change is kept beside
the plan (``master_plan.md.saved-<time>-<pid>``), never dropped.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.documents import read_regular
from orchestrator.plan.markdown import outside_fences, split_lines
from orchestrator.plan.model import READ_LIMIT
from orchestrator.printable import visible
from orchestrator.state import store

_BEGIN = re.compile(r"^\s*<!--\s*orchestrator:begin\s+([a-z][a-z-]*)\b.*-->\s*$")
_END = re.compile(r"^\s*<!--\s*orchestrator:end\s+([a-z][a-z-]*)\s*-->\s*$")
_BEGIN_BYTES = re.compile(_BEGIN.pattern.encode())  # (\s: ASCII whitespace only, in bytes)
_END_BYTES = re.compile(_END.pattern.encode())
SETTLE_SECONDS = 1.0  # a plan that changed into no plan is told only if it stays so this long
_LEGACY_STATUS = re.compile(r"^<!-- Written by orchestrator: this section and \"Dependency Graph\" are rewritten")
_HEADING = re.compile(r"^##\s+(.*?)\s*#*\s*$")
_ATTEMPTS = 50  # swaps tried while others keep saving the file
_HELD_AT_MOST = 8  # plan files whose last swapped-out file is kept open (``_Held``)
_SETTLE = 0.005  # seconds to wait for a write into the file just swapped out (``_Out.settled``)


@dataclass(frozen=True, slots=True)
class Block:
    """One tool-written block: its marker name, the heading it goes under when appended, its text."""

    name: str
    heading: str
    body: str

    def begin(self) -> str:
        return (
            f"<!-- orchestrator:begin {self.name} — written by orchestrator on every render and run; "
            "what is between this line and the end marker is replaced, the rest of the file is yours -->"
        )

    def end(self) -> str:
        return f"<!-- orchestrator:end {self.name} -->"


def splice(text: str, blocks: Sequence[Block]) -> str:
    """``text`` with each block's lines put between its markers (added where missing)."""
    lines = split_lines(text)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    legacy = any(_LEGACY_STATUS.match(line) for line in lines)
    missing: list[Block] = []
    for block in blocks:
        span = _marked(lines, block.name)
        fenced = [block.begin() + newline, *_with_newline(block.body, newline), block.end() + newline]
        if span is not None:
            start, end = span
            lines[start + 1 : end] = fenced[1:-1]
            continue
        span = _legacy_span(lines, block.name) if legacy else None
        if span is not None:
            start, end = span
            lines[start:end] = fenced
            continue
        missing.append(block)
    result = "".join(lines)
    for block in missing:
        if result and not result.endswith(("\n", "\r")):
            result += newline
        if result and not result.endswith(newline * 2):
            result += newline
        body = "".join(_with_newline(block.body, newline))
        result += f"## {block.heading}{newline}{block.begin()}{newline}{body}{block.end()}{newline}"
    return result


def _with_newline(body: str, newline: str) -> list[str]:
    """A block's lines, each with ``newline``; what a task printed in it (a reason) made visible:
    the plan is a markdown file, and holds no control character the tool put there."""
    body = visible(body)
    return [line + newline for line in body.strip("\n").split("\n")] if body.strip("\n") else []


def _marked(lines: list[str], name: str) -> tuple[int, int] | None:
    """The lines of ``name``'s begin and end markers (those in code blocks are text, not
    markers); ``None`` when there is neither. Markers that do not make one whole block are
    ``MarkersBroken``: a begin marker without its end (guessing where the block ends could swallow
    the person's text), an end marker without its begin, or a second block (left showing what it
    showed when it was copied, beside the one kept up to date)."""
    start: int | None = None
    found: tuple[int, int] | None = None
    body = _frontmatter_end(lines)
    for index in outside_fences(lines):
        if index < body:
            continue
        line = lines[index]
        if (match := _BEGIN.match(line)) and match.group(1) == name:
            if start is not None:
                break
            if found is not None:
                raise MarkersBroken(
                    f"line {index + 1}: a second '{name}' block (the first begins on line {found[0] + 1}), which "
                    "would never be updated — delete one of them, from its begin marker to its end marker"
                )
            start = index
        elif (match := _END.match(line)) and match.group(1) == name:
            if start is None:
                raise MarkersBroken(
                    f"line {index + 1}: the '{name}' block's end marker has no begin marker above it "
                    f"(<!-- orchestrator:begin {name} -->) — put it back where the block begins, or delete "
                    "the end marker and what is left of the old block"
                )
            found, start = (start, index), None
    if start is None:
        return found
    raise MarkersBroken(
        f"line {start + 1}: the '{name}' block's begin marker has no end marker "
        f"(<!-- orchestrator:end {name} -->) — put it back where the block ends, or delete the begin marker"
    )


def broken_markers(text: str) -> list[tuple[int, str, str]]:
    """Each block of ``text`` whose markers do not make one whole block (``_marked``), as (1-based
    line, what, what to do): what ``splice`` would refuse, for ``validate`` to list first."""
    lines = split_lines(text)
    names = dict.fromkeys(m.group(1) for line in lines if (m := _BEGIN.match(line) or _END.match(line)))
    found: list[tuple[int, str, str]] = []
    for name in names:
        try:
            _marked(lines, name)
        except MarkersBroken as exc:
            where, _, rest = str(exc).partition(": ")
            message, _, hint = rest.partition(" — ")
            found.append((int(where.removeprefix("line ")), message, hint))
    return found


def _frontmatter_end(lines: list[str]) -> int:
    """The first line after the frontmatter (0 without one): markers in it are YAML text."""
    if lines and lines[0].strip() == "---":
        for index in range(1, len(lines)):
            if lines[index].strip() in ("---", "..."):
                return index + 1
    return 0


def _legacy_span(lines: list[str], name: str) -> tuple[int, int] | None:
    """What version 0.1 wrote for ``name`` without markers: the status table from its comment line
    to its Totals line, and the first mermaid fence under a "Dependency Graph" heading."""
    if name == "status":
        for index, line in enumerate(lines):
            if _LEGACY_STATUS.match(line):
                end = index + 1
                while end < len(lines) and (lines[end].lstrip().startswith("|") or not lines[end].strip()):
                    end += 1
                if end < len(lines) and lines[end].startswith("**Totals**"):
                    end += 1
                return index, end
        return None
    if name == "graph":
        under = False
        for index, line in enumerate(lines):
            heading = _HEADING.match(line)
            if heading:
                under = "dependency graph" in heading.group(1).lower()
            elif under and line.strip() == "```mermaid":
                for end in range(index + 1, len(lines)):
                    if lines[end].strip() == "```":
                        return index, end + 1
                return None
    return None


def person_digest(text: str | bytes) -> bytes | None:
    """A digest of the plan's text outside the tool's blocks: what a person (or `orchestrator
    add`) changed, whatever the tool rewrote between its markers meanwhile. The heading the
    tool puts above a block of its own (and the blank lines around it) is the block's too: a
    plan whose blocks the run just added has the digest it had without them. Made from the
    file's bytes a line at a time (a byte order mark left out): the whole text decoded is 4 bytes
    a character once it holds one emoji, and a run looks at its plan once a second. ``None``
    for bytes that are not UTF-8."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text.removeprefix(codecs.BOM_UTF8)
    digest = hashlib.blake2b(digest_size=16)
    inside = False
    above: list[bytes] = []  # blank lines and one heading, held until it is known whether a block follows
    for line in data.splitlines(keepends=True):  # (LF, CRLF and CR only, as split_lines)
        try:
            line.decode("utf-8")  # (a character never spans a line ending)
        except UnicodeDecodeError:
            return None
        if _BEGIN_BYTES.match(line):
            inside, above = True, []
        elif _END_BYTES.match(line):
            inside = False
        elif inside:
            continue
        elif not line.strip() or (line.startswith(b"#") and not any(held.startswith(b"#") for held in above)):
            above.append(line)
        else:
            for held in (*above, line):
                digest.update(held)
            above = []
    for held in above:
        digest.update(held)
    return digest.digest()


class PersonWatch:
    """Whether a person changed the plan file since the text a run loaded: one ``stat`` a look
    (``moved``, cheap enough for the event loop), and the text read (``changed``, for a worker
    thread) only when its size or time moved. The run's own rewrites of its blocks are no change:
    only the text outside them counts (``person_digest``). Each reader keeps its own watch."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self._key: tuple[int, int, int] | None = None
        self._digest = person_digest(text)

    def moved(self) -> bool:
        """Whether the file's time, size or inode changed since the last look (a file that cannot
        be looked at now, being replaced, has not moved)."""
        try:
            found = os.stat(self.path)
        except OSError:
            return False
        key = (found.st_mtime_ns, found.st_size, found.st_ino)
        if key == self._key:
            return False
        self._key = key
        return True

    def settled(self, seconds: float = SETTLE_SECONDS) -> bool:
        """Whether the file stays as ``moved`` last saw it for ``seconds`` (for a worker thread):
        an editor that saves by truncating and writing shows a half-saved file for a moment, and
        a text that is no plan may be only that."""
        time.sleep(seconds)
        try:
            found = os.stat(self.path)
        except OSError:
            return False
        return (found.st_mtime_ns, found.st_size, found.st_ino) == self._key

    def changed(self) -> bool:
        """Whether a person's part of the file changed since the last look (not when it cannot be
        read as plan text now, mid-edit: never a FIFO put in its place opened to wait for a
        writer, as ``read_regular`` does not)."""
        try:
            digest = person_digest(read_regular(self.path, READ_LIMIT))
        except OSError:
            return False
        if digest is None or digest == self._digest:
            return False
        self._digest = digest
        return True


class PlanFileUnreadable(ValueError):
    """Raised by ``rewrite`` when the plan file is not UTF-8 (a person is mid-edit, say): nothing
    is written, and the file stays as it is."""


class MarkersBroken(PlanFileUnreadable):
    """Raised by ``splice`` (so by ``rewrite``) when a block's begin marker has lost its end
    marker: nothing is written, and the file stays as it is."""


def rewrite(path: Path, change: Callable[[str], str], *, durable: bool = True) -> bool:
    """Replace ``path`` with ``change(its text)``, never losing a save someone made meanwhile;
    ``False`` when that changes nothing or there is no file (at any moment: a tool that saves by
    deleting and writing anew may have it gone for an instant). A byte order mark stays."""
    try:
        return _rewrite(path, change, durable)
    except FileNotFoundError:
        _held.take(path)
        return False


def _rewrite(path: Path, change: Callable[[str], str], durable: bool) -> bool:
    try:
        expected = _read(path)  # what we believe the file holds
    except FileNotFoundError:
        _held.take(path)
        return False
    late = _held.late_save(path, expected)
    source = late or expected  # the text to change: the person's latest
    if late is not None:
        try:
            _changed(late, change)
        except PlanFileUnreadable:  # their late save is no text we can change: it goes back as it is
            store.write_bytes(path, late, durable=durable)
            raise
    for _ in range(_ATTEMPTS):
        data = _changed(source, change)
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
        if temp.read_bytes() != expected:  # saved between the look and the swap: theirs goes back
            _swap_back(temp, path, data)
            expected = source = _read(path)
            continue
        out = _Out(temp)
        if out.settled():
            _held.keep(path, out, data)
            if durable:
                store.fsync_directory(path.parent)
            return True
        expected, source = data, out.close()  # a late save into the file taken out: it gets the blocks
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
    aside = path.with_name(f"{path.name}.saved-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    os.rename(temp, aside)


class _Out:
    """The file a swap took out, open, its name gone (nothing is left behind on disk)."""

    def __init__(self, temp: Path) -> None:
        self.fd = os.open(temp, os.O_RDONLY | os.O_CLOEXEC)
        os.unlink(temp)
        self.key = self._key()  # (before the digest: a write between the two is seen as a move)
        # What the swap took out (the caller has looked at it already), as a digest: held until the
        # next rewrite, a copy of a large plan would be most of what a run holds.
        self.digest = _digest(self.read())

    def read(self) -> bytes:
        chunks = []
        offset = 0
        while chunk := os.pread(self.fd, 1 << 20, offset):
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks)

    def _key(self) -> tuple[int, int]:
        found = os.fstat(self.fd)
        return found.st_mtime_ns, found.st_size

    def moved(self) -> bool:
        """Whether it was written since it was taken out (one ``fstat``, cheap enough to ask once
        a second): a late save may be in it."""
        return self._key() != self.key

    def settled(self) -> bool:
        """Whether it still holds what it held, a moment later. An editor that saves in place may
        have opened the file just before the swap: its write then lands here, a little after."""
        time.sleep(_SETTLE)
        return _digest(self.read()) == self.digest

    def close(self) -> bytes:
        """What it holds now; the file is closed."""
        data = self.read()
        os.close(self.fd)
        return data


class _Held:
    """The file each path's last swap took out, kept open until that path's next rewrite: a save
    that lands in it even later than ``_Out.settled`` looks is found then, and kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, tuple[_Out, bytes]] = {}  # path -> (what came out, digest of what went in)

    def keep(self, path: Path, out: _Out, put: bytes) -> None:
        with self._lock:
            done = [self._files.pop(str(path), None)]
            self._files[str(path)] = (out, _digest(put))
            while len(self._files) > _HELD_AT_MOST:  # the longest held goes
                done.append(self._files.pop(next(iter(self._files))))
        for old in done:
            if old is not None:
                os.close(old[0].fd)

    def waiting(self, path: Path) -> bool:
        """Whether the file taken out of ``path`` last was written since (``saved_late``)."""
        with self._lock:
            held = self._files.get(str(path))
            return held is not None and held[0].moved()

    def take(self, path: Path) -> tuple[_Out, bytes] | None:
        with self._lock:
            return self._files.pop(str(path), None)

    def late_save(self, path: Path, live: bytes) -> bytes | None:
        """What a late in-place save wrote into the file taken out last, if one did and the live
        file is still what we put in its place (else the live file is the newer save)."""
        held = self.take(path)
        if held is None:
            return None
        out, put = held
        now = out.close()
        return now if _digest(now) != out.digest and _digest(live) == put else None


_held = _Held()


def saved_late(path: Path) -> bool:
    """Whether a save may wait in the file this process's last ``rewrite`` of ``path`` took out:
    an editor that writes in place, its file opened just before the swap, wrote into it after
    ``rewrite`` had looked. The plan file on disk lacks that save until the next ``rewrite`` puts
    it back, so a process that goes on (a run) rewrites the file soon after this says so, whether
    or not it has anything new of its own to show: the person's save is in the plan at once, not
    when the run next has news, and is not lost should the run be killed meanwhile."""
    return _held.waiting(path)


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _changed(data: bytes, change: Callable[[str], str]) -> bytes:
    bom = codecs.BOM_UTF8 if data.startswith(codecs.BOM_UTF8) else b""
    try:
        text = data[len(bom) :].decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PlanFileUnreadable(f"line {line} is not valid UTF-8") from None
    return bom + change(text).encode("utf-8")
