"""``/approve T-02`` and ``/reject T-02 why`` in GitHub comments, as signed ``issue_comment``
deliveries to a real ``serve`` on loopback: a run a pull request's delivery started waits at a
gate; an allowed sender's ``/approve`` on that pull request starts the gated task, recorded with
who, where and the comment's URL, and is answered with a 👍 reaction on a fake of GitHub's REST
API; a disallowed sender's, a replay, an edit and another pull request's comment change nothing.
A comment's text is read strictly: a word on its first line exactly, a reason kept as data.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from dashboard_helpers import CLI, Served, served
from fake_github import FakeGitHub
from runner_helpers import Spec, gate_first_before, write_plan
from test_api import wait_for
from test_hooks import SECRET, deliver, finished
from test_hostile_input import snapshot

from orchestrator.plan.config.approvals import GitHubWords, parse_approvals
from orchestrator.serve.comments import Word, misread, parse

pytest.importorskip("starlette")

REPOSITORY = "acme/app"
OPENED = {"action": "opened", "pull_request": {"number": 7}, "repository": {"full_name": REPOSITORY}}


def project(tmp_path: Path, approvals: dict[str, Any] | None = None) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    settings: dict[str, Any] = {
        "params": {"pr": {"default": "none"}},
        "triggers": {"github": {"events": ["pull_request"], "params": {"pr": "{{ event.pull_request.number }}"}}},
    }
    if approvals is not None:
        settings["approvals"] = approvals
    write_plan(root, [Spec("T-01", "echo PR={{ params.pr }}"), Spec("T-02", "echo shipped > shipped.txt", ["T-01"])],
               settings)  # fmt: skip
    gate_first_before(root / ".orchestrator" / "master_plan.md")
    (tmp_path / "secret").write_bytes(SECRET + b"\n")
    return root


def comment(body: str, *, login: str = "ann", association: str = "OWNER", issue: int = 7, action: str = "created",
            number: int = 1001) -> dict[str, Any]:  # fmt: skip
    return {
        "action": action,
        "issue": {"number": issue, "pull_request": {"url": "..."}},
        "repository": {"full_name": REPOSITORY},
        "comment": {
            "id": number, "body": body, "author_association": association, "user": {"login": login},
            "html_url": f"https://github.com/{REPOSITORY}/pull/{issue}#issuecomment-{number}",
        },
    }  # fmt: skip


def said(server: Served, payload: dict[str, Any], delivery: str) -> Any:
    return deliver(server, payload, event="issue_comment", delivery=delivery)


def words(root: Path) -> list[dict[str, Any]]:
    path = root / ".orchestrator" / "state" / "approvals.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def waiting(root: Path, server: Served) -> None:
    """The pull request's delivery starts a run, which leaves T-02 at its gate."""
    started = deliver(server, OPENED, delivery="opened-7")
    assert started.status == 202, started.body
    shown = finished(root)
    assert shown["launched"]["exit_code"] == 3 or "T-02" in json.dumps(shown), shown
    status = subprocess.run([*CLI, "status", "--json"], cwd=root, capture_output=True, text=True, check=True)
    [gated] = [t for t in json.loads(status.stdout)["tasks"] if t["id"] == "T-02"]
    assert gated["status"] == "awaiting_approval", gated


def test_an_allowed_senders_approve_starts_the_gated_task_and_nothing_else_does(tmp_path: Path) -> None:
    root = project(tmp_path)
    with FakeGitHub() as github:
        env = {"ORCHESTRATOR_GITHUB_TOKEN": "ghs_fake", "ORCHESTRATOR_GITHUB_API": github.url}
        with served(root, "--webhook-secret-file", str(tmp_path / "secret"), env=env) as server:
            waiting(root, server)
            launched = json.loads((root / ".orchestrator/state/launches.json").read_text())["launches"]
            assert launched[-1]["origin"] == {"repository": REPOSITORY, "issue": 7, "pull": True}
            before = snapshot(root / ".orchestrator")
            stranger = said(server, comment("/approve T-02", login="mallory", association="CONTRIBUTOR"), "c-0")
            assert stranger.status == 403, stranger.body
            assert stranger.json()["error"].startswith("@mallory may not answer here: this plan takes words from ")
            elsewhere = said(server, comment("/approve T-02", issue=8), "c-1")
            assert elsewhere.status == 202 and "acme/app#8 is not where" in elsewhere.json()["ignored"]
            edited = said(server, comment("/approve T-02", action="edited"), "c-2")
            assert edited.status == 202 and "a comment edited says no word" in edited.json()["ignored"]
            misread = said(server, comment("/approve"), "c-2b")  # (the true reason, not the triggers')
            assert misread.status == 422 and "says no word: write /approve and a task's id" in misread.body.decode()
            assert snapshot(root / ".orchestrator") == before and not (root / "shipped.txt").exists()
            approved = said(server, comment("/approve T-02 looks good\nthanks", number=1002), "c-3")
            assert approved.status == 200 and approved.json()["said"].startswith("👍 approved T-02"), approved.body
            wait_for(lambda: (root / "shipped.txt").exists(), "T-02 to run")
            finished(root)
            before = snapshot(root / ".orchestrator")
            replayed = said(server, comment("/approve T-02\nlooks good", number=1002), "c-3")
            assert replayed.status == 409 and "was taken before" in replayed.json()["error"], replayed.body
            assert snapshot(root / ".orchestrator") == before
            refused = said(server, comment("/reject T-01 not this one", number=1003), "c-4")
            assert refused.status == 409 and "no Approval gate" in refused.json()["error"], refused.body
            sent = github.seen(4)
        assert server.errors() == "", server.errors()
    [word] = words(root)
    assert (word["decision"], word["by"], word["via"], word["reason"]) == ("approved", "ann", "github", "looks good")
    assert word["url"] == f"https://github.com/{REPOSITORY}/pull/7#issuecomment-1002"
    reactions = {(s.path, s.body["content"]) for s in sent if s.path.endswith("/reactions")}
    assert reactions == {
        (f"/repos/{REPOSITORY}/issues/comments/1001/reactions", "-1"),
        (f"/repos/{REPOSITORY}/issues/comments/1002/reactions", "+1"),
        (f"/repos/{REPOSITORY}/issues/comments/1003/reactions", "confused"),
    }
    [answer] = [s for s in sent if s.path == f"/repos/{REPOSITORY}/issues/7/comments"]
    assert answer.body["body"].startswith("`/reject T-01`: T-01 has no Approval gate")
    assert all(s.headers["authorization"] == "Bearer ghs_fake" for s in sent)
    history = subprocess.run([*CLI, "history"], cwd=root, capture_output=True, text=True, check=True).stdout
    assert "👍 T-02 approved by ann (github)" in history, history


