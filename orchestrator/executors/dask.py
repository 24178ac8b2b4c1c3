"""``DaskExecutor``: each attempt runs as a process on a worker of a Dask cluster.

The runner stays the one decision core and the one writer of ``.orchestrator/``: admission,
limits, retries, the journal and the results are where they are locally. Only the process moves:

    run(launch) ──submit(key, pure=False, retries=0, resources)──▶ a worker's thread:
        claim the key (an attempt Dask would run a second time after losing its worker is
        refused, not run: the runner retries it under the task's own policy) ──▶
        remote.supervise: the process in a session of its own, its limits and kill grace
        enforced there, its output sent to the runner in batches through a Queue named by the
        key while it runs ──▶ how it ended, with its worker's name
    the runner writes the logs and reads the lines from the batches as they come, as locally.

Cancel (``cancel``, Ctrl-C, ``--fail-fast``, a budget stop): Dask's cancel does not interrupt a
running task, so the runner asks every worker to stop the key's process group
(``remote.stop``: SIGTERM, the grace, SIGKILL) and waits for that, then cancels the future. A
runner that dies (``kill -9``) drops its client: the scheduler cancels its futures, and the
worker's supervisor, seeing its task cancelled, stops the process; the next run's ``settle``
cancels the dead runner's keys on the scheduler itself (it may not have yet: a runner's machine
that vanished never closes its connection) and asks the workers to stop whatever of them still
runs, and returns once none runs or will. An attempt's claim on the scheduler is dropped once
Dask can no longer run it (its future released): a long-lived cluster keeps none.

A worker lost mid-attempt (``KilledWorker``, or Dask's re-run refused) is a ``ProcessRun`` with
``lost`` set (and the worker it ran on): a transient failure of that attempt, retried on another
worker by the task's retry policy. So is an attempt no worker can run for a while (``placement``:
the only worker with a resource it asks for was lost, or none is left): Dask would hold it for
ever. An attempt that resumes an agent session runs on the worker that holds the session
(``Launch.worker``, ``placement``). The handle of an attempt is ``{"key": ..., "scheduler": ...}``,
and once a worker runs it, with its ``worker``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio

from orchestrator import timing
from orchestrator.errors import ClusterError, GitError
from orchestrator.executors import luggage, placement, remote
from orchestrator.executors.base import Executor, Launch, Leftover, LineCallback, ProcessRun, StartCallback
from orchestrator.executors.capabilities import Capabilities, Cluster, Setup
from orchestrator.executors.daskscheduler import (
    SCHEDULER_VARIABLE,
    Client,
    connect,
    connect_timeout,
    prompt,
    scheduler_address,
    workers_of,
)
from orchestrator.executors.daskstream import Arrivals, Output
from orchestrator.executors.daskworker import (
    allowed_failures,
    on_worker,
    pending_on_scheduler,
    release_on_scheduler,
    running_on_worker,
    stop_on_worker,
)
from orchestrator.executors.daskworker import distributed_package as _distributed

_POLL_LIMIT = 30.0  # seconds a look may take (a poll under way is finished, not cut: a batch taken would be lost)


class DaskExecutor(Executor):
    name = "dask"
    can = Capabilities(recoverable=True, cluster=True)

    def __init__(self, scheduler: str | None = None, *, timeout: float | None = None, shared: bool = True) -> None:
        """``scheduler``: its address (None: ``$ORCHESTRATOR_DASK_SCHEDULER``'s, else, to settle a
        dead runner's attempts, the one their handles name); ``timeout``: the seconds it has to
        answer (``timing.dask_timeout`` when None)."""
        self.scheduler = scheduler if scheduler is not None else os.environ.get(SCHEDULER_VARIABLE, "")
        self.timeout = timing.current().dask_timeout if timeout is None else timeout
        self.shared = shared  # whether the workers see the project at its path (else: ``luggage``)
        self._client: Client | None = None
        self._declared: set[str] | None = None  # the resources some worker declares
        self._seen: dict[str, placement.Resources] = {}  # every worker this run saw: name -> its resources
        self._reruns: bool | None = None  # whether the scheduler re-runs a task whose worker died
        self._running: dict[str, str] = {}  # key -> task, of this run's attempts on the cluster
        self._ready_lock: anyio.Lock | None = None

    @classmethod
    def made(cls, setup: Setup) -> DaskExecutor:
        """The executor of ``--executor dask`` (``scheduler_address``, ``connect_timeout``)."""
        return cls(scheduler_address(setup), timeout=connect_timeout(), shared=setup.shared)

    @property
    def cluster(self) -> Cluster:
        return Cluster(self.scheduler, self.timeout, self.shared)

    async def client(self) -> Client:
        """The client of this run (made on the first call, on the running event loop, and again
        when the last one lost its scheduler); a scheduler that does not answer is a
        ``ClusterError``: one line with its address."""
        if self._client is not None and self._client.status not in ("running", "connecting"):
            client, self._client = self._client, None
            await _quietly(client.close(timeout=1))
        if self._client is None:
            self._client = await connect(self.scheduler, self.timeout)
        return prompt(self._client)

    async def declared(self) -> set[str]:
        """The resources the workers declare (``dask worker --resources claude=4``)."""
        if self._declared is None:
            workers = await workers_of(await self.client())
            self._declared = {name for info in workers.values() for name in (info.get("resources") or {})}
            self._seen.update({str(i.get("name", a)): dict(i.get("resources") or {}) for a, i in workers.items()})
        return self._declared

    async def has_worker(self, name: str) -> bool:
        """Whether the worker named ``name`` is on the cluster now (a scheduler that does not
        answer: it is not)."""
        try:
            return placement.address_of(await workers_of(await self.client()), name) is not None
        except Exception:  # (a scheduler that does not answer, nor a worker then)
            return False

    async def reruns(self) -> bool:
        """Whether the scheduler runs a task again after losing its worker (its
        ``distributed.scheduler.allowed-failures`` above 0, Dask's default 3): then each attempt
        claims its key on the scheduler first, and a second run of it is refused."""
        if self._reruns is None:
            client = await self.client()
            try:
                self._reruns = bool(await client.run_on_scheduler(allowed_failures))
            except Exception:  # (a scheduler that refuses to run a function: assume the default)
                self._reruns = True
        return self._reruns

    async def _ready(self) -> tuple[Client, set[str], bool]:
        """The client, the resources declared and whether to claim, made once however many
        attempts ask at the same moment: the first attempts of a run start together, and each
        made a client of its own (all but one left open, heartbeating, the whole run long)."""
        if self._ready_lock is None:
            self._ready_lock = anyio.Lock()
        async with self._ready_lock:
            return await self.client(), await self.declared(), await self.reruns()

    async def run(
        self, launch: Launch, *, on_start: StartCallback | None = None, on_line: LineCallback | None = None
    ) -> ProcessRun:
        began = anyio.current_time()
        try:
            client, declared, claim = await self._ready()
        except (ClusterError, OSError) as exc:  # the scheduler went away mid-run and does not come back
            why = str(exc) if isinstance(exc, ClusterError) else f"the Dask scheduler at {self.scheduler}: {exc}"
            return ProcessRun(None, None, anyio.current_time() - began, start_error=why)
        key = f"orchestrator-{launch.task}-{launch.attempt}-{uuid.uuid4().hex[:12]}"
        submission = await self._submission(launch, key, client, declared, claim)
        if isinstance(submission, ProcessRun):  # it cannot go, and why
            return dataclasses.replace(submission, duration=anyio.current_time() - began)
        handle = {"key": key, "scheduler": self.scheduler}
        if on_start is not None:
            on_start(handle)
        arrivals = Arrivals(launch, handle, on_start, on_line)
        ended, lost, failed = await self._followed(launch, client, claim, submission, arrivals)
        run = ProcessRun(None, None, anyio.current_time() - began, stdout_bytes=arrivals.out_log.count,
                         stderr_bytes=arrivals.err_log.count, worker=arrivals.worker)  # fmt: skip
        return await _ended_as(launch, run, ended, lost, failed, submission.packed)

    async def _submission(
        self, launch: Launch, key: str, client: Client, declared: set[str], claim: bool
    ) -> _Submission | ProcessRun:
        """What goes to the cluster for ``launch``: its spec (its files packed with it when the
        workers see no shared filesystem), the resources it asks, the worker it is pinned to when it
        resumes a session there; or, when it cannot go, the attempt that never started (its
        ``start_error``; ``lost`` when the worker that holds its session is gone)."""
        limits = launch.limits
        packed = None
        if not self.shared:  # what it needs of this machine travels with it
            workspace = Path(launch.env.get("ORCHESTRATOR_WORKSPACE") or launch.cwd)
            try:
                packed = await anyio.to_thread.run_sync(
                    luggage.pack, workspace, launch.cwd, launch.env, tuple(launch.command()), launch.checkout
                )
            except (GitError, OSError) as exc:
                return ProcessRun(None, None, 0.0, start_error=f"its files for the worker: {exc}")
        stdin = launch.stdin.read_bytes() if launch.stdin is not None else None
        spec = remote.Spec(key, launch.command(), str(launch.cwd), added_environment(launch.env), stdin,
                           limits.timeout, limits.inactivity, limits.grace, claim=claim, luggage=packed)  # fmt: skip
        resources: dict[str, float] = {name: 1 for name in launch.resources if name in declared}
        resources.update(launch.asks)  # (the run checked first that some worker declares them)
        pinned: list[str] | None = None  # resuming a session: on the worker that holds it, and no other
        if launch.worker is not None:
            address = placement.address_of(await _quietly(workers_of(client)) or {}, launch.worker)
            if address is None:
                why = f"its agent session is on worker {launch.worker}, which is gone"
                return ProcessRun(None, None, 0.0, lost=why)
            pinned = [address]
        elif launch.avoid is not None:  # a hedge: rather on a worker with a thread free than its straggler's
            preferred = await _quietly(client.run_on_scheduler(placement.others_free, launch.avoid))
            return _Submission(spec, resources, list(preferred) if preferred else None, packed, loose=True)
        return _Submission(spec, resources, pinned, packed)

    async def _followed(
        self, launch: Launch, client: Client, claim: bool, submission: _Submission, arrivals: Arrivals
    ) -> tuple[remote.Ended | None, str | None, str | None]:
        """Submit it and take its output as it comes until it ends: how it ended (``None`` when
        it did not), why it was lost, how it failed on the worker. Stopped on every path out that is
        not its end; its key released and its claim dropped after."""
        key, limits = submission.spec.key, launch.limits
        queue = Output(client, key)
        future = client.submit(on_worker, submission.spec, key=key, pure=False, retries=0,
                               resources=submission.resources or None, workers=submission.pinned,
                               allow_other_workers=submission.loose)  # fmt: skip
        self._running[key] = launch.task
        finished = False
        wait = placement.wait_for_worker(limits.timeout)
        watch = functools.partial(
            placement.stranded, client, key, wait, submission.resources, launch.worker, self._seen
        )
        try:
            with arrivals.out_log, arrivals.err_log:
                ended, lost, failed = await _awaited(future, queue.take, arrivals.take, watch)
                if lost is not None and client.status != "running":
                    lost = f"the connection to the Dask scheduler at {self.scheduler} was lost"
                elif ended is None and lost is not None and not future.done():  # stranded: never to start later
                    await _quietly(future.cancel())
                if ended is None or ended.info.get("sent"):  # (nothing sent: no round trip to ask)
                    with contextlib.suppress(Exception):  # (a cluster gone: what came is what there is)
                        arrivals.take(await queue.take())  # what it sent before its end
                if ended is not None:
                    arrivals.take([ended.rest])
                arrivals.lines.end()
            finished = True
        finally:
            self._running.pop(key, None)
            with anyio.CancelScope(shield=True):
                if not finished:
                    await self.stop([key], limits.grace)
                    await future.cancel()
                queue.close()
                if claim and client.status == "running":  # (released first: a result lost with its worker
                    future.release()  # is then not computed again, unclaimed)
                    await _release_claims(client, [key], self.timeout)
        return ended, lost, failed

    async def stop(self, keys: Sequence[str], grace: float) -> list[str]:
        """Ask every worker to stop the attempts of ``keys`` (SIGTERM, ``grace``, SIGKILL) and
        wait for it; the keys that were running. A worker that does not answer is left (it is
        gone, and its processes with it, or it will find its tasks cancelled)."""
        if not keys:
            return []
        client = await self.client()
        with anyio.move_on_after(grace + self.timeout):
            answers = await _quietly(client.run(stop_on_worker, list(keys), grace, on_error="return"))
            if isinstance(answers, Mapping):
                return sorted({key for found in answers.values() if isinstance(found, list) for key in found})
        return []

    async def close(self) -> None:
        if self._client is None:
            return
        if self._running:
            await self.stop(list(self._running), 1.0)
        client, self._client = self._client, None
        await _quietly(client.close(timeout=self.timeout))

    async def settle(
        self, leftovers: Sequence[Leftover], *, grace: float, wait: bool, tell: Callable[[str], None] | None = None
    ) -> list[str]:
        """Stop (or with ``wait`` wait for) what of a dead runner's keys still runs on a worker,
        and cancel them on the scheduler first: it may not have done so yet (it does when it sees
        the dead runner's connection drop, which a runner's machine that vanished never closes),
        and an attempt that waits there for a worker would start later, beside its retry. Returns
        once no worker runs any of them, nor will: the tasks whose attempts were running."""
        keys = {str(o.handle["key"]): o.task for o in leftovers if o.handle and isinstance(o.handle.get("key"), str)}
        if not keys:
            return []
        if not self.scheduler:  # (made by name, to settle: the scheduler its attempts ran on)
            found = [o.handle.get("scheduler") for o in leftovers if o.handle]
            self.scheduler = next((str(address) for address in found if isinstance(address, str)), "")
        client = await self.client()
        seen: set[str] = set()
        if wait:
            seen = await self._waited(client, keys, tell)
        else:
            seen = set(await _in_flight(client, list(keys), running_only=True))
        for key in keys:  # (an attempt of them that starts late, the cancel not yet taken, refuses to run)
            await _distributed().Event(f"{key}-claimed", client=client).set()
        _cancel(client, list(keys))  # (before any is stopped: stopped, it frees a worker for one that waits)
        if not wait:
            seen.update(await self.stop(list(keys), grace))
        with anyio.move_on_after(grace + self.timeout + 5) as waited:  # (a worker that stops answering: it is gone)
            while await _in_flight(client, list(keys)):
                await anyio.sleep(timing.current().cluster_stop_poll)
        if not waited.cancelled_caught:  # none of them runs or will: their claims are done with
            await _forget_claims(client, list(keys), self.timeout)
        return sorted({keys[key] for key in seen})

    async def _waited(self, client: Client, keys: Mapping[str, str], tell: Callable[[str], None] | None) -> set[str]:
        """Wait until none of ``keys`` runs on a worker (``--wait-orphans``); the keys that did."""
        seen: set[str] = set()
        clock = timing.current()
        began = last = anyio.current_time()
        while True:
            still = await _in_flight(client, list(keys), running_only=True)
            seen.update(still)
            if not still:
                return seen
            now = anyio.current_time()
            if tell is not None and (now == began or now - last >= clock.tell_every):
                last = now
                names = ", ".join(sorted({keys[key] for key in still}))
                tell(f"⏳ waiting for what a dead runner's attempts still run on the cluster: {names} (--wait-orphans)")
            await anyio.sleep(clock.cluster_orphan_poll)


def added_environment(env: Mapping[str, str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """What a launch's environment adds to (or changes in) the runner's own: what travels to
    the worker, where the worker's own environment is the base."""
    base = os.environ if base is None else base
    return {name: value for name, value in env.items() if base.get(name) != value}


# --- helpers -----------------------------------------------------------------------------------


def _cancel(client: Client, keys: list[str]) -> None:
    """Cancel ``keys`` on the scheduler for every client that wants them (a dead runner's
    included), and release their output queues (a message each, no round trip)."""
    reason = "settled by the next run: its runner is gone"
    client._send_to_scheduler({"op": "cancel-keys", "keys": keys, "force": True, "reason": reason, "msg": reason})
    for key in keys:
        client._send_to_scheduler({"op": "queue_release", "name": key})


async def _ended_as(
    launch: Launch,
    run: ProcessRun,
    ended: remote.Ended | None,
    lost: str | None,
    failed: str | None,
    packed: Any,
) -> ProcessRun:
    """How the attempt ended, as a ``ProcessRun``; what it wrote brought back first when its
    files travelled (a worker with no shared filesystem)."""
    if failed is not None:
        return dataclasses.replace(run, start_error=f"on the worker: {failed}")
    if ended is None or ended.info.get("rerun"):
        why = lost or "Dask went to run it again elsewhere, which was refused: the task's retries decide"
        return dataclasses.replace(run, lost=why)
    worker = str(ended.info.get("worker")) if ended.info.get("worker") is not None else run.worker
    if packed is not None and ended.start_error is None:  # what it wrote, back where it would be
        problem = await _unloaded(ended, launch, packed)
        if problem is not None:
            return dataclasses.replace(run, lost=f"what it wrote did not come back from {worker}: {problem}")
    if ended.start_error is not None:
        return dataclasses.replace(run, start_error=ended.start_error, worker=worker)
    return dataclasses.replace(
        run, exit_code=ended.exit_code, signal=ended.signal, timed_out=ended.timed_out, worker=worker
    )


@dataclasses.dataclass(frozen=True, slots=True)
class _Submission:
    """What goes to the cluster for an attempt (``DaskExecutor._submission``)."""

    spec: remote.Spec
    resources: dict[str, float]
    pinned: list[str] | None  # the worker's address, when it resumes a session held there (loose: preferred)
    packed: Any  # its files, when they travel with it (``luggage``)
    loose: bool = False  # ``pinned`` only preferred: a hedge's other workers (``placement.others_free``)


async def _release_claims(client: Client, keys: list[str], timeout: float) -> None:
    """Release ``keys`` on the scheduler, then drop their claims, in one call run there
    (``release_on_scheduler``); a scheduler that runs no function is told as two messages."""
    with anyio.move_on_after(timeout, shield=True):
        try:
            await client.run_on_scheduler(release_on_scheduler, keys, client.id)
        except Exception:
            await _forget_claims(client, keys, timeout)


async def _forget_claims(client: Client, keys: list[str], timeout: float) -> None:
    """Drop the claims of ``keys`` (``{key}-claimed`` Events) on the scheduler, which keeps a set
    Event for ever: once an attempt's future is released (or its keys cancelled and none runs),
    Dask runs it no more, and its claim has nothing left to refuse."""
    with anyio.move_on_after(timeout, shield=True):
        for key in keys:
            await _quietly(_distributed().Event(f"{key}-claimed", client=client).clear())


async def _in_flight(client: Client, keys: list[str], *, running_only: bool = False) -> list[str]:
    """Which of ``keys`` run on a worker; unless ``running_only``, also those the scheduler or a
    worker will still run."""
    answers = await client.run(running_on_worker, keys, running_only, on_error="return")
    found = {key for each in answers.values() if isinstance(each, list) for key in each}
    if not running_only:
        with contextlib.suppress(Exception):  # (a scheduler that refuses to run a function: the workers say)
            found.update(await client.run_on_scheduler(pending_on_scheduler, keys))
    return sorted(found)


async def _awaited(
    future: Any, poll: Callable[[], Any], take: Callable[[Any], None], watch: Callable[[], Awaitable[str | None]]
) -> tuple[remote.Ended | None, str | None, str | None]:
    """Wait for the attempt's future, taking its output every ``timing.cluster_poll`` seconds
    meanwhile (the first look after ``timing.cluster_first_poll``, as a worker sends no batch sooner
    unless it is big: an attempt that ends sooner costs no round trip for it): (how
    it ended, why its worker was lost, what failed on the worker). A look under way when the
    future ends is finished first: cut, what it took off the queue would be lost. ``watch``
    returns why no worker can run it, once that has lasted (``placement.stranded``): then the
    wait ends, as for a lost worker."""
    distributed = _distributed()
    KilledWorker, FutureCancelledError = distributed.KilledWorker, distributed.client.FutureCancelledError

    result: list[tuple[remote.Ended | None, str | None, str | None]] = []
    async with anyio.create_task_group() as pumps:

        async def pump() -> None:
            clock = timing.current()
            delay = clock.cluster_first_poll
            while True:
                await anyio.sleep(delay)
                delay = clock.cluster_poll
                got = None
                with anyio.move_on_after(_POLL_LIMIT, shield=True):
                    try:
                        got = await poll()
                    except Exception:  # the cluster stops answering: the future says how it ended
                        return
                take(got)

        waiting = anyio.CancelScope()

        async def stranded() -> None:
            why = await watch()
            if why is not None:
                result.append((None, why, None))
                waiting.cancel()

        pumps.start_soon(pump)
        pumps.start_soon(stranded)
        try:
            with waiting:
                ended = await future
                result.append((ended, None, None) if isinstance(ended, remote.Ended) else (None, "no answer", None))
        except KilledWorker as exc:
            result.append((None, f"its worker was lost ({exc})", None))
        except FutureCancelledError:
            result.append((None, "its Dask task was cancelled on the cluster", None))
        except (TimeoutError, OSError) as exc:
            result.append((None, f"the cluster stopped answering ({type(exc).__name__}: {exc})", None))
        except Exception as exc:
            result.append((None, None, f"{type(exc).__name__}: {exc}"))
        finally:
            pumps.cancel_scope.cancel()
    return result[0]


async def _unloaded(ended: remote.Ended, launch: Launch, packed: luggage.Luggage) -> str | None:
    """Write what an attempt sent back from a worker that does not share files where it would
    be had it run here (its files in its ``cwd``, its branch's commits in its worktree); what
    kept it from coming back, if something did."""
    returned = ended.info.get("returned")
    if not isinstance(returned, luggage.Returned):
        return str(ended.info.get("unreturned") or "nothing came back")
    try:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(luggage.unload, returned, launch.cwd, launch.checkout, packed)
    except (GitError, OSError) as exc:
        return str(exc)
    return None


async def _quietly(awaitable: Any) -> Any:
    """``await awaitable``, an error of a cluster going away swallowed (``None``)."""
    try:
        return await awaitable
    except Exception:
        return None
