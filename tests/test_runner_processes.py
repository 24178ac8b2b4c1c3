"""Processes: the local executor's edge cases, timeouts that kill whole trees, retries, start errors, huge output."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from runner_helpers import (
    CLI,
    HANG_GUARD,
    Spec,
    kill_leftovers,
    pid_gone,
    read_pids,
    result_body,
    results,
    run,
    wait_gone,
    write_plan,
)

from orchestrator.executors import Handle, Launch, Limits, LocalExecutor, ProcessRun
from orchestrator.executors.groups import group_running, process_state


@pytest.fixture
def leftovers(tmp_path: Path) -> Iterator[Path]:
    """Whatever pid files a test's scripts wrote: killed at the end should the test fail half way."""
    yield tmp_path
    kill_leftovers(tmp_path, read_pids(tmp_path).values())


def _process(
    directory: Path,
    argv: list[str],
    limits: Limits,
    *,
    stdin: Path | None = None,
    on_line: Callable[[bytes], None] | None = None,
    on_start: Callable[[Handle], None] | None = None,
) -> Coroutine[Any, Any, ProcessRun]:
    """``LocalExecutor.run`` of ``argv`` in ``directory``, its output to ``out`` and ``err`` there."""
    launch = Launch(
        "T-01", 1, tuple(argv), directory, dict(os.environ), stdin, directory / "out", directory / "err", limits
    )
    return LocalExecutor().run(launch, on_line=on_line, on_start=on_start)


def _run_argv(
    tmp_path: Path,
    argv: list[str],
    limits: Limits,
    *,
    stdin: Path | None = None,
    on_line: Callable[[bytes], None] | None = None,
    on_start: Callable[[Handle], None] | None = None,
) -> ProcessRun:
    return anyio.run(partial(_process, tmp_path, argv, limits, stdin=stdin, on_line=on_line, on_start=on_start))


def _run(
    tmp_path: Path,
    script: str,
    limits: Limits,
    stdin: Path | None = None,
    lines: list[bytes] | None = None,
    starts: list[Handle] | None = None,
) -> ProcessRun:
    return _run_argv(
        tmp_path,
        ["bash", "-c", script],
        limits,
        stdin=stdin,
        on_line=lines.append if lines is not None else None,
        on_start=starts.append if starts is not None else None,
    )


# --- LocalExecutor ----------------------------------------------------------------------------------


def test_local_executor_streams_output_and_lines(tmp_path: Path) -> None:
    lines: list[bytes] = []
    starts: list[Handle] = []
    run = _run(
        tmp_path,
        "echo $$ > pid; echo one; echo two >&2; printf 'three\\nfour'; exit 3",
        Limits(timeout=30),
        None,
        lines,
        starts,
    )
    assert run.exit_code == 3 and run.signal is None and not run.ok
    assert run.describe() == "exit code 3"
    assert (tmp_path / "out").read_bytes() == b"one\nthree\nfour"
    assert (tmp_path / "err").read_bytes() == b"two\n"
    assert lines == [b"one", b"three", b"four"]  # the last line counts even without a newline
    assert [handle["pgid"] for handle in starts] == [int((tmp_path / "pid").read_text())]
    assert run.stdout_bytes == 14 and run.stderr_bytes == 4


def test_local_executor_reads_a_chatty_child_in_batches(tmp_path: Path) -> None:
    """Forty lines written 10 ms apart reach ``on_line`` in a few batches, not one by one (each
    read is a wake-up of the runner: an agent streaming its answer would cost one a line), and
    every line arrives, in order, the last one at the child's exit."""
    arrivals: list[tuple[float, bytes]] = []

    def seen(line: bytes) -> None:
        arrivals.append((time.monotonic(), line))

    script = "for i in $(seq 1 40); do echo line-$i; sleep 0.01; done; echo last"
    run = _run_argv(tmp_path, ["bash", "-c", script], Limits(timeout=HANG_GUARD), on_line=seen)
    assert run.ok
    assert [line for _, line in arrivals] == [f"line-{i}".encode() for i in range(1, 41)] + [b"last"]
    batches = 1 + sum(1 for (before, _), (after, _) in itertools.pairwise(arrivals) if after - before > 0.005)
    assert batches <= 8, f"{batches} wake-ups for 41 lines"


