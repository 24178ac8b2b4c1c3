"""Executors: where an attempt runs. The runner talks only to ``Executor``.

``LocalExecutor`` runs each attempt as a process group on this machine; ``FakeExecutor`` runs
nothing and says so, for tests and demos. Those two are imported when first asked for (PEP 562):
``validate`` and ``render`` load the backends, which need only the records in ``base``, and
importing anyio and asyncio would cost them a tenth of their start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator import lazy
from orchestrator.executors.base import Executor, Handle, Launch, Leftover, Limits, ProcessRun

if TYPE_CHECKING:
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
        "FAKE_BANNER": "orchestrator.executors.fake",
        "FakeExecutor": "orchestrator.executors.fake",
        "Reply": "orchestrator.executors.fake",
        "LocalExecutor": "orchestrator.executors.local",
    },
)


def named(name: str) -> Executor:
    """The executor called ``name`` (``local``, ``dask`` or ``fake``); ``KeyError`` for another. A
    ``dask`` one made so knows its scheduler from ``$ORCHESTRATOR_DASK_SCHEDULER``, else from the
    handles of the attempts it is asked to settle."""
    import os

    from orchestrator.executors.fake import FakeExecutor
    from orchestrator.executors.local import LocalExecutor

    if name == "dask":
        from orchestrator.executors.dask import SCHEDULER_VARIABLE, DaskExecutor

        return DaskExecutor(os.environ.get(SCHEDULER_VARIABLE, ""))
    executors: dict[str, type[Executor]] = {"local": LocalExecutor, "fake": FakeExecutor}
    return executors[name]()
