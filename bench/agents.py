"""W6-W8, agents as a user's run meets them: the real ``claude`` CLI against a fake Messages API.

    python bench/agents.py [--quick] [--runs N] [--w7-runs N] [--only W6,W7,W8] [--smoke] [--orchestrator CMD]
                           [--limiter bucket,sliding,fixed] [--w7-tools orchestrator,orchestrator-off,xargs,...]

The fake (``tests/fakeapi.py``) listens on 127.0.0.1; every claude process, whoever starts it,
talks to it through ``ANTHROPIC_BASE_URL``. Each task's prompt carries ``bench task T-NN``; the
fake answers each of its requests after the time drawn for it (``agentlib.Answers``).

  W6  latency: 24 tasks, random dependencies (seed 21), max_parallel 4; each task a tool call
      then an answer, the API's time for a task drawn from a lognormal law (median 3 s, shape
      0.8, seed 21). Each round: a first run on a fresh workspace, the same workspace run again
      after ``reset --all`` (the order learned from the first), then ``xargs -P 4`` over the same
      ``claude -p`` calls (one xargs a level) and a level-by-level runner. Targets
      (PERFORMANCE.md): a first run's makespan ≤ 1.02x the zero-overhead replay of its own start
      order; a later run's ≤ 1.05x the lower bound from the durations measured in it,
      max(critical path, total / 4); the orchestrator's own CPU after its start-up ≤ 2% of its
      agents' and ≤ 20 ms a task. The later run's estimate error at 25/50/75% of the way
      (``report --json``) beside it. Then 12 independent tasks (median 1 s): the orchestrator's
      re-run after a reset must end before ``xargs -P 4`` over the same calls, whole wall.
  W7  rate limit: the fake admits R = 60 requests a minute and answers 429 with retry-after
      beyond it, side calls counted too, limiting as vendors do in three shapes (``--limiter``,
      all three by default): a token bucket holding 5, a sliding window (10 in any 10 s) and a
      fixed window (60 a clock minute, the count starting afresh on the minute). 40 tasks in 4
      levels of 10, 3 requests each, max_parallel 8. Run twice on each: as claude runs by default,
      and with the agents' own retries off (``CLAUDE_CODE_MAX_RETRIES=0``). Targets, each shape:
      no task lost; completion throughput (requests of the completed tasks / makespan) ≥ 90% of
      R; with retries off, at most 0.5 answers of 429 a completed task. Beside it: ``xargs -P 8``
      over ``claude -p`` (one xargs a level; also with retries off) and a level-by-level runner
      (a pool of 8 a level); ``--w7-tools`` runs some of the five rows only.
  W8  usage limit mid-run: 12 tasks in 3 levels of 4, 2 requests each, max_parallel 4, run as a
      subscriber; from the 9th request on, the fake answers claude's usage-limit 429 until a
      reset 6 s later. Targets: no task lost and 0 retries spent; no attempt started before the
      reset; the first started within 1 s after it. Beside it: ``xargs -P 4``.

W6 runs ``--runs`` rounds (default 3, ``--quick`` 1); W7 ``--w7-runs`` rounds (default ``--runs``
when given, else 2; ``--quick`` 1: a round is five tools on each shape, about 16 minutes a
shape); W8 once. The
section goes into bench/RESULTS.md between its markers, the rest of the file kept (``--smoke``: a
few tasks each, the orchestrator only, into bench/.work/RESULTS-smoke.md). Where the claude CLI is
not installed, every workload is skipped with the reason, and the exit code is 0.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from agentlib import (
    JSON,
    AgentDag,
    Answers,
    Deals,
    FakeAnthropic,
    FixedWindow,
    OrchestratorRun,
    PlainRun,
    RateLimit,
    Reply,
    RequestLimit,
    SlidingWindow,
    agent_env,
    find_claude,
    layered_dag,
    random_dag,
    run_levels,
    run_orchestrator,
    run_xargs,
    write_project,
)
from benchlib import (
    BENCH_DIR,
    WORK,
    Target,
    ToolFailed,
    cli_command,
    fresh_dir,
    machine_line,
    marked_section,
    put_marked_section,
    say,
    table,
    tool_version,
    user_env,
    verdict,
    warm_up,
)

WORKLOADS = ("W6", "W7", "W8")
BEGIN = "<!-- agents: written by bench/agents.py; bench/run.py keeps it -->"
END = "<!-- /agents -->"
W6_FIRST_LIMIT = 1.02  # a first run: makespan / the zero-overhead replay of its own start order
W6_LATER_LIMIT = 1.05  # a later run, the order learned: makespan / the lower bound
W6_CPU_LIMIT = 0.02  # the orchestrator's own CPU after its start-up / its agents'
W6_CPU_TASK = 0.020  # and a task, seconds
W7_SHARE = 0.90
W8_RESUME = 1.0  # seconds from the reset to the first attempt started after it


@dataclass(frozen=True, slots=True)
class Sizes:
    """The workloads' sizes: the issue's, or a few tasks for ``--smoke``."""

    w6: AgentDag
    w6_parallel: int
    w6_rerun: AgentDag | None  # independent tasks: a re-run against xargs -P over the same calls
    w7: AgentDag
    w7_parallel: int
    w7_rate: float  # requests a minute: the bucket's rate, and what each window admits a minute
    w7_burst: float  # the bucket's
    w7_sliding: tuple[int, float]  # requests in any trailing seconds
    w7_fixed: tuple[int, float]  # requests a window of seconds of the clock
    w8: AgentDag
    w8_parallel: int
    w8_after: int  # requests answered before the usage limit
    w8_pause: float  # seconds from the limit to its reset
    others: bool  # run xargs and the level-by-level runner beside the orchestrator


def full_sizes() -> Sizes:
    return Sizes(
        w6=random_dag(24, seed=21, median=3.0, sigma=0.8, requests=2),
        w6_parallel=4,
        w6_rerun=random_dag(12, seed=21, median=1.0, sigma=0.8, fan=(0, 0), requests=2),
        w7=layered_dag(4, 10, seed=21, seconds=3.0, requests=3),
        w7_parallel=8,
        w7_rate=60.0,
        w7_burst=5.0,
        w7_sliding=(10, 10.0),
        w7_fixed=(60, 60.0),
        w8=layered_dag(3, 4, seed=21, seconds=2.0, requests=2),
        w8_parallel=4,
        w8_after=8,
        w8_pause=6.0,
        others=True,
    )


def smoke_sizes() -> Sizes:
    return Sizes(
        w6=random_dag(6, seed=21, median=1.0, sigma=0.5, requests=1),
        w6_parallel=4,
        w6_rerun=None,
        w7=layered_dag(2, 4, seed=21, seconds=1.0, requests=2),
        w7_parallel=4,
        w7_rate=120.0,
        w7_burst=2.0,
        w7_sliding=(4, 2.0),
        w7_fixed=(120, 60.0),
        w8=layered_dag(2, 2, seed=21, seconds=1.0, requests=1),
        w8_parallel=2,
        w8_after=1,
        w8_pause=3.0,
        others=False,
    )


# --- W6: latency ----------------------------------------------------------------------------------


@dataclass(slots=True)
class W6Run:
    makespan: float
    wall: float
    critical_path: float
    work: float
    bound: float
    replay: float  # a zero-overhead scheduler's makespan with the same order and durations
    known: float  # and of one told every duration beforehand (longest remaining time first)
    own_cpu: float
    agents_cpu: float
    completed: int


@dataclass(slots=True)
class W6Round:
    """One round of W6: a first run on a fresh workspace, the same workspace run again after a
    ``reset --all`` (the order learned), and the same ``claude -p`` calls by xargs and by a
    level-by-level runner."""

    first: W6Run
    again: W6Run | None = None
    error: dict[str, float | None] | None = None  # the second run's estimate's error at 25/50/75% (`report --json`)
    xargs: PlainRun | None = None
    levels: PlainRun | None = None


@dataclass(slots=True)
class RerunRound:
    """One round of the 12-task comparison: the orchestrator's first run and its re-run after a
    ``reset --all``, and ``xargs -P`` over the same calls, each a whole wall time as a user waits."""

    first: W6Run
    again: W6Run
    xargs: PlainRun


@dataclass(slots=True)
class W6:
    dag: AgentDag
    parallel: int
    rounds: list[W6Round] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    startup_cpu: float | None = None  # the orchestrator's own CPU for a 1-task shell plan
    deals: Deals | None = None  # the first run's durations dealt to the tasks at random
    rerun_dag: AgentDag | None = None
    reruns: list[RerunRound] = field(default_factory=list)

    @property
    def runs(self) -> list[W6Run]:
        return [r.first for r in self.rounds]

    @property
    def agains(self) -> list[W6Run]:
        return [r.again for r in self.rounds if r.again is not None]


def run_w6(command: Sequence[str], claude: str, sizes: Sizes, runs: int) -> W6:
    dag, parallel = sizes.w6, sizes.w6_parallel
    result = W6(dag, parallel, rerun_dag=sizes.w6_rerun)
    directory = fresh_dir(WORK / "runs" / "W6" / "start-up")
    project = directory / "project"
    (project / ".orchestrator").mkdir(parents=True)
    (project / ".orchestrator" / "master_plan.md").write_text(
        "---\nbackend: shell\n---\n# Start-up\n\n## Task Decomposition\n"
        "| Task ID | Command | Dependencies |\n|---|---|---|\n| T-01 | true | None |\n",
        encoding="utf-8",
    )
    env = user_env()
    result.startup_cpu = run_orchestrator(command, project, env).own_cpu
    for index in range(runs):
        say(f"  W6 round {index + 1}/{runs}: {len(dag)} tasks, max_parallel {parallel}")
        directory = fresh_dir(WORK / "runs" / "W6" / "orchestrator")
        with FakeAnthropic(Answers(dag)) as api:
            project = write_project(dag, directory, parallel)
            env = agent_env(api, directory, claude)
            run = run_orchestrator(command, project, env)
            this = W6Round(_w6_run(dag, parallel, run))
            if index == 0:
                result.deals = dag.deals(run.durations(), parallel)
            # the same plan run again: the orchestrator has learned the durations
            say("  W6 after a reset: that workspace's results forgotten (reset --all), the plan run again")
            _reset(command, project, env)
            again = run_orchestrator(command, project, env)
            this.again = _w6_run(dag, parallel, again, known=run.durations())
            this.error = _estimate_error(command, project, env)
        if sizes.others:
            this.xargs = _plain(run_xargs, "W6", dag, parallel, claude)
            this.levels = _plain(run_levels, "W6", dag, parallel, claude)
        result.rounds.append(this)
        if result.rerun_dag is not None:
            result.reruns.append(_rerun_round(command, claude, result.rerun_dag, parallel, index))
    result.targets = _w6_targets(result)
    return result


def _reset(command: Sequence[str], project: Path, env: Mapping[str, str]) -> None:
    subprocess.run([*command, "reset", "--all"], cwd=project, env=dict(env), check=True, capture_output=True)


def _plain(
    runner: Callable[[AgentDag, Path, dict[str, str], int, str], PlainRun],
    workload: str,
    dag: AgentDag,
    parallel: int,
    claude: str,
) -> PlainRun:
    """Another tool over the same ``claude -p`` calls, against a fresh fake."""
    name = "xargs" if runner is run_xargs else "levels"
    say(f"  {workload} {name}: {len(dag)} tasks, {parallel} at a time")
    directory = fresh_dir(WORK / "runs" / workload / name)
    with FakeAnthropic(Answers(dag)) as api:
        return runner(dag, directory, agent_env(api, directory, claude), parallel, claude)


def _rerun_round(command: Sequence[str], claude: str, dag: AgentDag, parallel: int, index: int) -> RerunRound:
    """PERFORMANCE.md's comparison: the orchestrator's re-run (after a first run and a ``reset
    --all``) against ``xargs -P`` over the same ``claude -p`` calls, whole wall as a user waits;
    which of the two goes first alternates from round to round."""

    def ours() -> tuple[W6Run, W6Run]:
        say(f"  W6 {len(dag)} tasks: the orchestrator, a first run and a re-run after a reset")
        directory = fresh_dir(WORK / "runs" / "W6-rerun" / "orchestrator")
        with FakeAnthropic(Answers(dag)) as api:
            project = write_project(dag, directory, parallel)
            env = agent_env(api, directory, claude)
            first = run_orchestrator(command, project, env)
            _reset(command, project, env)
            again = run_orchestrator(command, project, env)
        return _w6_run(dag, parallel, first), _w6_run(dag, parallel, again, known=first.durations())

    if index % 2 == 0:
        first, again = ours()
        xargs = _plain(run_xargs, "W6-rerun", dag, parallel, claude)
    else:
        xargs = _plain(run_xargs, "W6-rerun", dag, parallel, claude)
        first, again = ours()
    return RerunRound(first, again, xargs)


def _w6_targets(result: W6) -> list[Target]:
    """PERFORMANCE.md's: a first run within 1.02x the zero-overhead replay of its own start
    order; a later run (the order learned) within 1.05x the lower bound; the orchestrator's own
    CPU after its start-up at most 2% of its agents' and 20 ms a task; a re-run of 12 tasks ends
    before ``xargs -P 4`` over the same calls. Each judged on the median over the rounds."""
    dag, parallel = result.dag, result.parallel
    own = [r.makespan / r.replay for r in result.runs]
    targets = [
        Target(
            f"W6 first run ({len(dag)} tasks, heavy-tailed answers, max_parallel {parallel}): makespan ≤ "
            f"{W6_FIRST_LIMIT}× the zero-overhead replay of its own start order",
            _spread(own, "{:.3f}×"),
            statistics.median(own) <= W6_FIRST_LIMIT,
        )
    ]
    if result.agains:
        learned = [r.makespan / r.bound for r in result.agains]
        targets.append(
            Target(
                f"W6 later run, after `reset --all` (the order learned): makespan ≤ {W6_LATER_LIMIT}× the lower bound",
                _spread(learned, "{:.3f}×"),
                statistics.median(learned) <= W6_LATER_LIMIT,
            )
        )
    if result.startup_cpu is not None:
        runs = result.runs + result.agains
        shares = [max(0.0, r.own_cpu - result.startup_cpu) / r.agents_cpu for r in runs]
        per_task = [max(0.0, r.own_cpu - result.startup_cpu) / len(dag) * 1000 for r in runs]
        targets += [
            Target(
                f"W6 the orchestrator's own CPU after its start-up ≤ {W6_CPU_LIMIT:.0%} of its agents' CPU",
                _spread([s * 100 for s in shares], "{:.2f}%"),
                statistics.median(shares) <= W6_CPU_LIMIT,
            ),
            Target(
                f"W6 the orchestrator's own CPU after its start-up ≤ {W6_CPU_TASK * 1000:.0f} ms a task",
                _spread(per_task, "{:.1f} ms"),
                statistics.median(per_task) <= W6_CPU_TASK * 1000,
            ),
        ]
    if result.reruns and result.rerun_dag is not None:
        ratios = [r.again.wall / r.xargs.wall for r in result.reruns]
        targets.append(
            Target(
                f"W6 re-run of {len(result.rerun_dag)} tasks (max_parallel {parallel}) ends before "
                f"`xargs -P {parallel}` over the same `claude -p` calls, whole wall (re-run ÷ xargs, same round)",
                _spread(ratios, "{:.3f}×"),
                statistics.median(ratios) < 1.0,
            )
        )
    return targets


def _estimate_error(command: Sequence[str], project: Path, env: Mapping[str, str]) -> dict[str, float | None] | None:
    """The error of the last run's estimated length at 25/50/75% of the way, as `report --json` says."""
    done = subprocess.run([*command, "report", "--json"], cwd=project, env=dict(env), capture_output=True, text=True)
    try:
        found = json.loads(done.stdout)["estimates"]["run_error"]
    except (ValueError, KeyError, TypeError):
        return None
    return {str(k): (float(v) if v is not None else None) for k, v in found.items()}


