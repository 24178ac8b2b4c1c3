"""Backends: how a task becomes a process. One module each, behind ``base.Backend``."""

from __future__ import annotations

import importlib

from orchestrator.backends.base import AgentResult, Backend, Invocation, Job, Observer

# Each backend's module is imported when the backend is first asked for: a run of shell tasks has
# no use for the agent CLIs' parsers (the claude backend and its error classifier cost a few
# milliseconds to import, every command).
_BUILT_IN = {
    "claude": "claude:ClaudeBackend",
    "codex": "codex:CodexBackend",
    "gemini": "gemini:GeminiBackend",
    "opencode": "opencode:OpencodeBackend",
    "shell": "shell:ShellBackend",
    "command": "command:CommandBackend",
}
_REGISTRY: dict[str, type[Backend]] = {}


def names() -> list[str]:
    return sorted(_BUILT_IN.keys() | _REGISTRY.keys())


def get(name: str) -> Backend:
    """A fresh backend instance; raises ``KeyError`` for an unknown name."""
    cls = _REGISTRY.get(name)
    if cls is None:
        module, _, attribute = _BUILT_IN[name].partition(":")
        cls = _REGISTRY[name] = getattr(importlib.import_module(f".{module}", __name__), attribute)
    return cls()


def register(cls: type[Backend]) -> None:
    _REGISTRY[cls.name] = cls


__all__ = ["AgentResult", "Backend", "Invocation", "Job", "Observer", "get", "names", "register"]
