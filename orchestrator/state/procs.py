"""Processes by pid, from Linux's /proc: whether one is alive, and when it started (with its pid,
what tells it from a later process given the same pid). Where there is no /proc, a pid is taken
at its word."""

from __future__ import annotations

import os


def pid_alive(pid: int, started: int | None = None) -> bool:
    """Whether process ``pid`` is there (a zombie, dead and not yet reaped, counts as gone).
    ``started``: when the process meant started (``process_started``); a process of that pid
    that started at another time is another one (the pid was reused): gone too."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = stat_fields(pid)
    if fields is None:
        return True  # no /proc: os.kill's answer is all there is
    if fields[0] == "Z":
        return False
    return started is None or _started(fields) in (None, started)


def ticks(value: object) -> int | None:
    """A start time as a file or an event holds it (``None`` when missing or not a number)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def process_started(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (Linux /proc), or ``None``: with
    its pid, what tells the process from a later one given the same pid."""
    fields = stat_fields(pid)
    return _started(fields) if fields is not None else None


def started_at(pid: int) -> float | None:
    """When process ``pid`` started, in seconds since the epoch, to within a second (the boot's
    time is kept in whole seconds), or ``None`` where /proc does not say."""
    started = process_started(pid)
    try:
        with open("/proc/stat", "rb") as file:
            boot = next((int(line.split()[1]) for line in file if line.startswith(b"btime ")), None)
    except (OSError, ValueError, IndexError):
        return None
    if started is None or boot is None:
        return None
    return boot + started / os.sysconf("SC_CLK_TCK")


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or ``None``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            return file.read().rsplit(b")", 1)[-1].decode("ascii", "replace").split()
    except OSError:
        return None


def _started(fields: list[str]) -> int | None:
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None
