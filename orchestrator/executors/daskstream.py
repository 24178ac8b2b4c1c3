"""The runner's side of an attempt's output on a Dask cluster: the queue on the scheduler its
batches come through (``Output``), and the complete lines read from them as they come (``Lines``)."""

from __future__ import annotations

import contextlib
from typing import Any

from orchestrator.executors.base import LineCallback
from orchestrator.executors.daskworker import distributed_package as _distributed

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
