"""The README's Dask trial, run as written: "## On a Dask cluster" has two ``bash`` blocks, the
trial with a shared filesystem on examples/repo-analysis and the same trial without shared files
(worktree tasks in a ``trial`` repository). Each runs with bash, as the README has it, in a fresh
copy of the repository on a machine with no git identity, with only these changes: the port 8786
is a free one (the tests run in parallel), the ``pip install`` line is left out (the dask extra is
installed here, else the test is skipped). The blocks start their scheduler and workers in the
background: each runs in a session of its own, killed at the end on every path, and no dask
process may be left.

The second block goes on from the first (the same trial): it runs after the first block's
background lines, the scheduler and the two workers.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from dask_helpers import cluster, free_port, have_dask, processes_with
from runner_helpers import CLI, HANG_GUARD, Spec, result_body, wait_until, write_plan
from test_docs import ROOT, Fenced, block_env, fenced_blocks, fresh_copy, leftovers, make_snapshot

from orchestrator import load_plan

pytestmark = [pytest.mark.dask, pytest.mark.skipif(not have_dask(), reason="the dask extra is not installed")]

SECTION = "## On a Dask cluster"
PORT = "8786"
TIMEOUT = 600  # seconds a block may take on a loaded machine before it is taken for hung
WORKER = re.compile(r"(\S+) (w1|w2)")


def section_blocks() -> list[Fenced]:
    """The ``bash`` blocks of the README's section on Dask, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8").split("\n")
    start = text.index(SECTION) + 1
    end = next((i for i in range(start, len(text)) if text[i].startswith("## ")), len(text)) + 1
    return [b for b in fenced_blocks("README.md") if start < b.line < end and b.info == "bash"]


def adapted(code: str, port: int) -> str:
    """``code`` as the test runs it: a free port for 8786, no ``pip install`` line."""
    assert PORT in code
    lines = [line for line in code.split("\n") if not line.startswith("pip install")]
    return "\n".join(lines).replace(PORT, str(port))


def background(code: str) -> str:
    """The lines of ``code`` that start a process in the background (the scheduler, the workers)."""
    return "\n".join(line for line in code.split("\n") if re.search(r"&\s*(#.*)?$", line)) + "\n"


@dataclass(frozen=True, slots=True)
class Ran:
    code: int
    stdout: str
    stderr: str


def no_identity(env: dict[str, str], home: Path) -> dict[str, str]:
    """``env`` with git as on a fresh machine: no user.name or user.email anywhere, and none
    guessed from the host's name (as where it has no domain: git refuses to commit)."""
    env = {k: v for k, v in env.items() if not k.startswith(("GIT_AUTHOR_", "GIT_COMMITTER_")) and k != "EMAIL"}
    (home / "gitconfig").write_text("[user]\n\tuseConfigOnly = true\n")
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    env["GIT_CONFIG_GLOBAL"] = str(home / "gitconfig")
    return env


def run_block(code: str, where: Path, port: int) -> Ran:
    """``code`` run with bash from the root of a fresh copy of the repository, in a session of its
    own; the session killed at the end (the background scheduler and workers), on every path."""
    repo = fresh_copy(make_snapshot(where / "snapshot"), where)
    env = no_identity(block_env(where / "home"), where / "home")
    out, err = where / "stdout", where / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            ["bash", "-e", "-o", "pipefail", "-c", code], cwd=repo, env=env, stdin=subprocess.DEVNULL,
            stdout=stdout, stderr=stderr, start_new_session=True,
        )  # fmt: skip
    try:
        try:
            exit_code = process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            exit_code = -1
    finally:
        stop_group(process.pid)
    left = remaining(where, port)
    for pid, _ in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"the block left processes running: {left}"
    return Ran(exit_code, out.read_text(errors="replace"), err.read_text(errors="replace"))


