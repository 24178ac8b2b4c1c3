"""The runner's side of an attempt's output on a Dask cluster: the queue on the scheduler its
batches come through (``Output``), and where each batch goes (``Arrivals``: its logs, redacted as
locally, and its lines, ``executors/attemptlog``; the worker that runs it)."""

from __future__ import annotations

import contextlib
from typing import Any

from orchestrator.executors.attemptlog import logs
from orchestrator.executors.base import Launch, LineCallback, StartCallback
from orchestrator.executors.daskworker import distributed_package as _distributed

Client = Any  # distributed.Client (only partly typed)


class Output:
    """The queue on the scheduler an attempt's output comes through, made when first looked at:
    an attempt that ends before the first look and sent nothing costs no round trip."""

    def __init__(self, client: Client, key: str) -> None:
        self.client = client
        self.key = key
        self.queue: Any = None

    @property
    def made(self) -> bool:
        return self.queue is not None

    async def take(self) -> Any:
        if self.queue is None:
            queue = _distributed().Queue(self.key, client=self.client)
            await queue._started  # made on the scheduler (``await queue`` would ask a second time)
            self.queue = queue
        return await self.queue.get(batch=True)

    def close(self) -> None:
        """Release it on the scheduler (a message, not a round trip)."""
        if self.queue is not None:
            with contextlib.suppress(Exception):
                self.queue.close()
        elif self.client.status == "running":  # (the worker may have made it)
            self.client._send_to_scheduler({"op": "queue_release", "name": self.key})


class Arrivals:
    """Where an attempt's batches go as they come: its stdout and stderr logs (capped as locally),
    its lines, and once, the worker that runs it (told as its handle again, with that worker)."""

    def __init__(self, launch: Launch, handle: dict[str, str], on_start: StartCallback | None,
                 on_line: LineCallback | None) -> None:  # fmt: skip
        self.out_log, self.err_log = logs(launch, on_line)
        self.handle = handle
        self.on_start = on_start
        self.worker: str | None = None  # the worker that runs it, once it says

    def take(self, items: Any) -> None:
        for batch in items or ():
            for stream, chunk in batch:
                if stream == "worker":  # where it runs, said once: the handle again, with its worker
                    self.worker = chunk.decode()
                    if self.on_start is not None:
                        self.on_start({**self.handle, "worker": self.worker})
                    continue
                (self.out_log if stream == "out" else self.err_log).write(chunk)
        self.out_log.flush()
        self.err_log.flush()

    def end(self) -> None:
        """The attempt's output has all come: what its logs held back is written."""
        self.out_log.end()
        self.err_log.end()
