"""Spend paced at ``max_cost_per_hour``, measured over a long run: how much any 10 minutes spend.

    python bench/pacing.py [--minutes 30] [--per-hour 3.6] [--cost 0.01] [--parallel 4]

A plan of as many claude tasks as the pace allows in ``--minutes`` (and 5% more), each reporting
``--cost`` (the repository's claude stand-in, ``examples/bin/fake-claude``, with
``FAKE_CLAUDE_COST``: no API, so the pace alone holds the run), at ``max_parallel: --parallel``
and ``max_cost_per_hour: --per-hour``. A short run of the same tasks first teaches the forecast
what a task costs (then ``reset --all``), as a plan run again does. The figure: each task's cost
booked at its ``task_completed``, summed over every 10-minute window of the run (a window each 10
s, from the first start until 10 minutes before the last end), against the pace's 10 minutes.
Target (issue 77): every window within 10% of the pace.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
STAND_IN = REPO / "examples" / "bin" / "fake-claude"
WINDOW = 600.0
STEP = 10.0
TARGET = 0.10


def _plan(tasks: int, parallel: int, per_hour: float | None) -> str:
    rows = "\n".join(f"| T-{n:03d} | Review part {n} | None |" for n in range(1, tasks + 1))
    paced = f"max_cost_per_hour: {per_hour}\n" if per_hour else ""
    return (
        f"---\nmax_parallel: {parallel}\n{paced}status_blocks: false\nretries: 0\n---\n# Pacing\n\n"
        "## Task Decomposition\n| Task ID | Description | Dependencies |\n|---|---|---|\n" + rows + "\n"
    )


def _run(project: Path, env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=project, env=env, capture_output=True,
                          text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"orchestrator {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def _at(stamp: object) -> float:
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--per-hour", type=float, default=3.6)
    parser.add_argument("--cost", type=float, default=0.01)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--window", type=float, default=WINDOW, help="seconds a window spans (a smoke run: less)")
    args = parser.parse_args(argv)
    window = args.window
    tasks = int(args.minutes * 60 * args.per_hour / 3600 / args.cost * 1.05) + 1
    env = {**os.environ, "ORCHESTRATOR_CLAUDE_BIN": str(STAND_IN), "FAKE_CLAUDE_COST": f"{args.cost}"}
    with tempfile.TemporaryDirectory(prefix="pacing-bench-") as tmp:
        project = Path(tmp)
        (project / ".orchestrator").mkdir()
        plan = project / ".orchestrator" / "master_plan.md"
        plan.write_text(_plan(tasks, args.parallel, None), encoding="utf-8")
        _run(project, env, "run", "--json")  # (what a task costs, learned)
        _run(project, env, "reset", "--all")
        plan.write_text(_plan(tasks, args.parallel, args.per_hour), encoding="utf-8")
        began = time.monotonic()
        told = _run(project, env, "run", "--json")
        wall = time.monotonic() - began
    starts = [_at(e["time"]) for e in told if e.get("event") == "task_started"]
    booked = sorted(
        (_at(e["time"]), float(e.get("cost_usd") or 0.0)) for e in told if e.get("event") == "task_completed"
    )
    first, last = min(starts), max(at for at, _ in booked)
    pace = args.per_hour * window / 3600
    shares: list[float] = []
    moment = first
    while moment + window <= last:
        spent = sum(cost for at, cost in booked if moment <= at < moment + window)
        shares.append(spent / pace)
        moment += STEP
    if not shares:
        print(f"the run lasted {last - first:.0f} s: shorter than one window of {window:.0f} s")
        return 1
    total = sum(cost for _, cost in booked)
    print(f"{tasks} tasks of ${args.cost:g} (the claude stand-in), max_parallel {args.parallel}, "
          f"max_cost_per_hour ${args.per_hour:g}: {wall / 60:.1f} min, ${total:.2f} spent "
          f"(${total / (last - first) * 3600:.3f} an hour)")  # fmt: skip
    print(f"  spend over each {window / 60:g} minutes ({len(shares)} windows, a window each {STEP:g} s): "
          f"{min(shares):.1%} to {max(shares):.1%} of the pace's ${pace:.2f}")  # fmt: skip
    met = all(abs(share - 1) <= TARGET for share in shares)
    print(f"  target: every window within {TARGET:.0%} of the pace — {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
