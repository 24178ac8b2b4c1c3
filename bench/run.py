"""The benchmark suite: the orchestrator against its peers on this machine; writes bench/RESULTS.md.

    python bench/run.py [--quick] [--runs N] [--only W1,W2,...] [--smoke]

Creates (once) a virtual environment in bench/.work/venv with doit, snakemake and this repository
installed as the README installs it (``pip install -e .``), then runs, as a user runs it (default
settings, a fresh workspace each run with the last run's files deleted right before, bytecode
written by an untimed first command):

  W1  overhead: 1,000 no-op tasks at concurrency 2 — orchestrator, asyncio floors, xargs, make,
      GNU parallel, doit, snakemake; target: orchestrator ≤ floor + 3 ms / task
  W2  layered DAG: 200 x ``sleep 0.05``, concurrency 4 — makespan ≤ 1.05x lower bound
  W3  skewed DAG: one 2 s task beside short chains, concurrency 4 — makespan ≤ 1.05x lower bound
  W4  scale: 1,000 and 10,000 no-op tasks in a DAG — wall time and peak RSS (< 200 MB at 10,000)
  W5  CLI start: ``orchestrator status`` on a 1,000-task workspace after a run, median of 5
  plan  ``validate`` + ``render`` (< 2 s) and ``status`` (< 0.3 s) on a 10,000-task plan
  memory  peak RSS of every command on a 10,000-task plan and on the largest plans accepted, against
      10 x the plan's size + 12 KB a task + 150 MB (issues 39, 66); see ``memory.py``
  W6-W8  agents (issue 21): the real claude CLI against a fake Messages API; see ``agents.py``.
      Skipped, with the reason in the report, where claude is not installed.

The report leads with the issue's targets, each PASS/MISS; a missed target never fails the command,
a crashing tool does (exit 1). ``--smoke`` is a tiny version for CI (30 tasks, one run,
orchestrator + floor + make, the current interpreter, no venv; a few agent tasks where claude is
installed), under a minute; its report goes to bench/.work/RESULTS-smoke.md. The agents' section
of the report is kept when a run leaves W6-W8 out.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from agent_startup import section_of as startup_section_of
from agents import WORKLOADS as AGENT_WORKLOADS
from agents import Report, run_agents, section_of, w7_runs_default
from agents import render as render_agents
from benchlib import (
    BENCH_DIR,
    GNU_TIME,
    REPO,
    TUNED_LABEL,
    WORK,
    Dag,
    Outcome,
    Target,
    Tool,
    ToolFailed,
    dagrun_tool,
    disk_line,
    doit_tool,
    fresh_dir,
    have,
    layered,
    machine_line,
    make_tool,
    measure,
    orchestrator_tool,
    parallel_tool,
    run_dir,
    say,
    skipped,
    snakemake_tool,
    table,
    timed,
    tool_version,
    verdict,
    warm_up,
    write_plan,
    xargs_tool,
)
from cluster import section_of as cluster_section_of
from commands import section_of as commands_section_of
from doors import section_of as doors_section_of
from items import section_of as items_section_of
from learned import section_of as learned_section_of
from makespan import DagResult, render_dag, run_dag, w2_dag, w3_dag
from memory import PlanRow, memory_targets, render_memory, run_memory
from overhead import W1, floor_tools, render_w1, run_w1
from plan_scale import ScaleResult, render_plan_scale, run_plan_scale
from redact import section_of as redact_section_of
from stragglers import section_of as stragglers_section_of
from suite_time import section_of as suite_time_section_of
from suite_wall import section_of as suite_section_of

VENV = WORK / "venv"
PEERS = ("doit", "snakemake")
WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "plan", "memory", *AGENT_WORKLOADS)
W4_SIZES = (1_000, 10_000)
W4_GROWTH_LIMIT = 11.0
W4_RSS_LIMIT = 200.0
W5_LIMIT = 0.3


# --- environment ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Env:
    python: str  # runs the asyncio references
    orchestrator: list[str]  # the CLI
    doit: str | None = None
    snakemake: str | None = None
    notes: list[str] = field(default_factory=list)


def _pip(python: Path, *args: str) -> bool:
    say(f"  pip install {' '.join(args)} (log: {WORK / 'pip.log'})")
    with (WORK / "pip.log").open("ab") as log:
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", *args], stdout=log, stderr=log, check=False)
    if done.returncode != 0:
        say(f"  pip install {' '.join(args)} failed (exit code {done.returncode}); see {WORK / 'pip.log'}")
    return done.returncode == 0


def _install_stamp() -> str:
    """What the orchestrator's install in the venv depends on: where the repository is, and its
    pyproject.toml (a changed entry point or dependency needs a new install)."""
    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:16]
    return f"{REPO} {digest} pip install -e"


def ensure_venv() -> Env:
    """bench/.work/venv with the orchestrator and the peers; installs only what is missing.

    The orchestrator is installed as the README installs it, ``pip install -e .`` (setuptools'
    default editable mode, whose finder module is imported at every interpreter start), so the
    venv always runs the working tree.
    """
    python = VENV / "bin" / "python"
    if not python.exists():
        say(f"creating {VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        _pip(python, "--upgrade", "pip")
    stamp = VENV / ".orchestrator-installed"
    wanted = _install_stamp()
    if not stamp.exists() or stamp.read_text(encoding="utf-8").strip() != wanted:
        if not _pip(python, "-e", str(REPO)):
            raise SystemExit("could not install the orchestrator into the bench venv")
        stamp.write_text(wanted, encoding="utf-8")
    env = Env(str(python), [str(VENV / "bin" / "orchestrator")])
    missing = [p for p in PEERS if not (VENV / "bin" / p).exists()]
    if missing and not _pip(python, *missing):
        for peer in missing:
            _pip(python, peer)
    for peer in PEERS:
        path = VENV / "bin" / peer
        if path.exists():
            setattr(env, peer, str(path))
        else:
            env.notes.append(f"{peer}: pip install failed; skipped")
    return env


def versions(env: Env) -> str:
    found = [f"orchestrator: `{tool_version([*env.orchestrator, '--version'])}`"]
    for program, argv in (
        ("make", ["make", "--version"]),
        ("xargs", ["xargs", "--version"]),
        ("parallel", ["parallel", "--version"]),
    ):
        if have(program):
            found.append(f"{program}: `{tool_version(argv)}`")
    if env.doit:
        found.append(f"doit: `{tool_version([env.doit, '--version'])}`")
    if env.snakemake:
        found.append(f"snakemake: `{tool_version([env.snakemake, '--version'])}`")
    return "; ".join(found)


# --- workloads that live here ---------------------------------------------------------------------


@dataclass(slots=True)
class W4:
    by_size: dict[int, list[Outcome]] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)  # the issue's: peak RSS
    checks: list[Target] = field(default_factory=list)  # kept from before: growth


def scale_dag(tasks: int) -> Dag:
    return layered(max(1, tasks // 100), 100, "true", 0.0, seed=3, name=f"{tasks} no-op tasks in a DAG")


def run_w4(tools: Sequence[Tool], *, sizes: Sequence[int], runs: int, concurrency: int = 2) -> W4:
    result = W4()
    for size in sizes:
        dag = scale_dag(size)
        result.by_size[size] = [measure(tool, dag, concurrency, runs, label=f"W4-{size}", rss=True) for tool in tools]
    small, large = sizes[0], sizes[-1]
    ours_small = _ok(result.by_size[small], "orchestrator")
    ours_large = _ok(result.by_size[large], "orchestrator")
    if ours_small and ours_large and large > small:
        growth = ours_large.wall().median / ours_small.wall().median
        limit = W4_GROWTH_LIMIT * large / small / 10
        result.checks.append(
            Target(f"W4 {large // small}× tasks → ≤ {limit:g}× time", f"{growth:.2f}×", growth <= limit)
        )
    if ours_large:
        rss = ours_large.rss()
        if rss is not None:
            result.targets.append(
                Target(
                    f"W4 a {large:,}-task run: peak RSS < {W4_RSS_LIMIT:g} MB",
                    f"{rss.fmt(0)} MB",
                    rss.median < W4_RSS_LIMIT,
                )
            )
    return result


def _ok(outcomes: Sequence[Outcome], name: str) -> Outcome | None:
    return next((o for o in outcomes if o.tool == name and o.ok), None)


def render_w4(result: W4) -> str:
    sizes = list(result.by_size)
    small, large = sizes[0], sizes[-1]
    header = ["tool"]
    for size in sizes:
        header += [f"{size:,}: wall s", f"{size:,}: ms / task", f"{size:,}: peak MB"]
    header += [f"time × ({large // small}× tasks)", "RSS ×"]
    rows = []
    for index, first in enumerate(result.by_size[small]):
        row = [first.tool]
        outcomes = [result.by_size[size][index] for size in sizes]
        for size, outcome in zip(sizes, outcomes, strict=True):
            if not outcome.ok:
                row += [outcome.problem(), "", ""]
                continue
            rss = outcome.rss()
            row += [
                outcome.wall().fmt(2),
                f"{outcome.wall().median / size * 1000:.2f}",
                f"{rss.median:.0f}" if rss else "?",
            ]
        a, b = outcomes[0], outcomes[-1]
        if a.ok and b.ok and large > small:
            rss_a, rss_b = a.rss(), b.rss()
            row.append(f"{b.wall().median / a.wall().median:.2f}×")
            row.append(f"{rss_b.median / rss_a.median:.2f}×" if rss_a and rss_b else "?")
        else:
            row += ["", ""]
        rows.append(row)
    lines = [f"- {verdict(t.ok)} {t.name}: {t.value}" for t in [*result.targets, *result.checks]]
    how = "peak RSS from `/usr/bin/time -v`" if GNU_TIME.exists() else "peak RSS from getrusage(RUSAGE_CHILDREN)"
    return (
        "Layers of 100 no-op tasks (`true`), each depending on 2–3 tasks of the layer before (seed 3), "
        f"concurrency 2; {how} (the orchestrator is one process: the figure is its own).\n\n"
        + table(header, rows)
        + ("\n\n" + "\n".join(lines) if lines else "")
    )


@dataclass(slots=True)
class W5:
    outcome: Outcome
    tasks: int
    checks: list[Target] = field(default_factory=list)  # kept from before; not one of the issue's


def run_w5(env: Env, *, tasks: int, runs: int, timeout: float = 600.0) -> W5:
    """``orchestrator status`` on a workspace where every task has run: W1's, or a fresh run."""
    project = run_dir("W1", "orchestrator") / "project"
    results = project / ".orchestrator" / "results"
    outcome = Outcome("orchestrator status")
    say(f"  W5: orchestrator status x{runs} ({tasks} tasks)")
    try:
        if not results.is_dir() or len(list(results.glob("*-result.md"))) != tasks:
            from benchlib import independent

            directory = fresh_dir(run_dir("W5", "orchestrator"))
            project = write_plan(independent(tasks), directory / "project", 2)
            timed([*env.orchestrator, "run", str(project)], directory, directory / "run.log", timeout=timeout)
        for _ in range(runs):
            log = project.parent / "status.log"
            outcome.samples.append(timed([*env.orchestrator, "status", str(project)], project, log, timeout=timeout))
    except ToolFailed as exc:
        outcome.error = str(exc)
        say(f"  !! W5: {exc}")
    result = W5(outcome, tasks)
    if outcome.ok:
        wall = outcome.wall().median
        result.checks.append(
            Target(f"W5 `status` on {tasks:,} tasks < {W5_LIMIT:g} s", f"{wall:.3f} s", wall < W5_LIMIT)
        )
    return result