def _w6_run(dag: AgentDag, parallel: int, run: OrchestratorRun, known: Mapping[str, float] | None = None) -> W6Run:
    """One W6 run's figures; ``known``: the durations the orchestrator had from a run before."""
    durations = run.durations()
    if set(durations) != set(dag.tasks) or run.count("completed") != len(dag):
        raise ToolFailed(f"W6: {run.count('completed')} of {len(dag)} tasks completed (see {run.directory})")
    return W6Run(
        run.makespan(),
        run.wall,
        dag.critical_path(durations),
        sum(durations.values()),
        dag.lower_bound(durations, parallel),
        dag.replay(durations, parallel, weights=known),
        dag.replay(durations, parallel, weights=durations),
        run.own_cpu,
        run.children_cpu,
        run.count("completed"),
    )


def render_w6(result: W6) -> str:
    dag, parallel = result.dag, result.parallel
    named = [(str(i), r.first) for i, r in enumerate(result.rounds, 1)]
    named += [(f"{i} after reset", r.again) for i, r in enumerate(result.rounds, 1) if r.again is not None]
    rows = [
        [
            name,
            f"{r.makespan:.2f}",
            f"{r.wall:.2f}",
            f"{r.critical_path:.2f}",
            f"{r.work:.2f}",
            f"{r.bound:.2f}",
            f"{r.makespan / r.bound:.3f}×",
            f"{r.replay / r.bound:.3f}×",
            f"{r.makespan / r.replay:.3f}×",
            f"{r.known / r.bound:.3f}×",
            f"{r.own_cpu:.2f}",
            f"{r.agents_cpu:.1f}",
            f"{r.own_cpu / r.agents_cpu * 100:.2f}%",
        ]
        for name, r in named
    ]
    header = [
        "run",
        "makespan s",
        "wall s",
        "critical path s",
        "work s",
        "lower bound s",
        "makespan / bound",
        "zero-overhead replay / bound",
        "makespan / replay",
        "durations known beforehand / bound",
        "orchestrator CPU s",
        "agents' CPU s",
        "CPU share",
    ]
    api = sum(t.seconds for t in dag.tasks.values())
    longest = max(t.seconds for t in dag.tasks.values())
    startup = (
        f" Of the orchestrator's CPU, {result.startup_cpu:.2f} s is what `orchestrator run` of a 1-task "
        "shell plan takes (Python's start-up, imports, the plan, the files of a run): the targets count "
        "what is above it."
        if result.startup_cpu is not None
        else ""
    )
    return (
        f"{dag.name}: {dag.edges()} dependencies, {len(dag.levels())} levels, max_parallel {parallel}. "
        f"Each task is {_calls(next(iter(dag.tasks.values())).requests - 1)}, then an answer streamed in "
        f"16-character chunks every 50 ms; the API's time for a task (both requests) is drawn from a "
        f"lognormal law: {api:.0f} s in all, median {statistics.median(t.seconds for t in dag.tasks.values()):.1f} s, "
        f"longest {longest:.1f} s. {_plural(len(result.rounds), 'round')}, each: a first run on a fresh "
        "workspace, the same workspace run again after `orchestrator reset --all`, then xargs and the "
        "level-by-level runner over the same `claude -p` calls.\n\n"
        + _render_w6_side(result)
        + "\n\n"
        + table(header, rows)
        + "\n\n- Durations are measured in the run: each task's `started` to `finished` in its result file "
        "(claude's start-up included); the lower bound is max(critical path, work / max_parallel) over "
        "them, the makespan the first `started` to the last `finished`, the wall time the whole "
        "`orchestrator run` from the outside (start-up and final output included).\n"
        "- Zero-overhead replay: the same durations scheduled with no overhead at all, ready tasks "
        "taken as the orchestrator takes them (the longest chain of work first, then table order): "
        "in a first run it knows no task's duration, and a chain counts tasks; what the order alone "
        "costs against the bound, and makespan / replay what the orchestrator's own delay costs (a first "
        f"run's target: ≤ {W6_FIRST_LIMIT}×). Durations known beforehand: the same, for a scheduler told every "
        "task's duration (the longest remaining time first), which no scheduler is on a first run.\n"
        "- _after reset_: the round's workspace run again after `orchestrator reset --all` (every "
        "result forgotten, the fake answering as before): the orchestrator now weighs each task by what "
        "it took in the first run, learned from the event log, which a reset keeps (issue 43); its "
        f"zero-overhead replay is that learned order's; target: makespan ≤ {W6_LATER_LIMIT}× the lower bound. "
        + _render_error([r.error for r in result.rounds if r.again is not None])
        + "\n"
        "- CPU: read from `/proc` when `orchestrator run` exits, before it is reaped: its own "
        "`utime + stime` (its Python start-up included) against its children's `cutime + cstime` "
        f"(every claude process and what they ran).{startup}\n" + _render_deals(result) + _render_rerun(result)
    )


