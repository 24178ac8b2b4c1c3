"""One row over many items (issues 67, 75): a row with an ``Each`` cell, measured as a user runs it.

    python bench/items.py [--items 10000] [--big 100000] [--calls 2000] [--stream 100000] [--rounds 2] [--write]

- **Throughput**: ``--items`` items of a shell ``true`` (``lines: items.txt``), ``max_parallel:
  16``, with the local executor: the run's wall beside the asyncio floor of ``bench/dagrun.py``
  (``floor``, the same ``bash -e -c`` per item, 16 at once) and ``xargs -P 16`` over the same items,
  each once a round, alternating; ms an item above the floor. Targets (issue 75): ≤ 0.8 ms above
  the floor, and ≤ 2.5× ``xargs -P 16``.
- **Scale**: ``--big`` items with ``run --executor fake``: wall (≤ 120 s), peak RSS (≤ 400 MB),
  when the first instance started after the command did (≤ 2 s), the plan file's size before and
  after (target: unchanged), then ``status`` (≤ 0.5 s) and ``status T-01`` (≤ 1 s) of that
  workspace, medians of 5 (the first call, which derives the view, said apart).
- **Files an item**: ``--calls`` items with ``run --executor fake`` under ``strace -f -c``: the
  files opened, directories made, renames, unlinks, stats and writes an item costs the runner.
- **The dashboard's stream**: ``--stream`` items with ``run --executor fake`` while ``serve``'s
  ``/api/live`` (the page's stream) is read: its bytes a second over the run (target ≤ 5 kB).
- **Dask** (``--dask N``): N items of ``sleep 0.2`` on W9's cluster (``bench/cluster.py``: a
  scheduler and two workers of 4 threads), ``max_parallel: 8``: makespan (first ``started`` to last
  ``finished`` over the results) against its lower bound, N x 0.2 s / 8 (target ≤ 1.15×).
- **import**: 90,000 tasks as one JSON document (``export``'s format), ``import`` into a fresh
  workspace (target ≤ 10 s).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchlib import DAGRUN, GNU_TIME, WORK, fresh_dir, machine_line, marked_section, put_marked_section, say

BEGIN = "<!-- items: bench/items.py -->"
END = "<!-- /items -->"
PLAN = """---
backend: shell
max_parallel: {parallel}
retries: 0
---
# Items

## Tasks
| Task ID | Description | Dependencies | Each | Command |
|---|---|---|---|---|
| T-01 | per item | None | lines: items.txt | `true {{{{ item }}}}` |
"""


# What bounds the targets missed, as measured (said with the figures; cProfile of 2,000 items of
# ``true``, and the run's RSS sampled each second at 30,000 items on the fake executor).
BOUNDS = [
    "What bounds the targets missed:",
    "",
    "- **Beside `xargs -P 16`**: the asyncio floor alone is some 1.2-1.5x xargs here: one process "
    "starts one child at a time (its fork and exec block the loop), where xargs forks from a tiny "
    "process; the runner's fork of a 100 MB process costs more than the floor's of a small one "
    "(cProfile, 3,000 items: `fork_exec` some 3 ms a spawn). Above that floor each item costs what "
    "any task does: its brief, its log, its result file and their renames, journal lines and events "
    "(the files an item, above). 2.5x xargs needs spawning off the loop's thread and no files for "
    "an attempt that needs none.",
    "- **Peak RSS and the wall at 100,000 items**: each instance is a task of the run's plan (its "
    "`Task`, view, graph node, signature, result record, journal lines: some 4 KB held while the row "
    "runs). The row's result is written as a stream now, and no brief is made before its item "
    "starts. 400 MB needs the instances kept as the entries of a compact table rather than as tasks.",
    "- **The first instance's start**: before it, the plan is read and its 100,000 instances made "
    "(some 2.1 s, once: the plan as checked is what the run takes), every instance's view is "
    "replayed through the machine (some 2.5 s), their settings and signatures worked out (some "
    "1.1 s), and the ready queue and the estimates walk 100,000 nodes (some 1.5 s). 2 s needs "
    "instances made as their turn comes (the compact table).",
]


def project(where: Path, items: int, parallel: int) -> Path:
    fresh_dir(where)
    (where / "items.txt").write_text("".join(f"item-{n}\n" for n in range(1, items + 1)))
    (where / ".orchestrator").mkdir()
    (where / ".orchestrator" / "master_plan.md").write_text(PLAN.format(parallel=parallel))
    return where


def timed(argv: list[str], cwd: Path, *, shell: bool = False) -> tuple[float, int]:
    """Wall seconds and peak RSS (KB, GNU time's) of one command."""
    measured = [str(GNU_TIME), "-f", "%e %M", *argv] if not shell else [str(GNU_TIME), "-f", "%e %M", "sh", "-c", *argv]
    start = time.perf_counter()
    done = subprocess.run(measured, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:3]} exited {done.returncode}: {done.stderr[-500:]}")
    rss = int(done.stderr.strip().splitlines()[-1].split()[1])
    return wall, rss


