"""``run --executor dask`` on a cluster each test starts for itself (``dask_helpers.cluster``): a
worker killed mid-task, a cluster with no worker, a scheduler gone, workers with resources, homes
or a Python of their own; and what runs on a worker, called directly. Apart from test_dask.py,
whose tests share one cluster, so that ``-n`` hands these out one by one beside the rest.

The attempts' processes run under the workers (started by them, in sessions of their own), not
under the runner: what the tests look for in /proc is what a worker left.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from dask_helpers import DAG, assign, attempt_processes, cluster, have_dask, status_json, venv_elsewhere
from fakeapi import FakeAnthropic, Reply, claude_env, find_claude
from runner_helpers import (
    Spec,
    cli,
    cli_in_process,
    kill_attempts,
    peak_overlap,
    read_times,
    result_body,
    results,
    stamped,
    start,
    timing_text,
    wait_until,
    write_plan,
)

from orchestrator import timing

pytestmark = [pytest.mark.dask, pytest.mark.skipif(not have_dask(), reason="the dask extra is not installed")]


def group_alive(pgid: int) -> list[int]:
    """The live members of process group ``pgid`` (from /proc)."""
    from orchestrator.executors.groups import group_members, process_state

    return [pid for pid in group_members(pgid) if process_state(pid) not in (None, "Z", "X")]


@pytest.mark.parametrize("allowed_failures", [None, 0], ids=["dask-reruns-refused", "no-dask-reruns"])
def test_a_worker_killed_mid_task_is_a_transient_failure_retried_on_the_other(
    tmp_path: Path, allowed_failures: int | None
) -> None:
    # The test's own two workers: one of them is killed, and only it (not the attempt's process
    # group, which is in a session of its own). With Dask's default, the scheduler runs the task
    # again on the other worker, which refuses; with allowed-failures 0 it says the worker was
    # killed (KilledWorker). Either way: one transient failure, one retry of ours, and attempt 1's
    # processes gone with its worker: never two runs of the task at once.
    with cluster(tmp_path / "cluster", allowed_failures=allowed_failures) as own:
        script = 'echo "$WORKER" > "ran-$ORCHESTRATOR_ATTEMPT"; echo $$ > "pid-$ORCHESTRATOR_ATTEMPT"\n'
        script += 'if [ "$ORCHESTRATOR_ATTEMPT" = 1 ]; then\n'
        script += '  (while [ ! -e go ]; do sleep 0.05; done; echo "attempt 1 went on" >> side.log) &\n'
        script += "  sleep 60\nfi\n"
        script += 'echo "done on $WORKER"'
        write_plan(tmp_path, [Spec("T1", script, retries=1)])
        runner = start(tmp_path, "--executor", "dask", "--scheduler", own.address)
        pgid = 0
        try:
            # (written by the shell's `>`: the file is there, empty, an instant before the pid is in it)
            wait_until(lambda: (tmp_path / "pid-1").is_file() and bool((tmp_path / "pid-1").read_text().strip()),
                       "the first attempt to start")  # fmt: skip
            first = (tmp_path / "ran-1").read_text().strip()
            pgid = int((tmp_path / "pid-1").read_text())
            wait_until(lambda: len(group_alive(pgid)) >= 3, "attempt 1's processes")  # bash, its subshell, sleep
            own.kill_worker(first)  # the machine gone: only the worker's own process is killed
            wait_until(lambda: not group_alive(pgid), "attempt 1's processes to go with their worker", timeout=5)
            wait_until(lambda: (tmp_path / "ran-2").exists(), "the second attempt to start")
            assert group_alive(pgid) == []
            assert runner.wait() == 0, runner.stderr.read_text()
            (tmp_path / "go").touch()  # what attempt 1 would do next, had any of it lived on
            time.sleep(0.5)
            assert not (tmp_path / "side.log").exists()
        finally:
            runner.stop_all()
            if pgid:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
        meta = results(tmp_path)["T1"]
        assert meta["status"] == "completed" and meta["attempts"] == 2
        assert meta["worker"] != first and (tmp_path / "ran-2").read_text().strip() == meta["worker"]
        retried = [event for event in runner.events() if event["event"] == "task_retrying"]
        assert [event["error_class"] for event in retried] == ["transient"]
        assert retried[0]["reason"].startswith("lost its worker")
        assert not (tmp_path / "ran-3").exists()  # never run a third time, nor twice behind our back


@pytest.mark.timeout(300)  # (a hang guard: its bounded wait for a worker, slow on a loaded machine)
def test_an_attempt_no_worker_can_run_ends_as_a_transient_failure_not_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only w1 declares `shell`: a shell attempt runs there alone. w1 killed mid-attempt, Dask holds
    # the task (its re-run) in `no-worker` for ever; the runner gives it a bounded wait
    # (timing.no_worker_wait, here 3 s of its 30), then ends the attempt, saying why, and the run ends.
    no_worker_wait = 3.0
    monkeypatch.setenv(timing.VARIABLE, timing_text(no_worker_wait=no_worker_wait))

    with cluster(tmp_path / "cluster", workers=()) as own:
        own.start_worker("w1", resources="shell=1")
        own.start_worker("w2")
        write_plan(tmp_path, [Spec("T1", 'echo "$WORKER" > ran; echo $$ > pid; sleep 60')])
        runner = start(tmp_path, "--executor", "dask", "--scheduler", own.address)
        try:
            wait_until(lambda: (tmp_path / "pid").exists(), "T1 to start")
            assert (tmp_path / "ran").read_text().strip() == "w1"
            journal = tmp_path / ".orchestrator" / "state" / "attempts.jsonl"
            wait_until(lambda: b'"worker": "w1"' in journal.read_bytes(), "the runner to learn where T1 runs")
            own.kill_worker("w1")
            assert runner.wait(timeout=no_worker_wait + 90) == 1  # not a hang
        finally:
            runner.stop_all()
        assert attempt_processes(tmp_path) == []
    meta = results(tmp_path)["T1"]
    assert (meta["status"], meta["error_class"], meta["worker"]) == ("failed", "transient", "w1")
    assert meta["reason"] == "lost its worker: no worker has shell=1 now: the only one, w1, was lost"
    assert "Traceback" not in runner.stderr.read_text()
    shown = cli_in_process(tmp_path, "logs", "T1").stdout.splitlines()[0]  # the lost attempt's worker, in its logs
    assert shown.endswith("attempt 1 on worker w1"), shown


def test_why_no_worker_can_run_an_attempt_names_the_workers_lost() -> None:
    from orchestrator.executors.placement import is_stranded, why_stranded

    seen = {"w1": {"claude": 1.0}, "w2": {}, "w3": {"gpu": 2.0}}
    assert why_stranded({"claude": 1}, None, {"w2": {}, "w3": {"gpu": 2.0}}, seen) == (
        "no worker has claude=1 now: the only one, w1, was lost"
    )
    assert why_stranded({"gpu": 1}, None, {"w2": {}}, seen) == "no worker has gpu=1 now: the only one, w3, was lost"
    both = {**seen, "w4": {"gpu": 1.0}}
    assert why_stranded({"gpu": 1}, None, {"w2": {}}, both) == "no worker has gpu=1 now: w3 and w4 were lost"
    assert why_stranded({"tpu": 1}, None, {"w2": {}}, seen) == "no worker has tpu=1 now"
    assert why_stranded({}, None, {}, seen) == "the cluster has no worker now: w1, w2 and w3 were lost"
    assert why_stranded({}, None, {}, {}) == "the cluster has no worker now"
    assert why_stranded({}, "w1", {"w2": {}}, seen) == "its agent session is on worker w1, which is gone"
    assert why_stranded({"claude": 1, "gpu": 2}, None, {"w1": {"claude": 1.0}, "w3": {"gpu": 2.0}}, seen) == (
        "no worker can run it now (it asks for claude=1, gpu=2)"
    )
    assert is_stranded("no-worker", {"w1": {}}) and is_stranded("queued", {}) and is_stranded("waiting", {})
    assert not is_stranded("processing", {"w1": {}}) and not is_stranded("queued", {"w1": {}})
    assert not is_stranded(None, {}) and not is_stranded("memory", {})


def test_a_next_run_before_the_scheduler_cancelled_a_dead_runners_attempts_settles_them_all(tmp_path: Path) -> None:
    # The scheduler keeps a dead client's tasks (as when the runner's machine vanished without
    # closing its connection): the next run, started at once, must settle them itself. Two of
    # them run (one unit of `shell` on each worker); the third waits on the cluster for a unit,
    # and must never start once its runner is dead, not even when the first two are stopped.
    with cluster(tmp_path / "cluster", keeps_clients=True, resources="shell=1") as own:
        script = 'echo "$ORCHESTRATOR_TASK_ID $ORCHESTRATOR_ATTEMPT start" >> runs.log\n'
        script += 'echo $$ > "pid-$ORCHESTRATOR_TASK_ID-$ORCHESTRATOR_ATTEMPT"\n'
        script += "if [ ! -e second ]; then sleep 60; fi\n"
        script += 'echo "$ORCHESTRATOR_TASK_ID $ORCHESTRATOR_ATTEMPT end" >> runs.log'
        write_plan(tmp_path, [Spec(f"T{n}", script) for n in (1, 2, 3)], {"max_parallel": 3})
        runner = start(tmp_path, "--executor", "dask", "--scheduler", own.address)
        journal = tmp_path / ".orchestrator" / "state" / "attempts.jsonl"
        try:
            wait_until(lambda: len(list(tmp_path.glob("pid-*-1"))) == 2, "two attempts to start")
            wait_until(lambda: journal.read_bytes().count(b'{"event": "start"') == 3, "the third to be submitted")
            orphans = [int(path.read_text()) for path in tmp_path.glob("pid-*-1")]
            runner.kill(signal.SIGKILL)
            (tmp_path / "second").touch()
            again = cli(tmp_path, "run", "--executor", "dask", "--scheduler", own.address)
            assert again.code == 0, again.stdout + again.stderr
            time.sleep(1.0)  # (time for a forgotten attempt to start late, were one left)
        finally:
            runner.stop_all()
        assert not [pid for pid in orphans if Path(f"/proc/{pid}").exists()]
    lines = (tmp_path / "runs.log").read_text().splitlines()
    assert sorted(line for line in lines if " 1 " in line) == sorted(
        f"{path.name.split('-')[1]} 1 start" for path in tmp_path.glob("pid-*-1")
    )  # the two that ran were stopped, the third never started
    second = sorted(line for line in lines if " 2 " in line)
    assert second == [f"T{n} 2 {end}" for n in (1, 2, 3) for end in ("end", "start")]
    found = results(tmp_path)
    assert {task: (meta["status"], meta["attempts"]) for task, meta in found.items()} == dict.fromkeys(
        ("T1", "T2", "T3"), ("completed", 2)
    )


FINISHED_CLAUDE = """#!/bin/sh
# claude as the runner sees it: its result event, then (T1's first attempt) a process that lingers
if [ "$1" = --version ]; then echo "9.9.9 (lingering fake)"; exit 0; fi
cat > /dev/null
echo "$ORCHESTRATOR_TASK_ID $ORCHESTRATOR_ATTEMPT" >> calls.log
s=fake-$ORCHESTRATOR_TASK_ID t=$ORCHESTRATOR_TASK_ID
echo '{"type":"system","subtype":"init","session_id":"'$s'","model":"fake"}'
echo '{"type":"result","subtype":"success","is_error":false,"result":"'$t' done","session_id":"'$s'"}'
if [ "$ORCHESTRATOR_TASK_ID" = T1 ] && [ "$ORCHESTRATOR_ATTEMPT" = 1 ]; then sleep 60; fi
"""


def test_a_dead_runners_attempt_whose_log_proves_it_finished_is_kept_not_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # T1's claude said its result (the runner wrote it to T1's log as it came) and lingers on;
    # the runner is killed before it sees T1 end, and the next run starts before the scheduler
    # has cancelled anything: it stops T1's process and keeps its result, as for a local orphan.
    fake = tmp_path / "fake-claude"
    fake.write_text(FINISHED_CLAUDE)
    fake.chmod(0o755)
    rows = "| T1 | Say T1 | None |\n| T2 | Say T2 | T1 |"
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir(parents=True)
    plan.write_text(
        "---\nbackend: claude\nretries: 0\n---\n# Plan\n\n## Original Request\n> Say\n\n## Task Decomposition\n"
        f"| Task ID | Description | Dependencies |\n|---|---|---|\n{rows}\n",
        encoding="utf-8",
    )
    env = {"ORCHESTRATOR_CLAUDE_BIN": str(fake), "ANTHROPIC_API_KEY": "fake"}
    for name, value in env.items():  # (the runner in the background has this environment)
        monkeypatch.setenv(name, value)
    with cluster(tmp_path / "cluster", keeps_clients=True, env={**os.environ, **env}) as own:
        runner = start(tmp_path, "--executor", "dask", "--scheduler", own.address)
        log = tmp_path / ".orchestrator" / "logs" / "agent-01.attempt-1.out"
        try:
            wait_until(lambda: log.exists() and b'"type":"result"' in log.read_bytes(), "T1's result in its log")
            runner.kill(signal.SIGKILL)
            again = cli(tmp_path, "run", "--executor", "dask", "--scheduler", own.address, env=env)
            assert again.code == 0, again.stdout + again.stderr
        finally:
            runner.stop_all()
    assert (tmp_path / "calls.log").read_text().split("\n")[:-1] == ["T1 1", "T2 1"]  # T1 not run again
    found = results(tmp_path)
    assert found["T1"]["status"] == "completed" and found["T1"]["reason"].startswith("recovered from the log")
    assert found["T1"]["worker"] in ("w1", "w2")  # the worker that ran it, as the journal named it
    assert found["T2"]["status"] == "completed" and result_body(tmp_path, "T1").strip() == "T1 done"
    assert attempt_processes(tmp_path) == []


SESSION_CLAUDE = """#!/bin/sh
# claude as far as sessions go: each lives in $HOME/sessions of the worker that ran it, and a
# --resume of one not there fails as claude's does. Attempt 1 meets a usage limit $PAUSE s long.
if [ "$1" = --version ]; then echo "9.9.9 (session fake)"; exit 0; fi
cat > /dev/null
resume="" previous=""
for arg in "$@"; do if [ "$previous" = --resume ]; then resume=$arg; fi; previous=$arg; done
echo "$ORCHESTRATOR_TASK_ID $ORCHESTRATOR_ATTEMPT $WORKER ${resume:-new}" >> calls.log
if [ -n "$resume" ] && [ ! -e "$HOME/sessions/$resume" ]; then
  echo "No conversation found with session ID: $resume" >&2; exit 1
