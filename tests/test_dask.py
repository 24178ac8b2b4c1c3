"""``run --executor dask`` on this test worker's cluster (``two_workers``, tests/conftest.py): a
real ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, each worker in a directory
of its own; the runner is the real CLI in a subprocess. None of these tests kills a worker or
changes the cluster: those that do start one of their own, in test_dask_clusters.py.

The attempts' processes run under the workers (started by them, in sessions of their own), not
under the runner: what the tests look for in /proc after a Ctrl-C or a cancel is what a worker
left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dask_helpers import DAG, Cluster, assign, attempt_processes, have_dask, status_json
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
    wait_until,
    write_plan,
)

pytestmark = [pytest.mark.dask, pytest.mark.skipif(not have_dask(), reason="the dask extra is not installed")]


def test_a_dag_of_shell_tasks_runs_on_the_workers_and_gives_what_it_gives_locally(
    two_workers: Cluster, tmp_path: Path
) -> None:
    remote, local = tmp_path / "remote", tmp_path / "local"
    for project in (remote, local):
        write_plan(project, DAG)
    done = cli(remote, "run", "--executor", "dask", "--scheduler", two_workers.address)
    assert done.code == 0, done.stdout + done.stderr
    assert cli(local, "run").code == 0
    found = results(remote)
    assert {task: meta["status"] for task, meta in found.items()} == dict.fromkeys("ABCDEFGH", "completed")
    assert {meta["worker"] for meta in found.values()} <= {"w1", "w2"}  # each result names its worker
    assert {task: view["worker"] for task, view in status_json(remote).items()} == {
        task: meta["worker"] for task, meta in found.items()
    }
    assert all(view["worker"] is None for view in status_json(local).values())
    for task in "ABCDEFGH":  # the same results as locally, apart from the worker's name
        assert result_body(remote, task) == result_body(local, task)
    assert "to-stderr" in (remote / ".orchestrator" / "logs" / "agent-05.attempt-1.err").read_text()
    shown = cli_in_process(remote, "logs", "E").stdout.splitlines()[0]
    assert shown == f"E [Agent-05] attempt 1 on worker {found['E']['worker']}"
    assert json.loads(cli_in_process(remote, "logs", "E", "--json").stdout)["worker"] == found["E"]["worker"]
    assert "worker" not in json.loads(cli_in_process(local, "logs", "E", "--json").stdout)


def test_ctrl_c_of_the_runner_leaves_no_process_on_either_worker(two_workers: Cluster, tmp_path: Path) -> None:
    specs = [Spec(f"T{n}", 'echo $$ > "pid-$ORCHESTRATOR_TASK_ID"; sleep 60') for n in range(1, 5)]
    write_plan(tmp_path, specs, {"kill_grace": 2})
    runner = start(tmp_path, "--executor", "dask", "--scheduler", two_workers.address)
    try:
        wait_until(lambda: len(list(tmp_path.glob("pid-*"))) == 4, "four attempts to start")
        assert len(attempt_processes(tmp_path)) >= 4
        runner.kill(signal.SIGINT)
        assert runner.wait() == 130
        assert attempt_processes(tmp_path) == []  # stopped before the runner exited
    finally:
        runner.stop_all()
    assert {meta["status"] for meta in results(tmp_path).values()} == {"interrupted"}


def test_a_task_cancelled_mid_run_stops_its_remote_process(two_workers: Cluster, tmp_path: Path) -> None:
    specs = [Spec("T1", "echo $$ > pid; sleep 60"), Spec("T2", "while [ ! -e go ]; do sleep 0.1; done; echo T2")]
    write_plan(tmp_path, specs)
    runner = start(tmp_path, "--executor", "dask", "--scheduler", two_workers.address)
    try:
        wait_until(lambda: (tmp_path / "pid").exists(), "T1 to start")
        pid = int((tmp_path / "pid").read_text())
        assert cli(tmp_path, "cancel", "T1").code == 0
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), "T1's process to stop", timeout=15)
        (tmp_path / "go").touch()
        assert runner.wait() == 1  # a task cancelled: the plan is not done
    finally:
        runner.stop_all()
    found = results(tmp_path)
    assert found["T1"]["status"] == "cancelled" and found["T2"]["status"] == "completed"


def test_fail_fast_stops_the_remote_process_of_a_task_in_flight(two_workers: Cluster, tmp_path: Path) -> None:
    """T2 fails while T1 (a shell and its child) runs on a worker: the run stops T1 there, as a
    cancel does, and leaves no process of it on either worker."""
    specs = [
        Spec("T1", "echo $$ > pid; sleep 60 & wait"),
        Spec("T2", "while [ ! -e pid ]; do sleep 0.1; done; exit 1"),
        Spec("T3", "echo T3", deps=("T1",)),
    ]
    write_plan(tmp_path, specs, {"kill_grace": 2})
    runner = start(tmp_path, "--executor", "dask", "--scheduler", two_workers.address, "--fail-fast")
    try:
        code = runner.wait(timeout=30)  # not T1's 60 s
        assert attempt_processes(tmp_path) == []  # stopped before the runner exited
        assert not Path(f"/proc/{int((tmp_path / 'pid').read_text())}").exists()
    finally:
        runner.stop_all()
    assert code == 1, runner.stderr.read_text()
    found = results(tmp_path)
    assert (found["T1"]["status"], found["T1"]["reason"]) == ("cancelled", "stopped: T2 failed and the run fails fast")
    assert (found["T2"]["status"], found["T3"]["status"]) == ("failed", "skipped")


def test_a_runner_killed_with_sigkill_leaves_nothing_running_and_the_next_run_loses_nothing(
    two_workers: Cluster, tmp_path: Path
) -> None:
    specs = [
        Spec("T1", 'echo T1 >> runs.log; echo "T1 on $WORKER"'),
        Spec("T2", "echo T2 >> runs.log; echo $$ > pid; if [ ! -e second ]; then sleep 60; fi; echo T2", deps=("T1",)),
        Spec("T3", "echo T3 >> runs.log; echo T3", deps=("T2",)),
    ]
    write_plan(tmp_path, specs)
    runner = start(tmp_path, "--executor", "dask", "--scheduler", two_workers.address)
    try:
        wait_until(lambda: (tmp_path / "pid").exists(), "T2 to start")
        runner.kill(signal.SIGKILL)
        pid = int((tmp_path / "pid").read_text())
        # Its client gone, the scheduler cancels its tasks, and the worker stops what they run.
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), "the dead runner's attempt to stop", timeout=20)
        (tmp_path / "second").touch()
        again = cli(tmp_path, "run", "--executor", "dask", "--scheduler", two_workers.address)
        assert again.code == 0, again.stdout + again.stderr
    finally:
        runner.stop_all()
    found = results(tmp_path)
    assert {task: meta["status"] for task, meta in found.items()} == dict.fromkeys(("T1", "T2", "T3"), "completed")
    assert (tmp_path / "runs.log").read_text().split() == ["T1", "T2", "T2", "T3"]  # T1 not run again
    assert found["T2"]["attempts"] == 2


def test_doctor_shows_the_cluster_its_workers_resources_and_clis(two_workers: Cluster, tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T1", "echo T1")])
    done = cli(tmp_path, "doctor", "--executor", "dask", "--scheduler", two_workers.address, "--json")
    assert done.code == 0, done.stdout + done.stderr
    found = json.loads(done.stdout)["cluster"]
    assert found["scheduler"] == two_workers.address and found["problems"] == []
    assert [(w["name"], w["threads"], w["resources"]) for w in found["workers"]] == [
        ("w1", 4, {"shell": 4}),
        ("w2", 4, {"shell": 4}),
    ]
    text = cli(tmp_path, "doctor", "--executor", "dask", "--scheduler", two_workers.address).stdout
    assert f"cluster: {two_workers.address}: 2 workers" in text and "w1 (tcp://127.0.0.1:" in text
    codex = tmp_path / "codex"
    write_plan(codex, [Spec("T1", "do it")], {"backend": "codex"})
    done = cli(codex, "doctor", "--executor", "dask", "--scheduler", two_workers.address, "--json")
    assert done.code == 1 and json.loads(done.stdout)["cluster"]["problems"][0].startswith("worker w1 has no codex")
    gpu = tmp_path / "gpu"  # a profile asking for a resource no worker has
    write_plan(gpu, [Spec("T1", "echo T1")])
    assign(gpu, "gpu")
    (gpu / ".orchestrator" / "agents").mkdir()
    (gpu / ".orchestrator" / "agents" / "gpu.md").write_text("---\nresources: {gpu: 2}\n---\nUse it.\n")
    done = cli(gpu, "doctor", "--executor", "dask", "--scheduler", two_workers.address, "--json")
    assert done.code == 1 and json.loads(done.stdout)["cluster"]["problems"] == [
        "profile gpu asks for resource gpu=2 (needed by T1), which no worker has — "
        "the workers' resources: w1: shell=4; w2: shell=4"
    ]
    planned = tmp_path / "planned"  # no option: the plan's settings say which cluster
    write_plan(planned, [Spec("T1", "echo T1")], {"executor": "dask", "scheduler": two_workers.address})
    found = json.loads(cli(planned, "doctor", "--json").stdout)["cluster"]
    assert found["scheduler"] == two_workers.address and len(found["workers"]) == 2
    nobody = tmp_path / "nobody"
    write_plan(nobody, [Spec("T1", "echo T1")], {"executor": "dask", "scheduler": "tcp://127.0.0.1:9"})
    done = cli(nobody, "doctor", "--json", env={"ORCHESTRATOR_DASK_TIMEOUT": "1"})
    [problem] = json.loads(done.stdout)["cluster"]["problems"]
    assert done.code == 1 and "tcp://127.0.0.1:9 did not answer within 1.0s" in problem


def test_the_plan_settings_choose_the_cluster_and_the_variable_gives_the_scheduler(
    two_workers: Cluster, tmp_path: Path
) -> None:
    write_plan(tmp_path, [Spec("T1", "echo one")], {"executor": "dask", "scheduler": two_workers.address})
    done = cli(tmp_path, "run")
    assert done.code == 0
    worker = results(tmp_path)["T1"]["worker"]
    assert worker in ("w1", "w2") and f"✅ T1 [Agent-01] completed on {worker} in " in done.stdout
    other = tmp_path / "other"
    write_plan(other, [Spec("T1", "echo one")], {"executor": "dask"})
    assert cli(other, "run", env={"ORCHESTRATOR_DASK_SCHEDULER": two_workers.address}).code == 0
    assert results(other)["T1"]["worker"] in ("w1", "w2")
    assert cli(other, "run", "--rerun", "T1", "--executor", "local").code == 0  # the option wins
    assert results(other)["T1"].get("worker") is None


def test_status_names_the_worker_while_the_task_runs_and_report_after(two_workers: Cluster, tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T1", "while [ ! -e go ]; do sleep 0.05; done; echo T1")])  # silent until told
    runner = start(tmp_path, "--executor", "dask", "--scheduler", two_workers.address)
    try:
        journal = tmp_path / ".orchestrator" / "state" / "attempts.jsonl"
        wait_until(
            lambda: journal.exists() and b'"worker"' in journal.read_bytes(), "the runner to learn which worker runs T1"
        )
        view = status_json(tmp_path)["T1"]
        assert view["status"] == "running" and view["worker"] in ("w1", "w2")
        assert f"Running on {view['worker']}" in cli_in_process(tmp_path, "status").stdout
        shown = cli_in_process(tmp_path, "logs", "T1").stdout.splitlines()[0]  # silent so far: no log file yet
        assert shown == f"T1 [Agent-01] attempt 1 on worker {view['worker']}", shown
        (tmp_path / "go").touch()
        assert runner.wait() == 0, runner.stderr.read_text()
    finally:
        runner.stop_all()
    assert results(tmp_path)["T1"]["worker"] == view["worker"]
    figures = json.loads(cli_in_process(tmp_path, "report", "--format", "json").stdout)
    assert [task["worker"] for task in figures["tasks"]] == [view["worker"]]
    assert f"| completed on {view['worker']} |" in cli_in_process(tmp_path, "report").stdout


# --- no shared filesystem: files travel with the attempt, work comes back --------------------------


def git(project: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_without_a_shared_filesystem_inputs_travel_and_written_files_come_back(
    two_workers: Cluster, tmp_path: Path
) -> None:
    specs = [
        Spec("S1", 'pwd; echo made > out.txt; mkdir -p sub; printf "#!/bin/sh\\n" > sub/run.sh; chmod +x sub/run.sh'),
        Spec("S2", 'cat "$ORCHESTRATOR_INPUTS_DIR/S1.md"; grep -c "^worker: " "$(head -1 "$ORCHESTRATOR_INPUTS_FILE")"',
             deps=("S1",)),
    ]  # fmt: skip
    write_plan(tmp_path, specs, {"shared_filesystem": False})
    done = cli(tmp_path, "run", "--executor", "dask", "--scheduler", two_workers.address)
    assert done.code == 0, done.stdout + done.stderr
    ran_in = result_body(tmp_path, "S1").strip()
    assert ran_in.startswith(str(two_workers.root)) and not ran_in.startswith(str(tmp_path / ".orchestrator"))
    assert (tmp_path / "out.txt").read_text() == "made\n"  # what it wrote came back to the project
    assert os.access(tmp_path / "sub" / "run.sh", os.X_OK)
    assert result_body(tmp_path, "S2").split() == [ran_in, "1"]  # its inputs came with it
    assert not list(two_workers.root.rglob("orchestrator-attempt-*"))  # nothing left on the workers


def test_without_a_shared_filesystem_worktree_tasks_work_on_bundles_and_their_branches_merge(
    two_workers: Cluster, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    git(project, "init", "-q", "-b", "main")
    (project / "a.txt").write_text("a\n")
    (project / "b.txt").write_text("b\n")
    git(project, "add", "-A")
    git(project, "-c", "user.name=Me", "-c", "user.email=me@example.org", "commit", "-q", "-m", "start")
    (project / ".git" / "info" / "exclude").write_text(".orchestrator/\n")
    specs = [
        Spec("T1", "pwd; echo 'from T1' >> a.txt"),
        Spec("T2", "echo 'from T2' >> b.txt"),
        Spec("T3", "cat a.txt b.txt > seen.txt", deps=("T1", "T2")),
    ]
    write_plan(project, specs, {"isolation": "worktree", "shared_filesystem": False})
    done = cli(project, "run", "--executor", "dask", "--scheduler", two_workers.address)
    assert done.code == 0, done.stdout + done.stderr
    found = results(project)
    assert result_body(project, "T1").strip().startswith(str(two_workers.root))  # a checkout on the worker
    integration = "orchestrator/integration"
    assert git(project, "show", f"{integration}:seen.txt") == "a\nfrom T1\nb\nfrom T2\n"
    for task in ("T1", "T2", "T3"):  # each branch fetched back and merged, as a local worktree task's
        assert found[task]["merge"].startswith(f"merged into {integration}"), found[task]
        assert found[task]["commit"] == git(project, "rev-parse", f"{integration}-{task}").strip()
    assert git(project, "log", "-1", "--format=%s", f"{integration}-T1").strip() == "T1: Task T1 (attempt 1)"
    assert git(project, "status", "--porcelain") == ""  # the person's checkout untouched


# --- what the check before a run asks of each worker --------------------------------------------


def test_a_worker_that_cannot_see_the_project_stops_the_run_before_it_starts(
    two_workers: Cluster, tmp_path: Path
) -> None:
    # The runner runs in a mount namespace of its own, where the project is on a tmpfs that only
    # it sees: the workers (outside) find nothing at its path, as a machine without the share.
    if subprocess.run(["unshare", "-rm", "true"], capture_output=True, check=False).returncode != 0:
        pytest.skip("no mount namespace can be made here (unshare -rm)")
    hidden, source, out = tmp_path / "hidden", tmp_path / "source", tmp_path / "out"
    hidden.mkdir()
    out.mkdir()
    write_plan(source / "project", [Spec("T1", "echo T1")])
    write_plan(source / "unshared", [Spec("T1", "echo T1")], {"shared_filesystem": False})
    project = hidden / "project"
    script = (
        'mount -t tmpfs none "$1" && cp -r "$2"/. "$1" && cd "$1/project" || exit 99\n'
        '"$3" -m orchestrator run --executor dask --scheduler "$4" > "$5/run.out" 2> "$5/run.err"\n'
        'echo $? > "$5/run.code"\n'
        '"$3" -m orchestrator doctor --executor dask --scheduler "$4" --json > "$5/doctor.json"\n'
        'echo $? > "$5/doctor.code"\n'
        'ls -A .orchestrator > "$5/written"\n'
        'cd "$1/unshared" && "$3" -m orchestrator run --executor dask --scheduler "$4" > "$5/unshared.out" 2>&1\n'
        'echo $? > "$5/unshared.code"\n'
    )
    argv = ["unshare", "-rm", "sh", "-c", script, "sh", str(hidden), str(source), sys.executable,
            two_workers.address, str(out)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not project.exists()  # (out here, as the workers see it)
    error = (out / "run.err").read_text()
    assert (out / "run.code").read_text().strip() == "2" and error.strip().count("\n") == 0, error
    seen = f"cannot see {project}: set shared_filesystem: false, or mount it at the same path"
    assert f"worker w1 {seen}; worker w2 {seen}" in error and "Traceback" not in error
    assert (out / "written").read_text().split() == ["master_plan.md"]  # nothing written
    assert (out / "doctor.code").read_text().strip() == "1"
    problems = json.loads((out / "doctor.json").read_text())["cluster"]["problems"]
    assert problems == [f"worker w1 {seen}", f"worker w2 {seen}"]
    # Without a shared filesystem the workers need not see it: the same plan so runs.
    assert (out / "unshared.code").read_text().strip() == "0", (out / "unshared.out").read_text()


def test_a_worker_on_another_version_of_the_orchestrator_is_told(two_workers: Cluster, tmp_path: Path) -> None:
    from orchestrator import __version__
    from orchestrator.run.checks.cluster import survey

    workers, problems = survey(two_workers.address, [], directories=[str(tmp_path)])
    assert problems == [] and [w.version for w in workers] == [__version__, __version__]
    workers, problems = survey(two_workers.address, [], directories=[str(tmp_path)], version="0.0.1-runner")
    assert problems == [
        f"worker {name} runs orchestrator {__version__}, this runner 0.0.1-runner: "
        "install the same version on every worker"
        for name in ("w1", "w2")
    ]
    text = cli(tmp_path, "doctor", "--executor", "dask", "--scheduler", two_workers.address).stdout
    assert "w1 (tcp://127.0.0.1:" in text and f"4 threads, resources shell=4, orchestrator {__version__}\n" in text


def test_a_run_leaves_no_claim_on_the_scheduler(two_workers: Cluster, tmp_path: Path) -> None:
    from distributed import Client

    def claims(dask_scheduler: Any = None) -> list[str]:
        return sorted(str(name) for name in dask_scheduler.extensions["events"]._events)

    write_plan(tmp_path, [Spec(f"CLAIM{n}", f"echo {n}") for n in range(1, 5)] + [Spec("CLAIMX", "exit 3")])
    done = cli(tmp_path, "run", "--executor", "dask", "--scheduler", two_workers.address)
    assert done.code == 1 and results(tmp_path)["CLAIM1"]["worker"] in ("w1", "w2"), done.stdout + done.stderr
    with Client(two_workers.address, timeout=10) as client:  # type: ignore[no-untyped-call]
        left = client.run_on_scheduler(claims)
    assert [name for name in left if name.startswith("orchestrator-CLAIM")] == []


# --- limits and stops, as locally, on the workers -----------------------------------------------


def test_a_task_timeout_ends_the_attempt_on_its_worker(two_workers: Cluster, tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T1", "echo $$ > pid; sleep 60 & wait")], {"timeout": 2})
    done = cli(tmp_path, "run", "--executor", "dask", "--scheduler", two_workers.address)
    assert done.code == 1, done.stdout + done.stderr
    assert attempt_processes(tmp_path) == []  # the shell and its sleep, gone with the attempt
    meta = results(tmp_path)["T1"]
    assert meta["status"] == "failed" and meta["worker"] in ("w1", "w2")
    assert "timed out after 2s (wall-clock limit)" in meta["reason"], meta


def test_a_task_that_ignores_sigterm_is_killed_after_the_grace_when_cancelled(
    two_workers: Cluster, tmp_path: Path
) -> None:
    script = "trap 'echo TERM >> trapped' TERM; echo $$ > pid; while true; do sleep 0.1; done"
    write_plan(tmp_path, [Spec("T1", script)], {"kill_grace": 2})
    runner = start(tmp_path, "--executor", "dask", "--scheduler", two_workers.address)
    try:
        wait_until(lambda: (tmp_path / "pid").exists(), "T1 to start")
        assert cli(tmp_path, "cancel", "T1").code == 0
        assert runner.wait() == 1
        assert attempt_processes(tmp_path) == []  # SIGKILLed: it would not go on SIGTERM
    finally:
        runner.stop_all()
    assert "TERM" in (tmp_path / "trapped").read_text()  # it was asked first, and went on
    assert results(tmp_path)["T1"]["status"] == "cancelled"


def test_max_parallel_caps_the_attempts_on_the_whole_cluster(two_workers: Cluster, tmp_path: Path) -> None:
    # 8 threads and 8 units of `shell` on the cluster: only the plan's max_parallel holds them to 2.
    write_plan(tmp_path, [Spec(f"T{n}", stamped("sleep 0.3")) for n in range(1, 7)], {"max_parallel": 2})
    done = cli(tmp_path, "run", "--executor", "dask", "--scheduler", two_workers.address)
    assert done.code == 0, done.stdout + done.stderr
    assert peak_overlap(read_times(tmp_path).values()) <= 2


def test_the_cost_limit_stops_the_remote_attempt_in_flight(
    two_workers: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A's cost reaches the limit while B (a shell and its child) runs on a worker: the run
    stops B there, as a cancel does, before it ends (the runner in this process, for a backend
    that reports a cost: the attempts' processes still run on the workers)."""
    from orchestrator import backends as backends_module
    from orchestrator.backends.base import AgentResult, Job, Observer
    from orchestrator.backends.shell import ShellBackend
    from orchestrator.executors.base import ProcessRun
    from orchestrator.executors.dask import DaskExecutor
    from orchestrator.output.reporter import Reporter
    from orchestrator.run.runner import Runner
    from orchestrator.state.workspace import Workspace

    costs = {"A": 0.6, "B": 0.05}

    class Costly(ShellBackend):
        name = "costly-dask-test"

        def interpret(self, job: Job, run: ProcessRun, stdout: Path, stderr: Path, observer: Observer) -> AgentResult:
            return AgentResult(run.ok, text="ok", exit_code=run.exit_code, cost_usd=costs[job.task.id])

    monkeypatch.setitem(backends_module._REGISTRY, Costly.name, Costly)
    specs = [
        Spec("A", "while [ ! -e child.pid ]; do sleep 0.05; done"),
        Spec("B", "echo $$ > long.pid; sleep 60 & echo $! > child.tmp; mv child.tmp child.pid; wait"),
    ]
    write_plan(tmp_path, specs, {"max_parallel": 2, "backend": Costly.name, "max_cost": 0.5, "kill_grace": 1,
                                 "at_budget": "stop"})  # fmt: skip
    try:
        summary = Runner(Workspace.find(tmp_path), reporter=Reporter(),
                         executor=DaskExecutor(two_workers.address)).run()  # fmt: skip
        assert attempt_processes(tmp_path) == []  # stopped before the run ended
    finally:
        kill_attempts(tmp_path)
    assert summary.stopped is None and summary.exit_code == 1  # (B stopped for the budget: the run waited, then ended)
    found = results(tmp_path)
    why = "stopped: the run reached its cost limit of $0.50"
    assert (found["A"]["status"], found["B"]["status"], found["B"]["reason"]) == ("completed", "cancelled", why)


