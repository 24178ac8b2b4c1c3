"""Everything a run decides before its first attempt: the plan as this run sees it, each task's
settings, the briefs (rendered, hand edits kept), what is already done, and what runs: a
``Prepared`` (``run/resume/prepared``)."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator import backends, documents
from orchestrator.errors import OrchestratorError, OverBudget, UsageError
from orchestrator.executors import sandbox
from orchestrator.executors.base import Executor
from orchestrator.output.briefs import edit_notice, prepare_briefs, write_briefs
from orchestrator.output.trial import try_overrides
from orchestrator.plan.config import kinds
from orchestrator.plan.config.profiles import Profiles
from orchestrator.plan.config.settings import Settings, suggest
from orchestrator.plan.model import Plan, Task
from orchestrator.plan.parser import read_plan_text
from orchestrator.plan.table.rows import unread_columns
from orchestrator.run.attempts import Resumable
from orchestrator.run.checks.cluster import check as cluster_check
from orchestrator.run.checks.preflight import check_installed, check_plan
from orchestrator.run.forecasts.spend import RunForecast, for_tasks
from orchestrator.run.items import expand_known, instances_of, join_traced, window_of
from orchestrator.run.resume.basis import inputs_now
from orchestrator.run.resume.prepared import Prepared
from orchestrator.run.resume.selection import (
    asked_again,
    expected_fingerprints,
    select,
    task_signature,
)
from orchestrator.run.resume.settled import fields_in
from orchestrator.run.worktrees import isolation
from orchestrator.state import approvals, store
from orchestrator.state.journal import attempts_started, workers_of
from orchestrator.state.kept import aside
from orchestrator.state.plans import plan_of
from orchestrator.state.plans.params import remember
from orchestrator.state.results import ResultRecord, gather_items
from orchestrator.state.status import archived_records, read_records
from orchestrator.state.workspace import Workspace
from orchestrator.views.replay import collect
from orchestrator.vocabulary import TaskStatus, money


@dataclass(slots=True)
class RunOptions:
    """What the command line changes about a run (``None``: what the plan says)."""

    max_parallel: int | None = None
    only: list[str] | None = None
    rerun: list[str] | None = None
    # The tasks run for real whatever the cache holds (``None``: --rerun's). What --rerun runs
    # downstream of them goes through the cache: early cutoff. `schedule fire` reruns every task
    # and forces only the roots.
    forced: list[str] | None = None
    fail_fast: bool | None = None
    backend: str | None = None
    max_cost: float | None = None
    wait_for_orphans: bool = False
    aggregate: str | None = None
    params: dict[str, str] = field(default_factory=dict)  # --param: over what earlier runs were given
    untrusted: str | None = None  # --untrusted: where those values came from (a webhook, the API, MCP)
    read_only: bool = False  # --read-only: every agent task with Access: read (a trigger's ``access``)
    wait: bool = False  # --wait: stay up while tasks wait for a person (``run/held/holds.Patience``)
    wait_timeout: float | None = None  # --wait-timeout: for at most this many seconds (None: as long as it takes)
    over_forecast: bool = False  # --over-forecast: start though the forecast is over max_cost
    launch: str | None = None  # --launch: the run started from outside, its entry in state/launches.json

    def overrides(self) -> dict[str, Any]:
        names = ("max_parallel", "backend", "fail_fast", "max_cost", "aggregate")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


def load_checked(
    workspace: Workspace, options: RunOptions, *, clis: bool = False, base: bool = False, run: bool = False
) -> tuple[Plan, Profiles]:
    """The plan with the command line's overrides, checked (backends, profiles; with ``clis``,
    that the agent CLIs of the tasks to run are installed; with ``base``, that the person's HEAD
    merges into the integration branch, as a run with worktrees begins by doing; no directory of
    the workspace a symlink leading out of it; the workspace's templates that render after tasks
    start render now): an error here means nothing was written. ``run``: the plan a run goes on
    with, a row over many items with the instances it starts first (``run/items.expand_known``)."""
    plan = plan_of(workspace, options.params, complete=True, untrusted=options.untrusted)
    window = window_of(plan.settings, options.max_parallel) if run and not _named(options) else None
    expand_known(plan, workspace, window=window)  # (a row run per item: its instances, when its items are known)
    if options.backend is not None and options.backend not in backends.names():  # not the plan's fault
        known = backends.names()
        close = suggest(options.backend, known)
        raise UsageError(f"--backend {options.backend}: no such backend{close} — use one of: {', '.join(known)}")
    overrides = options.overrides()
    if overrides:
        plan.settings = plan.settings.replace(**overrides)
    profiles = Profiles(workspace)
    if options.read_only:
        read_only(plan, profiles)
    check_plan(plan, workspace, profiles, base=base, outside=options.untrusted)
    try_overrides(plan, workspace)
    lowered = {task_id.lower(): task_id for task_id in plan.tasks}
    for flag, ids in (("--only", options.only), ("--rerun", options.rerun)):
        unknown = [task_id for task_id in ids or () if task_id.lower() not in lowered]
        if unknown:
            raise UsageError(f"{flag}: no task {', '.join(unknown)} in the plan")
        if ids:  # task ids are not case-sensitive: --only t1 is T1; a row run per item is its instances too
            ids[:] = [lowered[task_id.lower()] for task_id in ids]
            ids[:] = list(dict.fromkeys(t for task_id in ids for t in (task_id, *instances_of(plan, task_id))))
    if clis:  # (finished tasks need no CLI; those that will run again are checked by prepare)
        check_installed(plan, profiles, options.only, done=lambda task_id: _completed(workspace, plan.tasks[task_id]))
    workspace.check_inside()  # nothing is written through a symlink that leads outside
    return plan, profiles


def checked(workspace: Workspace, options: RunOptions, executor: Executor) -> tuple[Plan, Profiles]:
    """What a run checks before it takes the lock: the plan (``load_checked``; the agent CLIs
    installed here when its executor runs programs here), and the cluster it runs on, if one
    (``run/checks/cluster``). The plan as checked, for ``prepare`` to take while its file is the
    same (``loaded``): a row over 100,000 items is not made twice."""
    here = executor.can.runs_here
    # (isolation: worktree makes worktrees here, from the person's HEAD, wherever the processes run)
    plan, profiles = load_checked(workspace, options, clis=here, base=not executor.can.simulated, run=True)
    cluster = executor.cluster
    if cluster is not None:
        directories = [str(workspace.project_dir)] if cluster.shared else []
        cluster_check(cluster, plan, profiles, options.only, directories=directories)
    return plan, profiles


def _reloaded(
    workspace: Workspace, options: RunOptions, loaded: tuple[Plan, Profiles] | None, *, run: bool = False
) -> tuple[Plan, Profiles]:
    """The plan a run goes on with, read again once it holds the workspace: ``loaded`` (as
    ``checked`` read it before) while the plan's file says what it said then, else anew."""
    if loaded is not None:
        try:
            if read_plan_text(workspace.plan_file) == loaded[0].text:
                return loaded
        except OrchestratorError:
            pass  # (gone or unreadable since: read anew, which says why)
    return load_checked(workspace, options, run=run)


