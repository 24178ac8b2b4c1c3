"""The JSON Schema of a line of ``state/events.jsonl`` (and of ``run --json``), generated from the
records: ``docs/events.schema.json`` is its text (a test compares them). Written again with::

    python -m orchestrator.state.events.schema > docs/events.schema.json

A line is an object whose ``event`` names its kind; each kind's keys and their types are its
record's fields (``base.OPTIONAL`` ones may be left out); ``v`` is the schema version; ``prev``,
the link of a line of ``events.jsonl`` to the one before it (``chain``). Keys a kind does not list
are allowed: a version may add keys without a new ``v``.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import MISSING, fields
from enum import StrEnum
from typing import Any

from orchestrator.state.causes import Cause, CauseKind
from orchestrator.state.events import chain
from orchestrator.state.events.base import VERSION, EventKind, EventRecord, left_out_while_none
from orchestrator.state.events.records import RECORDS

_SIMPLE = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}


def schema() -> dict[str, Any]:
    """The schema: every kind's keys, chosen by ``event``."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "orchestrator event",
        "description": (
            "One line of .orchestrator/state/events.jsonl, or of `orchestrator run --json`: an event, "
            f"its kind in `event`, the schema version in `v` ({VERSION}; a line without `v` was written "
            "before versions, with the same keys or fewer), when it happened in `time`, and the run it "
            "belongs to in `run` (every line of events.jsonl has it, null for a command's change with "
            "no run going on; `run --json` leaves it out), and in events.jsonl, last, `prev`: the digest of "
            "the line before it (`orchestrator verify` checks the chain). Generated from "
            "orchestrator/state/events."
        ),
        "type": "object",
        "required": ["event", "v", "time"],
        "properties": {
            "event": {"enum": [str(kind) for kind in EventKind]},
            "v": {"const": VERSION},
            "time": {"type": "string"},
            "run": {"type": ["string", "null"]},
            chain.KEY: {"type": "string", "pattern": f"^[0-9a-f]{{{len(chain.NOTHING)}}}$"},
        },
        "allOf": [
            {"if": {"properties": {"event": {"const": str(kind)}}}, "then": {"$ref": f"#/$defs/{kind}"}}
            for kind in EventKind
        ],
        "$defs": {"cause": _cause()} | {str(kind): _kind(RECORDS[kind]) for kind in EventKind},
    }


def text() -> str:
    """``schema()`` as docs/events.schema.json holds it."""
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"


def _kind(record: type[EventRecord]) -> dict[str, Any]:
    hints = typing.get_type_hints(record)
    own = [spec for spec in fields(record) if spec.init and spec.name not in ("time", "run")]
    return {
        "description": _said(record.__doc__),
        "type": "object",
        # (a key left out while None is never null: it is there with a value, or not there)
        "properties": {
            spec.name: _type(_without_none(hints[spec.name]) if left_out_while_none(spec) else hints[spec.name])
            for spec in own
        },
        "required": [spec.name for spec in own if not left_out_while_none(spec)],
    }


def _cause() -> dict[str, Any]:
    """A ``Cause``, as ``Cause.as_json`` writes it: its ``kind``, and the fields that kind has."""
    hints = typing.get_type_hints(Cause)
    described = {spec.name: _type(_without_none(hints[spec.name])) for spec in fields(Cause)}
    return {
        "description": _said(Cause.__doc__),
        "type": "object",
        "properties": described | {"kind": {"enum": [str(kind) for kind in CauseKind]}},
        "required": [spec.name for spec in fields(Cause) if spec.default is MISSING],
    }


def _said(doc: str | None) -> str:
    """A docstring as a description: one line, its code marked as markdown marks it."""
    return " ".join((doc or "").split()).replace("``", "`")


def _type(hint: Any) -> dict[str, Any]:
    """The schema of a value of type ``hint``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return {}
    if hint in _SIMPLE:
        return {"type": _SIMPLE[hint]}
    if hint is Cause:
        return {"$ref": "#/$defs/cause"}
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return {"enum": [str(value) for value in hint]}
    if origin in (typing.Union, types.UnionType):
        options = [_type(arg) for arg in args]
        if all(set(option) == {"type"} for option in options):
            return {"type": [option["type"] for option in options]}
        return {"anyOf": options}
    if origin is tuple:
        return {"type": "array", "items": _type(args[0])}
    if origin is dict:
        values = _type(args[1])
        return {"type": "object", **({"additionalProperties": values} if values else {})}
    raise TypeError(f"no JSON Schema for {hint!r}: give events.schema a rule for it")


def _without_none(hint: Any) -> Any:
    """``X | None`` as ``X``: a cause leaves out the fields its kind has not."""
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    return args[0] if len(args) == 1 else hint


if __name__ == "__main__":
    import sys

    sys.stdout.write(text())
