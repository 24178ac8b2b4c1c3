"""Executors: where an attempt runs. The runner talks only to ``Executor``.

``LocalExecutor`` runs each attempt as a process group on this machine; ``FakeExecutor`` runs
nothing and says so, for tests and demos; ``registry`` lists every executor by name and what each
can do. The executors are imported when first asked for (PEP 562): ``validate`` and ``render``
load the backends, which need only the records in ``base``, and importing anyio and asyncio would
cost them a tenth of their start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator import lazy
from orchestrator.executors.registry import named

if TYPE_CHECKING:
    from orchestrator.executors.base import Executor, Handle, Launch, Leftover, Limits, ProcessRun
    from orchestrator.executors.fake import FAKE_BANNER, FakeExecutor, Reply
    from orchestrator.executors.local import LocalExecutor

__all__ = [
    "FAKE_BANNER",
    "Executor",
    "FakeExecutor",
    "Handle",
    "Launch",
    "Leftover",
    "Limits",
    "LocalExecutor",
    "ProcessRun",
    "Reply",
    "named",
]

__getattr__ = lazy.exports(
    __name__,
    {
        "Executor": "orchestrator.executors.base",
        "Handle": "orchestrator.executors.base",
        "Launch": "orchestrator.executors.base",
        "Leftover": "orchestrator.executors.base",
        "Limits": "orchestrator.executors.base",
        "ProcessRun": "orchestrator.executors.base",
        "FAKE_BANNER": "orchestrator.executors.fake",
        "FakeExecutor": "orchestrator.executors.fake",
        "Reply": "orchestrator.executors.fake",
        "LocalExecutor": "orchestrator.executors.local",
    },
)
