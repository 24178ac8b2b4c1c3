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
from runner_helpers import Spec, cli, cli_in_process, kill_leftovers, read_pids, wait_gone, write_plan

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
        # QA: the run said nothing of how it ended in its event log: history then called its
        # attempts lost ("killed?"), watch said the runner died, check said all well.
        said = result.stderr.splitlines()[-1]
        logged = [json.loads(x) for x in (tmp_path / ".orchestrator/state/events.jsonl").read_text().splitlines()]
        assert logged[-1]["event"] == "run_finished" and logged[-1]["exit_code"] == 2
        assert logged[-1]["stopped"] == f"error: {said}"
        history = cli_in_process(tmp_path, "history").stdout
        assert f"T-02 attempt 1: interrupted: the run stopped on an error: {said}" in history, history
        assert "killed?" not in history
        watched = cli(tmp_path, "watch")
        assert watched.code == 2 and "died" not in watched.stdout + watched.stderr
        checked = cli_in_process(tmp_path, "check")
        assert checked.code == 1 and f"the last run stopped on an error: {said}" in checked.stdout, checked.stdout
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


# --- nothing is written outside the workspace ------------------------------------------------------

Tree = dict[str, tuple[str, bytes]]


def tree(root: Path) -> Tree:
    """Every path under ``root``: a link's target, a file's bytes; links are not followed."""
    found: Tree = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path).encode())
        elif path.is_file():
            found[rel] = ("file", path.read_bytes())
        else:
            found[rel] = ("dir", b"")
    return found


