"""``WorktreeExecutor``: the tasks with ``isolation: worktree`` run in a git worktree of their own.

It wraps the executor that runs the processes (``LocalExecutor``, or a cluster's: the workers run
in the worktrees through a shared filesystem, or on a checkout of their branch sent as a git
bundle, ``executors/luggage``) and adds only git around each
attempt of an isolated task: before it, the task's worktree is made or found again
(``Trees.open``: after a kill -9, the one the interrupted attempt worked in, as it was left), and
the launch's directory is moved into it (the project's place in the repository, kept); after
it, everything the attempt changed is committed with a message naming the task (``Trees.finish``),
and the ``ProcessRun`` says what is on the branch (``work``). Other tasks pass straight through.

Its processes are the wrapped executor's: it has that executor's name and capabilities, a dead
runner's attempts are settled as that executor settles them, and no worktree is ever removed here.
Git runs in worker threads, each call waited for: a cancelled attempt's worktree is left as it is,
for the next run to commit.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Collection, Mapping, Sequence

import anyio

from orchestrator.errors import GitError
from orchestrator.executors.base import (
    Checkout,
    Executor,
    Handle,
    Launch,
    Leftover,
    LineCallback,
    ProcessRun,
    StartCallback,
)
from orchestrator.executors.capabilities import Cluster
from orchestrator.git.lanes import Lanes
from orchestrator.git.worktrees import Trees


class WorktreeExecutor(Executor):
    def __init__(self, inner: Executor, trees: Trees, isolated: Collection[str], titles: Mapping[str, str]) -> None:
        """``isolated``: the tasks that run in a worktree; ``titles``: each one's title, for its commits."""
        self.inner = inner
        self.name = inner.name  # (what the journal records: the executor that runs its processes)
        self.can = inner.can
        self.trees = trees
        self.isolated = set(isolated)
        self.titles = dict(titles)

    async def run(
        self, launch: Launch, *, on_start: StartCallback | None = None, on_line: LineCallback | None = None
    ) -> ProcessRun:
        task = launch.task
        if task not in self.isolated:
            return await self.inner.run(launch, on_start=on_start, on_line=on_line)
        upstream = [dep for dep in launch.upstream if dep in self.isolated]
        name = launch.lane or task
        try:
            start = await anyio.to_thread.run_sync(self._start, task) if launch.lane else None  # (a raced lane's own)
            tree = await anyio.to_thread.run_sync(functools.partial(self.trees.open, name, upstream, start=start))
            cwd = self.trees.inside(launch.cwd, tree)
        except (GitError, OSError) as exc:
            return ProcessRun(None, None, 0.0, start_error=f"its worktree: {exc}")

        def started(handle: Handle) -> None:
            if on_start is not None:
                on_start({**handle, "worktree": str(tree), "branch": self.trees.branch(name)})

        message = f"{task}: {self.titles.get(task, task)} (attempt {launch.attempt})"
        moved = dataclasses.replace(launch, cwd=cwd, checkout=Checkout(tree, message))
        run = await self.inner.run(moved, on_start=started, on_line=on_line)
        with anyio.CancelScope(shield=True):
            work = await anyio.to_thread.run_sync(self.trees.finish, name, message)
        return dataclasses.replace(run, work=work)

    def _start(self, task: str) -> str:
        """Where a lane of ``task`` begins: where its race began (``Lanes.began``: best of N's, a
        hedged attempt's), else the task's branch, which holds none of the running attempt's work
        until it ends."""
        return Lanes(self.trees).began(task) or self.trees.branch(task)

    @property
    def cluster(self) -> Cluster | None:
        return self.inner.cluster

    async def has_worker(self, name: str) -> bool:
        return await self.inner.has_worker(name)

    async def close(self) -> None:
        await self.inner.close()

    async def settle(
        self, leftovers: Sequence[Leftover], *, grace: float, wait: bool, tell: Callable[[str], None] | None = None
    ) -> list[str]:
        return await self.inner.settle(leftovers, grace=grace, wait=wait, tell=tell)
