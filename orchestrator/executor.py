"""Where an attempt's process is launched. The runner only talks to ``Executor``.

``LocalExecutor`` runs processes on this machine; another executor (a cluster, say) implements
the same single method.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

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
            on_line=on_line,
            on_start=on_start,
        )
