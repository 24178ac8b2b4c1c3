"""A runner stopped or killed, and the run after it: Ctrl-C, SIGHUP, kill -9 of the runner, the
orphans it leaves (found, waited for, stopped, never somebody else's process), the lock a second
runner meets. (What a run does again after a clean one is test_runner_resume.py's.)"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import frontmatter
import pytest
from runner_helpers import (
    Background,
    Result,
    Spec,
    catches,
    cli,
    cli_in_process,
    completed_count,
    kill_leftovers,
    open_attempts,
    pid_gone,
    read_pids,
    results,
    run,
    start,
    statuses,
    wait_gone,
    wait_until,
    workspace,
    write_plan,
)

from orchestrator import load_plan, timing
from orchestrator.executors import groups, local
from orchestrator.executors.groups import group_running as group_alive
from orchestrator.state.plans import plan_of
from orchestrator.state.procs import process_started


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """The test's project directory; runners and task processes it leaves are killed at the end."""
    yield tmp_path
    kill_leftovers(tmp_path, read_pids(tmp_path).values())
    kill_leftovers(tmp_path, read_pids(tmp_path / "pids", "*").values() if (tmp_path / "pids").is_dir() else [])


@pytest.fixture
def background() -> Iterator[list[Background]]:
    started: list[Background] = []
    yield started
    for runner in started:
        runner.cleanup()


def check_workspace_parses(project: Path, *, killed: bool = False) -> None:
    """Every file the runner keeps in .orchestrator is whole: results, briefs, the plan, state.

    Right after a kill -9 a temp file may be left half written (it never replaced anything; the
    next run removes it); after a run there is none.
    """
    ws = workspace(project)
    load_plan(ws)
    for path in [*ws.glob("results/*"), *ws.glob("agent_tasks/*"), *ws.glob(".tmp-*"), *ws.glob("state/.tmp-*")]:
        if path.name.startswith(".tmp-"):
            assert killed, f"{path.name}: a temp file was left"
            continue
        post = frontmatter.load(str(path))
        assert post.metadata, f"{path.name} has no frontmatter"
    for path in ws.glob("state/*.json"):
        json.loads(path.read_text(encoding="utf-8"))


# --- Ctrl-C ------------------------------------------------------------------------------------


def _long_unless_done(task: str) -> str:
    """A task that runs long (a child and a grandchild) while slow.flag exists, and is quick otherwise."""
    return (
        f"echo $$ > {task}.pid\n"
        "echo $ORCHESTRATOR_TASK_ID >> ran.log\n"
        "if [ -e slow.flag ]; then\n"
        f"  sleep 1000 & echo $! > {task}-child.pid\n"
        "  wait\n"
        "fi\n"
        f"echo {task} finished"
    )


@pytest.mark.slow
def test_ctrl_c_interrupts_then_run_again_completes(project: Path, background: list[Background]) -> None:
    (project / "slow.flag").touch()
    specs = [
        Spec("T-01", _long_unless_done("t01")),
        Spec("T-02", _long_unless_done("t02")),
        Spec("T-03", "echo T-03 >> ran.log\necho quick"),
        Spec("T-04", "echo T-04 >> ran.log\necho after T-01", deps=["T-01"]),
    ]
    write_plan(project, specs, {"max_parallel": 3, "kill_grace": 2})
    runner = start(project)
    background.append(runner)
    wait_until(
        lambda: len(read_pids(project)) == 4 and len(open_attempts(project)) == 2 and completed_count(project) == 1,
        "two long tasks running and the quick one done",
    )
    pids = read_pids(project)
    began = time.monotonic()
    runner.kill(signal.SIGINT)
    code = runner.wait(timeout=30)
    assert code == 130, runner.stderr.read_text()
    assert time.monotonic() - began < 10
    for name, pid in pids.items():
        assert wait_gone(pid, 5), f"{name} ({pid}) outlived the interrupted runner"
    assert open_attempts(project) == []
    found = statuses(project)
    assert found == {"T-01": "interrupted", "T-02": "interrupted", "T-03": "completed"}
    assert "interrupted by the user" in str(results(project)["T-01"]["reason"])
    events = runner.events()
    assert sorted(e["task"] for e in events if e["event"] == "task_interrupted") == ["T-01", "T-02"]
    assert events[-1]["event"] == "run_finished" and events[-1]["exit_code"] == 130
    check_workspace_parses(project)

    (project / "slow.flag").unlink()
    second = run(project)
    assert second.code == 0, second.stderr
    assert sorted(second.tasks("task_started")) == ["T-01", "T-02", "T-04"]
    assert set(statuses(project).values()) == {"completed"}
    assert collections.Counter((project / "ran.log").read_text().split())["T-03"] == 1


@pytest.mark.slow
def test_closing_the_terminal_interrupts_like_ctrl_c(project: Path) -> None:
    """The run's own terminal goes away (its window closed): every write to it fails and the
    runner gets SIGHUP. It stops its tasks and records them as interrupted, writes
    final_output.md and exits 130, whatever it could no longer show."""
    import pty

    (project / "slow.flag").touch()
    write_plan(project, [Spec("T-01", _long_unless_done("t01")), Spec("T-02", "echo quick")], {"kill_grace": 2})
    pid, master = pty.fork()
    if pid == 0:  # pragma: no cover - the child: the runner, on the pty as its controlling terminal
        os.chdir(project)
        os.execv(sys.executable, [sys.executable, "-m", "orchestrator", "run"])
    try:
        wait_until(lambda: len(open_attempts(project)) == 1 and completed_count(project) == 1, "T-01 to run")
        pids = read_pids(project)
        os.close(master)  # the terminal is gone
        _, status = os.waitpid(pid, 0)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    assert os.waitstatus_to_exitcode(status) == 130
    for name, member in pids.items():
        assert wait_gone(member, 5), f"{name} ({member}) outlived its runner"
    assert statuses(project) == {"T-01": "interrupted", "T-02": "completed"}
    assert (workspace(project) / "final_output.md").exists()
    assert open_attempts(project) == []


