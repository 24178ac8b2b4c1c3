"""Resume: which tasks are already done (same inputs, completed result) and what must run again.

A task's fingerprint covers its brief as it is on disk (hand edits included), the settings that
change what it does, and for each dependency that dependency's fingerprint and output hash. A
completed result whose fingerprint still matches is kept; anything else runs, and so does
everything downstream of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from orchestrator import documents
from orchestrator.errors import UsageError
from orchestrator.plan.config.profiles import Profiles
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.model import Plan, Task
from orchestrator.run.resume.settled import Fields, settle
from orchestrator.state.results import ResultRecord
from orchestrator.state.workspace import Workspace, result_file_of
from orchestrator.vocabulary import TaskStatus

# Settings that change what a task does (a new timeout or retry count does not).
_FINGERPRINT_SETTINGS = (
    "backend",
    "command",
    "cwd",
    "env",
    "model",
    "max_turns",
    "permission_mode",
    "allowed_tools",
    "append_system_prompt",
)

Upstream = list[tuple[str, str | None, str | None]]  # (dependency, its fingerprint, its output hash)


def settings_signature(settings: Settings, extra: str = "") -> str:
    data = {name: getattr(settings, name) for name in _FINGERPRINT_SETTINGS}
    if settings.tools is not None:  # only when set: results of plans without it stay up to date
        data["tools"] = settings.tools
    if settings.isolation != "none":  # likewise: where the task works changes what it builds on
        data["isolation"] = settings.isolation
    return json.dumps(data, sort_keys=True, default=list) + extra


def beyond_settings(plan: Plan, task: Task, profiles: Profiles) -> str:
    """What a task's signature covers beside its settings: its profile, and its type's definition
    (what of it changes what the task does: not its timeout or retries); nothing for a task with
    neither, so that results made before types stay up to date), and the values of the parameters
    its text names."""
    kind = plan.type_of(task)
    # The parameters its text names, with their values (only when it names some: results of
    # plans without parameters stay up to date): another value runs it again.
    params = json.dumps(task.params) if task.params else ""
    if task.item is not None:  # an instance of a row run per item: its item is what it runs on
        params += "|item " + json.dumps(task.item)
    return profiles.signature(task) + (f"|type {kind.signature()}" if kind is not None else "") + params


def task_signature(plan: Plan, task: Task, settings: Settings, profiles: Profiles) -> tuple[str, str | None]:
    """The signature of ``task``'s ``settings`` (its profile's and type's included), and the one a
    version before the tools setting wrote for the same settings (``None`` when it is the same):
    a result made then is up to date too."""
    extra = beyond_settings(plan, task, profiles)
    signature = settings_signature(settings, extra)
    profile = profiles.get(task.profile)
    if profile is not None and profile.tools and not profile.allowed_tools:  # its tools were pre-approvals then
        earlier = settings.replace(tools=None, allowed_tools=profile.tools)
        return signature, settings_signature(earlier, extra)
    return signature, None


def fingerprint(brief: str, signature: str, upstream: Upstream) -> str:
    payload = json.dumps([brief, signature, sorted(upstream, key=lambda u: u[0])], default=str)
    return documents.sha256(payload)[:16]


def brief_keys(plan: Plan, workspace: Workspace, signatures: Mapping[str, str], tasks: Iterable[str]) -> dict[str, str]:
    """Each of ``tasks``' brief as it is on disk, fingerprinted with its settings' ``signatures``
    and not its inputs: what ``task_started`` records as its ``brief``, and what its estimate is
    learned by (``run/forecasts/estimates``). A task with no brief on disk has none, nor has a
    row's instance, whose brief is made as it starts (``output/briefs.OnStart``): its estimate
    is its row's items'."""
    keys: dict[str, str] = {}
    for task_id in tasks:
        task = plan.tasks.get(task_id)
        wanted = task is not None and task.row is None and task_id in signatures
        body = documents.read_body(workspace.brief(task)) if wanted and task is not None else None
        if body is not None:
            keys[task_id] = fingerprint(body, signatures[task_id], [])
    return keys


def upstream_of(dependencies: Iterable[str], records: Mapping[str, ResultRecord]) -> Upstream:
    """What a task's fingerprint takes from its dependencies: each one's fingerprint and output hash."""
    found: Upstream = []
    for dep in dependencies:
        record = records.get(dep)
        found.append((dep, record.fingerprint if record else None, record.output_hash if record else None))
    return found


@dataclass(slots=True)
class Selection:
    run: list[str]  # in table order
    done: set[str]  # completed and up to date (or, with --only, completed)
    # Finished otherwise and staying so (``run/resume/settled``): bypassed, cancelled, rejected, skipped
    # for one of those, a failure a fallback took over; what depends on them is given up.
    kept: dict[str, TaskStatus] = field(default_factory=dict)


def expected_fingerprints(
    plan: Plan,
    briefs: Mapping[str, bytes | memoryview],
    signatures: Mapping[str, str],
    records: Mapping[str, ResultRecord],
    legacy: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The fingerprints the tasks with a completed result would have if run now against the
    results on disk: what tells whether that result is still up to date. ``briefs``: each
    task's brief body, UTF-8. ``legacy``: a task's signature as an earlier version wrote it for
    the same settings; a result made then is up to date too."""
    expected: dict[str, str] = {}
    for task_id, record in records.items():  # (each from the results alone: in no order, and none for a task without)
        if record.status != TaskStatus.COMPLETED or task_id not in plan.tasks:
            continue
        earlier = legacy.get(task_id) if legacy else None
        brief = str(briefs[task_id], "utf-8")
        expected[task_id] = expected_fingerprint(plan.tasks[task_id], brief, signatures[task_id], earlier, records)
    return expected


