"""Runs from outside run their shell and command tasks in a sandbox (issue 73): bubblewrap, real
runs, real files, a real server on loopback.

The same plan, run by the person and then as a run from outside: what the person's run may do
(write the project, read the home directory, reach a server) the sandboxed run may not, but its
worktree and its own ``/tmp``; ``sandbox: network`` gives the network, ``sandbox: off`` (the
plan's or a trigger's) nothing; with no bubblewrap such a task is refused, never run without it;
a sandboxed attempt's processes are reaped with it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from runner_helpers import Spec, cli, result_body, results, run, start, statuses, wait_until, write_plan
from worktree_helpers import git, no_git_identity, on, repository

__all__ = ["no_git_identity"]  # (git as on a fresh machine, for every test here)


@contextmanager
def listening() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that answers every connection with ``hello``: its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            with connection:
                connection.sendall(b"hello\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        server.close()


def _tasks(port: int) -> list[Spec]:
    reach = f"python3 -c \"import socket; print(socket.create_connection(('127.0.0.1', {port}), 5).recv(9).decode())\""
    return [
        Spec("T-01", "echo mine > written.txt && cat written.txt"),
        Spec("T-02", 'cat "$HOME/secret.txt"'),
        Spec("T-03", reach),
        Spec("T-04", "echo private > /tmp/sandbox-probe && cat /tmp/sandbox-probe"),
    ]


def test_a_run_from_outside_cannot_write_the_project_read_the_home_or_reach_the_network(tmp_path: Path) -> None:
    """The person's run writes the project, reads ``$HOME`` and reaches the server; the same plan run
    from outside (``--untrusted``) does none of it, and its own ``/tmp`` is its alone."""
    home = tmp_path / "home"  # (the person's: no_git_identity made it, and set $HOME to it)
    home.mkdir(exist_ok=True)
    (home / "secret.txt").write_text("a key of mine\n", encoding="utf-8")
    with listening() as port:
        write_plan(tmp_path, _tasks(port), {"retries": 0})
        mine = cli(tmp_path, "run", env={"HOME": str(home)})
        assert mine.code == 0, mine.stderr
        assert [result_body(tmp_path, t).strip() for t in ("T-01", "T-02", "T-03", "T-04")] == [
            "mine", "a key of mine", "hello", "private"]  # fmt: skip
        (tmp_path / "written.txt").unlink()
        (Path("/tmp") / "sandbox-probe").unlink(missing_ok=True)
        outside = cli(tmp_path, "run", "--rerun", "T-01,T-02,T-03,T-04", "--untrusted", "test",
                      env={"HOME": str(home)})  # fmt: skip
    assert outside.code == 1, outside.stderr
    assert statuses(tmp_path) == {"T-01": "failed", "T-02": "failed", "T-03": "failed", "T-04": "completed"}
    reasons = {task: meta.get("reason", "") for task, meta in results(tmp_path).items()}
    logs = {t: cli(tmp_path, "logs", t).stdout for t in ("T-01", "T-02", "T-03")}
    assert "Read-only file system" in logs["T-01"], logs["T-01"]
    assert "No such file or directory" in logs["T-02"], logs["T-02"]
    assert "Connection refused" in logs["T-03"] or "unreachable" in logs["T-03"], (logs["T-03"], reasons)
    assert not (tmp_path / "written.txt").exists() and not (Path("/tmp") / "sandbox-probe").exists()
    assert result_body(tmp_path, "T-04").strip() == "private"


@pytest.mark.parametrize(("setting", "where"), [("network", "plan"), ("off", "plan"), ("off", "trigger")])
def test_sandbox_network_gives_the_network_and_off_gives_everything(tmp_path: Path, setting: str, where: str) -> None:
    with listening() as port:
        triggers = {"github": {"events": ["pull_request"], "sandbox": setting}}
        settings = {"retries": 0, **({"sandbox": setting} if where == "plan" else {"triggers": triggers})}
        write_plan(tmp_path, _tasks(port)[:1] + _tasks(port)[2:3], settings)
        done = run(tmp_path, "--untrusted", "github")
    if setting == "network":
        assert statuses(tmp_path) == {"T-01": "failed", "T-03": "completed"}, done.stderr
    else:
        assert done.code == 0 and (tmp_path / "written.txt").exists(), done.stderr
    assert result_body(tmp_path, "T-03").strip() == "hello"
    shown = cli(tmp_path, "validate")
    said = [line for line in shown.stdout.splitlines() + shown.stderr.splitlines() if "sandbox: off" in line]
    assert bool(said) == (setting == "off"), shown.stdout
    if said:
        assert "T-01, T-03 with no sandbox" in said[0] and "read your home directory" in said[0], said


def test_a_task_in_a_worktree_writes_its_worktree_and_its_work_is_merged(tmp_path: Path) -> None:
    project = repository(tmp_path, {"notes.txt": "start\n"})
    write_plan(project, [Spec("T-01", "echo 'from outside' >> notes.txt && cat notes.txt")],
               {"isolation": "worktree", "retries": 0})  # fmt: skip
    done = run(project, "--untrusted", "api")
    assert done.code == 0, done.stderr
    assert on(project, "orchestrator/integration", "notes.txt") == "start\nfrom outside\n"
    assert (project / "notes.txt").read_text(encoding="utf-8") == "start\n"  # (the person's checkout untouched)
    git(project, "status", "--porcelain")


def test_without_bubblewrap_a_run_from_outside_refuses_its_shell_tasks_and_runs_none(tmp_path: Path) -> None:
    """No sandbox can be made: each shell task is refused in one line naming what to install, and
    its script never starts; the person's own run goes on as ever."""
    write_plan(tmp_path, [Spec("T-01", "echo ran > ran.txt")], {"retries": 0})
    done = cli(tmp_path, "run", "--untrusted", "mcp", env={"ORCHESTRATOR_BWRAP_BIN": str(tmp_path / "no-bwrap")})
    assert done.code == 1 and not (tmp_path / "ran.txt").exists(), done.stderr
    reason = results(tmp_path)["T-01"]["reason"]
    assert "run in a sandbox" in reason and "install Debian's bubblewrap (apt install bubblewrap)" in reason, reason
    assert "\n" not in reason
    doctor = cli(tmp_path, "doctor", "--json", env={"ORCHESTRATOR_BWRAP_BIN": str(tmp_path / "no-bwrap")})
    found = json.loads(doctor.stdout)["sandbox"]
    assert found["problem"].endswith("no-bwrap is not installed") and found["needed"] is False, found
    mine = cli(tmp_path, "run", env={"ORCHESTRATOR_BWRAP_BIN": str(tmp_path / "no-bwrap")})
    assert mine.code == 0 and (tmp_path / "ran.txt").exists(), mine.stderr
    assert json.loads(cli(tmp_path, "doctor", "--json").stdout)["sandbox"]["problem"] is None