@pytest.mark.slow
def test_sighup_stops_every_task_and_still_writes_the_results(project: Path, background: list[Background]) -> None:
    """SIGHUP alone (a terminal closed from outside, ``kill -HUP``) is an interrupt like SIGTERM:
    before it was handled, the runner died at once and left all its tasks running, with no result
    and no final_output.md."""
    (project / "slow.flag").touch()
    specs = [Spec(f"T-{n:02d}", _long_unless_done(f"t{n:02d}")) for n in range(1, 9)]
    write_plan(project, specs, {"max_parallel": 8, "kill_grace": 2})
    runner = start(project)
    background.append(runner)
    wait_until(lambda: len(read_pids(project)) == 16 and len(open_attempts(project)) == 8, "eight tasks to run")
    pids = read_pids(project)
    runner.kill(signal.SIGHUP)
    assert runner.wait(timeout=30) == 130, runner.stderr.read_text()
    for name, pid in pids.items():
        assert wait_gone(pid, 5), f"{name} ({pid}) outlived the runner"
    assert statuses(project) == {spec.id: "interrupted" for spec in specs}
    assert (workspace(project) / "final_output.md").is_file()
    assert open_attempts(project) == []
    assert runner.events()[-1]["event"] == "run_finished"


def test_ctrl_c_while_a_task_waits_to_retry(project: Path, background: list[Background]) -> None:
    specs = [Spec("T-01", "exit 1"), Spec("T-02", "echo two", deps=["T-01"])]
    write_plan(project, specs, {"retries": 3, "backoff_base": 1000, "backoff_cap": 1000})
    runner = start(project)
    background.append(runner)
    wait_until(lambda: any(e["event"] == "task_retrying" for e in runner.events()), "T-01 to wait for a retry")
    # Another terminal sees the wait for what it is (the journal's retry line), not a pending task.
    seen = json.loads(cli_in_process(project, "status", "--json").stdout)
    assert [t["status"] for t in seen["tasks"]] == ["retrying", "waiting"]
    runner.kill(signal.SIGTERM)  # SIGTERM is handled like Ctrl-C
    assert runner.wait(timeout=30) == 130
    seen = json.loads(cli_in_process(project, "status", "--json").stdout)
    assert [t["status"] for t in seen["tasks"]] == ["interrupted", "waiting"]
    meta = results(project)["T-01"]
    assert meta["status"] == "interrupted"  # not left "retrying": no retry is coming
    events = runner.events()
    assert (events[-2]["event"], events[-2]["task"]) == ("task_interrupted", "T-01")
    counts = events[-1]["counts"]
    assert counts["retrying"] == 0 and counts["interrupted"] == 1
    plan = (workspace(project) / "master_plan.md").read_text()
    assert "| T-01 | Agent-01 | ⏹️ Interrupted |" in plan and "Retrying" not in plan


@pytest.mark.slow
def test_a_second_ctrl_c_does_not_cut_the_clean_up_short(project: Path, background: list[Background]) -> None:
    """Ctrl-C pressed again while the runner stops its tasks (here one that ignores SIGTERM, so the
    runner waits out the grace period before SIGKILL) changes nothing: every process still goes,
    every task is still recorded, and the exit code is still 130."""
    script = "trap '' TERM\nsleep 1000 & echo $! > child.pid\necho $$ > leader.pid\nwait"
    write_plan(project, [Spec("T-01", script)], {"kill_grace": 1.5})
    runner = start(project)
    background.append(runner)
    wait_until(lambda: len(read_pids(project)) == 2, "T-01 and its child to run")
    pids = read_pids(project)
    runner.kill(signal.SIGINT)
    time.sleep(0.5)  # inside the grace period: SIGTERM went out and was ignored
    runner.kill(signal.SIGINT)
    assert runner.wait(timeout=30) == 130, runner.stderr.read_text()
    for name, pid in pids.items():
        assert wait_gone(pid, 5), f"{name} ({pid}) outlived the interrupted runner"
    assert statuses(project) == {"T-01": "interrupted"}
    assert open_attempts(project) == []
    assert runner.events()[-1]["event"] == "run_finished"
    assert "Traceback" not in runner.stderr.read_text()


def test_ctrl_c_while_the_agent_aggregates(project: Path, background: list[Background]) -> None:
    """The tasks are done and an agent writes the synthesis: Ctrl-C stops that agent, and the run
    still writes final_output.md (without a synthesis) and exits 130."""
    agent = (
        'input=$(cat); case "$input" in *"You are the aggregator"*) echo $$ > aggregator.pid; exec sleep 1000;; esac; '
        "echo OUTPUT-OF-$ORCHESTRATOR_TASK_ID"
    )
    write_plan(project, [Spec("T-01", "unused")], {"backend": "command", "command": ["bash", "-c", agent]})
    runner = start(project, "--aggregate", "agent")
    background.append(runner)
    wait_until(lambda: "aggregator.pid" in read_pids(project), "the aggregating agent to start")
    aggregator = read_pids(project)["aggregator.pid"]
    runner.kill(signal.SIGINT)
    assert runner.wait(timeout=30) == 130, runner.stderr.read_text()
    assert wait_gone(aggregator, 5), "the aggregating agent outlived the interrupted runner"
    assert statuses(project) == {"T-01": "completed"}
    final = (workspace(project) / "final_output.md").read_text(encoding="utf-8")
    assert "OUTPUT-OF-T-01" in final
    assert runner.events()[-1]["event"] == "run_finished" and runner.events()[-1]["exit_code"] == 130


