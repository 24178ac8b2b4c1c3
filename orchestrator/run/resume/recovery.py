"""Work a dead runner's attempts finished: recorded from their logs, not done a second time.

A runner killed (kill -9, a crash, the machine's OOM killer) leaves its attempts open in the
journal. One of them may have finished in the moment before: its agent's last line (claude's
``result`` event) copied to the attempt's log, the result not written yet. (An agent that
outlives the runner writes into a pipe nobody reads: its later output never reaches the log.)
When the log proves a finished, successful task (``Backend.recover``: claude's own verdict, its
``result`` event, decides, as the exit status that would have followed is not known) and the
task is still what that attempt was started with (its fingerprint: brief, settings and inputs),
the result is written from the log and the task counts as done; otherwise it goes on as before
(its agent session continued, or run again).

On a Dask cluster the log is the runner's own, written as the output came: the same evidence. Not
recovered: an attempt whose start was not journaled with its fingerprint (an older version's),
or that a ``reset`` forgot; one the fake executor made (made up, never evidence); one on a
cluster without a shared filesystem (what it wrote comes back only at its end); a task in a
worktree of its own (its work must still be committed and merged: ``run/worktrees/merges``); a
task named by ``run --rerun`` and what is downstream of it (asked to run again); and any outcome
but a completed one.

Also here: the executor that started a dead runner's attempts, by the name its journal gives.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from orchestrator import documents
from orchestrator.backends import get as backend_named
from orchestrator.backends.base import AgentResult
from orchestrator.documents import read_body
from orchestrator.executors import registry as executors
from orchestrator.executors.base import Executor
from orchestrator.moments import epoch_of, iso_at
from orchestrator.plan.model import Task
from orchestrator.run.recorder import Recorder
from orchestrator.run.resume.prepared import Prepared
from orchestrator.run.resume.selection import fingerprint, upstream_of
from orchestrator.run.told import completed_event
from orchestrator.state.causes import Cause, CauseKind
from orchestrator.state.events.chain import digest
from orchestrator.state.events.runs import Notice
from orchestrator.state.events.untold import Untold
from orchestrator.state.journal import OpenAttempt
from orchestrator.state.results import ResultRecord, read_record
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import TaskStatus


@dataclass(frozen=True, slots=True)
class Recovered:
    """A task an attempt in a dead runner's journal finished, and what its log says it did."""

    task: Task
    record: ResultRecord
    text: str


def finished_in_logs(ws: Workspace, prepared: Prepared, left: Iterable[OpenAttempt]) -> list[Recovered]:
    """Each attempt in ``left`` (settled: no process of it runs) that finished its task, found
    before the run says what it runs (``run_started``'s ``to_run``): each such task is done
    before the run begins (``Prepared.done_before``), recorded once the run records (``keep``).
    A race's attempts (a hedge beside its straggler) are each looked at: any one that finished."""
    plan, selection = prepared.plan, prepared.selection
    open_by_task: dict[str, list[OpenAttempt]] = {}
    for attempt in left:
        if executors.can(attempt.executor).recoverable:
            open_by_task.setdefault(attempt.task, []).append(attempt)
    running = set(selection.run) - prepared.afresh  # (`run --rerun`: asked to run again, it does)
    found: list[Recovered] = []
    if not open_by_task.keys() & running:  # (most runs: no attempt left open; the plan's order not worked out)
        return found
    for task_id in plan.topological_order():  # an upstream task first: its result is in a dependent's fingerprint
        if task_id not in running:
            continue
        for attempt in open_by_task.get(task_id, []):
            recovered = _finished(ws, prepared, plan.tasks[task_id], attempt)
            if recovered is not None:
                prepared.records[task_id] = recovered.record
                prepared.done_before(task_id)
                found.append(recovered)
                break
    return found


