"""One attempt as one OS process group: spawn, stream output to files, enforce deadlines, reap.

Every child starts in a new session (its own process group), so the whole tree it creates can be
signalled at once. Whatever happens — normal exit, wall-clock timeout, inactivity, cancellation by
Ctrl-C — the group is terminated (SIGTERM, a grace period, SIGKILL) and the child is reaped before
``run_process`` (or ``Started.wait``) returns or re-raises.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import select
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

# asyncio and anyio are imported inside the functions that run a process, not here: validate and
# render load this module for its types (through the backends) and never run one, and importing
# asyncio was a tenth of their start-up.
if TYPE_CHECKING:
    import asyncio


_DRAIN_SECONDS = 2.0
_CHUNK = 65536
_TO_END_CHUNKS = 64  # chunks _Stream.read(to_end=True) takes at most (4 MiB)
_HAVE_PROC = os.path.isdir("/proc/self")
_EXITED: frozenset[str | None] = frozenset({None, "Z", "X"})  # no such process, zombie, dead
LineCallback = Callable[[bytes], None]
StartCallback = Callable[[int], None]
EndCallback = Callable[["ProcessRun"], None]


@dataclass(frozen=True, slots=True)
class Limits:
    timeout: float | None = None  # wall clock, seconds
    inactivity: float | None = None  # no output for this long = hung
    grace: float = 5.0  # between SIGTERM and SIGKILL


@dataclass(frozen=True, slots=True)
class ProcessRun:
    """How a process ended. ``start_error`` set means it never ran."""

    exit_code: int | None
    signal: int | None
    duration: float
    timed_out: str | None = None  # "timeout" or "inactivity"
    start_error: str | None = None
    pid: int | None = None
    stdout_bytes: int = 0
    stderr_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.timed_out is None and self.start_error is None

    def describe(self, limits: Limits | None = None) -> str:
        """A one-line reason for a person: 'exit code 3', 'killed by SIGKILL', 'timed out after 5s'."""
        if self.start_error:
            return f"could not start: {self.start_error}"
        if self.timed_out == "timeout":
            limit = f" after {limits.timeout:g}s" if limits and limits.timeout else ""
            return f"timed out{limit} (wall-clock limit)"
        if self.timed_out == "inactivity":
            limit = f" for {limits.inactivity:g}s" if limits and limits.inactivity else ""
            return f"hung: no output{limit} (inactivity limit)"
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = f"signal {self.signal}"
            return f"killed by {name}"
        return f"exit code {self.exit_code}"


def _signal_group(pgid: int, sig: int) -> bool:
    """Signal a process group; ``False`` when the group is empty."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a group we do not own
        return False
    return True


def _group_running(pgid: int) -> bool:
    """Whether a member of the group still runs.

    A member that has exited but is not yet reaped (a zombie) still answers ``killpg(pgid, 0)``;
    once its parent is gone only init can reap it, which may take seconds (or never happen in a
    container whose PID 1 does not reap), so zombies do not count.
    """
    if not _signal_group(pgid, 0):
        return False
    if not _HAVE_PROC:
        return True
    return any(process_state(pid) not in _EXITED for pid in group_members(pgid))


async def stop_group(pgid: int, grace: float) -> None:
    """SIGTERM the group, wait up to ``grace`` seconds for it to empty, then SIGKILL what is left."""
    import anyio

    if not _signal_group(pgid, signal.SIGTERM):
        return
    _signal_group(pgid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
    deadline = anyio.current_time() + grace
    while anyio.current_time() < deadline:
        await anyio.sleep(0.02)
        if not _group_running(pgid):
            return
    _signal_group(pgid, signal.SIGKILL)


def _could_not_start(exc: OSError, argv: Sequence[str]) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {argv[0]}" if exc.filename in (None, argv[0]) else str(exc)
    if isinstance(exc, PermissionError):
        return f"permission denied: {argv[0]}"
    return f"{argv[0]}: {exc.strerror or exc}"


async def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdin: Path | None,
    stdout: Path,
    stderr: Path,
    limits: Limits,
    fallback: Sequence[str] | None = None,
    executable: str | None = None,
    logs_absent: bool = False,
    posix_spawn: bool = False,
    on_line: LineCallback | None = None,
    on_start: StartCallback | None = None,
) -> ProcessRun:
    """Run ``argv`` to the end under ``limits``; output goes to the two files as it arrives.

    ``start_process`` and then ``Started.wait``: see those for the arguments.
    """
    started = start_process(
        argv,
        cwd=cwd,
        env=env,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        limits=limits,
        fallback=fallback,
        executable=executable,
        logs_absent=logs_absent,
        posix_spawn=posix_spawn,
    )
    return await started.wait(on_line=on_line, on_start=on_start)


