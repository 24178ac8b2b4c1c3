"""The attempt journal, ``state/attempts.jsonl``: which attempts a runner started and which ended.

One JSON object per line, appended as things happen::

    {"event": "run", "runner_pid": 4242, "runner_start": 8123456, "at": "2026-11-21T09:00:00.000+00:00"}
    {"event": "spawn", "task": "T-01", "agent": "Agent-01", "attempt": 1, "executor": "local",
     "in_run": 1, "fingerprint": "9c2e...", "told": "...", "at": "..."}
    {"event": "start", "task": "T-01", "agent": "Agent-01", "attempt": 1, "executor": "local",
     "handle": {"pgid": 4250, "pgid_start": 9123, "leader_start": 9124}, "at": "..."}
    {"event": "session", "task": "T-01", "attempt": 1, "session_id": "5f1c..."}
    {"event": "retry", "task": "T-01", "attempt": 1, "at": "..."}
    {"event": "forget", "task": "T-01", "at": "..."}         (``reset``: not to be taken up)
    {"event": "end", "task": "T-01", "attempt": 1, "at": "..."}
    {"event": "finished", "at": "..."}

A ``start`` without its ``end`` is an attempt in progress while the ``run`` line's runner lives,
and a leftover once it is dead: the next run hands it to its executor to stop (the ``handle`` is
the executor's own description of where the attempt runs: for local processes, its process
group, and when its leader started: a group given the same id later is somebody else's, never
signalled) and continues its agent session, told to go on only if its ``fingerprint`` (of the brief,
settings and inputs it was started with) still holds. ``spawn`` comes just before the attempt is started: a
runner killed between the two leaves an attempt with no handle, and the executor finds its
processes by the variables that name the attempt in their environment (``attempt_environment``).

Each line is one ``write()`` to a file opened with ``O_APPEND``: a killed runner leaves whole
lines, and a line torn by a power cut is skipped. No fsync: the journal only has to outlive the
runner, not the machine. A run writes its ``run`` line once the last run's leftovers are settled
(what is above it is history: ``read`` looks only below the last ``run`` line), and ends with
``finished`` once no attempt is open. Nothing removes a line.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.documents import last_line_starting, read_regular
from orchestrator.moments import epoch_of, iso_at, now_iso
from orchestrator.state import store
from orchestrator.state.procs import process_started, ticks

JOURNAL_NAME = "attempts.jsonl"
_RUN_LINE = b'{"event": "run", '


# The variables that name an attempt in the environment of its processes.
ATTEMPT_MARKS = ("ORCHESTRATOR_WORKSPACE", "ORCHESTRATOR_TASK_ID", "ORCHESTRATOR_ATTEMPT")


def attempt_environment(workspace: Path, task: str, attempt: int) -> dict[str, str]:
    """The variables that name an attempt in the environment of its processes: how a run finds
    the processes of an attempt whose ``start`` line a killed runner never wrote, and those that
    left the attempt's process group."""
    return dict(zip(ATTEMPT_MARKS, (str(workspace), task, str(attempt)), strict=True))


@dataclass(slots=True)
class OpenAttempt:
    """A started attempt with no ``end`` line: running, or left behind by a dead runner."""

    task: str
    agent: str
    attempt: int
    started: str | None  # its spawn line's moment, the runner's own (``Attempt.started``), not its start line's
    executor: str | None = None
    handle: dict[str, Any] | None = None  # None: killed before its start line was written
    session_id: str | None = None
    fingerprint: str | None = None  # of what it was started with (``run/resume/selection``)
    told: str | None = None  # when its prompt was made: what the channels had told it by then
    in_run: int = 1  # its place among the attempts this run made of its task (``Attempt.in_run``)