def test_local_executor_a_failing_line_callback_stops_the_group(leftovers: Path) -> None:
    """An exception in ``on_line`` reaches the caller as itself, and the process group is stopped
    rather than left running."""
    script = f"echo $$ > {leftovers}/pid; echo boom; exec sleep 60"

    def explode(line: bytes) -> None:
        raise ValueError(f"bad line {line!r}")

    with pytest.raises(ValueError, match="bad line b'boom'"):
        _run_argv(leftovers, ["bash", "-c", script], Limits(timeout=30, grace=1), on_line=explode)
    pid = int((leftovers / "pid").read_text())
    assert not group_running(pid)


def test_local_executor_leaves_no_descriptor_behind_across_event_loops(tmp_path: Path) -> None:
    """Every child's pipes are closed once it is reaped: five event loops of ten children each
    leave no descriptor behind (the garbage collector is kept out of it: event loops hold
    reference cycles, and only its passing would close them otherwise)."""
    import gc

    def descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    async def ten() -> None:
        async with anyio.create_task_group() as group:
            for index in range(10):
                directory = tmp_path / str(index)
                directory.mkdir(exist_ok=True)
                group.start_soon(partial(_process, directory, ["true"], Limits(timeout=HANG_GUARD)))

    before = descriptors()
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(5):
            anyio.run(ten)
            assert descriptors() - before <= 1
    finally:
        if enabled:
            gc.enable()


def test_local_executor_long_lines_are_linear(tmp_path: Path) -> None:
    """A 12 MB line arrives in thousands of chunks; joining them must not be quadratic (hang guard).
    (One past 16 MB is not handed on at all: tests/test_redaction.)"""
    sizes: list[int] = []
    script = "head -c 12000000 /dev/zero | tr '\\0' x; printf '\\nshort\\n'"
    began = time.monotonic()
    run = _run_argv(tmp_path, ["bash", "-c", script], Limits(timeout=120), on_line=lambda line: sizes.append(len(line)))
    assert time.monotonic() - began < 15
    assert run.ok and run.stdout_bytes == 12_000_007
    assert sizes == [12_000_000, 5]


