"""Events: what runs and commands tell, one typed record per kind, and ``state/events.jsonl``, where
every one is kept.

``base`` (``EventKind``, ``EventRecord``, a record as JSON and back, the schema ``VERSION``),
``tasks`` and ``runs`` (the records), ``records`` (every record by its kind: ``parse``),
``reporter`` (``EventReporter``: a method per kind, the one interface every reader of events
implements), ``schema`` (the JSON Schema of the lines, ``docs/events.schema.json``) and ``log``
(the file: appended to, read back as records), whose names this package exports, with
``EventRecord`` and ``UnknownEvent``, what its readers hand out.
"""

from orchestrator.state.events.base import EventRecord, UnknownEvent
from orchestrator.state.events.log import (
    EVENTS_NAME,
    LIMITS,
    STOPPED_ON_ERROR,
    Cursor,
    EventLog,
    added_limits,
    append,
    each,
    holding,
    last_finished,
    last_run,
    last_run_seconds,
    last_run_start,
    limits,
    live_run,
    own_limits,
    ran_with,
    read_all,
    read_new,
    run_slots,
    runner_alive,
    size,
    stopped_on_error,
    task_limits,
)

__all__ = [
    "EVENTS_NAME",
    "LIMITS",
    "STOPPED_ON_ERROR",
    "Cursor",
    "EventLog",
    "EventRecord",
    "UnknownEvent",
    "added_limits",
    "append",
    "each",
    "holding",
    "last_finished",
    "last_run",
    "last_run_seconds",
    "last_run_start",
    "limits",
    "live_run",
    "own_limits",
    "ran_with",
    "read_all",
    "read_new",
    "run_slots",
    "runner_alive",
    "size",
    "stopped_on_error",
    "task_limits",
]