def render_w5(result: W5) -> str:
    outcome = result.outcome
    if not outcome.ok:
        return outcome.problem()
    wall = outcome.wall()
    rows = [["`orchestrator status`", wall.fmt(3), f"{verdict(wall.median < W5_LIMIT)} (< {W5_LIMIT:g} s)"]]
    return (
        f"On the {result.tasks:,}-task workspace W1 left (every task completed); wall time of the command.\n\n"
        + table(["command", f"wall s, median of {len(outcome.samples)} (min–max)", "target"], rows)
    )


# --- the whole suite ------------------------------------------------------------------------------


@dataclass(slots=True)
class Suite:
    mode: str
    runs: int
    env: Env
    started: str = ""
    load_before: str = ""
    load_after: str = ""
    tool_versions: str = ""
    disk: str = ""
    w1: W1 | None = None
    w2: DagResult | None = None
    w3: DagResult | None = None
    w4: W4 | None = None
    w5: W5 | None = None
    plan: ScaleResult | None = None
    memory: list[PlanRow] | None = None
    agents: Report | None = None
    kept_agents: str | None = None  # the agents' section of the last report, when W6-W8 do not run
    kept_cluster: str | None = None  # W9's section (bench/cluster.py), kept as it is
    kept_learned: str | None = None  # W6s's section (bench/learned.py), kept as it is
    kept_startup: str | None = None  # W10's section (bench/agent_startup.py), kept as it is
    kept_suite: str | None = None  # the test suite's wall (bench/suite_wall.py), kept as it is
    kept_commands: str | None = None  # issue 52's start-up section (bench/commands.py), kept as it is
    kept_doors: str | None = None  # issue 64's doors (bench/doors.py), kept as it is
    kept_items: str | None = None  # issue 67's rows over many items (bench/items.py), kept as it is
    kept_redact: str | None = None  # issue 73's redaction (bench/redact.py), kept as it is
    kept_suite_time: str | None = None  # issue 78's where the suite's time goes (bench/suite_time.py)
    kept_stragglers: str | None = None  # W11's section (bench/stragglers.py), kept as it is
    crashed: list[str] = field(default_factory=list)

    def targets(self) -> list[Target]:
        """The issue's targets, in its order: W1, W2, W3, plan scale, the 10,000-task run's RSS."""
        found: list[Target] = []
        for part in (self.w1, self.w2, self.w3, self.plan, self.w4):
            if part is not None:
                found += part.targets
        if self.memory is not None:
            found += memory_targets(self.memory)
        return found


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def conditions(suite: Suite) -> list[str]:
    installed = (
        "`pip install -e .` into `bench/.work/venv`, as the README installs it"
        if suite.mode != "smoke"
        else f"`{' '.join(suite.env.orchestrator)}` (the interpreter running the smoke run)"
    )
    return [
        f"Installed: {installed}. Plans hold `backend: shell` and `max_parallel` only: every other "
        "setting (retries, timeouts) at its default.",
        "Each run is the first on a fresh workspace: the last run's files are deleted (`rm -rf`) right "
        "before it, and nothing waits for the disk to settle after that.",
        "Bytecode: this machine sets `PYTHONDONTWRITEBYTECODE`, a user's does not; it is unset for the "
        "measured commands, and one untimed warm-up (`validate`, `run`, `status` of a 3-task plan) "
        "lets Python write the orchestrator's `.pyc` files as a user's first command does.",
        "Figures are the median of the runs, min–max in brackets; W1, W2 and W3 run in rounds (every "
        "tool once, then again), and W1's figure above the floor is taken round by round.",
        f"A row marked _{TUNED_LABEL}_ is a tuned condition, shown for comparison only: no target is judged on it.",
    ]


