"""``LocalExecutor``: each attempt is a process group on this machine, supervised with anyio.

Every child starts a new session (its own process group), so the whole tree it creates can be
signalled at once. Whatever happens (a normal exit, the wall-clock limit, inactivity, an error in
a callback, cancellation by Ctrl-C), the group is stopped (SIGTERM, a grace period, SIGKILL) and
the child reaped before ``run`` returns or raises. Output goes to the attempt's log files as it
arrives; any output on either stream counts as activity.

An attempt's pipes are read in batches: once what is there has been read, the next read waits
``timing.batch`` seconds (a quarter of the inactivity limit if that is less; at once when the child
exits), while the kernel keeps what comes meanwhile (stdout's pipe is grown to hold a batch of a
chatty agent). An agent that streams a line every 50 ms then costs the runner a few wake-ups a
second, not one or two a line. A pipe that fills faster is read sooner (when it will be a
quarter full at the rate it filled), a pipe's worth at most at a time with the event loop given
its turn in between: a child that writes fast is neither slowed down nor allowed to hold up the
rest of the run.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import anyio
import anyio.lowlevel
from anyio.abc import Process

from orchestrator import timing
from orchestrator.executors import reaper
from orchestrator.executors.base import Executor, Launch, Leftover, Limits, LineCallback, ProcessRun, StartCallback
from orchestrator.executors.capabilities import Capabilities, Setup
from orchestrator.executors.groups import (
    group_running,
    leftover_groups,
    same_leader,
    started_since_bound,
    stop_group,
    stop_groups,
)
from orchestrator.plan.config.settings import format_duration
from orchestrator.state.journal import ATTEMPT_MARKS
from orchestrator.state.procs import process_started

_PIPE_SIZE = 256 * 1024  # bytes stdout's pipe is grown to hold (Linux; a per-user budget: not more)
_READ = 64 * 1024  # bytes read at once
_LONGEST_LINE = 64 * 1024 * 1024  # a line longer than this is not buffered for on_line


@contextlib.contextmanager
def children_waited_on_pidfds() -> Iterator[None]:
    """Within this, asyncio waits for each child on a pidfd, as Python 3.12 and later do by
    themselves, rather than in a thread started for each child (3.11's default, and most of what
    a short task costs the runner). Enter it from the running event loop; where pidfds are
    missing, nothing changes. The watcher it replaces is put back on leaving."""
    import asyncio
    import sys
    import warnings

    usable = sys.version_info < (3, 12) and hasattr(os, "pidfd_open")
    if usable:
        try:
            os.close(os.pidfd_open(os.getpid()))
        except OSError:  # a kernel older than 5.3, or a sandbox that refuses it
            usable = False
    if not usable:
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        previous = asyncio.get_child_watcher()
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(asyncio.get_running_loop())
        asyncio.set_child_watcher(watcher)
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_child_watcher(previous)


class LocalExecutor(Executor):
    """Processes on this machine. The handle of an attempt is its process group: ``{"pgid": N,
    "pgid_start": ticks}`` (a lower bound on the group leader's start time, so that a reused
    group id is not taken for it)."""

    name = "local"
    can = Capabilities(runs_here=True, recoverable=True)

    def __init__(self, *, whole_process: bool = False) -> None:
        """``whole_process``: this process starts no process but through this executor (the
        CLI's run), so every child it did not start was handed to it from an attempt, and
        ``close`` stops and reaps them all; otherwise only those tied to this run's attempts."""
        self.whole_process = whole_process
        self._grace = Limits().grace  # for ``close``: the last attempt's
        self._sessions: set[int] = set()  # of the attempts run: each leader's pid
        self._workspaces: set[str] = set()  # the workspaces their marks name

    @classmethod
    def made(cls, setup: Setup) -> LocalExecutor:
        return cls(whole_process=setup.whole_process)

    async def run(
        self, launch: Launch, *, on_start: StartCallback | None = None, on_line: LineCallback | None = None
    ) -> ProcessRun:
        began = anyio.current_time()
        cap = launch.limits.log_cap
        out_log, err_log = _Log(launch.stdout, cap), _Log(launch.stderr, cap)
        reaper.become_subreaper()
        marks = _marks(launch)
        self._grace = launch.limits.grace
        if marks is not None:
            self._workspaces.add(marks["ORCHESTRATOR_WORKSPACE"])
        pipes: _Pipes | None = None
        try:
            pipes = _Pipes()
            with reaper.starting():
                process = await _open(launch, pipes)
                reaper.spawned.add(process.pid)
        except BaseException as exc:  # (a cancellation too: the pipes are closed on every path)
            if pipes is not None:
                pipes.close()
            if not isinstance(exc, OSError):
                raise
            return ProcessRun(None, None, anyio.current_time() - began, start_error=_could_not_start(exc, launch))
        pgid = process.pid
        self._sessions.add(pgid)
        tied = _tied_to(pgid, marks)
        activity = _Activity(began)
        timed_out: str | None = None
        try:
            with pipes, out_log, err_log, _one_error():
                if on_start is not None:
                    # With the pgid, when its leader started: a later group given the same id is not this one.
                    on_start({"pgid": pgid, "pgid_start": started_since_bound(), "leader_start": process_started(pgid)})
                async with anyio.create_task_group() as pumps:
                    clock = timing.current()
                    batch = clock.batch
                    wait = min(batch, launch.limits.inactivity / 4) if launch.limits.inactivity else batch
                    pumps.start_soon(_pump, pipes.out, out_log, activity, on_line, wait)
                    pumps.start_soon(_pump, pipes.err, err_log, activity, None, wait)
                    timed_out = await _wait(process, launch.limits, began, activity)
                    activity.exited.set()  # what the pipes hold now is read at once
                    # The leader is gone. Children it left in its group would hold the pipes open
                    # for ever: they go too, and so do those that left the group (setsid) and
                    # were handed to the runner (reaper). One that is neither may still hold a
                    # pipe: what it writes is read for a moment, then no more.
                    if group_running(pgid):
                        await stop_group(pgid, min(launch.limits.grace, 1.0))
                    await reaper.stop_adopted(tied, min(launch.limits.grace, 1.0))
                    with anyio.move_on_after(clock.drain):  # (a grandchild that left the group)
                        await activity.closed.wait()
                    pumps.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                if process.returncode is None or group_running(pgid):
                    await stop_group(pgid, launch.limits.grace)
                await process.wait()
                await process.aclose()
                reaper.spawned.discard(pgid)
                await reaper.stop_adopted(tied, launch.limits.grace)  # (and reaps what exited)
        code = process.returncode
        assert code is not None
        return ProcessRun(
            None if code < 0 else code,
            -code if code < 0 else None,
            anyio.current_time() - began,
            timed_out=timed_out,
            stdout_bytes=out_log.count,
            stderr_bytes=err_log.count,
        )

    async def close(self) -> None:
        """Stop and reap what the attempts left that was handed to the runner after they ended
        (see ``reaper``), within the last attempt's grace period: everything handed over when
        ``whole_process``, else what is tied to one of them."""

        def tied(pid: int) -> bool:
            if self.whole_process or reaper.session_of(pid) in self._sessions:
                return True
            return any(reaper.environment_holds(pid, {"ORCHESTRATOR_WORKSPACE": w}) for w in self._workspaces)

        await reaper.stop_adopted(tied, self._grace)  # (and reaps what exited)

    async def settle(
        self, leftovers: Sequence[Leftover], *, grace: float, wait: bool, tell: Callable[[str], None] | None = None
    ) -> list[str]:
        """Stop (or wait for) the process groups of ``leftovers``: all asked at once, then one
        grace period. Besides the group its handle names, an attempt's processes are found by the
        variables that name it in their environment: those that left its group (setsid), and all
        of them when it has no handle (its runner died starting it)."""
        groups = leftover_groups(leftovers)
        leaders = {pgid: process_started(pgid) for pgid in groups}  # (as found: a reused id is not them)
        if wait:
            await _wait_for(groups, tell, leaders)
        else:
            await stop_groups(groups, grace, leaders)
        return sorted(set(groups.values()))


async def _wait_for(
    groups: Mapping[int, str], tell: Callable[[str], None] | None, leaders: Mapping[int, int | None] | None = None
) -> None:
    """Wait for ``groups`` (a task's, each) to end, telling what runs still: at once, then every
    ``timing.tell_every`` seconds while any runs. ``leaders``: when each group's leader started as found
    (a group whose number leads another process since is over: ``groups.same_leader``)."""
    clock = timing.current()
    began = last = anyio.current_time()

    def running() -> str:
        by_task: dict[str, list[str]] = {}
        for pgid, task in sorted(groups.items(), key=lambda item: (item[1], item[0])):
            if group_running(pgid) and (leaders is None or same_leader(pgid, leaders.get(pgid))):
                by_task.setdefault(task, []).append(str(pgid))
        return ", ".join(f"{task} (process group {', '.join(pgids)})" for task, pgids in by_task.items())

    still = running()
    if still and tell is not None:
        tell(f"⏳ waiting for what a dead runner's attempts still run: {still} (--wait-orphans; Ctrl-C stops waiting)")
    while still:
        await anyio.sleep(clock.orphan_poll)
        now = anyio.current_time()
        still = running()
        if still and tell is not None and now - last >= clock.tell_every:
            last = now
            tell(f"⏳ still waiting ({format_duration(now - began)}) for {still}")


class _Pipes:
    """The attempt's stdout and stderr pipes: the child gets the write ends (closed here once it
    has them), the runner reads the others (non-blocking, closed on leaving)."""

    def __init__(self) -> None:
        self.out = self.err = -1
        self.writers: list[int] = []
        try:
            self.out, out_w = os.pipe()
            self.writers.append(out_w)
            self.err, err_w = os.pipe()
            self.writers.append(err_w)
            for fd in (self.out, self.err):
                os.set_blocking(fd, False)
        except BaseException:
            self.close()
            raise
        import fcntl  # (not at the top: the package imports where there is none)

        grow = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only
        if grow is not None:
            with contextlib.suppress(OSError):  # over the user's budget: a smaller pipe, more wake-ups
                fcntl.fcntl(self.out, grow, _PIPE_SIZE)

    def given(self) -> None:
        for fd in self.writers:
            os.close(fd)
        self.writers = []

    def close(self) -> None:
        self.given()
        for fd in (self.out, self.err):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.out = self.err = -1

    def __enter__(self) -> _Pipes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _open(launch: Launch, pipes: _Pipes) -> Process:
    stdin: IO[bytes] | int = subprocess.DEVNULL
    if launch.stdin is not None:
        stdin = open(launch.stdin, "rb")  # noqa: SIM115 - closed below, once the child has it
    try:
        return await anyio.open_process(
            launch.command(),
            stdin=stdin,
            stdout=pipes.writers[0],
            stderr=pipes.writers[1],
            cwd=launch.cwd,
            env=dict(launch.env),
            start_new_session=True,
        )
    finally:
        pipes.given()
        if not isinstance(stdin, int):
            stdin.close()


def _marks(launch: Launch) -> dict[str, str] | None:
    """The variables that name the attempt in its environment, or ``None`` when it has not all of
    them (an agent call outside a run)."""
    marks = {name: launch.env[name] for name in ATTEMPT_MARKS if name in launch.env}
    return marks if len(marks) == len(ATTEMPT_MARKS) else None


def _tied_to(session: int, marks: Mapping[str, str] | None) -> reaper.Tied:
    """Whether an adopted process is the attempt's: in its session (the leader's pid; one that
    called ``setsid`` has one of its own), or with its variables in its environment."""

    def tied(pid: int) -> bool:
        return reaper.session_of(pid) == session or (marks is not None and reaper.environment_holds(pid, marks))

    return tied


def _could_not_start(exc: OSError, launch: Launch) -> str:
    program = launch.argv[0] if launch.argv else "(no command)"
    if isinstance(exc, FileNotFoundError):
        if exc.filename is not None and os.fspath(exc.filename) == os.fspath(launch.cwd):
            return f"no such directory: {launch.cwd}"
        return f"command not found: {program}" if exc.filename in (None, program) else str(exc)
    if isinstance(exc, PermissionError):
        return f"permission denied: {program}"
    return f"{program}: {exc.strerror or exc}"


class _Activity:
    """When the attempt last wrote anything, and whether both of its pipes are at their end."""

    def __init__(self, now: float) -> None:
        self.last = now
        self.open = 2
        self.closed = anyio.Event()
        self.exited = anyio.Event()  # the child exited: read what is left without waiting

    def seen(self) -> None:
        self.last = anyio.current_time()

    def stream_ended(self) -> None:
        self.open -= 1
        if self.open == 0:
            self.closed.set()


async def _wait(process: Process, limits: Limits, began: float, activity: _Activity) -> str | None:
    """Wait for the process to exit within its limits; the limit it ran into, if one."""
    deadline = began + limits.timeout if limits.timeout else math.inf
    while True:
        idle = activity.last + limits.inactivity if limits.inactivity else math.inf
        now = anyio.current_time()
        if now >= deadline or now >= idle:
            await stop_group(process.pid, limits.grace)
            await process.wait()
            return "timeout" if now >= deadline else "inactivity"
        with anyio.move_on_after(min(deadline, idle) - now):
            await process.wait()
            return None


async def _pump(fd: int, log: _Log, activity: _Activity, on_line: LineCallback | None, wait: float) -> None:
    """Copy one pipe to its log, a batch at a time (see the module's docstring); complete lines
    to ``on_line``."""
    size = _pipe_size(fd)
    pending = bytearray()
    ended = False
    last = anyio.current_time()  # when the pipe was last read
    while not ended:
        await anyio.wait_readable(fd)
        got = 0
        while got < size:  # at most a pipe's worth: then the other tasks get their turn
            try:
                chunk = os.read(fd, _READ)
            except BlockingIOError:
                break
            if not chunk:
                ended = True
                break
            got += len(chunk)
            activity.seen()
            log.write(chunk)
            if on_line is None:
                continue
            pending += chunk
            if b"\n" in chunk:
                *lines, rest = pending.split(b"\n")
                for line in lines:
                    on_line(bytes(line))
                pending = bytearray(rest)
            elif len(pending) > _LONGEST_LINE:
                pending.clear()
        log.flush()
        if ended:
            break
        now = anyio.current_time()
        # Back when it will be a quarter full at the rate it filled since the last read: a
        # streaming agent every ``wait``, a fast writer as often as it needs, never held up.
        pause = 0.0 if got >= size else min(wait, (size / 4) * max(now - last, 1e-3) / max(got, 1))
        last = now
        if pause < 0.001:
            await anyio.lowlevel.checkpoint()
        else:
            with anyio.move_on_after(pause):
                await activity.exited.wait()
    if on_line is not None and pending:
        on_line(bytes(pending))
    activity.stream_ended()


def _pipe_size(fd: int) -> int:
    """How many bytes the pipe holds (64 KiB, Linux's default, where it cannot be asked)."""
    import fcntl

    query = getattr(fcntl, "F_GETPIPE_SZ", None)
    if query is not None:
        with contextlib.suppress(OSError):
            return int(fcntl.fcntl(fd, query))
    return 64 * 1024


_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


class _Log:
    """A log file created with the first byte written to it: no file means no output. A log an
    earlier attempt of the same number left is removed first, so what is there is this attempt's.
    Past ``cap`` bytes nothing more is kept: a line says where the log was cut, and its last line
    how much was left out (``count`` is every byte the stream carried)."""

    def __init__(self, path: Path, cap: int | None = None) -> None:
        self.path = path
        self.cap = cap
        self.count = 0
        self.kept = 0
        self.cut = False
        self._file: IO[bytes] | None = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def write(self, data: bytes) -> None:
        self.count += len(data)
        if self.cut:
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

    def __enter__(self) -> _Log:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is None:
            return
        with self._file:
            if self.cut:
                left = self.count - self.kept
                self._file.write(f"{CUT_MARK}: {self.count:,} bytes in all, the last {left:,} not kept]\n".encode())


CUT_MARK = "[orchestrator: log cut"  # opens the lines a capped log ends with


class _one_error:
    """Raise the one exception a task group wraps in an ``ExceptionGroup`` as itself: an error in
    ``on_line`` reaches the caller as the error it is."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
            raise error.exceptions[0] from None
