"""Plan scale: ``validate``, ``render`` and ``status`` on a 10,000-task layered plan.

    python bench/plan_scale.py [--tasks 10000] [--runs 1] [--orchestrator CMD]

The plan: 100 layers of 100 tasks (``true``), each depending on 2-3 tasks of the layer before
(seed 7), default settings. Each run starts from a fresh workspace holding only master_plan.md (the
last run's files deleted right before), then times, through the CLI and in this order: ``validate``,
``render`` (writes every brief) and ``status`` (nothing has run). Wall time from the outside; peak
RSS of the command from ``/usr/bin/time -v``. An untimed warm-up command runs first.
Targets: validate + render < 2 s, status < 0.3 s.

Beside ``render``, the same run measures the machine's floor for it: the briefs ``render`` just
wrote, written again by this process into a new directory as plain files (open with
O_CREAT|O_EXCL, write, close; no rendering, no interpreter start, no sync). File creation on
the benchmark machines varies several-fold from minute to minute, and this row shows how much
of ``render``'s time was the disk's.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

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
    floor: list[float] = field(default_factory=list)  # seconds to write render's files again, plainly
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
                if name == "render":
                    result.floor.append(write_again(project / ".orchestrator" / "agent_tasks"))
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


def write_again(briefs: Path) -> float:
    """Seconds to write the files in ``briefs`` again, into a new directory beside it, as plain
    files; the copy is deleted after."""
    contents = [path.read_bytes() for path in sorted(briefs.iterdir())]
    copy = briefs.with_name("floor-copy")
    shutil.rmtree(copy, ignore_errors=True)
    os.mkdir(copy)
    began = time.perf_counter()
    for index, data in enumerate(contents):
        fd = os.open(copy / f"f{index}.md", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    took = time.perf_counter() - began
    shutil.rmtree(copy)
    return took


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
        if name == "render" and result.floor:
            rows.append(["floor: the same files written plainly, in-process", Stats.of(result.floor).fmt(2), "—"])
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
