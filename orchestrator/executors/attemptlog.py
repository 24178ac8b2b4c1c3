"""An attempt's output as the run keeps it: each stream's log file, written as the output comes,
every secret in it redacted before a byte is written (``redaction.Stream``, a line at a time, with
the attempt's environment's secrets beside the runner's: ``logs``), capped at ``log_cap``; and its
stdout's complete lines, redacted the same, handed to the run's observer (``Lines``). Local
attempts (``executors/local``) and a cluster's (``executors/daskstream``) write through it alike.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO

from orchestrator import redaction
from orchestrator.executors.base import Launch, LineCallback

CUT_MARK = "[orchestrator: log cut"  # opens the lines a capped log ends with
_LONGEST_LINE = 16 * 1024 * 1024  # a line longer than this is dropped, not held (the observers read an
#                                   agent's JSON events, whose lines are far shorter: its CLI cuts a tool's output)
_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


class Lines:
    """Complete lines to ``on_line``, in order, from the chunks as they come."""

    def __init__(self, on_line: LineCallback | None) -> None:
        self.on_line = on_line
        self.pending = bytearray()
        self.dropping = False  # (in a line too long to hand on)

    def feed(self, chunk: bytes) -> None:
        if self.on_line is None or not chunk:
            return
        start, end = 0, chunk.find(b"\n")
        while end >= 0:  # (one copy of a long line at most: the split of a held one made two)
            if self.dropping:
                self.dropping = False
            elif self.pending:
                self.pending += chunk[start:end]
                line, self.pending = bytes(self.pending), bytearray()
                self.on_line(line)
            else:
                self.on_line(chunk[start:end])
            start, end = end + 1, chunk.find(b"\n", end + 1)
        if not self.dropping:
            self.pending += chunk[start:]
        if len(self.pending) > _LONGEST_LINE:  # (the rest of it, to its end, is dropped too)
            self.pending.clear()
            self.dropping = True

    def end(self) -> None:
        if self.on_line is not None and self.pending:
            self.on_line(bytes(self.pending))
        self.pending.clear()
        self.dropping = False


class AttemptLog:
    """One stream's log file, created with the first byte written to it: no file means no output.
    A log an earlier attempt of the same number left is removed first, so what is there is this
    attempt's. What is written is redacted first (``redactor``'s ``Stream``: a line is written once
    its end came, or the stream's). Past ``cap`` bytes nothing more is kept: a line says where the
    log was cut, and its last line how much was left out (``count`` is every byte the stream
    carried). ``on_line``: each complete line as written."""

    def __init__(
        self,
        path: Path,
        cap: int | None = None,
        redactor: redaction.Redactor | None = None,
        on_line: LineCallback | None = None,
    ) -> None:
        self.path = path
        self.cap = cap
        self.count = 0
        self.kept = 0
        self.cut = False
        self.stream = (redactor or redaction.current()).stream()
        self.lines = Lines(on_line)
        self._file: IO[bytes] | None = None
        self._ended = False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def write(self, data: bytes) -> None:
        """``data`` as it came from the stream: what of it may be written now, redacted, is."""
        self.count += len(data)
        self._keep(self.stream.feed(data))

    def end(self) -> None:
        """The stream ended: what was held back is written, and its last line handed on."""
        if not self._ended:
            self._ended = True
            self._keep(self.stream.end())
            self.lines.end()

    def _keep(self, data: bytes) -> None:
        self.lines.feed(data)
        if self.cut or not data:
            return
        keep = data if self.cap is None else data[: self.cap - self.kept]
        if self._file is None:
            # O_NOFOLLOW: a symlink put where the log goes is not written through.
            self._file = open(os.open(self.path, _LOG_FLAGS, 0o666), "wb")  # noqa: SIM115 - closed by __exit__
        self._file.write(keep)
        self.kept += len(keep)
        if len(keep) < len(data):
            self.cut = True
            self._file.write(f"\n{CUT_MARK} here: log_cap is {self.cap:,} bytes]\n".encode())

    def flush(self) -> None:
        """Hand what was written to the file system: a reader of the log sees it."""
        if self._file is not None:
            self._file.flush()

    def __enter__(self) -> AttemptLog:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._ended:  # (stopped before its end: what it held is written, no line handed on)
            self._ended = True
            self.lines.on_line = None
            self._keep(self.stream.end())
        if self._file is None:
            return
        with self._file:
            if self.cut:
                left = self.count - self.kept
                self._file.write(f"{CUT_MARK}: {self.count:,} bytes in all, the last {left:,} not kept]\n".encode())


def logs(launch: Launch, on_line: LineCallback | None = None) -> tuple[AttemptLog, AttemptLog]:
    """An attempt's two logs, stdout's lines to ``on_line``: redacted of the runner's secrets and
    of its own environment's (its plan's ``env``, its backend's keys)."""
    redactor = redaction.current().joined(launch.env)
    cap = launch.limits.log_cap
    return AttemptLog(launch.stdout, cap, redactor, on_line), AttemptLog(launch.stderr, cap, redactor)
