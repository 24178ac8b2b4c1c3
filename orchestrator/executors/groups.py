"""Process groups on this machine: signal them, tell whether they still run, stop them, find them.

Every attempt's process starts a new session, so it and everything it starts (unless they leave
with ``setsid`` of their own) share one process group, signalled as one. Linux's ``/proc`` tells
members, states and start times; elsewhere the answers are coarser (a group counts as running
while ``killpg(pgid, 0)`` succeeds).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from orchestrator import timing
from orchestrator.state.procs import process_started, stat_fields, ticks

if TYPE_CHECKING:
    from orchestrator.executors.base import Leftover

_HAVE_PROC = os.path.isdir("/proc/self")
_EXITED: frozenset[str | None] = frozenset({None, "Z", "X"})  # no such process, zombie, dead


def signal_group(pgid: int, sig: int) -> bool:
    """Signal a process group; ``False`` when it is empty (or not ours)."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def group_running(pgid: int) -> bool:
    """Whether a member of the group still runs.

    A member that has exited but is not yet reaped (a zombie) still answers ``killpg(pgid, 0)``;
    once its parent is gone only init can reap it, which may take seconds (or never happen in a
    container whose PID 1 does not reap), so zombies do not count.
    """
    if not signal_group(pgid, 0):
        return False
    if not _HAVE_PROC:
        return True
    return any(process_state(pid) not in _EXITED for pid in group_members(pgid))


async def stop_groups(pgids: Iterable[int], grace: float, leaders: Mapping[int, int | None] | None = None) -> None:
    """SIGTERM every group at once, wait up to ``grace`` seconds for them all to empty, then
    SIGKILL what is left: however many groups, one grace period. ``leaders``: when each group's
    leader started as the caller found it (``None``: it was gone), for groups the runner did not
    start itself: one whose id leads another process by the end of the grace (the group emptied,
    its number given to somebody else) is not signalled again."""
    asked = [pgid for pgid in set(pgids) if signal_group(pgid, signal.SIGTERM)]
    for pgid in asked:
        signal_group(pgid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
    deadline = anyio.current_time() + grace
    try:
        while asked and anyio.current_time() < deadline:
            await anyio.sleep(timing.current().stop_poll)
            asked = [pgid for pgid in asked if group_running(pgid)]
    finally:  # (cancelled mid-grace, by a Ctrl-C: what was asked to stop is stopped now, not left)
        for pgid in asked:
            if leaders is None or same_leader(pgid, leaders.get(pgid)):
                signal_group(pgid, signal.SIGKILL)


def same_leader(pgid: int, then: int | None) -> bool:
    """Whether group ``pgid`` is still the one whose leader started at ``then`` (``None``: its
    leader was gone): its leader is, or is still gone. The kernel gives the group's number to
    no new process while a member is left, so a leader with another start leads another group."""
    now = process_started(pgid)
    return now is None or now == then


async def stop_group(pgid: int, grace: float) -> None:
    await stop_groups([pgid], grace)


def process_state(pid: int) -> str | None:
    """The state letter of ``pid`` (R, S, Z, ...) from /proc, or ``None`` when it is gone (or no /proc)."""
    fields = stat_fields(pid)
    return fields[0] if fields else None


def started_since_bound() -> int | None:
    """A lower bound, in ``process_started``'s units, on the start time of a process started a
    moment ago: the boot-time clock less one second of slack."""
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
            fields = stat_fields(int(entry.name))
            if fields is not None and len(fields) > 2 and fields[2] == str(pgid):
                members.append(int(entry.name))
    return members


def any_member_since(pgid: int, earliest: int | None) -> bool:
    """Whether the group has a running member that started no earlier than ``earliest`` (ticks
    since boot): a group id reused by somebody else's processes does not count."""
    for pid in group_members(pgid):
        if process_state(pid) in _EXITED:
            continue
        start = process_started(pid)
        if earliest is None or (start is not None and start >= earliest):
            return True
    return False


def still_the_attempts(pgid: int, leader_start: int | None, earliest: int | None) -> bool:
    """Whether process group ``pgid`` still runs and is still the attempt's that was given it, not
    somebody else's group that has its number now (pids are reused). ``leader_start``: when the
    attempt's first process (whose pid is the group's id) started, as ``process_started`` tells;
    ``earliest``: a bound below that (``started_since_bound``), what journals before it recorded.

    The kernel gives a pid to nobody while a group of that id has members; so a process with the
    group's pid that started at another time leads another group: not ours, never signalled. With
    the leader gone, the members left are the attempt's. Without /proc, the group's id is all
    there is to go by."""
    if not group_running(pgid):
        return False
    if not _HAVE_PROC:
        return True
    if leader_start is not None:
        start = process_started(pgid)
        return start is None or start == leader_start
    return any_member_since(pgid, earliest)


def groups_with_environment(marks: Sequence[Mapping[str, str]]) -> list[set[int]]:
    """For each of ``marks``, the process groups of running processes whose environment holds
    every one of its variables with that value (Linux /proc, processes of our own user; empty
    elsewhere): one look at every process, however many are asked for."""
    wanted = [{f"{key}={value}".encode() for key, value in each.items()} for each in marks]
    groups: list[set[int]] = [set() for _ in marks]
    if not any(wanted):
        return groups
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                environment = set(Path(entry.path, "environ").read_bytes().split(b"\0"))
            except OSError:  # gone, or not ours
                continue
            matches = [index for index, each in enumerate(wanted) if each and each <= environment]
            if not matches:
                continue
            fields = stat_fields(int(entry.name))
            if fields and len(fields) > 2 and fields[0] not in _EXITED:
                for index in matches:
                    groups[index].add(int(fields[2]))
    return groups


def leftover_groups(leftovers: Sequence[Leftover]) -> dict[int, str]:
    """The process groups still running of attempts a dead runner left (``Leftover``), each with
    its task: the group its handle names, while still the attempt's, and those of the processes
    whose environment names the attempt (those that left its group, and all of them when it has
    no handle: its runner died starting it)."""
    groups: dict[int, str] = {}
    for leftover in leftovers:
        handle = leftover.handle
        if handle is not None and isinstance(handle.get("pgid"), int) and handle["pgid"] > 0:
            pgid = int(handle["pgid"])
            if still_the_attempts(pgid, ticks(handle.get("leader_start")), ticks(handle.get("pgid_start"))):
                groups[pgid] = leftover.task
    for leftover, found in zip(leftovers, groups_with_environment([o.marks for o in leftovers]), strict=True):
        for pgid in found:
            groups.setdefault(pgid, leftover.task)
    return groups
