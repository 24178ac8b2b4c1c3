"""A run started in the background for another program: the MCP server's ``run`` tool, the HTTP
API's ``POST /api/runs`` and a webhook. One at a time per workspace: refused while a run goes on,
with its runner's pid.

``start`` starts ``python -m orchestrator run DIR OPTIONS --launch ID`` in its own session (its
own process group, no terminal, no signal of the server's), as ``spawn --detach`` starts its
runner; its output goes to ``logs/launched/ID.log``. It notes the launch in
``state/launches.json`` first (``state/launches``), and the runner notes how it ended there. It
then waits, ``timing.start_wait`` seconds at most, until the runner holds the workspace's lock or ends
(a plan that does not load, a run with nothing to do): what the caller is told is what happened,
never a guess. A thread of the server reaps the runner when it ends (no zombie is left behind
while the server lives; if the server goes first, init does).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator import timing
from orchestrator.documents import read_regular
from orchestrator.errors import LockedError, OrchestratorError
from orchestrator.state import events, launches
from orchestrator.state.procs import pid_alive, process_started
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import ExitCode

LOG_TAIL = 4096  # bytes of a runner's log read back when it ended at once


class RunGoingOn(LockedError):
    """A run (or render, reset, plan) holds the workspace: no second runner is started."""

    def __init__(self, message: str, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid
        self.extra = {"pid": pid}


class AlreadyDelivered(OrchestratorError):
    """A webhook delivery taken before: it starts nothing the second time."""

    exit_code = ExitCode.USAGE
    http_status = 409
    rpc_code = -32001

    def __init__(self, message: str, launch: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.launch = dict(launch)
        self.extra = {"launch": self.launch}


class StartFailed(OrchestratorError):
    """The runner ended before it began, with a non-zero exit: its first line says why."""

    def __init__(self, message: str, exit_code: int, log: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # (the runner's own, as `run` would have exited)
        self.http_status = 400 if exit_code == ExitCode.USAGE else 409  # (bad input, else refused for what is)
        self.log = log


@dataclass(frozen=True, slots=True)
class Started:
    """A launched run: its id, runner pid and log; ``exit_code`` when it had already ended."""

    id: str
    pid: int
    log: str
    exit_code: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "launch": self.id,
            "pid": self.pid,
            "log": self.log,
            "running": self.exit_code is None,
            "exit_code": self.exit_code,
        }


_starting = threading.Lock()  # one start at a time in this process
_children: dict[int, subprocess.Popen[bytes]] = {}  # runners this process started, until they end


def going_on(workspace: Workspace) -> int | None:
    """The pid of the process that holds ``workspace`` now (a run going on, or a render, reset or
    plan), or of a runner this process started that has not taken it yet; ``None`` when free."""
    for pid, child in list(_children.items()):
        if child.poll() is None:
            return pid
        _children.pop(pid, None)
    started = events.live_run(workspace.events_file)
    if started is not None:
        return started.pid
    holder = _lock_holder(workspace)
    return holder if holder is not None and pid_alive(holder) else None


def _lock_holder(workspace: Workspace) -> int | None:
    """The pid the workspace's lock file names: written by its holder once it has the lock, and
    emptied as it lets go (a holder killed leaves its pid, which is then no live process)."""
    try:
        text = read_regular(workspace.lock_file).strip()
    except (OSError, ValueError):
        return None
    return int(text) if text.isascii() and text.isdigit() else None


def refuse_if_going(workspace: Workspace) -> None:
    pid = going_on(workspace)
    if pid is not None:
        raise RunGoingOn(
            f"a run is going on in {workspace.root.name}/ (pid {pid}) — wait for it to finish "
            "(`orchestrator status`), or cancel its tasks; no second runner was started",
            pid,
        )


def start(
    workspace: Workspace,
    options: Sequence[str],
    source: str,
    *,
    what: str | None = None,
    delivery: str | None = None,
    params: Mapping[str, str] | None = None,
    wait: float | None = None,
    untrusted: bool = True,
) -> Started:
    """Start a run of ``workspace`` with the ``run`` command line's ``options``, for ``source``
    (``mcp``, ``api``, ``github``, a hook's name); ``what`` and ``delivery`` tell which event
    fired it. ``untrusted``: the values it is given came from ``source`` (false: it gives none,
    and runs on those the workspace remembers, as a resume at the terminal does). ``RunGoingOn``
    while one runs, ``AlreadyDelivered`` for a delivery taken before, ``StartFailed`` when the
    runner ended at once with an error (its line)."""
    with _starting:
        with launches.held(workspace):
            if delivery is not None:
                before = launches.seen(workspace, delivery)
                if before is not None:
                    shown = launches.shown(before) if before else {}
                    when = f": it started the run of {shown['started']}" if shown else ""
                    raise AlreadyDelivered(
                        f"delivery {delivery} was taken before{when} — a delivery is not run twice", shown
                    )
            refuse_if_going(workspace)
            now = time.time()
            launch_id = launches.new_id(now)
            log = launches.log_dir(workspace) / f"{launch_id}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            command = [sys.executable, "-m", "orchestrator", "run", str(workspace.root), *options]
            try:
                with open(log, "ab") as out:
                    child = subprocess.Popen(
                        [*command, *(["--untrusted", source] if untrusted else []), "--launch", launch_id],
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        close_fds=True,
                    )
            except OSError as exc:  # (nothing started: the empty log it was to write goes)
                with contextlib.suppress(OSError):
                    if log.stat().st_size == 0:
                        log.unlink()
                raise StartFailed(
                    f"the runner could not be started: {exc.strerror or exc}", ExitCode.FAILED, ""
                ) from None
            _children[child.pid] = child
            threading.Thread(target=_reap, args=(child,), name=f"reap-{child.pid}", daemon=True).start()
            launches.add(
                workspace,
                {
                    "id": launch_id,
                    "source": source,
                    "what": what,
                    "delivery": delivery,
                    "params": dict(params or {}),
                    "options": list(options),
                    "started": now,
                    "pid": child.pid,
                    "pid_start": process_started(child.pid),
                    "log": workspace.relative(log),
                },
            )
        code = _until_started(workspace, child, timing.current().start_wait if wait is None else wait)
        relative = workspace.relative(log)
        if code not in (None, ExitCode.OK, ExitCode.FAILED):
            said = _first_line(log) or f"the run exited {code} before it began — see {relative}"
            raise StartFailed(said, code, relative)
        if delivery is not None:
            with launches.held(workspace):
                launches.taken(workspace, delivery)
        return Started(launch_id, child.pid, relative, code)


def _reap(child: subprocess.Popen[bytes]) -> None:
    child.wait()
    _children.pop(child.pid, None)


def _until_started(workspace: Workspace, child: subprocess.Popen[bytes], wait: float) -> int | None:
    """The runner's exit code if it ended within ``wait`` seconds; ``None`` once it holds the
    workspace's lock (or still starts when ``wait`` is over)."""
    poll = timing.current().start_poll
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        code = child.poll()
        if code is not None:
            return code
        if _lock_holder(workspace) == child.pid:
            return None
        time.sleep(poll)
    return child.poll()


def _first_line(log: os.PathLike[str]) -> str:
    """The first line a runner that ended at once printed: ``run``'s one line of what was wrong."""
    with contextlib.suppress(OSError):
        with open(log, "rb") as file:
            text = file.read(LOG_TAIL).decode("utf-8", errors="replace")
        for line in text.splitlines():
            if line.strip():
                return line.strip()
    return ""
