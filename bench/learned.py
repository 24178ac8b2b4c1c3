"""W6s, the learned order alone: W6's workloads as shell sleeps, a first run and one after a reset.

    python bench/learned.py [--runs 3] [--write]

Issue 43 measured its baseline this way: the durations W6's fake API draws (a lognormal law),
slept by shell tasks at ``max_parallel: 4``, so that no agent start-up or API noise hides what the
order alone costs. Two workloads: W6's 24 tasks (seed 21, each depending on 0-2 tasks before it,
median 3 s) and its 12 independent tasks (median 1 s). Each round: a first run on a fresh
workspace (the order knows no duration: the longest chain of tasks first, then table order), then
``orchestrator reset --all`` and the same plan again (the order learned from the event log).
Makespan: first ``started`` to last ``finished`` of the result files; lower bound: max(critical
path, work / 4) over the durations measured in that run. Target (PERFORMANCE.md, issue 43): the
later run within 1.05x of its lower bound. ``--write`` puts the report in bench/RESULTS.md between
its markers (``bench/run.py`` keeps it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agentlib import AgentDag, random_dag, read_records
from benchlib import Dag, Node, fresh_dir, marked_section, put_marked_section, say, table, verdict, write_plan

CONCURRENCY = 4
LIMIT = 1.05
WORK = Path(__file__).resolve().parent / ".work" / "learned"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
BEGIN = "<!-- W6s: written by bench/learned.py -->"
END = "<!-- /W6s -->"


@dataclass(frozen=True, slots=True)
class Run:
    makespan: float
    bound: float
    replay: float  # the zero-overhead replay of a first run's order (no duration known)

    @property
    def ratio(self) -> float:
        return self.makespan / self.bound


def workloads() -> dict[str, AgentDag]:
    return {
        "W6, 24 tasks": random_dag(24, seed=21, median=3.0, sigma=0.8),
        "W6, 12 independent tasks": random_dag(12, seed=21, median=1.0, sigma=0.8, fan=(0, 0)),
    }


def as_sleeps(dag: AgentDag) -> Dag:
    out = Dag(dag.name)
    for task in dag.tasks.values():
        out.add(Node(task.id, f"sleep {task.seconds:g}", task.seconds, task.deps))
    return out


def one_run(command: Sequence[str], project: Path, dag: AgentDag) -> Run:
    subprocess.run([*command, "run", "--json"], cwd=project, check=False, capture_output=True, timeout=900)
    records = read_records(project)
    durations = {t: r.finished - r.started for t, r in records.items() if r.started and r.finished}
    if len(durations) != len(dag):
        raise SystemExit(f"{project}: {len(durations)} of {len(dag)} tasks finished; see its .orchestrator/")
    makespan = max(r.finished or 0.0 for r in records.values()) - min(r.started or 0.0 for r in records.values())
    return Run(makespan, dag.lower_bound(durations, CONCURRENCY), dag.replay(durations, CONCURRENCY))


def measure(command: Sequence[str], label: str, dag: AgentDag, runs: int) -> tuple[list[Run], list[Run]]:
    first: list[Run] = []
    later: list[Run] = []
    for round_ in range(1, runs + 1):
        project = fresh_dir(WORK / label.split(",")[1].strip().replace(" ", "-")) / "project"
        write_plan(as_sleeps(dag), project, CONCURRENCY)
        say(f"  {label}, round {round_}/{runs}: first run")
        first.append(one_run(command, project, dag))
        subprocess.run([*command, "reset", "--all"], cwd=project, check=True, capture_output=True)
        say(f"  {label}, round {round_}/{runs}: after reset --all")
        later.append(one_run(command, project, dag))
    return first, later


def best_independent(seconds: Sequence[float], machines: int) -> float:
    """The shortest schedule of independent tasks on ``machines`` (branch and bound: a dozen tasks)."""
    times = sorted(seconds, reverse=True)
    best = sum(times)
    loads = [0.0] * machines

    def place(i: int) -> None:
        nonlocal best
        if max(loads) >= best:
            return
        if i == len(times):
            best = max(loads)
            return
        tried: set[float] = set()
        for k in range(machines):
            if loads[k] in tried:
                continue
            tried.add(loads[k])
            loads[k] += times[i]
            place(i + 1)
            loads[k] -= times[i]

    place(0)
    return best


def order_note(label: str, dag: AgentDag) -> str:
    """What a perfectly learned order can reach on the drawn durations: the longest remaining time
    first (list scheduling told every duration), the list a learned run plays out and improves
    (``plan/listorder``), and for independent tasks the best schedule."""
    from orchestrator.plan import listorder

    drawn = {t.id: t.seconds for t in dag.tasks.values()}
    bound = dag.lower_bound(drawn, CONCURRENCY)
    longest = sorted(drawn, key=lambda t: -_remaining(dag, drawn)[t])
    needs = {t.id: list(t.deps) for t in dag.tasks.values()}
    played = listorder.improved(longest, drawn, needs, {}, CONCURRENCY) or longest
    ends = listorder.Play(longest, drawn, needs, CONCURRENCY).makespan({t: n for n, t in enumerate(played)})
    text = (
        f"- {label}, on the drawn durations: told every duration beforehand, longest remaining first replays at "
        f"{dag.replay(drawn, CONCURRENCY, drawn) / bound:.3f}× the bound; the list a learned run plays out and "
        f"improves (plan/listorder) at {ends / bound:.3f}×"
    )
    if not dag.edges():
        best = best_independent(list(drawn.values()), CONCURRENCY)
        text += f"; the best schedule of all is {best / bound:.3f}× (bin packing)"
    return text + "."


def _remaining(dag: AgentDag, took: dict[str, float]) -> dict[str, float]:
    after: dict[str, list[str]] = {t: [] for t in took}
    for task in dag.tasks.values():
        for need in task.deps:
            after[need].append(task.id)
    found: dict[str, float] = {}
    for name in reversed(list(dag.tasks)):
        found[name] = took[name] + max((found[a] for a in after[name]), default=0.0)
    return found


def spread(values: Sequence[float], fmt: str = "{:.3f}×") -> str:
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def report(measured: dict[str, tuple[list[Run], list[Run]]], runs: int) -> str:
    rows = []
    verdicts = []
    for label, (first, later) in measured.items():
        for name, got in (("first run", first), ("after `reset --all`", later)):
            rows.append(
                [
                    label,
                    name,
                    spread([r.makespan for r in got], "{:.2f} s"),
                    spread([r.bound for r in got], "{:.2f} s"),
                    spread([r.ratio for r in got]),
                    spread([r.makespan / r.replay for r in first]) if name == "first run" else "",
                    verdict(statistics.median(r.ratio for r in got) <= LIMIT) if name != "first run" else "",
                ]
            )
        verdicts.append(
            f"- {verdict(statistics.median(r.ratio for r in later) <= LIMIT)} {label}: the run after a reset "
            f"within {LIMIT}× its lower bound: {statistics.median(r.ratio for r in later):.3f}×"
        )
    header = [
        "workload",
        "run",
        "makespan",
        "lower bound",
        "makespan / bound",
        "first run / zero-overhead replay of its order",
        f"≤ {LIMIT}×",
    ]
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return "\n".join(
        [
            "## W6s — the learned order alone: W6's durations as shell sleeps",
            "",
            f"Written by `python bench/learned.py --runs {runs} --write` on 2 cores, Python "
            f"{sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average "
            f"after: {load}. The durations W6's fake API draws (seed 21), slept by `backend: shell` tasks at "
            f"`max_parallel: {CONCURRENCY}`: what the order alone costs, without claude's start-up or the "
            "API's noise. Each round: a first run on a fresh workspace, then `orchestrator reset --all` and "
            "the same plan again; median of the rounds (min–max). Lower bound: max(critical path, work / 4) "
            "over the durations measured in that run. Before issue 43 the order learned nothing: the "
            "issue measured 1.25× on the 12 tasks' first run and again 1.25× after it.",
            "",
            table(header, rows),
            "",
            *verdicts,
            *(order_note(label, dag) for label, dag in workloads().items()),
        ]
    )


def section_of(path: Path) -> str | None:
    """The W6s section a report holds, if any (``bench/run.py`` keeps it when it rewrites the file)."""
    return marked_section(path, BEGIN, END)


def write_section(path: Path, body: str) -> None:
    """``body`` as the report's W6s section: in place of the one it holds, else at its end."""
    put_marked_section(path, BEGIN, END, body)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--write", action="store_true", help="put the report in bench/RESULTS.md")
    args = parser.parse_args(argv)
    command = [sys.executable, "-m", "orchestrator"]
    measured = {label: measure(command, label, dag, args.runs) for label, dag in workloads().items()}
    text = report(measured, args.runs)
    print(text)
    if args.write:
        write_section(RESULTS, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