@pytest.mark.parametrize("directory", ["results", "logs", "state", "agent_tasks"])
@pytest.mark.parametrize("command", ["run", "render", "reset --all", "aggregate"])
def test_a_directory_that_is_a_symlink_out_of_the_workspace_is_refused(
    directory: str, command: str, tmp_path: Path
) -> None:
    """Followed, it had results, logs and the lock written wherever it pointed."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_plan(project, PLAN)
    (project / ".orchestrator" / directory).symlink_to(elsewhere, target_is_directory=True)
    before = tree(project)
    result = cli(project, *command.split())
    assert result.code == 2, result.stdout + result.stderr
    line = _one_clean_line(result.stderr)
    assert line == (
        f".orchestrator/{directory}: a symlink to {elsewhere}, outside .orchestrator/ — the orchestrator writes "
        f"only inside its workspace: make {directory}/ a directory there (move what the link points to into it, "
        "to keep that)"
    )
    assert list(elsewhere.iterdir()) == []
    assert tree(project) == before


def test_a_symlink_within_the_workspace_is_followed(tmp_path: Path) -> None:
    write_plan(tmp_path, PLAN)
    ws = tmp_path / ".orchestrator"
    (ws / "kept-results").mkdir()
    (ws / "results").symlink_to("kept-results", target_is_directory=True)
    result = cli(tmp_path, "run")
    assert result.code == 0, result.stderr
    assert sorted(p.name for p in (ws / "kept-results").iterdir()) == ["agent-01-result.md", "agent-02-result.md"]


def test_results_swapped_for_a_symlink_mid_run_get_nothing_through_it(tmp_path: Path) -> None:
    """T-01 puts a symlink to a directory outside where results/ was while T-02 runs: the run
    writes no result through it, stops with one line and exit 2, and T-02's process goes too."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    project = tmp_path / "project"
    write_plan(
        project,
        [
            Spec(
                "T-01",
                "while [ ! -s t02.pid ]; do sleep 0.05; done\nmv .orchestrator/results moved\n"
                f"ln -s {elsewhere} .orchestrator/results",
            ),
            Spec("T-02", "echo $$ > t02.pid.tmp && mv t02.pid.tmp t02.pid\nexec sleep 60"),
        ],
        {"kill_grace": 1},
    )
    try:
        result = cli(project, "run", timeout=45)
        assert result.code == 2, (result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert result.stderr.splitlines()[-1].startswith(f".orchestrator/results: a symlink to {elsewhere}, outside")
        assert list(elsewhere.iterdir()) == []
        pid = read_pids(project, "t02.pid")["t02.pid"]
        assert wait_gone(pid, timeout=5), "T-02 outlived the runner"
    finally:
        kill_leftovers(project, read_pids(project, "t02.pid").values())


def test_files_that_are_symlinks_out_of_the_workspace_are_not_written_through(tmp_path: Path) -> None:
    """The lock and the final output each stand as a symlink to a file of the person's: the lock,
    which was opened through the link and truncated, refuses (exit 2, one line); once it is gone,
    final_output.md's link is replaced, not written through."""
    project, precious = tmp_path / "project", tmp_path / "precious.txt"
    precious.write_text("mine\n", encoding="utf-8")
    write_plan(project, PLAN)
    ws = project / ".orchestrator"
    (ws / "state").mkdir()
    (ws / "state" / "runner.lock").symlink_to(precious)
    (ws / "final_output.md").symlink_to(precious)
    for command in ("run", "reset --all", "aggregate"):
        refused = cli(project, *command.split())
        assert refused.code == 2, command
        line = _one_clean_line(refused.stderr)
        assert line.startswith(".orchestrator/state/runner.lock: Too many levels of symbolic links — a symlink"), line
        assert precious.read_text(encoding="utf-8") == "mine\n", command
    (ws / "state" / "runner.lock").unlink()
    result = cli(project, "run")
    assert result.code == 0, result.stderr
    assert precious.read_text(encoding="utf-8") == "mine\n"
    assert not (ws / "final_output.md").is_symlink() and (ws / "final_output.md").is_file()


# --- logs are capped --------------------------------------------------------------------------------


def test_a_chatty_task_leaves_logs_no_longer_than_log_cap(tmp_path: Path) -> None:
    """3 MiB on stdout and 2 MiB on stderr with ``log_cap: 1M``: each log keeps its first MiB, then
    says where it was cut and how much was left out; the result is still the output's start."""
    script = "head -c 3145728 /dev/zero | tr '\\0' 'o'\nhead -c 2097152 /dev/zero | tr '\\0' 'e' >&2"
    write_plan(tmp_path, [Spec("T-01", script)], {"log_cap": "1M"})
    result = cli(tmp_path, "run")
    assert result.code == 0, result.stderr
    logs = tmp_path / ".orchestrator" / "logs"
    for stream, char, size in (("out", b"o", 3145728), ("err", b"e", 2097152)):
        data = (logs / f"agent-01.attempt-1.{stream}").read_bytes()
        kept, cut, total = data.split(b"\n")[:3]
        assert kept == char * 1048576
        assert cut == b"[orchestrator: log cut here: log_cap is 1,048,576 bytes]"
        left = size - 1048576
        assert total == f"[orchestrator: log cut: {size:,} bytes in all, the last {left:,} not kept]".encode()
        assert data.endswith(b"not kept]\n") and len(data) < 1048576 + 200
    body = (tmp_path / ".orchestrator" / "results" / "agent-01-result.md").read_text(encoding="utf-8")
    assert "o" * 1000 in body and "output truncated at 1,000,000 characters" in body
    # The log was cut too: the result never says the full output is there.
    assert (
        "its log agent-01.attempt-1.out kept its first 1,048,576 bytes of 3,145,728 (log_cap): the rest is gone" in body
    )
    assert "the full output is in" not in body


def test_log_cap_cuts_the_log_not_the_result_the_dependents_read(tmp_path: Path) -> None:
    """``log_cap: 1K`` kept 1 KiB of a 24 KB output in the log, as documented, and in the result
    too: the dependent read 230 of 5,000 lines, and the log's "log cut here" line as if printed."""
    write_plan(
        tmp_path,
        [
            Spec("T-01", "seq 1 5000\necho done >&2"),
            Spec("T-02", 'wc -l < "$ORCHESTRATOR_INPUTS_DIR/T-01.md"\ntail -1 "$ORCHESTRATOR_INPUTS_DIR/T-01.md"',
                 ["T-01"]),
        ],
        {"log_cap": "1K"},
    )  # fmt: skip
    result = cli(tmp_path, "run")
    assert result.code == 0, result.stderr
    assert cli(tmp_path, "output", "T-02").stdout.split() == ["5000", "5000"]
    assert cli(tmp_path, "output", "T-01").stdout == "".join(f"{n}\n" for n in range(1, 5001))
    log = (tmp_path / ".orchestrator" / "logs" / "agent-01.attempt-1.out").read_bytes()
    assert len(log) < 1024 + 200 and b"[orchestrator: log cut here: log_cap is 1,024 bytes]" in log


def test_log_cap_none_keeps_everything_and_the_default_is_64_mib(tmp_path: Path) -> None:
    from orchestrator.plan.config.settings import Settings, parse_size

    assert Settings().log_cap == 64 * 1024 * 1024
    assert [parse_size(v) for v in (2048, "512k", "64M", "64MB", "1 GiB", "none", None)] == [
        2048, 512 * 1024, 64 * 1024**2, 64 * 1024**2, 1024**3, None, None
    ]  # fmt: skip
    for bad in ("12 parsecs", "10", -5, True, "0.5K"):
        with pytest.raises(ValueError):
            parse_size(bad)
    write_plan(tmp_path, [Spec("T-01", "head -c 2000000 /dev/zero | tr '\\0' 'o'")], {"log_cap": "none"})
    assert cli(tmp_path, "run").code == 0
    assert (tmp_path / ".orchestrator" / "logs" / "agent-01.attempt-1.out").read_bytes() == b"o" * 2000000


# --- aggregate beside a run -------------------------------------------------------------------------


def test_aggregate_waits_for_no_run_and_writes_nothing_beside_one(tmp_path: Path) -> None:
    """A run writes final_output.md itself when it ends: ``aggregate`` beside it is refused (exit 3)
    and leaves the file as it was; once the run is over it rebuilds it."""
    from runner_helpers import start, wait_until

    write_plan(tmp_path, [Spec("T-01", "echo one"), Spec("T-02", "until [ -e go ]; do sleep 0.05; done; echo two")])
    final = tmp_path / ".orchestrator" / "final_output.md"
    final.parent.mkdir(exist_ok=True)
    runner = start(tmp_path)
    try:
        wait_until(lambda: any(e["event"] == "task_completed" for e in runner.events()), "T-01 to complete")
        refused = cli(tmp_path, "aggregate")
        assert refused.code == 3, refused.stdout + refused.stderr
        assert _one_clean_line(refused.stderr).startswith(
            f"another run, render, reset, aggregate or plan (pid {runner.pid}) is using .orchestrator/"
        )
        assert not final.exists()
        (tmp_path / "go").touch()
        assert runner.wait() == 0
    finally:
        runner.cleanup()
    written = final.read_bytes()
    assert b"two" in written
    again = cli(tmp_path, "aggregate")
    assert again.code == 0, again.stderr
    assert final.read_bytes().replace(b"\r", b"") != b""


@pytest.mark.parametrize("command", ["status", "validate", "run"])
def test_a_current_directory_deleted_under_the_user_leaves_the_named_workspace_usable(
    command: str, tmp_path: Path
) -> None:
    """Naming a file 'as opened from here' asked for the current directory: with it deleted (a
    shell left in a removed checkout), every command that named its workspace gave a traceback."""
    write_plan(tmp_path / "proj", [Spec("T-01", "true")])
    gone = tmp_path / "gone"
    gone.mkdir()
    script = f'cd "{gone}" && rmdir "{gone}" && exec "{sys.executable}" -m orchestrator {command} "{tmp_path / "proj"}"'
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stdout + proc.stderr
