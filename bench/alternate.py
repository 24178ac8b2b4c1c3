"""Compare builds of the orchestrator in alternating rounds: which commit is faster, and by how much.

    python bench/alternate.py [--workload w1|w2] [--rounds 8] [--tasks 1000] REV [REV ...]

Each REV is a git revision (``HEAD~2``, a commit id) or ``.`` for the working tree; its
``orchestrator/`` package (subpackages and data directories included) is exported to
``bench/.work/trees/<commit>`` (``git archive``) with the files its symlinks point at (the
top-level docs that ``orchestrator/skill/`` links to), and byte-compiled (every build alike).
Every round runs each build once, in a shuffled order, in a fresh project with a default-settings
plan, as ``python -m orchestrator run`` with that build first on ``PYTHONPATH``: a slow minute on
this shared machine then falls on every build alike, where running one build's rounds after
another's measured the machine's drift as often as the change. The interpreter is the bench
venv's when it exists.

w1 is 1,000 no-op tasks at concurrency 2 (wall time, and the runner's own CPU time when ``perf``
can count ``task-clock``: ``perf stat --no-inherit``, its children excluded); w2 is the W2 DAG
(makespan / lower bound). The report gives each build's median and range, and the median of its
per-round difference from the first build, which cancels most of the drift.
"""

from __future__ import annotations

import argparse
import compileall
import posixpath
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import (
    REPO,
    WORK,
    Dag,
    bench_python,
    fresh_dir,
    independent,
    layered,
    orchestrator_makespan,
    say,
    user_env,
    write_plan,
)

TREES = WORK / "trees"


@dataclass(slots=True)
class Build:
    label: str  # as given on the command line
    path: Path  # the directory holding its orchestrator/ package
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)


def _git(*args: str) -> bytes:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, check=True).stdout


def package_paths(commit: str) -> list[str]:
    """``orchestrator`` and the files in ``commit`` that its symlinks point at, as repository paths."""
    paths = {"orchestrator"}
    for entry in _git("ls-tree", "-r", "-z", commit, "--", "orchestrator").split(b"\0"):
        if not entry:
            continue
        meta, path = entry.split(b"\t", 1)
        mode, _kind, blob = meta.split()
        if mode != b"120000":  # not a symlink
            continue
        link = _git("cat-file", "blob", blob.decode()).decode()
        target = posixpath.normpath(posixpath.join(posixpath.dirname(path.decode()), link))
        if not posixpath.isabs(target) and not target.startswith("../") and _git("ls-tree", commit, "--", target):
            paths.add(target)
    return sorted(paths)


def export(rev: str) -> Path:
    """The directory that holds ``rev``'s ``orchestrator/`` package (the repository for ``.``)."""
    if rev == ".":
        return REPO
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if commit.returncode != 0:
        raise SystemExit(f"{rev}: not a revision of this repository")
    sha = commit.stdout.strip()
    target = TREES / sha
    if not (target / ".exported").exists():
        shutil.rmtree(target, ignore_errors=True)  # an export cut short, or made before its links were
        TREES.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile() as archive:
            subprocess.run(
                ["git", "-C", str(REPO), "archive", sha, "--", *package_paths(sha)], stdout=archive, check=True
            )
            archive.seek(0)
            staging = Path(tempfile.mkdtemp(dir=TREES))
            with tarfile.open(fileobj=archive) as tar:
                tar.extractall(staging, filter="data")
            (staging / ".exported").touch()
            staging.rename(target)
    return target


def perf_works() -> bool:
    if shutil.which("perf") is None:
        return False
    probe = subprocess.run(
        ["perf", "stat", "--no-inherit", "-x,", "-e", "task-clock", "true"], capture_output=True, text=True, check=False
    )
    return probe.returncode == 0 and "task-clock" in probe.stderr


def run_once(build: Build, dag: Dag, concurrency: int, python: str, perf: bool, lower_bound: float | None) -> None:
    directory = fresh_dir(WORK / "alternate" / build.path.name)
    project = write_plan(dag, directory / "project", concurrency)
    argv = [python, "-m", "orchestrator", "run", str(project), "--max-parallel", str(concurrency)]
    counters = directory / "perf.csv"
    if perf:
        argv = ["perf", "stat", "--no-inherit", "-x,", "-e", "task-clock", "-o", str(counters), *argv]
    env = {**user_env(), "PYTHONPATH": str(build.path)}
    began = time.perf_counter()
    done = subprocess.run(argv, cwd=project, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{build.label}: exit code {done.returncode}: {done.stderr.decode(errors='replace')[-500:]}")
    build.walls.append(wall)
    if perf:
        last = counters.read_text(encoding="utf-8").strip().splitlines()[-1]
        build.cpus.append(float(last.split(",")[0]) / 1000)  # task-clock is in ms
    if lower_bound is not None:
        build.ratios.append(orchestrator_makespan(project) / lower_bound)


def summary(name: str, builds: Sequence[Build], values: str, unit: str) -> list[str]:
    first = getattr(builds[0], values)
    if not first:
        return []
    lines = [f"{name}:"]
    for build in builds:
        series: list[float] = getattr(build, values)
        line = f"  {build.label:>12}  {statistics.median(series):.4f} {unit} ({min(series):.4f}–{max(series):.4f})"
        if build is not builds[0]:
            change = statistics.median(b - a for a, b in zip(first, series, strict=True))
            line += f"  {change:+.4f} {unit} against {builds[0].label} (median of the rounds' differences)"
        lines.append(line)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revs", nargs="+", metavar="REV", help="git revisions, or . for the working tree")
    parser.add_argument("--workload", choices=["w1", "w2"], default="w1")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=1000, help="w1's task count (default 1000)")
    args = parser.parse_args(argv)
    python = bench_python()
    builds = [Build(rev, export(rev)) for rev in args.revs]
    for build in builds:
        compileall.compile_dir(str(build.path / "orchestrator"), quiet=1)
    if args.workload == "w1":
        dag, concurrency, lower_bound = independent(args.tasks), 2, None
    else:
        dag, concurrency = layered(20, 10, "sleep 0.05", 0.05, seed=42, name="W2 layered"), 4
        lower_bound = dag.lower_bound(concurrency)
    perf = args.workload == "w1" and perf_works()
    say(f"{args.workload}: {len(builds)} builds, {args.rounds} rounds, {python}")
    for number in range(1, args.rounds + 1):
        order = list(builds)
        random.shuffle(order)
        for build in order:
            run_once(build, dag, concurrency, python, perf, lower_bound)
        say(f"  round {number}: " + "  ".join(f"{b.label} {b.walls[-1]:.3f} s" for b in builds))
    lines = summary("wall", builds, "walls", "s") + summary("runner CPU", builds, "cpus", "s")
    lines += summary("makespan / lower bound", builds, "ratios", "×")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
