"""The event that tells each move of a task, its fields from the attempt, the result and what it
spent (``Recorder`` emits them; ``run/resume/recovery`` too, for a result a dead runner wrote and
did not tell of)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TypedDict

from orchestrator.backends.base import AgentResult
from orchestrator.plan.model import Task
from orchestrator.run.attempts import Attempt
from orchestrator.run.forecasts.estimates import kind_of
from orchestrator.state.causes import Cause
from orchestrator.state.events.tasks import (
    TaskBypassed,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskInterrupted,
    TaskRejected,
    TaskSkipped,
    TaskStarted,
)
from orchestrator.state.results import ResultRecord
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import TaskStatus


def started_event(workspace: Workspace, attempt: Attempt) -> TaskStarted:
    """``task_started``: ``in_run`` and ``of``, the attempt's place in this run of its task, of how
    many it may make (1 + its retries); ``backend`` (a fallback's, when it failed over) and
    ``kind``, what the estimates of its kind, and ``history --stats``, count the attempt under;
    ``brief``, what its estimates learn by; ``estimate`` and ``expected_cost``, what the run
    expected of it (``report`` compares); ``model``, what its cost is forecast by beside its kind."""
    task, backend = attempt.task, attempt.settings.backend
    return TaskStarted(
        task=task.id,
        agent=task.agent,
        name=task.title,
        attempt=attempt.number,
        in_run=attempt.in_run,
        of=max(attempt.settings.retries + 1, attempt.in_run),
        backend=backend,
        kind=kind_of(task, backend),
        log=str(workspace.log_stem(task, attempt.number).relative_to(workspace.root)),
        brief=attempt.brief or None,
        estimate=round(attempt.estimate, 3) if attempt.estimate is not None else None,
        expected_cost=round(attempt.expected_cost, 6) if attempt.expected_cost is not None else None,
        model=attempt.settings.model,
    )


_NOT_RUN: dict[TaskStatus, type[TaskSkipped | TaskInterrupted | TaskBypassed | TaskRejected]] = {
    TaskStatus.SKIPPED: TaskSkipped,
    TaskStatus.INTERRUPTED: TaskInterrupted,
    TaskStatus.BYPASSED: TaskBypassed,
    TaskStatus.REJECTED: TaskRejected,
}


def not_run_event(
    task: Task, status: TaskStatus, cause: Cause, reason: str, duration: float | None, spent: AgentResult | None
) -> TaskSkipped | TaskInterrupted | TaskBypassed | TaskRejected | TaskCancelled | TaskFailed:
    """The event of a task that ends this run without an attempt of its own to show (``not_run``):
    a cancelled one with its ``duration``, and what it spent when it spent anything (for history)."""
    if status == TaskStatus.CANCELLED:
        cancelled = TaskCancelled(task=task.id, agent=task.agent, reason=reason, cause=cause, duration=duration)
        told = spent is not None and (spent.cost_usd is not None or bool(spent.tokens))  # (tokens alone: cost not said)
        return replace(cancelled, **spent_of(spent)) if told and spent is not None else cancelled
    if status in _NOT_RUN:
        return _NOT_RUN[status](task=task.id, agent=task.agent, reason=reason, cause=cause)
    return TaskFailed(task=task.id, agent=task.agent, reason=reason, cause=cause, cost_usd=None,
                      attempt_cost_usd=None, tokens=None, attempt_tokens=None)  # fmt: skip


class _Spent(TypedDict):
    cost_usd: float | None
    attempt_cost_usd: float | None
    tokens: int | None
    attempt_tokens: int | None


def spent_of(result: AgentResult) -> _Spent:
    """``task_failed``'s ``cost_usd`` and ``tokens`` (the task's, in this run of it), and the
    attempt's own: ``attempt_cost_usd``, ``attempt_tokens``."""
    return {
        "cost_usd": result.cost_usd,
        "attempt_cost_usd": result.attempt_cost_usd,
        "tokens": total(result.tokens),
        "attempt_tokens": total(result.attempt_tokens),
    }


def total(tokens: Mapping[str, int] | None) -> int | None:
    """Tokens as the events count them: their sum."""
    return sum(tokens.values()) if tokens else None


def completed_event(
    who: tuple[str, str, str], record: ResultRecord, result: str, last: AgentResult | None, digest: str | None
) -> TaskCompleted:
    """``task_completed``'s fields: ``who``, the task's id, agent and name; ``cost_usd`` and
    ``tokens`` the task's (its attempts in this run of it added up), ``attempt_cost_usd`` and
    ``attempt_tokens`` its ``last`` attempt's own (a result kept from a log or the cache, or told
    late: the same); ``digest``: of the result's bytes as written."""
    own = (last.attempt_cost_usd, total(last.attempt_tokens)) if last else (record.cost_usd, record.total_tokens)
    return TaskCompleted(
        task=who[0],
        agent=who[1],
        name=who[2],
        duration=record.duration,
        attempts=record.attempts,
        cost_usd=record.cost_usd,
        attempt_cost_usd=own[0],
        tokens=record.total_tokens,
        attempt_tokens=own[1],
        result=result,
        warning=record.reason,
        simulated=record.simulated,
        worker=record.worker or None,  # on a cluster: the worker that ran it
        reused=record.reused or None,  # from the cache (``run/resume/reuse``): why
        result_digest=digest,
    )