fi
s=${resume:-fake-$ORCHESTRATOR_TASK_ID-$ORCHESTRATOR_ATTEMPT}
mkdir -p "$HOME/sessions" && touch "$HOME/sessions/$s"
echo '{"type":"system","subtype":"init","session_id":"'$s'","model":"fake"}'
if [ "$ORCHESTRATOR_ATTEMPT" = 1 ]; then
  limit="Claude AI usage limit reached|$(( $(date +%s) + PAUSE ))"
  echo '{"type":"result","subtype":"success","is_error":true,"result":"'"$limit"'","session_id":"'$s'"}'
  exit 1
fi
echo '{"type":"result","subtype":"success","is_error":false,"result":"done in '$s'","session_id":"'$s'"}'
"""


@pytest.mark.timeout(300)  # (a hang guard: two runs, one of them through a 20 s pause, slow on a loaded machine)
def test_a_resumed_session_runs_on_the_worker_that_holds_it_or_starts_afresh_when_it_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each worker its own HOME, as separate machines: a session lives on the worker that ran it.
    # T1's first attempt meets a usage limit; after the pause its session is resumed (--resume):
    # on the same worker (Dask would pick the other one, its round robin of idle workers), and
    # when that worker is gone, in a new session elsewhere, the run saying so.
    fake = tmp_path / "fake-claude"
    fake.write_text(SESSION_CLAUDE)
    fake.chmod(0o755)
    env = {"ORCHESTRATOR_CLAUDE_BIN": str(fake), "ANTHROPIC_API_KEY": "fake"}
    for name, value in env.items():  # (the runner in the background has this environment)
        monkeypatch.setenv(name, value)

    def project(name: str, pause: int) -> Path:
        made = tmp_path / name
        plan = made / ".orchestrator" / "master_plan.md"
        plan.parent.mkdir(parents=True)
        plan.write_text(
            f"---\nbackend: claude\nretries: 0\nenv: {{PAUSE: '{pause}'}}\n---\n# Plan\n\n## Original Request\n"
            "> Say\n\n## Task Decomposition\n| Task ID | Description | Dependencies |\n|---|---|---|\n"
            "| T1 | Say T1 | None |\n",
            encoding="utf-8",
        )
        return made

    def calls(made: Path) -> list[list[str]]:
        log = made / "calls.log"
        return [line.split() for line in log.read_text().splitlines()] if log.exists() else []

    with cluster(tmp_path / "cluster", workers=()) as own:
        for name in ("w1", "w2"):
            (tmp_path / f"home-{name}").mkdir()
            own.start_worker(name, env={**os.environ, **env, "HOME": str(tmp_path / f"home-{name}")})
        held = project("held", 2)
        done = cli(held, "run", "--executor", "dask", "--scheduler", own.address, env=env, timeout=120)
        assert done.code == 0, done.stdout + done.stderr
        (first, second) = calls(held)
        assert first[:2] == ["T1", "1"] and first[3] == "new"
        assert second == ["T1", "2", first[2], "fake-T1-1"]  # resumed, on the worker that holds it
        assert result_body(held, "T1").strip() == "done in fake-T1-1"

        moved = project("moved", 20)
        runner = start(moved, "--executor", "dask", "--scheduler", own.address)
        journal = moved / ".orchestrator" / "state" / "attempts.jsonl"
        try:
            wait_until(lambda: journal.exists() and b'{"event": "end"' in journal.read_bytes(), "the usage limit")
            holder = calls(moved)[0][2]
            own.kill_worker(holder)  # during the pause
            assert runner.wait(timeout=120) == 0, runner.stderr.read_text()
        finally:
            runner.stop_all()
        other = "w2" if holder == "w1" else "w1"
        # (what to look at should it fail: the run's own account, and what the scheduler said)
        told = [{k: e[k] for k in ("event", "task", "worker", "message", "attempt") if k in e} for e in runner.events()]
        scheduler_log = (tmp_path / "cluster" / "scheduler" / "process.log").read_text(errors="replace")[-3000:]
        assert calls(moved) == [["T1", "1", holder, "new"], ["T1", "2", other, "new"]], (told, scheduler_log)
        assert result_body(moved, "T1").strip() == "done in fake-T1-2"
        notices = [event["message"] for event in runner.events() if event["event"] == "notice"]
        assert f"T1's agent session is on worker {holder}, which is gone: it starts a new session" in notices


def test_bad_set_ups_are_one_line_before_anything_starts(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T1", "echo T1")])
    nobody = "tcp://127.0.0.1:9"  # nothing listens there
    began = time.monotonic()
    done = cli(tmp_path, "run", "--executor", "dask", "--scheduler", nobody, env={"ORCHESTRATOR_DASK_TIMEOUT": "2"})
    assert done.code == 2
    assert done.stderr.strip().count("\n") == 0 and nobody in done.stderr and "within 2.0s" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and time.monotonic() - began < 30
    assert not (tmp_path / ".orchestrator" / "results").exists()  # nothing written
    done = cli(tmp_path, "run", "--executor", "dask")
    assert done.code == 2 and "--scheduler" in done.stderr and done.stderr.strip().count("\n") == 0

    with cluster(tmp_path / "empty", workers=()) as empty:
        # (a worker has $ORCHESTRATOR_DASK_TIMEOUT to join an empty cluster: 4 s here, of the tool's 10)
        done = cli(
            tmp_path, "run", "--executor", "dask", "--scheduler", empty.address, env={"ORCHESTRATOR_DASK_TIMEOUT": "4"}
        )
        assert done.code == 2 and "has no worker" in done.stderr, done.stderr
        assert done.stderr.strip().count("\n") == 0
        codex = tmp_path / "codex"
        write_plan(codex, [Spec("T1", "do it")], {"backend": "codex"})
        bare = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "CLAUDE_CONFIG_DIR")}
        (tmp_path / "home").mkdir()
        empty.start_worker("w1", env={**bare, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home")})
        done = cli(codex, "run", "--executor", "dask", "--scheduler", empty.address)
        assert done.code == 2 and "worker w1 has no codex (needed by T1)" in done.stderr, done.stderr
        # A profile that asks for a resource no worker has: its attempts would wait for ever.
        gpu = tmp_path / "gpu"
        write_plan(gpu, [Spec("T1", "echo on $WORKER", inline=True)], {"backend": "shell"})
        assign(gpu, "gpu-runner")
        (gpu / ".orchestrator" / "agents").mkdir()
        (gpu / ".orchestrator" / "agents" / "gpu-runner.md").write_text("---\nresources: [gpu]\n---\nUse the GPU.\n")
        done = cli(gpu, "run", "--executor", "dask", "--scheduler", empty.address)
        assert done.code == 2 and done.stderr.strip().count("\n") == 0, done.stderr
        assert (
            "profile gpu-runner asks for resource gpu=1 (needed by T1), which no worker has — "
            "the workers' resources: w1: none"
        ) in done.stderr
        assert not (gpu / ".orchestrator" / "results").exists()
        empty.start_worker("w2", resources="gpu=1")  # the resource asked for: only w2 runs it
        done = cli(gpu, "run", "--executor", "dask", "--scheduler", empty.address)
        assert done.code == 0, done.stdout + done.stderr
        assert result_body(gpu, "T1").strip() == "on w2"
        claude = find_claude()
        if claude is not None:  # installed on the worker, and not logged in there
            write_plan(codex, [Spec("T1", "do it")], {"backend": "claude"})
            done = cli(codex, "run", "--executor", "dask", "--scheduler", empty.address,
                       env={"ORCHESTRATOR_CLAUDE_BIN": claude})  # fmt: skip
            assert done.code == 2 and f"worker w1: {claude}: no API key or login found" in done.stderr
            assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    kill_attempts(tmp_path)


@pytest.mark.claude
@pytest.mark.skipif(find_claude() is None, reason="the claude CLI is not installed (tools/install-claude.sh)")
def test_claude_tasks_run_on_the_workers_against_the_fake_api(tmp_path: Path) -> None:
    claude = find_claude()
    assert claude is not None
    # The shell DAG's shape: 8 tasks in five layers (A; B, C, D; E, F; G; H).
    rows = [(spec.id, ", ".join(spec.deps) or "None") for spec in DAG]
    table = "\n".join(f"| {task} | Say hello as {task} | {deps} |" for task, deps in rows)
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir(parents=True)
    plan.write_text(
        "---\nbackend: claude\nmax_parallel: 4\nretries: 0\ntimeout: 90\n---\n# Plan\n\n## Original Request\n"
        f"> Say hello\n\n## Task Decomposition\n| Task ID | Description | Dependencies |\n|---|---|---|\n{table}\n",
        encoding="utf-8",
    )
    (tmp_path / "claude-config").mkdir()
    with FakeAnthropic(lambda body: Reply.say("hello from the cluster")) as api:
        env = {**claude_env(api.base_url, tmp_path / "claude-config"), "ORCHESTRATOR_CLAUDE_BIN": claude}
        env["HOME"] = str(tmp_path)
        with cluster(tmp_path / "cluster", env=env) as own:
            done = cli(tmp_path, "run", "--executor", "dask", "--scheduler", own.address, env=env, timeout=150)
        assert done.code == 0, done.stdout + done.stderr
        assert len(api.main_requests) == 8
    found = results(tmp_path)
    assert {task: meta["status"] for task, meta in found.items()} == dict.fromkeys("ABCDEFGH", "completed")
    assert all(meta["worker"] in ("w1", "w2") for meta in found.values())  # each result names its worker
    assert {task: view["worker"] for task, view in status_json(tmp_path).items()} == {
        task: meta["worker"] for task, meta in found.items()
    }
    assert all(meta["cost_usd"] > 0 and meta["session_id"] for meta in found.values())
    assert result_body(tmp_path, "H").strip() == "hello from the cluster"


def test_worker_resources_cap_a_backend_across_the_cluster(tmp_path: Path) -> None:
    # Each worker has 4 threads but one unit of `shell`: two shell attempts at once on the cluster.
    with cluster(tmp_path / "cluster", resources="shell=1") as own:
        write_plan(tmp_path, [Spec(f"T{n}", stamped("sleep 0.4")) for n in range(1, 7)], {"max_parallel": 6})
        done = cli(tmp_path, "run", "--executor", "dask", "--scheduler", own.address)
        assert done.code == 0, done.stdout + done.stderr
    assert peak_overlap(read_times(tmp_path).values()) == 2
    assert {meta["worker"] for meta in results(tmp_path).values()} == {"w1", "w2"}


# --- the worker's side alone: remote.supervise, in this process ---------------------------------


def _spec(script: str, **limits: Any) -> Any:
    from orchestrator.executors import remote

    given = {"timeout": None, "inactivity": None, "grace": 1.0, **limits}
    return remote.Spec("k-" + str(time.monotonic_ns()), ["bash", "-c", script], "/tmp", {}, None, **given)


def test_on_the_worker_a_leader_that_closes_its_pipes_is_waited_for_not_killed() -> None:
    from orchestrator.executors import remote

    ended = remote.supervise(_spec("exec >&- 2>&-; sleep 0.5; exit 3"), lambda batch: None, lambda: False)
    assert (ended.exit_code, ended.signal, ended.timed_out) == (3, None, None)
    assert ended.duration >= 0.5


def test_on_the_worker_limits_are_enforced_and_output_is_sent_while_it_runs() -> None:
    from orchestrator.executors import remote

    sent: list[tuple[float, bytes]] = []
    began = time.monotonic()
    script = "for i in 1 2 3 4 5 6; do echo line $i; sleep 0.25; done; sleep 30"
    ended = remote.supervise(
        _spec(script, inactivity=1.0), lambda batch: sent.extend((time.monotonic(), c) for _, c in batch), lambda: False
    )
    assert ended.timed_out == "inactivity" and ended.signal == signal.SIGTERM
    assert sent and sent[0][0] - began < 1.2  # the first lines came while it ran, not at its end
    text = b"".join(chunk for _, chunk in sent) + b"".join(chunk for _, chunk in ended.rest)
    assert text.decode().split() == [word for i in range(1, 7) for word in ("line", str(i))]
    ended = remote.supervise(_spec("sleep 30", timeout=0.5), lambda batch: None, lambda: False)
    assert ended.timed_out == "timeout" and ended.duration < 5
    asked = remote.supervise(_spec("sleep 30"), lambda batch: None, lambda: time.monotonic() - began > 4)
    assert asked.stopped and asked.signal == signal.SIGTERM


def test_on_the_worker_its_own_secrets_leave_it_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret of the worker's environment, which the runner does not know, never leaves the
    worker: the batches it sends hold ``[redacted: NAME]``, a line split across two reads too."""
    from orchestrator import redaction
    from orchestrator.executors import remote

    secret = "worker-own-" + "Qm4Zp8Lr2Xv6" * 2
    monkeypatch.setenv("WORKER_ONLY_TOKEN", secret)
    redaction.refresh()
    sent: list[bytes] = []
    script = (
        'printf "%s\\n" "$WORKER_ONLY_TOKEN" >&2; printf "half %s" "${WORKER_ONLY_TOKEN:0:15}"; sleep 0.3; '
        'echo "${WORKER_ONLY_TOKEN:15}"'
    )
    try:
        ended = remote.supervise(_spec(script), lambda batch: sent.extend(c for _, c in batch), lambda: False)
    finally:
        monkeypatch.delenv("WORKER_ONLY_TOKEN")
        redaction.refresh()
    text = b"".join(sent) + b"".join(chunk for _, chunk in ended.rest)
    assert ended.exit_code == 0 and secret.encode() not in text and secret[15:].encode() not in text, text
    assert text.count(b"[redacted: WORKER_ONLY_TOKEN]") == 2, text


