"""Does a workspace need a person? What ``orchestrator check`` reports, for cron and heartbeats.

Of its own it reads the attempt journal's last run (``journal.read``), ``state/pause.json``, the
log files' modification times of the attempts still open, and the one ``run_finished`` line at
the end of ``state/events.jsonl``; each task's state it is handed (below). It changes nothing.

Something needs attention (a ``Finding``) when:

- ``dead_runner``: the runner the journal names is gone and left attempts marked running;
- ``overdue``: an attempt has run past its ``timeout``, or ``silent``: printed nothing for longer
  than its ``inactivity_timeout`` (the runner should have stopped it: it is wedged);
- ``paused``: a usage-limit pause is in force;
- ``failed``: tasks that failed;
- ``awaiting_approval``: tasks at their Approval gate: a person's word is needed (``T-02 awaits
  approval before it starts``), whether a run stopped there (exit 4, a scheduled one too) or one
  goes on (``run --wait``);
- ``asking``: a running task's agent asks a person for a tool call (``ask: true``), and waits;
- ``interrupted``: tasks a run stopped (Ctrl-C, SIGTERM) left interrupted, and no run goes on;
- ``schedule_overdue``: a schedule (``orchestrator schedule add``) fired no run since it was last
  due (``state/schedule.GRACE`` after); ``schedule_failed``: its last scheduled run exited neither
  0 nor 3 (a firing skipped while the run before still went);
- ``launch_failed``: the last run started from outside (a webhook, the API, an MCP tool:
  ``state/launches``) exited neither 0 nor 3;
- ``simulated``: tasks whose result the fake executor made up (``run --executor fake``: no
  process ran). A rehearsal is no failure, but the work the plan asks for is not done: a real
  ``run`` has still to do it, and made-up results must never pass for real ones, so ``check``
  is not "all well" (exit 1) until it has (only known from the views: without them, not told).

Which state each task is in is what ``status`` shows when the command hands ``check`` the views
``status`` reads (``views``: ``run/resume/freshness.current_views``, which reads the plan and every
result): a skip whose upstream cause is gone counts as waiting there, not as skipped, and the
tasks out of date (``Health.out_of_date``) are told too, never a finding. Without them (the plan
cannot be read now) the result files' own statuses are counted, from their first lines
(``result_statuses``).
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import moments
from orchestrator.documents import read_metadata
from orchestrator.errors import PlanError
from orchestrator.plan.config.profiles import Profiles
from orchestrator.plan.config.settings import Settings, format_duration
from orchestrator.plan.model import Plan, Task
from orchestrator.state import events, journal, launches, schedule
from orchestrator.state.causes import GATES
from orchestrator.state.pause import read_pause
from orchestrator.state.plans import plan_of
from orchestrator.state.procs import pid_alive
from orchestrator.state.status import TaskView
from orchestrator.state.workspace import Workspace, from_here
from orchestrator.vocabulary import TaskStatus, counted, listed


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing that needs a person: its kind, in words, and the tasks it concerns."""

    kind: str
    message: str
    tasks: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "tasks": list(self.tasks)}


@dataclass(slots=True)
class Health:
    """A workspace's state as ``check`` reports it."""

    workspace: str  # as the user would type it
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # tasks in each state (those with none left out)
    runner_pid: int | None = None
    runner_alive: bool = False
    last_run: dict[str, Any] | None = None  # the last run_finished event: exit_code, wall_seconds, time
    schedule: dict[str, Any] | None = None  # the schedule's record (state/schedule.json), when it has one
    launched: dict[str, Any] | None = None  # the last run a webhook, the API or MCP started (state/launches)
    # Completed tasks `run` would run again, and why (``run/resume/freshness``, filled in by the command):
    # worth knowing, not a person's to fix, so ``ok`` stays as it is.
    out_of_date: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_json(self) -> dict[str, Any]:
        return {
            "workspace": self.workspace,
            "ok": self.ok,
            "findings": [f.as_json() for f in self.findings],
            "counts": self.counts,
            "runner": {"pid": self.runner_pid, "alive": self.runner_alive},
            "last_run": self.last_run,
            "schedule": self.schedule,
            "launched": self.launched,
            "out_of_date": [{"task": task, "reason": why} for task, why in self.out_of_date.items()],
        }


