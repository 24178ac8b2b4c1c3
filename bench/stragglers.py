"""W11, stragglers (issue 55's W10, issue 66's W11): a batch where one attempt in eight stalls, run
with and without ``hedge``, side by side with ``xargs -P`` in the same round, in two shapes.

    python bench/stragglers.py [--shape tail|agent] [--seeds 55 56 57] [--scale 0.1] [--write]

24 independent tasks at ``max_parallel: 4`` (shell twins of agent tasks: each sleeps its time).
``--shape tail`` (the default): durations drawn from a lognormal law (median 1 s, shape 0.6), a
heavy tail. ``--shape agent``: durations drawn from 20-60 s, as a batch of agent tasks takes (issue
66). Per seed, exactly three of the 24 first attempts (one in eight) stall: they take 10x their
task's time; a later attempt of a task (a hedge) stalls with the same chance, one in eight, drawn
from (seed, task, attempt): the same figures for the same seed, every time. Each round, on fresh
projects:

1. the batch without stalls: what the lower bound is reached against (max of the longest task and
   the work over 4 slots, over the drawn times), and the history the hedged run learns from;
2. the batch with stalls and ``hedge: 2x`` on each row (twice the p90 of the kind's durations:
   learned from run 1's event log, copied in as a user's workspace would hold it, or this run's
   own completed attempts, whichever is sooner);
3. the same with ``hedge: 1x``;
4. the same batch with stalls and no hedge (run 1's history too: the same order);
5. ``xargs -P 4`` over the same first attempts (nothing hedges a stalled one).

For the agent shape, 2-5 run side by side (a round of them one after the other would take some 40
minutes a seed): they sleep, and share nothing but two idle cores. ``--scale 0.1`` shrinks every
time tenfold, for a quick check; the figures reported are at full scale.

Makespan: first ``started`` to last ``finished`` of the result files (xargs: its wall time). Cost:
shell twins report none, so it is modelled as an agent's tokens: an attempt costs the work it did,
its running time up to its task's time (a stalled stream streams nothing); the hedges' extra cost
is what the second attempts did over the batch's work (nothing credited for the stragglers stopped
early); beside it, billed by the second, and the whole run's agent-seconds against the unhedged
run's. Targets (issue 55, issue 66 for the agent shape): with hedging, makespan within 1.3x of the
lower bound, at no more than 15% extra cost. ``--write`` puts the report in bench/RESULTS.md
between its shape's markers (``bench/run.py`` keeps both).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from agentlib import read_records
from benchlib import fresh_dir, marked_section, put_marked_section, say, table, verdict

TASKS = 24
CONCURRENCY = 4
MEDIAN, SIGMA = 1.0, 0.6  # the tail shape's lognormal law
SHORTEST, LONGEST = 20.0, 60.0  # the agent shape's times
STALL_EVERY, STALL_FACTOR = 8, 10.0
MAKESPAN_LIMIT, COST_LIMIT = 1.3, 0.15
WORK = Path(__file__).resolve().parent / ".work" / "stragglers"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


@dataclass(frozen=True, slots=True)
class Shape:
    """What a batch's times are drawn from, and where its report goes."""

    name: str
    law: str  # in words, for the report
    draw: Callable[[random.Random], float]
    begin: str
    end: str
    side_by_side: bool  # the runs with stalls at once (``measure``)


SHAPES = {
    "tail": Shape("tail", f"a lognormal law (median {MEDIAN:g} s, shape {SIGMA:g})",
                  lambda rng: rng.lognormvariate(math.log(MEDIAN), SIGMA),
                  "<!-- W11: written by bench/stragglers.py -->", "<!-- /W11 -->", False),
    "agent": Shape("agent", f"{SHORTEST:g}-{LONGEST:g} s, uniformly (agent tasks' times)",
                   lambda rng: rng.uniform(SHORTEST, LONGEST),
                   "<!-- W11 agent: written by bench/stragglers.py --shape agent -->", "<!-- /W11 agent -->", True),
}  # fmt: skip


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

    @property
    def work(self) -> float:
        return sum(self.seconds.values())


def batch(seed: int, shape: Shape, scale: float = 1.0) -> Batch:
    rng = random.Random(seed)
    ids = [f"T-{n:02d}" for n in range(1, TASKS + 1)]
    seconds = {task: round(shape.draw(rng) * scale, 2) for task in ids}
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
    bounds: tuple[float, ...] = ()  # each hedge's bound, seconds
    afters: tuple[float, ...] = ()  # when each hedge started, seconds into its straggler (a slot freed)
    from_run: int = 0  # hedges whose bound this run's own attempts gave (``task_hedged``'s why)


