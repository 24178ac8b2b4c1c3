"""When the first of a row's items starts (issue 75: within 2 s of the command at 100,000 items),
this checkout beside another, alternating.

    python bench/first_start.py [--items 100000] [--rounds 2] [--against CHECKOUT]

Each run is ``run --executor fake`` in a fresh copy of a workspace of one row over ``--items``
lines (``bench/items.py``'s plan), stopped at its first ``task_started``; its figure is that
event's time less the moment the command was started. ``--against``: a checkout of another
commit (``git worktree add /tmp/old 036c616``), run with ``PYTHONPATH`` set to it, in turn with
this one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from benchlib import REPO, WORK, say
from items import project


def first_start(template: Path, checkout: Path) -> float:
    """Seconds from the command to its first ``task_started``, in a fresh copy of ``template``."""
    where = WORK / "first-start-run"
    shutil.rmtree(where, ignore_errors=True)
    shutil.copytree(template, where)
    events = where / ".orchestrator" / "state" / "events.jsonl"
    environment = {**os.environ, "PYTHONPATH": str(checkout)}
    began = time.time()
    runner = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "run", "--executor", "fake"],
        cwd=where,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if runner.poll() is not None:
                raise SystemExit(f"the run ended (exit {runner.returncode}) before any item started")
            try:
                data = events.read_bytes()
            except OSError:
                data = b""
            if b'"task_started"' in data:
                break
            time.sleep(0.02)
    finally:
        runner.kill()
        runner.wait()
    for line in events.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event.get("event") == "task_started":
            return datetime.fromisoformat(event["time"]).timestamp() - began
    raise SystemExit("no task_started in the event log")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--against", type=Path, default=None, help="a checkout of another commit")
    args = parser.parse_args()
    template = project(WORK / "first-start", args.items, 16)
    checkouts = {"this checkout": REPO}
    if args.against is not None:
        checkouts = {f"{args.against}": args.against.resolve(), **checkouts}
    found: dict[str, list[float]] = {name: [] for name in checkouts}
    for number in range(1, args.rounds + 1):
        for name, checkout in checkouts.items():
            found[name].append(first_start(template, checkout))
            say(f"round {number}: {name}: {found[name][-1]:.2f} s")
    for name, seconds in found.items():
        print(
            f"{name}: the first of {args.items:,} items started "
            + ", ".join(f"{s:.1f}" for s in seconds)
            + " s after the command"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