# --- kill -9 of the runner ---------------------------------------------------------------------

_GUARDED = """\
id=$ORCHESTRATOR_TASK_ID
mkdir -p active pids
if [ -f "active/$id" ]; then
  read -r old since < "active/$id"
  now=$(cut -d')' -f2 "/proc/$old/stat" 2>/dev/null | awk '{print $1, $20}')
  # alive, and the same process (pid_max is 32768 here: a busy machine reuses pids within seconds)
  case "$now" in ""|Z*|X*) ;; *) [ "${now#* }" = "$since" ] && echo "$id $old" >> overlap.log ;; esac
fi
echo "$$ $(cut -d')' -f2 /proc/$$/stat | awk '{print $20}')" > "active/$id"
echo $$ > "pids/$id.$$"
echo "$id" >> ran.log
sleep {seconds}
rm -f "active/$id"
echo "$id done"
"""


def _guarded(seconds: float) -> str:
    """A task that logs each run in ran.log and notes in overlap.log an earlier attempt still running."""
    return _GUARDED.replace("{seconds}", str(seconds))


@pytest.mark.slow
@pytest.mark.parametrize("after", [0, 1, 3])
def test_kill_9_then_run_again(project: Path, background: list[Background], after: int) -> None:
    specs = [
        Spec("T-01", _guarded(0.3)),
        Spec("T-02", _guarded(0.3)),
        Spec("T-03", _guarded(0.3)),
        Spec("T-04", _guarded(0.3)),
        Spec("T-05", _guarded(0.3), deps=["T-01"]),
        Spec("T-06", _guarded(0.3), deps=["T-02", "T-03"]),
        Spec("T-07", _guarded(0.3), deps=["T-05"]),
        Spec("T-08", _guarded(0.3), deps=["T-06", "T-04"]),
    ]
    write_plan(project, specs, {"max_parallel": 2})
    runner = start(project)
    background.append(runner)
    if after == 0:
        wait_until(lambda: len(list((project / "pids").glob("*"))) >= 1, "a task to start")
    else:
        wait_until(lambda: completed_count(project) >= after, f"{after} tasks to complete")
    runner.kill(signal.SIGKILL)
    before = {task for task, status in statuses(project).items() if status == "completed"}
    assert len(before) >= after
    check_workspace_parses(project, killed=True)  # whatever the moment, every file is whole

    again = run(project)
    assert again.code == 0, again.stderr
    assert set(again.tasks("task_started")) == {s.id for s in specs} - before
    assert set(statuses(project).values()) == {"completed"}
    ran = collections.Counter((project / "ran.log").read_text().split())
    assert set(ran) == {s.id for s in specs}
    for task in before:
        assert ran[task] == 1, f"{task} completed before the kill but ran again"
    assert not (project / "overlap.log").exists(), (project / "overlap.log").read_text()
    assert open_attempts(project) == []
    check_workspace_parses(project)


def test_an_attempt_killed_while_spawning_is_found_by_its_environment(project: Path) -> None:
    """A runner killed after its ``spawn`` line but before the ``start`` line (with the group id)
    leaves a process the journal cannot name: the next run finds it by the variables that name
    its attempt, stops it, and runs the task again."""
    write_plan(project, [Spec("T-01", "echo one")])
    ws = workspace(project)
    dead = subprocess.Popen(["true"])
    dead.wait()  # a runner pid that is gone
    env = {
        **os.environ,
        "ORCHESTRATOR_WORKSPACE": str(ws.resolve()),
        "ORCHESTRATOR_TASK_ID": "T-01",
        "ORCHESTRATOR_ATTEMPT": "1",
    }
    left = subprocess.Popen(["sleep", "1000"], env=env, start_new_session=True)
    elsewhere = subprocess.Popen(["sleep", "1000"], env={**env, "ORCHESTRATOR_ATTEMPT": "2"}, start_new_session=True)
    (project / "left.pid").write_text(str(left.pid))
    (project / "elsewhere.pid").write_text(str(elsewhere.pid))
    (ws / "state").mkdir(parents=True, exist_ok=True)
    (ws / "state" / "attempts.jsonl").write_text(
        json.dumps({"event": "run", "runner_pid": dead.pid})
        + "\n"
        + json.dumps({"event": "spawn", "task": "T-01", "agent": "Agent-01", "attempt": 1})
        + "\n"
    )
    again = run(project)
    assert again.code == 0, again.stderr
    assert any(e["event"] == "notice" and "T-01" in e["message"] for e in again.events)
    assert wait_gone(left.pid) and left.wait(timeout=10) is not None
    assert elsewhere.poll() is None  # another attempt's process: not this orphan
    elsewhere.kill()
    elsewhere.wait()
    assert statuses(project) == {"T-01": "completed"}