def orchestrate(command: Sequence[str], project: Path, text: str, history: Path | None, work: Batch) -> Run:
    state = project / ".orchestrator" / "state"
    state.mkdir(parents=True, exist_ok=True)
    (project / ".orchestrator" / "master_plan.md").write_text(text, encoding="utf-8")
    if history is not None:  # the runs before, as the user's workspace holds them
        shutil.copy(history, state / "events.jsonl")
    limit = 300 + sum(work.attempt(task, 1) for task in work.seconds)  # (every first attempt in a row)
    done = subprocess.run([*command, "run", "--json"], cwd=project, check=False, capture_output=True, text=True,
                          timeout=limit)  # fmt: skip
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
        bounds=tuple(e["bound"] for e in hedged),
        afters=tuple(e["after"] for e in hedged),
        from_run=sum(1 for e in hedged if "in this run" in e["why"]),
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


def measure(command: Sequence[str], seed: int, shape: Shape, scale: float) -> Round:
    work = batch(seed, shape, scale)
    root = fresh_dir(WORK / shape.name / f"seed-{seed}")
    say(f"  seed {seed}: without stalls")
    clean = orchestrate(command, root / "clean", plan(work, False, "-"), None, work)
    history = root / "clean" / ".orchestrator" / "state" / "events.jsonl"
    (root / "xargs").mkdir()
    runs = {"hedged": "2x", "tight": "1x", "unhedged": "-"}
    if not shape.side_by_side:
        found = {}
        for name, hedge in runs.items():
            say(f"  seed {seed}: stalls, hedge: {hedge}")
            found[name] = orchestrate(command, root / name, plan(work, True, hedge), history, work)
        say(f"  seed {seed}: xargs -P {CONCURRENCY}")
        return Round(work, clean, found["hedged"], found["tight"], found["unhedged"], xargs(root / "xargs", work))
    say(f"  seed {seed}: stalls with hedge: 2x, 1x and none, and xargs -P {CONCURRENCY}, side by side")
    with ThreadPoolExecutor(len(runs) + 1) as pool:
        started = {name: pool.submit(orchestrate, command, root / name, plan(work, True, hedge), history, work)
                   for name, hedge in runs.items()}  # fmt: skip
        plain = pool.submit(xargs, root / "xargs", work)
        done = {name: future.result() for name, future in started.items()}
    return Round(work, clean, done["hedged"], done["tight"], done["unhedged"], plain.result())


def report(rounds: Sequence[Round], seeds: Sequence[int], shape: Shape, written: str) -> str:
    """The shape's section of RESULTS.md; ``written``: when the rounds ran, and the load after."""
    rows = []
    for r in rounds:
        bound, work = r.work.lower_bound, r.work.work
        rows.append([
            str(r.work.seed),
            f"{bound:.2f} s",
            f"{r.clean.makespan:.2f} s ({r.clean.makespan / bound:.2f}×)",
            f"{r.hedged.makespan:.2f} s ({r.hedged.makespan / bound:.2f}×)",
            f"{r.unhedged.makespan:.2f} s ({r.unhedged.makespan / bound:.2f}×)",
            f"{r.xargs:.2f} s ({r.xargs / bound:.2f}×)",
            f"{r.hedged.hedges} ({r.hedged.hedges_won} won, {r.hedged.false_hedges} of no stall, "
            f"{r.hedged.from_run} bound by this run)",
            f"{_median(r.hedged.bounds):.2f} s, {_median(r.hedged.afters):.2f} s",
            f"{r.hedged.hedge_work / work:.1%}",
            f"{r.hedged.hedge_seconds / work:.1%}",
            f"{r.hedged.agent_seconds:.1f} s / {r.unhedged.agent_seconds:.1f} s",
            f"{r.hedged.agent_seconds / CONCURRENCY / bound:.2f}×",
            f"{r.tight.makespan:.2f} s ({r.tight.makespan / bound:.2f}×), {r.tight.hedges} hedges "
            f"({r.tight.false_hedges} of no stall), {r.tight.hedge_work / work:.1%}",
        ])  # fmt: skip
    header = ["seed", "lower bound (no stall)", "no stall", "stalls, `hedge: 2x`", "stalls, no hedge",
              f"`xargs -P {CONCURRENCY}`", "hedges", "their bound, and when they started (medians)",
              "hedges' extra cost (work done)",
              "(billed by the second)", "agent-seconds: hedged / unhedged",
              f"slots' floor: hedged agent-seconds / {CONCURRENCY}",
              "`hedge: 1x`: makespan, hedges, extra cost"]  # fmt: skip
    return "\n".join([*_intro(seeds, shape, written), "", table(header, rows), "", *_verdicts(rounds, shape)])