def test_a_sandboxed_attempt_that_times_out_leaves_no_process(tmp_path: Path) -> None:
    """Its process group is the sandbox's: what it started dies with it, however it hides."""
    write_plan(tmp_path, [Spec("T-01", "setsid sleep 47.31 & sleep 47.32 & sleep 47.33")],
               {"retries": 0, "timeout": "1s"})  # fmt: skip
    done = run(tmp_path, "--untrusted", "test")
    assert done.code == 1, done.stderr
    left = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert "sleep 47.3" not in left, [line for line in left.splitlines() if "sleep 47.3" in line]


def test_a_home_that_is_not_there_hides_nothing_and_the_task_runs(tmp_path: Path) -> None:
    """A service's user often has no home (``HOME=/nonexistent``): nothing to hide, and bubblewrap
    is not asked to mount over a directory it cannot make."""
    write_plan(tmp_path, [Spec("T-01", "echo ran")], {"retries": 0})
    done = cli(tmp_path, "run", "--untrusted", "cron", env={"HOME": str(tmp_path / "not-there")})
    assert done.code == 0, done.stderr
    assert result_body(tmp_path, "T-01").strip() == "ran"


def test_a_plan_changed_while_a_run_from_outside_goes_on_is_held_for_a_person(tmp_path: Path) -> None:
    """The repro of issue 73: a row added to master_plan.md (as an agent a prompt steered did; here by
    ``add``) while a run from outside goes on. That run does not take it: the change is held, said on the run's
    stream and by ``status``; the person's next run takes it. (A run of the person's own takes a
    row added mid-run, ``test_live_queue``.)"""
    write_plan(tmp_path, [Spec("T-01", "while [ ! -e release ]; do sleep 0.05; done; echo first")], {"retries": 0})
    runner = start(tmp_path, "--untrusted", "github")
    try:
        wait_until(lambda: statuses_of(tmp_path).get("T-01") == "running", "T-01 to run")
        added = cli(tmp_path, "add", "--id", "T-02", "--command", "echo injected", "what an injected agent adds")
        assert added.code == 0, added.stderr
        wait_until(lambda: "plan_held" in (tmp_path / ".orchestrator/state/events.jsonl").read_text(), "the hold")
        shown = json.loads(cli(tmp_path, "status", "--json").stdout)
        assert any("held for a person" in note and "(github)" in note for note in shown["notes"]), shown["notes"]
        (tmp_path / "release").write_text("", encoding="utf-8")
        assert runner.wait() == 0, runner.stderr.read_text()
    finally:
        runner.stop_all()
    lines = [json.loads(line) for line in runner.stdout.read_text().splitlines() if line.startswith("{")]
    assert not any(e.get("task") == "T-02" for e in lines), [e for e in lines if e.get("task") == "T-02"]
    assert "T-02" not in statuses(tmp_path)
    assert any(e["event"] == "plan_held" and e["source"] == "github" for e in lines)
    mine = run(tmp_path)
    assert mine.code == 0 and result_body(tmp_path, "T-02").strip() == "injected", mine.stderr