def _render_w6_side(result: W6) -> str:
    """Every tool of W6 side by side: median (min–max) over the rounds."""
    dag = result.dag
    firsts, agains = result.runs, result.agains
    rows = [
        [
            "orchestrator, first run",
            f"{len(dag)} / {len(dag)}",
            _spread([r.wall for r in firsts], "{:.2f}"),
            _spread([r.makespan for r in firsts], "{:.2f}"),
            _spread([r.makespan / r.bound for r in firsts], "{:.3f}×"),
            _spread([r.wall / r.bound for r in firsts], "{:.3f}×"),
        ]
    ]
    if agains:
        rows.append(
            [
                "orchestrator, after `reset --all`",
                f"{len(dag)} / {len(dag)}",
                _spread([r.wall for r in agains], "{:.2f}"),
                _spread([r.makespan for r in agains], "{:.2f}"),
                _spread([r.makespan / r.bound for r in agains], "{:.3f}×"),
                _spread([r.wall / r.bound for r in agains], "{:.3f}×"),
            ]
        )
    for name, plain in (
        (f"xargs -P {result.parallel} (one a level)", [(r.xargs, r.first) for r in result.rounds if r.xargs]),
        ("level-by-level", [(r.levels, r.first) for r in result.rounds if r.levels]),
    ):
        if not plain:
            continue
        rows.append(
            [
                name,
                _spread([len(p.ok) for p, _ in plain], "{:.0f}") + f" / {len(dag)}",
                _spread([p.wall for p, _ in plain], "{:.2f}"),
                "—",
                "—",
                _spread([p.wall / first.bound for p, first in plain], "{:.3f}×"),
            ]
        )
    header = ["tool", "completed", "wall s", "makespan s", "makespan / bound", "wall / bound"]
    return (
        table(header, rows)
        + "\n\nMedian (min–max) over the rounds. xargs and the level-by-level runner keep no timings: their "
        "figure is their wall time, over the lower bound of the orchestrator's first run in the same round "
        "(the same `claude -p` calls; claude's start-up is in both)."
    )


