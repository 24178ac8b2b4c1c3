"""On a worker: what stops an attempt's processes when the worker that runs them dies.

An attempt runs in a session of its own (``remote.supervise``), so a worker killed (``kill -9``,
out of memory) leaves it running, while the runner retries it on another worker: the same
attempt twice at once. The worker therefore starts this program once, in a session of its own
too, with the read end of a pipe on its stdin whose write end only the worker holds (it is
close-on-exec: no attempt inherits it). The worker tells it, a line each::

    key KEY                   an attempt is about to start (before its process exists)
    group KEY PGID START      its process group, and when the group's leader started
    done KEY                  over: its group is stopped and reaped

When the pipe closes without a ``done`` (the worker is gone, however it went), it SIGKILLs at
once, without a grace (the attempt is lost and retried elsewhere: nothing of it may happen after
its worker died), the group of each attempt it still watches (when still that attempt's: its
leader started then, or is gone and members are left) and every process whose environment holds
``ORCHESTRATOR_ATTEMPT_KEY=KEY`` (those that left the group, and an attempt whose group was not
told yet); then it exits. A worker that closes normally has no attempt left: it exits at once.

Only the standard library: it starts with ``python -I -S`` in milliseconds and imports nothing
of the worker's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

KEY_VARIABLE = "ORCHESTRATOR_ATTEMPT_KEY"  # in an attempt's environment on a worker: its key


def started(pid: int) -> str | None:
    """When ``pid`` started (field 22 of /proc/PID/stat), or ``None`` when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19].decode() if len(fields) > 19 and fields[0] not in (b"Z", b"X") else None


def marked(keys: set[str]) -> list[int]:
    """The processes whose environment names one of ``keys``."""
    wanted = {f"{KEY_VARIABLE}={key}".encode() for key in keys}
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                with open(os.path.join(entry.path, "environ"), "rb") as environ:
                    variables = set(environ.read().split(b"\0"))
            except OSError:
                continue
            if variables & wanted:
                found.append(int(entry.name))
    return found


def kill(watched: dict[str, tuple[int, str] | None]) -> None:
    """SIGKILL what the attempts of ``watched`` still run: their groups, and their marked processes."""
    for group in watched.values():
        if group is None:
            continue
        pgid, leader_start = group
        now = started(pgid)
        if now is None or now == leader_start:  # (a pid is given to nobody while its group has members)
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)
    for _ in range(5):  # (one that forked as it was looked for: looked for again)
        pids = marked(set(watched))
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def main() -> None:
    watched: dict[str, tuple[int, str] | None] = {}
    for line in sys.stdin.buffer:
        match line.decode(errors="replace").split():
            case ["key", key]:
                watched[key] = None
            case ["group", key, pgid, leader_start]:
                watched[key] = (int(pgid), leader_start)
            case ["done", key]:
                watched.pop(key, None)
            case _:
                pass
    kill(watched)


if __name__ == "__main__":
    main()
