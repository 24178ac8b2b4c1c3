"""Memory: peak RSS of every command against the rule 10 x the plan's size + 12 KB a task + 150 MB.

    python bench/memory.py [--tasks 10000] [--shapes tasks,details,rows] [--sizes largest]
                           [--commands validate,run,...] [--orchestrator CMD]

Plans: ``tasks``, a plan of 10,000 one-line rows (``true``, 100 a layer, 2-3 dependencies each on
the layer before, as W4 and ``plan``); ``lines``, a plan of SIZE made of as many such rows as it
holds (57,023 at the largest: the most tasks a plan may have); ``details``, a plan of SIZE made of
long Task Details (1,000 tasks, each a section of SIZE/1,000 of prose); ``rows``, a plan of SIZE
made of many rows (a task a ~400-byte row, no details). Every plan has an emoji in its title: the
plan's text then takes 4 bytes a character in memory, as every plan's does once a run wrote its
status blocks (✅), the worst case of a size. SIZE ``largest`` is the largest plan accepted
(``PLAN_LIMIT`` less 1 KiB); others are MiB. Each plan gets a fresh workspace holding only
master_plan.md; then, in this order, each command runs once through the CLI: ``validate``,
``render``, ``run --executor fake``, ``status``, ``status --json``, ``graph``, ``list``,
``report``, ``aggregate``. Peak RSS from ``/usr/bin/time -v`` (or ``getrusage`` where it is
missing), beside the limit the rule gives the plan.
"""

from __future__ import annotations

import argparse
import random
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from benchlib import WORK, Target, ToolFailed, cli_command, fresh_dir, say, table, timed, verdict, warm_up

MB = 1024 * 1024
COMMANDS: dict[str, tuple[str, ...]] = {
    "validate": ("validate",),
    "render": ("render",),
    "run": ("run", "--executor", "fake"),
    "status": ("status",),
    "status --json": ("status", "--json"),
    "graph": ("graph",),
    "list": ("list",),
    "report": ("report",),
    "aggregate": ("aggregate",),
}
# The rule (``plan/model.MEMORY_RULE``: issue 39's, its tasks counted since issue 66): a command's
# peak RSS stays under FACTOR x the plan's size + PER_TASK_KB a task + FIXED_MB.
FACTOR = 10.0
PER_TASK_KB = 12.0
FIXED_MB = 150.0
WIDTH = 100  # tasks a layer
FILLER = (
    "Read the module, list what it exports and who imports it, and write down every function whose "
    "behaviour a caller depends on without a test that shows it. "
)


def limit_mb(plan_bytes: int, tasks: int) -> float:
    """The rule's bound for a plan of ``plan_bytes`` and ``tasks``, in MB."""
    return FACTOR * plan_bytes / MB + PER_TASK_KB * tasks / 1024 + FIXED_MB


def _deps(rng: random.Random, index: int) -> str:
    layer = index // WIDTH
    if layer == 0:
        return "None"
    previous = range((layer - 1) * WIDTH, layer * WIDTH)
    return ", ".join(f"T-{n + 1:06d}" for n in sorted(rng.sample(previous, rng.randint(2, 3))))


def plan_text(shape: str, size: int, tasks: int = 10_000) -> str:
    """A plan of ``size`` bytes exactly, UTF-8 (``tasks`` tasks, whatever the size, for ``tasks``)."""
    rng = random.Random(7)
    head = "---\nbackend: shell\nmax_parallel: 4\n---\n# 🎯 Memory benchmark\n\n## Task Decomposition\n"
    if shape == "tasks":
        head += "| Task ID | Command | Dependencies |\n|---|---|---|\n"
        return head + "".join(f"| T-{n + 1:06d} | true | {_deps(rng, n)} |\n" for n in range(tasks))
    if shape == "lines":
        head += "| Task ID | Command | Dependencies |\n|---|---|---|\n"
        lines: list[str] = []
        used = len(head.encode("utf-8")) + 2
        while True:
            line = f"| T-{len(lines) + 1:06d} | true | {_deps(rng, len(lines))} |\n"
            if used + len(line) > size - 1:
                break
            lines.append(line)
            used += len(line)
        return _padded(head + "".join(lines) + "\n", size, "\n")
    paragraph = (FILLER * 8).strip() + "\n\n"
    if shape == "rows":
        head += "| Task ID | Task Name | Command | Description | Dependencies |\n|---|---|---|---|---|\n"
        rows: list[str] = []
        used = len(head.encode("utf-8")) + 200  # (the details section that pads it to the size)
        while used < size - 500:
            n = len(rows)
            rows.append(f"| T-{n + 1:06d} | Check part {n + 1} | true | {FILLER * 2} | {_deps(rng, n)} |\n")
            used += len(rows[-1])
        text = head + "".join(rows) + "\n## Task Details\n\n### T-000001 Check part 1\n"
        return _padded(text, size, paragraph)
    if shape == "details":
        count = 1000
        head += "| Task ID | Task Name | Command | Dependencies |\n|---|---|---|---|\n"
        head += "".join(f"| T-{n + 1:06d} | Check part {n + 1} | true | {_deps(rng, n)} |\n" for n in range(count))
        head += "\n## Task Details\n"
        each = (size - len(head.encode("utf-8"))) // count
        sections = []
        for n in range(count):
            heading = f"\n### T-{n + 1:06d} Check part {n + 1}\n"
            sections.append(_padded(heading, max(len(heading) + 1, each - 1), paragraph) + "\n")
        return _padded(head + "".join(sections), size, paragraph)
    raise ValueError(f"no plan shape {shape!r}")