def _render_error(found: Sequence[Mapping[str, float | None] | None]) -> str:
    """The estimate's error as ``report`` gives it: (expected length − length) ÷ length."""
    measured = [f for f in found if f]
    if not measured:
        return "Its estimate's error: not measured."
    points = list(measured[0])
    parts = []
    for point in points:
        values = [f[point] for f in measured if f.get(point) is not None]
        text = "—" if not values else _spread([v * 100 for v in values if v is not None], "{:+.0f}%")
        parts.append(f"{text} at {point}")
    return (
        "The error of its estimated length (`report --json`'s `estimates.run_error`, (expected − actual) ÷ "
        f"actual, median (min–max) over the rounds): {', '.join(parts)} of the way."
    )


def _render_rerun(result: W6) -> str:
    dag = result.rerun_dag
    if dag is None or not result.reruns:
        return ""
    reruns = result.reruns
    seconds = sorted(t.seconds for t in dag.tasks.values())
    rows = [
        ["orchestrator, first run", _spread([r.first.wall for r in reruns], "{:.2f}"),
         _spread([r.first.makespan for r in reruns], "{:.2f}"), _spread([r.first.bound for r in reruns], "{:.2f}"),
         _spread([r.first.makespan / r.first.bound for r in reruns], "{:.3f}×")],
        ["orchestrator, re-run after `reset --all`", _spread([r.again.wall for r in reruns], "{:.2f}"),
         _spread([r.again.makespan for r in reruns], "{:.2f}"), _spread([r.again.bound for r in reruns], "{:.2f}"),
         _spread([r.again.makespan / r.again.bound for r in reruns], "{:.3f}×")],
        [f"xargs -P {result.parallel}", _spread([r.xargs.wall for r in reruns], "{:.2f}"), "—", "—", "—"],
    ]  # fmt: skip
    return (
        f"\n**{len(dag)} independent tasks, a re-run against `xargs -P {result.parallel}`** (PERFORMANCE.md's "
        f"comparison): the same fake, each task {_calls(next(iter(dag.tasks.values())).requests - 1)} then an answer, "
        f"the API's time for a task drawn from a lognormal law (median 1 s, shape 0.8, seed 21: "
        f"{seconds[0]:.2f}–{seconds[-1]:.2f} s), max_parallel {result.parallel}. Each round: the orchestrator's "
        f"first run, `reset --all` and its re-run, and one `xargs -P {result.parallel}` over the same `claude -p` "
        "calls in table order, the two in alternate order from round to round; wall time from the outside, "
        "as a user waits.\n\n"
        + table(["tool", "wall s", "makespan s", "lower bound s", "makespan / bound"], rows)
        + "\n"
    )


def _render_deals(result: W6) -> str:
    deals = result.deals
    if deals is None:
        return ""
    q = deals.quantile
    return (
        f"- Run 1's {len(result.dag)} durations dealt to the tasks at random {len(deals.first):,} times (the "
        "same durations, only which task draws which changes), each deal replayed with no overhead: "
        f"in the order of a first run, median {q(deals.first, 0.5):.3f}× the bound (p10 {q(deals.first, 0.1):.3f}×, "
        f"p90 {q(deals.first, 0.9):.3f}×), within {W6_LATER_LIMIT}× on "
        f"{deals.within(deals.first, W6_LATER_LIMIT):.0%} of the "
        f"deals; told every duration, median {q(deals.known, 0.5):.3f}×, within {W6_LATER_LIMIT}× on "
        f"{deals.within(deals.known, W6_LATER_LIMIT):.0%}. Run 1's own deal gives {deals.this:.3f}× in the first "
        f"run's order: {deals.rank():.0%} of the deals do as badly or worse. A first run knows no "
        "task's duration, so no order it can choose tells these deals apart.\n"
    )


# --- W7: rate limit -------------------------------------------------------------------------------


@dataclass(slots=True)
class W7Row:
    tool: str
    completed: int
    lost: int
    makespan: float
    limited: int | None  # attempts that ended rate-limited and were retried (the orchestrator's)
    admitted: int
    refused: int
    side: int


