"""A runner killed -9 with a plain task's merge made and not recorded (``git/marks``): after its
branch was merged into the integration branch and before its result was written, or while
``verify`` ran on the merge. The next run took the task again and merged on top: the integration
branch kept a merge no result recorded (never verified, in the second case), and a ``verify``
that failed then undid only the new one. Now the merge queue marks each merge before it makes it,
and the next run takes an unrecorded one back out (set back, or reverted when the person's branch
holds it), keeps it on ``refs/orchestrator/lost/<task>/merge-<n>``, says so, and runs the task.

Real runs of the CLI, a real git repository; the runner held by a git hook at the merge's ref move
(``race_helpers.killed_at``), or killed while its ``verify`` sleeps.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from race_helpers import killed_at
from runner_helpers import Result, Spec, cli, results, run, start, wait_until
from worktree_helpers import INTEGRATION, git, no_git_identity, plan, repository  # noqa: F401  (no_git_identity: autouse)

SCRIPT = 'echo "attempt $ORCHESTRATOR_ATTEMPT" >> work.txt'
LOST = "refs/orchestrator/lost/T-01/merge-1"


def _verify(flags: Path) -> str:
    """A ``verify`` that fails while ``flags/fail`` exists and, while ``flags/hold`` does, says it
    runs (``flags/verifying``, its pid) and sleeps, to be killed there."""
    return (
        f'if [ -e {flags}/fail ]; then exit 1; fi; '
        f'if [ -e {flags}/hold ]; then echo $$ > {flags}/verifying; exec sleep 60; fi'
    )  # fmt: skip


def _project(tmp_path: Path) -> tuple[Path, Path]:
    project = repository(tmp_path, {"base.txt": "base\n"})
    flags = tmp_path / "flags"
    flags.mkdir()
    plan(project, [Spec("T-01", SCRIPT)], verify=_verify(flags), retries=0)
    return project, flags


def _killed_in_verify(project: Path, flags: Path) -> None:
    """A run of ``project`` killed -9 while its ``verify`` runs on T-01's merge (the verify too)."""
    (flags / "hold").touch()
    runner = start(project)
    try:
        wait_until(lambda: (flags / "verifying").exists() and (flags / "verifying").read_text().strip() != "",
                   "verify to run", timeout=90)  # fmt: skip
        runner.kill()
    finally:
        if runner.process.poll() is None:
            runner.kill()
        if (flags / "verifying").exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int((flags / "verifying").read_text()), signal.SIGKILL)
        runner.cleanup()
    (flags / "hold").unlink()


def _merges(project: Path) -> list[str]:
    """The integration branch's merges of T-01, on its first-parent line."""
    log = git(project, "log", "--first-parent", "--format=%H %s", INTEGRATION).splitlines()
    return [line.split()[0] for line in log if line.endswith(" orchestrator: merge T-01")]


def _said(result: Result) -> str:
    notices = [str(e.get("message")) for e in result.events if e.get("event") == "notice"]
    return "\n".join(notices)


def _shown(project: Path) -> dict[str, Any]:
    shown = json.loads(cli(project, "status", "--json").stdout)
    return next(task for task in shown["tasks"] if task["id"] == "T-01")


def _killed(tmp_path: Path, project: Path, flags: Path, moment: str) -> str:
    """``project``'s run killed at ``moment`` with T-01's merge made; that merge."""
    if moment == "at the merge":
        killed_at(tmp_path, project, f"refs/heads/{INTEGRATION}", " merge --no-ff ")
    else:
        _killed_in_verify(project, flags)
    assert not (project / ".orchestrator" / "results" / "agent-01-result.md").exists()
    merges = _merges(project)
    assert len(merges) == 1, "killed with the merge made"
    return merges[0]


@pytest.mark.parametrize("moment", ["at the merge", "in verify"])
def test_a_merge_no_result_recorded_is_taken_out_and_the_task_merges_once(tmp_path: Path, moment: str) -> None:
    project, flags = _project(tmp_path)
    start_commit = git(project, "rev-parse", "main").strip()
    first = _killed(tmp_path, project, flags, moment)

    again = run(project)
    assert again.code == 0, again.stdout + again.stderr
    said = _said(again)
    assert "T-01's merge into orchestrator/integration (attempt 1) was not recorded when its runner died" in said
    assert f"set back from its merge {first[:12]}" in said and LOST in said, said
    assert git(project, "rev-parse", LOST).strip() == first, "the first merge kept"
    merges = _merges(project)
    assert len(merges) == 1 and first not in merges, merges
    assert git(project, "rev-parse", f"{merges[0]}^1").strip() == start_commit, "one merge, on where it began"
    found = results(project)["T-01"]
    assert found["status"] == "completed"
    work = git(project, "show", f"{INTEGRATION}:work.txt").splitlines()
    assert work == ["attempt 1", f"attempt {found['attempts']}"], "its branch built on: each attempt's work once"
    view = _shown(project)
    assert view["status"] == "completed" and view["attempts"] == found["attempts"], view
    assert not git(project, "for-each-ref", "refs/orchestrator/merging/").strip(), "the mark cleared"
    third = run(project)
    assert third.code == 0 and "task_started" not in third.kinds("T-01"), third.stdout + third.stderr
    assert _merges(project) == merges