def _named(options: RunOptions) -> bool:
    """Whether the run names its tasks (``--only``, ``--rerun``, a schedule's roots): a row's every
    instance is in its plan then, for those names to find."""
    return bool(options.only or options.rerun or options.forced)


def read_only(plan: Plan, profiles: Profiles) -> None:
    """Every task whose backend has Access modes (an agent's) given ``Access: read`` (``run --read-only``);
    a shell or command task runs the plan's own script, a parameter's value in it as data."""
    for task_id, task in plan.tasks.items():
        if task.access != "read" and kinds.presets(profiles.settings_for(plan, task).backend):
            plan.tasks[task_id] = dataclasses.replace(task, access="read")


@dataclass(slots=True)
class Survey:
    """What a run would do, read without writing anything: the plan as it sees it, each task's
    settings, the briefs as they would be on disk, the results there, and what it selects to run.
    ``run --dry-run`` and the forecast a run is held against (``forecast``) read it; ``prepare``
    goes on from it."""

    plan: Plan
    profiles: Profiles
    rendered: Any  # output.briefs' report: the brief bodies as they will be on disk
    settings: dict[str, Settings]
    signatures: dict[str, str]
    records: dict[str, ResultRecord]
    archived: dict[str, ResultRecord]
    selection: Any  # run/resume/selection.Selection

    def brief_keys(self) -> dict[str, str]:
        """Each task to run's brief key as ``task_started`` will record it (what the estimates and
        the forecast learn by), from the brief it will have."""
        from orchestrator.run.resume.selection import fingerprint

        return {
            task_id: fingerprint(
                bytes(self.rendered.bodies[task_id]).decode("utf-8", "replace"), self.signatures[task_id], []
            )
            for task_id in self.selection.run
            if task_id in self.rendered.bodies and task_id in self.signatures
        }

    def forecast(self, workspace: Workspace) -> RunForecast:
        """What the tasks it runs are expected to cost, from the runs before (``run/forecasts/spend``)."""
        return for_tasks(self.plan, workspace, self.selection.run, self.brief_keys())