@dataclass(frozen=True, slots=True)
class Shape:
    """One way the fake limits requests: its name (``--limiter``), how the report says it, and a
    fresh limit for each tool's run."""

    name: str
    words: str
    make: Callable[[], RequestLimit]
    free: str  # what comes before the steady rate: the throughput's head start


def w7_shapes(sizes: Sizes) -> dict[str, Shape]:
    """The three shapes, each admitting ``w7_rate`` requests a minute over a minute."""
    rate, burst = sizes.w7_rate, sizes.w7_burst
    (count, span), (fixed, window) = sizes.w7_sliding, sizes.w7_fixed
    return {
        "bucket": Shape(
            "bucket",
            f"a token bucket refilled continuously, holding {burst:g} (the API says a limit a minute may be "
            "enforced over shorter intervals); `retry-after`: whole seconds until a token is there",
            lambda: RateLimit(rate, burst=burst),
            f"the bucket starts full, so the first {burst:g} requests come free: {burst:g} / R ahead",
        ),
        "sliding": Shape(
            "sliding",
            f"a sliding window, at most {count} requests in any trailing {span:g} s; `retry-after`: whole "
            f"seconds until the oldest of them leaves the window",
            lambda: SlidingWindow(count, span),
            f"the window starts empty, so the first {count} requests come at once: {count} / R ahead",
        ),
        "fixed": Shape(
            "fixed",
            f"a fixed window, at most {fixed} requests a window of {window:g} s of the clock (each clock "
            "minute), the count starting afresh at its start; `retry-after`: whole seconds to the next window",
            lambda: FixedWindow(fixed, window),
            f"the first window's {fixed} come at once, and as many again from the next window's start: up to "
            f"{2 * fixed} in a little over a minute",
        ),
    }


@dataclass(slots=True)
class W7:
    dag: AgentDag
    parallel: int
    rate: float
    shape: Shape
    rows: list[W7Row] = field(default_factory=list)  # every tool's, round after round
    targets: list[Target] = field(default_factory=list)
    rounds: int = 0

    def by_tool(self) -> dict[str, list[W7Row]]:
        """Each tool's rows, one a round, in the order the tools ran."""
        found: dict[str, list[W7Row]] = {}
        for row in self.rows:
            found.setdefault(row.tool, []).append(row)
        return found

    def throughput(self, row: W7Row) -> float:
        """Requests of the completed tasks a minute, over the makespan."""
        requests = next(iter(self.dag.tasks.values())).requests
        return row.completed * requests / row.makespan * 60

    def refused_per_task(self, row: W7Row) -> float:
        """Answers of 429 a completed task."""
        return row.refused / row.completed if row.completed else math.inf


NO_RETRIES = "CLAUDE_CODE_MAX_RETRIES=0"  # the agents' own retries off: every 429 ends its attempt
W7_REFUSED = 0.5  # 429 answers a completed task, at most, with the agents' own retries off
W7_TOOLS = ("orchestrator", "orchestrator-off", "xargs", "xargs-off", "levels")  # ``--w7-tools``: the rows
W7_LIMITERS = ("bucket", "sliding", "fixed")  # ``--limiter``: the fake's shapes of limit


def run_w7(
    command: Sequence[str],
    claude: str,
    sizes: Sizes,
    runs: int = 1,
    shape: str = "bucket",
    tools: Sequence[str] = W7_TOOLS,
) -> W7:
    """``runs`` rounds on the limit ``shape``, every tool of ``tools`` once a round, in the same order."""
    dag, parallel = sizes.w7, sizes.w7_parallel
    result = W7(dag, parallel, sizes.w7_rate, w7_shapes(sizes)[shape], rounds=runs)
    off = {"CLAUDE_CODE_MAX_RETRIES": "0"}
    every: list[tuple[str, str, Callable[[FakeAnthropic, Path], W7Row]]] = [
        ("orchestrator", "orchestrator", lambda api, d: _w7_orchestrator(command, claude, dag, parallel, api, d)),
        (
            "orchestrator-off",
            f"orchestrator, {NO_RETRIES}",
            lambda api, d: _w7_orchestrator(command, claude, dag, parallel, api, d, retries_off=True),
        ),
    ]
    if sizes.others:
        every += [
            ("xargs", f"xargs -P {parallel}", lambda api, d: _w7_plain(run_xargs, claude, dag, parallel, api, d)),
            (
                "xargs-off",
                f"xargs -P {parallel}, {NO_RETRIES}",
                lambda api, d: _w7_plain(run_xargs, claude, dag, parallel, api, d, off),
            ),
            ("levels", "level-by-level", lambda api, d: _w7_plain(run_levels, claude, dag, parallel, api, d)),
        ]
    chosen = [(name, go) for key, name, go in every if key in tools]
    for round_ in range(1, runs + 1):
        for number, (name, go) in enumerate(chosen, 1):
            say(f"  W7 {shape}, round {round_}/{runs}, {name}: {len(dag)} tasks, {result.rate:g} requests a minute")
            directory = fresh_dir(WORK / "runs" / "W7" / f"{shape}-{number}-{name.split()[0]}")
            limit = result.shape.make()
            with FakeAnthropic(Answers(dag), rate_limit=limit) as api:
                row = go(api, directory)
            row.admitted, row.refused, row.side = len(limit.admitted), len(limit.rejected), len(api.side_requests)
            row.tool = name
            result.rows.append(row)
    result.targets = _w7_targets(result)
    return result


def _w7_targets(result: W7) -> list[Target]:
    """Each orchestrator row's: no task lost in any round, the median round's throughput; with the
    agents' retries off, its 429s a completed task."""
    dag, parallel, shape = result.dag, result.parallel, result.shape.name
    targets = []
    for name, rows in result.by_tool().items():
        if not name.startswith("orchestrator"):
            continue
        shares = [result.throughput(r) / result.rate for r in rows]
        how = "" if name == "orchestrator" else f", {NO_RETRIES}"
        lost = [r.lost for r in rows]
        targets += [
            Target(
                f"W7 rate limit ({shape}){how} ({len(dag)} tasks at max_parallel {parallel}, the API admitting "
                f"{result.rate:g} requests a minute): no task lost",
                f"{sum(lost)} lost" + ("" if len(rows) == 1 else f" in {len(rows)} runs"),
                not any(lost),
            ),
            Target(
                f"W7 ({shape}){how} completion throughput ≥ {W7_SHARE:.0%} of the {result.rate:g} a minute admitted",
                _spread([result.throughput(r) for r in rows], "{:.1f}")
                + f" a minute ({statistics.median(shares):.0%})",
                statistics.median(shares) >= W7_SHARE,
            ),
        ]
        if how:
            per_task = [result.refused_per_task(r) for r in rows]
            targets.append(
                Target(
                    f"W7 ({shape}), {NO_RETRIES}: at most {W7_REFUSED} answers of 429 a completed task",
                    _spread(per_task, "{:.2f}") + " a task",
                    statistics.median(per_task) <= W7_REFUSED,
                )
            )
    return targets