@pytest.mark.slow
def test_orphan_of_a_killed_runner_is_stopped_by_the_next_run(project: Path, background: list[Background]) -> None:
    (project / "slow.flag").touch()
    long = "if [ -e slow.flag ]; then sleep 1000 & echo $! > t01-child.pid; wait; fi"
    script = _guarded(0.1).replace("sleep 0.1", long)
    write_plan(project, [Spec("T-01", script), Spec("T-02", "echo two", deps=["T-01"])])
    runner = start(project)
    background.append(runner)
    wait_until(lambda: (project / "t01-child.pid").exists() and len(open_attempts(project)) == 1, "T-01 to run")
    marker = open_attempts(project)[0]
    runner.kill(signal.SIGKILL)
    orphan = read_pids(project)["t01-child.pid"]
    leader = int(marker["pgid"])
    assert not pid_gone(orphan) and not pid_gone(leader), "the task's group should survive kill -9 of the runner"
    assert group_alive(leader)
    # The lock file still names the dead runner; the next runner takes the lock over.
    assert (workspace(project) / "state" / "runner.lock").read_text().strip() == str(runner.pid)

    (project / "slow.flag").unlink()
    again = run(project)
    assert again.code == 0, again.stderr
    assert any(e["event"] == "notice" and "T-01" in e["message"] for e in again.events)
    assert pid_gone(orphan) and pid_gone(leader)
    assert not group_alive(leader)
    assert not (project / "overlap.log").exists(), (project / "overlap.log").read_text()
    assert (project / "ran.log").read_text().split() == ["T-01", "T-01"]
    assert statuses(project) == {"T-01": "completed", "T-02": "completed"}
    check_workspace_parses(project)


