"""Start-up and the commands an agent calls in a loop, two builds side by side (issues 52, 66).

    python bench/commands.py [--rounds 7] [--against 5ddf2d3] [--write] [REV]

REV (default ``.``, the working tree) against ``--against`` (default 5ddf2d3, the build issue 66
measured from), each exported as ``alternate.py`` exports a build and byte-compiled alike, run as
``python -m orchestrator`` with that build first on ``PYTHONPATH``, in ``user_env`` (bytecode read
as on a user's machine). The commands: ``--version`` and ``--help``; ``status``, ``list``,
``add``, ``update`` and ``validate`` of a 1,000-task plan; ``status`` of it the first time after an
edit; ``validate`` and ``render`` of a 10,000-task plan (``plan_scale``'s layered plans, seed 7).
Every command starts from the same workspace: the plan as written and what a command derived
from it (a snapshot, ``state/snapshot.*``, issue 66), nothing else (``add``'s row, ``update``'s
edit, ``render``'s briefs and status blocks undone before the next run, outside the time taken).
The plan is written back only when a command changed it: a copy of the same bytes is the same
plan to a snapshot, and a user's plan is not rewritten between two commands. The edited case has
a workspace of its own, whose plan is edited before each run (a task's name, in turn one of two):
what the first command after a person's save costs, which nothing kept can spare.

Each round runs every command once on each build, the two in turn and in a shuffled order, so that
a slow minute of this shared machine falls on both alike; a figure is the median over the rounds of
each build's run (min–max), and the ratio the median of the rounds' ratios (REV ÷ the other, pair by
pair). Wall time is taken from the outside around the whole process; CPU (user + system) and peak
RSS from the kernel's accounting of the finished child (``os.wait4``). The load average is in the
report: on 2 shared cores the wall times of a loaded minute say more about the neighbours than
about the build, and the CPU ratio less so.
"""

from __future__ import annotations

import argparse
import compileall
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from alternate import export
from benchlib import (
    BENCH_DIR,
    WORK,
    bench_python,
    fresh_dir,
    layered,
    machine_line,
    marked_section,
    put_marked_section,
    say,
    table,
    user_env,
    verdict,
    write_plan,
)

BEGIN = "<!-- commands: written by bench/commands.py -->"
END = "<!-- /commands -->"
BASELINE = "5ddf2d3"


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    words: tuple[str, ...]  # after ``python -m orchestrator``; ``{ws}`` is the workspace
    tasks: int  # the plan's size (0: no plan)
    bound: float  # issue 66's target: this build's time at most ``bound`` × the other's (0: none)
    floor: bool = False  # the interpreter alone (``python -c pass``), not the orchestrator
    edited: bool = False  # its own workspace, the plan edited before each run


# "No slower": within what two runs of the same interpreter differ by here, round by round (the
# floor's own ratio, python -c pass against itself: medians of 0.92-1.03 over seven runs).
SAME = 1.05
CASES = (
    Case("floor: the interpreter alone, `python -c pass`", ("-c", "pass"), 0, 0.0, floor=True),
    Case("`--version`", ("--version",), 0, SAME),
    Case("`--help`", ("--help",), 0, SAME),
    Case("`status`, 1,000 tasks", ("status", "{ws}"), 1000, 0.5),
    Case("`list`, 1,000 tasks", ("list", "{ws}"), 1000, 0.5),
    Case("`status --json`, 1,000 tasks", ("status", "--json", "{ws}"), 1000, 0.5),
    Case("`add`, 1,000 tasks", ("add", "{ws}", "one more task", "--command", "true"), 1000, 0.5),
    Case("`update`, 1,000 tasks", ("update", "{ws}", "T-0500", "--priority", "high"), 1000, 0.5),
    Case("`status` after an edit, 1,000 tasks", ("status", "{ws}"), 1000, SAME, edited=True),
    Case("`validate`, 1,000 tasks", ("validate", "{ws}"), 1000, 0.0),
    Case("`validate`, 10,000 tasks", ("validate", "{ws}"), 10000, 0.6),
    Case("`render`, 10,000 tasks", ("render", "{ws}"), 10000, 0.6),
)
BOTH = ("`validate`, 10,000 tasks", "`render`, 10,000 tasks")  # judged together: validate + render


