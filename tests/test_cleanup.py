"""``orchestrator cleanup``: a workspace's stale state in one sweep, and never more.

Real runs of the real CLI: a runner killed with SIGKILL leaves its lock's pid and its task's
process group; a real git repository leaves merged and dirty worktrees; a task retried leaves an
older attempt's logs, made old with ``os.utime``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from runner_helpers import (
    Spec,
    cli,
    cli_in_process,
    open_attempts,
    pid_gone,
    run,
    start,
    wait_gone,
    wait_until,
    write_plan,
)
from worktree_helpers import no_git_identity, plan, repository

__all__ = ["no_git_identity"]  # (its git without an identity, for these tests too)


def _everything(project: Path) -> dict[str, float]:
    """Every file and directory under the project (the repository's own aside), with its time."""
    return {
        str(p.relative_to(project)): p.lstat().st_mtime
        for p in sorted(project.rglob("*"))
        if ".git" not in p.relative_to(project).parts[:1]
    }


def test_cleanup_removes_merged_worktrees_and_old_logs_and_keeps_work_and_the_latest_logs(tmp_path: Path) -> None:
    project = repository(tmp_path, {"a.txt": "a\n"})
    marker = tmp_path / "failed-once"
    flaky = (
        f"if [ -e {marker} ]; then echo second > three.txt; echo done >&2; "
        f"else touch {marker}; echo first >&2; exit 1; fi"
    )
    specs = [
        Spec("T-01", "echo one > one.txt"),
        Spec("T-02", "echo two > two.txt"),
        Spec("T-03", flaky, retries=1),
    ]
    plan(project, specs, retention="1h")
    assert run(project).code == 0
    logs = project / ".orchestrator" / "logs"
    assert (logs / "agent-03.attempt-1.err").exists() and (logs / "agent-03.attempt-2.err").exists()
    dirty = project / ".orchestrator" / "worktrees" / "T-02"
    (dirty / "notes.txt").write_text("work nobody committed\n", encoding="utf-8")
    old = time.time() - 7200
    for path in logs.iterdir():
        os.utime(path, (old, old))
    before = _everything(project)

    dry = cli(project, "cleanup", "--dry-run")
    assert dry.code == 0, dry.stderr
    said = dry.stdout.splitlines()
    assert "would remove worktree .orchestrator/worktrees/T-01 (T-01)" in said
    assert "would remove worktree .orchestrator/worktrees/T-03 (T-03)" in said
    assert "would remove log .orchestrator/logs/agent-03.attempt-1.err (T-03)" in said
    assert not any("T-02" in line or "attempt-2" in line or "agent-01" in line for line in said), said
    assert "kept .orchestrator/worktrees/T-02: dirty: uncommitted changes" in dry.stderr
    assert _everything(project) == before  # --dry-run: nothing removed, nothing touched

    done = cli(project, "cleanup", "--json")
    assert done.code == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["dry_run"] is False and report["freed_bytes"] > 0
    removed = {(item["kind"], item["what"]) for item in report["removed"]}
    assert ("log", ".orchestrator/logs/agent-03.attempt-1.err") in removed
    assert [item["what"] for item in report["removed"] if item["kind"] == "worktree"] == [
        ".orchestrator/worktrees/T-01",
        ".orchestrator/worktrees/T-03",
    ]
    assert not (project / ".orchestrator" / "worktrees" / "T-01").exists()
    assert (dirty / "notes.txt").read_text(encoding="utf-8") == "work nobody committed\n"  # work never removed
    assert not (logs / "agent-03.attempt-1.err").exists()
    assert (logs / "agent-03.attempt-2.err").exists()  # the latest attempt's logs stay, however old
    assert sorted(p.name for p in (project / ".orchestrator" / "results").glob("*-result.md")) == [
        "agent-01-result.md",
        "agent-02-result.md",
        "agent-03-result.md",
    ]
    again = cli(project, "cleanup")
    assert again.code == 0 and again.stdout == ""  # nothing stale is left


def test_retention_takes_old_spawn_logs_inputs_and_cache_entries_but_what_a_result_needs(tmp_path: Path) -> None:
    """``retention`` covers all that attempts leave, not their logs alone: the output of spawn
    --detach's runner, the inputs an attempt read, cache entries no current result came from.
    The entry a current result was kept as (or taken from) stays however old, and the history
    estimates are learned from (the event log, the journal) is never rewritten."""
    settings = {"backend": "shell", "retention": "1h", "cache": True}
    upstream = Spec("T-02", 'cat "$ORCHESTRATOR_INPUTS_DIR/T-01.md"', ["T-01"])
    write_plan(tmp_path, [Spec("T-01", "echo one"), upstream], settings)
    assert run(tmp_path).code == 0
    ws = tmp_path / ".orchestrator"
    (stale,) = (ws / "cache" / "T-01").glob("*.md")
    write_plan(tmp_path, [Spec("T-01", "echo one; true"), upstream], settings)
    assert run(tmp_path).code == 0  # T-01's brief changed: it ran again (a second entry); T-02 took its own
    (current,) = [path for path in (ws / "cache" / "T-01").glob("*.md") if path != stale]
    (taken,) = (ws / "cache" / "T-02").glob("*.md")
    spawned = cli(tmp_path, "spawn", "--detach", "--id", "S-1", "--backend", "shell", "--command", "true", "aside")
    assert spawned.code == 0, spawned.stderr
    wait_until(lambda: "S-1" in cli_in_process(tmp_path, "list", "--status", "completed").stdout, "S-1 to complete")
    wait_until(lambda: cli(tmp_path, "cleanup", "--dry-run").code == 0, "spawn's runner to end")
    (spawn_log,) = (ws / "logs").glob("*.spawn.log")
    slug = spawn_log.name.removesuffix(".spawn.log")
    history = {name: (ws / "state" / name).read_bytes() for name in ("events.jsonl", "attempts.jsonl")}
    old = time.time() - 7200
    for top in ("logs", "state/inputs", "cache"):
        for path in [ws / top, *(ws / top).rglob("*")]:
            os.utime(path, (old, old))
    fresh = ws / "state" / "inputs" / "agent-01.txt"
    os.utime(fresh)  # written now: not older than the retention

    dry = cli(tmp_path, "cleanup", "--dry-run")
    assert dry.code == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "would remove log .orchestrator/logs/agent-01.attempt-1.out (T-01)",  # (as before: not its latest)
        f"would remove spawn_log .orchestrator/logs/{slug}.spawn.log (S-1)",
        "would remove inputs .orchestrator/state/inputs/agent-01/ (T-01)",
        "would remove inputs .orchestrator/state/inputs/agent-02/ (T-02)",
        "would remove inputs .orchestrator/state/inputs/agent-02.txt (T-02)",
        f"would remove inputs .orchestrator/state/inputs/{slug}/ (S-1)",
        f"would remove inputs .orchestrator/state/inputs/{slug}.txt (S-1)",
        f"would remove cache .orchestrator/cache/T-01/{stale.name} (T-01)",
    ]
    assert stale.exists() and spawn_log.exists()  # --dry-run: nothing removed
    swept = cli(tmp_path, "cleanup", "--json")
    assert swept.code == 0, swept.stdout + swept.stderr
    done = json.loads(swept.stdout)
    assert [(item["kind"], item["task"]) for item in done["removed"]] == [
        ("log", "T-01"), ("spawn_log", "S-1"), ("inputs", "T-01"), ("inputs", "T-02"), ("inputs", "T-02"),
        ("inputs", "S-1"), ("inputs", "S-1"), ("cache", "T-01"),
    ]  # fmt: skip
    assert not stale.exists() and not spawn_log.exists() and not (ws / "state" / "inputs" / "agent-02").exists()
    assert current.exists() and taken.exists() and fresh.exists()  # the current results' entries, however old
    assert {name: (ws / "state" / name).read_bytes() for name in history} == history
    # What stayed is what a run needs: T-02's result gone, the next run takes it from its entry again.
    (ws / "results" / "agent-02-result.md").unlink()
    assert run(tmp_path).code == 0
    assert "reused:" in (ws / "results" / "agent-02-result.md").read_text(encoding="utf-8")