def test_process_group_of_zombies_is_not_alive() -> None:
    """A group whose members have all exited (unreaped zombies) counts as gone: nothing to wait for."""
    process = subprocess.Popen(["true"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while process_state(process.pid) != "Z":  # exited, not yet reaped by us
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not group_running(process.pid)
    finally:
        process.wait(timeout=10)
    sleeper = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    try:
        assert group_running(sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait(timeout=10)
    assert not group_running(sleeper.pid)


def test_local_executor_reads_stdin_from_a_file(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("brief on stdin\n")
    run = _run(tmp_path, "cat; echo done", Limits(timeout=30), stdin=source)
    assert run.ok
    assert (tmp_path / "out").read_text() == "brief on stdin\ndone\n"


def test_local_executor_without_stdin_reads_nothing(tmp_path: Path) -> None:
    run = _run(tmp_path, "cat; echo done", Limits(timeout=30))
    assert run.ok
    assert (tmp_path / "out").read_text() == "done\n"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/nonexistent/agent", "--flag"], "command not found: /nonexistent/agent"),
        (["no-such-command-anywhere-xyz"], "command not found: no-such-command-anywhere-xyz"),
    ],
)
def test_local_executor_could_not_start(tmp_path: Path, argv: list[str], expected: str) -> None:
    run = _run_argv(tmp_path, argv, Limits(timeout=30))
    assert run.start_error == expected
    assert run.exit_code is None and not run.ok
    assert run.describe().startswith("could not start: ")


def test_local_executor_not_executable(tmp_path: Path) -> None:
    script = tmp_path / "agent.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    run = _run_argv(tmp_path, [str(script)], Limits(timeout=30))
    assert run.start_error is not None and "permission denied" in run.start_error


def test_local_executor_killed_by_a_signal(tmp_path: Path) -> None:
    run = _run(tmp_path, "kill -9 $$", Limits(timeout=30))
    assert run.exit_code is None and run.signal == signal.SIGKILL
    assert run.describe() == "killed by SIGKILL"


def test_local_executor_setsid_grandchild_holding_the_pipe_does_not_hang(leftovers: Path) -> None:
    tmp_path = leftovers
    began = time.monotonic()
    run = _run(tmp_path, "setsid sleep 30 & echo $! > setsid.pid; echo hi", Limits(timeout=60, grace=1))
    elapsed = time.monotonic() - began
    assert run.ok
    assert (tmp_path / "out").read_text() == "hi\n"
    assert elapsed < 10, f"the executor waited {elapsed:.1f}s for a grandchild that left the group"


def test_local_executor_background_child_left_in_the_group_is_stopped(leftovers: Path) -> None:
    tmp_path = leftovers
    run = _run(tmp_path, "sleep 1000 & echo $! > bg.pid; echo started", Limits(timeout=60, grace=1))
    assert run.ok
    assert wait_gone(read_pids(tmp_path)["bg.pid"])


def test_local_executor_timeout_kills_the_whole_group(leftovers: Path) -> None:
    tmp_path = leftovers
    script = "echo $$ > leader.pid; sleep 1000 & echo $! > child.pid; sleep 1000"
    run = _run(tmp_path, script, Limits(timeout=0.5, grace=0.5))
    assert run.timed_out == "timeout" and not run.ok
    assert run.describe(Limits(timeout=0.5)) == "timed out after 0.5s (wall-clock limit)"
    for pid in read_pids(tmp_path).values():
        assert wait_gone(pid), f"pid {pid} survived the timeout"


def test_local_executor_inactivity(leftovers: Path) -> None:
    tmp_path = leftovers
    lines: list[bytes] = []
    run = _run(tmp_path, "echo $$ > leader.pid; echo once; sleep 1000", Limits(timeout=60, inactivity=0.5), None, lines)
    assert run.timed_out == "inactivity"
    assert lines == [b"once"]
    assert run.describe(Limits(inactivity=0.5)) == "hung: no output for 0.5s (inactivity limit)"
    assert wait_gone(read_pids(tmp_path)["leader.pid"])


def test_local_executor_output_keeps_an_inactive_process_alive(tmp_path: Path) -> None:
    run = _run(tmp_path, "for i in 1 2 3 4 5 6; do echo $i >&2; sleep 0.2; done", Limits(timeout=60, inactivity=0.6))
    assert run.ok, run.describe()


def test_local_executor_output_keeps_a_busy_process_alive_under_a_short_inactivity_limit(tmp_path: Path) -> None:
    """Output is read in batches, but never so rarely that a process writing every 50 ms looks
    silent for 0.4 s: a batch waits a quarter of the inactivity limit at most."""
    run = _run(tmp_path, "for i in $(seq 1 30); do echo $i; sleep 0.05; done", Limits(timeout=60, inactivity=0.4))
    assert run.ok, run.describe()


def test_local_executor_a_process_that_floods_its_output_meets_its_timeout(tmp_path: Path) -> None:
    """``yes`` writes faster than any runner reads: the reading goes a pipe's worth at a time, the
    event loop gets its turn in between, and the wall-clock limit stops it. (In a process of its
    own: a reader that never yields would hang this test, timers and all.)"""
    code = (
        "import anyio, os, sys\n"
        "from pathlib import Path\n"
        "from orchestrator.executors import Launch, Limits, LocalExecutor\n"
        "d = Path(sys.argv[1])\n"
        "launch = Launch('T-01', 1, ('yes',), d, dict(os.environ), None, d / 'out', d / 'err',\n"
        "                Limits(timeout=1, grace=0.5, log_cap=1000))\n"
        "async def main():\n"
        "    run = await LocalExecutor().run(launch, on_line=lambda line: None)\n"
        "    print(run.timed_out, run.stdout_bytes > 1000)\n"
        "anyio.run(main)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=HANG_GUARD
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["timeout", "True"]


def test_local_executor_leaves_no_descriptor_behind_when_a_start_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attempt's pipes are closed whatever stops the start: a cancellation, an argument no
    process can take (ValueError), a pipe the system refuses (then a start error, not a raise);
    and where pipes cannot be grown (macOS), a process runs all the same."""
    import fcntl

    def descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    async def cancelled() -> None:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await _process(tmp_path, ["true"], Limits(timeout=HANG_GUARD))

    before = descriptors()
    anyio.run(cancelled)
    with pytest.raises(ValueError, match="null byte"):
        _run_argv(tmp_path, ["echo", "a\0b"], Limits(timeout=HANG_GUARD))
    with monkeypatch.context() as patched:

        def refused() -> tuple[int, int]:
            raise OSError(24, "Too many open files")

        patched.setattr(os, "pipe", refused)
        run = _run_argv(tmp_path, ["true"], Limits(timeout=HANG_GUARD))
    assert run.start_error == "true: Too many open files"
    assert descriptors() == before
    monkeypatch.delattr(fcntl, "F_SETPIPE_SZ")
    monkeypatch.delattr(fcntl, "F_GETPIPE_SZ")
    assert _run_argv(tmp_path, ["echo", "hi"], Limits(timeout=HANG_GUARD)).ok
    assert (tmp_path / "out").read_text() == "hi\n"


def test_an_attempt_cancelled_as_it_starts_still_stops_its_process(tmp_path: Path) -> None:
    """Ctrl-C in the very moment an attempt's process has started (its handle just given) must
    still stop and reap that process."""
    handles: list[Handle] = []

    async def main() -> None:
        with anyio.CancelScope() as scope:

            def started(handle: Handle) -> None:
                handles.append(handle)
                scope.cancel()

            await _process(tmp_path, ["sleep", "30"], Limits(timeout=None, grace=0.5), on_start=started)

    anyio.run(main)
    pid = int(handles[0]["pgid"])
    try:
        assert not group_running(pid), "the process outlived the cancelled attempt"
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reaped already
    finally:
        if group_running(pid):
            os.killpg(pid, signal.SIGKILL)


def test_local_executor_cancelled_stops_the_group(leftovers: Path) -> None:
    tmp_path = leftovers

    async def main() -> bool:
        with anyio.move_on_after(1.0) as scope:
            await _process(
                tmp_path,
                ["bash", "-c", "echo $$ > leader.pid; sleep 1000 & echo $! > child.pid; sleep 1000"],
                Limits(timeout=None, grace=0.5),
            )
        return scope.cancelled_caught

    assert anyio.run(main), "the executor returned before it was cancelled"
    pids = read_pids(tmp_path)
    assert len(pids) == 2
    for pid in pids.values():
        assert wait_gone(pid, 5), f"pid {pid} survived the cancellation"


# --- through the runner ---------------------------------------------------------------------------


def test_timeout_kills_the_task_and_its_grandchild(leftovers: Path) -> None:
    tmp_path = leftovers
    script = "echo $$ > child.pid\nsleep 1000 & echo $! > grandchild.pid\nsleep 1000"
    write_plan(tmp_path, [Spec("T-01", script)], {"timeout": 1, "kill_grace": 0.5})
    result = run(tmp_path)
    assert result.code == 1
    meta = results(tmp_path)["T-01"]
    assert meta["status"] == "failed"
    assert meta["error_class"] == "timeout"
    assert meta["reason"] == "timed out after 1s (wall-clock limit)"
    assert result.tasks("task_failed") == ["T-01"]
    pids = read_pids(tmp_path)
    assert set(pids) == {"child.pid", "grandchild.pid"}
    for name, pid in pids.items():
        assert pid_gone(pid), f"{name} ({pid}) is still running"


def test_a_child_ignoring_sigterm_is_killed(leftovers: Path) -> None:
    tmp_path = leftovers
    script = "trap '' TERM\necho $$ > child.pid\nsleep 1000 & echo $! > grandchild.pid\nwait"
    write_plan(tmp_path, [Spec("T-01", script)], {"timeout": 1, "kill_grace": 0.5})
    result = run(tmp_path, timeout=30)  # (a hang guard: without SIGKILL after the grace, it would not end)
    assert result.code == 1
    meta = results(tmp_path)["T-01"]
    assert meta["status"] == "failed" and meta["error_class"] == "timeout"
    for name, pid in read_pids(tmp_path).items():
        assert pid_gone(pid), f"{name} ({pid}) ignored SIGTERM and survived"


def test_inactivity_timeout_fails_a_hung_task(leftovers: Path) -> None:
    tmp_path = leftovers
    write_plan(tmp_path, [Spec("T-01", "echo $$ > child.pid\necho working\nsleep 1000")], {"inactivity_timeout": 1})
    result = run(tmp_path)
    assert result.code == 1
    meta = results(tmp_path)["T-01"]
    assert meta["status"] == "failed"
    assert meta["error_class"] == "hang"
    assert "hung" in meta["reason"] and "inactivity" in meta["reason"]
    assert "working" in result_body(tmp_path, "T-01")
    assert pid_gone(read_pids(tmp_path)["child.pid"])


# --- processes that leave the attempt's group --------------------------------------------------------

_STRAYS_NEEDED = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a child subreaper is Linux's")


@_STRAYS_NEEDED
@pytest.mark.parametrize(
    ("script", "settings"),
    [
        pytest.param("setsid sleep 300 & echo $! > setsid.pid\necho forked\nsleep 1", {}, id="completes"),
        pytest.param("setsid sleep 300 & echo $! > setsid.pid\nsleep 1000", {"timeout": 1}, id="hangs-and-is-killed"),
        # a double fork: the middle process exits at once, its child holds a child of its own
        pytest.param(
            "( setsid bash -c 'sleep 300 & echo $! > deep.pid; echo $$ > setsid.pid; wait' & )\n"
            "until [ -s deep.pid ] && [ -s setsid.pid ]; do sleep 0.05; done",
            {},
            id="double-fork",
        ),
        # job control: a group of its own in the attempt's session, its environment cleared
        pytest.param("set -m\nenv -i sleep 300 & echo $! > setsid.pid\nsleep 0.5", {}, id="job-control"),
        # a session of its own and no environment: nothing ties it to its attempt, the run's end stops it
        pytest.param("setsid env -i sleep 300 & echo $! > setsid.pid\nsleep 0.5", {}, id="bare-environment"),
    ],
)
def test_a_process_that_leaves_the_group_does_not_outlive_its_task(
    leftovers: Path, script: str, settings: dict[str, object]
) -> None:
    """``setsid`` takes a process out of its attempt's process group, which used to be all that
    was stopped: it outlived its task and the run."""
    tmp_path = leftovers
    write_plan(tmp_path, [Spec("T-01", script)], {"kill_grace": 0.5, **settings})
    result = run(tmp_path)
    assert result.code == (1 if "timeout" in settings else 0), result.stderr
    pids = read_pids(tmp_path)
    assert "setsid.pid" in pids
    for name, pid in pids.items():
        assert wait_gone(pid, 5), f"{name} ({pid}) outlived its task"


@_STRAYS_NEEDED
def test_a_task_s_daemon_is_stopped_when_its_own_task_ends_not_another(leftovers: Path) -> None:
    """T-01 and T-02 each start a daemon with setsid. T-01 ends first: its daemon goes then,
    while T-02's, tied to T-02 by the variables in its environment, runs on until T-02 ends."""
    tmp_path = leftovers
    one = "setsid sleep 300 & echo $! > one.pid\nuntil [ -s two.pid ]; do sleep 0.05; done"
    two = (
        "setsid sleep 300 & echo $! > two.pid\n"
        "until [ -s one.pid ]; do sleep 0.05; done\n"
        'state() { cut -d" " -f3 /proc/$1/stat 2>/dev/null || echo gone; }\n'
        'while [ "$(state $(cat one.pid))" != gone ] && [ "$(state $(cat one.pid))" != Z ]; do sleep 0.05; done\n'
        'echo "mine: $(state $(cat two.pid))"'
    )
    write_plan(tmp_path, [Spec("T-01", one), Spec("T-02", two)], {"kill_grace": 0.5})
    result = run(tmp_path)
    assert result.code == 0, result.stderr
    assert result_body(tmp_path, "T-02") == "mine: S"
    for name, pid in read_pids(tmp_path).items():
        assert wait_gone(pid, 5), f"{name} ({pid}) outlived its task"


@_STRAYS_NEEDED
def test_a_run_in_process_leaves_the_caller_s_own_children_alone(leftovers: Path) -> None:
    """A program that runs a plan in-process has children of its own: a run stops and reaps only
    what its attempts left, never the caller's processes (running or exited, not yet waited for)."""
    from orchestrator import Workspace
    from orchestrator.run.runner import run as run_in_process

    tmp_path = leftovers
    mine = subprocess.Popen(["sleep", "60"])
    done = subprocess.Popen(["sh", "-c", "exit 7"])
    try:
        wait_gone(done.pid)  # a zombie, for the caller to wait for
        write_plan(tmp_path, [Spec("T-01", "setsid sleep 300 & echo $! > daemon.pid\nsleep 0.2")], {"kill_grace": 0.5})
        assert run_in_process(Workspace.find(tmp_path)).exit_code == 0
        assert wait_gone(read_pids(tmp_path)["daemon.pid"], 5), "the attempt's daemon outlived its task"
        assert mine.poll() is None
        assert done.wait(timeout=5) == 7
    finally:
        mine.kill()
        mine.wait()


@_STRAYS_NEEDED
@pytest.mark.slow
def test_a_daemon_of_a_killed_runner_s_task_is_stopped_by_the_next_run(leftovers: Path) -> None:
    """kill -9 of the runner leaves its task and the task's setsid daemon; the next run finds the
    daemon by the variables that name its attempt, and stops it with the task's group."""
    from runner_helpers import start, wait_until

    tmp_path = leftovers
    flag = tmp_path / "slow.flag"
    flag.touch()
    script = "if [ -e slow.flag ]; then setsid sleep 300 & echo $! > daemon.pid; echo $$ > task.pid; sleep 1000; fi"
    write_plan(tmp_path, [Spec("T-01", script)], {"kill_grace": 0.5})
    runner = start(tmp_path)
    try:
        wait_until(lambda: len(read_pids(tmp_path)) == 2, "the task and its daemon to run")
        runner.kill(signal.SIGKILL)
    finally:
        runner.cleanup()
    pids = read_pids(tmp_path)
    assert not pid_gone(pids["daemon.pid"]) and not pid_gone(pids["task.pid"])
    flag.unlink()
    again = run(tmp_path)
    assert again.code == 0, again.stderr
    for name, pid in pids.items():
        assert wait_gone(pid, 5), f"{name} ({pid}) outlived the killed runner's next run"


def test_retry_then_success(tmp_path: Path) -> None:
    script = """\
n=$(cat count 2>/dev/null || echo 0)
n=$((n + 1))
echo $n > count
[ "$n" -ge 2 ] || exit 1
echo "ok on $n"
"""
    write_plan(tmp_path, [Spec("T-01", script)], {"retries": 2, "backoff_base": 0.05, "backoff_cap": 0.1})
    result = run(tmp_path)
    assert result.code == 0, result.stderr
    assert result.kinds("T-01") == ["task_started", "task_retrying", "task_started", "task_completed"]
    retry = next(e for e in result.events if e["event"] == "task_retrying")
    assert retry["attempt"] == 2 and retry["error_class"] == "exit" and retry["delay"] <= 0.1
    meta = results(tmp_path)["T-01"]
    assert meta["status"] == "completed" and meta["attempts"] == 2
    assert result_body(tmp_path, "T-01").strip() == "ok on 2"
    logs = tmp_path / ".orchestrator" / "logs"
    # A log is created with the first byte of output: attempt 1 printed nothing, attempt 2 did.
    assert not (logs / "agent-01.attempt-1.out").exists()
    assert (logs / "agent-01.attempt-2.out").read_text() == "ok on 2\n"
    assert meta["logs"] == [".orchestrator/logs/agent-01.attempt-2.out"]


def test_retries_run_out(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo try >> tries.log\nexit 127")], {"retries": 2, "backoff_base": 0.01})
    result = run(tmp_path)
    assert result.code == 1
    # Exit 127 (command not found inside a shell script) is an ordinary failure: it is retried.
    assert result.tasks("task_retrying") == ["T-01", "T-01"]
    assert (tmp_path / "tries.log").read_text().split() == ["try"] * 3
    meta = results(tmp_path)["T-01"]
    assert meta["attempts"] == 3
    assert meta["reason"] == "exit code 127 (after 3 attempts)"


def test_command_that_cannot_start_fails_at_once(tmp_path: Path) -> None:
    settings = {"backend": "command", "command": ["/nonexistent/agent"], "retries": 3, "backoff_base": 0.01}
    write_plan(tmp_path, [Spec("T-01", "unused"), Spec("T-02", "unused", deps=["T-01"])], settings)
    result = run(tmp_path)
    assert result.code == 1
    assert result.kinds("T-01") == ["task_started", "task_failed"]
    meta = results(tmp_path)["T-01"]
    assert meta["status"] == "failed"
    assert meta["attempts"] == 1
    assert meta["error_class"] == "start"
    assert "could not start" in meta["reason"] and "/nonexistent/agent" in meta["reason"]
    assert results(tmp_path)["T-02"]["status"] == "skipped"


_MEASURE = """
import os, subprocess, sys
process = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(process.pid, 0)
process.returncode = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(process.returncode)
"""


@pytest.mark.slow
def test_fifty_megabytes_of_output(tmp_path: Path) -> None:
    size = 50_000_000
    script = f"head -c {size} /dev/zero | tr '\\0' x\necho\necho tail-line"
    write_plan(tmp_path, [Spec("T-01", script)])
    # Linux counts the address space a child was forked with in its peak RSS, so the runner is
    # started from a small Python process (not from pytest, which may be big by now) that reports it.
    rss_file = tmp_path / "rss"
    completed = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(rss_file), *CLI, "run", "--json"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    peak_mb = int(rss_file.read_text()) / 1024  # ru_maxrss is in KiB on Linux
    assert peak_mb < 200, f"runner peak RSS {peak_mb:.0f} MB"
    log = tmp_path / ".orchestrator" / "logs" / "agent-01.attempt-1.out"
    assert log.stat().st_size == size + len("\ntail-line\n")
    with log.open("rb") as handle:
        assert handle.read(size) == b"x" * size
    body = result_body(tmp_path, "T-01")
    assert len(body) < 1_100_000
    assert "output truncated at 1,000,000 characters" in body
    assert "agent-01.attempt-1.out" in body
    assert results(tmp_path)["T-01"]["status"] == "completed"
    final = (tmp_path / ".orchestrator" / "final_output.md").stat().st_size
    assert final < 2_000_000
