"""Backends: how a task becomes a process. One module each, behind ``base.Backend``, and one line
each in the registry below: a new backend is its module and its line.

A backend's module holds all its vendor's knowledge (its command line, what it prints, its Access
presets, the format of a made-up answer, its CLI's install hint and tested versions); the line
gives what is read before the module is imported: its name, where it is, and whether it starts an
agent CLI. The layers below learn the names and the Access presets from ``plan/config/kinds``, which each
line registers with; the package face imports this module first, so they know them before a plan
is read. Each backend's module is imported when the backend is first asked for: a run of shell
tasks has no use for the agent CLIs' parsers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from orchestrator import lazy
from orchestrator.plan.config import kinds

if TYPE_CHECKING:
    from orchestrator.backends.base import AgentResult, Backend, Invocation, Job, Observer

_BUILT_IN: dict[str, str] = {}  # name -> "module:Class" in this package, in the order registered
_REGISTRY: dict[str, type[Backend]] = {}  # the classes imported so far, and those registered as classes


def _built_in(name: str, home: str, *, agent: bool = False) -> None:
    """Register the backend ``name``, whose class is ``home`` ("module:Class") in this package;
    ``agent``: it starts an agent CLI (``doctor`` checks it, ``plan`` may ask it)."""
    _BUILT_IN[name] = home
    kinds.register_backend(name, lambda: _class(name).access, agent=agent)


_built_in("claude", "claude:ClaudeBackend", agent=True)
_built_in("codex", "codex:CodexBackend", agent=True)
_built_in("gemini", "gemini:GeminiBackend", agent=True)
_built_in("opencode", "opencode:OpencodeBackend", agent=True)
_built_in("shell", "shell:ShellBackend")
_built_in("command", "command:CommandBackend")


def names(*, ordered: bool = False) -> list[str]:
    """Every backend's name, sorted (``ordered``: in the order they registered)."""
    found = [*_BUILT_IN, *(name for name in _REGISTRY if name not in _BUILT_IN)]
    return found if ordered else sorted(found)


def agents() -> list[str]:
    """The backends that start an agent CLI, in the order they registered."""
    return kinds.agents()


def prompted() -> list[str]:
    """The backends that read a task's prompt (an agent's, or the plan's own command), in the order
    they registered: those that can aggregate the results or write a plan (each module imported)."""
    return [name for name in names(ordered=True) if _class(name).reads_prompt]


def sandboxed(name: str | None) -> bool:
    """Whether backend ``name``'s attempts run in a sandbox in a run from outside (``Backend.sandboxed``)."""
    return name is not None and name in names() and _class(name).sandboxed


def runs_script(name: str | None) -> bool:
    """Whether backend ``name`` runs its task as a script (``Backend.runs_script``: shell); one
    not known does not."""
    return name is not None and name in names() and _class(name).runs_script


def listing(chosen: list[str] | None = None) -> str:
    """``chosen`` (default every backend, in the order they registered) as a sentence lists them:
    "claude, codex or shell"."""
    found = chosen if chosen is not None else names(ordered=True)
    return found[0] if len(found) == 1 else f"{', '.join(found[:-1])} or {found[-1]}"


def get(name: str) -> Backend:
    """A fresh backend instance; raises ``KeyError`` for an unknown name."""
    return _class(name)()


def register(cls: type[Backend]) -> None:
    """Register a backend class (one from outside the package) under its ``name``."""
    _REGISTRY[cls.name] = cls
    kinds.register_backend(cls.name, lambda: cls.access, agent=cls().cli() is not None)


def _class(name: str) -> type[Backend]:
    cls = _REGISTRY.get(name)
    if cls is None:
        module, _, attribute = _BUILT_IN[name].partition(":")
        cls = _REGISTRY[name] = getattr(importlib.import_module(f".{module}", __name__), attribute)
    return cls


__all__ = ["AgentResult", "Backend", "Invocation", "Job", "Observer", "get", "names", "register"]

__getattr__ = lazy.exports(
    __name__,
    {name: "orchestrator.backends.base" for name in ("AgentResult", "Backend", "Invocation", "Job", "Observer")},
)
