"""W2's per-task cost, step by step: from a child's exit to the next spawn, against the minimal scheduler.

    python bench/exit_to_spawn.py [--rounds 3] [REV ...]

W2's makespan / lower bound is about 1 + 50 x (what each task costs beyond its 50 ms) / 2.5 s:
every slot runs 50 tasks one after another. This says where that cost goes, for each build of
the orchestrator (a REV as for ``alternate.py``: a git revision, or ``.`` for the working tree,
the default) and for the minimal reference scheduler of ``dagrun.py`` (``os.posix_spawn`` and a
blocking ``os.wait``), in alternating rounds of the W2 DAG.

In each process, a ``sitecustomize`` module records the time of every ``os.posix_spawn`` call
and of every reap (``os.waitpid`` / ``os.wait``), on ``time.perf_counter``'s clock
(``CLOCK_MONOTONIC``). Where ``perf`` may record the kernel's scheduler tracepoints
(``perf record -a``, root or ``perf_event_paranoid`` <= -1), it records the kernel's own times of
each child's ``exec`` and exit on the same clock:

  exit -> reap        the child starts to exit until the scheduler has reaped it
  reap -> spawn       the reap until the next ``posix_spawn`` call (the freed slot's next task)
  exit -> spawn       the two together: what the scheduler adds to each task
  spawn -> exec       the ``posix_spawn`` call until the new program runs (the parent waits: vfork)
  exec -> exit        the child's own run: ``sleep 0.05`` and its start-up

Without perf, only reap -> spawn. Median (mean) over every task of every round, in ms: the mean
counts the tasks that waited long, which the median leaves out.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from alternate import export
from benchlib import DAGRUN, WORK, bench_python, fresh_dir, layered, say, write_dag_json, write_plan

CONCURRENCY = 4
STEPS = ("exit -> reap", "reap -> spawn", "exit -> spawn", "spawn -> exec", "exec -> exit")

# Recorded in every process of a measured scheduler. The orchestrator ends with os._exit (no
# atexit handlers), so the events are written there too.
SITECUSTOMIZE = """
import atexit, json, os, time
_out = os.environ.get("EXIT_TO_SPAWN_EVENTS")
if _out:
    _events = []
    _clock = time.perf_counter
    _spawn, _waitpid, _wait, _exit = os.posix_spawn, os.waitpid, os.wait, os._exit

    def posix_spawn(*args, **kwargs):
        began = _clock()
        pid = _spawn(*args, **kwargs)
        _events.append(["spawn", began, pid])
        return pid

    def waitpid(pid, options):
        found = _waitpid(pid, options)
        if found[0]:
            _events.append(["reap", _clock(), found[0]])
        return found

    def wait():
        found = _wait()
        _events.append(["reap", _clock(), found[0]])
        return found

    def _save():
        global _out
        if _out:
            with open(_out, "w") as file:
                json.dump(_events, file)
            _out = None

    def exit_now(code):
        _save()
        _exit(code)

    os.posix_spawn, os.waitpid, os.wait, os._exit = posix_spawn, waitpid, wait, exit_now
    atexit.register(_save)