def _intro(seeds: Sequence[int], shape: Shape, written: str) -> list[str]:
    command = "python bench/stragglers.py" + ("" if shape.name == "tail" else f" --shape {shape.name}")
    title = {"tail": "## W11 — stragglers: hedging a heavy tail (issue 55's W10)",
             "agent": "## W11 — stragglers on a shape like agent work: 20-60 s (issue 66)"}[shape.name]  # fmt: skip
    side = (" The four runs with stalls (and xargs) of a seed run side by side, after the batch without stalls:"
            " they sleep, sharing two idle cores." if shape.side_by_side else "")  # fmt: skip
    return [
        title,
        "",
        f"Written by `{command} --seeds {' '.join(map(str, seeds))} --write` on 2 cores, Python "
        f"{sys.version.split()[0]}, {written}. {TASKS} independent shell twins of agent tasks at "
        f"`max_parallel: {CONCURRENCY}`, their times drawn from {shape.law}; one attempt in eight stalls at "
        f"{STALL_FACTOR:g}× its task's time (three first attempts of each seed's 24, and a hedge with the same "
        "chance, drawn from the seed). Per seed, in one round: the batch without stalls (the lower bound, "
        "max(longest task, work / 4) over the drawn times, and the history the hedged run learns from), "
        "then with stalls and `hedge: 2x` (twice the p90 of the kind's durations, the runs before's or this "
        "run's own, whichever is sooner), the same with `hedge: 1x` (last column), with stalls and no hedge, "
        f"and `xargs -P 4` over the same first attempts.{side} Makespan: first start to last end of the result "
        "files (xargs: its wall); in brackets, over the lower bound. Cost: shell twins report none, so it is "
        "modelled as an agent's tokens: an attempt costs the work it did, its running time up to its task's "
        "time (a stalled stream streams nothing); the hedges' extra cost is what the second attempts did over "
        "the batch's work, nothing credited for the stragglers they stopped early. Beside it, billed by the "
        "second (every second an attempt ran), and every attempt's seconds of the hedged run against the "
        "unhedged run's; over 4 slots, those seconds are a floor no order of the hedged run gets under "
        "(slots' floor, over the lower bound).",
    ]  # fmt: skip


def _verdicts(rounds: Sequence[Round], shape: Shape) -> list[str]:
    def median(of: Callable[[Round], float]) -> float:
        return statistics.median(of(r) for r in rounds)

    ratio = median(lambda r: r.hedged.makespan / r.work.lower_bound)
    extra = median(lambda r: r.hedged.hedge_work / r.work.work)
    by_time = median(lambda r: r.hedged.hedge_seconds / r.work.work)
    plain = median(lambda r: r.unhedged.makespan / r.work.lower_bound)
    tight = median(lambda r: r.tight.makespan / r.work.lower_bound)
    tight_extra = median(lambda r: r.tight.hedge_work / r.work.work)
    floor = median(lambda r: r.hedged.agent_seconds / CONCURRENCY / r.work.lower_bound)
    bound = median(lambda r: _median(r.hedged.bounds))
    after = median(lambda r: _median(r.hedged.afters))
    found = [
        f"- {verdict(ratio <= MAKESPAN_LIMIT)} with hedging, makespan within {MAKESPAN_LIMIT}× of the lower bound "
        f"without stalls: {ratio:.2f}× (median over the seeds; without hedging {plain:.2f}×)",
        f"- {verdict(extra <= COST_LIMIT)} the hedges' extra cost at most {COST_LIMIT:.0%}: {extra:.1%} "
        f"(median over the seeds; billed by the second, {by_time:.1%})",
        f"- With `hedge: 1x` (the p90 itself as the bound): makespan {tight:.2f}× the lower bound, extra cost "
        f"{tight_extra:.1%} (medians)",
    ]
    if ratio > MAKESPAN_LIMIT:
        found.append(
            f"- What bounds it: a stall is cut at its bound, not before it. A stalled attempt holds its slot until "
            f"its bound (2× the p90: {bound:.1f} s, the median of the hedges'), then until a slot frees for its "
            f"hedge (started {after:.1f} s into it, the median), then for its hedge's time while the hedge holds a "
            "second slot; the hedged run's attempts took slot-seconds that 4 slots cannot end in "
            f"under {floor:.2f}× the lower bound (median of the slots' floor), whatever the order. "
            + _stalled_hedges(rounds)
            + _why(rounds, shape)
        )  # fmt: skip
    else:
        found.append("- Hedging cut the stalls within the target.")
    found.append(
        "- The bound is learned from two cohorts: the kind's completed attempts in the runs before (here the "
        "batch without stalls) and in this run so far, whichever gives the sooner bound once it holds three. "
        "A hedged run records the winner's time and the stopped straggler as `hedge_lost`, which no estimate "
        "learns from, so its history stays the batch's own."
    )
    return found


