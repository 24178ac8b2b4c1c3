"""Profile one orchestrator run of a workload and print where its time goes.

    python bench/profile_run.py [--workload w1|w2|w4|status|plan] [--tasks N] [--top 25] [--pyinstrument]

Runs ``python -m cProfile -m orchestrator run DIR --max-parallel N`` (or ``status`` / ``validate`` /
``render``) in a fresh workspace under ``bench/.work/profile/`` and prints the functions with the
most own time and the most cumulative time, with their share of the total. ``--pyinstrument``
samples wall-clock time instead (time spent waiting shows up too; needs ``pip install
pyinstrument``). Uses bench/.work/venv's interpreter when it exists, else this one.
"""

from __future__ import annotations

import argparse
import pstats
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from benchlib import WORK, Dag, bench_python, fresh_dir, independent, layered, user_env, warm_up, write_plan


def workload(name: str, tasks: int) -> tuple[Dag, list[str]]:
    """The DAG and the orchestrator sub-command profiled."""
    if name == "w1":
        return independent(tasks), ["run", "--max-parallel", "2"]
    if name == "w2":
        return layered(20, 10, "sleep 0.05", 0.05, seed=42), ["run", "--max-parallel", "4"]
    if name == "w4":
        return layered(max(1, tasks // 100), 100, "true", 0.0, seed=3), ["run", "--max-parallel", "2"]
    if name == "status":
        return independent(tasks), ["status"]
    return layered(max(1, tasks // 100), 100, "true", 0.0, seed=7), ["render"]


def report(stats_file: Path, top: int) -> str:
    stats = pstats.Stats(str(stats_file))
    total = max(getattr(stats, "total_tt", 0.0), 1e-9)
    rows = stats.stats  # type: ignore[attr-defined]
    entries = []
    for (filename, line, function), (_cc, calls, own, cumulative, _callers) in rows.items():
        where = f"{Path(filename).name}:{line}" if line else filename
        entries.append((own, cumulative, calls, f"{function} ({where})"))
    out = [f"total {total:.3f} s (CPU time of the main thread under cProfile)", "", "by own time:"]
    for own, cumulative, calls, name in sorted(entries, reverse=True)[:top]:
        out.append(f"  {own:8.3f} s {own / total:6.1%}  cum {cumulative:8.3f} s  {calls:>8} calls  {name}")
    out += ["", "by cumulative time:"]
    for own, cumulative, calls, name in sorted(entries, key=lambda e: e[1], reverse=True)[:top]:
        out.append(f"  {cumulative:8.3f} s {cumulative / total:6.1%}  own {own:8.3f} s  {calls:>8} calls  {name}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=["w1", "w2", "w4", "status", "plan"], default="w1")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--pyinstrument", action="store_true", help="sample wall-clock time with pyinstrument")
    args = parser.parse_args(argv)
    warm_up([bench_python(), "-m", "orchestrator"])  # bytecode written, as after a user's first command
    dag, command = workload(args.workload, args.tasks)
    directory = fresh_dir(WORK / "profile" / args.workload)
    project = write_plan(dag, directory / "project", 2)
    if args.workload == "status":  # status after a run: run it first, unprofiled
        subprocess.run(
            [bench_python(), "-m", "orchestrator", "run", str(project)],
            cwd=project,
            env=user_env(),
            stdout=subprocess.DEVNULL,
            check=True,
        )
    target = ["-m", "orchestrator", command[0], str(project), *command[1:]]
    if args.pyinstrument:
        out = directory / "pyinstrument.txt"
        subprocess.run(
            [bench_python(), "-m", "pyinstrument", "-o", str(out), *target],
            cwd=project,  # where the tasks run, as a user runs it
            env=user_env(),
            stdout=subprocess.DEVNULL,
            check=True,
        )
        print(out.read_text(encoding="utf-8"))
        return 0
    prof = directory / "run.prof"
    subprocess.run(
        [bench_python(), "-m", "cProfile", "-o", str(prof), *target],
        cwd=project,
        env=user_env(),
        stdout=subprocess.DEVNULL,
        check=True,
    )
    print(report(prof, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