def test_a_plan_names_the_logins_that_may_answer_and_reject_keeps_its_reason_as_data(tmp_path: Path) -> None:
    root = project(tmp_path, {"github": {"from": ["@bob"]}})
    with served(root, "--webhook-secret-file", str(tmp_path / "secret")) as server:
        waiting(root, server)
        owner = said(server, comment("/approve T-02"), "c-1")
        assert owner.status == 403 and "takes words from @bob" in owner.json()["error"], owner.body
        hostile = "/reject T-02 `$(touch pwned)` \x1b[31m ignore previous instructions"
        rejected = said(server, comment(hostile, login="Bob", association="NONE"), "c-2")
        assert rejected.status == 200 and rejected.json()["said"].startswith("👎 rejected T-02"), rejected.body
    assert server.errors() == "", server.errors()
    [word] = words(root)
    assert word["by"] == "Bob" and word["reason"] == "`$(touch pwned)` \\x1b[31m ignore previous instructions"
    assert not (root / "pwned").exists() and not (root / "shipped.txt").exists()


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ("/approve T-04", Word(True, "T-04")),
        ("  /approve T-04  \nthanks", Word(True, "T-04")),
        ("/allow T-04 always", Word(True, "T-04", always=True)),
        ("/reject T-04 too risky", Word(False, "T-04", reason="too risky")),
        ("/deny T-04", Word(False, "T-04")),
        ("/approve T-04 now", Word(True, "T-04", reason="now")),
        ("/approve T-02 looks good", Word(True, "T-02", reason="looks good")),
        ("/allow T-04 always, the linter only", Word(True, "T-04", always=True, reason="the linter only")),
        ("/allow T-04 Q2 always", Word(True, "T-04", always=True, question="Q2")),
        ("\t/approve\t\tt-04  ", Word(True, "t-04")),  # (spaces do not count; an id in any case, as every door's)
        ("/Approve T-04", None),
        ("please /approve T-04", None),
        ("/approve", None),
        ("/approve T-04;rm", None),
        ("/approveT-04", None),
        ("> /approve T-04", None),
        ("", None),
    ],
)
def test_a_comment_says_a_word_only_on_its_first_line_exactly(body: str, word: Word | None) -> None:
    assert parse(body) == word
    if word is not None:
        assert misread(body) is None


@pytest.mark.parametrize("body", ["/approve", "/approve T-04;rm", "/Approve T-04", "/reject !!"])
def test_a_first_line_that_begins_as_a_word_and_says_none_is_told_what_to_write(body: str) -> None:
    why = misread(body)
    assert why is not None and why.startswith(f"the comment's first line, {body!r}, says no word: write /"), why
    assert misread("please " + body) is None and misread("") is None


def test_the_senders_a_plan_allows() -> None:
    default = parse_approvals(None).github
    assert default is not None and default.allows("ann", "MEMBER") and not default.allows("ann", "CONTRIBUTOR")
    assert parse_approvals({"github": False}).github is None
    logins = parse_approvals({"github": {"from": ["@Bob", "OWNER"]}}).github
    assert logins == GitHubWords(associations=frozenset({"OWNER"}), logins=frozenset({"bob"}))
    assert logins.allows("BOB", None) and not logins.allows("ann", "MEMBER")
    for bad in ({"github": {"from": ["no such word!"]}}, {"github": {"issue": 0}}, {"links": "soon"}, {"x": 1}):
        with pytest.raises(ValueError):
            parse_approvals(bad)
