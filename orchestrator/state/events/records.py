"""Every event's record, by its kind: the one table ``parse``, ``read``, the reporters and the
schema read.

A new kind of event: its name in ``EventKind``, its record in ``tasks`` or ``runs`` (which
registers itself: no entry here), a method in ``reporter.EventReporter``, its line in
``output/lines`` (if it has one), and ``docs/events.schema.json`` again (``python -m
orchestrator.state.events.schema``); a test holds them together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.state.events import runs, tasks
from orchestrator.state.events.base import EventKind, EventRecord, UnknownEvent, registered

# Every record, by its kind: each registers itself as its module defines it (``EventRecord``'s
# ``__init_subclass__``), and those modules are the two imported here.
RECORDS: dict[EventKind, type[EventRecord]] = registered()
_MODULES = (runs, tasks)  # (imported for what they define)


def parse(data: Mapping[str, Any] | EventRecord) -> EventRecord | None:
    """The record a line of the log holds (a record is itself); ``None`` for a kind this version
    does not know, or a line that lacks a key its kind cannot do without."""
    if isinstance(data, EventRecord):
        return data
    try:
        record = RECORDS[EventKind(str(data.get("event")))]
    except ValueError:
        return None
    return record.from_json(data)


def read(data: Mapping[str, Any]) -> EventRecord:
    """The record a line of the log holds, whatever it holds (the log's readers hand out these):
    its kind's, else an ``UnknownEvent``; either keeps the line as it is (``line``)."""
    record = parse(data)
    if record is None:
        run = data.get("run")
        record = UnknownEvent(
            time=str(data.get("time") or ""),
            run=run if isinstance(run, str) else None,
            kind=str(data.get("event")),
            data=data,
        )
    object.__setattr__(record, "line", data)  # (frozen: set once, as it is made)
    return record
