"""A Dask cluster as a run and ``doctor`` see it: which scheduler, its workers, and on each worker
the agent CLIs the plan needs (installed, version, logged in), asked of the worker itself.

    inspect(address, clis)        ──▶ [Worker]           (``doctor``; ``check`` before a run)
    check(cluster, plan, ...)     ──▶ ClusterError, one line, before anything starts

(The executor's own ``DaskExecutor.made`` finds the scheduler's address: ``--scheduler``, the
plan's ``scheduler`` setting, ``$ORCHESTRATOR_DASK_SCHEDULER``.)

A run checks its cluster before it takes the lock: a scheduler that does not answer (its address
and the time it was given), no worker (one started just before has that time again to join), a
worker that cannot run the orchestrator (it cannot import it, or runs another version than the
runner's), a worker that cannot see the project directory (with a shared filesystem), a worker
without an agent CLI a task needs or without its login, a resource a task's profile asks for
(``resources``) that no worker has, each one line and nothing written.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import anyio

from orchestrator import backends, timing
from orchestrator.backends.probe import Cli, Installation, probe
from orchestrator.errors import ClusterError
from orchestrator.executors.capabilities import Cluster
from orchestrator.plan.config.profiles import Profiles
from orchestrator.plan.config.settings import format_duration
from orchestrator.plan.model import Plan
from orchestrator.version import __version__
from orchestrator.vocabulary import listed

_LOOK_LIMIT = 60.0  # seconds the workers have to answer what they have


@dataclass(frozen=True, slots=True)
class Worker:
    address: str
    name: str
    threads: int
    resources: Mapping[str, float]
    clis: Mapping[str, Installation] = field(default_factory=dict)  # program -> as the worker has it
    version: str | None = None  # the orchestrator's, as the worker imports it
    unseen: tuple[str, ...] = ()  # the directories asked about that the worker cannot see
    trouble: str | None = None  # why it cannot run the orchestrator, or gave no answer


async def inspect(
    address: str, clis: Sequence[Cli], timeout: float | None = None, directories: Sequence[str] = ()
) -> list[Worker]:
    """The cluster's workers, and on each the CLIs ``clis`` as it has them, the orchestrator's
    version and which of ``directories`` it cannot see (``ClusterError``: the scheduler did not
    answer); a scheduler with no worker yet is given ``timeout`` (``timing.dask_timeout`` when
    None) for one to join."""
    from orchestrator.executors.daskscheduler import connect, workers_of  # (a run on this machine needs neither)

    timeout = timing.current().dask_timeout if timeout is None else timeout
    client = await connect(address, timeout)
    try:
        found = await workers_of(client)
        if not found:  # a cluster coming up (`dask worker ... &` just before): a worker has ``timeout`` to join
            with contextlib.suppress(TimeoutError):
                await client.wait_for_workers(1, timeout=timeout)
            found = await workers_of(client)
        probed: Mapping[str, Any] = {}
        if found:
            with anyio.move_on_after(_LOOK_LIMIT):
                probed = await client.run(look_on_worker, list(clis), list(directories), on_error="return")
        workers = []
        for address_, info in sorted(found.items(), key=lambda item: str(item[1].get("name"))):
            name, threads = str(info.get("name") or address_), int(info.get("nthreads") or 0)
            worker = Worker(address_, name, threads, dict(info.get("resources") or {}))
            workers.append(_answered(worker, probed.get(address_)))
        return workers
    finally:
        await client.close()


def _answered(worker: Worker, answer: Any) -> Worker:
    """``worker`` with what it answered ``look_on_worker``: an exception is an orchestrator it
    cannot import (or unpickle: another version), no answer a worker that did not answer."""
    if isinstance(answer, BaseException):
        reason = (str(answer).strip().splitlines() or [""])[0]
        # (what failed before the function ran, Dask sends back as Exception('ImportError(...)'))
        why = reason if type(answer) is Exception and reason else f"{type(answer).__name__}: {reason}".rstrip(": ")
        return replace(worker, trouble=f"cannot run the orchestrator: {why}")
    if not isinstance(answer, Mapping):
        return replace(worker, trouble=f"did not answer within {format_duration(_LOOK_LIMIT)}")
    version = answer.get("version")
    return replace(
        worker,
        clis=dict(answer.get("clis") or {}),
        version=str(version) if version is not None else None,
        unseen=tuple(str(path) for path in answer.get("unseen") or ()),
    )


def look_on_worker(clis: list[Cli], directories: list[str]) -> dict[str, Any]:
    """Run on each worker: its agent CLIs, as its own environment has them, the orchestrator's
    version there, and which of ``directories`` it cannot see."""
    return {
        "clis": {cli.program: probe(cli, os.environ) for cli in clis},
        "version": __version__,
        "unseen": [path for path in directories if not os.path.isdir(path)],
    }


def worker_problems(workers: Sequence[Worker], version: str = __version__) -> list[str]:
    """A line for each worker that cannot run the orchestrator (it cannot import it, or gave no
    answer), runs another version of it than ``version`` (the runner's: what one sends the other
    would not be read the same), or cannot see a directory the run needs there."""
    problems = []
    for worker in workers:
        if worker.trouble is not None:
            problems.append(f"worker {worker.name} {worker.trouble}")
            continue
        if worker.version != version:
            problems.append(
                f"worker {worker.name} runs orchestrator {worker.version}, this runner {version}: "
                "install the same version on every worker"
            )
        problems += [
            f"worker {worker.name} cannot see {path}: set shared_filesystem: false, or mount it at the same path"
            for path in worker.unseen
        ]
    return problems


def cli_problems(workers: Sequence[Worker], backend: str, cli: Cli, needed: str) -> list[str]:
    """A line for each worker that would run ``backend``'s tasks (those that declare it as a
    resource, when some do; else all) and lacks its CLI (``needed``: by which tasks, or how to
    install it) or its login; a worker that cannot run the orchestrator is told of once, above."""
    problems = []
    for worker in [w for w in workers if backend in w.resources] or workers:
        if worker.trouble is not None:
            continue
        found = worker.clis.get(cli.program)
        if found is None or not found.installed:
            problems.append(f"worker {worker.name} has no {cli.program}{needed}")
        elif found.logged_in is False:
            problems.append(f"worker {worker.name}: {cli.program}: {found.login}")
    return problems


def needed_clis(plan: Plan, profiles: Profiles, only: Sequence[str] | None = None) -> dict[str, tuple[Cli, list[str]]]:
    """The agent CLIs the tasks to run start, each with those tasks: backend -> (cli, tasks)."""
    wanted = set(only) if only is not None else None
    found: dict[str, tuple[Cli, list[str]]] = {}
    for task in plan.tasks.values():
        if wanted is not None and task.id not in wanted:
            continue
        backend = profiles.settings_for(plan, task).backend
        cli = backends.get(backend).cli()
        if cli is not None:
            found.setdefault(backend, (cli, []))[1].append(task.id)
    return found


def check(
    cluster: Cluster,
    plan: Plan,
    profiles: Profiles,
    only: Sequence[str] | None = None,
    *,
    directories: Sequence[str] = (),
    version: str = __version__,
) -> None:
    """Raise ``ClusterError`` (one line) when the cluster cannot run the tasks: its scheduler does
    not answer, it has no worker, a worker cannot run the orchestrator (``version``: the
    runner's) or cannot see ``directories`` (the project's, with a shared filesystem), or the
    workers that would run a task lack its agent CLI or its login (those that declare the
    backend as a resource, when some do; else all)."""
    needs = needed_clis(plan, profiles, only)
    clis = [cli for cli, _ in needs.values()]
    workers = anyio.run(inspect, cluster.scheduler, clis, cluster.timeout, directories)
    if not workers:
        raise ClusterError(
            f"the Dask scheduler at {cluster.scheduler} has no worker — start one: "
            f"dask worker {cluster.scheduler} — nothing was started"
        )
    problems = worker_problems(workers, version)
    for backend, (cli, tasks) in needs.items():
        problems += cli_problems(workers, backend, cli, f" (needed by {listed(tasks[:3], len(tasks))})")
    problems += missing_resources(workers, asked_resources(plan, profiles, only))
    if problems:
        raise ClusterError("; ".join(problems) + " — nothing was started; `orchestrator doctor` shows the cluster")


def asked_resources(
    plan: Plan, profiles: Profiles, only: Sequence[str] | None = None
) -> dict[tuple[str, str, float], list[str]]:
    """What the tasks to run ask of a worker through their profiles' ``resources``: (profile,
    resource, amount) -> the tasks."""
    wanted = set(only) if only is not None else None
    found: dict[tuple[str, str, float], list[str]] = {}
    for task in plan.tasks.values():
        profile = profiles.get(task.profile)
        if profile is None or (wanted is not None and task.id not in wanted):
            continue
        for name, amount in profile.resources:
            found.setdefault((profile.name, name, amount), []).append(task.id)
    return found


def missing_resources(workers: Sequence[Worker], asked: Mapping[tuple[str, str, float], list[str]]) -> list[str]:
    """A line for each resource a profile asks for that no worker has as much of (Dask would hold
    its attempts until such a worker came: a run that hangs), naming the workers' resources."""
    problems = []
    for (profile, name, amount), tasks in asked.items():
        if any(worker.resources.get(name, 0) >= amount for worker in workers):
            continue
        having = "; ".join(
            f"{w.name}: {', '.join(f'{k}={v:g}' for k, v in sorted(w.resources.items())) or 'none'}" for w in workers
        )
        problems.append(
            f"profile {profile} asks for resource {name}={amount:g} (needed by {listed(tasks[:3], len(tasks))}), "
            f"which no worker has — the workers' resources: {having}"
        )
    return problems


def survey(
    address: str,
    needed: Sequence[str],
    timeout: float | None = None,
    asked: Mapping[tuple[str, str, float], list[str]] | None = None,
    *,
    directories: Sequence[str] = (),
    version: str = __version__,
) -> tuple[list[Worker], list[str]]:
    """``doctor --executor dask``: the cluster's workers, each with the CLIs of the backends
    ``needed`` as it has them, and what is wrong (no answer, no worker, a worker that cannot run
    the orchestrator, runs another version than ``version`` or cannot see ``directories``, a CLI
    missing on a worker or without its login, a resource the profiles ask for, ``asked``, that no
    worker has), each a line."""
    clis = {name: cli for name in needed if (cli := backends.get(name).cli()) is not None}
    try:
        workers = anyio.run(inspect, address, list(clis.values()), timeout, directories)
    except ClusterError as exc:
        return [], [str(exc)]
    if not workers:
        return [], [f"the Dask scheduler at {address} has no worker — start one: dask worker {address}"]
    problems = worker_problems(workers, version)
    for backend, cli in clis.items():
        problems += cli_problems(workers, backend, cli, f": {cli.install}")
    return workers, problems + missing_resources(workers, asked or {})