"""

_TRACEPOINT = re.compile(r"\s(\d+\.\d+): sched:sched_process_(exit|exec):.*?\bpid=(\d+)")


@dataclass(slots=True)
class Scheduler:
    label: str
    orchestrator: Path | None  # the directory holding its orchestrator/ package; None: the minimal one
    steps: dict[str, list[float]] = field(default_factory=lambda: {step: [] for step in STEPS})
    ratios: list[float] = field(default_factory=list)


def perf_records() -> bool:
    """Whether ``perf`` can record the scheduler's tracepoints system-wide here."""
    if shutil.which("perf") is None:
        return False
    probe = subprocess.run(
        ["perf", "record", "-q", "-a", "-e", "sched:sched_process_exit", "-o", os.devnull, "true"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def kernel_times(data: Path) -> tuple[dict[int, float], dict[int, float]]:
    """Each pid's exec and exit times (CLOCK_MONOTONIC seconds) from a ``perf record`` file."""
    text = subprocess.run(
        ["perf", "script", "--ns", "-i", str(data)], capture_output=True, text=True, check=False
    ).stdout
    execs: dict[int, float] = {}
    exits: dict[int, float] = {}
    for match in _TRACEPOINT.finditer(text):
        (exits if match[2] == "exit" else execs)[int(match[3])] = float(match[1])
    return execs, exits


def run_once(scheduler: Scheduler, directory: Path, python: str, site: Path, perf: bool, bound: float) -> None:
    dag = layered(20, 10, "sleep 0.05", 0.05, seed=42, name="W2 layered")
    events_file = directory / "events.json"
    env = {**os.environ, "EXIT_TO_SPAWN_EVENTS": str(events_file)}
    if scheduler.orchestrator is None:
        write_dag_json(dag, directory / "dag.json")
        argv = [python, str(DAGRUN), "minimal", str(directory / "dag.json"), "-j", str(CONCURRENCY)]
        cwd = directory
        env["PYTHONPATH"] = str(site)
    else:
        cwd = write_plan(dag, directory / "project", CONCURRENCY)
        argv = [python, "-m", "orchestrator", "run", ".orchestrator", "--max-parallel", str(CONCURRENCY)]
        env["PYTHONPATH"] = os.pathsep.join([str(site), str(scheduler.orchestrator)])
    recorder = None
    data = directory / "perf.data"
    if perf:
        recorder = subprocess.Popen(
            ["perf", "record", "-q", "-k", "CLOCK_MONOTONIC", "-a", "-o", str(data),
             "-e", "sched:sched_process_exit", "-e", "sched:sched_process_exec"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(0.5)  # until it records
    try:
        done = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    finally:
        if recorder is not None:
            time.sleep(0.1)
            recorder.send_signal(signal.SIGINT)
            recorder.wait(timeout=60)
    if done.returncode != 0:
        raise SystemExit(
            f"{scheduler.label}: exit code {done.returncode}: {done.stderr.decode(errors='replace')[-500:]}"
        )
    events = [(str(kind), float(at), int(pid)) for kind, at, pid in json.loads(events_file.read_text(encoding="utf-8"))]
    spawns = sorted((at, pid) for kind, at, pid in events if kind == "spawn")
    if not spawns:  # started with Popen (see process.posix_spawn_possible): nothing to time here
        say(f"  {scheduler.label}: no posix_spawn call was recorded; its steps are left out")
        return
    reaps = {pid: at for kind, at, pid in events if kind == "reap"}
    spawned = {pid: at for at, pid in spawns}
    steps = scheduler.steps
    # The freed slot's next task is the first spawn after the reap that no earlier reap took.
    queue = sorted(reaps.values())
    following = iter(at for at, _ in spawns)
    upcoming = next(following, None)
    for reaped in queue:
        while upcoming is not None and upcoming < reaped:
            upcoming = next(following, None)
        if upcoming is None:
            break
        steps["reap -> spawn"].append(upcoming - reaped)
        upcoming = next(following, None)
    if perf:
        execs, exits = kernel_times(data)
        for pid, began in spawned.items():
            if pid in execs:
                steps["spawn -> exec"].append(execs[pid] - began)
                if pid in exits:
                    steps["exec -> exit"].append(exits[pid] - execs[pid])
            if pid in exits and pid in reaps:
                steps["exit -> reap"].append(reaps[pid] - exits[pid])
                later = [at for at, _ in spawns if at > exits[pid]]
                if later:
                    steps["exit -> spawn"].append(later[0] - exits[pid])
    makespan = max(reaps.values()) - spawns[0][0]
    scheduler.ratios.append(makespan / bound)


def report(schedulers: Sequence[Scheduler]) -> str:
    header = [
        "scheduler",
        *(f"{step} ms" for step in STEPS),
        "first spawn to last reap / lower bound, median (min–max)",
    ]
    rows = []
    for scheduler in schedulers:
        cells = [scheduler.label]
        for step in STEPS:
            values = scheduler.steps[step]
            cells.append(
                f"{statistics.median(values) * 1000:.3f} ({statistics.mean(values) * 1000:.3f})" if values else "–"
            )
        ratios = scheduler.ratios
        cells.append(f"{statistics.median(ratios):.4f} ({min(ratios):.4f}–{max(ratios):.4f})" if ratios else "–")
        rows.append(cells)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revs", nargs="*", metavar="REV", default=["."], help="git revisions, or . (default)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    python = bench_python()
    schedulers = [Scheduler("minimal (posix_spawn + wait)", None)]
    for rev in args.revs:
        path = export(rev)
        compileall.compile_dir(str(path / "orchestrator"), quiet=1)
        schedulers.append(Scheduler(f"orchestrator {rev}", path))
    root = WORK / "exit_to_spawn"
    site = root / "site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    perf = perf_records()
    if not perf:
        say("perf cannot record the scheduler's tracepoints here: reap -> spawn only")
    bound = layered(20, 10, "sleep 0.05", 0.05, seed=42).lower_bound(CONCURRENCY)
    for number in range(1, args.rounds + 1):
        order = list(schedulers)
        random.shuffle(order)
        for index, scheduler in enumerate(order):
            run_once(scheduler, fresh_dir(root / f"run{index}"), python, site, perf, bound)
        say(f"  round {number}: " + "  ".join(f"{s.label} {s.ratios[-1]:.4f}" for s in schedulers if s.ratios))
    print(report(schedulers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