def render(suite: Suite) -> str:
    parts = [
        "# Benchmark results",
        "",
        f"Written by `python bench/run.py{'' if suite.mode == 'full' else ' --' + suite.mode}` on "
        f"{suite.started}; {suite.runs} run(s) per measurement (median, min–max).",
    ]
    if suite.mode == "smoke":
        parts += ["", "Smoke run: every workload cut down to a few tasks, so the targets' verdicts mean nothing here."]
    targets = suite.targets()
    if targets:
        parts += [
            "",
            "## Targets (issue 20), measured as a user runs it",
            "",
            table(["target", "measured, median (min–max)", ""], [[t.name, t.value, verdict(t.ok)] for t in targets]),
        ]
    parts += ["", "## Conditions", ""] + [f"- {line}" for line in conditions(suite)]
    parts += [
        f"- Load average (1/5/15 min) before: {suite.load_before}, after: {suite.load_after}; "
        f"nice {os.nice(0)}; {suite.disk}.",
        f"- Tools: {suite.tool_versions}.",
    ]
    parts += [f"- {note}" for note in suite.env.notes]
    if suite.w1:
        parts += ["", f"## W1 — overhead: {len(suite.w1.dag):,} no-op tasks, concurrency {suite.w1.concurrency}", ""]
        parts.append(render_w1(suite.w1))
    for title, part in (("W2 — layered DAG", suite.w2), ("W3 — skewed DAG", suite.w3)):
        if part:
            parts += ["", f"## {title}", "", render_dag(part)]
    if suite.w4:
        parts += ["", "## W4 — scale", "", render_w4(suite.w4)]
    if suite.w5:
        parts += ["", "## W5 — CLI start", "", render_w5(suite.w5)]
    if suite.plan:
        parts += ["", "## Plan scale — validate / render / status", "", render_plan_scale(suite.plan)]
    if suite.memory is not None:
        heading = "## Memory — peak RSS against 10 × plan size + 12 KB a task + 150 MB"
        parts += ["", heading, "", render_memory(suite.memory)]
    if suite.crashed:
        parts += ["", "## Crashes", ""] + [f"- {line}" for line in suite.crashed]
    agents = render_agents(suite.agents) if suite.agents is not None else suite.kept_agents
    if agents:
        parts += ["", agents]
    if suite.kept_learned:  # W6s, written by bench/learned.py
        parts += ["", suite.kept_learned]
    if suite.kept_cluster:  # W9, written by bench/cluster.py
        parts += ["", suite.kept_cluster]
    if suite.kept_startup:  # W10, written by bench/agent_startup.py
        parts += ["", suite.kept_startup]
    if suite.kept_suite:  # the test suite, written by bench/suite_wall.py
        parts += ["", suite.kept_suite]
    if suite.kept_commands:  # issue 52's start-up and loop commands, written by bench/commands.py
        parts += ["", suite.kept_commands]
    if suite.kept_stragglers:  # W11, written by bench/stragglers.py
        parts += ["", suite.kept_stragglers]
    if suite.kept_doors:  # issue 64's doors, written by bench/doors.py
        parts += ["", suite.kept_doors]
    if suite.kept_items:  # issue 67's items, written by bench/items.py
        parts += ["", suite.kept_items]
    if suite.kept_redact:  # issue 73's redaction, written by bench/redact.py
        parts += ["", suite.kept_redact]
    if suite.kept_suite_time:  # issue 78's suite time, written by bench/suite_time.py
        parts += ["", suite.kept_suite_time]
    return "\n".join(parts) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one run per measurement (unless --runs)")
    parser.add_argument("--runs", type=int, help="runs per measurement (default 3; --quick: 1)")
    parser.add_argument("--smoke", action="store_true", help="a tiny version for CI: about a minute, no venv")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(WORKLOADS)}")
    parser.add_argument("--output", type=Path, help="where to write the report (default bench/RESULTS.md)")
    args = parser.parse_args(argv)
    only = set(WORKLOADS) if not args.only else {w.strip() for w in args.only.split(",")}
    unknown = only - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(sorted(unknown))}")
    WORK.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        if importlib.util.find_spec("orchestrator") is None:
            say(f"--smoke runs `{sys.executable} -m orchestrator`, but orchestrator is not installed there")
            return 1
        env = Env(sys.executable, [sys.executable, "-m", "orchestrator"])
        mode, runs = "smoke", args.runs or 1
        output = args.output or WORK / "RESULTS-smoke.md"
    else:
        env = ensure_venv()
        mode, runs = ("quick" if args.quick else "full"), args.runs or (1 if args.quick else 3)
        output = args.output or BENCH_DIR / "RESULTS.md"
    say("warm-up: validate, run, status of a 3-task plan (untimed; Python writes its bytecode)")
    try:
        warm_up(env.orchestrator)
    except ToolFailed as exc:
        say(f"  !! warm-up: {exc}")
        return 1
    disk = disk_line(WORK / "runs")
    suite = Suite(mode, runs, env, started=machine_line(), load_before=load(), tool_versions=versions(env), disk=disk)
    suite.kept_agents = section_of(output)
    suite.kept_cluster = cluster_section_of(output)
    suite.kept_learned = learned_section_of(output)
    suite.kept_startup = startup_section_of(output)
    suite.kept_suite = suite_section_of(output)
    suite.kept_commands = commands_section_of(output)
    suite.kept_stragglers = stragglers_section_of(output)
    suite.kept_doors = doors_section_of(output)
    suite.kept_items = items_section_of(output)
    suite.kept_redact = redact_section_of(output)
    suite.kept_suite_time = suite_time_section_of(output)
    smoke = args.smoke
    ours = orchestrator_tool(env.orchestrator)
    floor, floor_bash = floor_tools(env.python)

    def save() -> None:
        suite.load_after = load()
        output.write_text(render(suite), encoding="utf-8")

    began = time.perf_counter()
    if "W1" in only:
        say("W1: overhead")
        tools: list[Tool | Outcome] = [ours, floor]
        if not smoke:
            tuned = orchestrator_tool(env.orchestrator, f"orchestrator ({TUNED_LABEL})", tuned=True)
            tools += [tuned, floor_bash, xargs_tool() if have("xargs") else skipped("xargs", "not installed")]
        tools.append(make_tool() if have("make") else skipped("make", "not installed"))
        if not smoke:
            tools += [
                parallel_tool()
                if have("parallel")
                else skipped("GNU parallel", "not installed (apt-get install parallel)"),
                doit_tool(env.doit) if env.doit else skipped("doit", "not in the bench venv"),
                snakemake_tool(env.snakemake) if env.snakemake else skipped("snakemake", "not in the bench venv"),
            ]
        suite.w1 = _with_skips(tools, lambda ts: run_w1(ts, tasks=30 if smoke else 1000, concurrency=2, runs=runs))
        save()
    for label, wanted, dag in (("W2", "W2", w2_dag()), ("W3", "W3", w3_dag())):
        if wanted not in only:
            continue
        if smoke:
            if label == "W3":
                continue
            dag = layered(6, 5, "sleep 0.02", 0.02, seed=42, name="smoke layered")
        say(f"{label}: {dag.name}")
        dag_tools: list[Tool | Outcome] = [ours, make_tool() if have("make") else skipped("make", "not installed")]
        if not smoke:
            dag_tools += [
                doit_tool(env.doit) if env.doit else skipped("doit", "not in the bench venv"),
                snakemake_tool(env.snakemake) if env.snakemake else skipped("snakemake", "not in the bench venv"),
                dagrun_tool(env.python, "levels", via_bash=True, name="level-barrier (asyncio)"),
                dagrun_tool(env.python, "ready", via_bash=True, name="ready queue (asyncio)"),
            ]
        dag_tools.append(dagrun_tool(env.python, "minimal", via_bash=False, name="minimal (posix_spawn + wait)"))
        # The least a tool can do that starts each task as the shell backend does (issue 20 retired
        # exec'ing one-word commands without bash): what W2's bound leaves room for.
        dag_tools.append(dagrun_tool(env.python, "minimal", via_bash=True, name="minimal, each task through bash"))
        chosen = dag

        def go(ts: Sequence[Tool], lbl: str = label, d: Dag = chosen) -> DagResult:
            return run_dag(lbl, d, ts, runs=runs)

        part = _with_skips(dag_tools, go)
        if label == "W2":
            suite.w2 = part
        else:
            suite.w3 = part
        save()
    if "W4" in only and not smoke:
        say("W4: scale")
        scale_tools = [
            ours,
            *([make_tool()] if have("make") else []),
            dagrun_tool(env.python, "ready", via_bash=True, name="ready queue (asyncio)"),
        ]
        suite.w4 = run_w4(scale_tools, sizes=W4_SIZES, runs=runs)
        save()
    if "W5" in only:
        say("W5: CLI start")
        suite.w5 = run_w5(env, tasks=30 if smoke else 1000, runs=1 if smoke else 5)
        save()
    if "plan" in only:
        say("plan scale")
        suite.plan = run_plan_scale(env.orchestrator, tasks=300 if smoke else 10_000, runs=1 if smoke else runs)
        save()
    if "memory" in only:
        say("memory: peak RSS of every command")
        suite.memory = run_memory(
            env.orchestrator,
            env.python,
            tasks=300 if smoke else 10_000,
            sizes=("0.3",) if smoke else ("largest",),
        )
        save()
    if only & set(AGENT_WORKLOADS):
        say("agents (W6-W8): the real claude CLI against a fake Messages API")
        suite.agents = run_agents(
            env.orchestrator,
            only=only,
            mode=mode,
            runs=args.runs or (3 if mode == "full" else 1),
            w7_runs=w7_runs_default(mode, args.runs),
        )
        save()
    suite.crashed = _crashes(suite)
    save()
    print(render(suite))
    say(f"wrote {output} in {time.perf_counter() - began:.0f} s")
    return 1 if suite.crashed else 0


