"""What every event is: its ``EventKind``, and ``EventRecord``, the frozen record each kind of event
is a subclass of, with the one way a record becomes a line of JSON and a line becomes a record.

A record's JSON is ``{"event": kind, "v": VERSION, "time": ..., its fields...}``, each field under
its own name: the keys ``state/events.jsonl``, ``run --json``, notifications and ``GET /api/events``
carry (``docs/events.schema.json`` is generated from the records). Two kinds of field say more:

- ``OPTIONAL``: a key written only when it says something (``worker``, ``reused``...): left
  out while ``None``;
- ``added(value)``: a key a version before may not have written: a line without it reads as
  ``value``. A record made by the tool always has it.

Reading is lenient, as a log kept across versions must be: keys a record does not know are left
aside, and a line without a key its record needs (and no ``added`` value) is no record of that
kind (``records.parse`` gives ``None``). The log's readers hand out a record for every line all
the same (``records.read``): such a line, or one of a kind this version does not know (a newer
version's, one written by hand), is an ``UnknownEvent``, which keeps the line as it is. A record
read from the log keeps its line too (``line``, ``as_line``: its ``prev``, its keys of other
versions), for the readers that hand it on as it was written (``watch --json``, the dashboard).
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar, Self

from orchestrator.moments import now_iso
from orchestrator.state.causes import Cause

#: The schema version each line carries as ``v``. It changes when a key is renamed, removed or
#: changes its meaning; a key added is no new version (readers ignore keys they do not know). A
#: line without ``v`` was written before versions were: it has the same keys, or fewer.
VERSION = 1

_OPTIONAL = "optional"  # field metadata: left out of the JSON while None
_ABSENT = "absent"  # field metadata: what a line without the key reads as
_CHAIN = "prev"  # the key of a line's link (``chain.KEY``), which a record's JSON has not


class EventKind(StrEnum):
    """Every kind of event, by the name its lines carry in ``event``."""

    # a run
    RUN_STARTED = "run_started"
    RUN_FINISHED = "run_finished"
    RUN_PAUSED = "run_paused"
    RUN_WAITING = "run_waiting"
    BUDGET_REACHED = "budget_reached"
    BUDGET_RAISED = "budget_raised"
    RUN_ESTIMATE = "run_estimate"
    DEADLINE_AT_RISK = "deadline_at_risk"
    DEADLINE_MISSED = "deadline_missed"
    NOTICE = "notice"
    PLAN_FILE = "plan_file"
    PLAN_HELD = "plan_held"
    # a task's life
    TASK_STARTED = "task_started"
    TASK_RETRYING = "task_retrying"
    TASK_COMPLETED = "task_completed"
    TASK_FAILED = "task_failed"
    TASK_SKIPPED = "task_skipped"
    TASK_INTERRUPTED = "task_interrupted"
    TASK_CANCELLED = "task_cancelled"
    TASK_BYPASSED = "task_bypassed"
    TASK_REJECTED = "task_rejected"
    TASK_BLOCKED = "task_blocked"
    TASK_RELEASED = "task_released"
    TASK_STUCK = "task_stuck"
    TASK_FAILOVER = "task_failover"
    TASK_HEDGED = "task_hedged"
    TASK_HEDGE_WON = "task_hedge_won"
    TASK_HEDGE_FAILED = "task_hedge_failed"
    TASK_JUDGED = "task_judged"
    ITEMS_FAILED = "items_failed"
    # the queue, changed while a run goes on
    TASK_ADDED = "task_added"
    ITEMS_KNOWN = "items_known"
    TASK_CHANGED = "task_changed"
    TASK_REQUEUED = "task_requeued"
    TASK_SPAWNED = "task_spawned"
    # approval gates
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_GIVEN = "approval_given"
    APPROVAL_REFUSED = "approval_refused"
    APPROVAL_NOTED = "approval_noted"
    # an agent's questions to a person (``ask: true``)
    PERMISSION_ASKED = "permission_asked"
    PERMISSION_ANSWERED = "permission_answered"
    # requests from outside a run, and its answer to one it refuses
    CANCEL_REQUESTED = "cancel_requested"
    RETRY_REQUESTED = "retry_requested"
    APPROVE_REQUESTED = "approve_requested"
    REJECT_REQUESTED = "reject_requested"
    PERMISSION_REQUESTED = "permission_requested"
    ANSWER_REQUESTED = "answer_requested"
    BUDGET_REQUESTED = "budget_requested"
    REQUEST_REFUSED = "request_refused"
    # the channels tasks write to
    SHARED = "shared"
    DISCOVERED = "discovered"
    SYNCED = "synced"
    # checkpoints
    CHECKPOINT_SAVED = "checkpoint_saved"
    CHECKPOINT_RESTORED = "checkpoint_restored"
    # outward effects: a push, a pull request, a comment (``state/events/effects``)
    EFFECT_INTENDED = "effect_intended"
    EFFECT_DONE = "effect_done"
    EFFECT_FAILED = "effect_failed"


#: A field's metadata: written only when it says something, left out of the JSON while ``None``
#: (``field(default=None, metadata=OPTIONAL)``).
OPTIONAL: Mapping[str, object] = MappingProxyType({_OPTIONAL: True})


def left_out_while_none(spec: Field[Any]) -> bool:
    """Whether the field ``spec`` is ``OPTIONAL``."""
    return bool(spec.metadata.get(_OPTIONAL))


def added(value: object) -> Mapping[str, object]:
    """A field's metadata: every record has it, and a line written by a version before may lack
    it: read as ``value`` (``field(metadata=added(value))``)."""
    return MappingProxyType({_ABSENT: value})


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRecord:
    """One event. ``time``: when it happened (ISO 8601, milliseconds); ``run``: the run it belongs to
    (its name, the time it began): set by the run's own log for the run's events, by a command for
    a request to a run going on; ``None`` for a command's change with no run going on."""

    event: ClassVar[EventKind]  # (the key ``event`` of its line)

    time: str = field(default_factory=now_iso)
    run: str | None = None
    # The line this record was read from, as its JSON (``records.read``); ``None`` for a record
    # the tool made. No key of the event's: not in its JSON, nor in what makes two records equal.
    line: Mapping[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A record of a kind registers itself (``registered``): the table the log's readers,
        the reporters and the schema read is made from the records, never written out by hand.
        (``dataclass(slots=True)`` makes the class again: the one made last is the record.)"""
        super(EventRecord, cls).__init_subclass__(**kwargs)  # (slots: the class made again has no __class__ cell)
        kind = cls.__dict__.get("event")
        if kind is None:
            return
        known = _REGISTERED.get(kind)
        if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
            raise TypeError(f"two records of the kind {kind}: {known.__qualname__} and {cls.__qualname__}")
        _REGISTERED[kind] = cls

    def as_json(self) -> dict[str, Any]:
        """The event as its line holds it (``run`` only when it has one: a run's log adds its own)."""
        data: dict[str, Any] = {"event": str(self.event)}
        if self.run is not None:
            data["run"] = self.run
        data["v"] = VERSION
        data["time"] = self.time
        for name, _, _, optional in _own(type(self)):
            value = getattr(self, name)
            if value is None and optional:
                continue
            data[name] = _plain(value)
        return data

    def as_line(self) -> dict[str, Any]:
        """The event as the log holds it: the line it was read from, as it is (its ``prev``, the keys
        a version before or after wrote), else its JSON (``as_json``)."""
        return dict(self.line) if self.line is not None else self.as_json()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self | None:
        """The record a line of this kind holds, leniently (see the module's docstring); ``None``
        when it lacks a key the record cannot do without."""
        given: dict[str, Any] = {"time": str(data.get("time") or ""), "run": _text(data.get("run"))}
        for name, hint, absent, _ in _own(cls):
            if name in data:
                given[name] = _typed(data[name], hint) if hint is not None else data[name]
            elif absent is not _REQUIRED:
                if absent is not _DEFAULT:
                    given[name] = absent
            else:
                return None
        return cls(**given)

    # Read as the JSON object its line is, so that code written against the events as dicts (a
    # reporter of a program that runs plans with the package) keeps working. The tool's own
    # code reads a record's fields: mypy checks their names.

    def __getitem__(self, key: str) -> Any:
        return self.as_line()[key]

    def __contains__(self, key: object) -> bool:
        return key in self.as_line()

    def get(self, key: str, default: Any = None) -> Any:
        return self.as_line().get(key, default)


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent(EventRecord):
    """A line the log's readers take that is no record this version knows: a kind of a newer
    version's or one written by hand, or a line without a key its kind cannot do without. ``kind``:
    its ``event``; ``data``: the line as it is. No reporter has a method for it (``any_event``),
    and it is written again as it was."""

    kind: str
    data: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {key: value for key, value in self.data.items() if key != _CHAIN}


def event_name(record: EventRecord) -> str:
    """The name of ``record``'s kind, as its line's ``event`` says it (an unknown one's too)."""
    return record.kind if isinstance(record, UnknownEvent) else str(record.event)


def task_of(record: EventRecord) -> str | None:
    """The task ``record`` tells of (its ``task``, an unknown one's too); ``None``: none, a run's."""
    task = record.data.get("task") if isinstance(record, UnknownEvent) else getattr(record, "task", None)
    return task if isinstance(task, str) else None


def _plain(value: object) -> object:
    """A field's value as JSON holds it."""
    if isinstance(value, Cause):
        return value.as_json()
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, StrEnum):
        return str(value)
    return value


def _typed(value: object, hint: object) -> object:
    """A value read from JSON as its field holds it: a cause as a ``Cause``, a list as a tuple."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, _UnionType) else (hint,)
    if Cause in options:
        return Cause.from_mapping(value)
    if isinstance(value, list) and any(typing.get_origin(option) is tuple for option in options):
        return tuple(value)
    return value


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


_UnionType = type(int | None)


_REQUIRED = object()  # a field a line must have (``_own``)
_DEFAULT = object()  # a field its record gives a default to when a line lacks it

# A record's own fields, as its JSON is written and read (once a class): each one's name; its
# type, when a value read needs making into it (a cause, a tuple), else None; what a line without
# it reads as (``_REQUIRED``, ``_DEFAULT`` or an ``added`` value); whether it is ``OPTIONAL``.
_Own = tuple[tuple[str, Any, object, bool], ...]
_OWN: dict[type, _Own] = {}


def _own(cls: type) -> _Own:
    """``cls``'s fields but ``time``, ``run`` and ``line``, as ``as_json`` and ``from_json`` read them."""
    found = _OWN.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = tuple(
            (spec.name, _hint(hints[spec.name]), _absent(spec), left_out_while_none(spec))
            for spec in fields(cls)
            if spec.init and spec.name not in ("time", "run")
        )
        _OWN[cls] = found
    return found


def _hint(hint: object) -> object:
    """``hint``, when a value read from JSON needs making into it (``_typed``), else ``None``."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, _UnionType) else (hint,)
    typed = Cause in options or any(typing.get_origin(option) is tuple for option in options)
    return hint if typed else None


def _absent(spec: Field[Any]) -> object:
    if _ABSENT in spec.metadata:
        return spec.metadata[_ABSENT]
    return _REQUIRED if spec.default is MISSING and spec.default_factory is MISSING else _DEFAULT


_REGISTERED: dict[EventKind, type[EventRecord]] = {}


def registered() -> dict[EventKind, type[EventRecord]]:
    """Every record defined so far, by its kind, in ``EventKind``'s order."""
    return {kind: _REGISTERED[kind] for kind in EventKind if kind in _REGISTERED}
