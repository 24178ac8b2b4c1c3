"""The scheduler of a Dask cluster: where it is (``--scheduler``, the plan's ``scheduler`` setting,
``$ORCHESTRATOR_DASK_SCHEDULER``), how long it has to answer, a client of it, and its workers as it
lists them. ``distributed`` is imported only when a client is made."""

from __future__ import annotations

import os
from typing import Any

import anyio

from orchestrator import timing
from orchestrator.errors import ClusterError, UsageError
from orchestrator.executors.capabilities import Setup
from orchestrator.executors.daskworker import distributed_package as _distributed
from orchestrator.plan.config.settings import format_duration

Client = Any  # distributed.Client (only partly typed): used through ``_distributed()``

SCHEDULER_VARIABLE = "ORCHESTRATOR_DASK_SCHEDULER"  # the scheduler's address when neither option nor setting gives it
TIMEOUT_VARIABLE = "ORCHESTRATOR_DASK_TIMEOUT"  # the seconds it has to answer (default ``timing.dask_timeout``)
SEND_INTERVAL = 0.001  # the longest a run's client holds a message to the scheduler (Dask's own: 10 ms)


def scheduler_address(setup: Setup) -> str:
    """The scheduler of a run: ``--scheduler``, else the plan's ``scheduler`` setting (``setup``),
    else ``$ORCHESTRATOR_DASK_SCHEDULER``; ``UsageError`` when none says."""
    address = setup.scheduler or os.environ.get(SCHEDULER_VARIABLE, "")
    if not address:
        raise UsageError(
            f"--executor dask needs a scheduler: give --scheduler tcp://HOST:8786, the plan's `scheduler` "
            f"setting or ${SCHEDULER_VARIABLE}"
        )
    return address


def connect_timeout() -> float:
    """The seconds a scheduler has to answer: ``$ORCHESTRATOR_DASK_TIMEOUT``, default
    ``timing.dask_timeout`` (10)."""
    text = os.environ.get(TIMEOUT_VARIABLE, "")
    try:
        return float(text) if text else timing.current().dask_timeout
    except ValueError:
        raise UsageError(f"${TIMEOUT_VARIABLE}: '{text}' is not a number of seconds") from None


async def connect(address: str, timeout: float | None = None) -> Client:
    """A client of the scheduler at ``address`` on the running event loop, or ``ClusterError``;
    ``timeout``: seconds it has to answer (``timing.dask_timeout`` when None). An attempt's end
    comes back through the scheduler, unless Dask's own setting
    ``distributed.client.direct-to-workers`` (``DASK_DISTRIBUTED__CLIENT__DIRECT_TO_WORKERS=true``)
    says this machine reaches the workers: then from its worker, a hop less."""
    timeout = timing.current().dask_timeout if timeout is None else timeout
    _distributed()  # (imported first: it sets its loggers' levels as it loads)
    quiet()
    try:
        with anyio.fail_after(timeout + 5):
            client: Client = await _distributed().Client(
                address, asynchronous=True, timeout=timeout, set_as_default=False, direct_to_workers=None
            )
    except (OSError, TimeoutError, ValueError) as exc:
        timed_out = isinstance(exc, TimeoutError) or "timed out" in str(exc).lower()
        detail = "" if timed_out or not str(exc) else f" ({str(exc).splitlines()[0]})"
        raise ClusterError(
            f"the Dask scheduler at {address} did not answer within {format_duration(timeout)}{detail} — "
            f"start it (`dask scheduler`) or give its address with --scheduler or ${SCHEDULER_VARIABLE}"
        ) from None
    return prompt(client)


def prompt(client: Client) -> Client:
    """``client``, sending to the scheduler within ``SEND_INTERVAL``. Dask's client holds each
    message up to 10 ms to batch it with the next; an attempt's submit is one, and no worker can
    start the attempt before it arrives: at 8 attempts in flight that was some 5 ms of every
    attempt's start (bench/RESULTS.md, W9). A run sends a few messages an attempt, never a flood.
    (Asked again of every client a run uses: Dask makes its stream anew when it reconnects.)"""
    stream = getattr(client, "scheduler_comm", None)
    if stream is not None and getattr(stream, "interval", 0) > SEND_INTERVAL:
        stream.interval = SEND_INTERVAL
    return client


def quiet() -> None:
    """Our one line for what goes wrong, not distributed's log lines and tracebacks on stderr."""
    import logging

    for name in [*logging.root.manager.loggerDict, "distributed"]:
        if name == "distributed" or name.startswith(("distributed.", "tornado")):
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)


async def workers_of(client: Client) -> dict[str, dict[str, Any]]:
    """The scheduler's workers: address -> what it says of each (name, nthreads, resources)."""
    identity = await client.scheduler.identity(n_workers=-1)
    workers = identity.get("workers") or {}
    return {str(address): dict(info) for address, info in workers.items()}
