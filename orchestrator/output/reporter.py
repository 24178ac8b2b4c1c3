"""What a person or a script sees while a run goes on.

Every state change is one event, a record of its kind (``state/events``). A run tells them to its
``Reporter``: the one reporter interface (``EventReporter``, a method per kind of event) and the
run's clock (``flush``, ``tick``, ``close``). Three render them: ``JsonReporter`` (one JSON object
per line, for scripts), ``PlainReporter`` (one line per event, ``output/lines``, when stdout is
not a terminal) and ``LiveReporter`` (a live view on a terminal, ``output/panel``); ``Recording``
keeps them in the run's event log as well.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TextIO

from orchestrator import redaction
from orchestrator.output.lines import Lines
from orchestrator.output.lines import describe as describe  # (where the readers of events found it)
from orchestrator.output.quiet import Quiet
from orchestrator.state.events import EventLog
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.reporter import EventReporter
from orchestrator.state.events.runs import RunStarted


class Reporter(EventReporter[None]):
    """What a run tells: each event, to its method (``EventReporter``; those a reporter has none
    for, ``any_event``: ignored), and the run's clock."""

    def event(self, event: EventRecord) -> None:
        """One state change: handed to its method (``tell``)."""
        self.tell(event)

    def any_event(self, event: EventRecord) -> None:
        """An event this reporter does nothing with."""

    def flush(self) -> None:
        """Show what the events so far have to show: the runner calls it whenever it has nothing
        to do but wait, so events may be gathered until then."""

    def tick(self) -> None:
        """A second has passed (the runner calls it once a second while a run goes on): a view
        with clocks shows them moving."""

    def close(self) -> None:
        """The run is over."""


class Recording(Reporter):
    """Shows each event through ``shown`` and keeps it in the run's event log (``state/events``),
    written when the loop waits, as the lines shown are."""

    def __init__(self, shown: Reporter, log: EventLog) -> None:
        self.shown = shown
        self.log = log

    def any_event(self, event: EventRecord) -> None:
        self.log.tell(event)
        self.shown.event(event)

    def flush(self) -> None:
        self.shown.flush()
        self.log.flush()

    def tick(self) -> None:
        self.shown.tick()

    def close(self) -> None:
        self.shown.close()
        self.log.close()


class _LineReporter(Reporter):
    """One line per event on a stream, written with ``flush`` (a run flushes each time its loop
    waits: one write for the events of one turn, not one each, whether or not the stream is
    buffered) and on ``close``."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.closed = False
        self._lines: list[str] = []

    def _write(self, line: str) -> None:
        if not self.closed:
            self._lines.append(line + "\n")

    def flush(self) -> None:
        """Write the lines gathered; a reader that went away (``run | head -1``) must not stop the run."""
        if self.closed or not self._lines:
            return
        text = "".join(self._lines)
        self._lines.clear()
        try:
            self.stream.write(text)
            self.stream.flush()
        except OSError as exc:  # EPIPE: `run | head -1`; EIO: the terminal was closed
            self.closed = True
            reader_gone(self.stream, exc)

    def close(self) -> None:
        self.flush()


def to_stderr(line: str) -> None:
    """A line for the person outside the run's events (what ``run --wait-orphans`` waits for,
    before the run starts): on stderr, so that ``--json``'s stdout holds events only."""
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr, flush=True)


def reader_gone(stream: TextIO, exc: OSError) -> None:
    """Whoever read ``stream`` went away (a pipe's reader, a closed terminal): point it at
    /dev/null, so that neither the rest of the run nor the interpreter's final flush fails on it
    (and stderr too when the terminal itself is gone). The run goes on."""
    import errno

    targets = [stream]
    if exc.errno == errno.EIO and stream is not sys.stderr:
        targets.append(sys.stderr)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for target in targets:
            with contextlib.suppress(OSError, ValueError):
                os.dup2(devnull, target.fileno())
    finally:
        os.close(devnull)


class JsonReporter(_LineReporter):
    """Each event as the JSON object its line in the event log is (without its ``run``)."""

    def any_event(self, event: EventRecord) -> None:
        self._write(redaction.current().dumps(event.as_json()))  # (as its line in the log: no secret)


class PlainReporter(_LineReporter):
    """Each event's line (``output/lines``), the paths in it from where the user stands."""

    def __init__(self, stream: TextIO | None = None, *, verbose: bool = False) -> None:
        super().__init__(stream)
        self.lines = Lines()
        self.quiet = Quiet(verbose=verbose)  # (a row over many items: counted, its progress a line)

    def run_started(self, event: RunStarted) -> None:
        self.lines.workspace = Path(event.workspace) if event.workspace else self.lines.workspace
        self.any_event(event)

    def any_event(self, event: EventRecord) -> None:
        for line in self.quiet.lines(event, self.lines.said(event)):
            self._write(line)

    def tick(self) -> None:
        """Each second: the rows over many items whose counts changed, a line each (every few seconds)."""
        found = self.quiet.progress()
        if found:
            for line in found:
                self._write(line)
            self.flush()
