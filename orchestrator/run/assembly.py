"""What a run's loop is made of: the ``Scheduler`` assembled from what ``run/prepare`` worked out
and the run's recorder and journal, each collaborator given the part of it that it needs."""

from __future__ import annotations

import random
from collections import ChainMap

from orchestrator.executors.base import Executor
from orchestrator.run.attempts import Launcher
from orchestrator.run.items import Rows
from orchestrator.run.limits.admission import Admission
from orchestrator.run.prepare import Prepared, attempt_base_environment
from orchestrator.run.recorder import Recorder
from orchestrator.run.resume.reuse import Reuse
from orchestrator.run.scheduler import Scheduler
from orchestrator.run.worktrees.merges import isolate
from orchestrator.state import journal as journals
from orchestrator.state.events.runs import Notice
from orchestrator.state.pause import Pause
from orchestrator.state.workspace import Workspace


def assemble(
    workspace: Workspace, executor: Executor, prepared: Prepared, recorder: Recorder, journal: journals.Journal
) -> Scheduler:
    """The loop of a run (``Scheduler``) and what it is made of, from what the run prepared: admission
    with the plan's and its profiles' limits, the executor (wrapped in worktrees when tasks are
    isolated) and the merge queue, the launcher, the cache, the rows run per item."""
    plan = prepared.plan
    pause = Pause(workspace)
    admission = Admission(
        max_parallel=plan.settings.max_parallel,
        profile_caps=_profile_caps(prepared),
        backend_caps=plan.settings.backend_max_parallel,
        max_cost=plan.settings.max_cost,
        paused=pause.groups,
    )
    simulated = executor.can.simulated
    executor, merges = isolate(workspace, prepared, executor, lambda said: recorder.emit(Notice(message=said)))
    launcher = Launcher(workspace, plan, prepared.settings, prepared.profiles, executor, attempt_base_environment())
    # What fingerprints read: archived upstreams too, and every result this run writes as it
    # writes it (a failure, a skip: a dependent started after it is fingerprinted against it)
    records = ChainMap(recorder.records, {**prepared.archived, **prepared.records})
    reuse = Reuse(recorder, prepared.settings, prepared.signatures, records,
                  simulated=simulated, forced=prepared.forced | prepared.named_again)  # fmt: skip
    return Scheduler(
        plan=plan,
        selected=prepared.selection.run,
        done=prepared.selection.done,
        settings=prepared.settings,
        signatures=prepared.signatures,
        records=records,
        sessions=dict(prepared.sessions),
        attempts=prepared.attempts,
        launcher=launcher,
        recorder=recorder,
        admission=admission,
        pause=pause,
        journal=journal,
        fail_fast=plan.settings.fail_fast,
        rng=random.Random(),
        merges=merges,
        reuse=reuse,
        rows=Rows(prepared, workspace, recorder, merges) if any(t.each for t in plan.tasks.values()) else None,
    )


def _profile_caps(prepared: Prepared) -> dict[str, int]:
    """At most this many at once of each profile the plan's tasks use (those that set a cap)."""
    return {
        name: profile.max_parallel
        for name in {task.profile for task in prepared.plan.tasks.values() if task.profile}
        if (profile := prepared.profiles.get(name)) is not None and profile.max_parallel is not None
    }
