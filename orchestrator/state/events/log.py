"""The event log, ``state/events.jsonl``: everything every run told, kept across runs.

One JSON object per line, the same events a run's reporter shows (``task_started``,
``task_completed``, ``run_paused``...: one record each, ``records``), each with the ``run`` it
belongs to and the schema version ``v`` (``base.VERSION``; a line written before versions has
none, and the same keys)::

    {"event": "run_started", "run": "2026-11-23T10:00:00.000+01:00", "v": 1, "time": "...", "pid": 4242, ...}
    {"event": "task_started", "run": "2026-11-23T10:00:00.000+01:00", "v": 1, "time": "...", "task": "T-01", ...}
    {"event": "task_added", "run": null, "v": 1, "time": "...", "task": "T-07", "name": "...", "after": []}
    {"event": "run_finished", "run": "2026-11-23T10:00:00.000+01:00", "v": 1, "time": "...", "exit_code": 0, ...}

The file is only ever appended to: by the runner (a batch of lines in one ``write()`` each time
its loop waits) and by the commands that change a run from outside (``add``, ``cancel``,
``discover``...). Every writer opens it with ``O_APPEND`` and writes whole lines in one call, so
lines of several writers never mix, and a killed writer leaves whole lines (a line torn by a
power cut is skipped by readers). Each line ends with ``prev``, the digest of the line before it,
written under the log's lock (``chain``: what ``verify`` checks). ``watch``, ``history``,
``serve`` and ``check`` read it; nothing the tool does removes a line of it. Its readers hand out
each line as a record (``records.read``): its kind's, read leniently from a version before, or an
``UnknownEvent`` for a kind this version does not know; each keeps the line as it is (``line``,
``as_line``: its ``prev``), for those that hand it on as it was written.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from orchestrator import redaction
from orchestrator.plan.config.settings import Settings
from orchestrator.state.events import chain
from orchestrator.state.events.base import EventKind, EventRecord
from orchestrator.state.events.reporter import EventReporter
from orchestrator.state.procs import pid_alive, ticks

if TYPE_CHECKING:  # (the records are built when a line is read: a command that reads none needs them not)
    from orchestrator.state.events.runs import RunFinished, RunStarted

EVENTS_NAME = "events.jsonl"
_RUN_STARTED = f'{{"event": "{EventKind.RUN_STARTED}"'.encode()  # how a run's first line begins
_RUN_FINISHED = f'{{"event": "{EventKind.RUN_FINISHED}"'.encode()
_TAIL = 64 * 1024  # bytes of the log read from its end to find the last run_finished


def _line(event: EventRecord | Mapping[str, Any], run: str | None = None) -> bytes:
    """``event``'s line: a record's with its ``run`` (its own, else ``run``: null for none), ``event``
    first (readers look for ``{"event": "run_started"`` at a line's start); a record read from a
    log, or a mapping, as it is, but for its ``prev`` (the chain gives it its own)."""
    if isinstance(event, EventRecord) and event.line is not None:
        event = event.line
    if isinstance(event, EventRecord):
        data = event.as_json()
        event = {"event": data.pop("event"), "run": data.pop("run", run), **data}
    elif chain.KEY in event:
        event = {key: value for key, value in event.items() if key != chain.KEY}
    return redaction.current().dumps(event).encode("utf-8") + b"\n"  # (no secret is written, nor chained)


def append(path: Path, events: Iterable[EventRecord | Mapping[str, Any]], *, within: float | None = None) -> None:
    """Append ``events`` in one write (a command's own events: an add, a cancel, a discovery; a
    line read from a log, or a test's, as it is), each linked to the one before it (``chain``).
    ``within``: seconds the log's lock is waited for at most, then ``LockedError`` (``chain.append``)."""
    lines = [_line(event) for event in events]
    if not lines:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    chain.append(path, lines, within=within)


@contextlib.contextmanager
def holding(path: Path, *, within: float | None = None) -> Iterator[Callable[[Iterable[EventRecord]], None]]:
    """The log's lock held, and the way to append ``events`` under it (``chain.holding``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with chain.holding(path, within=within) as put:
        yield lambda events: put([_line(event) for event in events])


class EventLog(EventReporter[None]):
    """A run's handle on the log, its JSONL writer: every event it is told is a line of the run,
    gathered and written when the loop waits (``flush``)."""

    def __init__(self, path: Path, run: str) -> None:
        self.path = path
        self.run = run
        self._pending: list[bytes] = []
        self._fd: int | None = None
        self.failed: OSError | None = None  # a full disk: the run goes on, its log stops

    def any_event(self, event: EventRecord) -> None:
        self._pending.append(_line(event, self.run))

    def flush(self) -> None:
        """The lines gathered since the last flush, in one write, chained (``chain.append``)."""
        if not self._pending or self.failed is not None:
            self._pending.clear()
            return
        lines, self._pending = self._pending, []
        try:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, chain.FLAGS, 0o666)
            chain.append(self.path, lines, self._fd)
        except OSError as exc:
            self.failed = exc

    def close(self) -> None:
        self.flush()
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


@dataclass(slots=True)
class Cursor:
    """Where a reader of the log is: the byte offset after the last whole line it read."""

    offset: int = 0


def read_new(path: Path, cursor: Cursor, *, only: Iterable[bytes] = ()) -> list[EventRecord]:
    """The events appended since ``cursor`` (whole lines only; ``cursor`` moves past them);
    ``only``: just the lines holding one of these byte strings (a cheap look before parsing),
    found in the file read a block at a time: a look for one kind of line in a run's log of
    10,000 tasks holds a block of it, not the whole log twice over."""
    wanted = tuple(only)
    try:
        with open(path, "rb") as file:
            file.seek(cursor.offset)
            if wanted:
                return list(_parse(_lines_holding(file, cursor, wanted)))
            data = file.read()
    except FileNotFoundError:
        return []
    end = data.rfind(b"\n") + 1
    cursor.offset += end
    return list(_parse(data[:end].splitlines()))


_BLOCK = 1 << 20  # bytes of the log a reader looking for some lines holds at once


def _blocks(file: BinaryIO, cursor: Cursor) -> Iterator[tuple[bytes, int]]:
    """``file`` from where it is, a block at a time: each block, and where its last whole line
    ends in it (what follows is read again with the next block; ``cursor`` moves past each)."""
    carry = b""
    while block := file.read(_BLOCK):
        data = carry + block if carry else block
        end = data.rfind(b"\n") + 1
        carry = data[end:]
        cursor.offset += end
        yield data, end


def _lines_holding(file: BinaryIO, cursor: Cursor, wanted: tuple[bytes, ...]) -> Iterator[bytes]:
    """The lines of ``file`` from where it is, as ``bytes.splitlines`` splits them, that hold one
    of ``wanted``: read a block at a time, whole lines only (``cursor`` moves past them)."""
    for data, end in _blocks(file, cursor):
        starts: set[int] = set()
        for word in wanted:
            found = data.find(word, 0, end)
            while found >= 0:
                start = data.rfind(b"\n", 0, found) + 1
                starts.add(start)
                found = data.find(word, data.find(b"\n", found, end) + 1, end)
        for start in sorted(starts):  # (each line once, in the file's order)
            for line in data[start : data.find(b"\n", start, end)].splitlines():
                if any(word in line for word in wanted):
                    yield line


def size(path: Path) -> int:
    """Where the next line will go: a reader that starts there sees only what comes next."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def live_run(path: Path) -> RunStarted | None:
    """The ``run_started`` event of the run going on now (its runner alive, no ``run_finished``
    for it yet), or ``None``."""
    start = last_run_start(path)
    if start is None:
        return None
    from orchestrator.state.events.runs import RunFinished, RunStarted

    found = read_new(path, Cursor(start), only=(b'"run_started"', b'"run_finished"'))
    begun = found[0] if found else None
    if not isinstance(begun, RunStarted):
        return None
    if any(isinstance(e, RunFinished) and e.run == begun.run for e in found[1:]):
        return None
    return begun if runner_alive(begun) else None


def last_run(path: Path) -> RunStarted | None:
    """The last run's ``run_started``, whether it goes on or not; ``None`` before any run."""
    from orchestrator.state.events.runs import RunStarted

    start = last_run_start(path)
    if start is None:
        return None
    try:
        with open(path, "rb") as file:
            file.seek(start)
            found = list(_parse([file.readline()]))
    except OSError:
        return None
    return found[0] if found and isinstance(found[0], RunStarted) else None


def last_finished(path: Path) -> RunFinished | None:
    """The last ``run_finished``, from the end of the log only (``check``); ``None`` when the last
    run has not finished (or none ran)."""
    from orchestrator.state.events.runs import RunFinished

    try:
        with open(path, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - _TAIL))
            data = file.read()
    except OSError:
        return None
    at = data.rfind(_RUN_FINISHED)
    if at < 0 or data.rfind(_RUN_STARTED) > at:
        return None
    found = list(_parse([data[at : data.find(b"\n", at)]]))
    return found[0] if found and isinstance(found[0], RunFinished) else None


def runner_alive(started: RunStarted) -> bool:
    """Whether the runner a ``run_started`` event names still runs: its ``pid``, a process that
    started when its ``pid_start`` says (a pid the kernel gave another process since is not it;
    a line of a version before that says none, 0, is no runner)."""
    return isinstance(started.pid, int) and pid_alive(started.pid, ticks(started.pid_start))


def _parse(lines: Iterable[bytes]) -> Iterator[EventRecord]:
    read: Callable[[Mapping[str, Any]], EventRecord] | None = None
    for raw in lines:
        try:
            event = json.loads(raw)
        except ValueError:
            continue  # torn by a power cut
        if isinstance(event, dict) and isinstance(event.get("event"), str):
            if read is None:  # (imported once a line is read, and once: see ``TYPE_CHECKING``)
                from orchestrator.state.events.records import read as reading

                read = reading
            yield read(event)


def last_run_start(path: Path) -> int | None:
    """The byte offset of the last run's ``run_started`` line, or ``None`` if no run has started:
    looked for from the end, a block at a time (a run's is near it)."""
    needle = b"\n" + _RUN_STARTED
    try:
        with open(path, "rb") as file:
            end = file.seek(0, os.SEEK_END)
            after = b""  # the start of the block read before, which a line may run on into
            while end > 0:
                start = max(0, end - _BLOCK)
                file.seek(start)
                block = file.read(end - start)
                data = block + after
                found = data.rfind(needle)
                if found >= 0:
                    return start + found + 1
                if start == 0:
                    return 0 if data.startswith(_RUN_STARTED) else None
                end, after = start, data[: len(needle) - 1]
            return None
    except FileNotFoundError:
        return None


def read_all(path: Path) -> list[EventRecord]:
    """Every event of every run, oldest first."""
    return read_new(path, Cursor())


def each(path: Path) -> Iterator[EventRecord]:
    """Every event of every run, oldest first, parsed as it is read a block at a time: a reader
    that folds them (the estimates, an attempt's history) never holds the log whole, raw or
    parsed (a run's log of 10,000 tasks is some 7 MB of lines, several times that as dicts)."""
    try:
        with open(path, "rb") as file:
            for data, end in _blocks(file, Cursor()):
                yield from _parse(data[:end].splitlines())
    except FileNotFoundError:
        return


STOPPED_ON_ERROR = "error: "  # how ``run_finished``'s ``stopped`` begins when an error ended a run begun


def stopped_on_error(stopped: object) -> bool:
    """Whether a ``run_finished``'s ``stopped`` says an error ended the run (the error follows)."""
    return isinstance(stopped, str) and stopped.startswith(STOPPED_ON_ERROR)


def run_slots(path: Path) -> int | None:
    """The ``max_parallel`` the last run that had tasks to run ran with (its ``run_started``: the
    plan's, or ``run --max-parallel``), the last run's when none had; ``None`` before any run."""
    from orchestrator.state.events.runs import RunStarted

    started = [e for e in read_new(path, Cursor(), only=(b'"run_started"',)) if isinstance(e, RunStarted)]
    ran = [e for e in started if e.to_run] or started
    slots = ran[-1].max_parallel if ran else None
    return slots if isinstance(slots, int) and not isinstance(slots, bool) and slots > 0 else None


def last_run_seconds(path: Path) -> float | None:
    """The wall time the last run that ended gave on its last line (``run_finished``'s
    ``wall_seconds``), for ``aggregate`` to write final_output.md as that run did; ``None`` when
    no run has ended with one."""
    from orchestrator.state.events.runs import RunFinished

    finished = [e for e in read_new(path, Cursor(), only=(b'"run_finished"',)) if isinstance(e, RunFinished)]
    seconds = finished[-1].wall_seconds if finished else None
    return float(seconds) if isinstance(seconds, int | float) and not isinstance(seconds, bool) else None


# --- the limits a run runs with -------------------------------------------------------------------

LIMITS = ("timeout", "inactivity_timeout", "kill_grace")  # what ``check`` and ``cancel`` judge a run by


def ran_with(overrides: Mapping[str, Any], run: Settings, tasks: Mapping[str, Settings]) -> dict[str, Any]:
    """``run_started``'s ``overrides`` (what the command line changed of the plan's settings)
    and ``limits`` (below)."""
    return {"overrides": dict(overrides), "limits": limits(run, tasks)}


def own_limits(run: Settings, task: Settings) -> dict[str, Any]:
    """``task_added``'s ``limits`` when the run runs the task it takes by other limits than its
    own (a profile's, a row's, the plan's edited since the run began); else nothing."""
    mine = {name: getattr(task, name) for name in LIMITS}
    return {} if mine == {name: getattr(run, name) for name in LIMITS} else {"limits": mine}


def limits(run: Settings, tasks: Mapping[str, Settings]) -> dict[str, Any]:
    """``run_started``'s ``limits``: the run's own (the plan's settings, the command line's
    overrides applied), and under ``tasks`` those of each task whose differ (its profile, its
    row). What a run stops attempts by, recorded for the commands that judge them from outside
    (``check``, ``cancel``): the plan on disk may say otherwise by now."""
    own = {name: getattr(run, name) for name in LIMITS}
    differ: dict[str, dict[str, Any]] = {}
    for task_id, settings in tasks.items():
        mine = {name: getattr(settings, name) for name in LIMITS}
        if mine != own:
            differ[task_id] = mine
    return {**own, "tasks": differ}


def added_limits(path: Path, started: RunStarted | None) -> dict[str, Any]:
    """The limits of the tasks the run ``started`` took once it went on (``task_added`` events of
    its own that say them), or whose rows it took again while they waited (``task_changed``):
    those it runs by other limits than its own."""
    start = last_run_start(path) if started is not None else None
    if start is None or started is None:
        return {}
    from orchestrator.state.events.tasks import TaskAdded, TaskChanged

    found: dict[str, Any] = {}
    for event in read_new(path, Cursor(start), only=(b'"task_added"', b'"task_changed"')):
        if isinstance(event, TaskAdded | TaskChanged) and event.run == started.run and event.limits is not None:
            found[event.task] = event.limits
    return found


def task_limits(
    started: RunStarted | None, task_id: str, added: Mapping[str, Any] | None = None
) -> dict[str, float | None] | None:
    """The limits the run ``started`` (its ``run_started`` event) runs ``task_id`` with, or
    ``None`` when it did not record them (a version before: none, read as empty). ``added``:
    ``added_limits``, for a task the run took once it went on."""
    recorded = started.limits if started is not None else None
    if not isinstance(recorded, dict) or not recorded:
        return None
    tasks = recorded.get("tasks")
    mine = tasks.get(task_id) if isinstance(tasks, dict) else None
    mine = (added or {}).get(task_id, mine)
    source = mine if isinstance(mine, dict) else recorded
    found: dict[str, float | None] = {}
    for name in LIMITS:
        value = source.get(name)
        found[name] = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return found
