"""W1, per-task overhead: N no-op tasks (``true``) at concurrency 2, each tool against the asyncio floor.

    python bench/overhead.py [--tasks 1000] [--runs 3] [--orchestrator CMD]

Target: the orchestrator at most 3 ms per task above the floor, a whole process (``dagrun.py
floor``: ``asyncio.create_subprocess_exec`` of ``true`` behind a semaphore) run in the same rounds.
Each round runs every tool once, so the figure is taken per round ((orchestrator - floor) / tasks)
and reported as median (min-max) over the rounds.

Standalone it is quick: the orchestrator against the two floors only (the comparison with make,
xargs, GNU parallel, doit and snakemake is ``bench/run.py``). The orchestrator is called through
its CLI (``orchestrator run`` in the project directory; default ``python -m orchestrator`` with
this interpreter) on a plan with default settings, after an untimed warm-up command, and writes
its full state (briefs, result files, logs, final_output.md, master_plan.md).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from benchlib import (
    Dag,
    Outcome,
    Stats,
    Target,
    Tool,
    cli_command,
    dagrun_tool,
    independent,
    measure_rounds,
    orchestrator_tool,
    table,
    verdict,
    warm_up,
)

FLOOR = "asyncio floor: `true`"
FLOOR_BASH = "asyncio floor: `bash -e -c true`"
ORCHESTRATOR = "orchestrator"
ABOVE_FLOOR_LIMIT = 3.0  # target: orchestrator <= floor + 3 ms per task


@dataclass(slots=True)
class W1:
    dag: Dag
    concurrency: int
    outcomes: list[Outcome] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)

    def find(self, name: str) -> Outcome | None:
        return next((o for o in self.outcomes if o.tool == name and o.ok), None)


def floor_tools(python: str) -> list[Tool]:
    """The floor the ratios are taken against (it spawns what the shell backend spawns for a
    one-command script: the program itself), then the floor that starts bash for each task."""
    return [
        dagrun_tool(python, "floor", via_bash=False, name=FLOOR),
        dagrun_tool(python, "floor", via_bash=True, name=FLOOR_BASH),
    ]


def run_w1(tools: Sequence[Tool], *, tasks: int, concurrency: int, runs: int, label: str = "W1") -> W1:
    dag = independent(tasks)
    result = W1(dag, concurrency)
    result.outcomes.extend(measure_rounds(tools, dag, concurrency, runs, label=label))
    result.targets = w1_targets(result)
    return result


def above_floor(result: W1, outcome: Outcome) -> Stats | None:
    """ms per task above the floor, round by round (a tool that crashed has fewer rounds)."""
    floor = result.find(FLOOR)
    if floor is None or not outcome.ok:
        return None
    n = len(result.dag)
    pairs = zip(outcome.samples, floor.samples, strict=False)
    return Stats.of([(mine.wall - base.wall) / n * 1000 for mine, base in pairs])


def w1_targets(result: W1) -> list[Target]:
    ours = result.find(ORCHESTRATOR)
    extra = above_floor(result, ours) if ours else None
    if extra is None:
        return []
    name = (
        f"W1 {len(result.dag):,} no-op tasks at max_parallel {result.concurrency}: "
        f"ms / task above the asyncio floor ≤ {ABOVE_FLOOR_LIMIT:g}"
    )
    return [Target(name, f"{extra.fmt(2)} ms", extra.median <= ABOVE_FLOOR_LIMIT)]


def render_w1(result: W1) -> str:
    n = len(result.dag)
    floor = result.find(FLOOR)
    rows = []
    for outcome in result.outcomes:
        if not outcome.ok:
            rows.append([outcome.tool, outcome.problem(), "", "", "", ""])
            continue
        wall = outcome.wall()
        ratio = f"{wall.median / floor.wall().median:.2f}×" if floor else "—"
        extra = above_floor(result, outcome) if outcome.tool != FLOOR else None
        target = ""
        if outcome.tool == ORCHESTRATOR and extra is not None:
            target = f"{verdict(extra.median <= ABOVE_FLOOR_LIMIT)} (≤ {ABOVE_FLOOR_LIMIT:g})"
        rows.append(
            [
                outcome.tool,
                wall.fmt(3),
                f"{wall.median / n * 1000:.2f}",
                extra.fmt(2) if extra is not None else "—",
                ratio,
                target,
            ]
        )
    header = ["tool", "wall s, median (min–max)", "ms / task", "ms / task above floor", "× floor", "target"]
    text = table(header, rows)
    notes = [
        f"{n} tasks of `true`, concurrency {result.concurrency}, {_runs(result)} round(s), every tool once a "
        "round; wall time of the whole command, start-up included; ms / task = wall / tasks; above floor = "
        "(the tool's wall − the floor's wall in the same round) / tasks, median (min–max) over the rounds.",
        f"The floor ({FLOOR}) is a whole Python process: `asyncio.create_subprocess_exec` of the program "
        "`true` behind a `Semaphore`, stdio on /dev/null. The bash floor starts `bash -e -c true` for each "
        "task, the process the shell backend starts (GNU parallel and doit go through `/bin/sh -c`, "
        "snakemake through bash).",
    ]
    return text + "\n\n" + "\n".join(f"- {line}" for line in notes)


def _runs(result: W1) -> int:
    return max((len(o.samples) for o in result.outcomes), default=0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--orchestrator", default=f"{shlex.quote(sys.executable)} -m orchestrator")
    args = parser.parse_args(argv)
    command = cli_command(args.orchestrator)
    warm_up(command)
    tools = [orchestrator_tool(command), *floor_tools(sys.executable)]
    result = run_w1(tools, tasks=args.tasks, concurrency=args.concurrency, runs=args.runs, label="overhead")
    print(render_w1(result))
    for target in result.targets:
        print(f"{verdict(target.ok)}  {target.name}: {target.value}")
    return 1 if any(o.error for o in result.outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