@dataclass(slots=True)
class JournalState:
    runner_pid: int | None = None
    runner_start: int | None = None  # its process's start (``procs.process_started``): a reused pid is not it
    open: dict[str, OpenAttempt] = field(default_factory=dict)  # task id -> its open attempt
    # The attempts raced beside a task's open one (a hedge, best of N's others), open too: (task id,
    # attempt) -> it. A dead runner's are settled as every open attempt is; the next run goes on
    # from the task's own (its worktree's, its session), never from a lane's.
    beside: dict[tuple[str, int], OpenAttempt] = field(default_factory=dict)
    retrying: set[str] = field(default_factory=set)  # tasks whose next attempt waits for a backoff
    made: dict[str, set[int]] = field(default_factory=dict)  # task id -> its attempts this run made

    def every_open(self) -> list[OpenAttempt]:
        """Every open attempt: each task's own, and those raced beside it."""
        return [*self.open.values(), *self.beside.values()]

    def opened(self, attempt: OpenAttempt, spawned: bool) -> None:
        """``attempt`` open: its task's own, or one spawned while that is still open (raced beside
        it), or either told again (a start line after its spawn; a cluster's second: its worker)."""
        task, number = attempt.task, attempt.attempt
        own = self.open.get(task)
        if (task, number) in self.beside or (spawned and own is not None and number > own.attempt):
            self.beside[(task, number)] = attempt
            return
        if own is not None and own.attempt != number and number < own.attempt:  # (one that ended already)
            return
        self.open[task] = attempt

    def closed(self, task: str, number: object) -> None:
        """Attempt ``number`` of ``task`` ended; the task's own: the last of those raced beside it
        (a hedge that won: the task's attempt now) becomes its open one."""
        if self.beside.pop((task, number), None) is not None:  # type: ignore[arg-type]
            return
        found = self.open.get(task)
        if found is None or found.attempt != number:
            return
        del self.open[task]
        others = sorted(n for t, n in self.beside if t == task)
        if others:
            self.open[task] = self.beside.pop((task, others[-1]))


def read(path: Path) -> JournalState:
    """What the journal says now; an unreadable or torn line is skipped."""
    state = JournalState()
    try:
        data = read_regular(path)
    except OSError:
        return state
    lines = data[last_run(data) :].splitlines()
    if lines and lines[-1].startswith(b'{"event": "finished"'):
        lines = lines[:1]  # a finished run left nothing open: only its run line matters
    for raw in lines:
        try:
            _apply(state, json.loads(raw))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return state


def last_run(data: bytes) -> int:
    """Where the last run's lines begin in the journal's ``data`` (its ``run`` line): what the runs
    before it left was settled when it began."""
    return last_line_starting(data, _RUN_LINE) or 0


def _apply(state: JournalState, entry: dict[str, Any]) -> None:
    event = entry["event"]
    if event == "run":
        state.runner_pid = int(entry["runner_pid"])
        state.runner_start = ticks(entry.get("runner_start"))
        return
    task = str(entry["task"])
    if event in ("spawn", "start"):
        handle = entry.get("handle")
        if event == "start" and handle is None and "pgid" in entry:  # a journal of version 0.1
            handle = {"pgid": entry["pgid"], "pgid_start": entry.get("pgid_start")}
        number = int(entry.get("attempt", 1))
        earlier = state.beside.get((task, number)) or state.open.get(task)
        same = earlier is not None and earlier.attempt == number
        fingerprint = entry.get("fingerprint", earlier.fingerprint if same and earlier else None)
        told = entry.get("told", earlier.told if same and earlier else None)
        made = state.made.setdefault(task, set())
        made.add(number)
        in_run = entry.get("in_run", earlier.in_run if same and earlier else None)  # (a journal before it: counted)
        session = earlier.session_id if same and earlier else None  # (a cluster's second start line: its worker)
        # Started when it was spawned: a start line comes once its process runs, later by as long as
        # that took (a loaded machine, a worker's queue), and would make status say a later second.
        started = earlier.started if same and earlier and earlier.started else entry.get("at")
        opened = OpenAttempt(
            task,
            str(entry.get("agent", "")),
            number,
            started,
            entry.get("executor", "local" if handle else None),
            dict(handle) if isinstance(handle, dict) else None,
            fingerprint=str(fingerprint) if fingerprint else None,
            told=str(told) if told else None,
            session_id=session,
            in_run=in_run if isinstance(in_run, int) and in_run > 0 else len(made),
        )
        state.opened(opened, spawned=event == "spawn")
        state.retrying.discard(task)
    elif event == "session":
        found = state.beside.get((task, entry.get("attempt"))) or state.open.get(task)  # type: ignore[arg-type]
        if found is not None and found.attempt == entry.get("attempt"):
            found.session_id = str(entry["session_id"])
    elif event == "end":
        state.closed(task, entry.get("attempt"))
    elif event == "forget":  # `reset`: its processes are still settled, its work is not taken up
        for found in state.every_open():
            if found.task == task:
                found.fingerprint = found.session_id = None
    elif event == "retry":
        state.retrying.add(task)
    elif event == "settled":
        state.retrying.discard(task)


def forget(path: Path, tasks: Iterable[str]) -> None:
    """``reset``: what the open attempts of ``tasks`` a dead runner left did is not taken up by
    the next run (neither kept from its log nor its session continued); their processes are
    still stopped. Appended below the last ``run`` line, as the runner's own lines are."""
    state = read(path)
    lines = b"".join(_line({"event": "forget", "task": task, "at": now_iso()}) for task in tasks if task in state.open)
    if lines:
        store.append(path, lines)


