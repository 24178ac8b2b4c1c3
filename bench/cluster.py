"""W9, a Dask cluster beside the local executor: 200 x ``sleep 0.2`` at concurrency 8.

    python bench/cluster.py [--runs 3] [--tasks 200] [--write]

Starts a ``dask scheduler`` and two ``dask worker`` processes (4 threads each, each in a
directory of its own) on 127.0.0.1, then runs the same plan (``backend: shell``,
``max_parallel: 8``, independent tasks) with ``--executor local`` and with ``--executor dask``,
alternately, on a fresh workspace each time. Makespan is first ``started`` to last ``finished``
over the result files (``benchlib.orchestrator_makespan``); the lower bound is total work /
concurrency (200 x 0.2 s / 8 = 5 s); the runner's added cost per task is the slot time lost,
(makespan - lower bound) x concurrency / tasks. Target: the cluster's makespan within 1.10x the
lower bound. The CLI's wall time (start-up, the cluster check, final_output.md) is beside it.
Needs the dask extra (``pip install -e '.[dask]'``); it runs the orchestrator of this Python.
``--write`` puts the report in bench/RESULTS.md, between its markers (``bench/run.py`` keeps it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from benchlib import (
    fresh_dir,
    independent,
    marked_section,
    orchestrator_makespan,
    put_marked_section,
    say,
    table,
    verdict,
    write_plan,
)

CONCURRENCY = 8
SLEEP = 0.2
LIMIT = 1.10
WORK = Path(__file__).resolve().parent / ".work" / "cluster"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
BEGIN = "<!-- W9: written by bench/cluster.py -->"
END = "<!-- /W9 -->"


def section_of(path: Path) -> str | None:
    """The W9 section a report holds, if any (``bench/run.py`` keeps it when it rewrites the file)."""
    return marked_section(path, BEGIN, END)


def write_section(path: Path, body: str) -> None:
    """``body`` as the report's W9 section: in place of the one it holds, else at its end."""
    put_marked_section(path, BEGIN, END, body)


@contextlib.contextmanager
def local_cluster(root: Path, threads: int = 4) -> Iterator[str]:
    """A scheduler and two workers on 127.0.0.1; their address; all stopped and reaped after."""
    dask = str(Path(sys.executable).with_name("dask"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    started: list[subprocess.Popen[bytes]] = []

    # allowed-failures 0: Dask never runs a task again by itself, so an attempt needs no claim
    # of its key on the scheduler first (a round trip less; ``executors/dask``).
    env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}

    def start(argv: list[str], name: str) -> None:
        directory = fresh_dir(root / name)
        with open(directory / "process.log", "wb") as log:
            started.append(subprocess.Popen(argv, cwd=directory, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True, env=env))  # fmt: skip

    try:
        start([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], "scheduler")
        for name in ("w1", "w2"):
            start([dask, "worker", address, "--name", name, "--nthreads", str(threads), "--no-nanny",
                   "--no-dashboard", "--local-directory", str(root / name)], name)  # fmt: skip
        from distributed import Client

        with Client(address, timeout=30) as client:  # type: ignore[no-untyped-call]
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for process in reversed(started):  # the workers first, then the scheduler
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # a worker that waits for a scheduler gone
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def one_run(project: Path, tasks: int, extra: list[str]) -> tuple[float, float]:
    """(makespan, CLI wall time) of one run on a fresh workspace."""
    fresh_dir(project)
    write_plan(independent(tasks, f"sleep {SLEEP}", name="sleep"), project, CONCURRENCY)
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "orchestrator", "run", *extra], cwd=project,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)  # fmt: skip
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"orchestrator run {' '.join(extra)} exited {done.returncode}: {done.stderr.decode()}")
    return orchestrator_makespan(project), wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--write", action="store_true", help="put the report in bench/RESULTS.md")
    parser.add_argument("--threads", type=int, default=4, help="threads of each worker (default 4)")
    args = parser.parse_args()
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    bound = args.tasks * SLEEP / CONCURRENCY
    samples: dict[str, list[tuple[float, float]]] = {"local": [], "dask": []}
    with local_cluster(WORK, args.threads) as address:
        for round_ in range(1, args.runs + 1):
            for name, extra in (("local", []), ("dask", ["--executor", "dask", "--scheduler", address])):
                makespan, wall = one_run(WORK / f"project-{name}", args.tasks, extra)
                samples[name].append((makespan, wall))
                say(f"round {round_}: {name}: makespan {makespan:.2f}s, wall {wall:.2f}s")
    rows = []
    ok = True
    for name, found in samples.items():
        makespans = sorted(m for m, _ in found)
        median = statistics.median(makespans)
        ratio = median / bound
        added = (median - bound) * CONCURRENCY / args.tasks * 1000
        wall = statistics.median(w for _, w in found)
        passed = ratio <= LIMIT
        ok = ok and (passed or name == "local")
        rows.append([f"`--executor {name}`", f"{median:.2f}s ({makespans[0]:.2f}-{makespans[-1]:.2f})",
                     f"{ratio:.3f}x", f"{added:.1f} ms", f"{wall:.2f}s",
                     verdict(passed) if name == "dask" else "(reference)"])  # fmt: skip
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    report = "\n".join([
        "## W9 — a Dask cluster beside the local executor",
        "",
        f"Written by `python bench/cluster.py --write` on {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. {args.tasks} x `sleep {SLEEP}`, independent, "
        f"`max_parallel: {CONCURRENCY}`; a `dask scheduler` (allowed-failures 0) and two `dask worker`s of "
        f"{args.threads} threads on 127.0.0.1, each in a directory of its own; both executors alternately, "
        "a fresh workspace each run. "
        f"Lower bound {bound:.2f}s (work / concurrency); makespan: first `started` to last `finished` of the "
        f"results; added per task: (makespan - lower bound) x {CONCURRENCY} / {args.tasks}. Median of {args.runs} "
        f"runs (min-max). Load average before: {load_before}, after: {load_after}.",
        "",
        table(["executor", "makespan (min-max)", "/ lower bound", "added per task", "CLI wall", "≤ 1.10x"], rows),
    ])  # fmt: skip
    print(report)
    if args.write:
        write_section(RESULTS, report)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