def start_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdin: Path | None,
    stdout: Path,
    stderr: Path,
    limits: Limits,
    fallback: Sequence[str] | None = None,
    executable: str | None = None,
    logs_absent: bool = False,
    posix_spawn: bool = False,
) -> Started:
    """Start ``argv`` now, from the running event loop's thread, and return it as ``Started``,
    whose ``wait`` supervises it; nothing else stands between the call and the child's start.

    When ``argv`` cannot be executed (not found, not executable, not a binary) and there is a
    ``fallback``, that runs instead: a shell that reports the failure its own way. ``executable``
    is the program to exec for ``argv`` (whose first word is then only its name), as a shell does.
    ``logs_absent``: the caller knows neither output file exists, so there is no stale one to remove.
    ``posix_spawn``: the caller has checked ``posix_spawn_possible()``; an ``executable`` run in
    this process's own directory then starts that way.
    """
    import asyncio

    loop = asyncio.get_running_loop()
    began = loop.time()
    # The log files are set up first, so that nothing stands between the child's start and on_start.
    out_file = _LazyFile(stdout, clear=not logs_absent)
    err_file = _LazyFile(stderr, clear=not logs_absent)
    try:
        try:
            child = _Child.spawn(argv, executable, cwd, env, stdin, posix_spawn)
        except OSError:
            if fallback is None:
                raise
            argv = fallback
            child = _Child.spawn(argv, None, cwd, env, stdin)
    except OSError as exc:
        failed = ProcessRun(None, None, loop.time() - began, start_error=_could_not_start(exc, argv))
        return Started(loop, None, began, out_file, err_file, limits, failed)
    return Started(loop, child, began, out_file, err_file, limits)


class Started:
    """A process ``start_process`` started (or could not start): ``wait`` supervises it.

    ``wait`` must be awaited once: until it runs, nothing watches the child. A task that is
    cancelled before its first step never runs its coroutine, so whoever runs ``wait`` in a new
    task lets that task take its first step before cancelling it (the runner's ``_InFlight``).
    """

    __slots__ = ("began", "child", "err_file", "failed", "limits", "loop", "out_file")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        child: _Child | None,
        began: float,
        out_file: _LazyFile,
        err_file: _LazyFile,
        limits: Limits,
        failed: ProcessRun | None = None,
    ) -> None:
        self.loop = loop
        self.child = child
        self.began = began
        self.out_file = out_file
        self.err_file = err_file
        self.limits = limits
        self.failed = failed

    @property
    def pid(self) -> int | None:
        """The child's pid (= its process group id); ``None`` if it could not start."""
        return self.child.pid if self.child is not None else None

    async def wait(
        self,
        *,
        on_line: LineCallback | None = None,
        on_start: StartCallback | None = None,
        on_end: EndCallback | None = None,
    ) -> ProcessRun:
        """Supervise the child to its end within its limits; the group is stopped and the child
        reaped before this returns or re-raises, whatever happens (a timeout, cancellation).

        ``on_line`` receives complete stdout lines (for agents that stream JSON events); any output
        on either stream resets the inactivity clock. ``on_start`` receives the pid (= process
        group id) first, so the caller can record it before anything else can go wrong.

        ``on_end`` receives the ``ProcessRun`` this will return, where the end is plain (the child
        exited on its own, no member of its group is left, both pipes are at their end): from the
        event loop's callback that sees the exit, before this coroutine has resumed, so that the
        caller can act on it a turn or two of the loop sooner. It must not raise.
        """
        child = self.child
        if child is None:
            assert self.failed is not None
            return self.failed
        with self.out_file, self.err_file, child:
            return await _supervise(
                self.loop, child, self.began, self.out_file, self.err_file, self.limits, on_line, on_start, on_end
            )


