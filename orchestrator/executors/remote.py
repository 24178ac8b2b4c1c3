"""An attempt's process on a machine the runner is not on: started, watched and stopped there.

``supervise`` is what a cluster executor (``executors/dask``) runs in a worker's thread: the
process starts a session of its own (its own process group), its wall clock and inactivity limits
and its kill grace are enforced here, where it runs, and what it writes is handed to ``send`` in
batches while it runs (about twice a second, sooner when a batch grows big), so the runner writes
the attempt's logs and reads its lines as it would locally. ``stop_requested`` is asked between
batches: the runner cancelled the attempt, or is gone. Whatever happens, the group is stopped
(SIGTERM, the grace, SIGKILL) and the leader reaped before ``supervise`` returns.

``RUNNING`` holds the groups that run on this worker by attempt key, and ``stop`` stops them by
key: a runner asks the worker directly (Dask's own cancel does not interrupt a running task), a
new runner too, for the attempts a dead one left.

A group never outlives its worker: ``executors/watchdog``, a small program the worker starts
once (in a session of its own), is told of each attempt's key before its process starts and of
its group once it has one, and SIGKILLs what is left of them when the worker dies (the pipe it
reads from closes). Each attempt's environment holds its key (``ORCHESTRATOR_ATTEMPT_KEY``).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator import redaction, timing
from orchestrator.executors import watchdog
from orchestrator.executors.groups import group_running, signal_group
from orchestrator.executors.luggage import Luggage

_BATCH_BYTES = 256 * 1024  # a batch this big is sent at once
_READ = 64 * 1024

Chunks = list[tuple[str, bytes]]  # ("out" | "err", bytes), in the order they were read


@dataclass(slots=True)
class Spec:
    """One attempt as the worker receives it: picklable, with no path the worker must share but
    ``cwd`` (and whatever the command itself reads); none at all with ``luggage``."""

    key: str
    argv: Sequence[str]
    cwd: str
    env: Mapping[str, str]  # what the runner added to its own environment for the attempt
    stdin: bytes | None
    timeout: float | None
    inactivity: float | None
    grace: float
    claim: bool = True  # first claim the key on the scheduler: a second run of it is refused
    luggage: Luggage | None = None  # no shared filesystem: its files, its checkout (``executors/luggage``)


@dataclass(slots=True)
class Ended:
    """How the process ended, and the output not yet sent."""

    exit_code: int | None = None
    signal: int | None = None
    duration: float = 0.0
    timed_out: str | None = None
    start_error: str | None = None
    stopped: bool = False  # by ``stop`` or ``stop_requested``: the runner no longer waits for it
    rest: Chunks = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)  # the executor's own: the worker's name


RUNNING: dict[str, int] = {}  # attempt key -> process group, on this worker
_STOP: set[str] = set()  # keys a runner asked to stop
_LOCK = threading.Lock()


class _Watchdog:
    """This worker's ``executors/watchdog`` process, started when first needed (and again, told
    of the attempts that run, should it be gone)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.pipe: int | None = None  # the write end: held by this process alone (close-on-exec)
        self.watched: dict[str, str] = {}  # key -> its last line
        self.lock = threading.Lock()

    def tell(self, key: str, line: str | None) -> None:
        """Say ``line`` of ``key`` (``None``: it is over)."""
        with self.lock:
            if line is None:
                self.watched.pop(key, None)
                self._write(f"done {key}\n")
                return
            self.watched[key] = line
            if not self._write(line):  # gone (killed?): a new one, told of every attempt that runs
                self._start()
                self._write("".join(self.watched.values()))

    def _write(self, text: str) -> bool:
        if self.process is None or self.pipe is None or self.process.poll() is not None:
            return False
        try:
            os.write(self.pipe, text.encode())
        except OSError:
            return False
        return True

    def _start(self) -> None:
        if self.pipe is not None:
            os.close(self.pipe)
        if self.process is not None:
            self.process.wait()
        read, self.pipe = os.pipe()  # (both close-on-exec: no attempt inherits the write end)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", watchdog.__file__],
                stdin=read,
                stdout=subprocess.DEVNULL,
                start_new_session=True,  # (a worker killed with its process group: this stays, to act)
            )
        finally:
            os.close(read)


_WATCHDOG = _Watchdog()


def supervise(spec: Spec, send: Callable[[Chunks], None], stop_requested: Callable[[], bool]) -> Ended:
    _WATCHDOG.tell(spec.key, f"key {spec.key}\n")  # (before its process exists: a worker may die meanwhile)
    try:
        return _supervise(spec, send, stop_requested)
    finally:
        _WATCHDOG.tell(spec.key, None)


def _supervise(spec: Spec, send: Callable[[Chunks], None], stop_requested: Callable[[], bool]) -> Ended:
    began = time.monotonic()
    stdin: Any = subprocess.DEVNULL
    if spec.stdin is not None:
        stdin = tempfile.TemporaryFile()  # noqa: SIM115 - closed below, once the child has it
        stdin.write(spec.stdin)
        stdin.seek(0)
    try:
        process = subprocess.Popen(
            list(spec.argv),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=spec.cwd,
            env={**worker_environment(spec.env), watchdog.KEY_VARIABLE: spec.key},
            start_new_session=True,
        )
    except OSError as exc:
        return Ended(duration=time.monotonic() - began, start_error=_could_not_start(exc, spec))
    finally:
        if stdin is not subprocess.DEVNULL:
            stdin.close()
    pgid = process.pid
    _WATCHDOG.tell(spec.key, f"group {spec.key} {pgid} {watchdog.started(pgid)}\n")
    with _LOCK:
        RUNNING[spec.key] = pgid
    ended = Ended()
    # What it prints leaves the worker redacted: of the worker's secrets, which the runner does not know.
    redactor = redaction.current().joined(worker_environment(spec.env))
    try:
        ended = _watch(process, spec, began, send, stop_requested, redactor)
    finally:
        if process.poll() is None or group_running(pgid):
            stop_groups_now([pgid], spec.grace)
        process.wait()
        with _LOCK:
            RUNNING.pop(spec.key, None)
            _STOP.discard(spec.key)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
    code = process.returncode
    ended.exit_code = None if code < 0 else code
    ended.signal = -code if code < 0 else None
    ended.duration = time.monotonic() - began
    return ended