def expected_fingerprint(
    task: Task, brief: str, signature: str, legacy: str | None, records: Mapping[str, ResultRecord]
) -> str:
    """The fingerprint ``task`` would have if run now from ``brief`` against ``records``: its
    result's, when made by an earlier version that signed the same settings as ``legacy``."""
    upstream = upstream_of(task.upstream_ids, records)  # (archived ones too: ``status.archived_records``)
    value = fingerprint(brief, signature, upstream)
    record = records.get(task.id)
    if record is not None and value != record.fingerprint and legacy is not None:
        earlier = fingerprint(brief, legacy, upstream)
        value = earlier if earlier == record.fingerprint else value
    if record is not None and value != record.fingerprint and task.row is not None:
        # A row's instance run by a version before row folders: its brief named its result in
        # results/ itself, where the next run moved it (``state/results.gather_items``).
        flat = brief.replace(f"/{Workspace.result_file(task)}", f"/{result_file_of(task.slug, instance=False)}")
        earlier = fingerprint(flat, signature, upstream)
        value = earlier if earlier == record.fingerprint else value
    return value


GIVEN_BACK = (TaskStatus.CANCELLED, TaskStatus.REJECTED)  # given up by a person: so until they say otherwise


def asked_again(plan: Plan, rerun: Iterable[str] | None) -> set[str]:
    """What ``run --rerun`` runs again: the named tasks and everything downstream of them."""
    return {task for named in rerun or () for task in (named, *plan.downstream(named))}


def select(
    plan: Plan,
    expected: Mapping[str, str],
    records: Mapping[str, ResultRecord],
    fields: Fields,
    *,
    only: list[str] | None = None,
    rerun: list[str] | None = None,
    simulated_done: bool = False,
    inputs: Callable[[Task], str | None] | None = None,
) -> Selection:
    """What this run must do; ``expected``: the fingerprints now (``expected_fingerprints``);
    ``fields``: the completed results' output fields (what conditions read); ``inputs``: each
    task's inputs now (what a rejection is judged against: ``run/resume/settled``). A result the fake
    executor made up counts as done only for another fake run (``simulated_done``): a real run
    does the work."""
    order = plan.topological_order()
    settled = settle(order, plan, expected, records, fields, simulated_done=simulated_done, inputs=inputs)
    done = settled.done
    completed = {
        t for t, r in records.items() if r.status == TaskStatus.COMPLETED and (simulated_done or not r.simulated)
    }
    if only:
        unknown = [t for t in only if t not in plan.tasks]
        if unknown:
            raise UsageError(f"--only: no task {', '.join(unknown)} in the plan")
        for task_id in only:  # a dependency named in --only too runs first, in this run
            missing = [d for d in plan.tasks[task_id].dependencies if d not in completed and d not in only]
            if missing:
                raise UsageError(
                    f"--only {task_id}: its dependencies {', '.join(missing)} are not completed — "
                    f"add them to --only, run them first (orchestrator run), or drop --only"
                )
        # The named tasks run; what they depend on counts as done as long as it completed.
        return Selection([t for t in plan.tasks if t in only], (completed | done) - set(only))
    kept = settled.given_up
    if rerun:
        unknown = [t for t in rerun if t not in plan.tasks]
        if unknown:
            raise UsageError(f"--rerun: no task {', '.join(unknown)} in the plan")
        again = asked_again(plan, rerun)
        done -= again
        # (a task cancelled or rejected stays so under --rerun of what is upstream of it: naming it puts it back)
        kept = {t: s for t, s in kept.items() if t not in again or (s in GIVEN_BACK and t not in rerun)}
    done -= _reopened(plan, done, kept)
    return Selection([t for t in plan.tasks if t not in done and t not in kept], done, kept)


def _reopened(plan: Plan, done: set[str], kept: Mapping[str, object]) -> set[str]:
    """The rows run per item that are done but have an instance to run (one that failed, retried,
    reset), and what is downstream of them: a row's result is its instances', so it is settled
    again once they have run, and what depends on it runs on the new one."""
    to_run: dict[str, bool] = {}
    for task in plan.tasks.values():
        if task.row is not None and task.row in done and task.id not in done and task.id not in kept:
            to_run[task.row] = True
    return {task for row in to_run for task in (row, *plan.downstream(row))}