class _Child:
    """A child process in its own session, with its stdout and stderr on non-blocking pipes.

    Spawned with ``os.posix_spawn`` where that does exactly what ``subprocess.Popen`` would (see
    ``posix_spawn_possible``), else with Popen; both vfork and exec. Watched without a thread: its
    exit is awaited on a pidfd (Linux 5.3+), or by polling where there is none. asyncio's own
    subprocess support starts a thread per child to wait for it, which costs more than a no-op
    task's whole share of the runner's time.
    """

    def __init__(self, pid: int, popen: subprocess.Popen[bytes] | None, out: int, err: int) -> None:
        self.pid = pid
        self.popen = popen
        self.pipes = (out, err)
        self._code: int | None = None
        self.pidfd: int | None = None
        # try/except rather than contextlib.suppress here and below: these run for every child,
        # and suppress builds a context manager each time.
        try:  # noqa: SIM105
            self.pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):  # no pidfd_open: poll instead
            pass

    @classmethod
    def spawn(
        cls,
        argv: Sequence[str],
        executable: str | None,
        cwd: Path,
        env: Mapping[str, str],
        stdin: Path | None,
        posix_spawn: bool = False,
    ) -> _Child:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            popen = None
            spawned = None
            if posix_spawn and executable is not None and _can_posix_spawn(cwd, out_w, err_w):
                spawned = _posix_spawn(executable, argv, env, stdin, out_w, err_w)
            if spawned is None:
                popen = _popen(argv, executable, cwd, env, stdin, out_w, err_w)
                spawned = popen.pid
        except BaseException:
            for fd in (out_r, err_r):
                os.close(fd)
            raise
        finally:
            for fd in (out_w, err_w):
                os.close(fd)
        os.set_blocking(out_r, False)
        os.set_blocking(err_r, False)
        return cls(spawned, popen, out_r, err_r)

    @property
    def returncode(self) -> int | None:
        """The exit status once the child has exited (it is then reaped): negative for a signal."""
        if self.popen is not None:
            return self.popen.poll()
        if self._code is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped by someone else: what Popen.poll() then says
                self._code = 0
            else:
                if pid:
                    self._code = os.waitstatus_to_exitcode(status)
        return self._code

    async def wait(self) -> int:
        """Wait for the child to exit and reap it."""
        import anyio

        if self.pidfd is not None:
            while self.returncode is None:
                await anyio.wait_readable(self.pidfd)
        else:
            delay = 0.001
            while self.returncode is None:
                await anyio.sleep(delay)
                delay = min(delay * 2, 0.05)
        code = self.returncode
        assert code is not None
        return code

    def __enter__(self) -> _Child:
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in (*self.pipes, self.pidfd):
            if fd is not None:
                try:  # noqa: SIM105
                    os.close(fd)
                except OSError:
                    pass


def _popen(
    argv: Sequence[str],
    executable: str | None,
    cwd: Path,
    env: Mapping[str, str],
    stdin: Path | None,
    out_w: int,
    err_w: int,
) -> subprocess.Popen[bytes]:
    stdin_fd = os.open(stdin, os.O_RDONLY | os.O_CLOEXEC) if stdin is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            list(argv),
            executable=executable,
            stdin=stdin_fd,
            stdout=out_w,
            stderr=err_w,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
        )
    finally:
        if stdin_fd != subprocess.DEVNULL:
            os.close(stdin_fd)


# What Popen's restore_signals puts back to the default in the child: Python ignores these.
_DEFAULT_SIGNALS = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ") if hasattr(signal, name))
_POSIX_SPAWN = [sys.platform == "linux" and hasattr(os, "posix_spawn") and _HAVE_PROC]


def posix_spawn_possible() -> bool:
    """Whether ``run_process(posix_spawn=True)`` can start children by ``os.posix_spawn`` in this
    process: Linux, and no descriptor past stderr is inheritable.

    ``posix_spawn`` starts a child as Popen does, for about half Popen's CPU (for a no-op task a
    tenth of everything the runner spends on it), but it closes only the descriptors marked
    close-on-exec, where Popen closes them all. Python marks every descriptor it opens so; one
    inherited from our parent or made inheritable on purpose is not, and would reach the child.
    """
    if not _POSIX_SPAWN[0]:
        return False
    try:
        return not _inherited_descriptors()
    except (OSError, ValueError):
        return False


