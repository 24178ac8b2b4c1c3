"""Where an attempt's process is launched. The runner only talks to ``Executor``.

``LocalExecutor`` runs processes on this machine; another executor (a cluster, say) implements
the same single method.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.backends.base import AgentResult, Backend, Invocation, Job
from orchestrator.executors.direct import direct_launch
from orchestrator.executors.process import (
    EndCallback,
    Limits,
    LineCallback,
    ProcessRun,
    StartCallback,
    posix_spawn_possible,
    start_process,
)


@dataclass(frozen=True, slots=True)
class Launch:
    """One process to run: the command, where, with what, and where its output goes."""

    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    stdin: Path | None
    stdout: Path
    stderr: Path
    limits: Limits
    # ``argv`` is a shell running one plain command: the command as the shell would exec it
    # here, for an executor that can start it itself (``LocalExecutor``; ``direct.py``).
    direct: Direct | None = None
    # The caller knows no file is at ``stdout`` or ``stderr`` yet: no stale log to clear first.
    logs_absent: bool = False


@dataclass(frozen=True, slots=True)
class Direct:
    """The program a shell would exec for its one command, with the words as typed for its argv
    and the environment the shell would give it."""

    executable: str
    argv: tuple[str, ...]
    env: Mapping[str, str]


class Executor(ABC):
    @abstractmethod
    async def run(
        self, launch: Launch, *, on_line: LineCallback | None = None, on_start: StartCallback | None = None
    ) -> ProcessRun:
        """Run to the end (or the limits) and report how it ended; must reap on cancellation."""

    def start(
        self,
        launch: Launch,
        *,
        on_line: LineCallback | None = None,
        on_start: StartCallback | None = None,
        on_end: EndCallback | None = None,
    ) -> Coroutine[Any, Any, ProcessRun]:
        """Start ``launch`` now if this executor can, and return the coroutine that waits for its
        end (as ``run``). The runner calls this and awaits the result in a task of its own.

        By default the process starts when that coroutine first runs (``run``). ``LocalExecutor``
        starts it before returning: the runner starts every task a freed slot allows, one after
        the other, before it does anything else about them. ``on_end``, where an executor calls
        it, receives the run the coroutine will return as soon as the end is known, from one of
        the event loop's callbacks (``Started.wait``); the default never calls it.
        """
        return self.run(launch, on_line=on_line, on_start=on_start)


class LocalExecutor(Executor):
    """Processes on this machine, each started by ``start`` before it returns. Whether they may
    start by ``posix_spawn`` is checked with the first one (``posix_spawn_possible``): a
    descriptor another thread of this process makes inheritable after that would reach them.

    A subclass that overrides ``run`` (to look at each launch, say) has it called, as
    ``Executor.start`` does: its processes then start when the runner's task first runs."""

    def __init__(self) -> None:
        self._posix_spawn: bool | None = None

    async def run(
        self, launch: Launch, *, on_line: LineCallback | None = None, on_start: StartCallback | None = None
    ) -> ProcessRun:
        return await self._spawn(launch, on_line, on_start, None)

    def start(
        self,
        launch: Launch,
        *,
        on_line: LineCallback | None = None,
        on_start: StartCallback | None = None,
        on_end: EndCallback | None = None,
    ) -> Coroutine[Any, Any, ProcessRun]:
        if type(self).run is not LocalExecutor.run:
            return self.run(launch, on_line=on_line, on_start=on_start)
        return self._spawn(launch, on_line, on_start, on_end)

    def _spawn(
        self, launch: Launch, on_line: LineCallback | None, on_start: StartCallback | None, on_end: EndCallback | None
    ) -> Coroutine[Any, Any, ProcessRun]:
        direct = launch.direct
        if self._posix_spawn is None:
            self._posix_spawn = posix_spawn_possible()
        started = start_process(
            direct.argv if direct else launch.argv,
            cwd=launch.cwd,
            env=direct.env if direct else launch.env,
            stdin=launch.stdin,
            stdout=launch.stdout,
            stderr=launch.stderr,
            limits=launch.limits,
            executable=direct.executable if direct else None,
            fallback=launch.argv if direct else None,  # the shell, which reports the failure its way
            logs_absent=launch.logs_absent,
            posix_spawn=self._posix_spawn,
        )
        return started.wait(on_line=on_line, on_start=on_start, on_end=on_end)


def build_launch(
    invocation: Invocation,
    job: Job,
    stem: Path,
    env: Mapping[str, str] | None = None,
    *,
    base_env: Mapping[str, str] | None = None,
    logs_absent: bool = False,
) -> Launch:
    """The process for an invocation: logs at ``<stem>.out`` / ``.err``, the stdin text (if any)
    written to ``<stem>.in``; environment = ``base_env`` (default: ours) + ``env`` + the
    settings' + the backend's. For a shell running one plain command, ``direct`` says how to
    start that command without the shell where it can be (``direct.py``). A caller launching
    many processes passes one copy of ``os.environ`` as ``base_env`` (reading os.environ decodes
    every variable each time) and makes the log directory itself."""
    if base_env is None:
        stem.parent.mkdir(parents=True, exist_ok=True)
    stdin: Path | None = None
    if invocation.stdin is not None:
        stdin = stem.with_name(stem.name + ".in")
        stdin.write_text(invocation.stdin, encoding="utf-8")
    cwd = job.cwd
    launch_env = {**(os.environ if base_env is None else base_env), **(env or {}), **job.settings.env, **invocation.env}
    direct: Direct | None = None
    if invocation.direct is not None:
        found = direct_launch(invocation.direct, launch_env, cwd)
        if found is not None:
            direct = Direct(found[0], invocation.direct, found[1])
    return Launch(
        invocation.argv,
        cwd,
        launch_env,
        stdin,
        stem.with_name(stem.name + ".out"),
        stem.with_name(stem.name + ".err"),
        invocation.limits,
        direct,
        logs_absent,
    )


async def call_agent(backend: Backend, job: Job, stem: Path) -> tuple[AgentResult, Launch]:
    """One agent call outside a run (``plan``, ``aggregate --agent``): no markers, no retries."""
    launch = build_launch(backend.invocation(job), job, stem)
    observer = backend.observer(job)
    run = await LocalExecutor().run(launch, on_line=observer.feed)
    return backend.interpret(job, run, launch.stdout, launch.stderr, observer), launch
