"""Where an attempt may run on a Dask cluster: pinned to a worker, and watched when none can run it.

- **Pinned.** An attempt that resumes an agent session (``--resume SESSION``) runs on the worker
  that ran the session (``Launch.worker``): the session lives in that worker's agent config (its
  ``CLAUDE_CONFIG_DIR``), on its machine only. ``address_of`` finds that worker on the scheduler
  now, by its name; the runner submits the attempt to it alone.
- **Stranded.** Dask holds a task that no worker can run in its ``no-worker`` state, for ever: the
  only worker with a resource it asks for (``claude=1``, ``gpu``) was lost, the worker it is
  pinned to is gone, or no worker is left at all. ``stranded`` watches the attempt's key on the
  scheduler and, once that has lasted ``timing.no_worker_wait`` seconds (or the attempt's timeout, if
  shorter), says why in one line: the attempt then ends as a lost one, a transient failure its
  task's retries decide on, never a hang.
- **Elsewhere.** A straggler's hedge (``Launch.avoid``) had rather run on another worker than the
  straggler's: it is submitted preferring the workers with a thread free (``others_free``), any
  other allowed when none of them can take it.

``distributed`` is not imported here: the functions for the scheduler take what it hands them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio

from orchestrator import timing

_LOOK_LIMIT = 30.0  # seconds a look may take

Resources = dict[str, float]
Look = tuple[str | None, dict[str, Resources]]  # the key's state on the scheduler; its workers: name -> resources


def placement_on_scheduler(key: str, dask_scheduler: Any = None) -> Look:
    """On the scheduler: the state of ``key`` (None: it holds no such key) and its workers, each
    by name with the resources it declares."""
    task = dask_scheduler.tasks.get(key)
    workers = {str(ws.name): {str(k): float(v) for k, v in (ws.resources or {}).items()}
               for ws in dask_scheduler.workers.values()}  # fmt: skip
    return (str(task.state) if task is not None else None), workers


def others_free(avoid: str, dask_scheduler: Any = None) -> list[str]:
    """On the scheduler: the addresses of its running workers not named ``avoid`` that have a
    thread free (fewer tasks processing than threads): where a hedge had rather run than beside
    the straggler it races (none: Dask places it as it would any attempt)."""
    return sorted(str(ws.address) for ws in dask_scheduler.running
                  if str(ws.name) != avoid and len(ws.processing) < ws.nthreads)  # fmt: skip


def wait_for_worker(timeout: float | None) -> float:
    """How long an attempt may wait for a worker that can run it: ``timing.no_worker_wait``, or
    its timeout if shorter."""
    most = timing.current().no_worker_wait
    return min(most, timeout) if timeout else most


def address_of(workers: Mapping[str, Mapping[str, Any]], name: str) -> str | None:
    """The address of the worker named ``name`` among ``workers`` (address -> what the scheduler
    says of each), or None when none is so named now."""
    return next((address for address, info in workers.items() if str(info.get("name", address)) == name), None)


_WAITING = frozenset({"released", "waiting", "queued", "no-worker"})  # not on a worker


def is_stranded(state: str | None, workers: Mapping[str, Resources]) -> bool:
    """Whether a key in ``state`` waits for a worker no worker of ``workers`` is: Dask says
    ``no-worker``, or it waits on a cluster left with no worker at all."""
    return state == "no-worker" or (not workers and state in _WAITING)


def why_stranded(
    asked: Mapping[str, float], pinned: str | None, now: Mapping[str, Resources], seen: Mapping[str, Resources]
) -> str:
    """One line: why no worker of ``now`` can run an attempt that asks for ``asked`` (pinned to the
    worker named ``pinned``, if so), naming the workers of ``seen`` (every worker the run saw, with
    its resources) that could and are gone."""
    gone = sorted(set(seen) - set(now))
    if not now:
        return "the cluster has no worker now" + (f": {_lost(gone)}" if gone else "")
    if pinned is not None and pinned not in now:
        return f"its agent session is on worker {pinned}, which is gone"
    for name, amount in sorted(asked.items()):
        if any(resources.get(name, 0.0) >= amount for resources in now.values()):
            continue
        had = [worker for worker in gone if seen[worker].get(name, 0.0) >= amount]
        wanted = f"{name}={amount:g}"
        if len(had) == 1:
            return f"no worker has {wanted} now: the only one, {had[0]}, was lost"
        return f"no worker has {wanted} now" + (f": {_lost(had)}" if had else "")
    wanted = ", ".join(f"{name}={amount:g}" for name, amount in sorted(asked.items()))
    return f"no worker can run it now (it asks for {wanted}" + (f" on {pinned}" if pinned else "") + ")"


def _lost(names: list[str]) -> str:
    return f"{names[0]} was lost" if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]} were lost"


async def stranded(
    client: Any, key: str, limit: float, asked: Mapping[str, float], pinned: str | None, seen: dict[str, Resources]
) -> str | None:
    """Watch an attempt's ``key`` on the scheduler of ``client`` (a ``distributed.Client``) until
    no worker could run it for ``limit`` seconds in a row: then why, in one line. None when the
    scheduler stops answering (the attempt's future says how it ended). ``seen`` gathers every
    worker looked at, for the reason to name the ones lost."""
    since: float | None = None
    while True:
        await anyio.sleep(timing.current().placement_poll)
        try:
            with anyio.fail_after(_LOOK_LIMIT):
                state, workers = await client.run_on_scheduler(placement_on_scheduler, key)
        except Exception:  # (a scheduler that refuses to run a function, or is gone)
            return None
        seen.update(workers)
        if not is_stranded(state, workers):
            since = None
            continue
        now = anyio.current_time()
        since = now if since is None else since
        if now - since >= limit:
            return why_stranded(asked, pinned, workers, seen)
