"""``orchestrator spawn``: one task added and run now, as ``docker run`` starts a container.

Real runs of the real CLI in real workspaces: spawn with no run going on (it runs the task alone
and ends with it), spawn joining a run going on (one run, the task in it), ``--detach`` (a real
background runner in its own session), and Ctrl-C of a spawn in the foreground (nothing left):
with a run going on, at each step of joining it, each forced (the spawn waiting for a lock the
test holds, its write parked by a fake, the run stopped with SIGSTOP), not left to timing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
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


_CANCELLED = "⏹️ T-02 cancelled in the run going on"  # the run answered within the spawn's second
_ASKED = "✋ cancel of T-02 asked of the run going on"  # ...or was left the request
# `orchestrator ARGS` with one function parked at its first call, before or after it runs (the
# environment's PARK_BEFORE or PARK_AFTER, `module:name`): `parked` written, then held until a
# `go-on` file is there.
PARKED = (
    sys.executable,
    "-c",
    """
import importlib, os, time
from pathlib import Path
from orchestrator.cli.main import entry

after = "PARK_AFTER" in os.environ
module, name = os.environ["PARK_AFTER" if after else "PARK_BEFORE"].split(":")
module = importlib.import_module(module)
real = getattr(module, name)

def park():
    Path("parked").touch()
    while not Path("go-on").exists():
        time.sleep(0.01)

def parked(*args, **kwargs):
    setattr(module, name, real)
    if not after:
        park()
    done = real(*args, **kwargs)
    if after:
        park()
    return done

setattr(module, name, parked)
entry()
""",
)


# A terminal's foreground job has SIGINT at its default; a test run may not: a suite started in
# the background by a script ignores it, its children inherit that, and Python then never makes
# SIGINT a KeyboardInterrupt (how issue 56's spawn hung). Each spawn is started with it restored.
FOREGROUND = (
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])",
)


Spawner = Callable[..., "subprocess.Popen[bytes]"]


@pytest.fixture
def spawner(tmp_path: Path) -> Iterator[Spawner]:
    """``spawner(*WORDS, program=CLI, park=None)``: ``spawn WORDS`` started in ``tmp_path`` as a
    terminal's foreground job (its own process group, SIGINT at its default), its output in files
    (``_ended`` waits for the process, not for every holder of a pipe to close it); ``park``: run
    by ``PARKED``, with that in its environment. One still running at the end is killed."""
    started: list[subprocess.Popen[bytes]] = []

    def spawn(*words: str, program: Sequence[str] = CLI, park: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        command = [*FOREGROUND, *(PARKED if park else program), "spawn", *words]
        env = {**os.environ, **(park or {})}
        with (tmp_path / "spawn.out").open("wb") as out, (tmp_path / "spawn.err").open("wb") as err:
            started.append(subprocess.Popen(command, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=err, start_new_session=True))  # fmt: skip
        return started[-1]

    yield spawn
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _ended(spawn: subprocess.Popen[bytes], project: Path) -> tuple[int, str]:
    """The spawn's exit code and stderr, once it has exited."""
    code = spawn.wait(timeout=HANG_GUARD)
    assert (project / "spawn.out").read_bytes() == b""
    return code, (project / "spawn.err").read_text(encoding="utf-8")


def _pid_in(path: Path, what: str) -> int:
    wait_until(lambda: path.exists() and path.read_text().strip() != "", what)
    return int(path.read_text())


def _wait_started(project: Path, task: str) -> None:
    wait_until(lambda: any(e["event"] == "task_started" and e["task"] == task for e in _events(project)),
               f"{task} to start")  # fmt: skip


def _wait_status(project: Path, task: str, status: str) -> None:
    wait_until(lambda: results(project).get(task, {}).get("status") == status, f"{task} {status}")


def _wait_blocks_settled(project: Path) -> None:
    """Until the run's status blocks show T-01 running: it has nothing new to write in the plan."""
    plan_file = workspace(project) / "master_plan.md"
    running = re.compile(r"^\| T-01 \| Agent-01 \| \S+ Running", re.M)
    wait_until(lambda: running.search(plan_file.read_text()) is not None, "the status blocks to show T-01 running")