def _can_posix_spawn(cwd: Path, out_w: int, err_w: int) -> bool:
    """Whether ``os.posix_spawn`` starts this child exactly as Popen would, given that no
    descriptor of ours is inheritable (``posix_spawn_possible``): it cannot change the child's
    directory (Python exposes no such file action), so the runner must already be in it."""
    if not _POSIX_SPAWN[0] or out_w <= 2 or err_w <= 2:
        return False
    try:
        return os.getcwd() == os.fspath(cwd)
    except OSError:
        return False


def keep_descriptors_from_children() -> None:
    """Mark every descriptor this process inherited (past stderr) close-on-exec.

    For a command-line process whose every child is started here: Popen closes them in the child
    anyway, so no child sees a difference, and ``posix_spawn`` can then be used (a shell, an IDE
    or make often leaves a descriptor or two open in the processes it starts).
    """
    if not _HAVE_PROC:
        return
    with contextlib.suppress(OSError):
        for fd in _inherited_descriptors():
            with contextlib.suppress(OSError):
                os.set_inheritable(fd, False)


def _inherited_descriptors() -> list[int]:
    """This process's descriptors past stderr that a child would inherit (Linux /proc)."""
    return [fd for fd in map(int, os.listdir("/proc/self/fd")) if fd > 2 and _inheritable(fd)]


def _inheritable(fd: int) -> bool:
    try:
        return os.get_inheritable(fd)
    except OSError:  # the directory's own descriptor, closed by now
        return False


def _posix_spawn(
    executable: str, argv: Sequence[str], env: Mapping[str, str], stdin: Path | None, out_w: int, err_w: int
) -> int | None:
    """The child's pid; ``None`` where this C library cannot start a new session this way.

    One difference from Popen remains, and no program can act on it: glibc leaves its two
    internal signals (32 and 33) ignored in the child, Python cannot ask otherwise, and every
    glibc program installs its own handlers for them at start."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.fspath(stdin) if stdin is not None else os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, out_w, 1),
        (os.POSIX_SPAWN_DUP2, err_w, 2),
    ]
    try:
        return os.posix_spawn(
            executable, list(argv), env, file_actions=actions, setsid=True, setsigdef=_DEFAULT_SIGNALS
        )
    except NotImplementedError:  # built without POSIX_SPAWN_SETSID
        _POSIX_SPAWN[0] = False
        return None


class _LazyFile:
    """A log file created with the first byte written to it.

    Creating a file costs as much as a no-op task's whole share of the runner's time, and most
    tasks write nothing to stderr: a missing log means no output. A log left by an earlier attempt
    of the same number is removed at once, so what is on disk is always this attempt's.
    """

    def __init__(self, path: Path, *, clear: bool = True) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        if clear:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def write(self, data: bytes) -> int:
        if self._file is None:
            self._file = open(self.path, "wb")  # noqa: SIM115 - closed by __exit__
        return self._file.write(data)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def __enter__(self) -> _LazyFile:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()


class _Stream:
    """One of the child's output pipes: bytes go to the log as they come, lines to ``on_line``."""

    __slots__ = ("count", "fd", "on_line", "pending", "sink")

    def __init__(self, fd: int, sink: _LazyFile, on_line: LineCallback | None) -> None:
        self.fd = fd
        self.sink = sink
        self.on_line = on_line
        self.pending = bytearray()  # a long line arrives in many chunks: split only at a newline
        self.count = 0

    def read(self, *, to_end: bool = False) -> bool:
        """Take what the pipe has now; ``False`` at end of file.

        ``to_end``: the child has exited, so its last output and the end of file are both there
        already: read on past a short read, to see that end (at most ``_TO_END_CHUNKS`` chunks,
        for a grandchild that keeps writing)."""
        chunks = 0
        while True:
            try:
                chunk = os.read(self.fd, _CHUNK)
            except BlockingIOError:
                return True
            if not chunk:
                if self.on_line is not None and self.pending:
                    self.on_line(bytes(self.pending))
                    self.pending = bytearray()
                return False
            self.sink.write(chunk)
            self.sink.flush()
            self.count += len(chunk)
            if self.on_line is not None:
                self._lines(chunk)
            if to_end:
                chunks += 1
                if chunks >= _TO_END_CHUNKS:
                    return True
            elif len(chunk) < _CHUNK:
                return True

    def _lines(self, chunk: bytes) -> None:
        assert self.on_line is not None
        self.pending += chunk
        if b"\n" in chunk:
            *lines, rest = self.pending.split(b"\n")
            for line in lines:
                self.on_line(bytes(line))
            self.pending = bytearray(rest)
        elif len(self.pending) > 64 * 1024 * 1024:  # a runaway line: stop buffering it
            self.pending = bytearray()