def _w7_orchestrator(
    command: Sequence[str],
    claude: str,
    dag: AgentDag,
    parallel: int,
    api: FakeAnthropic,
    directory: Path,
    *,
    retries_off: bool = False,
) -> W7Row:
    settings = "env: {CLAUDE_CODE_MAX_RETRIES: '0'}\n" if retries_off else ""
    project = write_project(dag, directory, parallel, settings=settings)
    run = run_orchestrator(command, project, agent_env(api, directory, claude))
    limited = sum(1 for e in run.events if e.get("event") == "task_retrying" and e.get("error_class") == "rate_limit")
    completed = run.count("completed")
    return W7Row("", completed, len(dag) - completed, run.makespan(), limited, 0, 0, 0)


def _w7_plain(
    runner: Callable[[AgentDag, Path, dict[str, str], int, str], PlainRun],
    claude: str,
    dag: AgentDag,
    parallel: int,
    api: FakeAnthropic,
    directory: Path,
    extra: Mapping[str, str] | None = None,
) -> W7Row:
    run = runner(dag, directory, {**agent_env(api, directory, claude), **(extra or {})}, parallel, claude)
    return W7Row("", len(run.ok), run.lost, run.wall, None, 0, 0, 0)


def render_w7(results: Sequence[W7]) -> str:
    """The workload, then a table for each shape it ran on."""
    first = results[0]
    dag, requests = first.dag, next(iter(first.dag.tasks.values())).requests
    rounds = (
        ""
        if first.rounds <= 1
        else f" {first.rounds} rounds, every tool once a round in this order: median (min–max) over the rounds."
    )
    parts = [
        f"{dag.name}: {len(dag) * requests} requests ({_calls(requests - 1)}, then an answer; the API "
        f"takes {next(iter(dag.tasks.values())).seconds / requests:g} s a request), concurrency {first.parallel}. "
        f"The fake admits R = {first.rate:g} requests a minute, every `POST /v1/messages` counted, side calls "
        "included; beyond it, 429 `rate_limit_error` with `retry-after` and the `anthropic-ratelimit-requests-*` "
        f"headers. It limits in {_plural(len(results), 'shape')}, as vendors do, each a table below." + rounds
    ]
    for result in results:
        parts += [f"#### {result.shape.name}: {result.shape.words}", _w7_table(result)]
    parts.append(
        "- Throughput: requests of the completed tasks a minute, over the makespan (the orchestrator: "
        "first `started` to last `finished`; the others: their wall time). Ahead of a steady rate: "
        + "; ".join(f"{r.shape.name}: {r.shape.free}" for r in results)
        + ".\n"
        "- The orchestrator runs claude as it always does (`CLAUDE_CODE_MAX_RETRIES=2`: claude re-sends "
        "twice, honouring retry-after, then gives up and the orchestrator waits and retries); "
        f"the rows with `{NO_RETRIES}` turn the agents' own retries off (the plan's `env`, xargs's "
        "environment): every 429 ends its attempt, claude does not say the API's retry-after, and only the "
        "orchestrator's window (`run/limits/windows.py`: AIMD per backend, the starts spaced at the rate "
        "learned from the 429s) keeps the fleet under the limit. "
        "xargs and the level-by-level runner run `claude -p` as a user types it: claude's own default, "
        "10 re-sends with exponential backoff; a task is lost when claude exits non-zero (the level "
        "runner also loses what depends on it). xargs runs one `xargs -P` a level, in order."
    )
    return "\n\n".join(parts)


def _w7_table(result: W7) -> str:
    dag = result.dag
    rows = []
    for tool, found in result.by_tool().items():
        limited = [r.limited for r in found if r.limited is not None]
        rows.append(
            [
                tool,
                _spread([r.completed for r in found], "{:.0f}") + f" / {len(dag)}",
                _spread([r.lost for r in found], "{:.0f}"),
                _spread([r.makespan for r in found], "{:.1f}"),
                _spread([result.throughput(r) for r in found], "{:.1f}"),
                f"{statistics.median(result.throughput(r) for r in found) / result.rate:.0%}",
                _spread(limited, "{:.0f}") if limited else "—",
                " / ".join(
                    _spread([getattr(r, name) for r in found], "{:.0f}") for name in ("admitted", "refused", "side")
                ),
                _spread([result.refused_per_task(r) for r in found], "{:.2f}"),
            ]
        )
    header = [
        "tool",
        "completed",
        "lost",
        "makespan s",
        "throughput / min",
        "of R",
        "attempts retried on a limit",
        "API: admitted / refused (429) / side calls",
        "429 a completed task",
    ]
    return table(header, rows)


# --- W8: usage limit mid-run ----------------------------------------------------------------------


class UsageWindow:
    """The fake's script for W8: ``after`` requests answered, then every request refused with
    claude's usage-limit 429 until a reset ``pause`` seconds later (whole seconds since the epoch,
    as the API gives it), then answered again."""

    def __init__(self, answers: Answers, *, after: int, pause: float) -> None:
        self.answers = answers
        self.after = after
        self.pause = pause
        self.reset: int | None = None
        self.answered: list[float] = []  # wall clock of each request let through
        self.refused: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, body: JSON) -> Reply:
        now = time.time()
        with self._lock:
            if self.reset is None and len(self.answered) >= self.after:
                self.reset = math.ceil(now + self.pause)
            if self.reset is not None and now < self.reset:
                self.refused.append(now)
                return Reply.usage_limit(self.reset)
            self.answered.append(now)
        return self.answers(body)


@dataclass(slots=True)
class W8Row:
    tool: str
    completed: int
    lost: int
    makespan: float
    retries: int | None = None  # the journal's retry lines
    pauses: int | None = None  # run_paused events
    paused_until: float | None = None  # the latest pause's end, as the orchestrator wrote it
    started_in_pause: int | None = None  # attempts started between the orchestrator's first pause and the reset
    started_untold: int | None = None  # between the first refusal and that pause: no claude had said so yet
    resumed_after: float | None = None  # seconds from the reset to the first attempt started after it
    refused: int = 0
    first_request_after: float | None = None  # seconds from the reset to the first request answered


@dataclass(slots=True)
class W8:
    dag: AgentDag
    parallel: int
    after: int
    pause: float
    rows: list[W8Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)


