"""A soak: kill -9 the runner at random moments of a 200-task run until the run completes, again and again.

    python bench/soak.py [--tasks 200] [--rounds 20] [--seed 1] [--kill-after 0.2,2.5]

Each round writes a fresh plan of ``--tasks`` shell tasks (a layered DAG; each task sleeps a
little, and one in five starts a ``setsid`` daemon that would outlive it), starts
``orchestrator run`` in a session of its own, and kills it with SIGKILL after a random delay;
then starts it again, until one run ends by itself. After every kill and at the end it checks
the four promises a crash must not break, and counts what broke them:

- **lost**: a task whose result said ``completed`` at a kill, and does not at the end;
- **re-run**: a task that ran again after its result said ``completed`` (its line in ``ran.log``);
- **unparsable**: a result, brief or state file that cannot be read back (temp files excepted);
- **orphans**: processes of the workspace's attempts (by ``ORCHESTRATOR_WORKSPACE`` in their
  environment) still running once the round's last run has ended, daemons included.

The tests run a short version (``tests/test_soak.py``); this is the long one. Exit status 1
when any count is not zero.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_TASK = """\
echo "$ORCHESTRATOR_TASK_ID" >> ../ran.log
{daemon}sleep {seconds}
echo "$ORCHESTRATOR_TASK_ID done"
"""


@dataclass(slots=True)
class Tally:
    rounds: int = 0
    runs: int = 0
    kills: int = 0
    lost: list[str] = field(default_factory=list)
    rerun: list[str] = field(default_factory=list)
    unparsable: list[str] = field(default_factory=list)
    orphans: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def broken(self) -> int:
        return len(self.lost) + len(self.rerun) + len(self.unparsable) + len(self.orphans)

    def line(self) -> str:
        return (
            f"{self.rounds} rounds, {self.runs} runs, {self.kills} kills in {self.seconds:.0f} s: "
            f"{len(self.lost)} lost, {len(self.rerun)} re-run, {len(self.unparsable)} unparsable, "
            f"{len(self.orphans)} orphans"
        )


def write_plan(project: Path, tasks: int, rng: random.Random) -> None:
    """A layered DAG of ``tasks`` shell tasks, ten a layer, each on one to three of the layer before."""
    rows, details = [], []
    for n in range(tasks):
        task = f"T-{n + 1:03d}"
        layer = n // 10
        before = [f"T-{m + 1:03d}" for m in range((layer - 1) * 10, layer * 10)] if layer else []
        deps = ", ".join(sorted(rng.sample(before, min(len(before), rng.randint(1, 3))))) if before else "None"
        daemon = "setsid sleep 300 &\n" if rng.random() < 0.2 else ""
        script = _TASK.format(daemon=daemon, seconds=round(rng.uniform(0.02, 0.3), 2))
        rows.append(f"| {task} | Step {n + 1} | {deps} |")
        details.append(f"### {task}\n```bash\n{script}```\n")
    text = (
        "---\nbackend: shell\nmax_parallel: 4\nretries: 0\nkill_grace: 1\ncwd: work\n---\n# Soak\n\n"
        "## Task Decomposition\n| Task ID | Description | Dependencies |\n|---|---|---|\n"
        + "\n".join(rows)
        + "\n\n## Task Details\n\n"
        + "\n".join(details)
    )
    (project / ".orchestrator").mkdir(parents=True)
    (project / "work").mkdir()
    (project / ".orchestrator" / "master_plan.md").write_text(text, encoding="utf-8")


def completed(project: Path) -> set[str]:
    """The tasks whose result file says completed now."""
    done = set()
    for path in (project / ".orchestrator" / "results").glob("*-result.md"):
        try:
            head = path.read_text(encoding="utf-8")[:4000]
        except (OSError, UnicodeDecodeError):
            continue
        if "\nstatus: completed\n" in head:
            task = next((line[6:].strip() for line in head.splitlines() if line.startswith("task: ")), None)
            if task:
                done.add(task)
    return done


def runs(project: Path) -> Counter[str]:
    path = project / "ran.log"
    return Counter(path.read_text(encoding="utf-8").split()) if path.exists() else Counter()


def unparsable(project: Path) -> list[str]:
    """Result, brief and state files that do not read back (a temp file a kill left is no fault)."""
    sys.path.insert(0, str(REPO))
    from orchestrator import documents

    bad = []
    workspace = project / ".orchestrator"
    for path in [*workspace.glob("results/*.md"), *workspace.glob("agent_tasks/*.md")]:
        if not path.name.startswith(".tmp-") and documents.read_metadata(path) is None:
            bad.append(str(path.relative_to(project)))
    for path in workspace.glob("state/*.json"):
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            bad.append(str(path.relative_to(project)))
    return bad


def attempt_processes(project: Path) -> list[int]:
    """Running processes whose environment names this workspace (Linux /proc)."""
    mark = f"ORCHESTRATOR_WORKSPACE={(project / '.orchestrator').resolve()}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if mark not in Path(entry.path, "environ").read_bytes().split(b"\0"):
                continue
            state = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def one_round(project: Path, tasks: int, rng: random.Random, kill_after: tuple[float, float], tally: Tally) -> None:
    write_plan(project, tasks, rng)
    try:
        _kill_until_done(project, rng, kill_after, tally)
    finally:
        for pid in attempt_processes(project):  # nothing of a round outlives it, whatever happened
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _kill_until_done(project: Path, rng: random.Random, kill_after: tuple[float, float], tally: Tally) -> None:
    done_at_kill: dict[str, int] = {}  # task -> its runs when a kill found it completed
    stretch = 1.0  # (a run killed before it finished a task gets twice as long next time: on a loaded
    #              machine, where starting takes longer than the window, the round still ends)
    while True:
        tally.runs += 1
        with open(project / "runner.err", "ab") as err:
            runner = subprocess.Popen(
                [sys.executable, "-m", "orchestrator", "run", "--json"],
                cwd=project,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
        try:
            code = runner.wait(timeout=rng.uniform(*kill_after) * stretch)
        except subprocess.TimeoutExpired:
            runner.send_signal(signal.SIGKILL)
            runner.wait()
            tally.kills += 1
            counted, finished = runs(project), completed(project)
            stretch = 1.0 if finished - done_at_kill.keys() else min(stretch * 2, 64.0)
            for task in finished:
                done_at_kill.setdefault(task, counted[task])
            tally.unparsable += [f"after kill {tally.kills}: {name}" for name in unparsable(project)]
            continue
        if code != 0:
            raise SystemExit(f"a run ended with exit code {code}: see {project / 'runner.err'}")
        break
    final, counted = completed(project), runs(project)
    tally.lost += [task for task in done_at_kill if task not in final]
    tally.rerun += [task for task, seen in done_at_kill.items() if counted[task] > seen]
    tally.unparsable += unparsable(project)
    tally.orphans += attempt_processes(project)


def soak(tasks: int, rounds: int, seed: int, kill_after: tuple[float, float], keep: Path | None = None) -> Tally:
    rng = random.Random(seed)
    tally = Tally()
    began = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="soak-")) if keep is None else keep
    for number in range(rounds):
        project = base / f"round-{number + 1}"
        one_round(project, tasks, rng, kill_after, tally)  # (a run that fails leaves its files for a look)
        tally.rounds += 1
        tally.seconds = time.monotonic() - began
        print(f"round {number + 1}: {tally.line()}", flush=True)
    if keep is None:
        shutil.rmtree(base, ignore_errors=True)
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kill-after", default="0.2,2.5", help="the range of seconds a run gets before its kill")
    parser.add_argument("--keep", type=Path, help="keep the rounds' projects in this directory")
    args = parser.parse_args(argv)
    low, high = (float(part) for part in args.kill_after.split(","))
    tally = soak(args.tasks, args.rounds, args.seed, (low, high), args.keep)
    print(tally.line())
    for what in ("lost", "rerun", "unparsable", "orphans"):
        if getattr(tally, what):
            print(f"{what}: {getattr(tally, what)}")
    return 1 if tally.broken else 0


if __name__ == "__main__":
    sys.exit(main())