class Wakeup:
    """One coroutine waits, on the asyncio loop, until a callback wakes it or the loop's clock
    reaches a time: a future and a timer, without a task or a selector of its own."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self, until: float) -> None:
        """Until ``wake`` or the loop's clock reaches ``until`` (``math.inf``: no limit)."""
        waiter = self._waiter = self.loop.create_future()
        timer = self.loop.call_at(until, self.wake) if until != math.inf else None
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()


class _Readers:
    """The loop's way to call back when a descriptor is readable: ``add(fd, callback)``, ``remove(fd)``.

    On Linux, one epoll set per event loop holds every child's pipes and pidfd, and the loop
    watches that one descriptor: registering a descriptor is then one ``epoll_ctl`` (about 0.4 us)
    where ``loop.add_reader`` builds a handle and a selector key (about 5 us, and three of each
    per child). Elsewhere, ``loop.add_reader`` itself.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.callbacks: dict[int, Callable[[], None]] = {}
        self.first: set[int] = set()  # called back before the others found readable with them
        self.epoll = select.epoll() if _HAVE_EPOLL else None
        if self.epoll is not None:
            loop.add_reader(self.epoll.fileno(), self._ready)

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _Readers:
        readers = _READERS.get(loop)
        if readers is None:
            for old_loop, old in list(_READERS.items()):  # the epoll sets of closed loops go now
                if old_loop.is_closed():
                    old.close()
                    del _READERS[old_loop]
            readers = _READERS[loop] = cls(loop)
        return readers

    def close(self) -> None:
        if self.epoll is not None:
            self.epoll.close()

    def add(self, fd: int, callback: Callable[[], None], *, first: bool = False) -> None:
        """``first``: of the descriptors found readable together, this one's callback comes
        before the others' (a child's exit before the end of its pipes)."""
        if self.epoll is None:
            self.loop.add_reader(fd, callback)
            return
        self.epoll.register(fd, select.EPOLLIN)
        self.callbacks[fd] = callback
        if first:
            self.first.add(fd)

    def remove(self, fd: int) -> None:
        if self.epoll is None:
            self.loop.remove_reader(fd)
            return
        if self.callbacks.pop(fd, None) is not None:
            self.first.discard(fd)
            try:  # noqa: SIM105
                self.epoll.unregister(fd)
            except OSError:  # closed already: the kernel dropped it with the file
                pass

    def _ready(self) -> None:
        assert self.epoll is not None
        # A callback may remove another descriptor of the same batch: its event is dropped then.
        # None adds one: descriptors are only added by coroutines, never from these callbacks.
        events = self.epoll.poll(0)
        if len(events) > 1 and self.first:
            first = self.first
            events.sort(key=lambda event: event[0] not in first)  # stable: otherwise as they came
        for fd, _ in events:
            callback = self.callbacks.get(fd)
            if callback is not None:
                callback()


_HAVE_EPOLL = hasattr(select, "epoll")
_READERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Readers] = weakref.WeakKeyDictionary()


class _Watch:
    """Callbacks for one child: its pipes are read the moment they are readable, and its exit (the
    pidfd) or the end of its output wakes the one coroutine that decides.

    Callbacks straight on the event loop (``_Readers``), not a task per pipe nor a selector to wait
    on: for a short command this bookkeeping is the runner's largest cost per task.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.readers = _Readers.of(loop)
        self.open: list[_Stream] = []  # registered, not at their end yet
        self.pidfd: int | None = None  # registered, not readable yet
        self.last_output = loop.time()
        self.error: BaseException | None = None  # raised by an on_line callback, re-raised by the coroutine
        self.wakeup = Wakeup(loop)
        self.on_exit: Callable[[], None] | None = None  # called at the exit, before the coroutine wakes

    def start(self, streams: list[_Stream], pidfd: int | None) -> None:
        """Register the callbacks; what got registered is undone by ``close`` even if one fails."""
        for stream in streams:
            self.readers.add(stream.fd, functools.partial(self._readable, stream))
            self.open.append(stream)
        if pidfd is not None:
            # The exit first: where the end is plain, what is left of the pipes is read from
            # the exit's callback, without a wake-up for each of them before it.
            self.readers.add(pidfd, self._exited, first=True)
            self.pidfd = pidfd

    def _readable(self, stream: _Stream) -> None:
        self.last_output = self.loop.time()
        try:
            more = stream.read()
        except Exception as exc:  # handed to the coroutine, not lost in the loop
            self.error = exc
            more = False
        if not more:
            self.close_stream(stream)
            self.wakeup.wake()

    def _exited(self) -> None:
        assert self.pidfd is not None
        try:
            if self.on_exit is not None:
                self.on_exit()
        finally:  # after on_exit: its callback may start the next child, and this can wait
            self.readers.remove(self.pidfd)
            self.pidfd = None
            self.wakeup.wake()

    def close_stream(self, stream: _Stream) -> None:
        if stream in self.open:
            self.readers.remove(stream.fd)
            self.open.remove(stream)

    def close(self) -> None:
        for stream in list(self.open):
            self.close_stream(stream)
        if self.pidfd is not None:
            self.readers.remove(self.pidfd)
            self.pidfd = None


