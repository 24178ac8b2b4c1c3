"""Reference schedulers in bare asyncio, for comparison with the orchestrator.

    python bench/dagrun.py MODE DAG.json -j N [--via-bash]

MODE:
  floor   every task at once behind an ``asyncio.Semaphore(N)``, dependencies ignored (W1's floor:
          there are none). Nothing but ``asyncio.create_subprocess_exec`` and ``wait``.
  levels  level by level: start a level's tasks (at most N at once), wait for all of them, then the
          next level. What a naive orchestrator does.
  ready   a ready queue: a task starts as soon as its own dependencies are done (at most N at once).

``--via-bash`` spawns ``bash -e -c CMD`` (the very process the orchestrator's shell backend spawns);
without it the command is split with ``shlex`` and exec'd directly. stdin/stdout/stderr are
/dev/null. Prints one JSON line: ``{"makespan": first spawn to last exit in seconds, "tasks": n}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["floor", "levels", "ready"])
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
    elif args.mode == "levels":
        asyncio.run(levels(argvs, deps, args.jobs, clock))
    else:
        asyncio.run(ready(argvs, deps, args.jobs, clock))
    makespan = clock.last - clock.first if clock.first is not None else 0.0
    sys.stdout.write(json.dumps({"makespan": round(makespan, 6), "tasks": len(tasks)}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