def run_w8(command: Sequence[str], claude: str, sizes: Sizes) -> W8:
    dag, parallel = sizes.w8, sizes.w8_parallel
    result = W8(dag, parallel, sizes.w8_after, sizes.w8_pause)
    names = ["orchestrator"] + ([f"xargs -P {parallel}"] if sizes.others else [])
    for name in names:
        say(f"  W8 {name}: {len(dag)} tasks, a usage limit after {result.after} requests")
        directory = fresh_dir(WORK / "runs" / "W8" / name.split()[0])
        window = UsageWindow(Answers(dag), after=result.after, pause=result.pause)
        with FakeAnthropic(window) as api:
            env = agent_env(api, directory, claude, auth="oauth")
            if name == "orchestrator":
                row = _w8_orchestrator(command, dag, parallel, env, directory, window)
            else:
                run = run_xargs(dag, directory, env, parallel, claude)
                row = W8Row(name, len(run.ok), run.lost, run.wall)
        row.refused = len(window.refused)
        if window.reset is not None:
            later = [t for t in window.answered if t >= window.reset]
            row.first_request_after = min(later) - window.reset if later else None
        result.rows.append(row)
    ours = result.rows[0]
    ok = (
        ours.lost == 0
        and ours.retries == 0
        and (ours.pauses or 0) >= 1
        and ours.started_in_pause == 0
        and ours.resumed_after is not None
        and 0 <= ours.resumed_after <= W8_RESUME
    )
    resumed = "—" if ours.resumed_after is None else f"{ours.resumed_after:.2f} s"
    result.targets = [
        Target(
            f"W8 usage limit mid-run ({len(dag)} tasks): paused until the reset, resumed within "
            f"{W8_RESUME:g} s of it, no task lost, 0 retries",
            f"{ours.lost} lost, {ours.retries} retries, {ours.started_in_pause} started in the pause, "
            f"resumed {resumed} after the reset",
            ok,
        )
    ]
    return result


def _w8_orchestrator(
    command: Sequence[str], dag: AgentDag, parallel: int, env: dict[str, str], directory: Path, window: UsageWindow
) -> W8Row:
    project = write_project(dag, directory, parallel)
    run = run_orchestrator(command, project, env)
    completed = run.count("completed")
    row = W8Row("orchestrator", completed, len(dag) - completed, run.makespan(), retries=run.retries())
    paused = [e for e in run.events if e.get("event") == "run_paused"]
    row.pauses = len(paused)
    if paused:
        row.paused_until = max(_when(str(e["until"])) for e in paused)
    if window.reset is not None and window.refused:
        starts = [_when(str(e["time"])) for e in run.events if e.get("event") == "task_started"]
        told = min((_when(str(e["time"])) for e in paused), default=window.reset)
        row.started_untold = sum(1 for t in starts if window.refused[0] < t < told)
        row.started_in_pause = sum(1 for t in starts if told <= t < window.reset)
        after = [t for t in starts if t >= window.reset]
        row.resumed_after = min(after) - window.reset if after else None
    return row


