"""W1, per-task overhead: N no-op tasks (``true``) at concurrency 2, each tool against the asyncio floor.

    python bench/overhead.py [--tasks 1000] [--runs 3] [--orchestrator CMD]

Standalone it is quick: the orchestrator against the two floors only (the full comparison with
make, xargs, GNU parallel, doit and snakemake is ``bench/run.py``). The orchestrator is called
through its CLI (``orchestrator run``, default: ``python -m orchestrator`` with this interpreter)
and writes its full state (briefs, result files, logs, final_output.md, master_plan.md); it is
started in the project directory, as the README and the skill run it.
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
    Target,
    Tool,
    cli_command,
    dagrun_tool,
    independent,
    measure_rounds,
    orchestrator_tool,
    precompile,
    table,
    verdict,
)

FLOOR = "asyncio floor: `true`"
FLOOR_BASH = "asyncio floor: `bash -e -c true`"
ORCHESTRATOR = "orchestrator"
FLOOR_LIMIT = 1.5  # target: orchestrator <= 1.5x the floor
MUST_BEAT = ("GNU parallel", "doit", "snakemake")


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


def w1_targets(result: W1) -> list[Target]:
    ours, floor = result.find(ORCHESTRATOR), result.find(FLOOR)
    if ours is None:
        return []
    targets = []
    if floor is not None:
        ratio = ours.wall().median / floor.wall().median
        targets.append(Target(f"W1 orchestrator ≤ {FLOOR_LIMIT}× floor", f"{ratio:.2f}×", ratio <= FLOOR_LIMIT))
    for name in MUST_BEAT:
        peer = result.find(name)
        if peer is not None:
            mine, theirs = ours.wall().median, peer.wall().median
            targets.append(Target(f"W1 orchestrator ahead of {name}", f"{mine:.2f} s vs {theirs:.2f} s", mine < theirs))
    return targets


def render_w1(result: W1) -> str:
    n = len(result.dag)
    floor = result.find(FLOOR)
    ours = result.find(ORCHESTRATOR)
    rows = []
    for outcome in result.outcomes:
        if not outcome.ok:
            rows.append([outcome.tool, outcome.problem(), "", "", ""])
            continue
        wall = outcome.wall()
        ratio = f"{wall.median / floor.wall().median:.2f}×" if floor else "—"
        target = ""
        if outcome.tool == ORCHESTRATOR and floor:
            target = f"{verdict(wall.median / floor.wall().median <= FLOOR_LIMIT)} (≤ {FLOOR_LIMIT}×)"
        elif outcome.tool in MUST_BEAT and ours:
            target = f"{verdict(ours.wall().median < wall.median)} (orchestrator ahead)"
        rows.append([outcome.tool, wall.fmt(3), f"{wall.median / n * 1000:.2f}", ratio, target])
    text = table(["tool", "wall s, median (min–max)", "ms / task", "× floor", "target"], rows)
    notes = [
        f"{n} tasks of `true`, concurrency {result.concurrency}, {_runs(result)} run(s) each; "
        "wall time of the whole command, start-up included; ms / task = wall / tasks.",
        f"The floor ({FLOOR}) spawns exactly what the shell backend spawns for a one-command script "
        "(the program itself, as bash would exec it: `true`) with `asyncio.create_subprocess_exec` behind "
        "a `Semaphore`, as make and xargs do; the bash floor starts `bash -e -c true` for each task "
        "(GNU parallel and doit go through `/bin/sh -c`, snakemake through bash).",
    ]
    if ours and floor:
        extra = (ours.wall().median - floor.wall().median) / n * 1000
        notes.append(f"The orchestrator's own cost above the floor: {extra:.2f} ms per task.")
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
    precompile(sys.executable)
    tools = [orchestrator_tool(cli_command(args.orchestrator)), *floor_tools(sys.executable)]
    result = run_w1(tools, tasks=args.tasks, concurrency=args.concurrency, runs=args.runs, label="overhead")
    print(render_w1(result))
    for target in result.targets:
        print(f"{verdict(target.ok)}  {target.name}: {target.value}")
    return 1 if any(o.error for o in result.outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
