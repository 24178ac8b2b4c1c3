"""A runner killed (kill -9) mid-race (``run/races/hedge.py``, ``git/lanes.py``): both attempts of the
race are a dead runner's, stopped by ``cleanup`` and the next run; the hedge's lane
(``T-01+2``) is never merged nor lost: the next run says where it is, ``cleanup`` keeps it while
it holds work and removes it once it holds none.

Real runs of the CLI as a subprocess, a real git repository, a real SIGKILL of the runner.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import worktree_helpers
from race_helpers import write_race_plan
from runner_helpers import cli, pid_gone, results, run, start, wait_until
from worktree_helpers import git

# Each attempt leaves its own file in its worktree and its pid beside the workspace; until told
# to be fast, every attempt stalls (the first, and its hedge).
SCRIPT = (
    'echo "attempt $ORCHESTRATOR_ATTEMPT" > "work-$ORCHESTRATOR_ATTEMPT.txt"; '
    'echo $$ > "$ORCHESTRATOR_WORKSPACE/pid-$ORCHESTRATOR_ATTEMPT"; '
    'if [ ! -e "$ORCHESTRATOR_WORKSPACE/fast" ]; then sleep 60; fi; echo ok'
)


def repository(tmp_path: Path) -> Path:
    """A repository with one file committed, the workspace and the runner's files kept out of git."""
    project = worktree_helpers.repository(tmp_path, {"base.txt": "base\n"})
    (project / ".git" / "info" / "exclude").write_text(".orchestrator/\nrunner.*\n")
    return project


def test_a_runner_killed_mid_race_leaves_nothing_running_and_the_lanes_work_is_kept_never_merged(
    tmp_path: Path,
) -> None:
    project = repository(tmp_path)
    write_race_plan(project, "Hedge", [("T-01", "1s", SCRIPT)], isolation="worktree")
    ws = project / ".orchestrator"
    lane = ws / "worktrees" / "T-01+2"
    runner = start(project)
    try:
        wait_until(lambda: (ws / "pid-1").exists() and (ws / "pid-2").exists(), "the first attempt and its hedge")
        assert (lane / "work-2.txt").exists()
        runner.kill(signal.SIGKILL)  # mid-race
    finally:
        runner.cleanup()
    pids = [int((ws / f"pid-{n}").read_text()) for n in (1, 2)]
    assert not any(pid_gone(pid) for pid in pids)  # both outlive their runner, as a kill -9 leaves them

    swept = json.loads(cli(project, "cleanup", "--json").stdout)
    stopped = [item for item in swept["removed"] if item["kind"] == "processes"]
    assert len(stopped) == 2, swept  # the straggler's group as well as its hedge's
    assert all(pid_gone(pid) for pid in pids)
    kept = {item["what"]: item["why"] for item in swept["kept"]}
    assert "T-01 has an attempt still open" in kept[".orchestrator/worktrees/T-01+2"]
    assert (lane / "work-2.txt").read_text() == "attempt 2\n"

    (ws / "fast").touch()
    again = run(project)
    assert again.code == 0, again.stdout + again.stderr
    said = [e["message"] for e in again.events if e["event"] == "notice"]
    assert any(f"T-01's attempt 2, raced when its runner died, left work in {lane}" in m for m in said), said
    assert results(project)["T-01"]["status"] == "completed"
    merged = git(project, "ls-tree", "--name-only", "orchestrator/integration").split()
    assert "work-2.txt" not in merged and "work-3.txt" in merged  # the lane's work never merged
    assert (lane / "work-2.txt").read_text() == "attempt 2\n"  # nor lost

    swept = json.loads(cli(project, "cleanup", "--json").stdout)
    kept = {item["what"]: item["why"] for item in swept["kept"]}
    why = kept[".orchestrator/worktrees/T-01+2"]
    assert "attempt 2 of T-01, raced when its runner died: its work is never merged" in why
    assert f"git worktree remove --force {lane}; git branch -D orchestrator/integration-T-01+2" in why
    assert lane.exists()

    (lane / "work-2.txt").unlink()  # the person took what they needed: nothing of its own is left
    swept = json.loads(cli(project, "cleanup", "--json").stdout)
    assert ".orchestrator/worktrees/T-01+2" in [item["what"] for item in swept["removed"]], swept
    assert not lane.exists()
    assert git(project, "branch", "--list", "orchestrator/integration-T-01+2") == ""


def test_a_lane_with_nothing_of_its_own_is_removed_by_the_next_run(tmp_path: Path) -> None:
    # The hedge is killed with its runner before it wrote anything: its lane holds no work.
    project = repository(tmp_path)
    quiet = (
        'if [ "$ORCHESTRATOR_ATTEMPT" = 2 ]; then echo $$ > "$ORCHESTRATOR_WORKSPACE/pid-2"; sleep 60; fi; '
        'echo $$ > "$ORCHESTRATOR_WORKSPACE/pid-$ORCHESTRATOR_ATTEMPT"; '
        'if [ ! -e "$ORCHESTRATOR_WORKSPACE/fast" ]; then sleep 60; fi; echo ok > out.txt'
    )
    write_race_plan(project, "Hedge", [("T-01", "1s", quiet)], isolation="worktree")
    ws = project / ".orchestrator"
    runner = start(project)
    try:
        wait_until(lambda: (ws / "pid-2").exists(), "the hedge")
        runner.kill(signal.SIGKILL)
    finally:
        runner.cleanup()
    (ws / "fast").touch()
    again = run(project)
    assert again.code == 0, again.stdout + again.stderr
    assert not (ws / "worktrees" / "T-01+2").exists()
    assert git(project, "branch", "--list", "orchestrator/integration-T-01+2") == ""
    assert not [e for e in again.events if e["event"] == "notice" and "raced when its runner died" in e["message"]]