def _when(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def render_w8(result: W8) -> str:
    dag = result.dag
    rows = []
    for row in result.rows:
        paused = "—" if row.paused_until is None else datetime.fromtimestamp(row.paused_until).strftime("%H:%M:%S")
        rows.append(
            [
                row.tool,
                f"{row.completed} / {len(dag)}",
                str(row.lost),
                "—" if row.retries is None else str(row.retries),
                "—" if row.pauses is None else str(row.pauses),
                paused,
                "—" if row.started_untold is None else str(row.started_untold),
                "—" if row.started_in_pause is None else str(row.started_in_pause),
                "—" if row.resumed_after is None else f"{row.resumed_after:.2f}",
                "—" if row.first_request_after is None else f"{row.first_request_after:.2f}",
                str(row.refused),
                f"{row.makespan:.1f}",
            ]
        )
    header = [
        "tool",
        "completed",
        "lost",
        "retries spent",
        "pauses",
        "paused until",
        "attempts started before a claude told the limit",
        "attempts started in the pause",
        "first attempt after the reset, s",
        "first request answered after the reset, s",
        "requests refused",
        "makespan s",
    ]
    return (
        f"{dag.name}: concurrency {result.parallel}, claude logged in as a subscriber "
        f"(`CLAUDE_CODE_OAUTH_TOKEN`). After {_plural(result.after, 'request')} the fake answers every request with "
        "claude's usage limit (429, `anthropic-ratelimit-unified-status: rejected`, `-reset` "
        f"{result.pause:g} s ahead in whole seconds) until the reset; claude does not re-send it.\n\n"
        + table(header, rows)
        + "\n\n- Retries spent: the journal's `retry` lines (`state/attempts.jsonl`); a pause writes none. "
        "Attempts started in the pause: `task_started` events from the orchestrator's first `run_paused` (the "
        "first claude refused exits and says so) to the reset; before a claude told the limit: those between "
        "the first refused request and that moment, which nothing in the run could know of yet (the tasks "
        "that ended then were answered before the limit). xargs runs one `xargs -P` a level; a task is lost "
        "when claude exits non-zero."
    )


# --- the report -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Report:
    mode: str
    started: str
    claude: str | None
    load_before: str = ""
    load_after: str = ""
    w6: W6 | None = None
    w7: list[W7] = field(default_factory=list)  # one a limit shape
    w8: W8 | None = None
    skipped: str | None = None  # why nothing ran
    crashed: list[str] = field(default_factory=list)

    def targets(self) -> list[Target]:
        parts = [self.w6, *self.w7, self.w8]
        return [t for part in parts if part is not None for t in part.targets]


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


KEPT_NOTE = "_Not run by the command above: kept from the report it replaced (that run's date and load)._"


def kept_parts(previous: str | None, report: Report) -> tuple[list[str], dict[str, str]]:
    """What an earlier agents section says of the workloads this report did not run (``--only``):
    its target rows and its subsections, kept so a run of one workload loses nobody's figures."""
    if not previous:
        return [], {}
    ran = {"W6": report.w6 is not None, "W7": bool(report.w7), "W8": report.w8 is not None}
    rows = [line for line in previous.splitlines() if line.startswith("| W") and ran.get(line[2:4]) is False]
    chunks = previous.split("\n### ")
    subsections: dict[str, str] = {}
    for chunk in chunks[1:]:
        name = chunk.split(" ", 1)[0]
        if name in ran and not ran[name]:
            body = chunk.split(END, 1)[0].rstrip()
            subsections[name] = "### " + body.replace(KEPT_NOTE + "\n\n", "")
    return rows, subsections


def render(report: Report, previous: str | None = None) -> str:
    command = "python bench/agents.py" + ("" if report.mode == "full" else f" --{report.mode}")
    parts = [
        BEGIN,
        "## Agents (issue 21): the real claude CLI against a fake Messages API",
        "",
        f"Written by `{command}` (or `bench/run.py`) on {report.started}.",
    ]
    if report.skipped:
        return "\n".join([*parts, "", f"Skipped: {report.skipped}.", END])
    if report.mode == "smoke":
        parts += ["", "Smoke run: a few tasks a workload, so the targets' verdicts mean nothing here."]
    targets = report.targets()
    kept_rows, kept = kept_parts(previous, report) if report.mode != "smoke" else ([], {})
    if targets or kept_rows:
        rows = table(["target", "measured", ""], [[t.name, t.value, verdict(t.ok)] for t in targets])
        parts += ["", "\n".join([rows, *kept_rows])]
    parts += [
        "",
        "### Conditions",
        "",
        f"- claude: `{report.claude}`, run as the orchestrator runs it (its own config directory and HOME "
        "per run, `ANTHROPIC_BASE_URL` at the fake on 127.0.0.1, a dummy API key or, in W8, a subscriber's "
        "token). The orchestrator: `orchestrator run --json` in the project directory, the plan's "
        "frontmatter `backend: claude` and `max_parallel` only (every other setting at its default).",
        f"- Load average (1/5/15 min) before: {report.load_before}, after: {report.load_after}; this machine's "
        "2 cores are shared with other work, and claude's start-up (~0.7 s of CPU) is CPU-bound.",
    ]
    drawn = {
        "W6": render_w6(report.w6) if report.w6 is not None else None,
        "W7": render_w7(report.w7) if report.w7 else None,
        "W8": render_w8(report.w8) if report.w8 is not None else None,
    }
    headings = {"W6": "### W6 — latency", "W7": "### W7 — rate limit", "W8": "### W8 — usage limit mid-run"}
    for name, text in drawn.items():
        if text is not None:
            parts += ["", headings[name], "", text]
        elif name in kept:
            title, _, body = kept[name].partition("\n")
            parts += ["", title, "", KEPT_NOTE, "", body.strip("\n")]
    if report.crashed:
        parts += ["", "### Crashes", ""] + [f"- {line}" for line in report.crashed]
    return "\n".join([*parts, END])


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _calls(count: int) -> str:
    return "no tool call" if count == 0 else f"{_plural(count, '`Bash` call')} of `echo`"


def _spread(values: Sequence[float], form: str) -> str:
    """The median, and the min–max in brackets when the values differ."""
    middle = form.format(statistics.median(values))
    if len(values) == 1 or min(values) == max(values):
        return middle
    return f"{middle} ({form.format(min(values))}–{form.format(max(values))})"


def section_of(path: Path) -> str | None:
    """The agents section a file holds, if any (``bench/run.py`` keeps it when it rewrites the file)."""
    return marked_section(path, BEGIN, END)


def w7_runs_default(mode: str, runs: int | None) -> int:
    """W7's rounds: ``--runs`` when given, else 2 in a full run (each round takes about 16 minutes
    a shape of limit here: five tools over 120 requests at 60 a minute), 1 in a quick or smoke one."""
    return runs or (2 if mode == "full" else 1)


def run_agents(
    command: Sequence[str],
    *,
    only: set[str],
    mode: str,
    runs: int,
    w7_runs: int = 1,
    limiters: Sequence[str] = W7_LIMITERS,
    w7_tools: Sequence[str] = W7_TOOLS,
) -> Report:
    """The agent workloads in ``only``; ``mode`` is full, quick or smoke; ``runs``: W6's rounds,
    ``w7_runs``: W7's, on each of ``limiters`` (the fake's shapes of limit), the rows ``w7_tools``."""
    claude = find_claude()
    report = Report(mode, machine_line(), tool_version([claude, "--version"]) if claude else None, load_before=load())
    if claude is None:
        report.skipped = "the claude CLI is not installed (tools/install-claude.sh, or set ORCHESTRATOR_CLAUDE_BIN)"
        say(f"agents: skipped: {report.skipped}")
        return report
    sizes = smoke_sizes() if mode == "smoke" else full_sizes()
    steps: list[tuple[str, Callable[[], None]]] = [
        ("W6", lambda: setattr(report, "w6", run_w6(command, claude, sizes, runs))),
        ("W7", lambda: report.w7.extend(run_w7(command, claude, sizes, w7_runs, s, w7_tools) for s in limiters)),
        ("W8", lambda: setattr(report, "w8", run_w8(command, claude, sizes))),
    ]
    for name, step in steps:
        if name not in only:
            continue
        say(f"{name}: agents")
        try:
            step()
        except (ToolFailed, OSError) as exc:
            report.crashed.append(f"{name}: {str(exc).splitlines()[0]}")
            say(f"  !! {name}: {exc}")
    report.load_after = load()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="W6 once (unless --runs)")
    parser.add_argument("--runs", type=int, help="rounds of W6 and W7 (default: W6 3, W7 2; --quick: 1)")
    parser.add_argument("--w7-runs", type=int, help="rounds of W7 alone (default: --runs, else 2; --quick: 1)")
    parser.add_argument("--smoke", action="store_true", help="a few tasks a workload, the orchestrator only")
    parser.add_argument(
        "--limiter", default=",".join(W7_LIMITERS), help="W7's shapes of limit, of bucket,sliding,fixed (default all)"
    )
    parser.add_argument("--w7-tools", default=",".join(W7_TOOLS), help=f"W7's rows, of {','.join(W7_TOOLS)}")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(WORKLOADS)}")
    parser.add_argument("--orchestrator", default=f"{shlex.quote(sys.executable)} -m orchestrator")
    parser.add_argument("--output", type=Path, help="the report to put the section in (default bench/RESULTS.md)")
    args = parser.parse_args(argv)
    only = set(WORKLOADS) if not args.only else {w.strip().upper() for w in args.only.split(",")}
    if only - set(WORKLOADS):
        parser.error(f"unknown workload(s): {', '.join(sorted(only - set(WORKLOADS)))}")
    limiters = [w.strip() for w in args.limiter.split(",") if w.strip()]
    w7_tools = [w.strip() for w in args.w7_tools.split(",") if w.strip()]
    if set(limiters) - set(W7_LIMITERS) or set(w7_tools) - set(W7_TOOLS):
        parser.error(
            f"unknown limiter(s) or W7 tool(s): {', '.join(sorted({*limiters, *w7_tools} - {*W7_LIMITERS, *W7_TOOLS}))}"
        )
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    runs = args.runs or (3 if mode == "full" else 1)
    output = args.output or (WORK / "RESULTS-smoke.md" if args.smoke else BENCH_DIR / "RESULTS.md")
    command = cli_command(args.orchestrator)
    WORK.mkdir(parents=True, exist_ok=True)
    warm_up(command)
    w7_runs = args.w7_runs or w7_runs_default(mode, args.runs)
    previous = section_of(output)
    report = run_agents(command, only=only, mode=mode, runs=runs, w7_runs=w7_runs, limiters=limiters, w7_tools=w7_tools)
    section = render(report, previous)
    put_marked_section(output, BEGIN, END, section.removeprefix(BEGIN).removesuffix(END))
    print(section)
    say(f"wrote the agents section of {output}")
    return 1 if report.crashed else 0


if __name__ == "__main__":
    sys.exit(main())
