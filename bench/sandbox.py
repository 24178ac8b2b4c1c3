"""The sandbox's cost a task: a run from outside (its shell tasks in bubblewrap) against the same run
by the person, side by side.

    python bench/sandbox.py [--tasks 100] [--rounds 5]

Each round runs a plan of ``--tasks`` shell tasks (``true``, at concurrency 2) twice, the person's
run and ``run --untrusted bench``, in turn, each as a whole ``orchestrator run`` process after the
plan's results are removed; the figure is (sandboxed - plain) / tasks, in milliseconds, taken
round by round and reported as median (min-max). A second figure times the process alone: one
``bash -e -c true`` against the same in the sandbox's ``bwrap``, a hundred times each, in turn.
Target (issue 73): at most 15 ms a task.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS = 15.0


def _plan(tasks: int) -> str:
    rows = "\n".join(f"| T-{n:03d} | no-op {n} | None | `true` |" for n in range(1, tasks + 1))
    return (
        "---\nbackend: shell\nmax_parallel: 2\nretries: 0\nstatus_blocks: false\n---\n# Sandbox cost\n\n"
        "## Task Decomposition\n| Task ID | Task Name | Dependencies | Command |\n|---|---|---|---|\n" + rows + "\n"
    )


def _run(project: Path, outside: bool) -> float:
    shutil.rmtree(project / ".orchestrator" / "results", ignore_errors=True)
    argv = [sys.executable, "-m", "orchestrator", "run"]
    if outside:
        argv += ["--untrusted", "bench"]
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=project, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the run failed ({'outside' if outside else 'plain'}): {done.stderr.strip()[-500:]}")
    return elapsed


def _process(times: int) -> tuple[float, float]:
    """The median wall of one ``bash -e -c true``, plain and in the sandbox, ``times`` each in turn."""
    from orchestrator.executors.sandbox import Sandbox

    here = Path.cwd()
    wrapped = Sandbox(here).argv(["bash", "-e", "-c", "true"], here, {"HOME": str(Path.home())}, writable=False)
    plain: list[float] = []
    boxed: list[float] = []
    for _ in range(times):
        for argv, into in ((["bash", "-e", "-c", "true"], plain), (wrapped, boxed)):
            started = time.perf_counter()
            subprocess.run(argv, check=True)
            into.append(time.perf_counter() - started)
    return statistics.median(plain), statistics.median(boxed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    from orchestrator.executors.sandbox import missing

    why = missing()
    if why is not None:
        print(f"no sandbox here: {why}")
        return 1
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as tmp:
        project = Path(tmp)
        (project / ".orchestrator").mkdir()
        (project / ".orchestrator" / "master_plan.md").write_text(_plan(args.tasks), encoding="utf-8")
        _run(project, False)  # (warm-up: briefs written, modules compiled)
        per_task: list[float] = []
        for _ in range(args.rounds):
            plain = _run(project, False)
            outside = _run(project, True)
            per_task.append((outside - plain) / args.tasks * 1000)
    plain_process, boxed_process = _process(100)
    median = statistics.median(per_task)
    print(f"{args.tasks} tasks of `true`, concurrency 2, {args.rounds} rounds: a run from outside against the person's")
    print(f"  sandbox cost a task: {median:.2f} ms (min {min(per_task):.2f}, max {max(per_task):.2f})")
    print(f"  one process: bash -e -c true {plain_process * 1000:.2f} ms, in bwrap {boxed_process * 1000:.2f} ms "
          f"(+{(boxed_process - plain_process) * 1000:.2f} ms)")  # fmt: skip
    met = median <= TARGET_MS
    print(f"  target: at most {TARGET_MS:g} ms a task — {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