@dataclass(slots=True)
class Runs:
    """One build's runs of one command."""

    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)  # MB


@dataclass(slots=True)
class Build:
    label: str
    path: Path
    home: Path  # its workspaces
    runs: dict[str, Runs] = field(default_factory=dict)


Key = tuple[int, bool]  # a workspace: its tasks, and whether it is the edited one


def workspaces(home: Path) -> dict[Key, Path]:
    """The 1,000- and 10,000-task projects of one build, and the 1,000-task one edited before
    each run, written once."""
    found: dict[Key, Path] = {}
    for tasks in (1000, 10000):
        dag = layered(tasks // 100, 100, "true", 0.0, seed=7, name=f"{tasks}-task layered plan")
        found[tasks, False] = write_plan(dag, home / f"p{tasks}", 4)
        if tasks == 1000:
            found[tasks, True] = write_plan(dag, home / f"p{tasks}-edited", 4)
    return found


def restore(project: Path, plan: str) -> None:
    """The workspace as written: its plan (written back only if a command changed it) and what a
    command derived from it (``state/snapshot.*``), and nothing else a command left beside it."""
    root = project / ".orchestrator"
    for entry in root.iterdir():
        if entry.name == "state" and entry.is_dir():
            for kept in entry.iterdir():
                if not kept.name.startswith("snapshot."):
                    shutil.rmtree(kept) if kept.is_dir() else kept.unlink()
        elif entry.name != "master_plan.md":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    path = root / "master_plan.md"
    if path.read_text(encoding="utf-8") != plan:
        path.write_text(plan, encoding="utf-8")


def edited(plan: str, turn: int) -> str:
    """The plan with a person's edit: its first task's command named in turn one of two ways
    (as long as each other: a save that keeps the file's size)."""
    return plan.replace("| T-0001 | true |", "| T-0001 | :    |" if turn % 2 else "| T-0001 | true |", 1)


_EDITS: dict[str, int] = {}  # each build's edited runs so far: each one edits its plan again


def run_once(build: Build, case: Case, python: str, projects: dict[Key, Path], plans: dict[Key, str]) -> None:
    project = projects.get((case.tasks, case.edited))
    if project is not None:
        plan = plans[case.tasks, case.edited]
        if case.edited:
            _EDITS[build.label] = _EDITS.get(build.label, 0) + 1
            plan = edited(plan, _EDITS[build.label])
        restore(project, plan)
    words = [word.replace("{ws}", str(project)) for word in case.words]
    argv = [python, *words] if case.floor else [python, "-m", "orchestrator", *words]
    env = {**user_env(), "PYTHONPATH": str(build.path)}
    began = time.perf_counter()
    child = subprocess.Popen(
        argv, cwd=build.home, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert child.stderr is not None
    said = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - began
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{build.label}: {' '.join(words)}: exit {child.returncode}: {said.decode(errors='replace')}")
    runs = build.runs.setdefault(case.name, Runs())
    runs.walls.append(wall)
    runs.cpus.append(usage.ru_utime + usage.ru_stime)
    runs.peaks.append(usage.ru_maxrss / 1024)


def paired(this: Sequence[float], other: Sequence[float]) -> tuple[float, float, float]:
    ratios = [a / b for a, b in zip(this, other, strict=True)]
    return statistics.median(ratios), min(ratios), max(ratios)


def fmt(values: Sequence[float], digits: int = 3) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def report(this: Build, other: Build, rounds: int, loads: tuple[str, str]) -> str:
    rows: list[list[str]] = []
    verdicts: list[str] = []
    for case in CASES:
        mine, theirs = this.runs[case.name], other.runs[case.name]
        wall, cpu = paired(mine.walls, theirs.walls), paired(mine.cpus, theirs.cpus)
        rows.append(
            [
                case.name,
                fmt(mine.walls),
                fmt(theirs.walls),
                f"{wall[0]:.2f}× ({wall[1]:.2f}–{wall[2]:.2f})",
                fmt(mine.cpus),
                fmt(theirs.cpus),
                f"{cpu[0]:.2f}×",
                f"{max(mine.peaks):.0f} / {max(theirs.peaks):.0f}",
                f"≤ {case.bound}×" if case.bound else "",
                "" if case.name in BOTH or not case.bound else verdict(wall[0] <= case.bound),
            ]
        )
    both = [[sum(pair) for pair in zip(*(b.runs[name].walls for name in BOTH), strict=True)] for b in (this, other)]
    ratio = paired(both[0], both[1])
    rows.append(
        [
            "`validate` + `render`, 10,000 tasks",
            fmt(both[0]),
            fmt(both[1]),
            f"{ratio[0]:.2f}× ({ratio[1]:.2f}–{ratio[2]:.2f})",
            "",
            "",
            "",
            "",
            "≤ 0.6×",
            verdict(ratio[0] <= 0.6),
        ]
    )
    verdicts = [f"{row[-1]} {row[0]}: {row[3]} of {other.label}'s wall" for row in rows if row[-1]]
    header = [
        "command",
        f"wall s, {this.label}",
        f"wall s, {other.label}",
        "wall ratio (pairs)",
        f"CPU s, {this.label}",
        f"CPU s, {other.label}",
        "CPU ratio",
        "peak RSS MB",
        "target",
        "",
    ]
    return "\n".join(
        [
            "## Start-up and the commands agents loop on (issues 52, 66)",
            "",
            f"Written by `python bench/commands.py --rounds {rounds} --write` on {machine_line()}: {this.label} "
            f"against {other.label}, {rounds} rounds, each command once a round on each build in turn (shuffled); "
            "median (min–max) over the rounds, the ratio the median of the rounds' ratios. "
            f"Load average (1/5/15 min) before: {loads[0]}, after: {loads[1]}.",
            "",
            table(header, rows),
            "",
            *[f"- {line}" for line in verdicts],
            "",
            "The floor is the interpreter's own start-up with this environment's site-packages, in every "
            "command's time alike. Peak RSS is each process's own (`ru_maxrss`), the largest over the rounds. "
            "Where one command's time goes: `python -X importtime -m orchestrator COMMAND` and `python -m "
            "cProfile -s cumtime -m orchestrator COMMAND`; what it may import: `tests/test_imports.py`.",
        ]
    )


def section_of(path: Path) -> str | None:
    """This benchmark's section of the report at ``path``, markers included (``run.py`` keeps it)."""
    return marked_section(path, BEGIN, END)


def _label(rev: str) -> str:
    """A build as the report names it: its commit, and ``+`` for the working tree's changes."""
    head = (
        subprocess.run(
            ["git", "-C", str(BENCH_DIR), "rev-parse", "--short", "HEAD" if rev == "." else rev],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        or rev
    )
    if rev != ".":
        return head
    dirty = subprocess.run(
        ["git", "-C", str(BENCH_DIR), "status", "--porcelain", "--", "../orchestrator"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"{head}+" if dirty else head


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rev", nargs="?", default=".", help="the build measured (default: the working tree)")
    parser.add_argument("--against", default=BASELINE, help=f"the build it is measured against (default {BASELINE})")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--write", action="store_true", help="write the section into bench/RESULTS.md")
    args = parser.parse_args(argv)
    python = bench_python()
    labels = {args.rev: _label(args.rev), args.against: _label(args.against)}
    builds = [
        Build(labels[rev], export(rev), fresh_dir(WORK / "commands" / str(index)))
        for index, rev in enumerate((args.rev, args.against))
    ]
    setups: dict[str, tuple[dict[Key, Path], dict[Key, str]]] = {}
    for build in builds:
        compileall.compile_dir(str(build.path / "orchestrator"), quiet=1)
        projects = workspaces(build.home)
        plans = {key: (path / ".orchestrator" / "master_plan.md").read_text("utf-8") for key, path in projects.items()}
        setups[build.label] = (projects, plans)
        for case in CASES:  # untimed: Python writes what bytecode is left to write, the disk warms
            run_once(build, case, python, *setups[build.label])
        build.runs.clear()
    before = load()
    say(f"commands: {' against '.join(b.label for b in builds)}, {args.rounds} rounds, {python}")
    for number in range(1, args.rounds + 1):
        for case in CASES:
            order = list(builds)
            random.shuffle(order)
            for build in order:
                run_once(build, case, python, *setups[build.label])
        say(f"  round {number}: load {load()}")
    text = report(builds[0], builds[1], args.rounds, (before, load()))
    print(text)
    if args.write:
        put_marked_section(BENCH_DIR / "RESULTS.md", BEGIN, END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
