"""A workspace the system will not let us write is a clear one-line error, exit 2, never a traceback.

Unwritable directories (permissions, or an immutable flag for root, who ignores permissions), a
file where a directory must be, a directory where a file must be, and the same happening in the
middle of a run: every command names the file the user knows (not a temporary one beside it),
says what to do, exits 2 (``WorkspaceError``, also in ``--json``), and a run stops every process
it started before it says so.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from runner_helpers import Spec, cli, kill_leftovers, read_pids, wait_gone, write_plan

from orchestrator.errors import WorkspaceError, workspace_error_from

PLAN = [Spec("T-01", "echo one"), Spec("T-02", "echo two", deps=["T-01"])]


def _one_clean_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@contextlib.contextmanager
def unwritable(directory: Path) -> Iterator[None]:
    """``directory`` refuses new entries: mode 0555 for a user, the immutable flag for root (who
    is not held back by permissions); skips the test where neither can be had."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(0o755)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: no way to make a directory unwritable")
    made = subprocess.run(["chattr", "+i", str(directory)], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"running as root and chattr +i is refused here: {made.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)


@pytest.mark.parametrize("command", ["render", "run", "reset --all", "aggregate"])
def test_an_unwritable_workspace_is_one_line_and_exit_2(command: str, tmp_path: Path) -> None:
    write_plan(tmp_path, PLAN)
    workspace = tmp_path / ".orchestrator"
    before = sorted(p.name for p in workspace.iterdir())
    with unwritable(workspace):
        result = cli(tmp_path, *command.split())
        as_json = cli(tmp_path, *command.split(), "--json")
    assert result.code == 2, result.stderr
    line = _one_clean_line(result.stderr)
    assert line.startswith(".orchestrator/"), line
    assert ".tmp-" not in line
    assert " — " in line, "no word on what to do"
    assert as_json.code == 2
    report = json.loads(as_json.stdout.splitlines()[-1])
    assert report["ok"] is False and report["error"] == "WorkspaceError" and report["message"] == line
    assert sorted(p.name for p in workspace.iterdir()) == before, "something was written"


def test_a_file_where_results_must_be_stops_run_before_any_task(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "touch ran.txt")])
    (tmp_path / ".orchestrator" / "results").write_text("not a directory\n", encoding="utf-8")
    result = cli(tmp_path, "run")
    assert result.code == 2
    line = _one_clean_line(result.stderr)
    assert line.startswith(".orchestrator/results: ") and "move it aside" in line, line
    assert not (tmp_path / "ran.txt").exists()


def test_a_directory_where_final_output_must_be_is_named(tmp_path: Path) -> None:
    write_plan(tmp_path, PLAN)
    (tmp_path / ".orchestrator" / "final_output.md").mkdir()
    result = cli(tmp_path, "aggregate")
    assert result.code == 2
    line = _one_clean_line(result.stderr)
    assert line.startswith(".orchestrator/final_output.md: ") and "a directory stands where a file must be" in line


def test_a_file_where_the_briefs_go_leaves_the_plan_as_it_was(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, PLAN)
    (tmp_path / ".orchestrator" / "agent_tasks").write_text("in the way\n", encoding="utf-8")
    before = plan.read_bytes(), plan.stat().st_mtime_ns
    result = cli(tmp_path, "render")
    assert result.code == 2
    assert _one_clean_line(result.stderr).startswith(".orchestrator/agent_tasks")
    assert (plan.read_bytes(), plan.stat().st_mtime_ns) == before


def test_results_taken_away_mid_run_stop_it_cleanly_and_its_processes_with_it(tmp_path: Path) -> None:
    """T-01 puts a file where results/ was while T-02 runs: writing T-01's result fails, the run
    stops with one line and exit 2, and T-02's process does not outlive it."""
    write_plan(
        tmp_path,
        [
            Spec(
                "T-01",
                "while [ ! -s t02.pid ]; do sleep 0.05; done\nmv .orchestrator/results moved\n"
                "echo 'in the way' > .orchestrator/results",
            ),
            Spec("T-02", "echo $$ > t02.pid.tmp && mv t02.pid.tmp t02.pid\nexec sleep 60"),
        ],
        {"kill_grace": 1},
    )
    try:
        result = cli(tmp_path, "run", timeout=45)
        assert result.code == 2, (result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert result.stderr.splitlines()[-1].startswith(".orchestrator/results"), result.stderr
        pid = read_pids(tmp_path, "t02.pid")["t02.pid"]
        assert wait_gone(pid, timeout=5), "T-02 outlived the runner"
    finally:
        kill_leftovers(tmp_path, read_pids(tmp_path, "t02.pid").values())


def test_workspace_error_from_names_the_file_not_its_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    temp = tmp_path / ".orchestrator" / ".tmp-master_plan.md.4242.7"
    error = workspace_error_from(PermissionError(errno.EACCES, "Permission denied", str(temp)))
    assert isinstance(error, WorkspaceError) and error.exit_code == 2
    assert str(error).startswith(".orchestrator/master_plan.md: Permission denied — ")
    staging = workspace_error_from(OSError(errno.ENOSPC, "No space left on device", ".tmp-agent_tasks.99.0"))
    assert staging is not None and str(staging).startswith("agent_tasks: No space left on device — the disk is full")
    outside = workspace_error_from(OSError(errno.EROFS, "Read-only file system", "/elsewhere/x.md"))
    assert outside is not None and str(outside).startswith("/elsewhere/x.md: Read-only file system — ")
    assert workspace_error_from(OSError(errno.EBADF, "Bad file descriptor")) is None  # a bug: traceback


_FILE_SIZE_LIMITED = (
    "import resource, runpy, sys; "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300)); "
    "sys.argv = ['orchestrator', *sys.argv[1:]]; "
    "runpy.run_module('orchestrator', run_name='__main__', alter_sys=True)"
)


@pytest.mark.parametrize("json_output", [False, True])
def test_a_write_the_disk_refuses_is_one_line_naming_the_file(json_output: bool, tmp_path: Path) -> None:
    """``os.write`` fails with no file named (a full disk, a quota, a file-size limit: here the
    last, which any user may set): the error still names the brief it was writing, exit 2."""
    write_plan(tmp_path, PLAN)
    args = ["render", *(["--json"] if json_output else [])]
    done = subprocess.run(
        [sys.executable, "-c", _FILE_SIZE_LIMITED, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    if json_output:
        error = json.loads(done.stdout)
        assert error["error"] == "WorkspaceError"
        message = error["message"]
    else:
        message = _one_clean_line(done.stderr)
    assert message.startswith(os.path.join(".orchestrator", "agent_tasks", "agent-0")), message
    assert "File too large" in message and "ulimit -f" in message, message
    tasks = tmp_path / ".orchestrator" / "agent_tasks"
    assert not tasks.exists() or not [p for p in tasks.iterdir() if p.name.startswith(".tmp-")]


def test_a_lock_whose_pid_cannot_be_written_is_let_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.state.lock import WorkspaceLock

    lock_file = tmp_path / "state" / "runner.lock"
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError) as caught:
        WorkspaceLock(lock_file, "ws").acquire()
    monkeypatch.setattr(os, "write", real_write)
    assert caught.value.filename == os.fspath(lock_file)
    error = workspace_error_from(caught.value)
    assert error is not None and "the disk is full" in str(error)
    with WorkspaceLock(lock_file, "ws"):  # not held: the descriptor with the flock was closed
        pass
