"""W10, each agent backend's cost in time: the orchestrator's own start-up and bookkeeping per task
beside its CLI's own start-up, measured side by side.

    python bench/agent_startup.py [--runs 5] [--tasks 6] [--only claude,codex,gemini,opencode] [--write]

Every CLI is the real one, pinned from npm (``tools/install-claude.sh``, ``tools/install-agents.sh``),
against a fake of its vendor's API on 127.0.0.1 configured as the tests configure it
(``tests/agentclis.py``), which answers every request at once with one short answer: what is left
is start-up and bookkeeping. Each round, for each backend (the order of the two alternating):

  * the CLI alone: the command line its backend builds (``Backend.invocation``), the prompt on
    stdin, with the same home as below (kept from round to round, as a user's), timed from the
    outside: its start-up is spawn to its first request at the fake, its
    call spawn to exit;
  * ``orchestrator run`` of ``--tasks`` independent tasks on that backend, ``max_parallel: 1``
    (one after the other: nothing overlaps what is measured): its start-up is spawn to the first
    task's start (its result file's ``started``), its bookkeeping per task (wall - start-up - the
    tasks' own durations, spawn to exit of each CLI as the runner measured them) / tasks: between
    two agents, what the runner does (results, events, status blocks, the next brief) and, after
    the last, final_output.md. Its own CPU per task is read from ``/proc`` as W6 reads it.

Medians over the rounds, min-max in brackets. ``--write`` puts the section in bench/RESULTS.md
between its markers (``bench/run.py`` keeps it). A CLI not installed is left out, with the reason.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchlib import BENCH_DIR, WORK, fresh_dir, machine_line, marked_section, put_marked_section, say, table, warm_up

if TYPE_CHECKING:
    from agentclis import Vendor

    from orchestrator.backends.base import Job

# (what measures is imported when it runs: bench/run.py imports this module for its section only)
BEGIN = "<!-- W10: written by bench/agent_startup.py -->"
END = "<!-- /W10 -->"


def _vendors() -> dict[str, Vendor]:
    sys.path.insert(0, str(BENCH_DIR.parent / "tests"))
    from agentclis import VENDORS

    return VENDORS


def _answer(body: Any) -> Any:
    from fakeapi import Reply

    return Reply.say("Done.")


@dataclass(slots=True)
class Rounds:
    """One backend's figures, a value a round."""

    version: str
    alone_startup: list[float] = field(default_factory=list)  # spawn -> first request, the CLI alone
    alone_call: list[float] = field(default_factory=list)  # spawn -> exit, the CLI alone
    startup: list[float] = field(default_factory=list)  # orchestrator: spawn -> first task started
    own: list[float] = field(default_factory=list)  # orchestrator: its own time a task, between agents
    own_cpu: list[float] = field(default_factory=list)  # orchestrator: its own CPU a task
    inside: list[float] = field(default_factory=list)  # under the orchestrator: a task's start -> its request
    task: list[float] = field(default_factory=list)  # under the orchestrator: a task's own duration


def _job(root: Path) -> Job:
    from orchestrator.backends.base import Job
    from orchestrator.plan.config.settings import Settings
    from orchestrator.plan.model import Task

    task = Task(id="T-01", name="Say done", description="Say done.", agent="Agent-01")
    return Job(task, Settings(), "Say done.", "Say done.", root, root / ".orchestrator", 1)