@pytest.mark.parametrize("moment", ["at the merge", "in verify"])
def test_a_verify_that_fails_after_a_killed_merge_leaves_no_unverified_merge(tmp_path: Path, moment: str) -> None:
    project, flags = _project(tmp_path)
    start_commit = git(project, "rev-parse", "main").strip()
    first = _killed(tmp_path, project, flags, moment)
    (flags / "fail").touch()

    again = run(project)
    assert again.code != 0, again.stdout + again.stderr
    assert "was not recorded when its runner died" in _said(again), _said(again)
    assert git(project, "rev-parse", INTEGRATION).strip() == start_commit, "neither merge, never verified, stays"
    assert git(project, "rev-parse", LOST).strip() == first
    found = results(project)["T-01"]
    assert found["status"] == "failed" and found["error_class"] == "verify", found
    view = _shown(project)
    assert view["status"] == "failed" and view["attempts"] == found["attempts"], view


def test_a_killed_merge_the_persons_branch_holds_is_reverted_and_the_task_merges_its_work_again(
    tmp_path: Path,
) -> None:
    """The person brought the unrecorded merge into their branch (``orchestrator merge``): it is
    reverted, not set back; the task's branch takes its work again on top of the revert, so
    what merges next brings it back, once."""
    project, flags = _project(tmp_path)
    first = _killed(tmp_path, project, flags, "at the merge")
    git(project, "merge", "-q", "--ff-only", INTEGRATION)

    again = run(project)
    assert again.code == 0, again.stdout + again.stderr
    said = _said(again)
    assert f"its merge {first[:12]} reverted by" in said and "as main holds it" in said, said
    reverts = git(project, "log", "--format=%H", f"--grep=This reverts commit {first}", INTEGRATION).split()
    assert len(reverts) == 1, reverts
    found = results(project)["T-01"]
    work = git(project, "show", f"{INTEGRATION}:work.txt").splitlines()
    assert found["status"] == "completed" and work == ["attempt 1", f"attempt {found['attempts']}"], work
    git(project, "merge", "-q", "--no-edit", INTEGRATION)
    assert (project / "work.txt").read_text(encoding="utf-8").splitlines() == work, "the person's branch: once"


def test_a_runner_killed_as_it_reverts_a_killed_merge_leaves_the_next_to_finish_it(tmp_path: Path) -> None:
    """The run that reverts an unrecorded merge killed -9 in turn, once the revert is made: the
    next one finds it, reverts nothing twice, and the task's work merges once."""
    project, flags = _project(tmp_path)
    first = _killed(tmp_path, project, flags, "at the merge")
    git(project, "merge", "-q", "--ff-only", INTEGRATION)
    killed_at(tmp_path, project, f"refs/heads/{INTEGRATION}", " revert ")

    again = run(project)
    assert again.code == 0, again.stdout + again.stderr
    assert "reverted by" in _said(again) and "already, by a run killed since" in _said(again), _said(again)
    reverts = git(project, "log", "--format=%H", f"--grep=This reverts commit {first}", INTEGRATION).split()
    assert len(reverts) == 1, reverts
    found = results(project)["T-01"]
    work = git(project, "show", f"{INTEGRATION}:work.txt").splitlines()
    assert found["status"] == "completed" and work == ["attempt 1", f"attempt {found['attempts']}"], work


def test_the_verify_a_killed_runner_left_running_is_stopped_by_the_next_run(tmp_path: Path) -> None:
    """A ``verify`` is run for its task's attempt, which the journal holds open until the merge is
    done: the next run's settling finds its process by the attempt's environment and stops it, as
    it stops an attempt's own (a runner killed -9 leaves no process of ours behind)."""
    project, flags = _project(tmp_path)
    (flags / "hold").touch()
    runner = start(project)
    try:
        wait_until(lambda: (flags / "verifying").exists() and (flags / "verifying").read_text().strip() != "",
                   "verify to run", timeout=90)  # fmt: skip
        verify = int((flags / "verifying").read_text())
        runner.kill()
    finally:
        runner.cleanup()
    (flags / "hold").unlink()
    assert _running(verify), "the runner's death alone leaves it running"
    try:
        assert run(project).code == 0
        wait_until(lambda: not _running(verify), "the leftover verify stopped", timeout=10)
    finally:
        if _running(verify):
            os.kill(verify, signal.SIGKILL)


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie no longer does)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