async def _supervise(
    loop: asyncio.AbstractEventLoop,
    child: _Child,
    started: float,
    out_file: _LazyFile,
    err_file: _LazyFile,
    limits: Limits,
    on_line: LineCallback | None,
    on_start: StartCallback | None,
    on_end: EndCallback | None = None,
) -> ProcessRun:
    """Wait for the child's exit and the end of its output, within its limits."""
    pgid = child.pid
    timed_out: str | None = None
    streams = [_Stream(child.pipes[0], out_file, on_line), _Stream(child.pipes[1], err_file, None)]
    deadline = started + limits.timeout if limits.timeout else math.inf
    drain_until = math.inf  # once the leader is gone: how long a grandchild may keep a pipe open
    watch = _Watch(loop)
    emptied = False  # the group was found empty after the child exited
    ended: ProcessRun | None = None  # the run, once it is over

    def outcome() -> ProcessRun:
        code = child.returncode
        sig = -code if code is not None and code < 0 else None
        return ProcessRun(
            None if sig is not None else code,
            sig,
            loop.time() - started,
            timed_out=timed_out,
            pid=pgid,
            stdout_bytes=streams[0].count,
            stderr_bytes=streams[1].count,
        )

    def end_now() -> None:
        """At the exit, from the pidfd's callback: the plain end (the child reaped, its group empty,
        its pipes read to their end) is handed to ``on_end`` at once; anything else is left to
        the coroutine."""
        nonlocal emptied, ended
        if timed_out is not None or watch.error is not None or child.returncode is None or _group_running(pgid):
            return
        for stream in watch.open:
            try:
                more = stream.read(to_end=True)  # what it wrote last may be there with the exit
            except Exception as exc:  # an on_line callback's: the coroutine raises it
                watch.error = exc
                return
            if more:  # a grandchild that left the group holds the pipe: the coroutine drains it
                return
        emptied = True
        ended = outcome()
        assert on_end is not None
        try:
            on_end(ended)
        finally:  # the pipes are at their end: they are let go once on_end has done its part
            for stream in list(watch.open):
                watch.close_stream(stream)

    try:  # from here on, whatever happens, the group is stopped and the child reaped
        if on_start is not None:
            on_start(pgid)
        if on_end is not None:
            watch.on_exit = end_now
        watch.start(streams, child.pidfd)
        exited = False
        while ended is None:
            if watch.error is not None:
                raise watch.error
            now = loop.time()
            # With a pidfd, the exit is known from its callback: no wait call before that.
            if not exited and watch.pidfd is None and child.returncode is not None:
                exited = True
                # The leader is gone; background children it left in its group would hold the
                # pipes open forever, so they go too. A grandchild that left the group (setsid)
                # may still hold a pipe: read what is there, then stop reading.
                if _group_running(pgid):
                    await stop_group(pgid, min(limits.grace, 1.0))
                else:
                    emptied = True  # and it stays so: no member is left to start another
                drain_until = loop.time() + _DRAIN_SECONDS
            if exited:
                if not watch.open or now >= drain_until:
                    break
                await watch.wakeup.wait(drain_until)
                continue
            wake = math.inf
            if timed_out is None:
                idle_deadline = watch.last_output + limits.inactivity if limits.inactivity else math.inf
                if now >= deadline:
                    timed_out = "timeout"
                elif now >= idle_deadline:
                    timed_out = "inactivity"
                if timed_out:
                    await stop_group(pgid, limits.grace)  # the exit then comes as any other
                    continue
                wake = min(deadline, idle_deadline)
            if watch.pidfd is None:  # nothing (more) will tell of the exit: look again soon
                wake = min(wake, now + 0.05)
            await watch.wakeup.wait(wake)
    finally:
        watch.close()
        # Usually the child is reaped and its group was found empty already: nothing to await.
        if child.returncode is None or (not emptied and _group_running(pgid)):
            import anyio

            with anyio.CancelScope(shield=True):
                await stop_group(pgid, limits.grace)
                await child.wait()
    return ended if ended is not None else outcome()


