"""The line each event is shown as: by ``run`` (a line a state change, or the live view's lines),
``watch``, ``spawn`` and the dashboard (each event's ``said``).

``Lines`` is the terminal's reporter (``EventReporter``): a method per kind that has a line;
``None`` for the others. ``describe`` gives an event's line, a record's or a line of the log's,
with what agents printed in it made visible (``printable.visible``): a terminal, ``watch`` and the
dashboard are never sent a control character an agent wrote.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.output.views import SIMULATED, simulated_mark
from orchestrator.plan.config.params import shown_values
from orchestrator.plan.config.settings import format_duration
from orchestrator.plan.table.times import spoken_in
from orchestrator.printable import visible
from orchestrator.state.causes import CauseKind
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.effects import NOTIFY, effect_said
from orchestrator.state.events.records import parse
from orchestrator.state.events.reporter import EventReporter
from orchestrator.state.events.runs import (
    BudgetRaised,
    BudgetReached,
    CancelRequested,
    DeadlineAtRisk,
    DeadlineMissed,
    Discovered,
    EffectDone,
    EffectFailed,
    EffectIntended,
    Notice,
    PlanFile,
    PlanHeld,
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
    ApprovalRefused,
    ApprovalRequested,
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
    TaskStarted,
    TaskStuck,
)
from orchestrator.state.results import candidate
from orchestrator.state.workspace import DEFAULT_DIR, from_here
from orchestrator.vocabulary import attempt_said, listed, question_id


def describe(
    event: EventRecord | Mapping[str, Any], workspace: Path | None = None, *, estimates: bool = False
) -> str | None:
    """The line ``event`` is shown as (``None``: none, or a line of a kind this version does not
    know); ``workspace``: the run's, whose parent its paths are relative to, to show them from where
    the user stands; ``estimates``: a ``run_estimate`` has its line (``watch``), else none."""
    record = parse(event)
    return Lines(workspace, estimates=estimates).said(record) if record is not None else None


def estimate_line(event: RunEstimate) -> str:
    """A ``run_estimate`` as ``watch`` and the live view say it (``run`` prints none: one a task)."""
    cost = f", expected cost ${event.expected_cost:.4f}" if event.expected_cost is not None else ""
    left, end = format_duration(float(event.seconds_left)), (event.expected_end or "")[11:16]
    return f"⏱️ {event.finished}/{event.total} done: about {left} left (ends about {end}){cost}"


def _agent(agent: str | None) -> str:
    return f" [{agent}]" if agent else ""


class _EffectLines(EventReporter[str | None]):
    """The lines of an outward effect (``state/events/effects``): intended, done (with its link), failed."""

    def effect_intended(self, event: EffectIntended) -> str | None:
        return f"📤 {effect_said(event)}…" if event.kind != NOTIFY else None  # (a notification: told if it fails)

    def effect_done(self, event: EffectDone) -> str | None:
        if event.kind == NOTIFY:
            return None
        how = " (found done there: not done again)" if event.found else ""
        return f"📬 {effect_said(event)}{how}" + (f": {event.url}" if event.url else "")

    def effect_failed(self, event: EffectFailed) -> str:
        return f"⚠️ {effect_said(event)} failed: {event.error}"


class Lines(_EffectLines):
    """The plain-text line of each event (``None``: it has none)."""

    def __init__(self, workspace: Path | None = None, *, estimates: bool = False) -> None:
        self.workspace = workspace
        self.estimates = estimates

    def said(self, event: EventRecord) -> str | None:
        """``event``'s line, made visible (``describe``)."""
        line = self.tell(event)
        return visible(line) if line is not None else None

    def any_event(self, event: EventRecord) -> str | None:
        return None

    # --- a run ------------------------------------------------------------------------------------

    def run_started(self, event: RunStarted) -> str | None:
        if event.max_parallel is None:  # (a line of a version before: it has no line)
            return None
        return (
            f"▶ run: {event.to_run} to run, {event.already_done} already done, "
            + (f"{event.kept} left as they are, " if event.kept else "")
            + f"max {event.max_parallel} in parallel"
            + (f", with {shown_values(event.params)}" if event.params else "")
            + (f" ({_untrusted(event.untrusted)})" if event.untrusted else "")
            + (" (read only: every agent task has Access: read)" if event.read_only else "")
            + (f" ({SIMULATED}: the fake executor runs nothing, every result is made up)" if event.simulated else "")
        )

    def run_finished(self, event: RunFinished) -> str | None:
        if event.wall_seconds is None:  # an error ended it: the error is what the run printed
            return None
        parts = ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in event.counts.items() if n)
        parts += f" ({event.simulated} {SIMULATED})" if event.simulated else ""
        cost = f"; cost ${event.cost_usd:.4f}" if event.cost_usd else ""
        final = event.final_output
        if final and self.workspace is not None:
            final = from_here(self.workspace.parent / final)
        branch = event.integration_branch
        written = f" → {final}" if final else ""  # (none when it was interrupted before it started)
        finished = (
            f"■ run finished in {format_duration(event.wall_seconds)}: {parts}{cost}{written}"
            + (f" ({event.stopped})" if event.stopped else "")
            + (f"; the work is on branch {branch}: `orchestrator merge` brings it into yours" if branch else "")
        )
        step = next_step(event, self.workspace)
        return finished + (f"\n{step}" if step else "")

    def run_paused(self, event: RunPaused) -> str:
        return f"⏸️ paused until {event.until}: {event.reason}"

    def run_waiting(self, event: RunWaiting) -> str:
        until = f" until {event.until}" if event.until else ""
        reasons = event.reasons or {}
        said = "; ".join(f"{t}: {reasons.get(t, 'held')}" for t in event.tasks or ())
        return f"⏳ waiting for a person (run --wait{until}): {said}"

    def budget_reached(self, event: BudgetReached) -> str:
        return f"💰 {event.message}"

    def budget_raised(self, event: BudgetRaised) -> str:
        who = f" by {event.by}" if event.by else ""
        return f"💰 budget raised to ${event.limit:.2f}{who} (${event.spent:.4f} spent): the run goes on"

    def run_estimate(self, event: RunEstimate) -> str | None:
        return estimate_line(event) if self.estimates else None

    def deadline_at_risk(self, event: DeadlineAtRisk) -> str:
        return event.message

    def deadline_missed(self, event: DeadlineMissed) -> str:
        return event.message

    def notice(self, event: Notice) -> str:
        return f"ℹ️ {event.message}"

    def plan_file(self, event: PlanFile) -> str:
        return f"{'ℹ️' if event.present else '⚠️'} {event.message}"

    def plan_held(self, event: PlanHeld) -> str:
        return f"✋ {event.message}"

    # --- a task's life ----------------------------------------------------------------------------

    def task_started(self, event: TaskStarted) -> str:
        # An attempt is named by one number everywhere: the one its log files carry, which goes on
        # across runs (`task_retrying`'s "attempt 3 in 1s", `logs --attempt 3`). A retry says so
        # against this run's budget of retries; a task's first attempt in a later run is no retry.
        in_run = event.in_run or event.attempt  # (a line of a version before said no place: its number)
        retry = f" ({attempt_said(event.attempt, in_run, event.of)})" if in_run > 1 else ""
        return f"🔵 {event.task}{_agent(event.agent)} started{retry}: {event.name}"

    def task_retrying(self, event: TaskRetrying) -> str:
        wait = format_duration(float(event.delay))
        return f"🔄 {event.task}{_agent(event.agent)} {event.reason}; attempt {event.attempt} in {wait}"

    def task_completed(self, event: TaskCompleted) -> str:
        task, made_up = f"{event.task}{_agent(event.agent)}", simulated_mark(bool(event.simulated))
        if event.reused:  # from the cache: no process started
            return f"♻️ {task} reused{made_up}: {spoken_in(event.reused)}"
        cost = f", ${event.cost_usd:.4f}" if event.cost_usd is not None else ""
        warning = f" ⚠️ {event.warning}" if event.warning else ""
        where = f" on {event.worker}" if event.worker else ""
        return f"✅ {task} completed{made_up}{where} in {format_duration(event.duration)}{cost}{warning}"

    def task_failed(self, event: TaskFailed) -> str:
        lines = event.stderr_tail or ()
        stderr = "".join(f"\n   │ {line}" for line in lines)
        if lines:
            where = from_here(self.workspace) if self.workspace is not None else ".orchestrator"
            named = "" if where == DEFAULT_DIR else f"{where} "
            stderr += f"\n   └ all of it: orchestrator logs {named}{event.task}"
        made_up = simulated_mark(bool(event.simulated))
        worker = f" on {event.worker}" if event.worker else ""
        return f"❌ {event.task}{_agent(event.agent)} failed{made_up}{worker}: {event.reason}{stderr}"

    def task_skipped(self, event: TaskSkipped) -> str:
        return f"⏭️ {event.task}{_agent(event.agent)} skipped: {event.reason}"

    def task_interrupted(self, event: TaskInterrupted) -> str:
        return f"⏹️ {event.task}{_agent(event.agent)} interrupted"

    def task_cancelled(self, event: TaskCancelled) -> str:
        took = f" after {format_duration(event.duration)}" if event.duration is not None else ""
        return f"⏹️ {event.task}{_agent(event.agent)} cancelled{took}: {event.reason}"

    def task_bypassed(self, event: TaskBypassed) -> str:
        return f"↪️ {event.task}{_agent(event.agent)} bypassed: {event.reason}"

    def task_rejected(self, event: TaskRejected) -> str:
        return f"🚫 {event.task}{_agent(event.agent)} {event.reason}"

    def task_blocked(self, event: TaskBlocked) -> str | None:
        if event.cause is not None and event.cause.kind == CauseKind.BUDGET:
            return None  # (the run's ``budget_reached`` says it, once for them all)
        return f"🚧 {event.task}{_agent(event.agent)} {event.reason}; what depends on it waits"

    def task_released(self, event: TaskReleased) -> str:
        return f"▶️ {event.task}{_agent(event.agent)} released: it starts once what it depends on is done"

    def task_stuck(self, event: TaskStuck) -> str:
        return f"⚠️ {event.task}{_agent(event.agent)} looks stuck: {event.why}"

    def task_failover(self, event: TaskFailover) -> str:
        return f"🔀 {event.task}: on {event.backend} instead of {event.fallback_from}: {event.reason}"

    def task_hedged(self, event: TaskHedged) -> str:
        return (
            f"🐢 {event.task}{_agent(event.agent)} attempt {event.first} is straggling"
            f" ({format_duration(event.after)}, past {event.why}): attempt {event.attempt} hedges it on {event.backend}"
        )

    def task_judged(self, event: TaskJudged) -> str:
        chosen = candidate(event.candidates, event.attempt)
        return (
            f"⚖️ {event.task}{_agent(event.agent)} best of {len(event.candidates)}: {chosen}"
            f" chosen ({event.judge}): {visible(event.reason)}"
        )

    def task_hedge_won(self, event: TaskHedgeWon) -> str:
        if event.hedge:
            said = f"the hedge (attempt {event.attempt}) completed first; attempt {event.lost} stopped, unfinished"
            said += f" though it had run {format_duration(max(0.0, event.won_by))} longer"
        else:
            said = f"attempt {event.attempt} completed first; its hedge (attempt {event.lost}) stopped"
        return f"🏁 {event.task}{_agent(event.agent)} {said}"

    def task_hedge_failed(self, event: TaskHedgeFailed) -> str:
        who = "the hedge" if event.hedge else "the first"
        said = f"neither attempt completed: attempt {event.lost} ended first, {who} (attempt {event.attempt}) last"
        if event.stopped:
            said = f"the race stopped: its hedge (attempt {event.lost}) with attempt {event.attempt}"
        return f"🏁 {event.task}{_agent(event.agent)} {said}"

    # --- the queue, changed while a run goes on ---------------------------------------------------

    def task_added(self, event: TaskAdded) -> str:
        after = f" after {', '.join(event.after)}" if event.after else ""
        return f"➕ {event.task}{_agent(event.agent)} added{after}: {event.name}"

    def items_known(self, event: ItemsKnown) -> str:
        joined = ": they join the run" if event.joined else ""
        each = event.each if len(event.each) <= 80 else event.each[:77].rstrip() + "…"  # (a list of 5,000: its start)
        return f"📦 {event.task} runs once per item of {visible(each)}: {event.items:,} items{joined}"

    def task_changed(self, event: TaskChanged) -> str:
        what = ", ".join(event.changed or ()) or "its row"
        return f"✏️ {event.task}{_agent(event.agent)} takes its row as edited while it waited ({what}): {event.name}"

    def task_requeued(self, event: TaskRequeued) -> str:
        return f"↩️ {event.task}{_agent(event.agent)} back in the queue ({event.was})"

    # --- approval gates ---------------------------------------------------------------------------

    def approval_requested(self, event: ApprovalRequested) -> str:
        return f"✋ {event.task}{_agent(event.agent)} {event.reason}"

    def approval_given(self, event: ApprovalGiven) -> str:
        return _word("👍", "approved", event)

    def approval_refused(self, event: ApprovalRefused) -> str:
        return _word("👎", "rejected", event)

    # --- an agent's questions to a person ---------------------------------------------------------

    def permission_asked(self, event: PermissionAsked) -> str:
        until = f" (denied unless answered by {spoken_in(event.until)})" if event.until else ""
        short = f" {question_id(event.number)}".rstrip()  # (` Q2`: what a person names it by)
        return f"✋ {event.task}{_agent(event.agent)} asks{short}: {event.said}{until}"

    def permission_answered(self, event: PermissionAnswered) -> str:
        mark, said = ("👍", "allowed") if event.answer == "allow" else ("👎", "denied")
        by = " (no answer in time)" if event.by == "timeout" else f" by {event.by}" if event.by else ""
        via = f" ({event.via})" if event.via else ""
        always = ", and from now on" if event.always else ""
        short = f" {question_id(event.number)}".rstrip()
        return f"{mark} {event.task}{_agent(event.agent)} {said}{short}: {event.said}{by}{via}{always}"

    # --- requests from outside a run --------------------------------------------------------------

    def cancel_requested(self, event: CancelRequested) -> str:
        return f"✋ cancel {event.task} asked" + (f": {event.reason}" if event.reason else "")

    def retry_requested(self, event: RetryRequested) -> str:
        return f"✋ retry {event.task} asked" + (f": {event.reason}" if event.reason else "")

    def request_refused(self, event: RequestRefused) -> str:
        return f"✋ {event.request_kind} {event.task} refused: {event.reason}"

    # --- channels ---------------------------------------------------------------------------------

    def shared(self, event: Shared) -> str:
        return f"💬 {event.task} shared: {event.text}"

    def discovered(self, event: Discovered) -> str:
        return f"💡 {event.task} discovered: {event.text}"

    def synced(self, event: Synced) -> str:
        return f"🏁 sync{f' ({event.task})' if event.task else ''}: {event.text}"


