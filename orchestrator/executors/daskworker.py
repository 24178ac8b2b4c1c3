"""The Dask side of a worker: the task Dask runs for an attempt (``on_worker``: a claim, then
``remote.supervise``, its output put on a queue named by its key), and what a runner asks of every
worker or of the scheduler by function (stop keys, which run, which the scheduler still holds).

Apart from ``executors/dask`` (the runner's side) so that each stays short; ``distributed`` is
imported only when called (the ``dask`` extra).
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import sys
import time
from typing import Any

from orchestrator import timing
from orchestrator.errors import GitError
from orchestrator.executors import luggage, remote

PYTHON_VARIABLE = "ORCHESTRATOR_PYTHON"


def on_worker(spec: remote.Spec) -> remote.Ended:
    """The task Dask runs: the attempt's process, supervised on this worker."""
    distributed = distributed_package()
    worker = distributed.get_worker()
    client = distributed.get_client()
    if spec.claim:
        claim = distributed.Event(f"{spec.key}-claimed", client=client)
        if claim.is_set():  # Dask runs it again after losing the worker that ran it: refused
            return remote.Ended(info={"rerun": True, "worker": str(worker.name)})
        claim.set()
    # The interpreter that runs the orchestrator here (the channels: "$ORCHESTRATOR_PYTHON" -m
    # orchestrator share ...): the worker's, not the runner's, which this machine may not have.
    spec = dataclasses.replace(spec, env={**spec.env, PYTHON_VARIABLE: sys.executable})
    unpacked = None
    if spec.luggage is not None:  # no shared filesystem: its files and checkout, in a directory of its own
        try:
            unpacked = luggage.unpack(spec.luggage, spec.env, tuple(spec.argv), worker.local_directory)
        except (GitError, OSError) as exc:
            return remote.Ended(start_error=f"its files on the worker: {exc}", info={"worker": str(worker.name)})
        spec = dataclasses.replace(spec, argv=unpacked.argv, cwd=unpacked.cwd, env=unpacked.env)
    queue: list[Any] = []  # made when it is first sent to (an attempt that is over in half a second is not)
    began = time.monotonic()
    announce = timing.current().announce

    def send(batch: remote.Chunks) -> None:
        if not queue:  # the first batch says where it runs, for `status` to say while it runs
            queue.append(distributed.Queue(spec.key, client=client))
            batch = [("worker", str(worker.name).encode()), *batch]
        queue[0].put(batch)

    def stop_requested() -> bool:
        """The runner cancelled its task, or is gone (the scheduler cancels a lost client's
        tasks), or this worker is closing (it lost its scheduler, or is told to stop). (Asked every
        ``timing.worker_poll``: an attempt silent for ``timing.announce`` seconds says where it runs.)"""
        if not queue and time.monotonic() - began >= announce:
            send([])
        if getattr(worker.status, "name", "running") not in ("running", "paused"):
            return True
        state = worker.state.tasks.get(spec.key)
        return state is None or state.state not in ("executing", "long-running")

    try:
        ended = remote.supervise(spec, send, stop_requested)
        if unpacked is not None and spec.luggage is not None:
            try:
                ended.info["returned"] = luggage.gather(spec.luggage, unpacked)
            except (GitError, OSError) as exc:
                ended.info["unreturned"] = str(exc)
    finally:
        if unpacked is not None:
            shutil.rmtree(unpacked.place, ignore_errors=True)
    ended.info["worker"] = str(worker.name)
    ended.info["sent"] = bool(queue)
    return ended


def allowed_failures(dask_scheduler: Any = None) -> int:
    """On the scheduler: how many times it runs a task again after losing its worker."""
    return int(dask_scheduler.allowed_failures)


def release_on_scheduler(keys: list[str], client: str, dask_scheduler: Any = None) -> None:
    """On the scheduler, in this order: ``client`` wants ``keys`` no more, and their claims
    (``{key}-claimed`` Events) are dropped where no one else wants the key. Said as two messages
    (the future's release on the client's stream, the Event's clear as a call of its own) the
    clear could come first: a worker lost in between and Dask ran the attempt again elsewhere,
    its claim gone, to refuse nothing."""
    if client in dask_scheduler.clients:
        dask_scheduler.client_releases_keys(keys=list(keys), client=client)
    events = dask_scheduler.extensions.get("events")
    for key in keys:
        task = dask_scheduler.tasks.get(key)
        if events is not None and (task is None or not task.who_wants):
            events.event_clear(name=f"{key}-claimed")


async def stop_on_worker(keys: list[str], grace: float) -> list[str]:
    return await asyncio.to_thread(remote.stop, keys, grace)


def running_on_worker(keys: list[str], running_only: bool = True, dask_worker: Any = None) -> list[str]:
    """Which of ``keys`` run on this worker (their process groups); unless ``running_only``, with
    those its Dask task for will still run or still winds up (waiting for a thread or a
    resource, or cancelled while its thread is still on it)."""
    found = set(remote.running(keys))
    if not running_only and dask_worker is not None:
        tasks = dask_worker.state.tasks
        found.update(key for key in keys if key in tasks and tasks[key].state in _ON_WORKER)
    return sorted(found)


def pending_on_scheduler(keys: list[str], dask_scheduler: Any = None) -> list[str]:
    """On the scheduler: which of ``keys`` it still means to run, or runs."""
    tasks = dask_scheduler.tasks
    return [key for key in keys if key in tasks and tasks[key].state in _ON_SCHEDULER]


_ON_SCHEDULER = frozenset({"waiting", "queued", "no-worker", "processing"})
_ON_WORKER = frozenset({"waiting", "ready", "constrained", "executing", "long-running", "cancelled", "resumed"})


def distributed_package() -> Any:
    """The ``distributed`` package (the ``dask`` extra), imported when a cluster is used."""
    import importlib

    return importlib.import_module("distributed")
