"""A run's moving parts, made in one place (``assemble``) and handed as one record (``Parts``) to
the loop (``run/scheduler``) and to what carries out the machine's instructions
(``run/interpreter``): neither builds a collaborator of its own, and none of the parts knows the
others were made together.

The ready queue is ordered here too: by priority, then the longest remaining path of work,
each task weighing what the runs before say it takes (``_ready_queue``).
"""

from __future__ import annotations

import functools
from collections import ChainMap
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

from orchestrator.executors.base import Executor
from orchestrator.machine.core import Machine
from orchestrator.output.briefs import OnStart
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.model import Plan
from orchestrator.plan.queue import ReadyQueue
from orchestrator.run.attempts import Launcher, Resumable
from orchestrator.run.board import Board
from orchestrator.run.books import Inbox, Purse, Stop
from orchestrator.run.forecasts.estimates import Estimate, for_run
from orchestrator.run.forecasts.forecast import Forecast
from orchestrator.run.forecasts.spend import for_tasks
from orchestrator.run.held.budget import Budget
from orchestrator.run.held.gates import Gates
from orchestrator.run.held.holds import Holds
from orchestrator.run.held.not_before import Timed
from orchestrator.run.limits.admission import Admission
from orchestrator.run.limits.failover import Breakers
from orchestrator.run.limits.pacing import Pacer
from orchestrator.run.prepare import attempt_base_environment
from orchestrator.run.races.hedge import Hedger
from orchestrator.run.recorder import Recorder
from orchestrator.run.resume.prepared import Prepared
from orchestrator.run.resume.reuse import Reuse
from orchestrator.run.resume.selection import brief_keys
from orchestrator.run.rows import Rows
from orchestrator.run.starts import Starts
from orchestrator.run.telling import Desk
from orchestrator.run.worktrees.merges import MergeQueue, isolate
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.runs import Notice
from orchestrator.state.journal import Journal
from orchestrator.state.pause import Pause
from orchestrator.state.results import ResultRecord
from orchestrator.state.status import States
from orchestrator.state.workspace import Workspace


@dataclass(slots=True)
class Parts:
    """What a run moves as it goes (each part's own module says what it keeps)."""

    plan: Plan
    board: Board  # the queue, what runs and what waits: every move of a task made there
    recorder: Recorder
    records: MutableMapping[str, ResultRecord]  # the results a fingerprint reads: on disk at the start, then this run's
    sessions: dict[str, Resumable]  # task -> agent session an interrupted attempt left, to resume
    admission: Admission
    pause: Pause
    stop: Stop  # why nothing new starts (fail-fast, the cost limit, a signal)
    holds: Holds  # tasks a person holds (a Blocked cell, a gate): never started
    gates: Gates  # conditions and approval gates
    timed: Timed  # the ready tasks whose Not before has not come
    inbox: Inbox  # outcomes and changes handed to the loop
    forecast: Forecast
    starts: Starts
    breakers: Breakers  # per backend: open while it is down (``run/limits/failover``)
    purse: Purse
    hedger: Hedger  # (``run/races/hedge``)
    launcher: Launcher
    journal: Journal
    merges: MergeQueue | None  # with isolation: worktree, what merges each completed task's branch
    reuse: Reuse | None  # the cache (``run/resume/reuse``): a result reused instead of a run
    fail_fast: bool
    desk: Desk  # the machine, told what happens (``run/telling``): by the loop, its races, its merges
    budget: Budget  # ``max_cost`` as a pause: the tasks it holds, and a raise (``run/held/budget``)


def assemble(
    *,
    plan: Plan,
    selected: list[str],
    done: set[str],
    settings: Mapping[str, Settings],
    signatures: Mapping[str, str],
    records: MutableMapping[str, ResultRecord],
    sessions: dict[str, Resumable],
    attempts: Mapping[str, int],
    launcher: Launcher,
    recorder: Recorder,
    admission: Admission,
    pause: Pause,
    journal: Journal,
    fail_fast: bool,
    merges: MergeQueue | None = None,
    reuse: Reuse | None = None,
    rows: Rows | None = None,
    desk: Desk | None = None,
    expected: tuple[dict[str, float], dict[str, float]] | None = None,
) -> Parts:
    """The parts of a run of ``selected`` (``done``: those it leaves as they are); ``expected``:
    each task's expected cost and tokens, when the run learned them as it prepared."""
    briefs = brief_keys(plan, recorder.workspace, signatures, selected)  # (what each brief says now)
    estimates = for_run(plan, recorder.workspace, briefs)  # from the runs before
    if expected is None:  # (what each is expected to cost, and use)
        spend = for_tasks(plan, recorder.workspace, selected, briefs)
        expected = (spend.p50s(), spend.token_p50s())
    costs, tokens = expected
    forecast = Forecast(plan, recorder.views, selected, estimates, admission.limit, recorder.emit, costs)
    desk = desk if desk is not None else Desk(Machine(tasks=States(recorder.views)))
    board = Board(plan, _ready_queue(plan, selected, done, estimates, admission.limit), recorder, attempts,
                  desk.machine.retries)  # fmt: skip
    breakers, holds, inbox = Breakers(forecast.started), Holds(plan, selected, desk.machine.tasks), Inbox()

    def told(said: str) -> None:
        recorder.emit(Notice(message=said))

    starts = Starts(plan=plan, settings=settings, signatures=signatures, records=records, sessions=sessions,
                    launcher=launcher, recorder=recorder, journal=journal, admission=admission, breakers=breakers,
                    board=board, expected=forecast.expected, merges=merges, reuse=reuse, rows=rows,
                    briefs=OnStart(plan, recorder.workspace, told))  # fmt: skip

    def on_loop(event: EventRecord) -> None:
        """What emits an event an attempt's task has for the run: on the loop, before its outcome."""
        inbox.change(functools.partial(recorder.emit, event))

    hedger = Hedger(plan, launcher, admission, journal, on_loop, board.attempts, desk)
    purse = Purse(recorder.workspace, {t: r.session_id for t, r in sessions.items()}, admission)
    purse.stop_at_budget = plan.settings.at_budget == "stop"
    budget = Budget(admission, holds, recorder, starts.slot)
    starts.costs, starts.tokens = costs, tokens  # (what admission holds each attempt to: budget, pace)
    return Parts(plan=plan, board=board, recorder=recorder, records=records, sessions=sessions, admission=admission,
                 pause=pause, stop=Stop(), holds=holds, gates=Gates(plan, holds, recorder, records),
                 timed=Timed(recorder), inbox=inbox, forecast=forecast, starts=starts, breakers=breakers, purse=purse,
                 hedger=hedger, launcher=launcher, journal=journal, merges=merges, reuse=reuse, fail_fast=fail_fast,
                 desk=desk, budget=budget)  # fmt: skip


