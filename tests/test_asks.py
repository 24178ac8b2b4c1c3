"""An agent's own permission question answered by a person (``ask: true``), with the real ``claude``
CLI against the fake Messages API: its ``--permission-prompt-tool`` is ``orchestrator mcp
--permission-tool``, and a scripted tool call its Access does not give it is asked, shown and
notified, then answered from the CLI (allow: the call runs and the task completes; deny: it does
not run, and the task's result says so), or by nobody (denied at ``ask_timeout``). Every question
and answer is in the result, ``approvals.jsonl`` and ``history``. A plan that does not opt in runs
claude as before; the other backends refuse ``ask: true`` at ``validate``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fakeapi import FakeAnthropic, Reply, claude_missing, find_claude
from test_claude_backend import environment, result, write_plan

from orchestrator.backends.claude_line import claude_argv
from orchestrator.plan.config.settings import Settings

CLAUDE = find_claude()
CLI = [sys.executable, "-m", "orchestrator"]
needs_claude = pytest.mark.skipif(CLAUDE is None, reason=claude_missing())


def script(tmp_path: Path) -> list[Reply]:
    return [Reply.tool("Write", {"file_path": str(tmp_path / "made.txt"), "content": "made\n"}), Reply.say("done")]


def approvals_lines(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / ".orchestrator" / "state" / "approvals.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def wait_for(found: Callable[[], Any], what: str, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {seconds:g}s")


def started(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "run", str(tmp_path / ".orchestrator")], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


def answered(tmp_path: Path, env: dict[str, str], *words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "answer", str(tmp_path / ".orchestrator"), *words], env={**env, "USER": "ann"}, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip


def asked(tmp_path: Path) -> dict[str, Any]:
    return dict(wait_for(lambda: next((d for d in approvals_lines(tmp_path) if d["decision"] == "asked"), None), "ask"))


@pytest.mark.claude
@needs_claude
@pytest.mark.parametrize("word", ["allow", "deny"])
def test_a_question_answered_from_the_cli_lets_the_call_run_or_not(tmp_path: Path, word: str) -> None:
    notified = tmp_path / "notified.jsonl"
    _plan(tmp_path, "60s", notified)
    with FakeAnthropic(script(tmp_path)) as api:
        env = environment(api, tmp_path)
        runner = started(tmp_path, env)
        question = asked(tmp_path)
        assert question["said"] == "Write(made.txt)" and question["tool"] == "Write" and question["attempt"] == 1
        assert not (tmp_path / "made.txt").exists()  # (it waits for the answer)
        told = wait_for(lambda: _notified(notified, "permission_asked"), "notification")
        assert told["said"] == "Write(made.txt)" and told["number"] == 1
        form = "`orchestrator answer T-01 Q1 allow|deny`"
        assert told["text"].startswith(f"✋ T-01 [Agent-01] asks Q1: Write(made.txt) — {form}"), told
        said = answered(tmp_path, env, "T-01", word)
        assert said.returncode == 0, said.stderr
        out, _ = runner.communicate(timeout=150)
    assert "✋ T-01 [Agent-01] asks Q1: Write(made.txt)" in out, out
    meta, _ = result(tmp_path, "agent-01")
    [shown] = meta["asked"]
    assert (shown["said"], shown["answer"], shown["by"]) == ("Write(made.txt)", word, "ann")
    if word == "allow":
        assert runner.returncode == 0 and (tmp_path / "made.txt").read_text() == "made\n", out
        assert meta["status"] == "completed" and "👍 T-01 [Agent-01] allowed Q1: Write(made.txt) by ann" in out
    else:
        assert runner.returncode == 1 and not (tmp_path / "made.txt").exists(), out
        assert meta["status"] == "failed" and meta["error_class"] == "denied", meta
        assert meta["reason"].startswith("1 tool call denied: Write") and "👎 T-01 [Agent-01] denied Q1" in out
    history = subprocess.run([*CLI, "history", str(tmp_path / ".orchestrator")], capture_output=True, text=True)
    mark = "👍 allowed" if word == "allow" else "👎 denied"
    assert f"    {mark} Q1: Write(made.txt) by ann" in history.stdout, history.stdout
    again = answered(tmp_path, env, "T-01", word)
    assert again.returncode == 1 and "T-01 asks nothing now (its Q1, Write(made.txt), closed: " in again.stderr


@pytest.mark.claude
@needs_claude
def test_no_answer_within_ask_timeout_is_a_deny(tmp_path: Path) -> None:
    _plan(tmp_path, "2s", tmp_path / "notified.jsonl")
    with FakeAnthropic(script(tmp_path)) as api:
        env = environment(api, tmp_path)
        done = subprocess.run([*CLI, "run", str(tmp_path / ".orchestrator")], env=env, capture_output=True,
                              text=True, timeout=150)  # fmt: skip
    assert done.returncode == 1 and not (tmp_path / "made.txt").exists(), done.stdout
    assert "👎 T-01 [Agent-01] denied Q1: Write(made.txt) (no answer in time)" in done.stdout, done.stdout
    meta, _ = result(tmp_path, "agent-01")
    assert meta["error_class"] == "denied" and meta["asked"][0]["by"] == "timeout", meta
    [_, deny] = approvals_lines(tmp_path)
    assert (deny["decision"], deny["by"], deny["reason"]) == ("denied", "timeout", "no answer within 2.0s")


@pytest.mark.claude
@needs_claude
def test_an_answer_given_always_answers_the_same_question_again_at_once(tmp_path: Path) -> None:
    _plan(tmp_path, "60s", tmp_path / "notified.jsonl")
    with FakeAnthropic(script(tmp_path) + script(tmp_path)) as api:
        env = environment(api, tmp_path)
        runner = started(tmp_path, env)
        asked(tmp_path)
        assert answered(tmp_path, env, "T-01", "allow", "--always").returncode == 0
        out, _ = runner.communicate(timeout=150)
        assert runner.returncode == 0, out
        (tmp_path / "made.txt").unlink()
        again = subprocess.run([*CLI, "run", str(tmp_path / ".orchestrator"), "--rerun", "T-01"], env=env,
                               capture_output=True, text=True, timeout=150)  # fmt: skip
    assert again.returncode == 0 and (tmp_path / "made.txt").exists(), again.stdout
    lines = approvals_lines(tmp_path)
    assert [line["decision"] for line in lines] == ["asked", "allowed", "asked", "allowed"]
    assert lines[3]["by"] == "ann" and lines[3]["reason"].startswith("answered so for good at ")


def test_a_plan_that_does_not_ask_runs_claude_as_before() -> None:
    plain = claude_argv(Settings(tools=("Read", "Grep", "Glob")), None)
    assert "--permission-prompt-tool" not in plain and "--mcp-config" not in plain
    assert plain[plain.index("--tools") + 1] == "Read,Grep,Glob"
    asking = claude_argv(Settings(tools=("Read", "Grep", "Glob"), ask=True, ask_timeout=90), None)
    assert asking[asking.index("--permission-prompt-tool") + 1] == "mcp__orchestrator_asks__permission"
    assert "--tools" not in asking and asking[asking.index("--allowedTools") + 1] == "Read,Grep,Glob"
    server = json.loads(asking[asking.index("--mcp-config") + 1])["mcpServers"]["orchestrator_asks"]
    assert server["args"][-4:] == ["mcp", "--permission-tool", "--ask-timeout", "90"]


@pytest.mark.parametrize("backend", ["codex", "gemini", "opencode"])
def test_a_backend_whose_cli_cannot_ask_refuses_ask_at_validate(tmp_path: Path, backend: str) -> None:
    write_plan(tmp_path, [("T-01", "Write made.txt", "None")], settings=f"backend: {backend}\nask: true\n")
    done = subprocess.run([*CLI, "validate", str(tmp_path / ".orchestrator")], capture_output=True, text=True)
    assert done.returncode == 2 and "ask: true" in done.stderr and backend in done.stderr, done.stderr


def test_the_permission_tool_outside_a_task_denies_and_asks_nobody(tmp_path: Path) -> None:
    from orchestrator.cli.agents.permission_tool import decide

    said = decide({"tool_name": "Bash", "input": {"command": "rm -rf /"}}, {}, 5)
    assert said["behavior"] == "deny" and "none is" in said["message"]
    workspace = write_plan(tmp_path, [("T-01", "x", "None")])
    place = {"ORCHESTRATOR_WORKSPACE": str(workspace), "ORCHESTRATOR_TASK_ID": "T-01", "ORCHESTRATOR_ATTEMPT": "1"}
    for arguments in ({"tool_name": 3, "input": {}}, {"tool_name": "Bash", "input": "x"}, {}):
        assert decide(arguments, place, 5)["behavior"] == "deny"
    assert not (workspace / "state" / "approvals.jsonl").exists()


def _plan(tmp_path: Path, timeout: str, notified: Path, extra: str = "") -> None:
    sink = tmp_path / "sink.py"
    sink.write_text(
        f"import pathlib, sys\npathlib.Path({str(notified)!r}).open('a').write(sys.stdin.read().strip() + '\\n')\n",
        encoding="utf-8",
    )
    notify = json.dumps([{"command": [sys.executable, str(sink)]}])
    settings = f"ask: true\nask_timeout: {timeout}\nnotify: {notify}\n{extra}"
    write_plan(tmp_path, [("T-01", "Write made.txt", "None")], extra="read", column="Access", settings=settings)


def _notified(path: Path, kind: str) -> dict[str, Any] | None:
    if not path.exists():
        return None
    found = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return next((event for event in found if event.get("event") == kind), None)


@pytest.mark.claude
@needs_claude
def test_questions_answered_by_a_link_a_github_comment_and_the_dashboard(tmp_path: Path) -> None:
    """Three calls asked in turn: allowed by the notification's link, by an OWNER's ``/approve``
    comment on the pull request the plan names, and denied from the dashboard."""
    from dashboard_helpers import http_get, served
    from fake_github import FakeGitHub
    from test_hooks import SECRET, signed

    notified = tmp_path / "notified.jsonl"
    extra = 'public_url: https://asks.example.test\napprovals: {"github": {"repository": "acme/app", "issue": 7}}\n'
    _plan(tmp_path, "60s", notified, extra)
    (tmp_path / "secret").write_bytes(SECRET + b"\n")
    files = ("a.txt", "b.txt", "c.txt")
    replies = [Reply.tool("Write", {"file_path": str(tmp_path / name), "content": name}) for name in files]
    with FakeAnthropic([*replies, Reply.say("done")]) as api, FakeGitHub() as github:
        env = environment(api, tmp_path)
        given = {"ORCHESTRATOR_GITHUB_TOKEN": "ghs_fake", "ORCHESTRATOR_GITHUB_API": github.url}
        with served(tmp_path, "--webhook-secret-file", str(tmp_path / "secret"), env=given) as server:
            runner = started(tmp_path, env)
            _asked(tmp_path, 1)
            allow = urlsplit(wait_for(lambda: _notified(notified, "permission_asked"), "notice")["links"]["allow"])
            shown = http_get(server.port, allow.path, {"Accept": "application/json"})
            assert shown.json()["said"] == "Allow: T-01 Write made.txt — its agent asks Q1: Write(a.txt)", shown.body
            assert http_get(server.port, allow.path, method="POST", body=b"").status == 200
            _asked(tmp_path, 2)
            body = json.dumps(_comment("/approve T-01")).encode()
            sent = {"X-GitHub-Event": "issue_comment", "X-GitHub-Delivery": "c-1", "X-Hub-Signature-256": signed(body),
                    "Content-Type": "application/json"}  # fmt: skip
            assert http_get(server.port, "/hooks/github", sent, method="POST", body=body).status == 200
            _asked(tmp_path, 3)
            shows = wait_for(lambda: http_get(server.port, "/api/state").json().get("asks"), "the dashboard to show it")
            assert shows[0]["said"] == "Write(c.txt)", shows
            token = {"X-Orchestrator-Token": server.token}
            assert http_get(server.port, "/api/task/T-01/deny", token, method="POST", body=b"").status == 200
            out, _ = runner.communicate(timeout=150)
            github.seen(1)
    assert [(tmp_path / name).exists() for name in files] == [True, True, False], out
    meta, _ = result(tmp_path, "agent-01")
    assert meta["error_class"] == "denied", meta
    from orchestrator.state.approvals import local_user

    me = local_user()  # (the server's user: $USER, else its account)
    assert [(a["answer"], a.get("via"), a["by"]) for a in meta["asked"]] == [
        ("allow", "link", "link"), ("allow", "github", "ann"), ("deny", "dashboard", me),
    ]  # fmt: skip
    assert meta["asked"][1]["url"] == "https://github.com/acme/app/pull/7#issuecomment-5"


def _asked(tmp_path: Path, count: int) -> None:
    wait_for(lambda: len([d for d in approvals_lines(tmp_path) if d["decision"] == "asked"]) >= count, "a question")


def _comment(body: str) -> dict[str, Any]:
    return {
        "action": "created", "issue": {"number": 7}, "repository": {"full_name": "acme/app"},
        "comment": {"id": 5, "body": body, "author_association": "OWNER", "user": {"login": "ann"},
                    "html_url": "https://github.com/acme/app/pull/7#issuecomment-5"},
    }  # fmt: skip


def test_a_question_waiting_is_what_status_and_check_tell_until_it_is_too_late(tmp_path: Path) -> None:
    """A question a dead asker left is denied at its ``until`` whether or not anyone wrote so:
    before then ``status`` and ``check`` tell it, after it nobody is asked."""
    from orchestrator.moments import iso_at
    from orchestrator.state.words import questions
    from orchestrator.state.workspace import Workspace

    workspace = Workspace(write_plan(tmp_path, [("T-01", "Write made.txt", "None")]))
    questions.ask(workspace, "T-01", 1, "Bash", "Bash(rm -rf build)", until=iso_at(time.time() + 60), inputs=None)
    check = subprocess.run([*CLI, "check", str(workspace.root), "--json"], capture_output=True, text=True)
    [found] = [f for f in json.loads(check.stdout)["workspaces"][0]["findings"] if f["kind"] == "asking"]
    assert check.returncode == 1 and found["message"].startswith("T-01 asks Q1: Bash(rm -rf build) — "), found
    status = json.loads(subprocess.run([*CLI, "status", str(workspace.root), "--json"], capture_output=True).stdout)
    assert [q["said"] for q in status["asks"]] == ["Bash(rm -rf build)"]
    questions.ask(workspace, "T-01", 2, "Bash", "Bash(ls)", until=iso_at(time.time() - 1), inputs=None)
    assert [q.said for q in questions.pending(workspace)] == ["Bash(rm -rf build)"]


@pytest.mark.claude
@needs_claude
def test_a_person_is_never_asked_for_a_write_into_the_walls(tmp_path: Path) -> None:
    """An agent that may ask (``ask: true``) asks a person for what its Access does not give it,
    but a write into the workspace is denied by claude's rules before any question
    (``backends/guard``): nobody is asked, so nobody can allow it, and the task is ``denied``."""
    _plan(tmp_path, "2s", tmp_path / "notified.jsonl")
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    write = Reply.tool("Write", {"file_path": str(plan), "content": "| T-99 | x | None |\n"})
    with FakeAnthropic([write, Reply.say("done")]) as api:
        env = environment(api, tmp_path)
        done = subprocess.run([*CLI, "run", str(tmp_path / ".orchestrator")], env=env, capture_output=True,
                              text=True, timeout=150)  # fmt: skip
    assert done.returncode == 1, done.stdout
    assert "T-99" not in plan.read_text(encoding="utf-8")  # (the run writes its status blocks there)
    assert approvals_lines(tmp_path) == []  # no question, no answer
    meta, _ = result(tmp_path, "agent-01")
    assert meta["error_class"] == "denied" and "asked" not in meta, meta


@pytest.mark.claude
@needs_claude
def test_under_access_edit_claude_runs_its_file_commands_unasked_and_asks_for_any_other(tmp_path: Path) -> None:
    """The docs' table of what each Access runs unasked, for claude's ``edit`` (acceptEdits): ``rm
    -rf build`` in its directory runs and nobody is asked; ``npm install``, the docs' example of a
    question, is asked (and denied here, unanswered)."""
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "old.o").write_text("x", encoding="utf-8")
    notified = tmp_path / "notified.jsonl"
    _plan(tmp_path, "2s", notified)
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    plan.write_text(plan.read_text(encoding="utf-8").replace(" read |", " edit |"), encoding="utf-8")
    steps = [Reply.tool("Bash", {"command": "rm -rf build"}), Reply.tool("Bash", {"command": "npm install"}),
             Reply.say("done")]  # fmt: skip
    with FakeAnthropic(steps) as api:
        env = environment(api, tmp_path)
        done = subprocess.run([*CLI, "run", str(tmp_path / ".orchestrator")], env=env, capture_output=True,
                              text=True, timeout=150)  # fmt: skip
    assert not (tmp_path / "build").exists(), done.stdout  # (ran, unasked)
    asked = [line["said"] for line in approvals_lines(tmp_path) if line["decision"] == "asked"]
    assert asked == ["Bash(npm install)"], done.stdout
    assert "✋ T-01 [Agent-01] asks Q1: Bash(npm install)" in done.stdout, done.stdout
