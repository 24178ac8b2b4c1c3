"""Attempts raced beside a task's own (``run/races/hedge``: a straggler's hedge; ``run/races/bestof``: best of
N): each started in a lane of its own (for ``isolation: worktree``, a worktree and branch of its
own, ``git/lanes``), journaled as every attempt is, its slot taken in admission's books under
``<task>+<attempt>``; the winner made the task's attempt (``take_over``), its work moved onto the
task's branch (``adopt``), every other lane removed unmerged (``drop``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass

import anyio
from anyio.abc import ObjectSendStream

from orchestrator.backends.base import AgentResult, CannotInvoke
from orchestrator.errors import GitError
from orchestrator.executors.base import Handle, StartCallback
from orchestrator.executors.worktree import WorktreeExecutor
from orchestrator.git.lanes import Lanes
from orchestrator.git.lanes import lane as lane_name
from orchestrator.git.work import Work
from orchestrator.run.attempts import Attempt, Launcher, Outcome
from orchestrator.run.limits.admission import Admission, Slot
from orchestrator.state.journal import Journal


@dataclass(slots=True)
class Lane:
    """One attempt of a race: its scope (cancelled to stop it), when it started, how it ended."""

    attempt: Attempt
    scope: anyio.CancelScope
    started: float  # wall clock
    outcome: Outcome | None = None  # None: stopped before it ended
    ended: float = 0.0
    worker: str | None = None  # on a cluster: the worker it runs on, once it says (``noting``)

    @property
    def completed(self) -> bool:
        return self.outcome is not None and self.outcome.result.completed


def noting(lane: Lane, on_start: StartCallback | None, handle: Handle) -> None:
    """``handle`` handed on to ``on_start``; the worker it names (a cluster's, told once one runs the
    attempt) noted on ``lane``: its hedge had rather run on another."""
    lane.worker = str(handle["worker"]) if handle.get("worker") else lane.worker
    if on_start is not None:
        on_start(handle)


async def run_lane(lane: Lane, run: Callable[[], Awaitable[Outcome]], send: ObjectSendStream[Lane]) -> None:
    """``lane`` run to its end, or until its scope is cancelled; then handed to ``send``."""
    async with send:
        with lane.scope:
            lane.outcome = await run()
        lane.ended = time.time()
        with anyio.CancelScope(shield=True):
            await send.send(lane)


class Racing:
    """What starts attempts beside a task's own and settles the race's lanes."""

    def __init__(
        self, launcher: Launcher, admission: Admission, journal: Journal, numbers: MutableMapping[str, int]
    ) -> None:
        self.launcher, self.admission, self.journal = launcher, admission, journal
        self.numbers = numbers  # task -> its last attempt's number (the scheduler's)
        self.live: dict[str, Attempt] = {}  # the lanes' attempts holding a slot, by ``key``
        # task -> what the lanes of a race stopped from outside spent (``abandon``), each with the
        # session it continued: the task's cancel counts it (``Hedger.stopped``)
        self.abandoned: dict[str, list[tuple[AgentResult, str | None]]] = {}
        self.held: dict[str, str] = {}  # task -> what kept its last lane from starting (``start`` said None)

    def slot(self, task_id: str, backend: str) -> Slot:
        """The slot an attempt of ``task_id`` on ``backend`` takes."""
        return Slot(self.launcher.plan.tasks[task_id].profile, backend, self.launcher.settings[task_id].limit_group)

    def start(self, attempt: Attempt, backend: str, avoid: str | None = None) -> Lane | None:
        """Another attempt of ``attempt``'s task on ``backend``, its slot taken, if one is free
        (``None``: not now, or it cannot be made); on a cluster, rather not on worker ``avoid``."""
        task = attempt.task
        slot = self.slot(task.id, backend)
        if not self.admission.room_for_hedge() or not self.admission.allows(slot):
            holding = self.admission.holding(slot) or f"max_parallel {self.admission.limit}"
            self.held[task.id] = f"{holding} left no slot for the others"
            return None
        number = self.numbers[task.id] = self.numbers.get(task.id, attempt.number) + 1
        try:
            other = self.launcher.prepare(task, number, lambda _: attempt.fingerprint, on=backend,
                                          brief_key=lambda _: attempt.brief)  # fmt: skip
        except CannotInvoke as exc:
            self.held[task.id] = f"the others could not start: {exc}"
            return None
        executor = self.launcher.executor
        if isinstance(executor, WorktreeExecutor) and task.id in executor.isolated:
            other.launch = dataclasses.replace(other.launch, lane=lane_name(task.id, number))
        if avoid is not None:
            other.launch = dataclasses.replace(other.launch, avoid=avoid)
        other.started, other.in_run, other.estimate = time.time(), attempt.in_run, attempt.estimate
        other.expected_cost = attempt.expected_cost
        self.journal.spawning(task.id, task.agent, number, executor.name, other.fingerprint, other.told,
                              other.in_run, at=other.started)  # fmt: skip
        self.admission.started(key(other), slot)
        self.live[key(other)] = other
        return Lane(other, anyio.CancelScope(), other.started)

    def mark(self, attempt: Attempt) -> None:
        """A race of ``attempt``'s task begins: where its branch stands marked until a result records
        it (``Lanes.mark``; a runner that dies first leaves the next run to set it back there)."""
        executor = self.launcher.executor
        if isinstance(executor, WorktreeExecutor) and attempt.task.id in executor.isolated:
            with contextlib.suppress(GitError):  # (git refused: the task's own attempt says what it says)
                Lanes(executor.trees).mark(attempt.task.id, attempt.number)

    async def run(self, lane: Lane) -> Outcome:
        attempt, executor = lane.attempt, self.launcher.executor.name

        def started(handle: Handle) -> None:
            self.journal.started(attempt.task.id, attempt.task.agent, attempt.number, executor, handle)

        return await self.launcher.run(attempt, on_start=started)

    def spent(self, lane: Lane) -> AgentResult:
        """What a lane's attempt spent, ended or stopped (read from its logs)."""
        return lane.outcome.result if lane.outcome is not None else self.launcher.stopped(lane.attempt)

    def ended(self, lane: Lane, own: Attempt) -> None:
        """A lane's attempt is over: journaled; its slot given back (not the task's own attempt's)."""
        self.journal.ended(lane.attempt.task.id, lane.attempt.number)
        if lane.attempt is not own:
            self.release(lane.attempt)

    def release(self, attempt: Attempt) -> None:
        """``attempt``'s slot given back."""
        if self.live.pop(key(attempt), None) is not None:
            self.admission.ended(key(attempt))

    def abandon(self, lanes: list[Lane], own: Attempt) -> None:
        """A race stopped from outside (a cancel, the run's stop): what its lanes still hold given
        back, each journaled ended (their processes are gone with the race's scope), what each spent
        kept for the task's cancel to count (``abandoned``)."""
        for lane in lanes:
            if lane.attempt is not own and key(lane.attempt) in self.live:
                self.abandoned.setdefault(own.task.id, []).append((self.spent(lane), lane.attempt.job.resume_session))
                self.ended(lane, own)

    async def settle(self, own: Attempt, winner: Lane, lanes: list[Lane]) -> Outcome:
        """``winner``'s outcome as the task's: made its attempt, its work on the task's branch, every
        other lane removed unmerged."""
        assert winner.outcome is not None
        outcome = winner.outcome
        if winner.attempt is not own:
            other, lost = winner.attempt, own.number
            take_over(own, other)
            work = await anyio.to_thread.run_sync(self.adopt, own.task.id, other, outcome.run.work, lost)
            outcome = dataclasses.replace(outcome, attempt=own, run=dataclasses.replace(outcome.run, work=work))
        for lane in lanes:
            if lane is not winner:
                await anyio.to_thread.run_sync(self.drop, lane.attempt)
        return outcome

    def adopt(self, task_id: str, other: Attempt, work: Work | None, lost: int) -> Work | None:
        """``other`` won: its work moved onto the task's branch (what the task's own attempt ``lost``
        left there kept on a ref of its own, never merged), its lane removed; the work as the merge
        queue takes it."""
        executor, name = self.launcher.executor, other.launch.lane
        if name is None or work is None or work.commit is None or not isinstance(executor, WorktreeExecutor):
            return work
        try:
            Lanes(executor.trees).adopt(task_id, name, work.commit, lost)
        except GitError as exc:  # its work stays on the lane's branch: said, never lost
            return dataclasses.replace(work, problem=f"the winner's work could not be moved to its branch ({exc})")
        return dataclasses.replace(work, branch=executor.trees.branch(task_id))

    def drop(self, attempt: Attempt) -> None:
        """A losing lane's worktree and branch removed, its work kept on its lost ref, never merged
        (the task's own worktree is not a lane)."""
        executor = self.launcher.executor
        if attempt.launch.lane is not None and isinstance(executor, WorktreeExecutor):
            Lanes(executor.trees).drop(attempt.launch.lane, attempt.task.id, attempt.number)


def take_over(own: Attempt, other: Attempt) -> None:
    """The task's attempt (the one the loop knows) becomes ``other``, which won: its number, its
    backend, its job and logs; its start stays the task's."""
    own.number, own.settings, own.backend = other.number, other.settings, other.backend
    own.job, own.launch, own.observer = other.job, other.launch, other.observer
    own.fallback_from, own.session = other.fallback_from, other.session


def key(attempt: Attempt) -> str:
    """An attempt's place in admission's books beside its task's own (which holds the task's id)."""
    return f"{attempt.task.id}+{attempt.number}"