def test_a_runs_client_sends_to_the_scheduler_at_once_and_takes_dasks_own_setting_for_direct_gathers(
    two_workers: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dask's client holds a message up to 10 ms to batch it: a run's, which sends an attempt's
    submit as one, holds it at most ``SEND_INTERVAL`` (bench/RESULTS.md, W9), and again after a
    client lost its scheduler is made anew; whether ends come from the workers directly is the
    user's Dask setting, not ours."""
    import anyio
    import dask

    from orchestrator.executors.dask import DaskExecutor
    from orchestrator.executors.daskscheduler import SEND_INTERVAL

    async def made() -> tuple[float, float, object, object]:
        executor = DaskExecutor(two_workers.address)
        try:
            client = await executor.client()
            first = client.scheduler_comm.interval
            client.scheduler_comm.interval = 0.01  # as Dask makes it again on a reconnect
            again = (await executor.client()).scheduler_comm.interval
            with dask.config.set({"distributed.client.direct-to-workers": True}):
                other = DaskExecutor(two_workers.address)
                direct = (await other.client()).direct_to_workers
                await other.close()
            return first, again, client.direct_to_workers, direct
        finally:
            await executor.close()

    first, again, default, direct = anyio.run(made)
    assert first <= SEND_INTERVAL and again <= SEND_INTERVAL
    assert (default, direct) == (None, True)


def test_a_row_run_per_item_runs_its_instances_on_the_workers(two_workers: Cluster, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / ".orchestrator").mkdir(parents=True)
    (project / ".orchestrator" / "master_plan.md").write_text(
        "---\nbackend: shell\nmax_parallel: 4\n---\n# Plan\n\n## Tasks\n"
        "| Task ID | Description | Dependencies | Each | Command |\n|---|---|---|---|---|\n"
        "| T-01 | per item | None | a, b c, $(d) | `printf '%s' {{ item }}` |\n"
    )
    done = cli(project, "run", "--executor", "dask", "--scheduler", two_workers.address)
    assert done.code == 0, done.stdout + done.stderr
    found = results(project)
    assert {found[f"T-01[{n}]"]["worker"] for n in (1, 2, 3)} <= {"w1", "w2"}
    assert [result_body(project, f"T-01[{n}]") for n in (1, 2, 3)] == ["a", "b c", "$(d)"]
    assert found["T-01"]["status"] == "completed"


def test_a_secret_a_task_prints_on_a_worker_is_redacted_in_what_the_runner_writes(
    two_workers: Cluster, tmp_path: Path
) -> None:
    """Its output comes back in batches (``executors/daskstream``): a token split across two
    batches, a key's block and a secret-named variable of the plan's ``env`` are written as
    ``[redacted: NAME]`` in the attempt's logs, its result and the events (secrets never written)."""
    token = "ghp_" + "Zq7RmP2xWk9L" * 3
    secret = "worker-side-secret-9f8e7d6c"
    key = "-----BEGIN PRIVATE KEY-----\n" + "\n".join(["MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" * 2] * 3)
    (tmp_path / "printed.txt").write_text(f"{token}\n{key}\n-----END PRIVATE KEY-----\n", encoding="utf-8")
    script = (
        'cat "$PRINTED"; printf \'%s\\n\' "$API_SECRET" >&2\n'
        'T=$(head -n 1 "$PRINTED"); printf \'split: %s\' "${T:0:12}"; sleep 0.5; printf \'%s end\\n\' "${T:12}"'
    )
    write_plan(
        tmp_path, [Spec("T-01", script)], {"env": {"API_SECRET": secret, "PRINTED": str(tmp_path / "printed.txt")}}
    )
    done = cli(tmp_path, "run", "--executor", "dask", "--scheduler", two_workers.address)
    assert done.code == 0, done.stdout + done.stderr
    workspace = tmp_path / ".orchestrator"
    written = [
        *(workspace / "logs").iterdir(),
        *(workspace / "results").iterdir(),
        workspace / "state" / "events.jsonl",
    ]
    for path in written:
        data = path.read_text(encoding="utf-8")
        assert token not in data and token[12:] not in data and secret not in data and "MIIEvQIB" not in data, path
    out = (workspace / "logs" / "agent-01.attempt-1.out").read_text(encoding="utf-8")
    assert out == "[redacted: github token]\n[redacted: private key]\nsplit: [redacted: github token] end\n"
    assert (workspace / "logs" / "agent-01.attempt-1.err").read_text(encoding="utf-8") == "[redacted: API_SECRET]\n"