def _padded(text: str, size: int, paragraph: str) -> str:
    """``text`` with prose after it to make ``size`` bytes (UTF-8), ending in a newline."""
    room = size - len(text.encode("utf-8")) - 1
    if room < 0:
        raise ValueError(f"a plan of {size:,} bytes cannot hold this one")
    return text + (paragraph * (room // len(paragraph) + 1))[:room] + "\n"


@dataclass(slots=True)
class PlanRow:
    label: str
    plan_bytes: int
    tasks: int
    peaks: dict[str, float | None] = field(default_factory=dict)  # MB, None: not measured
    failed: dict[str, str] = field(default_factory=dict)


def measure_plan(
    command: Sequence[str], label: str, text: str, commands: Sequence[str], *, timeout: float = 3600.0
) -> PlanRow:
    directory = WORK / "runs" / "memory" / label.replace(" ", "-")
    project = fresh_dir(directory) / "project"
    (project / ".orchestrator").mkdir(parents=True)
    plan = project / ".orchestrator" / "master_plan.md"
    plan.write_text(text, encoding="utf-8")
    row = PlanRow(label, plan.stat().st_size, text.count("\n| T-"))
    for name in commands:
        argv = [*command, *COMMANDS[name], str(project)]
        try:
            sample = timed(argv, directory, directory / f"{name.replace(' ', '_')}.log", rss=True, timeout=timeout)
        except ToolFailed as exc:
            row.peaks[name] = None
            row.failed[name] = str(exc)
            continue
        row.peaks[name] = sample.rss_mb
        say(f"    {label} {name}: {sample.rss_mb:.0f} MB in {sample.wall:.1f} s")
    return row


def accepted_limit(python: str) -> int:
    """``PLAN_LIMIT`` of the orchestrator ``python`` imports."""
    code = "from orchestrator.plan.model import PLAN_LIMIT; print(PLAN_LIMIT)"
    return int(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout)


def run_memory(
    command: Sequence[str],
    python: str,
    *,
    tasks: int = 10_000,
    shapes: Sequence[str] = ("tasks", "details", "rows"),
    sizes: Sequence[str] = ("largest",),
    commands: Sequence[str] = tuple(COMMANDS),
) -> list[PlanRow]:
    say(f"  memory: {', '.join(commands)} on {', '.join(shapes)} plans")
    rows = []
    for shape in shapes:
        if shape == "tasks":
            rows.append(measure_plan(command, f"{tasks:,} tasks", plan_text("tasks", 0, tasks), commands))
            continue
        for size in sizes:
            largest = size == "largest"
            nbytes = accepted_limit(python) - 1024 if largest else int(float(size) * MB)
            label = f"{shape}, the largest accepted" if largest else f"{shape} {size} MiB"
            rows.append(measure_plan(command, label, plan_text(shape, nbytes), commands))
    return rows


def memory_targets(rows: Sequence[PlanRow]) -> list[Target]:
    """One a plan: every command's peak RSS under the rule's bound for it."""
    found = []
    for row in rows:
        limit = limit_mb(row.plan_bytes, row.tasks)
        measured = {name: peak for name, peak in row.peaks.items() if peak is not None}
        worst = max(measured, key=lambda name: measured[name]) if measured else None
        value = f"`{worst}` {measured[worst]:.0f} MB" if worst else "crashed"
        ok = worst is not None and measured[worst] < limit and not row.failed
        rule = "10 × size + 12 KB a task + 150"
        found.append(Target(f"memory: {row.label}, every command < {limit:.0f} MB ({rule})", value, ok))
    return found


def render_memory(rows: Sequence[PlanRow], commands: Sequence[str] = tuple(COMMANDS)) -> str:
    head = (
        "Peak RSS (MB) of each command, one run each on a fresh workspace, beside the rule's bound "
        "for the plan: 10 × its size + 12 KB a task + 150 MB.\n\n"
    )
    lines = []
    for row in rows:
        limit = limit_mb(row.plan_bytes, row.tasks)
        cells = [f"{row.label} ({row.plan_bytes / MB:.2f} MiB, {row.tasks:,} tasks)", f"{limit:.0f}"]
        for name in commands:
            peak = row.peaks.get(name)
            if name not in row.peaks:
                cells.append("—")
            else:
                cells.append("crashed" if peak is None else f"{peak:.0f}{'' if peak < limit else ' MISS'}")
        lines.append(cells)
    text = table(["plan", "bound MB", *(f"`{name}`" for name in commands)], lines)
    verdicts = [f"- {verdict(t.ok)} {t.name}: {t.value}" for t in memory_targets(rows)]
    crashes = [f"- {row.label} `{name}`: {why}" for row in rows for name, why in row.failed.items()]
    return head + text + "\n\n" + "\n".join(verdicts + crashes)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="largest", help="plan sizes in MiB, or largest: for details and rows")
    parser.add_argument("--shapes", default="tasks,details,rows")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--commands", default=",".join(COMMANDS))
    parser.add_argument("--orchestrator", default=f"{shlex.quote(sys.executable)} -m orchestrator")
    args = parser.parse_args(argv)
    command = cli_command(args.orchestrator)
    commands = [name.strip() for name in args.commands.split(",")]
    warm_up(command)
    rows = run_memory(
        command,
        sys.executable,
        tasks=args.tasks,
        shapes=args.shapes.split(","),
        sizes=args.sizes.split(","),
        commands=commands,
    )
    print(render_memory(rows, commands))
    return 1 if any(row.failed for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