def test_attempt_whose_runner_pid_was_reused_is_still_an_orphan(project: Path) -> None:
    """The runner of an open attempt is dead even if its pid now belongs to another live process (here: pytest)."""
    write_plan(project, [Spec("T-01", "echo one")])
    orphan = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    try:
        lines = [
            {"event": "run", "runner_pid": os.getpid(), "at": "2026-01-01T00:00:00+00:00"},
            {"event": "start", "task": "T-01", "agent": "Agent-01", "attempt": 1, "pgid": orphan.pid,
             "pgid_start": process_started(orphan.pid), "at": "2026-01-01T00:00:00+00:00"},
        ]  # fmt: skip
        state = workspace(project) / "state"
        state.mkdir(parents=True)
        (state / "attempts.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
        result = run(project)
        assert result.code == 0, result.stderr
        assert orphan.wait(timeout=10) == -signal.SIGTERM  # stopped before T-01 ran again
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait(timeout=10)
    assert any(e["event"] == "notice" and "T-01" in e["message"] for e in result.events)
    assert open_attempts(project) == []
    assert statuses(project) == {"T-01": "completed"}


def test_a_group_id_now_leading_somebody_elses_process_is_never_signalled(project: Path) -> None:
    """A dead runner's attempt left the journal naming its process group; that group is gone and
    its number now leads an unrelated process (here a ``sleep``, in a session of its own, that
    started at another time than the attempt's leader). The next run counted the group as the
    attempt's (a member started after the attempt: a reused pid always does) and SIGTERMed it.
    Now the leader's start time tells them apart: the stranger is left alone, the task runs."""
    write_plan(project, [Spec("T-01", "echo one")])
    stranger = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    try:
        began = process_started(stranger.pid)
        assert began is not None
        handle = {"pgid": stranger.pid, "pgid_start": began - 200, "leader_start": began - 100}
        lines = [
            {"event": "run", "runner_pid": 999_999_999, "at": "2026-01-01T00:00:00+00:00"},
            {"event": "spawn", "task": "T-01", "agent": "Agent-01", "attempt": 1, "executor": "local",
             "at": "2026-01-01T00:00:00+00:00"},
            {"event": "start", "task": "T-01", "agent": "Agent-01", "attempt": 1, "executor": "local",
             "handle": handle, "at": "2026-01-01T00:00:00+00:00"},
        ]  # fmt: skip
        state = workspace(project) / "state"
        state.mkdir(parents=True)
        (state / "attempts.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
        result = run(project)
        assert result.code == 0, result.stderr
        assert stranger.poll() is None, "an unrelated process was signalled"
        assert statuses(project) == {"T-01": "completed"}
        # The same journal naming the sleep's own start: it is the attempt's, and stopped.
        (state / "attempts.jsonl").write_text(
            "".join(
                json.dumps(line) + "\n"
                for line in [*lines[:2], {**lines[2], "handle": {**handle, "leader_start": began}}]
            )
        )
        assert run(project).code == 0
        assert stranger.wait(timeout=10) == -signal.SIGTERM
    finally:
        if stranger.poll() is None:
            stranger.kill()
            stranger.wait(timeout=10)


def test_commands_that_read_a_run_know_its_runner_by_pid_and_start_time(project: Path) -> None:
    """A runner killed with -9 whose pid now belongs to another live process (here: pytest) is
    gone for ``status``, ``check`` and ``logs --follow``: the start time its run recorded is not
    that process's. Before, ``status`` showed its attempt running and ``logs --follow`` waited for
    ever for a run that was over."""
    write_plan(project, [Spec("T-01", "echo one"), Spec("T-02", "echo two")])
    assert run(project, "--only", "T-02").code == 0  # a result, a journal and an event log of a real run
    mine = process_started(os.getpid())
    assert mine is not None
    state = workspace(project) / "state"
    (state / "attempts.jsonl").write_text(
        "".join(
            json.dumps(line) + "\n"
            for line in (
                {"event": "run", "runner_pid": os.getpid(), "runner_start": mine - 100, "at": "2026-01-01T00:00:00Z"},
                {"event": "spawn", "task": "T-01", "agent": "Agent-01", "attempt": 1, "at": "2026-01-01T00:00:00Z"},
            )
        )
    )
    with (state / "events.jsonl").open("a") as events:
        started = {"event": "run_started", "run": "2026-01-01T00:00:00.000+00:00", "time": "2026-01-01T00:00:00Z"}
        events.write(json.dumps({**started, "to_run": 1, "pid": os.getpid(), "pid_start": mine - 100}) + "\n")

    status = json.loads(cli_in_process(project, "status", "--json").stdout)
    assert {t["id"]: t["status"] for t in status["tasks"]}["T-01"] == "interrupted"
    check = cli_in_process(project, "check", "--format", "markdown")
    assert check.code == 1 and "is gone" in check.stdout, check.stdout
    # Its attempt 1 (the journal's; it printed nothing) is over: followed, it ends at once, empty.
    follow = cli(project, "logs", "T-01", "--follow")  # (bounded by the hang guard)
    assert (follow.code, follow.stdout, follow.stderr) == (0, "", "")

    # The same files naming pytest's own start time: the runner is alive, as before.
    for name in ("attempts.jsonl", "events.jsonl"):
        (state / name).write_text((state / name).read_text().replace(str(mine - 100), str(mine)))
    status = json.loads(cli_in_process(project, "status", "--json").stdout)
    assert {t["id"]: t["status"] for t in status["tasks"]}["T-01"] == "running"


@pytest.mark.slow
def test_wait_orphans_lets_the_orphan_finish(project: Path, background: list[Background]) -> None:
    # T-01 runs until the test releases it (at most a minute): still running when the next run starts.
    released = 'i=0; while [ ! -f release ] && [ "$i" -lt 1200 ]; do sleep 0.05; i=$((i+1)); done'
    write_plan(project, [Spec("T-01", _GUARDED.replace("sleep {seconds}", released))])
    runner = start(project)
    background.append(runner)
    # (its process may write its active file before the runner has written its start line)
    wait_until(lambda: (project / "active" / "T-01").exists() and bool(open_attempts(project)), "T-01 to run")
    leader = int(open_attempts(project)[0]["pgid"])
    runner.kill(signal.SIGKILL)
    again = start(project, "--wait-orphans", name="again")
    background.append(again)
    # It says what it waits for, on stderr (stdout: the events of --json only), before T-01 runs again.
    wait_until(lambda: "waiting for" in again.stderr.read_text(), "the run to say what it waits for")
    (project / "release").touch()
    assert again.wait(timeout=60) == 0, again.stderr.read_text()
    waiting = [line for line in again.stderr.read_text().splitlines() if "waiting for" in line]
    assert f"T-01 (process group {leader})" in waiting[0] and "--wait-orphans" in waiting[0], waiting
    # The orphan ran to its end (it removed its active file) before the new attempt started.
    assert (project / "ran.log").read_text().split() == ["T-01", "T-01"]
    assert not (project / "overlap.log").exists()


# --- the lock ------------------------------------------------------------------------------------


def test_second_runner_is_refused_while_the_first_runs(project: Path, background: list[Background]) -> None:
    (project / "slow.flag").touch()
    write_plan(project, [Spec("T-01", _long_unless_done("t01"))])
    runner = start(project)
    background.append(runner)
    wait_until(lambda: len(open_attempts(project)) == 1, "T-01 to run")
    status = json.loads(cli_in_process(project, "status", "--json").stdout)
    assert [t["status"] for t in status["tasks"]] == ["running"]
    second = cli(project, "run")
    assert second.code == 3
    assert f"another run, render, reset, aggregate or plan (pid {runner.pid}) is using" in second.stderr
    reset = cli(project, "reset", "--all")
    assert reset.code == 3
    # Nor does a render write beside it: the run's start clears temp files, and both write the
    # same briefs and status sections.
    workspace = project / ".orchestrator"
    # A render with nothing to write takes no lock, and succeeds (once the run has written its
    # status blocks for T-01 running: until then, a render would have them to write).
    # (a CI run under load once saw a render between two of the run's writes, with something to
    # write: it was refused as it should be; the one after it had nothing to write)
    wait_until(lambda: "🔵 Running" in (workspace / "master_plan.md").read_text(encoding="utf-8"), "the blocks")
    tries: list[Result] = []
    wanted: list[str] = []  # what each refused render had to write

    def rendered() -> bool:
        tries.append(cli(project, "render", "--json"))
        if tries[-1].code != 0:
            wanted.append(_what_a_render_writes(project))
        return tries[-1].code == 0

    # (a hang guard. Renders refused for 90 s, each with something to write, were the Start
    # column: the run wrote its own moment, status read the journal's start line, a spawn later,
    # a second later under load; test_a_running_task_has_one_start_for_the_run_and_for_status)
    try:
        wait_until(rendered, "a render with nothing to write", timeout=90)
    except AssertionError as exc:
        said = [f"{t.code}: {t.stderr.strip()}" for t in tries[-3:]]
        raise AssertionError(f"{exc}; the last refused renders said {said}, and had to write {wanted[-3:]}") from None
    idle = tries[-1]
    assert all(t.code == 3 and "is using .orchestrator/" in t.stderr for t in tries[:-1]), [t.stderr for t in tries]
    assert json.loads(idle.stdout)["written"] == []
    # One with something to write (--force over a hand edit) is refused, and writes nothing.
    (brief,) = (workspace / "agent_tasks").iterdir()
    brief.write_text(brief.read_text() + "A hand edit.\n")
    before = {p: p.read_bytes() for p in [workspace / "master_plan.md", *(workspace / "agent_tasks").iterdir()]}
    render = cli(project, "render", "--force", "--json")
    assert render.code == 3
    assert json.loads(render.stdout)["error"] == "LockedError"
    assert {p: p.read_bytes() for p in [workspace / "master_plan.md", *(workspace / "agent_tasks").iterdir()]} == before
    # A dead runner's lock is taken over.
    runner.kill(signal.SIGKILL)
    (project / "slow.flag").unlink()
    third = run(project)
    assert third.code == 0, third.stderr
    assert statuses(project) == {"T-01": "completed"}


def _what_a_render_writes(project: Path) -> str:
    """What ``render`` would write beside the run now: the briefs, and how the status blocks differ."""
    import difflib

    from orchestrator.output.briefs import prepare_briefs
    from orchestrator.output.sections import render_status
    from orchestrator.plan.parser import read_plan_text
    from orchestrator.run.resume.freshness import current_views
    from orchestrator.state import planfile
    from orchestrator.state.workspace import Workspace

    ws = Workspace.find(project / ".orchestrator")
    plan = plan_of(ws, complete=True)
    report = prepare_briefs(plan, ws, force=False)
    text = read_plan_text(ws.plan_file)
    spliced = planfile.splice(text, render_status(plan, ws, current_views(plan, ws)).blocks)
    changed = [line for line in difflib.unified_diff(text.splitlines(), spliced.splitlines(), lineterm="", n=0)]
    return f"briefs {[path.name for path, _ in report.pending]}, book {report.book is not None}, blocks {changed[2:]}"


def test_a_running_task_has_one_start_for_the_run_and_for_status(project: Path, background: list[Background]) -> None:
    """The run writes a running task's start into the plan's blocks (and later its result) as the
    moment it started it; status read it from the journal's start line, written once the
    process ran, a spawn later. Under load that was another second: the blocks and status then
    disagreed, and every render beside the run had them to write, and was refused till the task
    ended. Both now say the runner's moment, to the millisecond."""
    (project / "slow.flag").touch()
    write_plan(project, [Spec("T-01", "while [ -e slow.flag ]; do sleep 0.05; done")])
    runner = start(project)
    background.append(runner)
    wait_until(lambda: len(open_attempts(project)) == 1, "T-01 to run")
    ws = project / ".orchestrator"
    wait_until(lambda: "🔵 Running" in (ws / "master_plan.md").read_text(encoding="utf-8"), "the blocks")
    wait_until(lambda: '"event": "start"' in (ws / "state" / "attempts.jsonl").read_text(encoding="utf-8"), "its start")
    (running,) = json.loads(cli_in_process(project, "status", "--json").stdout)["tasks"]
    (project / "slow.flag").unlink()
    assert runner.wait() == 0, runner.stderr.read_text(encoding="utf-8")
    (done,) = results(project).values()
    assert running["status"] == "running" and running["started"] == done["started"], (running, done)


# --- what a stopped or killed run leaves, and what the next one makes of it -----------------------


def test_a_task_that_failed_while_its_retry_waited_is_recorded_failed_when_the_run_stops(project: Path) -> None:
    """fail_fast: B fails and waits for its retry (backoff up to an hour); then A fails, and the
    run stops. B ran: its result says how it failed, with its attempt and its logs, not
    'skipped: not started' (nor cancelled: nothing of it was running)."""
    specs = [
        Spec("A", "sleep 0.5; exit 3"),
        Spec("B", "echo trying >&2; exit 4", retries=2),
        Spec("C", "true", deps=["B"]),
    ]
    write_plan(project, specs, {"fail_fast": True, "max_parallel": 2, "backoff_base": 3600, "backoff_cap": 3600})
    result = run(project)
    assert result.code == 1
    found = results(project)
    assert found["A"]["status"] == "failed"
    assert found["B"]["status"] == "failed" and found["B"]["attempts"] == 1
    assert found["B"]["reason"] == "exit code 4; not attempted again: --fail-fast: A failed"
    assert found["B"]["logs"] == [".orchestrator/logs/agent-02.attempt-1.err"]
    assert found["C"]["status"] == "skipped"


def _orphan(project: Path, task: str = "T-01", *, deaf: bool = False) -> subprocess.Popen[bytes]:
    """A process group a dead runner left: running, and open in the journal. ``deaf``: it
    ignores SIGTERM, as a program shutting down gracefully may for a while."""
    argv = ["bash", "-c", "trap '' TERM; sleep 1000 & wait"] if deaf else ["sleep", "1000"]
    orphan = subprocess.Popen(argv, start_new_session=True)
    (project / "orphan.pid").write_text(str(orphan.pid))
    dead = subprocess.Popen(["true"])
    dead.wait()
    lines = [
        {"event": "run", "runner_pid": dead.pid},
        {"event": "spawn", "task": task, "agent": "Agent-01", "attempt": 1},
        {"event": "start", "task": task, "agent": "Agent-01", "attempt": 1, "executor": "local",
         "handle": {"pgid": orphan.pid, "pgid_start": process_started(orphan.pid)}},
        {"event": "session", "task": task, "attempt": 1, "session_id": "sess-123"},
    ]  # fmt: skip
    state = workspace(project) / "state"
    state.mkdir(parents=True, exist_ok=True)
    (state / "attempts.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return orphan


@pytest.mark.slow
def test_orphans_that_ignore_sigterm_are_stopped_together(project: Path) -> None:
    """Four orphans of a dead runner trap SIGTERM and go on: the next run asks them all to stop at
    once, then waits one grace period before SIGKILL. Each writes down, as SIGTERM reaches it,
    whether the other three are still alive: asked one at a time (one grace period each) the
    first would be gone, killed, before the second was asked."""
    tasks = [f"T-{n:02d}" for n in range(1, 5)]
    write_plan(project, [Spec(task, "echo again") for task in tasks], {"kill_grace": 2})
    marks = project / "marks"
    marks.mkdir()
    script = (
        # (alive: a state in /proc other than Z, zombie: this test reaps them only at the end)
        'trap \'alive=0; for p in $(cat ../orphans.txt); do s=$(cut -d" " -f3 /proc/$p/stat 2>/dev/null); '
        '[ -n "$s" ] && [ "$s" != Z ] && alive=$((alive+1)); done; echo $alive > $$.mark\' TERM\n'
        "while :; do sleep 0.05; done"
    )
    orphans = [subprocess.Popen(["bash", "-c", script], cwd=marks, start_new_session=True) for _ in tasks]
    (project / "orphans.txt").write_text(" ".join(str(o.pid) for o in orphans))
    (project / "pids").mkdir()
    for orphan in orphans:
        (project / "pids" / str(orphan.pid)).write_text(str(orphan.pid))
    dead = subprocess.Popen(["true"])
    dead.wait()
    lines: list[dict[str, object]] = [{"event": "run", "runner_pid": dead.pid}]
    for task, orphan in zip(tasks, orphans, strict=True):
        lines.append({"event": "spawn", "task": task, "agent": "Agent-01", "attempt": 1})
        lines.append({"event": "start", "task": task, "agent": "Agent-01", "attempt": 1, "executor": "local",
                      "handle": {"pgid": orphan.pid, "pgid_start": process_started(orphan.pid)}})  # fmt: skip
    state = workspace(project) / "state"
    state.mkdir(parents=True, exist_ok=True)
    (state / "attempts.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    try:
        result = run(project)
        assert result.code == 0, result.stderr
        assert [orphan.wait(timeout=10) for orphan in orphans] == [-signal.SIGKILL] * 4
        seen = {path.name: path.read_text().strip() for path in marks.iterdir()}
        assert seen == {f"{orphan.pid}.mark": "4" for orphan in orphans}
        notices = [e["message"] for e in result.events if e["event"] == "notice"]
        assert sum("left running by a dead runner" in notice for notice in notices) == 4
    finally:
        for orphan in orphans:
            if orphan.poll() is None:
                orphan.kill()
                orphan.wait()


def test_sigterm_while_waiting_for_a_dead_runners_attempt_ends_cleanly(
    project: Path, background: list[Background]
) -> None:
    """Signals are the run's from its first moment: SIGTERM while it waits for an orphan
    (--wait-orphans) ends it with 130 and one line, the orphan and the journal left as they were."""
    write_plan(project, [Spec("T-01", "echo one")])
    orphan = _orphan(project)
    journal = (workspace(project) / "state" / "attempts.jsonl").read_text()
    try:
        runner = start(project, "--wait-orphans")
        background.append(runner)
        # Its SIGTERM handler is in place (the run's from then on), then it waits for the orphan.
        wait_until(lambda: catches(runner.pid, signal.SIGTERM), "the runner to take SIGTERM")
        time.sleep(0.5)
        assert runner.process.poll() is None
        runner.kill(signal.SIGTERM)
        assert runner.wait(timeout=30) == 130
        assert "Traceback" not in runner.stderr.read_text()
        assert runner.events()[-1]["stopped"] == "interrupted before any task started"
        assert orphan.poll() is None  # waited for, not stopped
        assert (workspace(project) / "state" / "attempts.jsonl").read_text() == journal
    finally:
        orphan.kill()
        orphan.wait()


def test_a_run_interrupted_in_the_grace_it_gave_a_dead_runners_attempts_kills_them_before_it_exits(
    project: Path, background: list[Background]
) -> None:
    """QA: a Ctrl-C while the run waited out kill_grace for a dead runner's attempts that ignore
    SIGTERM exited 130 and left them running, saying nothing. What was asked to stop is killed
    at once (no group is left behind on any path), and the run says what became of them."""
    write_plan(project, [Spec("T-01", "echo one")], {"kill_grace": 60})
    orphan = _orphan(project, deaf=True)
    try:
        runner = start(project)
        background.append(runner)
        # SIGTERM, not SIGINT: Python catches SIGINT from its start (a KeyboardInterrupt), the run's
        # own handler takes all three signals once the run has begun, before it settles anything.
        wait_until(lambda: catches(runner.pid, signal.SIGTERM), "the run to take its signals")
        wait_until(lambda: b"SigIgn" in Path(f"/proc/{orphan.pid}/status").read_bytes(), "the orphan to start")
        time.sleep(1.0)  # (its SIGTERM sent, the run is in the 60 s grace)
        assert orphan.poll() is None
        runner.kill(signal.SIGINT)
        assert runner.wait(timeout=30) == 130
        assert orphan.wait(timeout=10) == -signal.SIGKILL
        wait_until(lambda: not group_alive(orphan.pid), "its sleep to be killed too")
        said = [e["message"] for e in runner.events() if e["event"] == "notice"]
        assert said == [
            "interrupted while settling the attempts a dead runner left (T-01): none of them runs now; "
            "the next `orchestrator run` takes them up"
        ], said
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(orphan.pid, signal.SIGKILL)
        orphan.wait()


def test_a_run_interrupted_while_it_settles_still_tells_what_it_set_aside(
    project: Path, background: list[Background]
) -> None:
    """QA: preparing the run kept an unreadable result aside (it runs again), and a SIGTERM while
    the run waited for a dead runner's attempt lost the notice that says so: printed nowhere,
    kept nowhere, and no later run finds anything to tell. It is shown, and kept in the event log."""
    write_plan(project, [Spec("T-01", "echo one"), Spec("T-02", "echo two")])
    orphan = _orphan(project)  # T-01's
    broken = workspace(project) / "results" / "agent-02-result.md"
    broken.parent.mkdir()
    broken.write_text("---\ntask: [broken\n---\nhand notes\n", encoding="utf-8")
    kept = broken.with_name("agent-02-result.unreadable.md")
    try:
        runner = start(project, "--wait-orphans")
        background.append(runner)
        wait_until(lambda: kept.exists() or runner.process.poll() is not None, "the run to set the result aside")
        runner.kill(signal.SIGTERM)  # it is past preparing: the signal is the run's
        assert runner.wait(timeout=30) == 130
        said = "kept as agent-02-result.unreadable.md, and T-02 runs again"
        assert any(e["event"] == "notice" and said in e["message"] for e in runner.events()), runner.events()
        logged = [json.loads(line) for line in (workspace(project) / "state" / "events.jsonl").read_text().splitlines()]
        assert [(e["event"], e["run"]) for e in logged] == [("notice", None)] * 2 and said in logged[0]["message"]
        assert logged[1]["message"] == (
            "interrupted while settling the attempts a dead runner left (T-01): what still runs of them is left "
            "running (--wait-orphans); the next `orchestrator run` takes them up"
        )
        assert orphan.poll() is None  # waited for, not stopped: the next run settles it
    finally:
        orphan.kill()
        orphan.wait()


def test_a_fake_run_settles_what_a_dead_local_run_left(project: Path) -> None:
    """The orphan was started by local processes: a fake run stops it with them, it is never
    forgotten (the journal is started afresh after)."""
    write_plan(project, [Spec("T-01", "echo one")])
    orphan = _orphan(project)
    try:
        result = run(project, "--executor", "fake")
        assert result.code == 0, result.stderr
        assert any(e["event"] == "notice" and "T-01" in e["message"] for e in result.events)
        assert orphan.wait(timeout=10) == -signal.SIGTERM
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()


def test_an_agent_session_open_at_a_kill_9_is_resumed(project: Path) -> None:
    """The journal kept the claude session of the attempt a killed runner left: the next run's
    attempt continues it (--resume), as after Ctrl-C."""
    stub = project / "claude-stub"
    stub.write_text(
        "#!/bin/sh\n"
        'echo "$@" > "$(dirname "$0")/claude-argv"\n'
        'echo \'{"type":"result","subtype":"success","is_error":false,"result":"done","session_id":"sess-123"}\'\n'
    )
    stub.chmod(0o755)
    write_plan(project, [Spec("T-01", "unused")], {"backend": "claude", "env": {}})
    orphan = _orphan(project)
    orphan.kill()
    orphan.wait()  # the attempt's processes are gone; its session is what is left
    result = cli(project, "run", "--json", env={"ORCHESTRATOR_CLAUDE_BIN": str(stub)})
    assert result.code == 0, result.stderr
    assert "--resume sess-123" in (project / "claude-argv").read_text()


def test_wait_orphans_says_now_and_then_what_it_still_waits_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """While ``run --wait-orphans`` waits for a dead runner's attempts it said nothing, however
    long: now it names them at once, then says it still waits every ``timing.tell_every`` seconds."""
    monkeypatch.setenv(timing.VARIABLE, "tell_every=0.3")
    orphan = subprocess.Popen(["sleep", "1.2"], start_new_session=True)
    told: list[str] = []
    try:
        anyio.run(local._wait_for, {orphan.pid: "T-07"}, told.append)
    finally:
        if orphan.poll() is None:
            orphan.kill()
        orphan.wait(timeout=10)
    assert told[0].startswith("⏳ waiting for") and f"T-07 (process group {orphan.pid})" in told[0], told
    again = told[1:]
    assert 2 <= len(again) <= 4 and all(line.startswith("⏳ still waiting (") and "T-07" in line for line in again), (
        told
    )


def test_a_group_found_then_given_to_somebody_else_is_neither_waited_for_nor_killed() -> None:
    """A dead runner's group found running, whose number leads another process by the time the
    runner looks again (the group emptied, the id reused): ``--wait-orphans`` does not wait for
    it, and the SIGKILL at the end of the grace does not reach it."""
    stranger = subprocess.Popen(
        ["sh", "-c", "trap '' TERM; echo ready; exec sleep 1000"], start_new_session=True, stdout=subprocess.PIPE
    )
    try:
        assert stranger.stdout is not None
        assert stranger.stdout.readline() == b"ready\n"  # (its TERM ignored: a CI run's SIGTERM came before the trap)
        wait_until(lambda: process_started(stranger.pid) is not None, "the stranger to start")
        began = process_started(stranger.pid)
        assert began is not None
        told: list[str] = []
        then = {stranger.pid: began - 100}  # the leader the runner found had started at another time
        anyio.run(local._wait_for, {stranger.pid: "T-01"}, told.append, then)
        assert told == []  # not waited for: it is not the attempt's group
        anyio.run(groups.stop_groups, [stranger.pid], 0.3, then)  # (SIGTERM: ignored; no SIGKILL)
        assert stranger.poll() is None, "somebody else's process was killed"
        anyio.run(groups.stop_groups, [stranger.pid], 0.3, {stranger.pid: began})  # its own: killed
        assert stranger.wait(timeout=10) == -signal.SIGKILL
    finally:
        if stranger.poll() is None:
            stranger.kill()
            stranger.wait(timeout=10)
        assert stranger.stdout is not None
        stranger.stdout.close()