def survey(
    workspace: Workspace,
    options: RunOptions,
    *,
    simulated: bool = False,
    settle: bool = False,
    loaded: tuple[Plan, Profiles] | None = None,
) -> Survey:
    """What a run with ``options`` would do (``simulated``: on the fake executor), read without
    writing; ``settle``: the results a person approved or rejected since are settled first (a write:
    only a run holding the lock asks it); ``loaded``: the plan as ``checked`` read it, taken while
    its file is the same."""
    plan, profiles = _reloaded(workspace, options, loaded, run=settle)  # (a run's: ``settle``)
    if settle:
        join_traced(plan, workspace)  # (what was written between its read and its lock)
    records = read_records(plan, workspace)
    if settle:
        approvals.settle(workspace, plan.tasks, records)  # (results a person approved or rejected since)
    # Written once the CLIs of what runs are known to be here; a row's instance's as it starts
    # (``output/briefs.OnStart``), but one with a result, which is judged up to date by its brief.
    up_front = [task_id for task_id, task in plan.tasks.items() if task.row is None or task_id in records]
    rendered = prepare_briefs(plan, workspace, only=None if len(up_front) == len(plan.tasks) else up_front)
    briefs = rendered.bodies  # as they will be on disk, hand edits included
    settings: dict[str, Settings] = {}
    signatures: dict[str, str] = {}
    legacy: dict[str, str] = {}  # as versions before the tools setting signed the same settings
    for task in plan.tasks.values():
        settings[task.id] = profiles.settings_for(plan, task)
        signatures[task.id], earlier = task_signature(plan, task, settings[task.id], profiles)
        if earlier is not None:
            legacy[task.id] = earlier
    archived = archived_records(plan, workspace, every=True)
    expected = expected_fingerprints(plan, briefs, signatures, {**archived, **records}, legacy)
    fields = fields_in(workspace, plan, records)  # (what conditions read)
    inputs = inputs_now(plan, workspace, records)  # (what a rejection is judged against)
    selection = select(
        plan, expected, records, fields, only=options.only, rerun=options.rerun, simulated_done=simulated, inputs=inputs
    )
    return Survey(plan, profiles, rendered, settings, signatures, records, archived, selection)


def hold_to_budget(
    survey: Survey, workspace: Workspace, options: RunOptions, forecast: RunForecast | None = None
) -> RunForecast | None:
    """A run whose forecast (``forecast``, else ``survey``'s) is over its ``max_cost`` does not
    start (``OverBudget``: one line with the forecast, the budget and how to go on), unless told to
    (``run --over-forecast``); the forecast when there is a budget to hold it to."""
    limit = survey.plan.settings.max_cost
    if limit is None:
        return None
    forecast = forecast if forecast is not None else survey.forecast(workspace)
    if forecast.cost is not None and forecast.cost.p50 > limit and not options.over_forecast:
        raise OverBudget(
            f"{forecast.line()}, over the budget of {money(limit)} (max_cost) — nothing was started: "
            "raise max_cost in the plan, pass --max-cost, or --over-forecast to start anyway"
        )
    return forecast


