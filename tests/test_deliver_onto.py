"""A run from a pull request (issue 76: "one update of the PR it came from"): with ``deliver: [pr,
comment]`` its work is pushed onto that pull request's head branch, a fast-forward, on a bare
repository on disk; no pull request is opened; one summary comment answers on it, on the fake of
GitHub's API. The runner is killed -9 as its push lands unanswered and as its comment is made
unanswered, and a run by hand finishes: one pull request (the person's), its branch at the final
commit, one comment. A branch someone moved past the run's work is refused, in one line, exit 5.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from fake_github import FakeGitHub, Hold
from runner_helpers import cli, start, wait_until
from test_deliver import REPOSITORY, _no_push_left, _push_hold, bare, effects, github, project_with
from worktree_helpers import INTEGRATION, git, no_git_identity

__all__ = ["github", "no_git_identity"]

NUMBER = 7
FEATURE = "feature/tidy"
LAUNCH = "20261127T110000.000-1"


def from_a_pull_request(tmp_path: Path, github: FakeGitHub) -> tuple[Path, Path]:
    """A project whose main is pull request #7's head (``feature/tidy`` on the bare remote, the
    person's own title and body), and a launch that pull request's delivery started."""
    remote = bare(tmp_path)
    project = project_with(tmp_path, remote)
    git(project, "push", "-q", str(remote), f"main:refs/heads/{FEATURE}")
    github.pulls[REPOSITORY] = [{
        "number": NUMBER, "state": "open", "title": "Tidy the README", "body": "mine",
        "head": {"ref": FEATURE, "repo": {"full_name": REPOSITORY}}, "base": {"ref": "main"},
        "html_url": f"https://github.test/{REPOSITORY}/pull/{NUMBER}",
    }]  # fmt: skip
    state = project / ".orchestrator" / "state"
    state.mkdir(parents=True, exist_ok=True)
    entry = {"id": LAUNCH, "source": "github", "what": "pull_request opened", "started": time.time(), "pid": 0,
             "origin": {"repository": REPOSITORY, "issue": NUMBER, "pull": True}}  # fmt: skip
    (state / "launches.json").write_text(json.dumps({"launches": [entry]}), encoding="utf-8")
    return project, remote


def head_of(remote: Path, branch: str) -> str | None:
    done = subprocess.run(["git", "rev-parse", "--verify", "-q", f"refs/heads/{branch}"], cwd=remote,
                          capture_output=True, text=True, check=False, timeout=60)  # fmt: skip
    return done.stdout.strip() or None


def updated_once(project: Path, remote: Path, github: FakeGitHub) -> None:
    """The person's pull request alone, untouched but for its branch, now at the integration
    branch's tip; no branch of the run's own pushed; one comment on it, linking it."""
    tip = git(project, "rev-parse", INTEGRATION).strip()
    assert head_of(remote, FEATURE) == tip
    assert head_of(remote, INTEGRATION) is None
    [pull] = github.pulls[REPOSITORY]
    assert pull["number"] == NUMBER and pull["title"] == "Tidy the README" and pull["body"] == "mine", pull
    assert not [seen for seen in github.requests if seen.method == "POST" and seen.path.endswith("/pulls")]
    [said] = github.comments[f"{REPOSITORY}#{NUMBER}"]
    assert pull["html_url"] in said["body"] and "2 of 2 tasks completed" in said["body"], said
    verified = cli(project, "verify")
    assert verified.code == 0, verified.stdout + verified.stderr
    kinds = sorted(e["kind"] for e in json.loads(cli(project, "status", "--json").stdout)["effects"])
    assert kinds == ["comment", "pr_update", "push"], kinds


MOMENTS = ("not killed", "push landed, unanswered", "comment made, unanswered")


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_run_from_a_pull_request_updates_it_once(tmp_path: Path, github: FakeGitHub, moment: str) -> None:
    project, remote = from_a_pull_request(tmp_path, github)
    if moment == "not killed":
        ran = cli(project, "run", "--launch", LAUNCH)
        assert ran.code == 0, ran.stdout + ran.stderr
        assert f"pull request update to {REPOSITORY}#{NUMBER}" in ran.stdout, ran.stdout
        updated_once(project, remote, github)
        return
    held = tmp_path / "held"
    hold: Hold | None = None
    if moment.startswith("push"):
        _push_hold(remote, held)
    else:
        hold = github.hold("POST", "/comments", after=True)
    runner = start(project, "--launch", LAUNCH, name="killed")
    try:
        if hold is not None:
            wait_until(hold.arrived.is_set, f"the runner's request held at {moment}", timeout=60)
        else:
            wait_until(held.with_suffix(".here").exists, f"the runner held at {moment}", timeout=60)
        runner.kill()
    finally:
        runner.cleanup()
    if hold is not None:
        hold.go.set()
    else:
        held.with_suffix(".go").touch()  # (the dead runner's push lands now)
        wait_until(lambda: _no_push_left(remote), "the dead runner's push to end", timeout=60)
        (remote / "hooks" / "pre-receive").unlink()
    assert [e for e in effects(project) if e["event"] == "effect_intended"]
    resumed = cli(project, "run")
    assert resumed.code == 0, resumed.stdout + resumed.stderr
    updated_once(project, remote, github)
    assert any(e["event"] == "effect_done" and e.get("found") for e in effects(project)), effects(project)


def test_a_pull_requests_branch_moved_past_the_work_is_not_pushed_over(tmp_path: Path, github: FakeGitHub) -> None:
    """Someone pushed to the pull request's branch after the run began: its work does not hold
    their commit, so nothing is pushed over it; one line says why, the run exits 5."""
    project, remote = from_a_pull_request(tmp_path, github)
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", "-b", FEATURE, str(remote), str(other)], check=True, timeout=60)
    (other / "theirs.txt").write_text("theirs\n", encoding="utf-8")
    git(other, "add", "-A")
    git(other, "commit", "-q", "-m", "theirs")
    git(other, "push", "-q", "origin", FEATURE)
    theirs = head_of(remote, FEATURE)
    assert theirs is not None
    ran = cli(project, "run", "--launch", LAUNCH)
    assert ran.code == 5, ran.stdout + ran.stderr
    [line] = [line for line in ran.stdout.splitlines() if "not delivered" in line]
    assert f"the branch of #{NUMBER} moved to {theirs[:12]}, which the run's work does not hold" in line, line
    assert head_of(remote, FEATURE) == theirs and head_of(remote, INTEGRATION) is None
    assert len(github.pulls[REPOSITORY]) == 1 and f"{REPOSITORY}#{NUMBER}" not in github.comments
