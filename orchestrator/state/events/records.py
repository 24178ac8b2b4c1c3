"""Every event's record, by its kind: the one table ``parse``, the reporters and the schema read.

A new kind of event: its name in ``EventKind``, its record in ``tasks`` or ``runs``, its entry
here, a method in ``reporter.EventReporter``, its line in ``output/lines`` (if it has one), and
``docs/events.schema.json`` again (``python -m orchestrator.state.events.schema``); a test holds
them together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.state.events.base import EventKind, EventRecord
from orchestrator.state.events.runs import (
    AnswerRequested,
    ApproveRequested,
    CancelRequested,
    CheckpointRestored,
    CheckpointSaved,
    DeadlineAtRisk,
    DeadlineMissed,
    Discovered,
    Notice,
    PermissionRequested,
    PlanFile,
    RejectRequested,
    RequestRefused,
    RetryRequested,
    RunEstimate,
    RunFinished,
    RunPaused,
    RunStarted,
    RunWaiting,
    Shared,
    Synced,
)
from orchestrator.state.events.tasks import (
    ApprovalGiven,
    ApprovalNoted,
    ApprovalRefused,
    ApprovalRequested,
    PermissionAnswered,
    PermissionAsked,
    TaskAdded,
    TaskBlocked,
    TaskBypassed,
    TaskCancelled,
    TaskChanged,
    TaskCompleted,
    TaskFailed,
    TaskFailover,
    TaskHedged,
    TaskHedgeFailed,
    TaskHedgeWon,
    TaskInterrupted,
    TaskJudged,
    TaskRejected,
    TaskReleased,
    TaskRequeued,
    TaskRetrying,
    TaskSkipped,
    TaskSpawned,
    TaskStarted,
    TaskStuck,
)

RECORDS: dict[EventKind, type[EventRecord]] = {
    record.event: record
    for record in (
        RunStarted,
        RunFinished,
        RunPaused,
        RunWaiting,
        RunEstimate,
        DeadlineAtRisk,
        DeadlineMissed,
        Notice,
        PlanFile,
        TaskStarted,
        TaskRetrying,
        TaskCompleted,
        TaskFailed,
        TaskSkipped,
        TaskInterrupted,
        TaskCancelled,
        TaskBypassed,
        TaskRejected,
        TaskBlocked,
        TaskReleased,
        TaskStuck,
        TaskFailover,
        TaskHedged,
        TaskHedgeWon,
        TaskHedgeFailed,
        TaskJudged,
        TaskAdded,
        TaskChanged,
        TaskRequeued,
        TaskSpawned,
        ApprovalRequested,
        ApprovalGiven,
        ApprovalRefused,
        ApprovalNoted,
        PermissionAsked,
        PermissionAnswered,
        CancelRequested,
        RetryRequested,
        ApproveRequested,
        RejectRequested,
        PermissionRequested,
        AnswerRequested,
        RequestRefused,
        Shared,
        Discovered,
        Synced,
        CheckpointSaved,
        CheckpointRestored,
    )
}


def parse(data: Mapping[str, Any] | EventRecord) -> EventRecord | None:
    """The record a line of the log holds (a record is itself); ``None`` for a kind this version
    does not know, or a line that lacks a key its kind cannot do without."""
    if isinstance(data, EventRecord):
        return data
    try:
        record = RECORDS[EventKind(str(data.get("event")))]
    except ValueError:
        return None
    return record.from_json(data)
