"""The attempt journal, ``state/attempts.jsonl``: which attempts a runner started and which ended.

One JSON object per line, appended as things happen::

    {"event": "run", "runner_pid": 4242, "at": "2026-11-21T09:00:00.000+00:00"}
    {"event": "spawn", "task": "T-01", "agent": "Agent-01", "attempt": 1, "at": "..."}
    {"event": "start", "task": "T-01", "agent": "Agent-01", "attempt": 1, "pgid": 4250, "pgid_start": 9123, "at": "..."}
    {"event": "session", "task": "T-01", "attempt": 1, "session_id": "5f1c..."}
    {"event": "retry", "task": "T-01", "attempt": 1, "at": "..."}
    {"event": "end", "task": "T-01", "attempt": 1, "at": "..."}
    {"event": "finished", "at": "..."}

A ``start`` without its ``end`` is an attempt in progress while the ``run`` line's runner lives,
and an orphan once it is dead: the next run stops its process group (``pgid``; only members
that started no earlier than ``pgid_start``, in clock ticks since boot, count) and continues
its agent session. ``spawn`` comes just before the process is started: a runner killed between
the two leaves an attempt whose group it never wrote down, and the next run finds its processes
by the variables that name the attempt in their environment (``attempt_environment``). Lines
are appended to a file opened with ``O_APPEND``, those of one turn of the event loop in one
``write()`` once that turn is over (``flush``), and a ``spawn`` line at once, with whatever is
waiting, before its process starts: a killed runner leaves whole lines, and a line torn by a
power cut is skipped. What a kill -9 can take with it is the last turn's lines: an attempt
whose ``spawn`` has no ``start`` is found by its environment as above, and one whose ``end`` is
missing has no process group left to stop. No fsync: the journal only has to survive the runner, not the
machine. A run starts the file afresh once the last
run's orphans are settled, and ends it with ``finished`` once no attempt is open: a reader that
finds that line last need not read the rest.

One append per event replaces a marker file per attempt: creating and removing a file cost more
than the rest of the runner's work on a no-op task.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.state import store

JOURNAL_NAME = "attempts.jsonl"


def now_iso() -> str:
    """Now, local time with its UTC offset, to the millisecond: 2026-11-21T09:00:00.000+01:00."""
    return iso_at(time.time())


def iso_at(when: float) -> str:
    """``when`` (seconds since the epoch) as ``now_iso`` writes it.

    ``datetime.fromtimestamp(when, zone).isoformat(timespec="milliseconds")``, with the text up to
    the seconds and the offset kept for the second they belong to: a runner stamps a task eight
    times, several tasks a millisecond, and datetime's formatting (sprintf) was most of the cost.
    The microseconds are rounded as datetime rounds them (half to even, carried into the second);
    a test holds the two equal.
    """
    if abs(when - _ZONE[0]) > 60.0:  # the local offset, looked up once a minute: astimezone() costs more than the rest
        _ZONE[0], _ZONE[1] = when, datetime.fromtimestamp(when, UTC).astimezone().tzinfo
        _SECOND[0] = None
    fraction, whole = math.modf(when)
    micro = round(fraction * 1e6)
    second = int(whole)
    if micro >= 1_000_000:
        micro -= 1_000_000
        second += 1
    elif micro < 0:
        micro += 1_000_000
        second -= 1
    if second != _SECOND[0]:
        text = datetime.fromtimestamp(second, _ZONE[1]).isoformat(timespec="milliseconds")
        _SECOND[0], _SECOND[1], _SECOND[2] = second, text[:20], text[23:]  # around the ".000"
    return f"{_SECOND[1]}{micro // 1000:03d}{_SECOND[2]}"


_ZONE: list[Any] = [-math.inf, None]  # when the local zone was last looked up, and the zone
_SECOND: list[Any] = [None, "", ""]  # the last second formatted: its text before and after the milliseconds


def attempt_environment(workspace: Path, task: str, attempt: int) -> dict[str, str]:
    """The variables that name an attempt in the environment of its processes: how a run finds
    the processes of an attempt whose ``start`` line a killed runner never wrote."""
    return {
        "ORCHESTRATOR_WORKSPACE": str(workspace),
        "ORCHESTRATOR_TASK_ID": task,
        "ORCHESTRATOR_ATTEMPT": str(attempt),
    }


@dataclass(slots=True)
class OpenAttempt:
    """A started attempt with no ``end`` line: running, or left behind by a dead runner."""

    task: str
    agent: str
    attempt: int
    pgid: int
    pgid_start: int | None
    started: str | None
    session_id: str | None = None
    retrying: bool = False


@dataclass(slots=True)
class JournalState:
    runner_pid: int | None = None
    open: dict[str, OpenAttempt] = field(default_factory=dict)  # task id -> its open attempt
    retrying: set[str] = field(default_factory=set)  # tasks whose next attempt waits for a backoff


def read(path: Path) -> JournalState:
    """What the journal says now; an unreadable or torn line is skipped."""
    state = JournalState()
    try:
        data = path.read_bytes()
    except OSError:
        return state
    lines = data.splitlines()
    if lines and lines[-1].startswith(b'{"event": "finished"'):
        lines = lines[:1]  # a finished run left nothing open: only its run line matters
    for raw in lines:
        try:
            entry = json.loads(raw)
            event = entry["event"]
            if event == "run":
                state.runner_pid = int(entry["runner_pid"])
                continue
            task = str(entry["task"])
            if event == "start" or event == "spawn":  # a spawn line has no pgid yet: 0
                start = entry.get("pgid_start")
                state.open[task] = OpenAttempt(
                    task,
                    str(entry.get("agent", "")),
                    int(entry.get("attempt", 1)),
                    int(entry.get("pgid", 0)),
                    start if isinstance(start, int) else None,
                    entry.get("at"),
                )
                state.retrying.discard(task)
            elif event == "session":
                found = state.open.get(task)
                if found is not None and found.attempt == entry.get("attempt"):
                    found.session_id = str(entry["session_id"])
            elif event == "end":
                found = state.open.get(task)
                if found is not None and found.attempt == entry.get("attempt"):
                    del state.open[task]
            elif event == "retry":
                state.retrying.add(task)
            elif event == "settled":
                state.retrying.discard(task)
        except (ValueError, KeyError, TypeError):
            continue
    return state


class Journal:
    """The runner's handle on the journal: appends, written by ``flush`` (see the module's doc)."""

    def __init__(self, path: Path, soon: Callable[[Callable[[], None]], object] | None = None) -> None:
        """``soon``: how to have ``flush`` called once the current turn of the event loop is over
        (``loop.call_soon``); without it, lines wait for an explicit ``flush``."""
        self.path = path
        self._fd: int | None = None
        self._pending: list[bytes] = []
        self._soon = soon

    def begin(self) -> None:
        """Start the file afresh for this run (call it once the last run's orphans are settled)."""
        line = _line({"event": "run", "runner_pid": os.getpid(), "at": now_iso()})
        store.write_bytes(self.path, line, durable=False)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)

    def append(self, entry: dict[str, Any]) -> None:
        """Add a line, written with the next ``flush``."""
        self._add(_line(entry))

    def _add(self, line: bytes) -> None:
        if self._fd is not None:
            if not self._pending and self._soon is not None:
                self._soon(self._flush_soon)
            self._pending.append(line)

    def flush(self) -> None:
        """Write the lines added since the last flush, in one ``write()``."""
        if self._pending and self._fd is not None:
            os.write(self._fd, b"".join(self._pending))
            self._pending.clear()

    def _flush_soon(self) -> None:
        # Called by the event loop, where an error would only be logged: the lines stay, and the
        # runner's next flush of its own (before its loop waits) raises it where it is handled.
        with contextlib.suppress(OSError):
            self.flush()

    # The three lines of every attempt are written out directly, as _line would write them (a test
    # holds them equal): the JSON encoder took 10 us a line, a tenth of a no-op task's whole cost.

    def spawning(self, task: str, agent: str, attempt: int) -> None:
        """The attempt's process is about to be started: written now (see the module's doc)."""
        self._add(
            f'{{"event": "spawn", "task": {_text(task)}, "agent": {_text(agent)}, "attempt": {attempt:d}, '
            f'"at": "{now_iso()}"}}\n'.encode()
        )
        self.flush()

    def started(self, task: str, agent: str, attempt: int, pgid: int, pgid_start: int | None) -> None:
        start = "null" if pgid_start is None else f"{pgid_start:d}"
        self._add(
            f'{{"event": "start", "task": {_text(task)}, "agent": {_text(agent)}, "attempt": {attempt:d}, '
            f'"pgid": {pgid:d}, "pgid_start": {start}, "at": "{now_iso()}"}}\n'.encode()
        )

    def session(self, task: str, attempt: int, session_id: str) -> None:
        self.append({"event": "session", "task": task, "attempt": attempt, "session_id": session_id})

    def ended(self, task: str, attempt: int) -> None:
        self._add(f'{{"event": "end", "task": {_text(task)}, "attempt": {attempt:d}, "at": "{now_iso()}"}}\n'.encode())

    def retrying(self, task: str, attempt: int) -> None:
        """The next attempt of ``task`` waits for a backoff (``status`` shows it as retrying)."""
        self.append({"event": "retry", "task": task, "attempt": attempt, "at": now_iso()})

    def settled(self, task: str) -> None:
        """``task`` has its result (or will not run again in this run): no longer retrying."""
        self.append({"event": "settled", "task": task})

    def finish(self) -> None:
        """No attempt is open and none will start: the run's last line."""
        self.append({"event": "finished", "at": now_iso()})

    def close(self) -> None:
        if self._fd is not None:
            try:
                self.flush()
            finally:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = None


# One encoder for every line: json.dumps with any option builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))
_text = json.encoder.encode_basestring  # a JSON string, as _ENCODER writes one


def _line(entry: dict[str, Any]) -> bytes:
    return _ENCODER.encode(entry).encode("utf-8") + b"\n"
