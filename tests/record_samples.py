"""A value of each type an event record's field may hold, for the tests that make every kind of
record (``test_event_records``, ``test_event_records_read``): values JSON holds as they are."""

from __future__ import annotations

import typing
from typing import Any

from orchestrator.state.causes import Cause
from orchestrator.vocabulary import TaskStatus


def sample(hint: Any) -> Any:
    """A value of type ``hint`` (the first that is not None of a union)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is not None and type(None) in args:
        return sample(next(arg for arg in args if arg is not type(None)))
    if hint is Cause:
        return Cause.upstream("T-01", TaskStatus.FAILED)
    if origin is tuple:  # (of ids; of mappings: task_judged's candidates)
        return ("T-01", "T-02") if args[0] is str else (sample(args[0]), sample(args[0]))
    if origin is dict:
        return {"T-01": 2 if args[1] is int else "before"}
    return {str: "T-01", int: 3, float: 1.5, bool: True}[hint]
