"""W11, stragglers (issue 55's W10): a heavy-tailed batch where one attempt in eight stalls, run
with and without ``hedge``, side by side with ``xargs -P`` in the same round.

    python bench/stragglers.py [--seeds 55 56 57] [--write]

24 independent tasks at ``max_parallel: 4`` (shell twins of agent tasks: each sleeps its time),
durations drawn from a lognormal law (median 1 s, shape 0.6). Per seed, exactly three of the 24
first attempts (one in eight) stall: they take 10x their task's time; a later attempt of a task
(a hedge) stalls with the same chance, one in eight, drawn from (seed, task, attempt): the same
figures for the same seed, every time. Each round, on fresh projects:

1. the batch without stalls: what the lower bound is reached against (max of the longest task and
   the work over 4 slots, over the drawn times), and the history the hedged run learns from;
2. the batch with stalls and ``hedge: 2x`` on each row (twice the p90 of the kind's durations,
   learned from run 1's event log, copied in as a user's workspace would hold it);
3. the same batch with stalls and no hedge (run 1's history too: the same order);
4. ``xargs -P 4`` over the same first attempts (nothing hedges a stalled one).

Makespan: first ``started`` to last ``finished`` of the result files (xargs: its wall time). Cost:
shell twins report none, so it is modelled as an agent's tokens: an attempt costs the work it did,
its running time up to its task's time (a stalled stream streams nothing); the hedges' extra cost
is what the second attempts did over the batch's work (nothing credited for the stragglers stopped
early); beside it, billed by the second, and the whole run's agent-seconds against the unhedged
run's. Targets (issue 55): with hedging, makespan within
1.3x of the lower bound, at no more than 15% extra cost. ``--write`` puts the report in
bench/RESULTS.md between its markers (``bench/run.py`` keeps it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agentlib import read_records
from benchlib import fresh_dir, marked_section, put_marked_section, say, table, verdict

TASKS = 24
CONCURRENCY = 4
MEDIAN, SIGMA = 1.0, 0.6
STALL_EVERY, STALL_FACTOR = 8, 10.0
MAKESPAN_LIMIT, COST_LIMIT = 1.3, 0.15
WORK = Path(__file__).resolve().parent / ".work" / "stragglers"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
BEGIN = "<!-- W11: written by bench/stragglers.py -->"
END = "<!-- /W11 -->"


@dataclass(frozen=True, slots=True)
class Batch:
    """One seed's batch: each task's time, and which attempts of it stall."""

    seed: int
    seconds: dict[str, float]
    stalled_first: frozenset[str]

    def attempt(self, task: str, number: int) -> float:
        """What attempt ``number`` of ``task`` takes (deterministic per seed)."""
        if number == 1:
            stalls = task in self.stalled_first
        else:
            stalls = random.Random(f"{self.seed}-{task}-{number}").random() < 1 / STALL_EVERY
        return round(self.seconds[task] * (STALL_FACTOR if stalls else 1.0), 2)

    @property
    def lower_bound(self) -> float:
        return max(max(self.seconds.values()), sum(self.seconds.values()) / CONCURRENCY)


def batch(seed: int) -> Batch:
    rng = random.Random(seed)
    ids = [f"T-{n:02d}" for n in range(1, TASKS + 1)]
    seconds = {task: round(rng.lognormvariate(math.log(MEDIAN), SIGMA), 2) for task in ids}
    return Batch(seed, seconds, frozenset(rng.sample(ids, TASKS // STALL_EVERY)))


def script(work: Batch, task: str, stalls: bool) -> str:
    """The task's command: each attempt its own time (``$ORCHESTRATOR_ATTEMPT``), as an agent's."""
    if not stalls:
        return f"sleep {work.seconds[task]:g}"
    cases = " ".join(f"{n}) sleep {work.attempt(task, n):g};;" for n in range(1, 6))
    return f'case "$ORCHESTRATOR_ATTEMPT" in {cases} *) sleep {work.seconds[task]:g};; esac'


def plan(work: Batch, stalls: bool, hedge: str) -> str:
    rows = "\n".join(f"| {task} | {script(work, task, stalls)} | None | {hedge} |" for task in work.seconds)
    return (
        f"---\nbackend: shell\nmax_parallel: {CONCURRENCY}\n---\n# W11: stragglers (seed {work.seed})\n\n"
        "## Task Decomposition\n| Task ID | Command | Dependencies | Hedge |\n|---|---|---|---|\n"
        f"{rows}\n"
    )


@dataclass(frozen=True, slots=True)
class Run:
    makespan: float
    agent_seconds: float  # every attempt's running time
    hedges: int = 0  # second attempts started
    hedge_seconds: float = 0.0  # their running time
    hedge_work: float = 0.0  # the work they did: their running time, up to their task's (a stall streams nothing)
    hedges_won: int = 0
    false_hedges: int = 0  # hedges of a first attempt that did not stall


def orchestrate(command: Sequence[str], project: Path, text: str, history: Path | None, work: Batch) -> Run:
    state = project / ".orchestrator" / "state"
    state.mkdir(parents=True, exist_ok=True)
    (project / ".orchestrator" / "master_plan.md").write_text(text, encoding="utf-8")
    if history is not None:  # the runs before, as the user's workspace holds them
        shutil.copy(history, state / "events.jsonl")
    done = subprocess.run([*command, "run", "--json"], cwd=project, check=False, capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    records = read_records(project)
    if len(records) != TASKS or any(r.status != "completed" for r in records.values()):
        raise SystemExit(f"{project}: not every task completed ({done.stderr[-500:]!r}); see its .orchestrator/")
    makespan = max(r.finished or 0.0 for r in records.values()) - min(r.started or 0.0 for r in records.values())
    logged = [json.loads(line) for line in (state / "events.jsonl").read_text(encoding="utf-8").splitlines()]
    run_id = [e["run"] for e in logged if e["event"] == "run_started"][-1]  # (this run: the last)
    events = [e for e in logged if e.get("run") == run_id]
    listed = json.loads(subprocess.run([*command, "history", "--json"], cwd=project, check=True,
                                       capture_output=True).stdout)["attempts"]  # fmt: skip
    attempts = [a for a in listed if a["run"] == run_id]
    spent = [_seconds(a) for a in attempts]
    hedged = [e for e in events if e["event"] == "task_hedged"]
    return Run(
        makespan,
        sum(spent),
        hedges=len(hedged),
        hedge_seconds=sum(_seconds(a) for a in attempts if a["attempt"] > 1),
        hedge_work=sum(min(_seconds(a), work.seconds[a["task"]]) for a in attempts if a["attempt"] > 1),
        hedges_won=sum(1 for e in events if e["event"] == "task_hedge_won" and e["hedge"]),
        false_hedges=sum(1 for e in hedged if e["task"] not in work.stalled_first),
    )


def _seconds(attempt: dict[str, str]) -> float:
    return (datetime.fromisoformat(attempt["ended"]) - datetime.fromisoformat(attempt["started"])).total_seconds()


def xargs(project: Path, work: Batch) -> float:
    lines = "".join(f"sleep {work.attempt(task, 1):g}\n" for task in work.seconds)
    started = time.perf_counter()
    subprocess.run(["xargs", "-P", str(CONCURRENCY), "-I{}", "sh", "-c", "{}"], input=lines, text=True,
                   cwd=project, check=True)  # fmt: skip
    return time.perf_counter() - started


@dataclass(frozen=True, slots=True)
class Round:
    work: Batch
    clean: Run
    hedged: Run
    tight: Run  # hedge: 1x
    unhedged: Run
    xargs: float


def measure(command: Sequence[str], seed: int) -> Round:
    work = batch(seed)
    root = fresh_dir(WORK / f"seed-{seed}")
    say(f"  seed {seed}: without stalls")
    clean = orchestrate(command, root / "clean", plan(work, False, "-"), None, work)
    history = root / "clean" / ".orchestrator" / "state" / "events.jsonl"
    say(f"  seed {seed}: stalls, hedge: 2x")
    hedged = orchestrate(command, root / "hedged", plan(work, True, "2x"), history, work)
    say(f"  seed {seed}: stalls, hedge: 1x")
    tight = orchestrate(command, root / "tight", plan(work, True, "1x"), history, work)
    say(f"  seed {seed}: stalls, no hedge")
    unhedged = orchestrate(command, root / "unhedged", plan(work, True, "-"), history, work)
    say(f"  seed {seed}: xargs -P {CONCURRENCY}")
    (root / "xargs").mkdir()
    return Round(work, clean, hedged, tight, unhedged, xargs(root / "xargs", work))


def report(rounds: Sequence[Round], seeds: Sequence[int]) -> str:
    rows = []
    for r in rounds:
        bound, work = r.work.lower_bound, sum(r.work.seconds.values())
        rows.append([
            str(r.work.seed),
            f"{bound:.2f} s",
            f"{r.clean.makespan:.2f} s ({r.clean.makespan / bound:.2f}×)",
            f"{r.hedged.makespan:.2f} s ({r.hedged.makespan / bound:.2f}×)",
            f"{r.unhedged.makespan:.2f} s ({r.unhedged.makespan / bound:.2f}×)",
            f"{r.xargs:.2f} s ({r.xargs / bound:.2f}×)",
            f"{r.hedged.hedges} ({r.hedged.hedges_won} won, {r.hedged.false_hedges} of no stall)",
            f"{r.hedged.hedge_work / work:.1%}",
            f"{r.hedged.hedge_seconds / work:.1%}",
            f"{r.hedged.agent_seconds:.1f} s / {r.unhedged.agent_seconds:.1f} s",
            f"{r.tight.makespan:.2f} s ({r.tight.makespan / bound:.2f}×), {r.tight.hedges} hedges "
            f"({r.tight.false_hedges} of no stall), {r.tight.hedge_work / work:.1%}",
        ])  # fmt: skip
    ratio = statistics.median(r.hedged.makespan / r.work.lower_bound for r in rounds)
    extra = statistics.median(r.hedged.hedge_work / sum(r.work.seconds.values()) for r in rounds)
    by_time = statistics.median(r.hedged.hedge_seconds / sum(r.work.seconds.values()) for r in rounds)
    plain = statistics.median(r.unhedged.makespan / r.work.lower_bound for r in rounds)
    tight = statistics.median(r.tight.makespan / r.work.lower_bound for r in rounds)
    tight_extra = statistics.median(r.tight.hedge_work / sum(r.work.seconds.values()) for r in rounds)
    header = ["seed", "lower bound (no stall)", "no stall", "stalls, `hedge: 2x`", "stalls, no hedge",
              f"`xargs -P {CONCURRENCY}`", "hedges", "hedges' extra cost (work done)", "(billed by the second)",
              "agent-seconds: hedged / unhedged", "`hedge: 1x`: makespan, hedges, extra cost"]  # fmt: skip
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return "\n".join([
        "## W11 — stragglers: hedging a heavy tail (issue 55's W10)",
        "",
        f"Written by `python bench/stragglers.py --seeds {' '.join(map(str, seeds))} --write` on 2 cores, Python "
        f"{sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average after: "
        f"{load}. {TASKS} independent shell twins of agent tasks at `max_parallel: {CONCURRENCY}`, their times "
        f"drawn from a lognormal law (median {MEDIAN:g} s, shape {SIGMA:g}); one attempt in eight stalls at "
        f"{STALL_FACTOR:g}× its task's time (three first attempts of each seed's 24, and a hedge with the same "
        "chance, drawn from the seed). Per seed, in one round: the batch without stalls (the lower bound, "
        "max(longest task, work / 4) over the drawn times, and the history the hedged run learns from), "
        "then with stalls and `hedge: 2x` (twice the p90 of the kind's durations), the same with `hedge: 1x` "
        "(last column), with stalls and no hedge, "
        "and `xargs -P 4` over the same first attempts. Makespan: first start to last end of the result files "
        "(xargs: its wall); in brackets, over the lower bound. Cost: shell twins report none, so it is "
        "modelled as an agent's tokens: an attempt costs the work it did, its running time up to its task's "
        "time (a stalled stream streams nothing); the hedges' extra cost is what the second attempts did over "
        "the batch's work, nothing credited for the stragglers they stopped early. Beside it, billed by the "
        "second (every second an attempt ran), and every attempt's seconds of the hedged run against the "
        "unhedged run's.",
        "",
        table(header, rows),
        "",
        f"- {verdict(ratio <= MAKESPAN_LIMIT)} with hedging, makespan within {MAKESPAN_LIMIT}× of the lower bound "
        f"without stalls: {ratio:.2f}× (median over the seeds; without hedging {plain:.2f}×)",
        f"- {verdict(extra <= COST_LIMIT)} the hedges' extra cost at most {COST_LIMIT:.0%}: {extra:.1%} "
        f"(median over the seeds; billed by the second, {by_time:.1%})",
        f"- With `hedge: 1x` (the p90 itself as the bound): makespan {tight:.2f}× the lower bound, extra cost "
        f"{tight_extra:.1%} (medians)",
        ('- Why the makespan misses 1.3×: a stall is cut at the bound, not before it. A stalled task holds its'
        ' slot until its bound (2× the p90: about 3.2 s here, half the lower bound itself), then ends its own'
        " time after its hedge starts; a stall shorter than the bound (a short task's) is never hedged; and a"
        ' hedge stalls too, one time in eight, when the first attempt, stalled, wins at its full length as '
        'without hedging. `hedge: 1x` hedges sooner, but the p90 is exceeded by one attempt in ten without '
        'any stall: more hedges of healthy attempts, at a higher cost.')
        if ratio > MAKESPAN_LIMIT
        else "- Hedging cut the stalls within the target.",
        "- The bound is learned: a kind's p90 from the runs before. Had those runs held unhedged stalls "
        "at one in eight, the p90 would sit among them and `2x` would hedge nothing; a hedged run records "
        "the winner's time and the stopped straggler as `hedge_lost`, which no estimate learns from, so "
        "its history stays the batch's own.",
    ])  # fmt: skip


def section_of(path: Path) -> str | None:
    """The W11 section a report holds, if any (``bench/run.py`` keeps it when it rewrites the file)."""
    return marked_section(path, BEGIN, END)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[55, 56, 57], help="one round each (55 56 57)")
    parser.add_argument("--write", action="store_true", help="put the report in bench/RESULTS.md")
    args = parser.parse_args(argv)
    command = [sys.executable, "-m", "orchestrator"]
    rounds = [measure(command, seed) for seed in args.seeds]
    text = report(rounds, args.seeds)
    print(text)
    if args.write:
        put_marked_section(RESULTS, BEGIN, END, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
