"""``orchestrator logs``: what an attempt of a task printed, its stdout and stderr logs as they are in
``logs/`` (a person is shown them with what a terminal would act on made visible)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.commands.calling import Call, Result
from orchestrator.errors import OrchestratorError, UsageError
from orchestrator.printable import visible
from orchestrator.state.plans import plan_of
from orchestrator.state.workspace import Workspace, from_here
from orchestrator.vocabulary import TaskStatus, attempt_said, ordinal

if TYPE_CHECKING:
    from orchestrator.plan.model import Plan, Task

_STREAMS = (("in", "stdin"), ("out", "stdout"), ("err", "stderr"), ("verify.out", "verify stdout"),
            ("verify.err", "verify stderr"))  # fmt: skip
_OPTIONAL = ("in", "verify.out", "verify.err")  # shown when there: the others, empty or not


def _why_no_logs(workspace: Workspace, task: Task) -> str:
    """Why a task has no attempt to show: what its result says (skipped, and why; cancelled
    before it started...), else that it has not run yet."""
    from orchestrator.state.results import read_record

    record = read_record(workspace.result(task), task.id) if workspace.result(task).is_file() else None
    if record is None or record.status in (TaskStatus.PENDING, TaskStatus.WAITING, TaskStatus.RUNNING):
        return "it has not run yet"
    why = f" ({record.reason})" if record.reason else ""
    return f"it was {record.status} without starting{why}"


def _which_attempt(workspace: Workspace, plan: Plan, task: Task, number: int) -> str:
    """Attempt ``number`` as a person reads it: its number, the one its log files carry and every
    line of a run names it by (``--attempt 3``); a retry, its place against its run's budget of
    retries (``retry 1 of 2``: a first attempt is no retry, whatever its number); and which run of
    the task it was, after its first."""
    from orchestrator.plan.config.profiles import Profiles
    from orchestrator.state.journal import runs_of

    found = runs_of(workspace.journal_file, task.id).get(number)
    if found is None:  # (a journal from before it said, or one started afresh)
        return f"attempt {number}"
    run, in_run = found
    try:
        budget = Profiles(workspace).settings_for(plan, task).retries + 1
    except OrchestratorError:
        budget = plan.settings.retries + 1
    budget = max(budget, in_run)  # (the plan may allow fewer retries by now)
    said = attempt_said(number, in_run, budget)
    return said if run == 1 else f"{said}, in its {ordinal(run)} run"


def logs(call: Call) -> Result:
    """What an attempt of a task printed (``--attempt``, else its last): its stdout and stderr logs,
    and what it was given (``--follow`` streams them: the command line's alone, ``cli/watching``)."""
    from orchestrator.commands.words import task_in
    from orchestrator.state.journal import workers_of
    from orchestrator.state.logs import attempts as attempts_of
    from orchestrator.state.logs import numbers

    workspace = call.workspace
    plan = plan_of(workspace)
    task = task_in(plan, call.args.task)
    attempts = attempts_of(workspace, task)
    if not attempts:
        raise UsageError(f"{task.id} has no logs: {_why_no_logs(workspace, task)}")
    number = call.args.attempt if call.args.attempt is not None else max(attempts)
    if number not in attempts:
        raise UsageError(f"{task.id} has no attempt {number}; its attempts: {numbers(attempts)}")
    files = attempts[number]
    gone = _gone(workspace, task, number, files)
    worker = workers_of(workspace.journal_file, task.id).get(number)  # on a cluster
    data = {
        "ok": True,
        "task": task.id,
        "agent": task.agent,
        "attempt": number,
        "attempts": list(attempts),
        **({"worker": worker} if worker else {}),
        "logs": [
            {**_log_json(workspace, stream, files.get(stream)), "gone": gone.get(stream)}
            for stream, _ in _STREAMS
            if stream not in _OPTIONAL or stream in files
        ],
    }
    return Result(data, shown=lambda: _text(workspace, plan, task, number, files, gone, worker))


def _text(
    workspace: Workspace, plan: Plan, task: Task, number: int, files: dict[str, Path], gone: dict[str, str],
    worker: str | None,
) -> str:  # fmt: skip
    """The logs as a person reads them: each stream under its heading, what a terminal would act on shown."""
    where = f" on worker {worker}" if worker else ""
    out = [f"{task.id} [{task.agent}] {_which_attempt(workspace, plan, task, number)}{where}\n"]
    for stream, name in _STREAMS:
        path = files.get(stream)
        if stream == "in":  # what the agent was given: its brief and upstream results
            if path is not None:
                out.append(f"── {name}: {from_here(path)}\n")
            continue
        if stream in _OPTIONAL and path is None:
            continue
        text = (_read(path) or b"").decode("utf-8", errors="replace")
        if stream in gone:  # the result names it: the attempt did print, and the file was deleted since
            out.append(
                f"── {name}: its log {from_here(workspace.project_dir / gone[stream])} is gone (deleted since)\n"
            )
            continue
        if not text:  # nothing written: an empty file, or none (the first byte makes it)
            out.append(f"── {name}: empty\n")
            continue
        out.append(f"── {name}: {from_here(path) if path else ''}\n")
        text = visible(text)  # (logs/ keeps the raw bytes; a terminal is sent none it would act on)
        out.append(text if text.endswith("\n") else text + "\n")
    unmerged = _not_merged(workspace, task, number)
    if unmerged is not None:  # (what failed it is no stream's: its branch's merge, and what to do)
        out.append(f"── not merged: {visible(unmerged)}\n")
    return "".join(out)


def _not_merged(workspace: Workspace, task: Task, number: int) -> str | None:
    """Why attempt ``number``'s work was not merged (``isolation: worktree``), when the task failed so."""
    from orchestrator.state.results import read_record

    record = read_record(workspace.result(task), task.id)
    if record is None or record.attempts != number or record.status != TaskStatus.FAILED:
        return None
    return record.merge or None


def _gone(workspace: Workspace, task: Task, number: int, files: dict[str, Path]) -> dict[str, str]:
    """The streams of attempt ``number`` whose log its result names (as the project names it)
    but which are not there: deleted since, not "printed nothing"."""
    from orchestrator.state.results import read_record

    record = read_record(workspace.result(task), task.id)
    if record is None or record.attempts != number:
        return {}
    named = {name.rsplit(".", 1)[-1]: name for name in record.logs}
    return {stream: name for stream, name in named.items() if stream not in files and stream in ("out", "err")}


def _read(path: Path | None) -> bytes | None:
    """A log's bytes; None for one never written (or gone since it was listed)."""
    try:
        return path.read_bytes() if path is not None else None
    except FileNotFoundError:
        return None


def _log_json(workspace: Workspace, stream: str, path: Path | None) -> dict[str, object]:
    """One stream of an attempt for ``logs --json``. A stream it never wrote to is there, empty,
    its ``path`` null: its file was never made."""
    data = _read(path)
    return {
        "stream": stream,
        "path": workspace.relative(path) if path is not None and data is not None else None,
        "bytes": len(data or b""),
        "text": (data or b"").decode("utf-8", errors="replace"),
    }
