"""Where an attempt runs: the one narrow interface the runner talks to, and the records that cross it.

    Launch ──Executor.run()──▶ ProcessRun          (on_start(handle), on_line(line) on the way)
    Leftover ──Executor.settle()──▶ tasks stopped  (attempts a dead runner left running)

An executor owns everything about its processes: starting them, their process groups, the wall
clock and inactivity limits, stopping and reaping them on every path, and finding what a dead
runner left behind. The runner never sees a pid; it journals the ``handle`` an executor gives it
and hands it back after a crash. ``LocalExecutor`` runs processes on this machine;
``FakeExecutor`` runs none, for tests and demos. ``WorktreeExecutor`` wraps another for the
tasks with ``isolation: worktree``: ``run`` makes (or finds again, after a crash) the task's
worktree from the integration branch and the branches of ``launch.upstream``, runs the launch
there (``cwd`` replaced), commits what the attempt changed, and says so in its handle and its
``ProcessRun.work``; ``settle`` stops a dead runner's processes and keeps every worktree. A
cluster fits the same two methods:

- a cluster (Dask, ``executors/dask``): ``run`` submits the launch and awaits its future; the
  handle names the future's key, so that ``settle`` can stop what a dead runner left.

What an executor can do (``Capabilities``: it simulates, runs processes here, leaves logs a dead
runner's work is recovered from, runs on a cluster) is what the layers above read of it, never its
name; ``executors/registry`` lists every executor by name.
"""

from __future__ import annotations

import signal
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.executors.capabilities import Capabilities, Cluster, Setup
from orchestrator.executors.sandbox import Sandbox
from orchestrator.git.work import Work

Handle = Mapping[str, Any]  # JSON-able: where an attempt runs, in its executor's own words
StartCallback = Callable[[Handle], None]
LineCallback = Callable[[bytes], None]


@dataclass(frozen=True, slots=True)
class Limits:
    timeout: float | None = None  # wall clock, seconds
    inactivity: float | None = None  # no output for this long = hung
    grace: float = 5.0  # between asking a process to stop (SIGTERM) and making it (SIGKILL)
    log_cap: int | None = None  # bytes of each stream its log keeps; what comes after is read, not kept


@dataclass(frozen=True, slots=True)
class Checkout:
    """The git worktree an attempt of a task with ``isolation: worktree`` runs in: what an
    executor whose machines do not share files sends (``executors/luggage``)."""

    tree: Path  # the worktree, on the runner's machine
    message: str  # the message of the commit of the attempt's work


@dataclass(frozen=True, slots=True)
class Launch:
    """One attempt to run: what, where, with what, where its output goes, within what limits."""

    task: str
    attempt: int
    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    stdin: Path | None  # a file whose bytes are the attempt's stdin; None: nothing (/dev/null)
    stdout: Path  # created with the first byte written: no file means no output
    stderr: Path
    limits: Limits = field(default_factory=Limits)
    upstream: tuple[str, ...] = ()  # the tasks this one depends on (whose work a worktree merges first)
    resources: tuple[str, ...] = ()  # what it uses that a cluster may count: its backend, its profile
    asks: tuple[tuple[str, float], ...] = ()  # resources its profile asks for (``resources``): always asked
    checkout: Checkout | None = None  # in a worktree (``WorktreeExecutor``): which, and its commit's message
    worker: str | None = None  # on a cluster: the only worker it may run on (it holds the session it resumes)
    avoid: str | None = None  # on a cluster: a worker it had rather not run on (a hedge's: its straggler's)
    # With a simulating executor (the fake): how its command prints an answer (text, session), in
    # the format its backend reads (``Backend.simulated``): what a made-up success writes.
    simulate: Callable[[str, str], str] | None = None
    outputs: tuple[tuple[str, str], ...] = ()  # the JSON fields its answer must hold (its Output cell), and their types
    lane: str | None = None  # a second attempt raced beside the task's own (``run/races/hedge``): its worktree's name
    sandbox: Sandbox | None = None  # a run from outside's shell or command task: closed in (``executors/sandbox``)

    def command(self) -> list[str]:
        """The command line its process is started with: its ``argv``, in its sandbox if it has
        one (its worktree, the one place it may write, known only once ``checkout`` is)."""
        if self.sandbox is None:
            return list(self.argv)
        return self.sandbox.argv(self.argv, self.cwd, self.env, writable=self.checkout is not None)