def test_cleanup_takes_away_what_a_dead_runner_left_and_is_refused_beside_a_run(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", f"touch {tmp_path}/started; sleep 300")], {"retention": "1h"})
    runner = start(tmp_path)
    try:
        wait_until(lambda: (tmp_path / "started").exists() and bool(open_attempts(tmp_path)), "the task to start")
        (attempt,) = open_attempts(tmp_path)
        for args in (("cleanup",), ("cleanup", "--dry-run")):
            refused = cli(tmp_path, *args)
            assert refused.code == 3 and refused.stdout == "" and refused.stderr.count("\n") == 1, refused.stderr
            assert f"(pid {runner.pid}) is using .orchestrator/ — cleanup runs between runs" in refused.stderr
        runner.kill(signal.SIGKILL)
        pgid = int(attempt["pgid"])
        assert not pid_gone(pgid)  # the task goes on without its runner
        lock = tmp_path / ".orchestrator" / "state" / "runner.lock"
        inputs = tmp_path / ".orchestrator" / "state" / "inputs"
        old = time.time() - 7200
        for path in [inputs, *inputs.rglob("*")]:  # old, but its attempt is still open: they stay
            os.utime(path, (old, old))
        dry = cli(tmp_path, "cleanup", "--dry-run")
        assert dry.code == 0, dry.stderr
        assert dry.stdout.splitlines()[:2] == [
            f"would remove runner_lock .orchestrator/state/runner.lock: pid {runner.pid} (gone)",
            f"would remove processes process group {pgid}, left running by a dead runner (T-01)",
        ]
        assert "the next `orchestrator run` takes them up" in dry.stderr
        assert "inputs" not in dry.stdout and any(inputs.iterdir())
        assert not pid_gone(pgid) and lock.read_text().strip() == str(runner.pid)  # --dry-run stops nothing
        done = cli(tmp_path, "cleanup")
        assert done.code == 0, done.stderr
        assert f"removed processes process group {pgid}, left running by a dead runner (T-01)" in done.stdout
        assert wait_gone(pgid) and lock.read_text() == ""
        assert (tmp_path / ".orchestrator" / "state" / "attempts.jsonl").exists()  # the next run takes it up
    finally:
        runner.stop_all()


# An ``add`` held at the moment its plan is written to the temp file beside master_plan.md, before
# that file is swapped into place (``state/swap``): ``store.exchange`` made to wait for ever.
_HELD_ADD = """
import sys, time
from pathlib import Path
from orchestrator.cli.main import main
from orchestrator.state import store
def held(*args, **kwargs):
    Path(sys.argv[2]).write_text("written")
    time.sleep(600)
store.exchange = held
store.replace = held
sys.exit(main(["add", sys.argv[1], "killed as its plan is written", "--command", "true"]))
"""


# A writer that takes no lock (``approve``, ``serve`` taking a delivery), mid-write: its temp file made.
_WRITING = """
import sys, time
from pathlib import Path
from orchestrator.state import store
store.write_temp(Path(sys.argv[1]), b"half", sync=False)
Path(sys.argv[2]).write_text("written")
time.sleep(600)
"""


def _held(script: str, target: Path, flag: Path) -> subprocess.Popen[bytes]:
    writer = subprocess.Popen([sys.executable, "-c", script, str(target), str(flag)], cwd=target.parent)
    wait_until(flag.exists, "the writer to write its temp file")
    return writer


def test_cleanup_removes_the_temp_plan_a_killed_add_left_and_never_a_live_writers(tmp_path: Path) -> None:
    """A killed ``add`` left ``.tmp-master_plan.md.PID.0`` beside the plan, and ``cleanup`` kept it
    for good. Now it goes, as does one named by a pid the kernel gave a process started since; one
    whose writer still lives stays, and the plan is the one it was."""
    write_plan(tmp_path, [Spec("T-01", "echo one")])
    workspace = tmp_path / ".orchestrator"
    before = (workspace / "master_plan.md").read_bytes()
    killed = _held(_HELD_ADD, tmp_path, tmp_path / "killed.flag")
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    [left] = list(workspace.glob(f".tmp-master_plan.md.{killed.pid}.*"))
    (workspace / "state").mkdir(exist_ok=True)
    living = _held(_WRITING, workspace / "state" / "approvals.jsonl", tmp_path / "living.flag")
    try:
        [writing] = list((workspace / "state").glob(f".tmp-approvals.jsonl.{living.pid}.*"))
        # A pid taken since by another process (this one, started after the file was written).
        later = subprocess.Popen(["sleep", "60"])
        reused = workspace / "results" / f".tmp-agent-01-result.md.{later.pid}.0"
        reused.parent.mkdir(exist_ok=True)
        reused.write_text("a dead writer's")
        os.utime(reused, (time.time() - 60, time.time() - 60))
        try:
            dry = cli_in_process(tmp_path, "cleanup", "--dry-run", "--json")
            assert dry.code == 0 and left.exists() and reused.exists()
            done = cli_in_process(tmp_path, "cleanup", "--json")
        finally:
            later.kill()
            later.wait()
        assert done.code == 0, done.stderr
        temp = [item["what"] for item in json.loads(done.stdout)["removed"] if item["kind"] == "temp"]
        assert temp == [f".orchestrator/{left.name}", f".orchestrator/results/{reused.name}"], done.stdout
        assert json.loads(dry.stdout)["removed"] == json.loads(done.stdout)["removed"]
        assert not left.exists() and not reused.exists()
        assert writing.exists(), "a live writer's temp file is its own"
        assert (workspace / "master_plan.md").read_bytes() == before
    finally:
        living.kill()
        living.wait()
    assert cli(tmp_path, "run").code == 0