def alone(vendor: Vendor, binary: str, directory: Path) -> tuple[float, float]:
    """The CLI alone, as its backend starts it: (spawn -> first request, spawn -> exit)."""
    from orchestrator import backends

    project = fresh_dir(directory)
    os.environ[vendor.reads or vendor.variable] = binary  # (the backend names its CLI from there)
    invocation = backends.get(vendor.backend).invocation(_job(project))
    with vendor.fake(_answer) as api:
        env = {**vendor.environment(api, _home(directory), binary), **invocation.env}
        began = time.monotonic()
        done = subprocess.run(
            list(invocation.argv), input=invocation.stdin, env=env, cwd=project, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        ended = time.monotonic()
        first = min((entry.time for entry in api.log), default=ended)
    if done.returncode != 0:
        raise RuntimeError(f"{vendor.backend} alone exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return first - began, ended - began


def _home(directory: Path) -> Path:
    """The CLI's home, one for both ways of running it and kept from round to round, as a
    user's is (its config files written again for each round's fake)."""
    return directory.parent / "home"


def plan(directory: Path, vendor: Vendor, tasks: int) -> Path:
    project = fresh_dir(directory) / "project"
    (project / ".orchestrator").mkdir(parents=True)
    rows = "\n".join(f"| T-{n:02d} | Say done | None |" for n in range(1, tasks + 1))
    (project / ".orchestrator" / "master_plan.md").write_text(
        f"---\nbackend: {vendor.backend}\nmax_parallel: 1\n---\n# Plan\n\n## Task Decomposition\n"
        f"| Task ID | Description | Dependencies |\n|---|---|---|\n{rows}\n",
        encoding="utf-8",
    )
    return project


def under_orchestrator(
    command: Sequence[str], vendor: Vendor, binary: str, directory: Path, tasks: int, found: Rounds
) -> None:
    from agentlib import run_orchestrator

    project = plan(directory, vendor, tasks)
    with vendor.fake(_answer) as api:
        env = vendor.environment(api, _home(directory), binary)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # (as a user runs it: bench/README.md)
        spawned = time.time()
        offset = spawned - time.monotonic()  # the fake logs monotonic times
        run = run_orchestrator(command, project, env)
        firsts = sorted(entry.time + offset for entry in api.log if entry.body is not None)
    if run.exit_code != 0 or run.count("completed") != tasks:
        raise RuntimeError(f"{vendor.backend} under the orchestrator: exit {run.exit_code} (see {directory})")
    starts = sorted(r.started for r in run.records.values() if r.started is not None)
    durations = list(run.durations().values())
    found.startup.append(starts[0] - spawned)
    found.own.append((run.wall - (starts[0] - spawned) - sum(durations)) / tasks)
    found.own_cpu.append(run.own_cpu / tasks)
    found.task.append(statistics.median(durations))
    # each task's first request (gemini's router comes first) after its start
    found.inside.append(statistics.median(min((t for t in firsts if t >= start), default=start) - start
                                          for start in starts))  # fmt: skip


def measure(command: Sequence[str], only: Sequence[str], runs: int, tasks: int) -> tuple[dict[str, Rounds], list[str]]:
    found: dict[str, Rounds] = {}
    left_out: list[str] = []
    binaries: dict[str, str] = {}
    vendors = _vendors()
    for name in only:
        vendor = vendors[name]
        binary = vendor.binary()
        if binary is None:
            left_out.append(f"{name}: {vendor.missing()}")
            continue
        binaries[name] = binary
        version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60).stdout
        found[name] = Rounds(version.strip().splitlines()[0] if version.strip() else "?")
    for index in range(runs):
        for name, binary in binaries.items():
            vendor, rounds = vendors[name], found[name]
            say(f"  W10 round {index + 1}/{runs}: {name}")
            directory = WORK / "runs" / "W10" / name
            if index % 2 == 0:
                _alone(vendor, binary, directory / "alone", rounds)
            under_orchestrator(command, vendor, binary, directory / "orchestrator", tasks, rounds)
            if index % 2 == 1:
                _alone(vendor, binary, directory / "alone", rounds)
    return found, left_out


def _alone(vendor: Vendor, binary: str, directory: Path, rounds: Rounds) -> None:
    startup, call = alone(vendor, binary, directory)
    rounds.alone_startup.append(startup)
    rounds.alone_call.append(call)


def spread(values: Sequence[float], scale: float = 1000.0, unit: str = " ms") -> str:
    middle = f"{statistics.median(values) * scale:.0f}{unit}"
    if len(values) < 2:
        return middle
    return f"{middle} ({min(values) * scale:.0f}–{max(values) * scale:.0f})"


def render(found: dict[str, Rounds], left_out: Sequence[str], runs: int, tasks: int) -> str:
    rows = []
    for name, r in found.items():
        share = statistics.median(r.own) / statistics.median(r.alone_call)
        rows.append(
            [
                name,
                f"`{r.version}`",
                spread(r.alone_startup),
                spread(r.alone_call),
                spread(r.startup),
                spread(r.own),
                spread(r.own_cpu),
                f"{share:.0%}",
                spread(r.inside),
            ]
        )
    header = [
        "backend",
        "CLI",
        "CLI start-up alone (spawn → first request)",
        "CLI call alone (spawn → exit)",
        "orchestrator start-up (spawn → first task started)",
        "orchestrator's own time a task (between agents)",
        "its own CPU a task (start-up included)",
        "own time / CLI call",
        "CLI start-up under the orchestrator (task start → first request)",
    ]
    lines = [
        "## W10 — agent start-up: the orchestrator's own time per task beside each CLI's",
        "",
        f"Written by `python bench/agent_startup.py --runs {runs} --tasks {tasks} --write` on {machine_line()}, "
        f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}. Each CLI is the pinned one, "
        "against a fake of its vendor's API on 127.0.0.1 answering every request at once (one short "
        "answer), configured as `tests/agentclis.py` configures it. Each round: the CLI alone, as its "
        f"backend starts it, and `orchestrator run` of {tasks} independent tasks on it, `max_parallel: 1`, "
        "the two in alternating order; median of the rounds (min–max).",
        "",
        table(header, rows),
        "",
        "- The orchestrator's own time a task = (its wall − its start-up − the tasks' own durations, spawn "
        "to exit of each CLI as the runner measured them) / tasks: what it does between two agents "
        "(the result, the events, the status blocks, the next brief) and, after the last, final_output.md. "
        "Its start-up (Python, the plan, the workspace, the first brief) is paid once a run.",
        "- gemini asks its router model before the answer: its first request is the router's. opencode's "
        "start-up is the slowest here, and the orchestrator's share the smallest. The load average (other "
        "work on these 2 cores) weighs on every column alike: the two ways of running each CLI alternate "
        "within each round.",
    ]
    lines += [f"- Left out: {line}" for line in left_out]
    return "\n".join(lines)


def section_of(path: Path) -> str | None:
    """The W10 section a report holds, if any (``bench/run.py`` keeps it when it rewrites the file)."""
    return marked_section(path, BEGIN, END)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--tasks", type=int, default=6, help="tasks of each orchestrator run (default 6)")
    vendors = _vendors()
    parser.add_argument("--only", default=",".join(vendors), help="comma-separated backends")
    parser.add_argument("--write", action="store_true", help="put the section in bench/RESULTS.md")
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in only if name not in vendors]
    if unknown:
        parser.error(f"no agent backend named {', '.join(unknown)}: name {', '.join(vendors)}")
    command = [sys.executable, "-m", "orchestrator"]
    WORK.mkdir(parents=True, exist_ok=True)
    warm_up(command)
    found, left_out = measure(command, only, args.runs, args.tasks)
    text = render(found, left_out, args.runs, args.tasks)
    print(text)
    if args.write:
        put_marked_section(BENCH_DIR / "RESULTS.md", BEGIN, END, text)
        say("wrote the W10 section of bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