def check(workspace: Workspace, now: float | None = None, views: Sequence[TaskView] | None = None) -> Health:
    """What needs attention in ``workspace`` now; each task's state as ``views`` (what ``status``
    shows) has it, or, without them, as its result file says."""
    now = time.time() if now is None else now
    health = Health(from_here(workspace.root))
    state = journal.read(workspace.journal_file)
    health.runner_pid = state.runner_pid
    health.runner_alive = state.runner_pid is not None and pid_alive(state.runner_pid, state.runner_start)
    open_ids = tuple(sorted(state.open))
    tasks = _from_views(views) if views is not None else _from_results(workspace, open_ids, health.runner_alive)
    found: dict[str, int] = {}
    for status, _ in tasks.values():
        found[status] = found.get(status, 0) + 1
    order = {str(state): n for n, state in enumerate(TaskStatus)}  # (as ``status`` lists them)
    health.counts = dict(sorted(found.items(), key=lambda item: order.get(item[0], len(order))))
    waiting = tuple(sorted(state.retrying - set(state.open)))  # (killed in a backoff: nothing runs, nor will)
    if (open_ids or waiting) and not health.runner_alive:
        left = [f"{_some(open_ids)} marked running"] if open_ids else []
        left += [f"{_some(waiting)} waiting to retry"] if waiting else []
        health.findings.append(
            Finding(
                "dead_runner",
                f"the runner (pid {state.runner_pid}) is gone, and left {' and '.join(left)} — "
                "`orchestrator run` stops what it left and goes on",
                open_ids + waiting,
            )
        )
    elif open_ids:
        health.findings += _late(workspace, state, now)
    pause = read_pause(workspace)
    until = _number(pause.get("until")) if pause else None
    if pause is not None and until is not None and until > now:
        health.findings.append(
            Finding("paused", f"paused until {pause.get('until_iso')}: {pause.get('reason')} — runs again by itself")
        )
    failed = tuple(sorted(task for task, (status, _) in tasks.items() if status == TaskStatus.FAILED))
    if failed:
        reason = tasks[failed[0]][1]()
        why = f" ({failed[0]}: {reason})" if reason else ""
        health.findings.append(
            Finding(
                "failed",
                f"{_some(failed)} failed{why} — `orchestrator status` for why, `orchestrator run` to retry",
                failed,
            )
        )
    health.findings += _awaiting(tasks, views) + _asking(workspace)
    interrupted = tuple(
        sorted(
            task
            for task, (status, _) in tasks.items()
            if status == TaskStatus.INTERRUPTED and task not in state.open  # (those are a dead runner's)
        )
    )
    if interrupted and not health.runner_alive:  # (a live run takes them up again by itself)
        health.findings.append(
            Finding(
                "interrupted",
                f"{_some(interrupted)} left interrupted by a run that was stopped, and no run goes on "
                "— `orchestrator run` takes up where it stopped",
                interrupted,
            )
        )
    if views is not None:
        health.findings += _simulated(views)
    health.last_run = last_finished(workspace)
    health.schedule = schedule.shown(workspace, now)
    health.findings += [Finding(kind, message) for kind, message in schedule.problems(workspace, now)]
    health.launched = launches.last(workspace)
    health.findings += [Finding(kind, message) for kind, message in launches.problems(workspace)]
    stopped = str((health.last_run or {}).get("stopped") or "")
    if events.stopped_on_error(stopped) and not health.runner_alive:
        health.findings.append(
            Finding("run_error", f"the last run stopped on an {stopped} — fix that, then `orchestrator run`")
        )
    return health


def _awaiting(tasks: _Seen, views: Sequence[TaskView] | None) -> list[Finding]:
    """The tasks at their Approval gate, as one finding that says how a person decides."""
    ids = tuple(sorted(task for task, (status, _) in tasks.items() if status == TaskStatus.AWAITING_APPROVAL))
    if not ids:
        return []
    first = ids[0]
    cause = next((v.cause for v in views or () if v.id == first), None)
    gate = GATES.get(cause.gate if cause is not None and cause.gate else "after", GATES["after"])
    decide = f"`orchestrator approve {first}` (or `reject {first} --reason ...`)"
    if len(ids) == 1:
        return [Finding("awaiting_approval", f"{first} awaits approval {gate} — {decide}", ids)]
    message = f"{_some(ids)} await approval ({first} {gate}) — {decide}, and the others alike"
    return [Finding("awaiting_approval", message, ids)]


def _asking(workspace: Workspace) -> list[Finding]:
    """The questions running agents ask a person now (``ask: true``), as one finding."""
    from orchestrator.state.words import questions

    asked = questions.pending(workspace)
    if not asked:
        return []
    first, more = asked[0], f", and {len(asked) - 1} more" if len(asked) > 1 else ""
    answer = f"`{first.form('allow')}` (or `deny`)"
    said = f"{first.task} asks {first.short}: {first.said}{more} — {answer}"
    return [Finding("asking", said, tuple(sorted({q.task for q in asked})))]


def _simulated(views: Sequence[TaskView]) -> list[Finding]:
    """The tasks whose result is made up (``TaskView.simulated``), as one finding."""
    made_up = tuple(sorted(view.id for view in views if view.simulated))
    if not made_up:
        return []
    they = "it" if len(made_up) == 1 else "them"
    message = (
        f"{_some(made_up)} simulated: the fake executor ran nothing, "
        f"{'its result is' if len(made_up) == 1 else 'their results are'} made up "
        f"— `orchestrator run` runs {they} for real"
    )
    return [Finding("simulated", message, made_up)]


_Seen = dict[str, tuple[str, Callable[[], object]]]  # each task's state, and how to read why it is in it


def _from_views(views: Sequence[TaskView]) -> _Seen:
    return {view.id: (str(view.status), functools.partial(_said, view)) for view in views}


