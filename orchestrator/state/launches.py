"""Runs started from outside, ``state/launches.json``: what started each (a webhook's delivery,
the HTTP API, an MCP tool), when, its runner's pid and log, and how it ended; and the webhook
deliveries already taken, ``state/deliveries.json``, so that one delivered twice is not run twice.

::

    {"launches": [{"id": "20261123T100000.123-4242", "source": "github", "what": "pull_request opened",
      "delivery": "72d3162e-...", "params": {"pr": "7"}, "started": 1764036000.1, "pid": 4243,
      "pid_start": 8123456, "log": "logs/launched/20261123T100000.123-4242.log",
      "finished": 1764036060.5, "exit_code": 0}]}

The server that starts a run writes its entry (``started``); the runner itself, started with
``run --launch ID``, writes ``finished`` and ``exit_code`` as it ends, as ``schedule fire`` notes
a scheduled run's. Both read, change and replace the file under an ``flock`` of
``state/launches.lock``, so the two never lose each other's word; each file is replaced
atomically (``state/store``). Only the last ``KEEP`` launches and ``DELIVERIES`` delivery ids
are kept. ``check`` reports the last launched run that exited neither 0 nor 3 (``launch_failed``),
``status`` and the dashboard tell the last one in a line.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orchestrator.documents import read_regular
from orchestrator.plan.table.times import iso
from orchestrator.state import store
from orchestrator.state.procs import pid_alive, ticks
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import ExitCode

LAUNCHES_NAME = "launches.json"
DELIVERIES_NAME = "deliveries.json"
LOCK_NAME = "launches.lock"
LOG_DIR = "launched"  # under logs/: what each launched run printed
KEEP = 50  # launches kept in the record
DELIVERIES = 1000  # delivery ids kept: GitHub redelivers by hand, days later at most

Launch = dict[str, Any]


def path_of(workspace: Workspace) -> Path:
    return workspace.state_dir / LAUNCHES_NAME


def log_dir(workspace: Workspace) -> Path:
    return workspace.logs_dir / LOG_DIR


@contextlib.contextmanager
def held(workspace: Workspace) -> Iterator[None]:
    """The record's lock (an ``flock``, released when its holder dies): one reader-writer at a time."""
    from orchestrator.state.lock import turn

    with turn(workspace.state_dir / LOCK_NAME):
        yield


def _read(path: Path, key: str) -> list[Any]:
    try:
        data = json.loads(read_regular(path))
    except (OSError, ValueError):
        return []
    found = data.get(key) if isinstance(data, dict) else None
    return found if isinstance(found, list) else []


def read(workspace: Workspace) -> list[Launch]:
    """Every launch kept, oldest first (none when the file is missing or unreadable)."""
    return [entry for entry in _read(path_of(workspace), "launches") if isinstance(entry, dict)]


def _write(workspace: Workspace, launches: list[Launch]) -> None:
    store.write_text(path_of(workspace), json.dumps({"launches": launches[-KEEP:]}, indent=2) + "\n")


def replace(workspace: Workspace, found: list[Launch]) -> None:
    """Write ``found`` (``read``'s, changed) back. The caller holds ``held``."""
    _write(workspace, found)


def new_id(now: float) -> str:
    """A launch's id, and its log's name: when, to the millisecond, and this process."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(now))
    return f"{stamp}.{int(now * 1000) % 1000:03d}-{os.getpid()}"


def add(workspace: Workspace, entry: Launch) -> None:
    """Note a launch (``id``, ``source``, ``started``, ``pid``, ``log``...). The caller holds ``held``."""
    _write(workspace, [*read(workspace), entry])


def finished(workspace: Workspace, launch_id: str, exit_code: int) -> None:
    """Note how the launched run ``launch_id`` ended (written by the runner itself as it ends)."""
    with held(workspace):
        launches = read(workspace)
        for entry in launches:
            if entry.get("id") == launch_id:
                entry.update(finished=time.time(), exit_code=int(exit_code))
                _write(workspace, launches)
                return


def origin_of(workspace: Workspace, launch_id: str | None) -> tuple[str | None, dict[str, Any] | None]:
    """Where a run came from (``origin``: the repository and pull request or issue of the delivery
    that started it), and the launch it is the run of: ``launch_id``'s; for a run started by a
    person (no launch), the last launch whose runner died without a word (a kill -9) or whose
    delivery failed (exit 5), whose work and delivery this run finishes (``finished`` is then noted
    for it by this run). A run a GitHub comment's word started goes on with the run of that pull
    request: the origin of the last launch that had one."""
    found = read(workspace)
    if launch_id is not None:
        entry = next((e for e in found if e.get("id") == launch_id), None)
    else:
        last = found[-1] if found else None
        dead = last is not None and last.get("finished") is None and not shown(last)["running"]
        entry = last if dead or (last is not None and last.get("exit_code") == ExitCode.UNDELIVERED) else None
    if entry is None:
        return launch_id, None
    origin = entry.get("origin")
    if not isinstance(origin, dict) and entry.get("source") == "github":  # (a comment's word went on with the run
        before = [e for e in found[: found.index(entry)] if isinstance(e.get("origin"), dict)]  # of its PR)
        origin = before[-1]["origin"] if before else None
    return str(entry.get("id")), origin if isinstance(origin, dict) else None


def seen(workspace: Workspace, delivery: str) -> Launch | None:
    """The launch a webhook delivery started, if it was taken before (its id kept); ``{}`` for a
    delivery kept whose launch is no longer in the record. The caller holds ``held``."""
    if delivery not in _read(workspace.state_dir / DELIVERIES_NAME, "deliveries"):
        return None
    return next((entry for entry in reversed(read(workspace)) if entry.get("delivery") == delivery), {})


def taken(workspace: Workspace, delivery: str) -> None:
    """Keep ``delivery``'s id: a second delivery of it starts nothing. The caller holds ``held``."""
    path = workspace.state_dir / DELIVERIES_NAME
    ids = [found for found in _read(path, "deliveries") if isinstance(found, str) and found != delivery]
    store.write_text(path, json.dumps({"deliveries": [*ids, delivery][-DELIVERIES:]}, indent=2) + "\n")


