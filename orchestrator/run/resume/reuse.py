"""The cache with early cutoff (as Bazel's action cache and Shake's early cutoff): a completed
result is kept by a key made of what it came from, and a task about to run whose key the cache
holds takes that result instead of starting a process.

A task's key covers its brief as it is on disk (rendered, hand edits included), the signature of
its settings (backend, command, model, tools, its type and profile: ``selection.task_signature``),
whether the run is simulated (the fake executor's made-up results are never reused by a real
run), and each upstream's *output hash*, not its fingerprint nor its run time. So:

- a brief changed and changed back (v1 -> v2 -> v1) finds v1's result again;
- an upstream that runs again and prints what it printed before leaves its dependents' keys as
  they were: they reuse their results (early cutoff); a different output changes their keys and
  they run.

A result is kept and reused only where the task's work is its answer (``cache_rule``): a task
that says ``cache: true`` (the plan's setting, or its type's or profile's), one that declares its
``Output`` fields, and an agent its settings keep from changing anything (``Backend.read_only``:
``Access: read``). Any other (a shell command, an agent that may edit) may have done its work
beside its answer (``printf out-a | tee file.txt``): giving its answer back would not do that
work again, so it runs when its result is not up to date (never when it is: a completed task
whose inputs are unchanged is left as it is, cached or not). Never cached, whatever it says: a
task with ``cache: false``, one with ``isolation: worktree`` (its work is a commit merged into
the integration branch, which a reused result would not bring back), and one with an approval
gate, before or after (a person is asked each time, and a step a person approved is the step
done: a deploy approved runs).
``run --rerun``'s named tasks run for real, and so do ``run --only``'s completed ones; their
results are kept for the next run. What runs again downstream of a rerun goes through the cache:
a rerun task that prints what it printed before leaves its dependents reused. ``reset``'s tasks lose their entries
(``cache.forget``): they run for real.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Set
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from orchestrator import backends, documents
from orchestrator.documents import read_body
from orchestrator.moments import iso_at
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.model import Task
from orchestrator.state.kept import cache
from orchestrator.state.results import ResultRecord
from orchestrator.vocabulary import TaskStatus

if TYPE_CHECKING:  # (validate names the tasks never cached: it runs nothing, and imports no anyio)
    from orchestrator.run.recorder import Recorder

CACHE_VERSION = "c1"  # bump when what a key covers changes: earlier entries are then never found


def cache_key(task: Task, brief: str, signature: str, upstream: list[tuple[str, str | None]], simulated: bool) -> str:
    payload = json.dumps([CACHE_VERSION, task.id, brief, signature, sorted(upstream), simulated])
    return documents.sha256(payload)[:32]


def reused_from(kept: ResultRecord, upstream: Iterable[ResultRecord | None] = ()) -> str:
    """What a result taken from the cache says of the entry it was taken from; ``upstream``: the
    task's upstream results now. One that ran (not reused) after the entry was kept printed what
    it printed then, or the key would differ: named, as early cutoff (``T-01 ran again with the
    same output: ...``)."""
    since = _moment(kept.finished)
    again = [
        found.task
        for found in upstream
        if found is not None and found.reused is None and since is not None
        and (moment := _moment(found.finished)) is not None and moment > since
    ]  # fmt: skip
    same = f"same inputs as the run of {kept.finished or 'an earlier run'}"
    return f"{', '.join(again)} ran again with the same output: {same}" if again else same


def _moment(text: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None  # (one offset or another: comparable)


def came_from(current: tuple[ResultRecord, str], entry: tuple[ResultRecord, str]) -> bool:
    """Whether a task's current result (its record and body) is the cache ``entry``'s: kept as
    it when the task completed (the same finish), or taken from it since (``reused_from``)."""
    (result, body), (kept, kept_body) = current, entry
    return body == kept_body and (result.finished == kept.finished or (result.reused or "").endswith(reused_from(kept)))


# Why a task's result is kept and reused (``cache_rule``), and why not, as ``validate`` says it.
SAID_TRUE = "cache: true"
DECLARES_OUTPUT = "declares its Output"
READ_ONLY = "read-only agent"
COMMAND_MAY_DO_MORE = "a command: it may do more than answer"
AGENT_MAY_DO_MORE = "an agent that may edit: it may do more than answer"
MAY_DO_MORE = (COMMAND_MAY_DO_MORE, AGENT_MAY_DO_MORE)


def cache_rule(task: Task, settings: Settings) -> tuple[bool, str]:
    """Whether ``task`` (with its ``settings``) is kept and reused by the cache, and why, as
    ``validate`` says it: ``(True, "declares its Output")``, ``(False, "approval before")``."""
    if settings.cache is False:
        return False, "cache: false"
    if settings.isolation == "worktree":
        return False, "isolation: worktree"
    if task.approval is not None:
        return False, f"approval {task.approval}"
    if settings.cache is True:
        return True, SAID_TRUE
    if task.outputs:
        return True, DECLARES_OUTPUT
    if _read_only(settings):
        return True, READ_ONLY
    program = settings.backend in backends.names() and settings.backend not in backends.agents()
    return False, COMMAND_MAY_DO_MORE if program else AGENT_MAY_DO_MORE


def _read_only(settings: Settings) -> bool:
    try:
        return backends.get(settings.backend).read_only(settings)
    except KeyError:  # (a backend validate refuses)
        return False


def never_cached(task: Task, settings: Settings) -> str | None:
    """Why ``task`` (with its ``settings``) is never reused nor kept; ``None``: it is."""
    cached, why = cache_rule(task, settings)
    return None if cached else why


class Kept(NamedTuple):
    """A cache entry found for a task's inputs: its record, its body, the brief it was found by."""

    record: ResultRecord
    body: str
    brief: str