def _why(rounds: Sequence[Round], shape: Shape) -> str:
    """What holds the shape's makespan up, beyond the slots' floor."""
    if shape.name == "tail":
        return (
            "Here the bound is about half the lower bound itself, and a stall shorter than the bound (a short "
            "task's) is never hedged. `hedge: 1x` hedges sooner, but the p90 is exceeded by "
            "one attempt in ten without any stall: more hedges of healthy attempts, at a higher cost."
        )
    p90 = statistics.median(statistics.quantiles(r.work.seconds.values(), n=10, method="inclusive")[8] for r in rounds)
    work = statistics.median(r.work.work for r in rounds)
    stalls = TASKS // STALL_EVERY
    needed = (MAKESPAN_LIMIT * work - work) / stalls  # what a stall may add to the slots' work at 1.3x
    room = needed - work / TASKS  # (less its hedge's own time, a task's on average)
    false = sum(r.tight.false_hedges for r in rounds)
    return (
        f"With times of {SHORTEST:g}-{LONGEST:g} s the p90 is some {p90:.0f} s, and 2× it {2 * p90:.0f} s: each "
        f"of the {stalls} stalls adds its bound and its task's time again to the slots' work ({work:.0f} s of "
        f"work at {CONCURRENCY} slots), where 1.3× leaves room for {needed:.0f} s a stall: a bound under "
        f"{room:.0f} s for a task of average time, {room / p90:.2f}× the p90. "
        f"`hedge: 1x` cuts nearer: it hedged {false} healthy attempt{'' if false == 1 else 's'} over the seeds, "
        "each ended soon after, since no healthy attempt runs past the longest task's time."
    )


def _stalled_hedges(rounds: Sequence[Round]) -> str:
    """The seeds whose draw stalls a straggler's hedge too (one in eight): its first attempt, stalled
    as well, then wins at its full length, as without hedging."""
    seeds = [
        str(r.work.seed) for r in rounds if any(r.work.attempt(t, 2) > r.work.seconds[t] for t in r.work.stalled_first)
    ]
    if not seeds:
        return ""
    return (f"A hedge stalls too, one time in eight (seed{'' if len(seeds) == 1 else 's'} {', '.join(seeds)}): "
            "then the stalled first attempt wins at its full length, as without hedging. ")  # fmt: skip


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def section_of(path: Path) -> str | None:
    """The W11 sections a report holds, each shape's, if any (``bench/run.py`` keeps them when it
    rewrites the file)."""
    found = [section for shape in SHAPES.values() if (section := marked_section(path, shape.begin, shape.end))]
    return "\n\n".join(found) or None


def _rounds(path: Path) -> list[Round]:
    """The rounds ``main`` kept in ``path``, read back."""

    def run(found: dict[str, Any]) -> Run:
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in found.items()}
        return Run(**fields)

    rounds = []
    for found in json.loads(path.read_text(encoding="utf-8"))["rounds"]:
        work = found["work"]
        batch = Batch(work["seed"], work["seconds"], frozenset(work["stalled_first"]))
        runs = {name: run(found[name]) for name in ("clean", "hedged", "tight", "unhedged")}
        rounds.append(Round(batch, xargs=found["xargs"], **runs))
    return rounds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--shape", choices=sorted(SHAPES), default="tail", help="tail (1 s median, the default) or agent (20-60 s)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[55, 56, 57], help="one round each (55 56 57)")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="every time times this (0.1: a quick check; never written)"
    )
    parser.add_argument("--write", action="store_true", help="put the report in bench/RESULTS.md")
    parser.add_argument("--again", action="store_true",
                        help="report the shape's last rounds again (from bench/.work/), running nothing")  # fmt: skip
    args = parser.parse_args(argv)
    shape = SHAPES[args.shape]
    command = [sys.executable, "-m", "orchestrator"]
    kept = WORK / shape.name / "rounds.json"  # (the figures, should the report be worded again: ``--again``)
    if args.again:
        rounds, found = _rounds(kept), json.loads(kept.read_text(encoding="utf-8"))
        args.seeds, args.scale, written = [r.work.seed for r in rounds], found["scale"], found["written"]
    else:
        rounds = [measure(command, seed, shape, args.scale) for seed in args.seeds]
        load = " ".join(f"{v:.2f}" for v in os.getloadavg())
        written = f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average after: {load}"
        found = {"scale": args.scale, "written": written, "rounds": [dataclasses.asdict(r) for r in rounds]}
        kept.write_text(json.dumps(found, default=sorted, indent=1), encoding="utf-8")
    text = report(rounds, args.seeds, shape, written)
    print(text)
    if args.write and args.scale != 1.0:
        say("not written: the figures reported are at full scale (--scale 1)")
    elif args.write:
        put_marked_section(RESULTS, shape.begin, shape.end, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