def shown(entry: Launch) -> dict[str, Any]:
    """A launch as ``status --json``, ``check --json`` and the dashboard show it."""
    running = entry.get("finished") is None and pid_alive(int(entry.get("pid") or 0), ticks(entry.get("pid_start")))
    return {
        "id": entry.get("id"),
        "source": entry.get("source"),
        "what": entry.get("what"),
        "delivery": entry.get("delivery"),
        "params": entry.get("params") or {},
        "started": iso(entry.get("started")),
        "pid": entry.get("pid"),
        "running": running,
        "finished": iso(entry.get("finished")),
        "exit_code": entry.get("exit_code"),
        "log": entry.get("log"),
    }


def last(workspace: Workspace) -> dict[str, Any] | None:
    """The last launch, as ``shown``; ``None`` when no run was ever started from outside."""
    launches = read(workspace)
    return shown(launches[-1]) if launches else None


def note(launch: dict[str, Any]) -> str:
    """The line ``status`` gives the last launch (``shown``'s dict)."""
    what = f"{launch['source']}" + (f" {launch['what']}" if launch.get("what") else "")
    if launch.get("delivery"):
        what += f" (delivery {launch['delivery']})"
    return f"🪝 last run started by {what} at {launch['started']}: {ended(launch)}"


def ended(launch: dict[str, Any]) -> str:
    """How a launch (``shown``'s dict) stands: running, its exit code, or, for a runner that died
    without writing one (killed), that it is gone: never an exit code it did not give."""
    if launch["running"]:
        return f"running (pid {launch['pid']})"
    if launch["exit_code"] is None:
        return f"its runner is gone without a word (killed?) — see {launch['log']}"
    return f"exit {launch['exit_code']}"


def problems(workspace: Workspace) -> list[tuple[str, str]]:
    """What ``check`` reports of launched runs: ``launch_failed``, the last one exited neither 0
    nor 3 (another run held the workspace), as ``schedule_failed`` says of a scheduled run."""
    launch = last(workspace)
    if launch is None:
        return []
    code = launch["exit_code"]
    if isinstance(code, int) and code not in (0, 3):
        return [
            (
                "launch_failed",
                f"the last run started by {launch['source']} at {launch['started']} exited {code} — "
                f"its output is in {launch['log']}",
            )
        ]
    return []


def plan_held(workspace: Workspace) -> str | None:
    """What ``status`` says when the plan changed while the last run, one from outside, went on:
    the change held for a person, not taken into that run (its ``plan_held``); ``None`` otherwise."""
    from orchestrator.state import events

    start = events.last_run_start(workspace.events_file)
    if start is None:
        return None
    lines = events.read_new(workspace.events_file, events.Cursor(start), only=(b'"plan_held"',))
    if not lines:  # (the records' module is loaded only for a line that holds one: status's import stays light)
        return None
    from orchestrator.state.events.runs import PlanHeld

    found = [e for e in lines if isinstance(e, PlanHeld)]
    if not found:
        return None
    name = workspace.relative(workspace.plan_file)
    return (
        f"✋ {name} changed while the last run, from outside ({found[-1].source}), went on: "
        "held for a person and not taken into that run — read the change, then `orchestrator run` takes it"
    )
