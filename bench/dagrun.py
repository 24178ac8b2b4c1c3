"""Reference schedulers in bare asyncio (and one without it), for comparison with the orchestrator.

    python bench/dagrun.py MODE DAG.json -j N [--via-bash]

MODE:
  floor   every task at once behind an ``asyncio.Semaphore(N)``, dependencies ignored (W1's floor:
          there are none). Nothing but ``asyncio.create_subprocess_exec`` and ``wait``.
  levels  level by level: start a level's tasks (at most N at once), wait for all of them, then the
          next level. What a naive orchestrator does.
  ready   a ready queue: a task starts as soon as its own dependencies are done (at most N at once).
  minimal the same ready queue with no event loop and no state: ``os.posix_spawn``, then a blocking
          ``os.wait()`` for whichever child ends first. About the least any tool that starts a
          process per task can do between one task's end and the next one's start.

``--via-bash`` spawns ``bash -e -c CMD`` (the very process the orchestrator's shell backend spawns);
without it the command is split with ``shlex`` and exec'd directly. stdin/stdout/stderr are
/dev/null. Prints one JSON line: ``{"makespan": first spawn to last exit in seconds, "tasks": n}``.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path


class Clock:
    def __init__(self) -> None:
        self.first: float | None = None
        self.last = 0.0


async def spawn(argv: list[str], clock: Clock) -> None:
    if clock.first is None:
        clock.first = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    code = await process.wait()
    clock.last = time.perf_counter()
    if code != 0:
        raise RuntimeError(f"{argv!r} exited {code}")


async def floor(argvs: dict[str, list[str]], jobs: int, clock: Clock) -> None:
    gate = asyncio.Semaphore(jobs)

    async def one(argv: list[str]) -> None:
        async with gate:
            await spawn(argv, clock)

    await asyncio.gather(*(one(argv) for argv in argvs.values()))


def levels_of(deps: dict[str, list[str]]) -> list[list[str]]:
    depth: dict[str, int] = {}
    for task in deps:  # the file lists dependencies before dependents
        depth[task] = 1 + max((depth[d] for d in deps[task]), default=-1)
    out: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for task, level in depth.items():
        out[level].append(task)
    return out


async def levels(argvs: dict[str, list[str]], deps: dict[str, list[str]], jobs: int, clock: Clock) -> None:
    for level in levels_of(deps):
        await floor({t: argvs[t] for t in level}, jobs, clock)


async def ready(argvs: dict[str, list[str]], deps: dict[str, list[str]], jobs: int, clock: Clock) -> None:
    gate = asyncio.Semaphore(jobs)
    done = {task: asyncio.Event() for task in argvs}

    async def one(task: str) -> None:
        for dep in deps[task]:
            await done[dep].wait()
        async with gate:
            await spawn(argvs[task], clock)
        done[task].set()

    await asyncio.gather(*(one(task) for task in argvs))


def minimal(argvs: dict[str, list[str]], deps: dict[str, list[str]], jobs: int, clock: Clock) -> None:
    order = {task: i for i, task in enumerate(argvs)}
    waiting = {task: len(deps[task]) for task in argvs}
    dependents: dict[str, list[str]] = {task: [] for task in argvs}
    for task, before in deps.items():
        for dep in before:
            dependents[dep].append(task)
    ready = [(order[t], t) for t in argvs if not waiting[t]]
    heapq.heapify(ready)
    null = os.open(os.devnull, os.O_RDWR)
    actions = [(os.POSIX_SPAWN_DUP2, null, fd) for fd in (0, 1, 2)]
    paths = {argv[0]: shutil.which(argv[0]) or argv[0] for argv in argvs.values()}
    running: dict[int, str] = {}
    clock.first = time.perf_counter()
    while ready or running:
        while ready and len(running) < jobs:
            task = heapq.heappop(ready)[1]
            argv = argvs[task]
            running[os.posix_spawn(paths[argv[0]], argv, os.environ, file_actions=actions)] = task
        pid, status = os.wait()
        task = running.pop(pid)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{argvs[task]!r} exited {os.waitstatus_to_exitcode(status)}")
        for child in dependents[task]:
            waiting[child] -= 1
            if not waiting[child]:
                heapq.heappush(ready, (order[child], child))
    clock.last = time.perf_counter()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["floor", "levels", "ready", "minimal"])
    parser.add_argument("dag", type=Path)
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--via-bash", action="store_true", help="spawn `bash -e -c CMD` like the shell backend")
    args = parser.parse_args(argv)
    tasks = json.loads(args.dag.read_text(encoding="utf-8"))
    argvs = {t["id"]: (["bash", "-e", "-c", t["cmd"]] if args.via_bash else shlex.split(t["cmd"])) for t in tasks}
    deps = {t["id"]: list(t["deps"]) for t in tasks}
    clock = Clock()
    if args.mode == "floor":
        asyncio.run(floor(argvs, args.jobs, clock))
    elif args.mode == "minimal":
        minimal(argvs, deps, args.jobs, clock)
    elif args.mode == "levels":
        asyncio.run(levels(argvs, deps, args.jobs, clock))
    else:
        asyncio.run(ready(argvs, deps, args.jobs, clock))
    makespan = clock.last - clock.first if clock.first is not None else 0.0
    sys.stdout.write(json.dumps({"makespan": round(makespan, 6), "tasks": len(tasks)}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
