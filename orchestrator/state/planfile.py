"""master_plan.md's tool-written blocks, and how a person's changes to the rest of it are seen.

The tool writes only between its own two marker lines::

    ## Agent Assignment
    <!-- orchestrator:begin status — written by orchestrator on every render and run; ... -->
    | Task ID | Agent | Status | ...
    <!-- orchestrator:end status -->

Every other byte of the file is the person's, before, between and after the blocks, and stays as
it is. A block that is missing is appended at the end of the file with its heading; a plan written
by version 0.1 (whose two sections had no markers) has exactly its old generated lines replaced.

How the tool rewrites the file, never losing a save made meanwhile: ``state/swap``.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from orchestrator import timing
from orchestrator.documents import read_regular
from orchestrator.plan.markdown import fence_closes, fence_opening, outside_fences, split_lines
from orchestrator.plan.model import READ_LIMIT
from orchestrator.printable import visible
from orchestrator.state.swap import PlanFileUnreadable as PlanFileUnreadable
from orchestrator.state.swap import rewrite as rewrite
from orchestrator.state.swap import rewrite_utf8 as rewrite_utf8
from orchestrator.state.swap import saved_late as saved_late

_BEGIN = re.compile(r"^\s*<!--\s*orchestrator:begin\s+([a-z][a-z-]*)\b.*-->\s*$")
_END = re.compile(r"^\s*<!--\s*orchestrator:end\s+([a-z][a-z-]*)\s*-->\s*$")
_BEGIN_BYTES = re.compile(_BEGIN.pattern.encode())  # (\s: ASCII whitespace only, in bytes)
_END_BYTES = re.compile(_END.pattern.encode())
_LEGACY_STATUS = re.compile(r"^<!-- Written by orchestrator: this section and \"Dependency Graph\" are rewritten")
_HEADING = re.compile(r"^##\s+(.*?)\s*#*\s*$")
_LEGACY_TEXT = "<!-- Written by orchestrator: this section"  # (in a text _LEGACY_STATUS may match)
_LEGACY_BYTES = _LEGACY_TEXT.encode()
_LINE_END = re.compile(rb"\r\n|\r|\n")
# A line that may open or close a code fence (``fence_opening``), or hold a marker; (?<!...): at a line's start.
_CANDIDATE_BYTES = re.compile(rb"(?<![^\r\n])(?: {0,3}(?:```|~~~)|[^\r\n]*?<!--)[^\r\n]*")
_NOT_SPACE_BYTES = re.compile(rb"[^\t-\r\x1c- \x80-\xff]")  # (an ASCII character str.strip keeps)


class MarkersBroken(PlanFileUnreadable):
    """Raised by ``splice`` (so by ``rewrite``) when a block's begin marker has lost its end
    marker: nothing of ours is written, as ``PlanFileUnreadable`` says."""


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
    """``text`` with each block's lines put between its markers (added where missing). An empty
    file is left empty: it is a save caught between its truncation and its write (an editor's, or
    ``write_text``'s), and blocks put in it would be a file with no plan that every command then
    reads (``status``: "no '## Task Decomposition' section") until the save comes back. The same
    text as ``splice_bytes`` makes of its UTF-8."""
    if _LEGACY_TEXT in text:
        return _splice_lines(text, blocks)
    data = _splice_bytes(text.encode("utf-8", "surrogatepass"), blocks, "surrogatepass")
    return data.decode("utf-8", "surrogatepass")


def splice_bytes(data: bytes, blocks: Sequence[Block]) -> bytes:
    """``splice`` of the UTF-8 text ``data`` (no byte order mark), made on its bytes: the text is
    never decoded whole (4 bytes a character once it holds one emoji, as a plan does once a ✅ is
    in its status table) nor split into a list of lines; only the lines that may be markers or
    code fences are read as text. What a run does to its plan once a second, and at its end."""
    if _LEGACY_BYTES in data:  # (version 0.1's blocks, rare: replaced line by line, as text)
        return _splice_lines(data.decode("utf-8"), blocks).encode("utf-8")
    return _splice_bytes(data, blocks, "strict")


def rewrite_blocks(path: Path, blocks: Sequence[Block], *, durable: bool = True) -> bool:
    """``rewrite`` of the plan file at ``path`` with ``blocks`` spliced in (``splice_bytes``)."""
    return rewrite_utf8(path, lambda data: splice_bytes(data, blocks), durable=durable)


def _splice_bytes(data: bytes, blocks: Sequence[Block], errors: str) -> bytes:
    if _blank(data):
        return data
    first = _LINE_END.search(data)
    newline = b"\r\n" if first is not None and first.group() == b"\r\n" else b"\n"
    missing: list[Block] = []
    for block in blocks:
        span = _marked(_candidates(data), block.name)
        if span is None:
            missing.append(block)
            continue
        view = memoryview(data)
        data = b"".join((view[: span[0].end], *_body_bytes(block.body, newline, errors), view[span[1].start :]))
    if not missing:
        return data
    pieces: list[bytes | memoryview] = [data]
    tail = data[-4:]  # (what the checks below look at: two newlines at most)
    for block in missing:
        more = b""
        if tail and not tail.endswith((b"\n", b"\r")):
            more += newline
        if tail and not (tail + more).endswith(newline * 2):
            more += newline
        more += f"## {block.heading}".encode("utf-8", errors) + newline + block.begin().encode() + newline
        end = block.end().encode() + newline
        pieces += [more, *_body_bytes(block.body, newline, errors), end]
        tail = (tail + more + end)[-4:]
    return b"".join(pieces)


def _body_bytes(body: str, newline: bytes, errors: str) -> list[bytes | memoryview]:
    """A block's lines as ``_with_newline`` makes them, in UTF-8, as pieces to join: the body
    encoded once and never copied as text (a view of it, the newlines around it left out)."""
    data = visible(body).encode("utf-8", errors)
    start, end = 0, len(data)
    while start < end and data[start] == 0x0A:
        start += 1
    while end > start and data[end - 1] == 0x0A:
        end -= 1
    if start == end:
        return []
    if newline != b"\n":
        return [data[start:end].replace(b"\n", newline), newline]
    return [memoryview(data)[start:end], newline]


def _blank(data: bytes) -> bool:
    """Whether the text is whitespace only (``str.isspace``'s: a no-break space is, too)."""
    if _NOT_SPACE_BYTES.search(data) is not None:
        return False
    return not data.decode("utf-8", "surrogatepass").strip()


def _candidates(data: bytes) -> Iterator[_Line]:
    """The lines of ``data`` after its frontmatter and outside code fences that may be markers
    (those holding ``<!--``), with their numbers: ``outside_fences`` read on the lines that open or
    close a fence or hold a marker, the only lines that change what it finds of those."""
    body = _frontmatter_end_bytes(data)
    number, counted = 0, 0
    marker: str | None = None
    for found in _CANDIDATE_BYTES.finditer(data):
        start, end = found.span()
        number += _line_ends(data, counted, start)
        counted = start
        end += 2 if data.startswith(b"\r\n", end) else 1 if end < len(data) else 0
        line = data[start:end].decode("utf-8", "surrogatepass")
        if marker is not None:
            if fence_closes(line, marker):
                marker = None
            continue
        marker = fence_opening(line)
        if marker is None and number >= body:
            yield _Line(number, line, start, end)


def _line_ends(data: bytes, start: int, end: int) -> int:
    """How many lines end between ``start`` and ``end`` (LF, CRLF and CR, as ``split_lines``)."""
    return data.count(b"\n", start, end) + data.count(b"\r", start, end) - data.count(b"\r\n", start, end)


def _frontmatter_end_bytes(data: bytes) -> int:
    """``_frontmatter_end`` of the text's lines, read a line at a time from the top."""
    number, start = 0, 0
    while start < len(data):
        found = _LINE_END.search(data, start)
        end = found.end() if found is not None else len(data)
        stripped = data[start:end].decode("utf-8", "surrogatepass").strip()
        if number == 0 and stripped != "---":
            return 0
        if number > 0 and stripped in ("---", "..."):
            return number + 1
        number, start = number + 1, end
    return 0


def _splice_lines(text: str, blocks: Sequence[Block]) -> str:
    """``splice``, line by line: what a plan holding version 0.1's blocks is spliced with."""
    if not text.strip():
        return text
    lines = split_lines(text)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    legacy = any(_LEGACY_STATUS.match(line) for line in lines)
    missing: list[Block] = []
    for block in blocks:
        found = _marked(_listed(lines), block.name)
        fenced = [block.begin() + newline, *_with_newline(block.body, newline), block.end() + newline]
        if found is not None:
            lines[found[0].end : found[1].start] = fenced[1:-1]
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
    start, end = 0, len(body)
    while start < end and body[start] == "\n":  # (the newlines it starts and ends with: none kept)
        start += 1
    while end > start and body[end - 1] == "\n":
        end -= 1
    lines = []
    while start < end:  # each line made once: the body of a 10,000-task table is never copied whole
        cut = body.find("\n", start, end)
        cut = end if cut < 0 else cut
        lines.append(body[start:cut] + newline)
        start = cut + 1
    return lines


class _Line(NamedTuple):
    """A line that may be a marker: its number (0-based), its text, and where it starts and where
    the next line starts (indexes into a list of lines, or offsets into a text's bytes)."""

    number: int
    text: str
    start: int
    end: int


def _listed(lines: list[str]) -> Iterator[_Line]:
    """The lines after the frontmatter and outside code fences, of a text split into lines."""
    body = _frontmatter_end(lines)
    for index in outside_fences(lines):
        if index >= body:
            yield _Line(index, lines[index], index, index + 1)


def _marked(lines: Iterable[_Line], name: str) -> tuple[_Line, _Line] | None:
    """``name``'s begin and end marker lines among ``lines`` (those after the frontmatter and
    outside code blocks: ``_listed``, ``_candidates``); ``None`` when there is neither. Markers
    that do not make one whole block are
    ``MarkersBroken``: a begin marker without its end (guessing where the block ends could swallow
    the person's text), an end marker without its begin, or a second block (left showing what it
    showed when it was copied, beside the one kept up to date)."""
    start: _Line | None = None
    found: tuple[_Line, _Line] | None = None
    for line in lines:
        if (match := _BEGIN.match(line.text)) and match.group(1) == name:
            if start is not None:
                break
            if found is not None:
                raise MarkersBroken(
                    f"line {line.number + 1}: a second '{name}' block (the first begins on line "
                    f"{found[0].number + 1}), which would never be updated — delete one of them, from its begin "
                    "marker to its end marker"
                )
            start = line
        elif (match := _END.match(line.text)) and match.group(1) == name:
            if start is None:
                raise MarkersBroken(
                    f"line {line.number + 1}: the '{name}' block's end marker has no begin marker above it "
                    f"(<!-- orchestrator:begin {name} -->) — put it back where the block begins, or delete "
                    "the end marker and what is left of the old block"
                )
            found, start = (start, line), None
    if start is None:
        return found
    raise MarkersBroken(
        f"line {start.number + 1}: the '{name}' block's begin marker has no end marker "
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
            _marked(_listed(lines), name)
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

    def settled(self, seconds: float | None = None) -> bool:
        """Whether the file stays as ``moved`` last saw it for ``seconds`` (``timing.plan_settle`` when
        None; for a worker thread):
        an editor that saves by truncating and writing shows a half-saved file for a moment, and
        a text that is no plan may be only that."""
        time.sleep(timing.current().plan_settle if seconds is None else seconds)
        try:
            found = os.stat(self.path)
        except OSError:
            return False
        return (found.st_mtime_ns, found.st_size, found.st_ino) == self._key

    def again(self) -> None:
        """The file as last read is not taken: the next look reads and compares it again."""
        self._key, self._digest = None, b""

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