class Reuse:
    """What a run reuses and keeps. ``records``: the results upstream output hashes are read from
    (the scheduler's, which this run's completions update, a reused one included); ``forced``: the tasks run for real
    (``run --rerun``'s named ones, not their downstream: early cutoff)."""

    def __init__(
        self,
        recorder: Recorder,
        settings: Mapping[str, Settings],
        signatures: Mapping[str, str],
        records: MutableMapping[str, ResultRecord],
        *,
        simulated: bool,
        forced: Set[str] = frozenset(),
    ) -> None:
        self.recorder = recorder
        self.workspace = recorder.workspace
        self.settings = settings
        self.signatures = signatures
        self.records = records
        self.simulated = simulated
        self.forced = forced

    def cacheable(self, task: Task) -> bool:
        return never_cached(task, self.settings[task.id]) is None

    def key(self, task: Task, brief: str) -> str:
        upstream = [(dep, found.output_hash if (found := self.records.get(dep)) else None) for dep in task.upstream_ids]
        return cache_key(task, brief, self.signatures[task.id], upstream, self.simulated)

    def found(self, task: Task) -> Kept | None:
        """The completed result the cache keeps for ``task``'s inputs now, and the brief they
        were read from; ``None``: it runs (the machine's ``reuse`` rule reads which)."""
        if task.id in self.forced or not self.cacheable(task):
            return None
        brief = read_body(self.workspace.brief(task))
        if brief is None:
            return None
        found = cache.find(self.workspace, task.id, self.key(task, brief))
        if found is None or found[0].status != TaskStatus.COMPLETED:
            return None
        return Kept(found[0], found[1], brief)

    def reuse(self, task: Task, found: Kept, fingerprint: Callable[[str], str]) -> ResultRecord:
        """``task``'s result taken from the cache entry ``found`` and recorded completed."""
        kept, body, brief = found
        now = iso_at(time.time())
        record = replace(
            kept,
            task=task.id,
            agent=task.agent,
            name=task.title,
            started=now,
            finished=now,
            duration=0.0,
            fingerprint=fingerprint(brief),  # what it would have had, run now: up to date from here on
            run_attempts=0,
            reason=None,
            session_id=None,
            cost_usd=None,  # nothing spent now
            tokens=None,
            turns=None,
            reused=reused_from(kept, map(self.records.get, task.upstream_ids)),
        )
        recorder = self.recorder
        inputs = recorder.inputs_of(task)  # what it was run from, as for a result of this run
        if inputs is not None:
            record = replace(record, inputs=inputs)
        recorder.write(task, record, body)
        recorder.told_completed(task, record)
        self.records[task.id] = record
        return record

    def keep(self, task: Task, brief: str) -> None:
        """``task`` completed in this run from ``brief``: its result file is kept under its key."""
        if self.cacheable(task):
            cache.keep(self.workspace, task.id, self.key(task, brief), self.workspace.result(task))
