"""The backends and executors by name, as the plan layer knows them: registered from above.

A plan names a backend and an executor, and an Access cell gives a task its backend's own
settings; but the backends and executors live layers above the plan (they read it). So each
registers here, from its package's registry (``backends/__init__``, ``executors/registry``), as
codecs register with Python's ``codecs``; the package face (``orchestrator/__init__``) imports
both registries, so every name is here before any plan is read. Registering costs nothing: a
backend's Access presets are loaded (its module imported) the first time a task asks for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Presets = Mapping[str, Mapping[str, Any]]  # an Access word ("read", "edit") -> the settings it gives a task

_presets: dict[str, Callable[[], Presets]] = {}  # backend -> its Access presets, loaded when first asked for
_loaded: dict[str, Presets] = {}
_agents: list[str] = []  # the backends that start an agent CLI, in the order they registered
_executors: dict[str, bool] = {}  # executor -> whether a plan's ``executor`` setting may name it


def register_backend(name: str, presets: Callable[[], Presets], *, agent: bool) -> None:
    """Register backend ``name``: ``presets`` gives its Access presets (loading its module), ``agent``
    says whether it starts an agent CLI."""
    _presets[name] = presets
    _loaded.pop(name, None)
    if agent and name not in _agents:
        _agents.append(name)


def register_executor(name: str, *, in_plan: bool) -> None:
    _executors[name] = in_plan


def backends() -> list[str]:
    """Every backend's name, sorted."""
    return sorted(_presets)


def agents() -> list[str]:
    """The backends that start an agent CLI, in the order they registered."""
    return list(_agents)


def executors(*, in_plan: bool = False) -> list[str]:
    """The executors' names (``in_plan``: those the plan's ``executor`` setting may give)."""
    return [name for name, settable in _executors.items() if settable or not in_plan]


def presets(backend: str) -> Presets:
    """``backend``'s Access presets (none for a backend without access modes, or one not known)."""
    found = _loaded.get(backend)
    if found is None:
        load = _presets.get(backend)
        found = _loaded[backend] = load() if load is not None else {}
    return found
