"""Results a runner wrote and did not live to tell of: found by the next run, which tells of them late.

A runner writes a task's result file, then the event that tells of it (its ``result_digest``, what
``verify`` holds the file to) with its loop's next write to the event log: a kill -9 between the
two leaves a result no event records, which ``verify`` could then only name as one it has no
record of. So before it writes a result, the runner journals it (``state/attempts.jsonl``, one
line written at once, as every journal line)::

    {"event": "result", "task": "T-01", "attempt": 1, "result": "agent-01-result.md", "digest": "9c2e...", "at": "..."}

and the next run looks at what its dead predecessor journaled (``untold``): each result it wrote
that no event since records (from where the event log ended as that runner began, its ``run``
line's ``events_at``), and whose file is still those bytes. Such a one is told late
(``run/resume/recovery.told_late``). A file whose bytes differ (a person edited it since, or it
was written again by a command) is not what that runner wrote: it is never told, and ``verify``
goes on naming it. What this cannot tell: a result edited and its journal line edited to match.

A run that finished (its journal's last line ``finished``, its ``run_finished`` the log's last
word) told of every result before it ended: nothing is read beyond that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from orchestrator.documents import read_regular
from orchestrator.moments import now_iso
from orchestrator.state.events.chain import digest
from orchestrator.state.events.log import Cursor, last_finished, read_new
from orchestrator.state.journal import last_run
from orchestrator.state.workspace import Workspace, as_kept_now, named_in_results

_RESULT = b'{"event": "result", '
_FINISHED = b'{"event": "finished"'


def line(task: str, attempt: int, result: str, written: str) -> dict[str, Any]:
    """The journal's line for a result about to be written: its task and attempt, its file's name
    in results/, and the digest of the bytes it will hold."""
    return {"event": "result", "task": task, "attempt": attempt, "result": result, "digest": written, "at": now_iso()}


@dataclass(frozen=True, slots=True)
class Untold:
    """A result a dead runner wrote and told no event of, still the bytes it wrote."""

    task: str
    attempt: int
    result: str  # its file's name in results/
    digest: str
    run: str | None  # the run that wrote it, as its events name it (``None``: a journal of a version before)
    pid: int | None  # its runner


def untold(workspace: Workspace) -> list[Untold]:
    """Each result the last runner journaled that no event records and whose file is still the
    bytes it journaled (``None`` of them once that run finished: it told of all)."""
    try:
        data = read_regular(workspace.journal_file)
    except OSError:
        return []
    lines = data[last_run(data) :].splitlines()
    if not lines or not any(raw.startswith(_RESULT) for raw in lines):
        return []
    began = _parsed(lines[0]) if lines[0].startswith(b'{"event": "run", ') else {}
    run = began.get("run") if isinstance(began.get("run"), str) else None
    if run is not None and lines[-1].startswith(_FINISHED):
        finished = last_finished(workspace.events_file)
        if finished is not None and finished.run == run:
            return []
    written: dict[str, tuple[str, int, str]] = {}  # a result's name -> (task, attempt, digest): the last
    for raw in lines:
        entry = _parsed(raw) if raw.startswith(_RESULT) else {}
        name, task, number, said = (entry.get(k) for k in ("result", "task", "attempt", "digest"))
        if isinstance(name, str) and isinstance(task, str) and isinstance(number, int) and isinstance(said, str):
            written[as_kept_now(name)] = (task, number, said)
    at = began.get("events_at")
    told = _recorded(workspace, at if isinstance(at, int) else 0)
    pid = began.get("runner_pid")
    found: list[Untold] = []
    for name, (task, number, said) in written.items():
        path = workspace.result_at(name)
        if (name, said) in told or path is None:
            continue
        try:
            now = read_regular(path)
        except OSError:
            continue
        if digest(now) == said:
            found.append(Untold(task, number, name, said, run, pid if isinstance(pid, int) else None))
    return found


def _recorded(workspace: Workspace, offset: int) -> set[tuple[str, str]]:
    """Each (result's name, digest) an event from byte ``offset`` of the log records: a task's end,
    a word taken, a restore's results."""
    from orchestrator.state.events.runs import CheckpointRestored

    told: set[tuple[str, str]] = set()
    cursor = Cursor(offset)
    wanted = (b'"result_digest"', b'"checkpoint_restored"')
    for event in read_new(workspace.events_file, cursor, only=wanted):
        if isinstance(event, CheckpointRestored):
            told.update((event.results or {}).items())
            continue
        result, said = getattr(event, "result", None), getattr(event, "result_digest", None)
        if isinstance(result, str) and isinstance(said, str):
            told.add((named_in_results(result), said))
    return told


def _parsed(raw: bytes) -> dict[str, Any]:
    try:
        entry = json.loads(raw)
    except ValueError:
        return {}
    return entry if isinstance(entry, dict) else {}
