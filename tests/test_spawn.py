"""``orchestrator spawn``: one task added and run now, as ``docker run`` starts a container.

Real runs of the real CLI in real workspaces: spawn with no run going on (it runs the task alone
and ends with it), spawn joining a run going on (one run, the task in it), ``--detach`` (a real
background runner in its own session), and Ctrl-C of a spawn in the foreground (nothing left).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from runner_helpers import (
    CLI,
    HANG_GUARD,
    Spec,
    cli,
    cli_in_process,
    pid_gone,
    results,
    start,
    wait_gone,
    wait_until,
    workspace,
    write_plan,
)

from orchestrator.state import events

WAIT_FOR_GO = "while [ ! -f go ]; do sleep 0.05; done"


def _events(project: Path) -> list[dict[str, object]]:
    return events.read_all(workspace(project) / "state" / "events.jsonl")


def _plan(project: Path) -> None:
    """A plan whose T-01 is done already, as a workspace a person has worked in has them."""
    write_plan(project, [Spec("T-01", "echo one")])
    assert cli(project, "run").code == 0


def test_spawn_with_no_run_going_on_runs_the_task_alone_and_prints_its_answer(tmp_path: Path) -> None:
    _plan(tmp_path)
    done = cli(tmp_path, "spawn", "Say hello", "--command", "echo hello from the task", "--label", "greet")
    assert done.code == 0, done.stderr
    assert done.stdout == "hello from the task\n"  # the answer alone on stdout, as `output` prints it
    assert "➕ T-02 added to .orchestrator/master_plan.md; running it now" in done.stderr
    assert "✅ T-02 [Agent-02] completed" in done.stderr  # what happened, on stderr
    runs = [e for e in _events(tmp_path) if e["event"] == "run_started"]
    assert len(runs) == 2 and runs[-1]["to_run"] == 1  # a run of its own, of that task alone
    row = next(line for line in (workspace(tmp_path) / "master_plan.md").read_text().splitlines() if "T-02" in line)
    assert "Say hello" in row and "greet" in row  # a row as `add` writes it; the label in the Tags column
    assert results(tmp_path)["T-02"]["status"] == "completed"
    # `history --label` finds it, `list --label` too; a label no task has finds nothing.
    history = json.loads(cli_in_process(tmp_path, "history", "--label", "greet", "--json").stdout)
    assert [(a["task"], a["outcome"]) for a in history["attempts"]] == [("T-02", "completed")]
    assert "T-02 attempt 1: completed" in cli_in_process(tmp_path, "history", "--label", "greet").stdout
    assert [
        t["id"] for t in json.loads(cli_in_process(tmp_path, "list", "--label", "greet", "--json").stdout)["tasks"]
    ] == ["T-02"]
    assert (
        cli_in_process(tmp_path, "history", "--label", "nothing").stdout == "no attempt recorded yet labelled nothing\n"
    )


def test_a_failing_spawn_exits_1_says_why_on_stderr_and_keeps_its_logs(tmp_path: Path) -> None:
    _plan(tmp_path)
    failed = cli(tmp_path, "spawn", "--json", "Break", "--command", "echo about to fail; exit 3", "--retries", "0")
    assert failed.code == 1, failed.stderr
    answer = json.loads(failed.stdout)
    assert answer["ok"] is False and answer["id"] == "T-02" and answer["status"] == "failed"
    assert answer["exit_code"] == 1 and answer["output"] is None and answer["joined"] is False
    assert answer["reason"] == "exit code 3" and answer["task"]["status"] == "failed"
    text = cli(tmp_path, "spawn", "Break again", "--command", "exit 4", "--retries", "0")
    assert text.code == 1 and text.stdout == ""
    assert "T-03 failed: exit code 4 — `orchestrator logs T-03` shows what it printed" in text.stderr
    logs = cli_in_process(tmp_path, "logs", "T-02")
    assert logs.code == 0 and "about to fail" in logs.stdout


def test_spawn_joins_the_run_going_on_and_ends_when_its_task_does(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", f"{WAIT_FOR_GO}; echo one")])
    runner = start(tmp_path)
    try:
        wait_until(lambda: any(e["event"] == "task_started" for e in _events(tmp_path)), "T-01 to start")
        joined = cli(tmp_path, "spawn", "--json", "Meanwhile", "--command", "echo done meanwhile")
        assert joined.code == 0, joined.stderr
        answer = json.loads(joined.stdout)
        assert answer["joined"] is True and answer["output"] == "done meanwhile" and answer["status"] == "completed"
        assert runner.process.poll() is None  # the long task still runs: spawn ended with its own task
        text = cli(tmp_path, "spawn", "And another", "--command", "echo another")
        assert (text.code, text.stdout) == (0, "another\n")
        assert "the run going on (pid" in text.stderr and "✅ T-03 [Agent-03] completed" in text.stderr
    finally:
        (tmp_path / "go").touch()
        code = runner.wait()
        runner.cleanup()
    assert code == 0, runner.stderr.read_text()
    every = _events(tmp_path)
    started = [e for e in every if e["event"] == "run_started"]
    assert len(started) == 1  # no run of its own: the run going on ran both
    ran_in = {e["task"]: e["run"] for e in every if e["event"] == "task_completed"}
    assert ran_in == {"T-01": started[0]["run"], "T-02": started[0]["run"], "T-03": started[0]["run"]}


def test_detach_prints_the_id_and_a_background_runner_in_its_own_session_runs_the_task(tmp_path: Path) -> None:
    _plan(tmp_path)
    script = f'echo "$PPID" > runner.pid; {WAIT_FOR_GO}; echo detached answer'
    began = time.monotonic()
    detached = cli(tmp_path, "spawn", "--detach", "In the background", "--command", script, "--label", "bg")
    assert detached.code == 0, detached.stderr
    assert detached.stdout == "T-02\n"  # the id alone, for ID=$(orchestrator spawn -d ...)
    assert "runs in the background (its lines: .orchestrator/logs/agent-02.spawn.log)" in detached.stderr
    wait_until(lambda: (tmp_path / "runner.pid").exists() and (tmp_path / "runner.pid").read_text().strip() != "",
               "the background runner to start the task")  # fmt: skip
    runner = int((tmp_path / "runner.pid").read_text())
    try:
        assert time.monotonic() - began < HANG_GUARD
        assert "T-02" not in results(tmp_path)  # spawn returned while its task still waits
        stat = Path(f"/proc/{runner}/stat").read_text().rsplit(")", 1)[1].split()
        assert int(stat[3]) == runner and int(stat[3]) != os.getsid(0)  # a session of its own
        assert int(stat[4]) == 0  # no controlling terminal
        listed = json.loads(cli_in_process(tmp_path, "list", "--json", "--label", "bg").stdout)["tasks"]
        assert [(t["id"], t["status"]) for t in listed] == [("T-02", "running")]
    finally:
        (tmp_path / "go").touch()
    wait_until(lambda: results(tmp_path).get("T-02", {}).get("status") == "completed", "the task to complete")
    assert wait_gone(runner), "the background runner did not end with its task"
    assert cli_in_process(tmp_path, "output", "T-02").stdout == "detached answer\n"
    log = (workspace(tmp_path) / "logs" / "agent-02.spawn.log").read_text()
    assert "✅ T-02 [Agent-02] completed" in log and "detached answer" in log


def test_detach_beside_a_run_going_on_leaves_the_task_to_that_run(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", f"{WAIT_FOR_GO}; echo one")])
    runner = start(tmp_path)
    try:
        wait_until(lambda: any(e["event"] == "task_started" for e in _events(tmp_path)), "T-01 to start")
        detached = cli(tmp_path, "spawn", "-d", "--json", "Joined", "--command", "echo joined")
        assert detached.code == 0, detached.stderr
        answer = json.loads(detached.stdout)
        assert answer["joined"] is True and answer["log"] is None and answer["run"] is not None
        wait_until(lambda: results(tmp_path).get("T-02", {}).get("status") == "completed", "the joined task")
    finally:
        (tmp_path / "go").touch()
        code = runner.wait()
        runner.cleanup()
    assert code == 0
    assert len([e for e in _events(tmp_path) if e["event"] == "run_started"]) == 1


def test_ctrl_c_of_a_spawn_in_the_foreground_stops_its_task_and_leaves_no_process(tmp_path: Path) -> None:
    _plan(tmp_path)
    script = "echo $$ > task.pid; sleep 300 & echo $! > child.pid; wait"
    spawn = subprocess.Popen(
        [*CLI, "spawn", "Sleep a long time", "--command", script],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        wait_until(lambda: (tmp_path / "child.pid").exists() and (tmp_path / "child.pid").read_text().strip() != "",
                   "the task to start")  # fmt: skip
        pids = [int((tmp_path / name).read_text()) for name in ("task.pid", "child.pid")]
        os.killpg(spawn.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the foreground group
        out, err = spawn.communicate(timeout=HANG_GUARD)
    finally:
        if spawn.poll() is None:
            spawn.kill()
            spawn.wait()
    assert spawn.returncode == 130, err.decode()
    assert out == b""
    assert all(pid_gone(pid) for pid in pids)
    assert results(tmp_path)["T-02"]["status"] == "interrupted"


def test_ctrl_c_of_a_spawn_following_a_run_going_on_cancels_its_task_there(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", f"{WAIT_FOR_GO}; echo one")])
    runner = start(tmp_path)
    try:
        wait_until(lambda: any(e["event"] == "task_started" for e in _events(tmp_path)), "T-01 to start")
        spawn = subprocess.Popen(
            [*CLI, "spawn", "Joined and stopped", "--command", "echo $$ > task.pid; sleep 300"],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        wait_until(lambda: (tmp_path / "task.pid").exists() and (tmp_path / "task.pid").read_text().strip() != "",
                   "the joined task to start")  # fmt: skip
        os.killpg(spawn.pid, signal.SIGINT)
        _, err = spawn.communicate(timeout=HANG_GUARD)
        assert spawn.returncode == 130, err.decode()
        assert "⏹️ T-02 cancelled in the run going on" in err.decode()
        assert wait_gone(int((tmp_path / "task.pid").read_text()))
        assert runner.process.poll() is None  # the run goes on with its own task
    finally:
        (tmp_path / "go").touch()
        code = runner.wait()
        runner.cleanup()
    assert code == 1  # the run had a task cancelled
    assert results(tmp_path)["T-02"]["status"] == "cancelled" and results(tmp_path)["T-01"]["status"] == "completed"


def test_spawn_refuses_what_it_cannot_start_and_writes_nothing(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "exit 1")])
    plan_file = workspace(tmp_path) / "master_plan.md"
    before = plan_file.read_text()
    after = cli(tmp_path, "spawn", "Needs T-01", "--after", "T-01", "--command", "true")
    assert after.code == 2 and after.stdout == ""
    assert after.stderr.startswith("--after: T-01 has not completed, and no run is going on to run it")
    empty = cli(tmp_path, "spawn", "", "--command", "true")
    assert empty.code == 2 and "the description is empty" in empty.stderr
    none = cli(tmp_path, "spawn", "--command", "true")
    assert none.code == 2 and 'too few arguments: orchestrator spawn [DIR] "<prompt>"' in none.stderr
    heading = cli(tmp_path, "spawn", "Line one\n## not a heading here\nmore", "--command", "true")
    assert heading.code == 2 and "the prompt's line 2: a '## ' heading" in heading.stderr
    assert plan_file.read_text() == before
    assert not any(e["event"] in {"task_added", "task_spawned"} for e in _events(tmp_path))


def test_a_prompt_of_several_lines_is_the_tasks_instructions_under_a_title_from_its_first(tmp_path: Path) -> None:
    _plan(tmp_path)
    prompt = "Count the words\n\nThen say how many there are,\nin one line."
    done = cli(tmp_path, "spawn", prompt, "--command", "echo counted")
    assert done.code == 0, done.stderr
    listed = json.loads(cli_in_process(tmp_path, "list", "--json").stdout)["tasks"]
    assert listed[-1]["name"] == "Count the words"
    brief = (workspace(tmp_path) / "agent_tasks" / "agent-02.md").read_text()
    assert "Then say how many there are,\nin one line." in brief
