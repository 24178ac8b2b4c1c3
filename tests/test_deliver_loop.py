"""The loop closed (issue 76): a signed ``pull_request`` delivery to a real ``serve`` starts a run in
worktrees; its gate waits (no pull request, no comment yet); an allowed sender's ``/approve`` on that
pull request starts the run that takes it; its work arrives as one update of the pull request it
came from (pushed onto its branch, on a bare repository on disk: no second pull request), with one
summary comment on it, on the fake of GitHub's API. A redelivery of the same approval changes nothing.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from dashboard_helpers import CLI, served
from fake_github import FakeGitHub
from runner_helpers import Spec, gate_first_before, write_plan
from test_api import wait_for
from test_comments import comment, said
from test_hooks import SECRET, deliver, finished
from worktree_helpers import INTEGRATION, git, no_git_identity, repository

__all__ = ["no_git_identity"]

pytest.importorskip("starlette")

REPOSITORY = "acme/app"
OPENED = {"action": "opened", "pull_request": {"number": 7}, "repository": {"full_name": REPOSITORY}}


def gated(tmp_path: Path, remote: Path) -> Path:
    """A repository whose plan's T-02 waits at its Approval gate; delivered as a pull request and a
    comment, the run started by a pull request's delivery."""
    root = repository(tmp_path, {"README.md": "hello\n"})
    settings: dict[str, Any] = {
        "isolation": "worktree",
        "params": {"pr": {"default": "none"}},
        "triggers": {"github": {"events": ["pull_request"], "params": {"pr": "{{ event.pull_request.number }}"}}},
        "deliver": {"to": ["pr", "comment"], "remote": str(remote), "repository": REPOSITORY, "base": "main"},
    }
    write_plan(root, [Spec("T-01", "echo one > one.txt"), Spec("T-02", "echo shipped > shipped.txt", ["T-01"])],
               settings)  # fmt: skip
    gate_first_before(root / ".orchestrator" / "master_plan.md")
    (tmp_path / "secret").write_bytes(SECRET + b"\n")
    return root


def test_a_pull_requests_run_gated_by_a_comment_updates_that_pull_request_with_one_comment(tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True, timeout=60)
    root = gated(tmp_path, remote)
    git(root, "push", "-q", str(remote), "main:refs/heads/feature")  # (pull request #7's branch: the project's)
    with FakeGitHub() as github:
        github.pulls[REPOSITORY] = [{
            "number": 7, "state": "open", "title": "theirs", "body": "theirs", "head": {"ref": "feature"},
            "base": {"ref": "main"}, "html_url": f"https://github.test/{REPOSITORY}/pull/7",
        }]  # fmt: skip
        env = {"ORCHESTRATOR_GITHUB_TOKEN": "ghs_fake_token", "ORCHESTRATOR_GITHUB_API": github.url}
        with served(root, "--webhook-secret-file", str(tmp_path / "secret"), env=env) as server:
            started = deliver(server, OPENED, delivery="opened-7")
            assert started.status == 202, started.body
            held = finished(root)
            assert held["launched"]["exit_code"] == 4, held["launched"]
            assert github.comments == {}  # (nothing goes out before the gate)
            approved = said(server, comment("/approve T-02", number=2001), "c-1")
            assert approved.status == 200, approved.body
            wait_for(lambda: bool(github.comments.get(f"{REPOSITORY}#7")), "the summary comment")
            shown = finished(root)
            assert shown["launched"]["exit_code"] == 0, shown["launched"]
            again = said(server, comment("/approve T-02", number=2001), "c-1")  # (a redelivery)
            assert again.status == 409, again.body
        assert server.errors() == "", server.errors()
    [pull] = github.pulls[REPOSITORY]  # (the one it came from: no other opened, its words untouched)
    tip = git(root, "rev-parse", INTEGRATION).strip()
    assert pull["number"] == 7 and pull["head"]["ref"] == "feature" and pull["body"] == "theirs"
    held_remote = subprocess.run(["git", "rev-parse", "refs/heads/feature"], cwd=remote, capture_output=True,
                                 text=True, check=True, timeout=60).stdout.strip()  # fmt: skip
    assert held_remote == tip and git(root, "show", f"{INTEGRATION}:shipped.txt").strip() == "shipped"
    [summary] = github.comments[f"{REPOSITORY}#7"]
    assert "The orchestrator run finished: **2 of 2 tasks completed**" in summary["body"]
    assert pull["html_url"] in summary["body"]
    status = json.loads(subprocess.run([*CLI, "status", "--json"], cwd=root, capture_output=True, text=True,
                                       check=True).stdout)  # fmt: skip
    kinds = sorted(e["kind"] for e in status["effects"])
    assert kinds == ["comment", "pr_update", "push"], status["effects"]


def check_run(conclusion: str, branch: str, text: str = "") -> dict[str, Any]:
    return {
        "action": "completed",
        "repository": {"full_name": REPOSITORY},
        "check_run": {
            "name": "ci", "conclusion": conclusion, "check_suite": {"head_branch": branch},
            "output": {"title": "2 tests failed", "summary": "test_a, test_b", "text": text},
        },
    }  # fmt: skip


def test_a_failed_check_on_the_delivered_branch_starts_the_follow_up_task_with_its_log(tmp_path: Path) -> None:
    """``on_failed_check: T-09``: a passing check, or a failed one on another branch, starts nothing;
    a failed one on the branch delivered runs T-09 again, its log a parameter it reads as data."""
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True, timeout=60)
    root = repository(tmp_path, {"README.md": "hello\n"})
    settings: dict[str, Any] = {
        "isolation": "worktree",
        "params": {"check": {"default": ""}, "check_log": {"default": ""}},
        "deliver": {"to": ["push"], "remote": str(remote), "on_failed_check": "T-09"},
    }
    fix = 'echo "fixing {{ params.check }}: {{ params.check_log }}"'
    write_plan(root, [Spec("T-01", "echo one > one.txt"), Spec("T-09", fix)], settings)
    first = subprocess.run([*CLI, "run"], cwd=root, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    (tmp_path / "secret").write_bytes(SECRET + b"\n")
    hostile = "$(touch pwned) `touch pwned2`"
    with served(root, "--webhook-secret-file", str(tmp_path / "secret")) as server:
        passed = deliver(server, check_run("success", INTEGRATION), event="check_run", delivery="k-1")
        assert passed.status == 202 and passed.json()["ignored"] == "no check failed", passed.body
        other = deliver(server, check_run("failure", "main"), event="check_run", delivery="k-2")
        assert other.status == 202 and "another branch" in other.json()["ignored"], other.body
        failed = deliver(server, check_run("failure", INTEGRATION, hostile), event="check_run", delivery="k-3")
        assert failed.status == 202, failed.body
        shown = finished(root)
        assert shown["launched"]["what"] == "check_run ci failed" and shown["launched"]["exit_code"] == 0, shown
        again = deliver(server, check_run("failure", INTEGRATION, hostile), event="check_run", delivery="k-3")
        assert again.status == 409, again.body
        assert server.errors() == "", server.errors()
    said = subprocess.run([*CLI, "output", "T-09"], cwd=root, capture_output=True, text=True, check=True).stdout
    assert said.strip() == f"fixing ci: 2 tests failed\ntest_a, test_b\n{hostile}", said
    assert not list(root.rglob("pwned*"))