def prepare(
    workspace: Workspace,
    options: RunOptions,
    *,
    simulated: bool = False,
    clis: bool = False,
    loaded: tuple[Plan, Profiles] | None = None,
) -> Prepared:
    """Call it holding the workspace lock: it renders briefs and writes the agent book.
    ``simulated``: the run's executor is the fake one (made-up results count as done for it);
    ``clis``: it runs agent CLIs here, which the tasks to run need installed."""
    folders = workspace.item_folders()
    for directory in (workspace.root, workspace.tasks_dir, workspace.results_dir, workspace.state_dir, *folders):
        store.clean_temp_files(directory)
    gathered = gather_items(workspace)  # (a version before row folders: its items' results, where they are read now)
    found = survey(workspace, options, simulated=simulated, settle=True, loaded=loaded)
    forecast = found.forecast(workspace)  # (the event log read once for it: the run's admission holds to it)
    hold_to_budget(found, workspace, options, forecast)  # (nothing else written yet)
    plan, profiles, rendered, selection = found.plan, found.profiles, found.rendered, found.selection
    settings, signatures, records, archived = found.settings, found.signatures, found.records, found.archived
    for directory in (workspace.results_dir, workspace.logs_dir, workspace.state_dir):
        directory.mkdir(parents=True, exist_ok=True)
    remember(workspace, options.params, source=options.untrusted)  # what status, the dashboard, the next run read
    notices = unread_columns(plan)  # (said by validate too: a column that sets nothing)
    notices += [edit_notice(task_id, name) for task_id, name in rendered.changed_under_edit]
    if clis:
        check_installed(plan, profiles, selection.run)
    write_briefs(rendered, workspace)
    notices += [f"{name} is another task's brief: kept as {kept}" for name, kept in rendered.moved_aside]
    notices += _set_unreadable_aside(plan, workspace, selection.run, records)
    notices += isolation.notices(workspace, plan, settings.values())  # the workspace's files git tracks
    if gathered:
        folder = f"results/{gathered[0].partition('[')[0]}-items/..."
        notices.append(f"{len(gathered):,} results of rows' items moved from results/ into their rows' folders "
                       f"({folder}), where this version keeps them")  # fmt: skip
    # (the results read once; an attempt the journal has open was left behind, as this run holds the
    # lock, whatever process has its runner's pid now: read as status reads it once that pid is gone)
    views = {view.id: view for view in collect(plan, workspace, records, left_behind=True)}
    for task_id in selection.run:
        ready = all(dep in selection.done for dep in plan.tasks[task_id].dependencies)
        views[task_id].move(TaskStatus.PENDING if ready else TaskStatus.WAITING)  # (from what status reads)
    afresh = asked_again(plan, options.rerun)
    sessions = {
        task_id: Resumable(record.session_id, record.fingerprint, worker=_ran_on(workspace, record))
        for task_id, record in records.items()
        if task_id in selection.run
        and task_id not in afresh
        and record.status == TaskStatus.INTERRUPTED
        and record.session_id
    }
    attempts = attempts_made(plan, workspace)
    named_again = {t for t in options.only or () if t in records and records[t].status == TaskStatus.COMPLETED}
    return Prepared(
        plan,
        profiles,
        settings,
        signatures,
        records,
        selection,
        views,
        sessions,
        attempts,
        afresh,
        notices,
        archived,
        named_again,
        set((options.rerun or ()) if options.forced is None else options.forced),
        sandbox.for_run(plan.settings, options.untrusted, workspace.project_dir, workspace.context_dir),
        (forecast.p50s(), forecast.token_p50s()),
    )


def _completed(workspace: Workspace, task: Task) -> bool:
    """Whether ``task``'s result file says completed (its frontmatter only)."""
    meta = documents.read_metadata(workspace.result(task))
    return meta is not None and meta.get("status") == TaskStatus.COMPLETED


def _set_unreadable_aside(
    plan: Plan, workspace: Workspace, run: list[str], records: Mapping[str, ResultRecord]
) -> list[str]:
    """The result files of tasks about to run that cannot be read as a result (a hand edit broke
    the frontmatter, say): they tell nothing of their task, which runs again, and are renamed
    ``<name>.unreadable.md`` rather than written over. A notice for each."""
    present = set(workspace.result_names())
    notices: list[str] = []
    for task_id in run:
        task = plan.tasks[task_id]
        if task_id in records or workspace.result_file(task) not in present:
            continue
        path = workspace.result(task)
        problem = documents.metadata_problem(path)
        moved = aside.move_aside(path, "unreadable") if problem is not None else None
        if moved is not None:
            notices.append(
                f"{workspace.relative(path)} cannot be read as {task_id}'s result ({problem}): "
                f"kept as {moved.name}, and {task_id} runs again"
            )
    return notices


_LOG_NAME = re.compile(r"(?P<slug>.+)\.attempt-(?P<number>\d+)\.(?:out|err|in)")


def attempts_made(plan: Plan, workspace: Workspace) -> dict[str, int]:
    """The highest attempt number each task's logs or the journal's lines carry, from every
    earlier run: a new attempt takes the next number, so that no log of an earlier run is
    overwritten or mixed in, and ``history`` tells the attempts apart."""
    by_slug = {task.slug: task.id for task in plan.tasks.values()}
    found = {task: n for task, n in attempts_started(workspace.journal_file).items() if task in plan.tasks}
    try:
        names = os.listdir(workspace.logs_dir)
    except OSError:
        return found
    for name in names:
        match = _LOG_NAME.fullmatch(name)
        if match and match.group("slug") in by_slug:
            task_id = by_slug[match.group("slug")]
            found[task_id] = max(found.get(task_id, 0), int(match.group("number")))
    return found


def attempt_base_environment() -> dict[str, str]:
    """What every attempt's environment starts from: ours."""
    return dict(os.environ)


def _ran_on(workspace: Workspace, record: ResultRecord) -> str | None:
    """The worker that ran a result's attempt, on a cluster: where its agent session lives."""
    return record.worker or workers_of(workspace.journal_file, record.task).get(record.attempts)