def attempts_started(path: Path) -> dict[str, int]:
    """The highest attempt number the journal's ``spawn`` lines give each task, over every run
    (an attempt that printed nothing leaves no log to number the next one by)."""
    found: dict[str, int] = {}
    for task, number in _spawned(path):
        found[task] = max(found.get(task, 0), number)
    return found


def attempts_of(path: Path, task_id: str) -> set[int]:
    """The numbers of every attempt of ``task_id`` the journal tells of, over every run: one that
    printed nothing, or is still starting, has no log file to tell of it."""
    # Only the lines that name it are parsed: a journal of many runs of a big plan holds millions.
    named = b'"task": ' + json.dumps(task_id, ensure_ascii=False).encode("utf-8")
    kinds = (b'{"event": "spawn"', b'{"event": "start"')
    return {number for task, number in _spawned(path, kinds, named) if task == task_id}


def workers_of(path: Path, task_id: str) -> dict[int, str]:
    """The worker that ran each attempt of ``task_id`` on a cluster, as the journal's ``end``
    lines say, or for an attempt still running (or whose end a killed runner never wrote), the
    handle of its ``start`` line once a worker ran it (attempts that ran here have none)."""
    named = b'"task": ' + json.dumps(task_id, ensure_ascii=False).encode("utf-8")
    try:
        data = read_regular(path)
    except OSError:
        return {}
    found: dict[int, str] = {}
    ended: set[int] = set()  # (an end line's worker is the last word on its attempt)
    for raw in data.splitlines():
        if not raw.startswith((b'{"event": "end"', b'{"event": "start"')) or named not in raw or b'"worker"' not in raw:
            continue
        try:
            entry = json.loads(raw)
            number = int(entry["attempt"])
            where = entry.get("worker") if entry["event"] == "end" else (entry.get("handle") or {}).get("worker")
            if entry.get("task") != task_id or not isinstance(where, str) or number in ended:
                continue
            found[number] = where
            if entry["event"] == "end":
                ended.add(number)
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return found


def runs_of(path: Path, task_id: str) -> dict[int, tuple[int, int]]:
    """Each attempt of ``task_id`` the journal's ``spawn`` lines tell of, every run's: which run of
    the task it was in (1 for its first: a run of a task begins at an attempt whose ``in_run`` is
    1) and its place in that run (``in_run``). What ``logs`` says of an attempt: the numbers of its
    files go on across runs, so a task's third run with no retries writes ``attempt-3`` files."""
    named = b'"task": ' + json.dumps(task_id, ensure_ascii=False).encode("utf-8")
    try:
        data = read_regular(path)
    except OSError:
        return {}
    found: dict[int, tuple[int, int]] = {}
    runs = 0
    for raw in data.splitlines():
        if not raw.startswith(b'{"event": "spawn"') or named not in raw:
            continue
        try:
            entry = json.loads(raw)
            number, in_run = int(entry.get("attempt", 1)), int(entry.get("in_run", 1))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        if entry.get("task") != task_id:
            continue
        runs += 1 if in_run == 1 or runs == 0 else 0
        found[number] = (runs, in_run)
    return found


def sessions_of(path: Path, tasks: Collection[str]) -> dict[tuple[str, int], tuple[int, str | None]]:
    """Each attempt of ``tasks`` the journal's ``spawn`` lines tell of, every run's: its place in
    its run of the task (``in_run``) and the agent session it ran in (its ``session`` line; None
    when it told none). What an attempt that continues a session took up is known by it."""
    if not tasks:
        return {}
    try:
        data = read_regular(path)
    except OSError:
        return {}
    found: dict[tuple[str, int], tuple[int, str | None]] = {}
    for raw in data.splitlines():
        if not raw.startswith((b'{"event": "spawn"', b'{"event": "session"')):
            continue
        try:
            entry = json.loads(raw)
            key = (str(entry["task"]), int(entry.get("attempt", 1)))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        if key[0] not in tasks:
            continue
        in_run, session = found.get(key, (1, None))
        if entry["event"] == "spawn":
            found[key] = (int(entry.get("in_run", 1)) if isinstance(entry.get("in_run"), int) else 1, session)
        elif isinstance(entry.get("session_id"), str):
            found[key] = (in_run, entry["session_id"])
    return found


def _spawned(
    path: Path, kinds: tuple[bytes, ...] = (b'{"event": "spawn"',), named: bytes = b""
) -> Iterator[tuple[str, int]]:
    """Each task and attempt number of the lines of ``kinds`` (that hold ``named``), every run's
    (a torn line skipped)."""
    try:
        data = read_regular(path)
    except OSError:
        return
    for raw in data.splitlines():
        if not raw.startswith(kinds) or named not in raw:
            continue
        try:
            entry = json.loads(raw)
            yield str(entry["task"]), int(entry.get("attempt", 1))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue


def attempt_spans(path: Path, wanted: Mapping[str, Collection[int]]) -> dict[tuple[str, int], tuple[float, float]]:
    """(start, end), in seconds since the epoch, of the attempts ``wanted`` names (task id ->
    attempt numbers) that the journal's ``start`` and ``end`` lines tell of, every run's: a result
    file tells only of the attempt that ended its task."""
    if not wanted:
        return {}
    try:
        data = read_regular(path)
    except OSError:
        return {}
    starts: dict[tuple[str, int], float] = {}
    spans: dict[tuple[str, int], tuple[float, float]] = {}
    for raw in data.splitlines():
        if not raw.startswith((b'{"event": "start"', b'{"event": "end"')):
            continue
        try:
            entry = json.loads(raw)
            key = (str(entry["task"]), int(entry.get("attempt", 1)))
            at = epoch_of(entry.get("at"))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        if at is None or key[1] not in wanted.get(key[0], ()):
            continue
        if entry["event"] == "start":
            starts.setdefault(key, at)  # (a cluster writes a second one, naming its worker)
        elif key in starts:
            spans[key] = (starts[key], at)
    return spans


class Journal:
    """The runner's handle on the journal: each call appends its line at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._closed = False

    def _open(self) -> int:
        """The journal, open to append to (a line a power cut cut short ended first)."""
        if self._fd is None:
            flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
            self._fd = fd = os.open(self.path, flags, 0o666)
            size = os.fstat(fd).st_size
            if size > 0 and os.pread(fd, 1, size - 1) != b"\n":
                store.write_all(fd, b"\n", self.path)
        return self._fd

    def begin(self, run: str | None = None, events_at: int | None = None) -> None:
        """Begin this run's lines (once the last run's leftovers are settled): the lines of the
        runs before stay, for ``history``, and ``read`` looks at this run's only. ``run``: its
        name, as its events say it, and ``events_at``: where the event log ended then (where the
        events of what it journals begin: ``state/events/untold``)."""
        me = os.getpid()
        entry = {"event": "run", "runner_pid": me, "runner_start": process_started(me), "at": now_iso()}
        store.write_all(self._open(), _line({**entry, "run": run, "events_at": events_at} if run else entry), self.path)

    def append(self, entry: Mapping[str, Any]) -> None:
        """``entry``'s line, at once; before ``begin``, below the lines of the run before (what the
        next run records of a dead runner's work is found there with the rest of it)."""
        if not self._closed:
            store.write_all(self._open(), _line(entry), self.path)

    def spawning(
        self,
        task: str,
        agent: str,
        attempt: int,
        executor: str = "local",
        fingerprint: str | None = None,
        told: float | None = None,
        in_run: int | None = None,
        at: float | None = None,
    ) -> None:
        """The attempt is about to be started, by ``executor``, with what ``fingerprint`` covers
        and a prompt made at ``told`` (epoch seconds); ``in_run``: its place among the attempts
        of this run of its task (a live ``retry`` begins a new one: see ``Attempt.in_run``);
        ``at``: the moment the runner holds as its start (``Attempt.started``; default now), which
        its result and the plan's status blocks say: what ``status`` reads here says the same."""
        entry: dict[str, Any] = {"event": "spawn", "task": task, "agent": agent, "attempt": attempt}
        entry["executor"] = executor
        if in_run is not None:
            entry["in_run"] = in_run
        if fingerprint:
            entry["fingerprint"] = fingerprint
        if told:
            entry["told"] = iso_at(told)
        entry["at"] = iso_at(at) if at else now_iso()
        self.append(entry)

    def started(self, task: str, agent: str, attempt: int, executor: str, handle: Mapping[str, Any]) -> None:
        """The attempt runs, where ``handle`` says (its executor's words)."""
        self.append(
            {
                "event": "start",
                "task": task,
                "agent": agent,
                "attempt": attempt,
                "executor": executor,
                "handle": dict(handle),
                "at": now_iso(),
            }
        )

    def session(self, task: str, attempt: int, session_id: str) -> None:
        self.append({"event": "session", "task": task, "attempt": attempt, "session_id": session_id})

    def ended(self, task: str, attempt: int, worker: str | None = None) -> None:
        """The attempt is over; ``worker``: on a cluster, the worker that ran it."""
        entry: dict[str, Any] = {"event": "end", "task": task, "attempt": attempt, "at": now_iso()}
        if worker is not None:
            entry["worker"] = worker
        self.append(entry)

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
        self._closed = True
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def _line(entry: Mapping[str, Any]) -> bytes:
    return json.dumps(entry, ensure_ascii=False).encode("utf-8") + b"\n"
