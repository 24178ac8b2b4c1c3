"""The runner's side of an attempt's output on a Dask cluster: the queue on the scheduler its
batches come through (``Output``), the complete lines read from them as they come (``Lines``),
and where each batch goes (``Arrivals``: its logs, its lines, the worker that runs it)."""

from __future__ import annotations

import contextlib
from typing import Any

from orchestrator.executors.base import Launch, LineCallback, StartCallback
from orchestrator.executors.daskworker import distributed_package as _distributed
from orchestrator.executors.local import _Log

Client = Any  # distributed.Client (only partly typed)

_LONGEST_LINE = 64 * 1024 * 1024  # a line longer than this with no newline is dropped, not held


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


class Lines:
    """Complete stdout lines to ``on_line``, in order, from the chunks as they come."""

    def __init__(self, on_line: LineCallback | None) -> None:
        self.on_line = on_line
        self.pending = bytearray()

    def feed(self, chunk: bytes) -> None:
        if self.on_line is None:
            return
        self.pending += chunk
        if b"\n" in chunk:
            *lines, rest = self.pending.split(b"\n")
            for line in lines:
                self.on_line(bytes(line))
            self.pending = bytearray(rest)
        elif len(self.pending) > _LONGEST_LINE:
            self.pending.clear()

    def end(self) -> None:
        if self.on_line is not None and self.pending:
            self.on_line(bytes(self.pending))
        self.pending.clear()


class Arrivals:
    """Where an attempt's batches go as they come: its stdout and stderr logs (capped as locally),
    its lines, and once, the worker that runs it (told as its handle again, with that worker)."""

    def __init__(self, launch: Launch, handle: dict[str, str], on_start: StartCallback | None,
                 on_line: LineCallback | None) -> None:  # fmt: skip
        self.out_log = _Log(launch.stdout, launch.limits.log_cap)
        self.err_log = _Log(launch.stderr, launch.limits.log_cap)
        self.lines = Lines(on_line)
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
                if stream == "out":
                    self.lines.feed(chunk)
        self.out_log.flush()
        self.err_log.flush()