def test_a_scheduler_gone_mid_run_fails_the_task_in_words_and_leaves_nothing_running(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T1", "echo $$ > pid; sleep 60; echo done", retries=1)])
    with cluster(tmp_path / "cluster") as own:
        runner = start(tmp_path, "--executor", "dask", "--scheduler", own.address)
        try:
            wait_until(lambda: (tmp_path / "pid").exists(), "T1 to start")
            assert own.scheduler is not None
            os.killpg(own.scheduler.pid, signal.SIGKILL)
            assert runner.wait(timeout=90) == 1  # not a hang
        finally:
            runner.stop_all()
        pid = int((tmp_path / "pid").read_text())
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), "the worker to stop the attempt", timeout=30)
    meta = results(tmp_path)["T1"]
    # Its attempt lost with the scheduler; its retry, when the run got to it before it ended,
    # could not reach it either: the reason names the scheduler either way.
    lost = "the connection to the Dask scheduler at" in meta["reason"]
    unreached = "could not start: the Dask scheduler at" in meta["reason"] and "did not answer" in meta["reason"]
    assert meta["status"] == "failed" and (lost or unreached), meta["reason"]
    assert "Traceback" not in runner.stderr.read_text()


def test_a_worker_that_cannot_import_the_orchestrator_is_told_before_anything_starts(tmp_path: Path) -> None:
    broken = tmp_path / "broken" / "orchestrator"  # what the worker's Python imports as the orchestrator
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text('raise ImportError("this worker\'s orchestrator is broken")\n')
    write_plan(tmp_path, [Spec("T1", "echo T1")])
    with cluster(tmp_path / "cluster", workers=("w1",)) as own:
        own.start_worker("w2", env={**os.environ, "PYTHONPATH": str(broken.parent)})
        done = cli(tmp_path, "run", "--executor", "dask", "--scheduler", own.address)
        assert done.code == 2 and done.stderr.strip().count("\n") == 0, done.stdout + done.stderr
        broken_line = """worker w2 cannot run the orchestrator: ImportError("this worker's orchestrator is broken")"""
        assert f"{broken_line} — nothing was started" in done.stderr
        assert "has no" not in done.stderr and "Traceback" not in done.stderr
        assert not (tmp_path / ".orchestrator" / "results").exists()
        done = cli(tmp_path, "doctor", "--executor", "dask", "--scheduler", own.address, "--json")
        assert done.code == 1 and json.loads(done.stdout)["cluster"]["problems"] == [broken_line]