def child_exited() -> bool:
    """Whether a child of this process has exited and is not reaped yet (its supervision has not
    seen the exit yet): one ``waitid`` that leaves it as it is (``WNOWAIT``)."""
    try:
        return os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except (ChildProcessError, AttributeError):  # no child at all; no waitid on this system
        return False


def group_alive(pgid: int) -> bool:
    return _group_running(pgid)


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or ``None``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def process_state(pid: int) -> str | None:
    """The state letter of ``pid`` (R, S, Z, ...) from /proc, or ``None`` when it is gone (or no /proc)."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (Linux), to tell a reused pid from the original."""
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields else None
    except (IndexError, ValueError):
        return None


def started_since_bound() -> int | None:
    """A lower bound, in ``process_start_time``'s units, on the start time of a process spawned a
    moment ago: the boot-time clock less one second of slack.

    Read from the clock, not from ``/proc/<pid>/stat``: reading that file while the child is
    still in exec waits for the exec to finish, about a millisecond per task.
    """
    if not _HAVE_PROC:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return max(0, int(time.clock_gettime(time.CLOCK_BOOTTIME) * ticks) - ticks)


def group_members(pgid: int) -> list[int]:
    """Pids whose process group is ``pgid`` (Linux /proc; empty elsewhere)."""
    members: list[int] = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
                fields = stat.rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if len(fields) > 2 and fields[2] == str(pgid):
                members.append(int(entry.name))
    return members


def groups_with_environment(marks: Mapping[str, str]) -> set[int]:
    """The process groups of running processes whose environment holds every ``marks`` variable
    with that value (Linux /proc, processes of our own user; empty elsewhere)."""
    wanted = {f"{key}={value}".encode() for key, value in marks.items()}
    groups: set[int] = set()
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                environment = set(Path(entry.path, "environ").read_bytes().split(b"\0"))
            except OSError:  # gone, or not ours
                continue
            if wanted <= environment:
                fields = _stat_fields(int(entry.name))
                if fields and len(fields) > 2 and fields[0] not in _EXITED:
                    groups.add(int(fields[2]))
    return groups


def any_member_since(pgid: int, earliest: int | None) -> bool:
    """Whether the group has a running member that started no earlier than ``earliest`` (ticks since boot)."""
    for pid in group_members(pgid):
        if process_state(pid) in _EXITED:
            continue
        start = process_start_time(pid)
        if earliest is None or (start is not None and start >= earliest):
            return True
    return False