def _finished(ws: Workspace, prepared: Prepared, task: Task, attempt: OpenAttempt) -> Recovered | None:
    """What ``attempt`` did, when its log proves it finished ``task`` as the task is now."""
    settings, selection = prepared.settings[task.id], prepared.selection
    if attempt.fingerprint is None or settings.isolation != "none":
        return None
    if not all(dep in selection.done for dep in task.dependencies):
        return None
    if executors.can(attempt.executor).cluster and not settings.shared_filesystem:
        return None  # (what it wrote on its worker came back only at its end: its runner saw none of it)
    brief = read_body(ws.brief(task))
    if brief is None:
        return None
    upstream = upstream_of(task.upstream_ids, {**prepared.archived, **prepared.records})
    if fingerprint(brief, prepared.signatures[task.id], upstream) != attempt.fingerprint:
        return None  # changed since: what the attempt did answers an older task
    log = ws.log(task, attempt.attempt, "out")
    result = backend_named(settings.backend).recover(settings, log, ws.log(task, attempt.attempt, "err"))
    if result is None:
        return None
    return Recovered(task, _record(ws, task, attempt, settings.backend, result), result.text)


def keep(found: Iterable[Recovered], recorder: Recorder) -> list[str]:
    """Record each of ``found`` as the runner that started it would have; the tasks so recorded.
    (A runner killed before this finds them again: nothing was written of them.)"""
    kept: list[str] = []
    for recovered in found:
        recorder.recovered(recovered.task, recovered.record, recovered.text)
        kept.append(recovered.task.id)
    return kept


def told_late(ws: Workspace, found: Iterable[Untold], recorder: Recorder) -> list[str]:
    """Each completed result of ``found`` (written by a runner that died before it told of it,
    ``state/events/untold``) told now, as that runner would have: its ``task_completed``, of that run, with
    the cause that says it is late, and a notice. Only while the file is still the bytes its runner
    journaled (what this run wrote since is its own to tell). The tasks so told."""
    told: list[str] = []
    for late in found:
        path = ws.result_at(late.result)
        record = read_record(path, late.task) if path is not None else None
        if path is None or record is None or record.status != TaskStatus.COMPLETED or _digest(path) != late.digest:
            continue
        event = completed_event((record.task, record.agent, record.name), record, ws.result_named(late.result),
                                None, late.digest)  # fmt: skip
        recorder.emit(replace(event, run=late.run, cause=Cause(CauseKind.LATE, pid=late.pid)))
        said = f"{record.task}'s result, written by a runner that died before it told of it, recorded late"
        recorder.emit(Notice(message=said))
        told.append(record.task)
    return told


def _digest(path: Path) -> str | None:
    try:
        return digest(documents.read_regular(path))
    except OSError:
        return None


def _record(ws: Workspace, task: Task, attempt: OpenAttempt, backend: str, result: AgentResult) -> ResultRecord:
    """The result record ``attempt`` would have had, made from its log and its journal lines."""
    number = attempt.attempt
    streams = [stream for stream in ("out", "err") if _nonempty(ws.log(task, number, stream))]
    finished = ws.log(task, number, "out").stat().st_mtime  # its last line, the result, was written then
    began = epoch_of(attempt.started)
    worker = (attempt.handle or {}).get("worker")  # on a cluster: the worker its start line named
    return ResultRecord(
        task=task.id,
        agent=task.agent,
        name=task.title,
        status=TaskStatus.COMPLETED,
        attempts=number,
        run_attempts=attempt.in_run,
        reason=f"recovered from the log of attempt {number}: it finished after the runner that started it stopped",
        exit_code=result.exit_code,
        started=attempt.started,
        finished=iso_at(finished),
        duration=round(finished - began, 3) if began is not None else None,
        backend=backend,
        fingerprint=attempt.fingerprint,
        output_hash=documents.sha256(result.text)[:16],
        session_id=result.session_id,
        cost_usd=result.cost_usd,  # claude's total for the session: what no record has counted yet
        tokens=result.tokens,
        turns=result.turns,
        permission_denials=len(result.permission_denials) or None,
        logs=tuple(ws.log_name(task, number, stream) for stream in streams),
        worker=worker if isinstance(worker, str) else None,
    )


def _nonempty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def settler(name: str, current: Executor, workspace: Workspace) -> Executor:
    """The executor that settles a dead runner's attempts the journal says ``name`` started (this
    run's ``current`` when it is that one); an unknown one is an error, not a reason to forget
    them (the journal would be started afresh)."""
    from orchestrator.errors import WorkspaceError

    try:
        return executors.settler(name, current)
    except KeyError:
        raise WorkspaceError(
            f"{workspace.relative(workspace.journal_file)}: attempts started by the '{name}' executor are still open "
            f"— run with that executor to settle them"
        ) from None