def of_run(workspace: Workspace, executor: Executor, prepared: Prepared, recorder: Recorder, journal: Journal) -> Parts:
    """The parts of a run from what it prepared: admission with the plan's and its profiles' limits,
    the executor (wrapped in worktrees when tasks are isolated) and the merge queue, the launcher,
    the cache, the rows run per item (``run/items``)."""
    plan = prepared.plan
    pause = Pause(workspace)
    admission = Admission(
        max_parallel=plan.settings.max_parallel,
        profile_caps=_profile_caps(prepared),
        backend_caps=plan.settings.backend_max_parallel,
        max_cost=plan.settings.max_cost,
        paused=pause.groups,
        pacer=Pacer(plan.settings.max_cost_per_hour) if plan.settings.max_cost_per_hour else None,
        token_pace=plan.settings.backend_tokens_per_minute,
    )
    simulated = executor.can.simulated
    desk = Desk(Machine(tasks=States(prepared.views)))  # (the run's one: its loop's, its races' and its merges')
    executor, merges = isolate(workspace, prepared, executor, lambda said: recorder.emit(Notice(message=said)), desk)
    if merges is not None:
        recorder.files.on_written.append(merges.recorded)  # (a merge's mark kept until its result is written)
    launcher = Launcher(workspace, plan, prepared.settings, prepared.profiles, executor, attempt_base_environment(),
                        sandbox=prepared.sandbox)  # fmt: skip
    # What fingerprints read: archived upstreams too, and every result this run writes as it
    # writes it (a failure, a skip: a dependent started after it is fingerprinted against it)
    records = ChainMap(recorder.records, {**prepared.archived, **prepared.records})
    reuse = Reuse(recorder, prepared.settings, prepared.signatures, records,
                  simulated=simulated, forced=prepared.forced | prepared.named_again)  # fmt: skip
    rows = Rows(prepared, workspace, recorder, merges) if any(t.each for t in plan.tasks.values()) else None
    return assemble(plan=plan, selected=prepared.selection.run, done=prepared.selection.done,
                    settings=prepared.settings, signatures=prepared.signatures, records=records,
                    sessions=dict(prepared.sessions), attempts=prepared.attempts, launcher=launcher,
                    recorder=recorder, admission=admission, pause=pause, journal=journal,
                    fail_fast=plan.settings.fail_fast, merges=merges, reuse=reuse, rows=rows,
                    desk=desk, expected=prepared.expected)  # fmt: skip


def _profile_caps(prepared: Prepared) -> dict[str, int]:
    """At most this many at once of each profile the plan's tasks use (those that set a cap)."""
    return {
        name: profile.max_parallel
        for name in {task.profile for task in prepared.plan.tasks.values() if task.profile}
        if (profile := prepared.profiles.get(name)) is not None and profile.max_parallel is not None
    }


def _ready_queue(
    plan: Plan, selected: list[str], done: set[str], estimates: Mapping[str, Estimate], slots: int | None
) -> ReadyQueue:
    """The queue of this run's tasks: by priority, then the longest remaining path of work first,
    each task weighing what it is expected to take (``run/forecasts/estimates``: learned from the runs before);
    when every task's is known, that list improved by playing the run out on ``slots`` (``plan.listorder``)."""
    took = {task: estimate.seconds for task, estimate in estimates.items()}
    if not all(t in estimates and estimates[t].source != "default" for t in selected):
        slots = None  # (a 60 s guess is no duration to play a run out on)
    priority = {task.id: task.priority for task in plan.tasks.values()}
    queue = ReadyQueue(plan.graph, priority=priority, order=plan.order, selected=selected, done=done, took=took,
                       slots=slots)  # fmt: skip
    # A task with a Condition decides on its upstream's outcomes; a row run per item, on its instances'.
    queue.deciding = {task.id for task in plan.tasks.values() if task.condition or task.each is not None}
    return queue