def orchestrator(*words: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator", *words]


def throughput(items: int, rounds: int) -> list[str]:
    place = WORK / "items-throughput"
    dag = WORK / "items-floor.json"
    WORK.mkdir(parents=True, exist_ok=True)
    dag.write_text(json.dumps([{"id": f"i{n}", "cmd": f"true item-{n}", "deps": []} for n in range(1, items + 1)]))
    walls: dict[str, list[float]] = {"orchestrator": [], "floor": [], "xargs": []}
    for number in range(rounds):
        say(f"round {number + 1}: orchestrator")
        proj = project(place, items, 16)
        walls["orchestrator"].append(timed(orchestrator("run"), proj)[0])
        say(f"round {number + 1}: floor, xargs")
        walls["floor"].append(
            timed([sys.executable, str(DAGRUN), "floor", str(dag), "-j", "16", "--via-bash"], WORK)[0]
        )
        walls["xargs"].append(timed(["xargs -P 16 -I{} bash -e -c 'true {}' < items.txt"], proj, shell=True)[0])
    med = {name: statistics.median(values) for name, values in walls.items()}
    above = (med["orchestrator"] - med["floor"]) / items * 1000
    versus = med["orchestrator"] / med["xargs"]
    return [
        f"**Throughput**: {items:,} items of `true`, `max_parallel: 16`, local executor, {rounds} rounds "
        "(median wall):",
        "",
        "| tool | wall s | ms / item | target |",
        "|---|---|---|---|",
        f"| orchestrator | {med['orchestrator']:.2f} | {med['orchestrator'] / items * 1000:.2f} "
        f"({above:.2f} above the floor) | {'PASS' if above <= 0.8 else 'MISS'} (≤ 0.8 above the floor) |",
        f"| asyncio floor, `bash -e -c`, 16 at once | {med['floor']:.2f} | {med['floor'] / items * 1000:.2f} | |",
        f"| `xargs -P 16 bash -e -c` | {med['xargs']:.2f} | {med['xargs'] / items * 1000:.2f} | "
        f"orchestrator {versus:.2f}× xargs: {'PASS' if versus <= 2.5 else 'MISS'} (≤ 2.5×) |",
    ]


def scale(items: int) -> list[str]:
    proj = project(WORK / "items-scale", items, 16)
    plan = proj / ".orchestrator" / "master_plan.md"
    before = plan.stat().st_size
    say(f"{items:,} items, --executor fake")
    began = time.time()
    wall, rss = timed(orchestrator("run", "--executor", "fake"), proj)
    after = plan.stat().st_size
    first_start = _first_started(proj) - began
    calls: dict[str, list[float]] = {"status": [], "status T-01": []}
    for name, words in (("status", ["status"]), ("status T-01", ["status", "T-01"])):
        for _ in range(6):
            calls[name].append(timed(orchestrator(*words), proj)[0])
    first = {name: values[0] for name, values in calls.items()}
    med = {name: statistics.median(values[1:]) for name, values in calls.items()}
    return [
        f"**Scale**: {items:,} items, `run --executor fake`: **{wall:.1f} s** ({'PASS' if wall <= 120 else 'MISS'}: "
        f"≤ 120 s), peak RSS **{rss / 1024:.0f} MB** ({'PASS' if rss <= 400 * 1024 else 'MISS'}: ≤ 400 MB), the "
        f"first instance started **{first_start:.1f} s** after the command ({'PASS' if first_start <= 2 else 'MISS'}: "
        f"≤ 2 s); the plan file {before:,} bytes before, "
        f"{after:,} after (its status blocks: the row alone; {'PASS' if after - before < 2048 else 'MISS'}).",
        f"`status` of that workspace: **{med['status']:.2f} s** median of 5 "
        f"({'PASS' if med['status'] <= 0.5 else 'MISS'}: ≤ 0.5 s; the first call, which derives the view, "
        f"{first['status']:.2f} s); `status T-01`: **{med['status T-01']:.2f} s** "
        f"({'PASS' if med['status T-01'] <= 1.0 else 'MISS'}: ≤ 1 s).",
    ]


def stream(items: int) -> list[str]:
    """The dashboard's stream (``/api/live``, what the page reads) while ``items`` items run on the
    fake executor: the bytes it sends a second over the run (target ≤ 5 kB a second)."""
    import http.client
    import signal
    import threading

    proj = project(WORK / "items-stream", items, 16)
    server = subprocess.Popen([*orchestrator("serve", "--port", "0", "--json")], cwd=proj, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        assert server.stdout is not None
        port = int(json.loads(server.stdout.readline())["port"])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        connection.request("GET", "/api/live")
        response = connection.getresponse()
        got: list[tuple[float, int]] = []  # (when, bytes) of each chunk read

        def read() -> None:
            with contextlib.suppress(OSError, ValueError, AttributeError, http.client.HTTPException):
                while chunk := response.read1(65536):
                    got.append((time.monotonic(), len(chunk)))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(2.0)  # (the state as the stream opens: not the run's)
        began = time.monotonic()
        say(f"{items:,} items, --executor fake, the dashboard's stream read")
        subprocess.run(orchestrator("run", "--executor", "fake"), cwd=proj, capture_output=True, check=False)
        ended = time.monotonic()
        time.sleep(3.0)
        connection.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    sent = sum(size for when, size in got if began <= when <= ended + 3.0)
    rate = sent / (ended - began)
    return [
        f"**The dashboard's stream**: while {items:,} items ran (`run --executor fake`, {ended - began:.0f} s), "
        f"`/api/live` sent **{rate / 1000:.2f} kB a second** ({sent / 1000:.0f} kB in all; "
        f"{'PASS' if rate <= 5000 else 'MISS'}: ≤ 5 kB a second)."
    ]


def _first_started(proj: Path) -> float:
    """When the run's first attempt started (seconds since the epoch), from its event log."""
    from datetime import datetime

    with (proj / ".orchestrator" / "state" / "events.jsonl").open() as log:
        for line in log:
            if '"task_started"' in line:
                return datetime.fromisoformat(json.loads(line)["time"]).timestamp()
    raise RuntimeError("no task started")


# The system calls an item costs the runner beyond its process, counted by strace.
CALLS = ("openat", "mkdir", "rename", "unlink", "newfstatat", "write")


def files_an_item(items: int) -> list[str]:
    """The files opened, directories made, renames, unlinks, stats and writes an item costs the
    runner (``strace -f -c`` of ``run --executor fake`` over ``items`` items, the run's fixed cost
    left in: a floor for what each costs)."""
    strace = shutil.which("strace")
    if strace is None:
        return ["**Files an item**: not measured (no `strace` here)."]
    proj = project(WORK / "items-calls", items, 16)
    out = WORK / "items-calls.strace"
    subprocess.run([strace, "-f", "-c", "-o", str(out), "-e", f"trace={','.join(CALLS)}",
                    *orchestrator("run", "--executor", "fake")], cwd=proj, capture_output=True, check=True)  # fmt: skip
    counts = {name: 0 for name in CALLS}
    for line in out.read_text().splitlines():
        fields = line.split()
        if fields and fields[-1] in counts:
            counts[fields[-1]] = int(fields[3])
    said = ", ".join(f"{counts[name] / items:.1f} `{name}`" for name in CALLS)
    return [f"**Files an item**: {items:,} items, `run --executor fake`, the runner's calls an item: {said}."]


def importing(tasks: int) -> list[str]:
    """``import`` of ``tasks`` one-line rows (``export``'s format); of as many as the plan's size
    limit takes (2.5 MiB outside the status blocks: some 55,000 such rows), and past it refused."""
    place = fresh_dir(WORK / "items-import")
    walls: dict[int, tuple[float, int]] = {}
    for count in (55_000, tasks):
        rows = [
            {"Task ID": f"T-{n:05d}", "Description": f"task {n}", "Dependencies": "None"} for n in range(1, count + 1)
        ]
        doc = {"format": "orchestrator-plan/1", "title": "Big", "settings": {},
               "columns": ["Task ID", "Description", "Dependencies"], "tasks": rows}  # fmt: skip
        (place / "plan.json").write_text(json.dumps(doc))
        fresh_dir(place / ".orchestrator")
        start = time.perf_counter()
        done = subprocess.run([*orchestrator("import", "plan.json")], cwd=place, capture_output=True, check=False)
        walls[count] = (time.perf_counter() - start, done.returncode)
    (near, near_code), (big, big_code) = walls[55_000], walls[tasks]
    said = "refused (over the plan's size limit), nothing written" if big_code == 2 else f"exit {big_code}"
    return [
        f"**import** of 55,000 one-line tasks (near the plan's size limit): **{near:.1f} s** (exit {near_code}; "
        f"{'PASS' if near <= 10 and near_code == 0 else 'MISS'}: ≤ 10 s, linear); of {tasks:,}: {big:.1f} s, {said}."
    ]


def on_dask(items: int) -> list[str]:
    from benchlib import orchestrator_makespan
    from cluster import local_cluster

    root = WORK / "items-dask"
    fresh_dir(root)
    with local_cluster(root / "cluster") as address:
        proj = project(root / "project", items, 8)
        plan = proj / ".orchestrator" / "master_plan.md"
        plan.write_text(plan.read_text().replace("`true {{ item }}`", "`sleep 0.2 # {{ item }}`"))
        say(f"{items:,} items of sleep 0.2 on the cluster")
        wall, _ = timed(orchestrator("run", "--executor", "dask", "--scheduler", address), proj)
        makespan = orchestrator_makespan(proj)
    bound = items * 0.2 / 8
    ratio = makespan / bound
    return [
        f"**Dask**: {items:,} items of `sleep 0.2` on a scheduler and two workers of 4 threads (W9's), "
        f"`max_parallel: 8`: makespan **{makespan:.1f} s** against a lower bound of {bound:.1f} s, "
        f"**{ratio:.3f}×** ({'PASS' if ratio <= 1.15 else 'MISS'}: ≤ 1.15×); the CLI's wall {wall:.1f} s."
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--calls", type=int, default=2_000, help="items whose system calls strace counts")
    parser.add_argument("--stream", type=int, default=100_000, help="items run while the dashboard's stream is read")
    parser.add_argument("--import-tasks", type=int, default=90_000)
    parser.add_argument("--dask", type=int, default=0, help="items of sleep 0.2 on a Dask cluster (0: none)")
    parser.add_argument("--write", action="store_true", help="put the section into bench/RESULTS.md")
    args = parser.parse_args()
    lines = ["## Items (issues 67, 75): one row over many items", "", f"Measured on {machine_line()}.", ""]
    parts: list[Callable[[], list[str]]] = [
        lambda: throughput(args.items, args.rounds),
        lambda: scale(args.big),
        lambda: files_an_item(args.calls),
        *([lambda: stream(args.stream)] if args.stream else []),
        *([lambda: on_dask(args.dask)] if args.dask else []),
        lambda: importing(args.import_tasks),
    ]
    for part in parts:
        found = part()
        say("\n".join(found))  # (each part as it is measured: a later one that fails loses none)
        lines += [*found, ""]
    lines += BOUNDS
    text = "\n".join(lines)
    print(text)
    if args.write:
        results = Path(__file__).resolve().parent / "RESULTS.md"
        put_marked_section(results, BEGIN, END, text)
        assert marked_section(results, BEGIN, END) is not None
    return 0


def section_of(path: Path) -> str | None:
    """This benchmark's section of the report at ``path``, markers included (``run.py`` keeps it)."""
    return marked_section(path, BEGIN, END)


if __name__ == "__main__":
    raise SystemExit(main())