@dataclass(frozen=True, slots=True)
class ProcessRun:
    """How an attempt's process ended. ``start_error`` set means it never ran."""

    exit_code: int | None
    signal: int | None
    duration: float
    timed_out: str | None = None  # "timeout" or "inactivity"
    start_error: str | None = None
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    simulated: bool = False  # no process ran (``FakeExecutor``): whatever it "did" is made up
    work: Work | None = None  # in a worktree (``WorktreeExecutor``): its branch, commit and diffstat
    worker: str | None = None  # on a cluster (``DaskExecutor``): the worker that ran it
    lost: str | None = None  # on a cluster: its worker was lost mid-attempt, and why (a transient failure)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.timed_out is None and self.start_error is None and self.lost is None

    def describe(self, limits: Limits | None = None) -> str:
        """A one-line reason for a person: 'exit code 3', 'killed by SIGKILL', 'timed out after 5s'."""
        if self.start_error:
            return f"could not start: {self.start_error}"
        if self.lost:
            return f"lost its worker: {self.lost}"
        if self.timed_out == "timeout":
            limit = f" after {limits.timeout:g}s" if limits and limits.timeout else ""
            return f"timed out{limit} (wall-clock limit)"
        if self.timed_out == "inactivity":
            limit = f" for {limits.inactivity:g}s" if limits and limits.inactivity else ""
            return f"hung: no output{limit} (inactivity limit)"
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = f"signal {self.signal}"
            return f"killed by {name}"
        return f"exit code {self.exit_code}"


@dataclass(frozen=True, slots=True)
class Leftover:
    """An attempt a dead runner's journal left open: it may still be running."""

    task: str
    attempt: int
    executor: str | None  # the name of the executor that started it
    handle: Handle | None  # None: the runner died before it journaled one
    marks: Mapping[str, str]  # variables in the environment of the attempt's processes


class Executor(ABC):
    """Runs attempts. One instance serves a whole run; ``run`` is called once per attempt, many
    at a time, from the runner's event loop (anyio).

    ``name`` is what the journal records of the attempts it starts (the registry's name for it)
    and ``can`` what it can do; both are the class's, except a wrapper's (``WorktreeExecutor``),
    which are those of the executor it wraps."""

    name: str
    can: Capabilities = Capabilities()

    @classmethod
    def made(cls, setup: Setup) -> Executor:
        """The executor of a run, made with what the command knows (``Setup``); raises
        ``UsageError`` when that is not enough (a cluster's without a scheduler)."""
        return cls()

    @property
    def cluster(self) -> Cluster | None:
        """The cluster its attempts run on (``Capabilities.cluster``); None for one that has none."""
        return None

    @abstractmethod
    async def run(
        self, launch: Launch, *, on_start: StartCallback | None = None, on_line: LineCallback | None = None
    ) -> ProcessRun:
        """Run ``launch`` to its end within its limits and say how it ended.

        Whatever happens (a limit, an error in a callback, cancellation), everything the attempt
        started is stopped and reaped before this returns or raises. ``on_start`` receives the
        attempt's handle once it runs, before anything else can go wrong (the runner journals it;
        a cluster's executor calls it once more, the handle with its ``worker``, once a worker runs it);
        ``on_line`` each complete stdout line, in order, soon after it arrives (an executor may
        read in batches: within a second, and all of it by the process's end). Output on either
        stream counts as activity for the inactivity limit. A launch that cannot start is a ``ProcessRun`` with
        ``start_error``, not an exception."""

    async def has_worker(self, name: str) -> bool:
        """Whether the worker named ``name`` (a ``ProcessRun.worker``) is there to run an attempt
        pinned to it (``Launch.worker``: the agent session it resumes is there). An executor
        without workers runs every attempt where it runs them all: yes."""
        return True

    async def close(self) -> None:
        """The run is over: stop whatever its attempts left running that ``run`` could not tie to
        one of them. Called once, at the end of a run."""
        return None

    async def settle(
        self, leftovers: Sequence[Leftover], *, grace: float, wait: bool, tell: Callable[[str], None] | None = None
    ) -> list[str]:
        """Stop the attempts a dead runner left running (all at once, then one ``grace`` period
        before they are made to stop), or with ``wait`` wait for them to end; returns the tasks
        whose attempt was still running. Only leftovers of this executor's name are given.
        ``tell``: while it waits, what it waits for (once, then now and then), in a line for a person."""
        return []
