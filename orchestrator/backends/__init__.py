"""Backends: how a task becomes a process. One module each, behind ``base.Backend``."""

from __future__ import annotations

from .base import AgentResult, Backend, Invocation, Job, Observer
from .claude import ClaudeBackend
from .codex import CodexBackend
from .command import CommandBackend
from .gemini import GeminiBackend
from .shell import ShellBackend

_REGISTRY: dict[str, type[Backend]] = {
    cls.name: cls for cls in (ClaudeBackend, CodexBackend, GeminiBackend, ShellBackend, CommandBackend)
}


def names() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str) -> Backend:
    """A fresh backend instance; raises ``KeyError`` for an unknown name."""
    return _REGISTRY[name]()


def register(cls: type[Backend]) -> None:
    _REGISTRY[cls.name] = cls


__all__ = ["AgentResult", "Backend", "Invocation", "Job", "Observer", "get", "names", "register"]