def statuses_of(project: Path) -> dict[str, str]:
    shown = json.loads(cli(project, "status", "--json").stdout)
    return {task["id"]: task["status"] for task in shown["tasks"]}


def test_a_sandboxed_task_shares_through_the_channels_and_writes_nothing_else_of_the_workspace(tmp_path: Path) -> None:
    """The workspace's ``context/`` is the one place of it a sandboxed task may write: ``share``
    works, as an agent's behind its walls does; the plan stays as it was."""
    share = '"$ORCHESTRATOR_PYTHON" -m orchestrator share "$ORCHESTRATOR_TASK_ID" "found: the config is in etc/"'
    inject = "echo '| T-09 | injected |' >> .orchestrator/master_plan.md"
    write_plan(tmp_path, [Spec("T-01", share), Spec("T-02", inject)], {"retries": 0})
    plan = (tmp_path / ".orchestrator/master_plan.md").read_bytes()
    done = run(tmp_path, "--untrusted", "test")
    assert statuses(tmp_path) == {"T-01": "completed", "T-02": "failed"}, done.stderr
    shared = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / ".orchestrator/context").rglob("*.md"))
    assert "found: the config is in etc/" in shared
    assert (tmp_path / ".orchestrator/master_plan.md").read_bytes().count(b"injected") == plan.count(b"injected")


def test_the_programs_a_home_holds_stay_and_its_files_do_not(tmp_path: Path) -> None:
    """A home holds programs (``~/.local/bin``, pyenv's interpreters) and the person's secrets: the
    folders on the PATH there are seen, read-only; the rest of the home is not."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "bin").mkdir()
    (home / "bin" / "greet").write_text("#!/bin/sh\necho hello from a home program\n", encoding="utf-8")
    (home / "bin" / "greet").chmod(0o755)
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_ed25519").write_text("a private key\n", encoding="utf-8")
    write_plan(tmp_path / "project", [Spec("T-01", "greet"), Spec("T-02", 'cat "$HOME/.ssh/id_ed25519"')],
               {"retries": 0})  # fmt: skip
    env = {"HOME": str(home), "PATH": f"{home / 'bin'}:{os.environ['PATH']}"}
    done = cli(tmp_path / "project", "run", "--untrusted", "test", env=env)
    assert statuses(tmp_path / "project") == {"T-01": "completed", "T-02": "failed"}, done.stderr
    assert result_body(tmp_path / "project", "T-01").strip() == "hello from a home program"


def test_the_programs_under_tmp_stay_and_its_files_do_not(tmp_path: Path) -> None:
    """A clone under /tmp has its venv there (a fresh clone's CI in a scratch folder): the sandbox's
    own /tmp hid it, and a task that called the channels (``$ORCHESTRATOR_PYTHON``) or a program
    on the PATH there could not start. The PATH's folders under /tmp are seen, read-only; the
    rest of /tmp is not."""
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="orchestrator-scratch-", dir="/tmp"))
    try:
        (scratch / "bin").mkdir()
        (scratch / "bin" / "greet").write_text("#!/bin/sh\necho hello from /tmp\n", encoding="utf-8")
        (scratch / "bin" / "greet").chmod(0o755)
        (scratch / "secret.txt").write_text("not for the task\n", encoding="utf-8")
        project = tmp_path / "project"
        write_plan(project, [Spec("T-01", "greet"), Spec("T-02", f"cat {scratch / 'secret.txt'}")], {"retries": 0})
        env = {"PATH": f"{scratch / 'bin'}:{os.environ['PATH']}"}
        done = cli(project, "run", "--untrusted", "test", env=env)
        assert statuses(project) == {"T-01": "completed", "T-02": "failed"}, done.stderr
        assert result_body(project, "T-01").strip() == "hello from /tmp"
    finally:
        import shutil

        shutil.rmtree(scratch)