def _said(view: TaskView) -> object:
    return view.reason


def _from_results(workspace: Workspace, open_ids: tuple[str, ...], runner_alive: bool) -> _Seen:
    """Each task's state by its result file (read further for the reason only when asked), an
    attempt a live runner has open counting as running."""
    seen: _Seen = {
        task: (status, functools.partial(_reason, workspace.results_dir / name))
        for task, (status, name) in result_statuses(workspace).items()
    }
    if runner_alive:
        for task in open_ids:
            seen[task] = (str(TaskStatus.RUNNING), lambda: None)
    return seen


def _reason(path: Path) -> object:
    meta = read_metadata(path)
    return meta.get("reason") if meta else None


def _late(workspace: Workspace, state: journal.JournalState, now: float) -> list[Finding]:
    """The open attempts of a live runner that are past their timeout or silent past their limit:
    each task's as the run going on runs it (the limits its ``run_started`` recorded: the plan's
    and the command line's then, whatever the plan on disk says now), else as the plan says
    (a run of a version before; the plan is read only here, when attempts are open)."""
    findings: list[Finding] = []
    try:
        plan: Plan | None = plan_of(workspace)
    except PlanError:  # being edited: the plan's limits are not known, the defaults are used
        plan = None
    profiles = Profiles(workspace) if plan is not None else None
    live = events.live_run(workspace.events_file)
    if live is not None and live.pid != state.runner_pid:
        live = None  # (another run's: not the one whose attempts these are)
    added = events.added_limits(workspace.events_file, live)
    for task_id, attempt in sorted(state.open.items()):
        started = moments.epoch_of(attempt.started)
        task = plan.tasks.get(task_id) if plan is not None else None
        if started is None:
            continue
        settings = profiles.settings_for(plan, task) if profiles and plan and task else Settings()
        ran_with = events.task_limits(live, task_id, added)
        timeout = ran_with["timeout"] if ran_with is not None else settings.timeout
        quiet = ran_with["inactivity_timeout"] if ran_with is not None else settings.inactivity_timeout
        running = now - started
        if timeout and running > timeout:
            limit = format_duration(timeout)
            message = f"{task_id} has run {format_duration(running)}, past its {limit} timeout"
            findings.append(Finding("overdue", message, (task_id,)))
            continue
        silent = now - max([started, *_mtimes(workspace, task, attempt.attempt)])
        if quiet and silent > quiet:
            limit = format_duration(quiet)
            message = f"{task_id} has printed nothing for {format_duration(silent)}, past its {limit} inactivity limit"
            findings.append(Finding("silent", message, (task_id,)))
    return findings


def _mtimes(workspace: Workspace, task: Task | None, attempt: int) -> list[float]:
    found: list[float] = []
    for stream in ("out", "err"):
        if task is None:
            continue
        try:
            found.append(os.stat(workspace.log(task, attempt, stream)).st_mtime)
        except OSError:
            continue
    return found


_STATUS = re.compile(rb"^status: *([a-z]+) *$", re.M)
_TASK = re.compile(rb"^task: *\"?([^\"\n]+?)\"? *$", re.M)
_HEAD = 4096


def result_statuses(workspace: Workspace) -> dict[str, tuple[str, str]]:
    """Each task's status and result file's name, by the result files: the ``task:`` and ``status:`` lines near the top
    of what the runner wrote (4 KiB read of each), the whole frontmatter only of a file edited
    into another shape. Cheap: no plan read, no YAML parsed for the runner's own files."""
    found: dict[str, tuple[str, str]] = {}
    for name in workspace.result_names():
        path = workspace.results_dir / name
        try:
            with open(path, "rb") as file:
                head = file.read(_HEAD)
        except OSError:
            continue
        end = head.find(b"\n---", 3)
        front = head[:end] if head.startswith(b"---") and end > 0 else b""
        task, status = _TASK.search(front), _STATUS.search(front)
        if task and status:
            found[task.group(1).decode("utf-8", "replace")] = (status.group(1).decode(), name)
            continue
        meta = read_metadata(path)
        if meta and isinstance(meta.get("task"), str) and isinstance(meta.get("status"), str):
            found[meta["task"]] = (meta["status"], name)
    return found


def last_finished(workspace: Workspace) -> dict[str, Any] | None:
    """The last ``run_finished`` event (``events.last_finished``), as ``check --json`` says it;
    ``None`` when the last run has not finished (or none ran)."""
    finished = events.last_finished(workspace.events_file)
    if finished is None:
        return None
    return {
        "run": finished.run,
        "time": finished.time,
        "exit_code": finished.exit_code,
        "wall_seconds": finished.wall_seconds,
        "cost_usd": finished.cost_usd,
        "counts": finished.counts,
        "simulated": finished.simulated,
        "stopped": finished.stopped,
    }


def _some(ids: tuple[str, ...]) -> str:
    return f"{counted(len(ids), 'task')} ({listed(list(ids[:5]), len(ids))})"


def _number(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
