"""Where an attempt's process is launched. The runner only talks to ``Executor``.

``LocalExecutor`` runs processes on this machine; another executor (a cluster, say) implements
the same single method.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .backends.base import AgentResult, Backend, Invocation, Job
from .direct import direct_launch
from .process import Limits, LineCallback, ProcessRun, StartCallback, run_process


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
    fallback: tuple[str, ...] | None = None  # run instead when ``argv`` cannot be executed
    executable: str | None = None  # the program to exec when it is not ``argv[0]`` found on PATH


class Executor(ABC):
    @abstractmethod
    async def run(
        self, launch: Launch, *, on_line: LineCallback | None = None, on_start: StartCallback | None = None
    ) -> ProcessRun:
        """Run to the end (or the limits) and report how it ended; must reap on cancellation."""


class LocalExecutor(Executor):
    async def run(
        self, launch: Launch, *, on_line: LineCallback | None = None, on_start: StartCallback | None = None
    ) -> ProcessRun:
        return await run_process(
            launch.argv,
            cwd=launch.cwd,
            env=launch.env,
            stdin=launch.stdin,
            stdout=launch.stdout,
            stderr=launch.stderr,
            limits=launch.limits,
            fallback=launch.fallback,
            executable=launch.executable,
            on_line=on_line,
            on_start=on_start,
        )


def build_launch(
    invocation: Invocation,
    job: Job,
    stem: Path,
    env: Mapping[str, str] | None = None,
    *,
    base_env: Mapping[str, str] | None = None,
) -> Launch:
    """The process for an invocation: logs at ``<stem>.out`` / ``.err``, the stdin text (if any)
    written to ``<stem>.in``; environment = ``base_env`` (default: ours) + ``env`` + the
    settings' + the backend's. A shell running one plain command becomes that command when it
    can (``direct.py``), with the shell as the fallback. A caller launching many processes passes one copy of
    ``os.environ`` as ``base_env`` (reading os.environ decodes every variable each time) and
    makes the log directory itself."""
    if base_env is None:
        stem.parent.mkdir(parents=True, exist_ok=True)
    stdin: Path | None = None
    if invocation.stdin is not None:
        stdin = stem.with_name(stem.name + ".in")
        stdin.write_text(invocation.stdin, encoding="utf-8")
    cwd = job.cwd
    launch_env = {**(os.environ if base_env is None else base_env), **(env or {}), **job.settings.env, **invocation.env}
    argv, fallback, executable = invocation.argv, None, None
    if invocation.direct is not None:
        direct = direct_launch(invocation.direct, launch_env, cwd)
        if direct is not None:
            (executable, launch_env), argv, fallback = direct, invocation.direct, invocation.argv
    return Launch(
        argv,
        cwd,
        launch_env,
        stdin,
        stem.with_name(stem.name + ".out"),
        stem.with_name(stem.name + ".err"),
        invocation.limits,
        fallback,
        executable,
    )


async def call_agent(backend: Backend, job: Job, stem: Path) -> tuple[AgentResult, Launch]:
    """One agent call outside a run (``plan``, ``aggregate --agent``): no markers, no retries."""
    launch = build_launch(backend.invocation(job), job, stem)
    observer = backend.observer(job)
    run = await LocalExecutor().run(launch, on_line=observer.feed)
    return backend.interpret(job, run, launch.stdout, launch.stderr, observer), launch
