"""What ``verify`` finds: whether the event log's chain holds, line by line and against its head,
and whether each result file is the one the log recorded (``chain`` says how both are written).

Offline, from the files alone. The log is read as it was at one moment: where it ended and its
head are read in one turn at its lock (``lock.looking``), the lines up to there a block at a time
after (a log of a 10,000-task run is tens of MB). A line is parsed only when it must be: one with
no ``prev`` where a line's end has it, one that records a result, a restore.

What holds:

- each line with ``prev`` has the digest of the line before it (of nothing, for the first line);
  the chain begins at the first line that has one: the lines before are the log's unchained
  past, written by versions before. After it, a line without one is a break;
- the line the head says ended the log ends where it says, and is the one it says: lines cut off
  the end, or the last line edited, are told by it. Lines after it are a writer's that died
  between its two writes, or one writing as the head was read: they must chain as any other;
- each result file is the bytes the last line that recorded it says (``result_digest``), or,
  brought back by a ``checkpoint restore`` since, the bytes its ``checkpoint_restored`` line says it
  brought back (``results``). A result recorded and gone since (``reset`` and ``retry`` remove
  them) is not checked;
- every result file in results/ is one a line recorded: one no line records is new since (written
  by hand, or by a runner killed between writing it and telling of it: the next run records such
  a one when it is still the bytes that runner journaled, ``state/events/untold``). One that only lines of
  a version before digests name, or that a restore of such a version may have brought back, cannot
  be told from a new one: counted apart (``unchecked``), not a finding.

A line torn by a crash (no JSON, as the next writer ended it) is told, and holds: no reader
takes it, and the line after it chains to it as it stands.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from orchestrator.documents import open_regular, read_regular
from orchestrator.state.events.chain import NOTHING, BadHead, Head, digest, head_file, lock_file, read_head
from orchestrator.state.lock import looking
from orchestrator.state.workspace import Workspace, as_kept_now, is_result_name, named_in_results

LISTED = 100  # findings kept at most: past them, a count (``more``)
UNRECORDED = (
    "no event records it: written by hand, or by a runner killed before it told of it (the next run records "
    "one that is still the bytes its runner wrote)"
)
_RESTORED = "(restored)"  # where a restore's line names its results from (their names alone)
_LINK = re.compile(rb', "prev": "([0-9a-f]{40})"\}\n\Z')  # a line's end, as the chain writes it
_BLOCK = 1 << 20


@dataclass(frozen=True, slots=True)
class Finding:
    """Something that does not hold: in ``path``, at ``line`` (``None``: the file as a whole)."""

    path: Path
    line: int | None
    what: str


@dataclass(slots=True)
class Audit:
    """What ``audit`` found in a workspace (see the module's docstring)."""

    log: Path
    lines: int = 0  # of the log, a torn last line included
    chained_from: int | None = None  # the first line with ``prev``
    torn: list[int] = field(default_factory=list)
    head: Head | None = None
    matched: list[Path] = field(default_factory=list)
    differ: list[Path] = field(default_factory=list)
    gone: list[Path] = field(default_factory=list)
    unrecorded: list[Path] = field(default_factory=list)  # result files no line records
    unchecked: list[Path] = field(default_factory=list)  # named only by lines of a version before digests
    findings: list[Finding] = field(default_factory=list)
    more: int = 0  # findings past ``LISTED``

    @property
    def ok(self) -> bool:
        return not self.findings

    def found(self, path: Path, line: int | None, what: str) -> None:
        if len(self.findings) < LISTED:
            self.findings.append(Finding(path, line, what))
        else:
            self.more += 1


@dataclass(slots=True)
class _Walk:
    """Where the walk down the log is: the digest of the line before, and what the head and the
    results need of the lines seen."""

    before: str = NOTHING
    offset: int = 0
    whole: int = 0  # lines ended by a newline
    at_head: tuple[int, str] | None = None  # the end and digest of the line the head names
    recorded: dict[str, tuple[str, int]] = field(default_factory=dict)  # a result's name -> (digest, line)
    undigested: set[str] = field(default_factory=set)  # results named by lines of a version before digests
    blind: bool = False  # a restore of a version before digests: what it brought back is not known


def audit(workspace: Workspace) -> Audit:
    """The workspace's event log and results, checked (nothing written)."""
    log = workspace.events_file
    found = Audit(log)
    try:
        fd = open_regular(log)  # (a FIFO put there is not waited on)
    except FileNotFoundError:
        return found
    try:
        with looking(lock_file(log)):  # (its end and its head, as of one moment)
            size = os.fstat(fd).st_size
            try:
                found.head = read_head(log)
            except BadHead as exc:
                found.found(head_file(log), None, f"not a head this version writes ({exc}): a cut cannot be told")
        walk = _Walk()
        for number, raw in enumerate(_lines(fd, size), 1):
            _take(found, walk, number, raw)
    finally:
        os.close(fd)
    _against_head(found, walk)
    _results(workspace, found, walk.recorded)
    _unrecorded(workspace, found, walk)
    return found


def _lines(fd: int, size: int) -> Iterator[bytes]:
    """The lines of the file ``fd`` up to byte ``size``, each with its newline (a torn last one
    without), read a block at a time."""
    offset, carry = 0, b""
    while offset < size:
        block = os.pread(fd, min(_BLOCK, size - offset), offset)
        if not block:
            break
        offset += len(block)
        lines = (carry + block).split(b"\n")
        carry = lines.pop()
        for line in lines:
            yield line + b"\n"
    if carry:
        yield carry


def _take(found: Audit, walk: _Walk, number: int, raw: bytes) -> None:
    """Line ``number`` of the log: its link, and what it records."""
    found.lines = number
    walk.offset += len(raw)
    walk.whole += raw.endswith(b"\n")
    mine = digest(raw)
    if found.head is not None and number == found.head.lines:
        walk.at_head = (walk.offset, mine)
    match = _LINK.search(raw)
    records = b'"result_digest"' in raw or b'"result": "' in raw or b'"checkpoint_restored"' in raw
    data = _parsed(raw) if match is None or records else None
    if match is not None:
        _link(found, walk, number, match.group(1).decode())
    elif data is None:
        found.torn.append(number)
    elif "prev" in data:
        _link(found, walk, number, data["prev"])
    elif found.chained_from is not None:
        found.found(
            found.log,
            number,
            f'has no "prev", though the chain began at line {found.chained_from:,} (a line inserted, or its '
            '"prev" taken out)',
        )
    walk.before = mine
    if data is not None:
        _records(found, walk, number, data)


def _link(found: Audit, walk: _Walk, number: int, prev: object) -> None:
    """Line ``number``'s ``prev``, held to the digest of the line before it."""
    found.chained_from = found.chained_from or number
    if prev == walk.before:
        return
    if number > 1:
        said = f"of line {number - 1:,} (a line edited, inserted or removed before it)"
        found.found(found.log, number, f'its "prev" is not the digest {said}')
    else:
        found.found(found.log, number, 'its "prev" is not that of a first line (lines removed before it)')


def _parsed(raw: bytes) -> dict[str, Any] | None:
    """A line as a reader takes it; ``None`` for one no reader takes (torn)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _records(found: Audit, walk: _Walk, number: int, data: dict[str, Any]) -> None:
    """What line ``number`` says of the results: one written (its digest), or all brought back.
    A result is named from the project directory (``.orchestrator/results/agent-01-result.md``);
    it is known by its own name in results/, whatever the workspace was called then."""
    if data.get("event") == "checkpoint_restored":
        walk.recorded.clear()
        brought = data.get("results")
        if not isinstance(brought, dict):  # (a version before: what it brought back is not said)
            walk.blind = True
            return
        for name, written in brought.items():
            if isinstance(written, str) and _named(found, number, f"{_RESTORED}/results/{name}") is not None:
                walk.recorded[name] = (written, number)
        return
    result, written = data.get("result"), data.get("result_digest")
    if not isinstance(result, str) or not result:
        return
    if not isinstance(written, str):  # (a version before digests: a result it names cannot be checked)
        walk.undigested.add(named_in_results(result))
        return
    name = _named(found, number, result)
    if name is not None:
        walk.recorded[name] = (written, number)


def _named(found: Audit, number: int, result: str) -> str | None:
    """The name in results/ of the result a line records (``.orchestrator/results/agent-01-result.md``:
    known by its own name, whatever the workspace was called then); one outside results/ is a finding."""
    parts = PurePosixPath(result).parts
    name = "/".join(parts[2:])
    inside = (len(parts) == 3 and name not in ("..", ".")) or is_result_name(name)  # (a file, or a row's item's)
    if len(parts) < 3 or parts[1] != "results" or not inside:
        found.found(found.log, number, f"records a result outside results/: {result[:200]}")
        return None
    return as_kept_now(name)


def _against_head(found: Audit, walk: _Walk) -> None:
    """The log's end, held to its head."""
    head, log = found.head, found.log
    if head is None:
        if found.chained_from is not None and not any(f.path == head_file(log) for f in found.findings):
            found.found(
                head_file(log),
                None,
                f"missing, though the log is chained from line {found.chained_from:,} (removed?): lines cut "
                "off its end cannot be told",
            )
        return
    if walk.whole < head.lines:
        broken = any(finding.path == log for finding in found.findings)  # (then: removed, wherever)
        found.found(
            log, walk.whole or None, f"ends at line {walk.whole:,} but state/{head_file(log).name} says "
            f"{head.lines:,} lines ({'lines removed' if broken else 'lines cut off its end'})",
        )  # fmt: skip
    elif walk.at_head != (head.bytes, head.digest):
        found.found(
            log,
            head.lines,
            f"is not the line state/{head_file(log).name} says ended the log ({head.bytes:,} bytes in): edited, "
            "or lines inserted or removed before it",
        )


def _results(workspace: Workspace, found: Audit, recorded: dict[str, tuple[str, int]]) -> None:
    """Each result file the log recorded, held to its last digest."""
    for name, (written, number) in sorted(recorded.items(), key=lambda item: item[1][1]):
        path = workspace.results_dir / name
        try:
            data = read_regular(path)
        except FileNotFoundError:
            found.gone.append(path)
            continue
        except OSError as exc:
            found.differ.append(path)
            found.found(path, None, f"cannot be read ({exc.strerror or exc}), though the run recorded it at line "
                        f"{number:,} of {found.log.name}")  # fmt: skip
            continue
        if digest(data) == written:
            found.matched.append(path)
        else:
            found.differ.append(path)
            found.found(path, None, f"not the bytes the run recorded at {found.log.name}:{number} (edited after)")


def _unrecorded(workspace: Workspace, found: Audit, walk: _Walk) -> None:
    """Each result file no line of the log records (a task's, ``*-result.md``): named, as new since
    (by hand, or a runner killed before it told of it); one a version before digests may have
    written, counted apart."""
    for name in sorted(workspace.result_names()):
        if name in walk.recorded:
            continue
        path = workspace.results_dir / name
        if name in walk.undigested or walk.blind:
            found.unchecked.append(path)
            continue
        found.unrecorded.append(path)
        found.found(path, None, UNRECORDED)