def _word(mark: str, said: str, event: ApprovalGiven | ApprovalRefused) -> str:
    by = f" by {event.by}" if event.by else ""
    by += f" ({event.via})" if event.via else ""
    return f"{mark} {event.task}{_agent(event.agent)} {said}{by}" + (f": {event.reason}" if event.reason else "")


def next_step(event: RunFinished, workspace: Path | None) -> str | None:
    """The last line of a run that did not complete everything: what to do next. The rule
    everywhere: `orchestrator logs T-03` shows why a task failed, and a plain `orchestrator run`
    runs every task not completed again (failed, skipped, interrupted), keeping the completed
    ones; `reset --failed` is not needed for that. A cancelled task stays so until `retry`."""
    found = event.counts or {}
    failed, cancelled = event.failed or (), event.cancelled or ()
    named = _named(workspace)
    if event.exit_code == 130:
        return f"next: `orchestrator run{named}` resumes where it stopped"
    if event.exit_code == 0:  # (done: a failure a fallback took over stays so, nothing to do)
        return None
    back = f"`orchestrator retry{named} {cancelled[0]}` runs a cancelled task again" if cancelled else ""
    again = f"`orchestrator run{named}` runs what did not complete again (completed tasks are kept)"
    if failed:
        return f"next: `orchestrator logs{named} {failed[0]}` shows why it failed; {again}" + (
            f"; {back}" if back else ""
        )
    if any(found.get(state) for state in ("skipped", "interrupted")) and not back:
        return f"next: `orchestrator status{named}` shows why; {again}"
    if back:
        return f"next: {back} (a plain `orchestrator run` keeps it cancelled)"
    awaiting = event.awaiting_approval or ()
    if awaiting:
        return (
            f"next: `orchestrator approve{named} {awaiting[0]}` (or `reject{named} {awaiting[0]} --reason ...`) "
            f"decides at its gate, then `orchestrator run{named}` goes on"
        )
    if event.budget:
        waiting = listed(list(event.budget)[:3], len(event.budget))
        return (
            f"next: `orchestrator run{named}` goes on with {waiting} on a budget of its own (max_cost, or --max-cost "
            "USD); `run --wait` waits at the budget for `orchestrator budget +USD` instead"
        )
    blocked = event.blocked or ()
    if blocked:
        return (
            f"next: `orchestrator update{named} {blocked[0]} --status pending` releases {blocked[0]} (blocked by a "
            f"person), then `orchestrator run{named}` goes on with it"
        )
    return None


def _named(workspace: Path | None) -> str:
    """The workspace as a command names it: nothing when the commands find it from here without a name."""
    try:
        here = Path.cwd() / ".orchestrator"
    except OSError:  # the current directory was deleted: the workspace is named as it is
        here = None
    if workspace is None or (here is not None and workspace.resolve() == here.resolve()):
        return ""
    return " " + shlex.quote(from_here(workspace.parent if workspace.name == ".orchestrator" else workspace))


def _untrusted(untrusted: dict[str, str]) -> str:
    """``untrusted: pr, branch from github``: which values came from outside, as data."""
    by: dict[str, list[str]] = {}
    for name, source in untrusted.items():
        by.setdefault(source, []).append(name)
    return "untrusted: " + "; ".join(f"{', '.join(names)} from {source}" for source, names in by.items())