def _watch(
    process: subprocess.Popen[bytes],
    spec: Spec,
    began: float,
    send: Callable[[Chunks], None],
    stop_requested: Callable[[], bool],
    redactor: redaction.Redactor,
) -> Ended:
    """Read both pipes until the leader has exited and they are closed (a grandchild holding one:
    ``timing.drain`` seconds after the leader's exit), sending batches (``timing.batch`` apart),
    redacted as they stream (``redaction.Stream``: whole lines); stop the group at a limit or when
    asked. Pipes closed are not an exit: the leader may run on without them."""
    assert process.stdout is not None and process.stderr is not None
    clock = timing.current()
    ended = Ended()
    streams = {process.stdout.fileno(): "out", process.stderr.fileno(): "err"}
    redacting = {name: redactor.stream() for name in streams.values()}
    batch: Chunks = []
    size = 0
    last_sent = last_output = began
    exited_at: float | None = None
    with selectors.DefaultSelector() as selector:
        for fd in streams:
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
        while True:
            if selector.get_map():
                ready = selector.select(timeout=clock.worker_poll)
            else:  # both pipes closed: the leader may still run (it closed them, or is exiting)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=clock.worker_poll)
                ready = []
            for item, _ in ready:
                fd = int(item.fd)
                try:
                    chunk = os.read(fd, _READ)
                except BlockingIOError:
                    continue
                if not chunk:
                    selector.unregister(fd)
                    continue
                size += len(chunk)
                last_output = time.monotonic()
                if shown := redacting[streams[fd]].feed(chunk):
                    batch.append((streams[fd], shown))
            now = time.monotonic()
            if batch and (now - last_sent >= clock.batch or size >= _BATCH_BYTES):
                send(batch)
                batch, size, last_sent = [], 0, now
            if exited_at is None and process.poll() is not None:
                exited_at = now
                if group_running(process.pid):  # children left in its group would hold the pipes
                    stop_groups_now([process.pid], min(spec.grace, 1.0))
            if exited_at is not None:
                if not selector.get_map() or time.monotonic() - exited_at >= clock.drain:
                    break
                continue
            reason = _limit(spec, began, last_output, now)
            if reason is None and (stop_requested() or _asked_to_stop(spec.key)):
                ended.stopped = True
                reason = "stopped"
            if reason is not None:
                stop_groups_now([process.pid], spec.grace)
                ended.timed_out = None if reason == "stopped" else reason
                exited_at = time.monotonic()
    ended.rest = batch + [(name, rest) for name, stream in redacting.items() if (rest := stream.end())]
    return ended


def _limit(spec: Spec, began: float, last_output: float, now: float) -> str | None:
    if spec.timeout is not None and now - began >= spec.timeout:
        return "timeout"
    if spec.inactivity is not None and now - last_output >= spec.inactivity:
        return "inactivity"
    return None


def _asked_to_stop(key: str) -> bool:
    with _LOCK:
        return key in _STOP


def stop_groups_now(pgids: Collection[int], grace: float) -> None:
    """SIGTERM every group, up to ``grace`` seconds for them to empty, then SIGKILL (in a plain
    thread: ``groups.stop_groups`` is the same for an event loop)."""
    asked = [pgid for pgid in pgids if signal_group(pgid, signal.SIGTERM)]
    for pgid in asked:
        signal_group(pgid, signal.SIGCONT)
    deadline = time.monotonic() + grace
    while asked and time.monotonic() < deadline:
        time.sleep(timing.current().stop_poll)
        asked = [pgid for pgid in asked if group_running(pgid)]
    for pgid in asked:
        signal_group(pgid, signal.SIGKILL)


def stop(keys: Collection[str], grace: float) -> list[str]:
    """Stop the attempts of ``keys`` that run on this worker (asked of their supervisors, and
    their groups stopped here too: within one grace period); the keys that were running."""
    with _LOCK:
        found = {key: RUNNING[key] for key in keys if key in RUNNING}
        _STOP.update(found)
    stop_groups_now(list(found.values()), grace)
    return sorted(found)


def running(keys: Collection[str]) -> list[str]:
    """Which of ``keys`` still run on this worker."""
    with _LOCK:
        return sorted(key for key in keys if key in RUNNING and group_running(RUNNING[key]))


def _could_not_start(exc: OSError, spec: Spec) -> str:
    program = spec.argv[0] if spec.argv else "(no command)"
    if isinstance(exc, FileNotFoundError):
        if exc.filename is not None and os.fspath(exc.filename) == spec.cwd:
            return f"no such directory on the worker: {spec.cwd}"
        return f"command not found on the worker: {program}" if exc.filename in (None, program) else str(exc)
    if isinstance(exc, PermissionError):
        return f"permission denied: {program}"
    return f"{program}: {exc.strerror or exc}"


def worker_environment(added: Mapping[str, str], here: Mapping[str, str] | None = None) -> dict[str, str]:
    """The attempt's environment on the worker: the worker's own (where its agent CLIs, their
    logins and its ``PATH`` are), with what the runner added for the attempt over its own (the
    variables that name the attempt, the settings' ``env``, the backend's)."""
    return {**(os.environ if here is None else here), **added}
