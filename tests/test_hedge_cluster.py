"""Hedging on a Dask cluster (``run/races/hedge.py``, ``executors/placement.others_free``): a straggler's
hedge runs on another worker than the straggler's where one has a thread free, even when Dask,
left to itself, would put it beside the straggler.

A cluster of the test's own (``dask_helpers.cluster``): a real ``dask scheduler`` and two
``dask worker`` processes on 127.0.0.1; the runner is the real CLI in a subprocess.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from dask_helpers import cluster, have_dask
from race_helpers import write_race_plan
from runner_helpers import results, start, wait_until

pytestmark = [pytest.mark.dask, pytest.mark.skipif(not have_dask(), reason="the dask extra is not installed")]

# Attempt 1 stalls; every attempt says on which worker it ran.
STALLS = (
    'echo "$WORKER" > "ran-$ORCHESTRATOR_ATTEMPT"; '
    'if [ "$ORCHESTRATOR_ATTEMPT" = 1 ]; then sleep 60; fi; echo "done on $WORKER"'
)


def test_the_hedge_runs_on_another_worker_than_the_straggler(tmp_path: Path) -> None:
    from distributed import Client

    with cluster(tmp_path / "cluster", threads=4) as own:
        project = tmp_path / "project"
        write_race_plan(project, "Hedge", [("T-01", "4s", STALLS)])
        runner = start(project, "--executor", "dask", "--scheduler", own.address)
        go = tmp_path / "go"
        try:
            wait_until(lambda: (project / "ran-1").exists(), "the first attempt to start")
            first = (project / "ran-1").read_text().strip()
            other = next(name for name in own.workers if name != first)
            # The other worker made busier than the straggler's (two tasks of its own to its one),
            # a thread still free: Dask alone would put the hedge beside the straggler.
            with Client(own.address, timeout=10) as client:  # type: ignore[no-untyped-call]
                address = next(a for a, w in client.scheduler_info()["workers"].items() if w["name"] == other)
                wait = f"for i in $(seq 900); do [ -e {go} ] && exit 0; sleep 0.1; done"
                busy = [client.submit(subprocess.run, ["sh", "-c", wait], key=f"busy-{n}", workers=[address],
                                      allow_other_workers=False, pure=False) for n in range(2)]  # fmt: skip
                wait_until(lambda: len(client.processing()[address]) == 2, "the other worker to be busy")
                wait_until(lambda: (project / "ran-2").exists(), "the hedge to start", timeout=60)
                go.touch()
                client.gather(busy)
            assert runner.wait() == 0, runner.stderr.read_text()
        finally:
            go.touch()
            runner.stop_all()
        assert (project / "ran-2").read_text().strip() == other  # the hedge ran elsewhere
        found = results(project)["T-01"]
        assert found["status"] == "completed" and found["hedged"]["won"] == "hedge" and found["worker"] == other