def _waits_for_a_lock(pid: int) -> bool:
    """Whether process ``pid`` waits for an flock (a ``->`` line of /proc/locks names it)."""
    return any(
        line.split("->", 1)[1].split()[3] == str(pid)
        for line in Path("/proc/locks").read_text().splitlines()
        if "->" in line
    )


def _events(project: Path) -> list[dict[str, object]]:
    return [e.as_line() for e in events.read_all(workspace(project) / "state" / "events.jsonl")]


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
        assert answer["joined"] is True and answer["output"] == "done meanwhile\n" and answer["status"] == "completed"
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


def test_ctrl_c_of_a_spawn_in_the_foreground_stops_its_task_and_leaves_no_process(
    tmp_path: Path, spawner: Spawner
) -> None:
    _plan(tmp_path)
    script = "echo $$ > task.pid; sleep 300 & echo $! > child.pid; wait"
    spawn = spawner("Sleep a long time", "--command", script)
    pids = [_pid_in(tmp_path / "task.pid", "the task to start"), _pid_in(tmp_path / "child.pid", "its child")]
    os.killpg(spawn.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the foreground group
    code, err = _ended(spawn, tmp_path)
    assert code == 130, err
    assert all(pid_gone(pid) for pid in pids)
    assert results(tmp_path)["T-02"]["status"] == "interrupted"


def test_ctrl_c_of_a_spawn_following_a_run_going_on_cancels_its_task_there(tmp_path: Path, spawner: Spawner) -> None:
    write_plan(tmp_path, [Spec("T-01", f"{WAIT_FOR_GO}; echo one")])
    runner = start(tmp_path)
    try:
        _wait_started(tmp_path, "T-01")
        spawn = spawner("Joined and stopped", "--command", "echo $$ > task.pid; sleep 300")
        task = _pid_in(tmp_path / "task.pid", "the joined task to start")
        os.killpg(spawn.pid, signal.SIGINT)
        code, err = _ended(spawn, tmp_path)
        assert code == 130, err
        assert _CANCELLED in err or _ASKED in err, err  # (the run's answer, if it came within the second)
        _wait_status(tmp_path, "T-02", "cancelled")
        assert wait_gone(task)
        assert runner.process.poll() is None  # the run goes on with its own task
    finally:
        (tmp_path / "go").touch()
        code = runner.wait()
        runner.stop_all()
    assert code == 1  # the run had a task cancelled
    assert results(tmp_path)["T-02"]["status"] == "cancelled" and results(tmp_path)["T-01"]["status"] == "completed"


# Ctrl-C at each step of joining a run, each step forced: the spawn held where the test wants it
# (a lock it waits for, a write parked by a fake, a runner stopped with SIGSTOP), not timed.


def test_ctrl_c_of_a_spawn_waiting_to_write_its_row_leaves_nothing_written(tmp_path: Path, spawner: Spawner) -> None:
    _plan(tmp_path)
    plan_file = workspace(tmp_path) / "master_plan.md"
    before = plan_file.read_text()
    lock = os.open(workspace(tmp_path) / "state" / "plan-edit.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another `add` writing its row
        spawn = spawner("Never written", "--command", "echo no")
        wait_until(lambda: _waits_for_a_lock(spawn.pid), "the spawn to wait for the plan's edit lock")
        os.killpg(spawn.pid, signal.SIGINT)
        code, err = _ended(spawn, tmp_path)
    finally:
        os.close(lock)
    assert code == 130, err
    assert plan_file.read_text() == before
    assert not [e for e in _events(tmp_path) if e.get("task") == "T-02"]
    assert cli(tmp_path, "run").code == 0  # nothing left for a run, and no lock held


def test_ctrl_c_as_a_spawn_writes_its_row_is_taken_once_written_and_cancels_its_task(
    tmp_path: Path, spawner: Spawner
) -> None:
    """The signal comes while the row is being written, before ``spawn`` could know it was: held
    until the write is done, it is taken with the row's id in hand, and the task is cancelled."""
    write_plan(tmp_path, [Spec("T-01", f"{WAIT_FOR_GO}; echo one")])
    runner = start(tmp_path)
    try:
        _wait_started(tmp_path, "T-01")
        spawn = spawner("Joined as it was written", "--command", "echo $$ > task.pid; sleep 300",
                       park={"PARK_AFTER": "orchestrator.state.planfile:rewrite"})  # fmt: skip
        wait_until(lambda: (tmp_path / "parked").exists(), "the row to be written")
        os.killpg(spawn.pid, signal.SIGINT)
        (tmp_path / "go-on").touch()
        code, err = _ended(spawn, tmp_path)
        assert code == 130, err
        assert _CANCELLED in err or _ASKED in err, err
        _wait_status(tmp_path, "T-02", "cancelled")
        if (tmp_path / "task.pid").exists():  # (the run may have started it while the write was parked)
            assert wait_gone(_pid_in(tmp_path / "task.pid", "its pid"))
        assert runner.process.poll() is None
    finally:
        (tmp_path / "go").touch()
        runner.wait()
        runner.stop_all()


def test_a_second_ctrl_c_as_a_spawn_asks_for_its_cancel_waits_until_it_is_asked(
    tmp_path: Path, spawner: Spawner
) -> None:
    """Ctrl-C pressed twice: the second comes while the spawn is about to ask the run for the
    cancel (parked there by a fake); it is taken once the cancel is asked, not before."""
    write_plan(tmp_path, [Spec("T-01", f"{WAIT_FOR_GO}; echo one")])
    runner = start(tmp_path)
    try:
        _wait_started(tmp_path, "T-01")
        spawn = spawner("Stopped twice", "--command", "echo $$ > task.pid; sleep 300",
                       park={"PARK_BEFORE": "orchestrator.run.inflight.requests:request"})  # fmt: skip
        task = _pid_in(tmp_path / "task.pid", "the joined task to start")
        os.killpg(spawn.pid, signal.SIGINT)
        wait_until(lambda: (tmp_path / "parked").exists(), "the spawn to be about to ask")
        os.killpg(spawn.pid, signal.SIGINT)
        (tmp_path / "go-on").touch()
        code, err = _ended(spawn, tmp_path)
        assert code == 130, err
        assert _CANCELLED in err or _ASKED in err, err
        _wait_status(tmp_path, "T-02", "cancelled")
        assert wait_gone(task)
    finally:
        (tmp_path / "go").touch()
        runner.wait()
        runner.stop_all()


def test_ctrl_c_of_a_spawn_before_the_run_took_its_row_cancels_it_there_unstarted(
    tmp_path: Path, spawner: Spawner
) -> None:
    """The run going on is stopped (SIGSTOP) from before the row is written until the spawn has
    asked for the cancel and exited: it then sees the row and the request in one look, and takes
    the row first. The spawn does not wait for a run that does not answer."""
    write_plan(tmp_path, [Spec("T-01", f"{WAIT_FOR_GO}; echo one")])
    runner = start(tmp_path)
    try:
        _wait_started(tmp_path, "T-01")
        _wait_blocks_settled(tmp_path)
        os.kill(runner.pid, signal.SIGSTOP)
        try:
            spawn = spawner("Never started", "--command", "echo $$ > task.pid; sleep 300")
            wait_until(lambda: "Never started" in (workspace(tmp_path) / "master_plan.md").read_text(), "the row")
            os.killpg(spawn.pid, signal.SIGINT)
            code, err = _ended(spawn, tmp_path)
        finally:
            os.kill(runner.pid, signal.SIGCONT)
        assert code == 130, err
        assert _ASKED in err, err  # (no answer could come: the run was stopped)
        _wait_status(tmp_path, "T-02", "cancelled")
        assert runner.process.poll() is None
    finally:
        (tmp_path / "go").touch()
        code = runner.wait()
        runner.stop_all()
    assert code == 1
    ran = [e["event"] for e in _events(tmp_path) if e.get("task") == "T-02" and e.get("run") is not None]
    assert "task_started" not in ran and "request_refused" not in ran and "task_cancelled" in ran, ran
    assert not (tmp_path / "task.pid").exists()


def test_ctrl_c_of_a_spawn_whose_task_stops_slowly_ends_it_and_leaves_the_run_stopping_it(
    tmp_path: Path, spawner: Spawner
) -> None:
    """A task that ignores SIGTERM is killed by the run once its kill grace is over: the spawn
    does not wait out that grace. It ends while the task still runs, and the run cancels it."""
    write_plan(tmp_path, [Spec("T-01", f"{WAIT_FOR_GO}; echo one")], {"kill_grace": 3600})
    runner = start(tmp_path)
    try:
        _wait_started(tmp_path, "T-01")
        spawn = spawner("Slow to stop", "--command", "trap '' TERM; echo $$ > task.pid; sleep 300")
        task = _pid_in(tmp_path / "task.pid", "the joined task to start")
        os.killpg(spawn.pid, signal.SIGINT)
        code, err = _ended(spawn, tmp_path)
        assert code == 130, err
        assert _ASKED in err, err
        wait_until(lambda: any(e["event"] == "cancel_requested" for e in _events(tmp_path)), "the request")
        assert not pid_gone(task)  # its grace is not over: the spawn did not wait for it
        assert "T-02" not in results(tmp_path)
        os.killpg(os.getpgid(task), signal.SIGKILL)  # (the grace's end, brought forward)
        _wait_status(tmp_path, "T-02", "cancelled")
        assert runner.process.poll() is None
    finally:
        (tmp_path / "go").touch()
        with contextlib.suppress(OSError, ValueError):  # (a failure above: its hour of grace not waited out)
            os.killpg(os.getpgid(int((tmp_path / "task.pid").read_text())), signal.SIGKILL)
        runner.wait()
        runner.stop_all()


def test_sigterm_of_a_spawn_following_a_run_going_on_cancels_its_task_there_as_ctrl_c_does(
    tmp_path: Path, spawner: Spawner
) -> None:
    write_plan(tmp_path, [Spec("T-01", f"{WAIT_FOR_GO}; echo one")])
    runner = start(tmp_path)
    try:
        _wait_started(tmp_path, "T-01")
        command = ("nohup", *CLI)  # (SIGHUP ignored, as nohup starts it: it stays so)
        spawn = spawner("Joined and killed", "--command", "echo $$ > task.pid; sleep 300", program=command)
        task = _pid_in(tmp_path / "task.pid", "the joined task to start")
        os.kill(spawn.pid, signal.SIGHUP)
        os.kill(spawn.pid, signal.SIGTERM)  # `kill`, `timeout`: not a Ctrl-C
        code, err = _ended(spawn, tmp_path)
        assert code == 130, err
        _wait_status(tmp_path, "T-02", "cancelled")
        assert results(tmp_path)["T-02"]["reason"] == "`orchestrator spawn` was interrupted (SIGTERM)"
        assert wait_gone(task)
    finally:
        (tmp_path / "go").touch()
        runner.wait()
        runner.stop_all()


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


def _made_while_a_class_was() -> BaseException:
    """What a Ctrl-C comes out as when it lands while a class is made (a dataclass's field set on
    it, as a module imported when first needed makes one): on Python 3.11 a ``RuntimeError``."""

    class Interrupting:
        def __set_name__(self, owner: type, name: str) -> None:
            raise KeyboardInterrupt

    try:
        type("Made", (), {"field": Interrupting()})
    except BaseException as exc:
        return exc
    raise AssertionError("making the class raised nothing")


def test_a_ctrl_c_that_lands_as_a_class_is_made_is_a_ctrl_c(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh clone's CI saw `spawn` take a Ctrl-C while it imported the events' records after
    writing its row: exit 1 and a traceback, its task not cancelled. A spawn cancels its task and
    exits 130 for it, and any command says "interrupted" and exits 130, as for a Ctrl-C anywhere."""
    from orchestrator.cli import spawning
    from orchestrator.commands import adding, reading
    from orchestrator.errors import interrupted

    made = _made_while_a_class_was()
    assert interrupted(made) and interrupted(KeyboardInterrupt()) and not interrupted(RuntimeError("no"))
    write_plan(tmp_path, [Spec("T-01", "echo one")])

    def status(_: object) -> int:
        raise made

    monkeypatch.setattr(reading, "status", status)
    done = cli_in_process(tmp_path, "status")
    assert (done.code, done.stderr) == (130, "interrupted\n")
    cancelled: list[str] = []

    def add_row(*_: object, written: Callable[[str], None], **__: object) -> object:
        written("T-02")
        raise made

    monkeypatch.setattr(adding, "add_row", add_row)
    monkeypatch.setattr(spawning, "_cancel", lambda workspace, task_id, why: cancelled.append(task_id))
    done = cli_in_process(tmp_path, "spawn", "one more", "--command", "true")
    assert (done.code, done.stderr) == (130, "interrupted\n")
    assert cancelled == ["T-02"]
