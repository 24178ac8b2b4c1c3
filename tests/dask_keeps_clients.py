"""A ``dask scheduler --preload`` for the tests: a client whose connection breaks is never
forgotten, so its tasks are not cancelled, as when the runner's machine vanished without closing
its connection (a client that closes itself, ``close-client``, is still removed).

It makes "the next run starts before the scheduler has cancelled the dead runner's attempts"
certain instead of a race the scheduler would win in milliseconds.
"""

from __future__ import annotations

from typing import Any


def dask_setup(scheduler: Any) -> None:
    def keep(client: str, stimulus_id: str | None = None) -> None:
        return None

    scheduler.remove_client = keep