R = TypeVar("R", W1, DagResult)


def _with_skips(tools: Sequence[Tool | Outcome], run: Callable[[Sequence[Tool]], R]) -> R:
    """Run the real tools; put the skipped ones (already ``Outcome``s) back in their places."""
    real = [t for t in tools if isinstance(t, Tool)]
    result = run(real)
    measured = iter(result.outcomes)
    result.outcomes = [next(measured) if isinstance(t, Tool) else t for t in tools]
    return result


def _crashes(suite: Suite) -> list[str]:
    found: list[str] = []
    outcomes: list[Outcome] = []
    for part in (suite.w1, suite.w2, suite.w3):
        if part is not None:
            outcomes += part.outcomes
    if suite.w4 is not None:
        for group in suite.w4.by_size.values():
            outcomes += group
    if suite.w5 is not None:
        outcomes.append(suite.w5.outcome)
    found += [f"{o.tool}: {(o.error or '').splitlines()[0]}" for o in outcomes if o.error]
    if suite.plan is not None and suite.plan.error:
        found.append(f"plan_scale: {suite.plan.error.splitlines()[0]}")
    if suite.memory is not None:
        found += [
            f"memory, {row.label} `{name}`: {why.splitlines()[0]}"
            for row in suite.memory
            for name, why in row.failed.items()
        ]
    if suite.agents is not None:
        found += suite.agents.crashed
    return found


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