def test_an_attempt_on_a_worker_is_given_the_workers_own_python(tmp_path: Path) -> None:
    python = venv_elsewhere(tmp_path / "elsewhere")  # the same packages, at another path
    write_plan(tmp_path, [Spec("T1", 'echo "$ORCHESTRATOR_PYTHON"')])
    with cluster(tmp_path / "cluster", workers=()) as own:
        own.start_worker("w1", python=python)
        done = cli(tmp_path, "run", "--executor", "dask", "--scheduler", own.address)
        assert done.code == 0, done.stdout + done.stderr
    assert result_body(tmp_path, "T1").strip() == str(python) != sys.executable  # the worker's, not the runner's


def test_a_worker_declaring_a_profile_as_a_resource_runs_its_tasks_alone_and_one_at_a_time(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec(f"T{n}", stamped("sleep 0.3")) for n in range(1, 5)], {"max_parallel": 4})
    assign(tmp_path, "reviewer")
    (tmp_path / ".orchestrator" / "agents").mkdir()
    (tmp_path / ".orchestrator" / "agents" / "reviewer.md").write_text("---\nname: reviewer\n---\nReview.\n")
    with cluster(tmp_path / "cluster", workers=()) as own:
        own.start_worker("w1", resources="reviewer=1")
        own.start_worker("w2")
        done = cli(tmp_path, "run", "--executor", "dask", "--scheduler", own.address)
        assert done.code == 0, done.stdout + done.stderr
    assert peak_overlap(read_times(tmp_path).values()) == 1
    assert {meta["worker"] for meta in results(tmp_path).values()} == {"w1"}