def remaining(where: Path, port: int) -> list[tuple[int, str]]:
    """The processes of the block still alive a minute after its session was stopped (a worker's
    watchdog, in a session of its own, goes once its worker is gone): inside ``where``, or of
    the cluster at ``port``."""
    deadline = time.monotonic() + 60
    while True:
        left = leftovers(where) + [(pid, "") for pid in processes_with(f"127.0.0.1:{port}")]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def group_members(group: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def stop_group(group: int) -> None:
    """Every process of the session's group stopped: SIGTERM, then SIGKILL for what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, sig)
        deadline = time.monotonic() + 60
        while group_members(group) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not group_members(group):
            return


def test_the_blocks_are_there() -> None:
    blocks = section_blocks()
    assert len(blocks) == 2, [b.line for b in blocks]
    assert "orchestrator run examples/repo-analysis --executor dask" in blocks[0].body
    assert "shared_filesystem: false" in blocks[1].body


def test_the_trial_on_a_shared_filesystem(tmp_path: Path) -> None:
    """The first block: a scheduler and two workers, examples/repo-analysis run on them, and
    the last line names the worker of each task. It runs after the README's first command (its
    run of examples/repo-analysis), as a reader does: the block ran nothing then, and its last
    line printed `None` for each worker."""
    port = free_port()
    code = "orchestrator run examples/repo-analysis > /dev/null\n" + adapted(section_blocks()[0].body, port)
    ran = run_block(code, tmp_path, port)
    assert ran.code == 0, f"exit {ran.code}\n{ran.stdout[-6000:]}\n{ran.stderr[-6000:]}"
    tasks = list(load_plan(ROOT / "examples" / "repo-analysis").tasks)
    shown = ran.stdout.strip().split("\n")[-len(tasks) :]
    pairs = [WORKER.fullmatch(line) for line in shown]
    assert all(pairs), f"not a task and a worker each: {shown}\n{ran.stdout[-6000:]}"
    assert sorted(m.group(1) for m in pairs if m) == sorted(tasks)


def test_the_trial_without_shared_files(tmp_path: Path) -> None:
    """The second block, after the first's scheduler and workers: three worktree tasks, each
    branch back from its worker and merged, ``both.txt`` made of the two others' files."""
    port = free_port()
    first, second = section_blocks()
    code = adapted(background(first.body) + second.body, port)
    ran = run_block(code, tmp_path, port)
    assert ran.code == 0, f"exit {ran.code}\n{ran.stdout[-6000:]}\n{ran.stderr[-6000:]}"
    trial = tmp_path / "repo" / "trial"
    status = subprocess.run(
        [*CLI, "status", "--json"], cwd=trial, capture_output=True, text=True, check=False, timeout=HANG_GUARD
    )
    workers = {t["id"]: t["worker"] for t in json.loads(status.stdout)["tasks"]}
    assert sorted(workers) == ["T1", "T2", "T3"] and set(workers.values()) <= {"w1", "w2"}, workers
    for task, worker in workers.items():
        assert re.search(rf"^✅ {task} .* completed on {worker} ", ran.stdout, re.M), ran.stdout
    # each branch came back from its worker, merged: into the person's branch, through the merge queue
    log = subprocess.run(["git", "log", "--format=%s"], cwd=trial, capture_output=True, text=True, check=True)
    assert {f"orchestrator: merge {t}" for t in workers} <= set(log.stdout.splitlines()), log.stdout
    assert "merged orchestrator/integration into master" in ran.stdout, ran.stdout
    assert ran.stdout.strip().split("\n")[-2:] == [f"notes from {socket.gethostname()}", "todo"], ran.stdout


def test_a_run_waits_for_a_worker_that_is_joining(tmp_path: Path) -> None:
    """A run started just after its workers (``dask worker ... &``, as the README's trial does)
    gives them the scheduler's timeout to join: before, it stopped at once, "has no worker"."""
    project = tmp_path / "project"
    write_plan(project, [Spec("T1", "echo on $WORKER")])
    with cluster(tmp_path / "cluster", workers=()) as made:
        log = made.root / "scheduler" / "process.log"
        env = {**os.environ, "ORCHESTRATOR_DASK_TIMEOUT": "300"}  # (a loaded machine starts a worker slowly)
        with (project / "run.out").open("wb") as out:
            runner = subprocess.Popen(
                [*CLI, "run", "--executor", "dask", "--scheduler", made.address], cwd=project, env=env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        try:
            wait_until(lambda: "Receive client connection" in log.read_text(errors="replace"), "the run's client", 120)
            assert runner.poll() is None, (project / "run.out").read_text()
            made.start_worker("w1", resources="shell=1")
            assert runner.wait(timeout=300) == 0, (project / "run.out").read_text()
        finally:
            stop_group(runner.pid)
    assert "completed on w1" in (project / "run.out").read_text()
    assert "on w1" in result_body(project, "T1")
