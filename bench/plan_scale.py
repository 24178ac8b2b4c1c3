"""Plan scale: ``validate``, ``render`` and ``status`` on a 10,000-task layered plan.

    python bench/plan_scale.py [--tasks 10000] [--runs 1] [--orchestrator CMD]

The plan: 100 layers of 100 tasks (``true``), each depending on 2-3 tasks of the layer before
(seed 7), default settings. Each run starts from a fresh workspace holding only master_plan.md (the
last run's files deleted right before), then times, through the CLI and in this order: ``validate``,
``render`` (writes every brief) and ``status`` (nothing has run). Wall time from the outside; peak
RSS of the command from ``/usr/bin/time -v``. An untimed warm-up command runs first.
Targets: validate + render < 2 s, status < 0.3 s.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from benchlib import (
    WORK,
    Sample,
    Stats,
    Target,
    ToolFailed,
    cli_command,
    fresh_dir,
    layered,
    say,
    table,
    timed,
    verdict,
    warm_up,
    write_plan,
)

COMMANDS = ("validate", "render", "status")
VALIDATE_RENDER_LIMIT = 2.0
STATUS_LIMIT = 0.3


@dataclass(slots=True)
class ScaleResult:
    tasks: int
    edges: int = 0
    shape: str = ""
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    error: str | None = None
    targets: list[Target] = field(default_factory=list)


def run_plan_scale(
    command: Sequence[str], *, tasks: int = 10_000, runs: int = 1, timeout: float = 1800.0
) -> ScaleResult:
    width = 100 if tasks >= 1000 else 10
    dag = layered(max(1, tasks // width), width, "true", 0.0, seed=7, name=f"{tasks}-task layered plan")
    shape = f"{len(dag.levels())} layers × {width}"
    result = ScaleResult(len(dag), dag.edges(), shape, {name: [] for name in COMMANDS})
    directory = WORK / "runs" / "plan_scale"
    say(f"  plan_scale: validate/render/status x{runs} ({len(dag)} tasks)")
    try:
        for _ in range(runs):
            project = write_plan(dag, fresh_dir(directory) / "project", 4)
            for name in COMMANDS:
                argv = [*command, name, str(project)]
                result.samples[name].append(
                    timed(argv, directory, directory / f"{name}.log", rss=True, timeout=timeout)
                )
    except ToolFailed as exc:
        result.error = str(exc)
        say(f"  !! plan_scale: {exc}")
        return result
    walls = {name: Stats.of([s.wall for s in result.samples[name]]).median for name in COMMANDS}
    both = walls["validate"] + walls["render"]
    result.targets = [
        Target(
            f"plan_scale ({result.tasks:,} tasks) validate + render < {VALIDATE_RENDER_LIMIT:g} s",
            f"{both:.2f} s",
            both < VALIDATE_RENDER_LIMIT,
        ),
        Target(
            f"plan_scale ({result.tasks:,} tasks) status < {STATUS_LIMIT:g} s",
            f"{walls['status']:.2f} s",
            walls["status"] < STATUS_LIMIT,
        ),
    ]
    return result


def render_plan_scale(result: ScaleResult) -> str:
    head = f"{result.tasks} tasks, {result.edges} dependencies ({result.shape}), fresh workspace each run.\n\n"
    if result.error:
        return head + f"CRASHED: {result.error}"
    rows = []
    for name in COMMANDS:
        samples = result.samples[name]
        wall = Stats.of([s.wall for s in samples])
        rss = [s.rss_mb for s in samples if s.rss_mb is not None]
        rows.append([f"`{name}`", wall.fmt(2), f"{max(rss):.0f}" if rss else "?"])
    text = table(["command", "wall s, median (min–max)", "peak RSS MB"], rows)
    lines = [f"- {verdict(t.ok)} {t.name}: {t.value}" for t in result.targets]
    return head + text + "\n\n" + "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--orchestrator", default=f"{shlex.quote(sys.executable)} -m orchestrator")
    args = parser.parse_args(argv)
    command = cli_command(args.orchestrator)
    warm_up(command)
    result = run_plan_scale(command, tasks=args.tasks, runs=args.runs)
    print(render_plan_scale(result))
    return 1 if result.error else 0


if __name__ == "__main__":
    sys.exit(main())
