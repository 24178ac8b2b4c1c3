"""What an attempt's processes leave behind: the runner as a child subreaper (Linux).

A process that leaves its attempt's process group (``setsid``, a double fork, job control) is not
stopped with the group. On Linux the runner makes itself a *child subreaper*
(``prctl(PR_SET_CHILD_SUBREAPER)``): a process whose parent dies is then handed to the runner, not
to init, however far down the tree it was started. Such an *adopted* process is told from the
ones this process started itself (each attempt's leader is kept in ``spawned``), tied to its
attempt (``Tied``: by its session, the attempt's own unless it called ``setsid``, or by the
variables that name the attempt in its environment), stopped when its attempt ends, and reaped.
Elsewhere (no prctl, no /proc) nothing is adopted, and only the process group is stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import anyio

from orchestrator import timing
from orchestrator.executors.groups import process_state

_PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
_ROUNDS = 20  # stopping one adopted process may hand the runner its children: look again, this often
_EXITED: frozenset[str | None] = frozenset({None, "Z", "X"})

# The attempts' leaders this process started and has not reaped yet: asyncio reaps them, each by
# its pid, and none is ever taken for adopted. ``spawning``: starts under way, pids not known yet.
spawned: set[int] = set()
spawning = [0]
_subreaper: list[bool] = []  # [whether it worked] once tried


def become_subreaper() -> bool:
    """Make this process a child subreaper (once; Linux only); whether it is one."""
    if not _subreaper:
        done = False
        if sys.platform.startswith("linux") and os.path.isdir("/proc/self"):
            with contextlib.suppress(OSError, AttributeError):
                import ctypes

                prctl = ctypes.CDLL(None, use_errno=True).prctl
                prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
                prctl.restype = ctypes.c_int
                done = prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        _subreaper.append(done)
    return _subreaper[0]


@contextlib.contextmanager
def starting() -> Iterator[None]:
    """Around the start of a process: while one is under way, no zombie is taken for adopted
    (its pid is not in ``spawned`` yet, and asyncio must be the one to reap it)."""
    spawning[0] += 1
    try:
        yield
    finally:
        spawning[0] -= 1


def children() -> list[int]:
    """The pids of this process's children (Linux /proc; empty elsewhere). Read with ``os.read``:
    every attempt's end looks here, and a text file object costs three times the read."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.scandir("/proc/self/task"):
            with contextlib.suppress(OSError):
                fd = os.open(f"{task.path}/children", os.O_RDONLY | os.O_CLOEXEC)
                try:
                    found += [int(pid) for pid in os.read(fd, 1 << 20).split()]
                finally:
                    os.close(fd)
    return found


def session_of(pid: int) -> int | None:
    """The session ``pid`` is in (a zombie's too), or ``None`` when there is no such process."""
    try:
        return os.getsid(pid)
    except OSError:
        return None


def environment_holds(pid: int, marks: Mapping[str, str]) -> bool:
    """Whether ``pid``'s environment holds every one of ``marks`` with that value (Linux /proc)."""
    try:
        environment = set(Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
    except OSError:  # gone
        return False
    return {f"{key}={value}".encode() for key, value in marks.items()} <= environment


Tied = Callable[[int], bool]  # whether an adopted process belongs to what is being stopped


def adopted(tied: Tied, pids: list[int] | None = None) -> list[int]:
    """Running children this process did not start (handed to it as a subreaper) that ``tied``
    says belong; ``pids``: the children, if just listed."""
    pids = children() if pids is None else pids
    return [pid for pid in pids if pid not in spawned and process_state(pid) not in _EXITED and tied(pid)]


def reap(tied: Tied, pids: list[int] | None = None) -> int:
    """Reap the adopted children that have exited and that ``tied`` says belong (never one asyncio
    waits for, nor one another part of this process started); how many. ``pids``: the children,
    if just listed."""
    if spawning[0]:
        return 0  # a start under way: its child is not in ``spawned`` yet
    reaped = 0
    for pid in children() if pids is None else pids:
        if pid in spawned or process_state(pid) not in ("Z", "X") or not tied(pid):
            continue
        reaped += _reaped(pid)
    return reaped


def _reaped(pid: int) -> int:
    with contextlib.suppress(ChildProcessError, OSError):
        return 1 if os.waitpid(pid, os.WNOHANG)[0] == pid else 0
    return 0


def _signal(pid: int, sig: int) -> None:
    """``sig`` to ``pid``, and to its whole group when it leads one (``setsid`` made it do so)."""
    with contextlib.suppress(OSError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
            return
    with contextlib.suppress(OSError):
        os.kill(pid, sig)


async def stop_adopted(tied: Tied, grace: float) -> list[int]:
    """Stop the adopted processes ``tied`` says belong: SIGTERM to all at once, up to ``grace``
    seconds, SIGKILL to what is left, and reap them; then again for what stopping them handed
    over. Those that had exited by themselves are reaped too (``reap``), from the same last look
    at the children: one look when there is nothing to stop, as at the end of most attempts.
    Returns the pids stopped."""
    if not _subreaper or not _subreaper[0]:
        return []
    stopped: list[int] = []
    for _ in range(_ROUNDS):
        pids = children()
        found = adopted(tied, pids)
        if not found:
            reap(tied, pids)
            break
        stopped += found
        for pid in found:
            _signal(pid, signal.SIGTERM)
            _signal(pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        left = found
        deadline = anyio.current_time() + grace
        while left and anyio.current_time() < deadline:
            await anyio.sleep(timing.current().stop_poll)
            left = [pid for pid in left if process_state(pid) not in _EXITED]
        for pid in left:
            _signal(pid, signal.SIGKILL)
        with anyio.move_on_after(1.0):  # gone, so that what it leaves is handed over for the next look
            while any(process_state(pid) not in _EXITED for pid in left):
                await anyio.sleep(timing.current().stop_poll)
        for pid in found:
            _reaped(pid)
    else:  # still handed more after every round: what has exited is reaped all the same
        reap(tied)
    return stopped
