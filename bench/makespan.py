"""W2 and W3, scheduling quality: makespan / lower bound on two DAGs of short sleeps at concurrency 4.

    python bench/makespan.py [--runs 3] [--orchestrator CMD]

W2: 200 tasks of ``sleep 0.05`` in 20 layers of 10; each task depends on 2-3 random tasks of the
    layer before (seed 42).
W3: one ``sleep 2`` beside three chains of 15 x ``sleep 0.1``, then one join task (``sleep 0.05``):
    running level by level makes the chains wait behind the long task.

Lower bound = max(critical path, total work / concurrency) from the nominal durations; target:
the orchestrator's makespan at most 1.05x it (median of the runs; min-max beside it). For the
orchestrator the makespan is read from its result files (first ``started`` to last ``finished``);
its CLI wall time (start-up, rendering, final_output.md) is shown beside it. The plan has default
settings; an untimed warm-up command runs first. Standalone, this runs the orchestrator only;
``bench/run.py`` adds make, doit, snakemake and the asyncio references.
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
    layered,
    measure_rounds,
    orchestrator_tool,
    skewed,
    table,
    verdict,
    warm_up,
)

CONCURRENCY = 4
LIMIT = 1.05  # target: orchestrator makespan <= 1.05x the lower bound
ORCHESTRATOR = "orchestrator"


def w2_dag() -> Dag:
    return layered(20, 10, "sleep 0.05", 0.05, seed=42, name="layered")


def w3_dag() -> Dag:
    return skewed(chains=3, length=15, step=0.1, long=2.0)


@dataclass(slots=True)
class DagResult:
    label: str
    dag: Dag
    concurrency: int
    outcomes: list[Outcome] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)


def run_dag(label: str, dag: Dag, tools: Sequence[Tool], *, runs: int, concurrency: int = CONCURRENCY) -> DagResult:
    result = DagResult(label, dag, concurrency)
    result.outcomes.extend(measure_rounds(tools, dag, concurrency, runs, label=label))
    bound = dag.lower_bound(concurrency)
    ours = next((o for o in result.outcomes if o.tool == ORCHESTRATOR and o.ok), None)
    if ours is not None:
        ratio = ours.span().median / bound
        result.targets.append(
            Target(
                f"{label} {dag.name} ({len(dag)} tasks, max_parallel {concurrency}): makespan ≤ {LIMIT}× lower bound",
                ours.span().fmt(3, scale=1 / bound) + "×",
                ratio <= LIMIT,
            )
        )
    return result


def render_dag(result: DagResult) -> str:
    dag, c = result.dag, result.concurrency
    bound = dag.lower_bound(c)
    rows = []
    for outcome in result.outcomes:
        if not outcome.ok:
            rows.append([outcome.tool, outcome.problem(), "", "", ""])
            continue
        span, wall = outcome.span(), outcome.wall()
        own = any(s.makespan is not None for s in outcome.samples)
        target = f"{verdict(span.median / bound <= LIMIT)} (≤ {LIMIT}×)" if outcome.tool == ORCHESTRATOR else ""
        rows.append(
            [outcome.tool, span.fmt(3) + ("" if own else " ᵂ"), wall.fmt(3), span.fmt(3, scale=1 / bound), target]
        )
    header = ["tool", "makespan s, median (min–max)", "wall s", "makespan / lower bound (min–max)", "target"]
    return (
        f"{len(dag)} tasks, {dag.edges()} dependencies, {len(dag.levels())} levels, concurrency {c}: "
        f"lower bound = max(critical path {dag.critical_path():.2f} s, total work {dag.total_work():.2f} s / {c}) "
        f"= **{bound:.3f} s**.\n\n"
        + table(header, rows)
        + "\n\nᵂ no record of its own: makespan = the tool's wall time (its start-up included)."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--orchestrator", default=f"{shlex.quote(sys.executable)} -m orchestrator")
    args = parser.parse_args(argv)
    command = cli_command(args.orchestrator)
    warm_up(command)
    tools = [orchestrator_tool(command)]
    failed = False
    for label, dag in (("W2", w2_dag()), ("W3", w3_dag())):
        result = run_dag(label, dag, tools, runs=args.runs)
        print(f"## {label}: {dag.name}\n\n{render_dag(result)}\n")
        for target in result.targets:
            print(f"{verdict(target.ok)}  {target.name}: {target.value}")
        failed = failed or any(o.error for o in result.outcomes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
