"""The one reporter interface: a method per kind of event, as doit's reporters have one per step
(``execute_task``, ``add_failure``, ``skip_uptodate``, ``complete_run``), so that no reader of
events compares kinds' names.

``EventReporter[R]``: each method takes its kind's record and returns an ``R`` (the terminal's
line, a notification's headline, ``None`` for a reporter that acts). Each falls back on
``any_event``, the default for the kinds a reporter leaves alone (nothing, for most; everything,
for the JSONL writer). ``tell`` hands an event to its method. The terminal's lines
(``output/lines``), the run's reporters and notifications (``output/reporter``, ``run/notices/notify``,
``output/payloads``), the dashboard's tailer (``serve/tailer``), the attempts read from the log
(``state/kept/history``) and the event log itself (``log.EventLog``) implement it. A line of a kind
this version does not know (``base.UnknownEvent``) goes to ``any_event``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from orchestrator.state.events.base import EventRecord, UnknownEvent

if TYPE_CHECKING:  # (the records are only named here: a reader of the log need not build them all)
    from orchestrator.state.events.runs import (
        AnswerRequested,
        ApproveRequested,
        BudgetRaised,
        BudgetReached,
        BudgetRequested,
        CancelRequested,
        CheckpointRestored,
        CheckpointSaved,
        DeadlineAtRisk,
        DeadlineMissed,
        Discovered,
        EffectDone,
        EffectFailed,
        EffectIntended,
        Notice,
        PermissionRequested,
        PlanFile,
        PlanHeld,
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
        ItemsFailed,
        ItemsKnown,
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


R = TypeVar("R")


class _Effects(Generic[R]):
    """The methods of the outward effects' kinds (``state/events/effects``), and ``any_event``, which each
    falls back on."""

    def any_event(self, event: EventRecord) -> R:
        """An event of a kind this reporter has no method of its own for."""
        raise NotImplementedError(f"{type(self).__name__} has no any_event, for {event.event}")

    def effect_intended(self, event: EffectIntended) -> R:
        return self.any_event(event)

    def effect_done(self, event: EffectDone) -> R:
        return self.any_event(event)

    def effect_failed(self, event: EffectFailed) -> R:
        return self.any_event(event)


class EventReporter(_Effects[R]):
    """A method per kind of event (named as the kind is), each ``any_event`` unless a reporter has
    its own."""

    def tell(self, event: EventRecord) -> R:
        """``event`` handed to this reporter's method for its kind."""
        if isinstance(event, UnknownEvent):
            return self.any_event(event)
        method: Callable[[EventRecord], R] = getattr(self, event.event.value)
        return method(event)

    # --- a run ------------------------------------------------------------------------------------

    def run_started(self, event: RunStarted) -> R:
        return self.any_event(event)

    def run_finished(self, event: RunFinished) -> R:
        return self.any_event(event)

    def run_paused(self, event: RunPaused) -> R:
        return self.any_event(event)

    def run_waiting(self, event: RunWaiting) -> R:
        return self.any_event(event)

    def budget_reached(self, event: BudgetReached) -> R:
        return self.any_event(event)

    def budget_raised(self, event: BudgetRaised) -> R:
        return self.any_event(event)

    def run_estimate(self, event: RunEstimate) -> R:
        return self.any_event(event)

    def deadline_at_risk(self, event: DeadlineAtRisk) -> R:
        return self.any_event(event)

    def deadline_missed(self, event: DeadlineMissed) -> R:
        return self.any_event(event)

    def notice(self, event: Notice) -> R:
        return self.any_event(event)

    def plan_file(self, event: PlanFile) -> R:
        return self.any_event(event)

    def plan_held(self, event: PlanHeld) -> R:
        return self.any_event(event)

    # --- a task's life ----------------------------------------------------------------------------

    def task_started(self, event: TaskStarted) -> R:
        return self.any_event(event)

    def task_retrying(self, event: TaskRetrying) -> R:
        return self.any_event(event)

    def task_completed(self, event: TaskCompleted) -> R:
        return self.any_event(event)

    def task_failed(self, event: TaskFailed) -> R:
        return self.any_event(event)

    def task_skipped(self, event: TaskSkipped) -> R:
        return self.any_event(event)

    def task_interrupted(self, event: TaskInterrupted) -> R:
        return self.any_event(event)

    def task_cancelled(self, event: TaskCancelled) -> R:
        return self.any_event(event)

    def task_bypassed(self, event: TaskBypassed) -> R:
        return self.any_event(event)

    def task_rejected(self, event: TaskRejected) -> R:
        return self.any_event(event)

    def task_blocked(self, event: TaskBlocked) -> R:
        return self.any_event(event)

    def task_released(self, event: TaskReleased) -> R:
        return self.any_event(event)

    def task_stuck(self, event: TaskStuck) -> R:
        return self.any_event(event)

    def task_failover(self, event: TaskFailover) -> R:
        return self.any_event(event)

    def task_hedged(self, event: TaskHedged) -> R:
        return self.any_event(event)

    def task_hedge_won(self, event: TaskHedgeWon) -> R:
        return self.any_event(event)

    def task_hedge_failed(self, event: TaskHedgeFailed) -> R:
        return self.any_event(event)

    def task_judged(self, event: TaskJudged) -> R:
        return self.any_event(event)

    # --- the queue, changed while a run goes on ---------------------------------------------------

    def task_added(self, event: TaskAdded) -> R:
        return self.any_event(event)

    def task_changed(self, event: TaskChanged) -> R:
        return self.any_event(event)

    def items_known(self, event: ItemsKnown) -> R:
        return self.any_event(event)

    def items_failed(self, event: ItemsFailed) -> R:
        return self.any_event(event)

    def task_requeued(self, event: TaskRequeued) -> R:
        return self.any_event(event)

    def task_spawned(self, event: TaskSpawned) -> R:
        return self.any_event(event)

    # --- approval gates ---------------------------------------------------------------------------

    def approval_requested(self, event: ApprovalRequested) -> R:
        return self.any_event(event)

    def approval_given(self, event: ApprovalGiven) -> R:
        return self.any_event(event)

    def approval_refused(self, event: ApprovalRefused) -> R:
        return self.any_event(event)

    def approval_noted(self, event: ApprovalNoted) -> R:
        return self.any_event(event)

    # --- an agent's questions to a person ---------------------------------------------------------

    def permission_asked(self, event: PermissionAsked) -> R:
        return self.any_event(event)

    def permission_answered(self, event: PermissionAnswered) -> R:
        return self.any_event(event)

    # --- requests from outside a run ---------------------------------------------------------------

    def cancel_requested(self, event: CancelRequested) -> R:
        return self.any_event(event)

    def retry_requested(self, event: RetryRequested) -> R:
        return self.any_event(event)

    def approve_requested(self, event: ApproveRequested) -> R:
        return self.any_event(event)

    def reject_requested(self, event: RejectRequested) -> R:
        return self.any_event(event)

    def permission_requested(self, event: PermissionRequested) -> R:
        return self.any_event(event)

    def answer_requested(self, event: AnswerRequested) -> R:
        return self.any_event(event)

    def budget_requested(self, event: BudgetRequested) -> R:
        return self.any_event(event)

    def request_refused(self, event: RequestRefused) -> R:
        return self.any_event(event)

    # --- channels and checkpoints -----------------------------------------------------------------

    def shared(self, event: Shared) -> R:
        return self.any_event(event)

    def discovered(self, event: Discovered) -> R:
        return self.any_event(event)

    def synced(self, event: Synced) -> R:
        return self.any_event(event)

    def checkpoint_saved(self, event: CheckpointSaved) -> R:
        return self.any_event(event)

    def checkpoint_restored(self, event: CheckpointRestored) -> R:
        return self.any_event(event)
