"""The runner driving the real ``claude`` CLI against a fake Messages API on 127.0.0.1.

Skipped, with the reason shown, only where the CLI is not installed (``tools/install-claude.sh``
needs npm); CI installs it and runs these.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from fakeapi import FakeAnthropic, Reply, claude_env, claude_missing, find_claude
from runner_helpers import as_if_the_runner_died_before_recording, catches

from orchestrator import documents
from orchestrator.state import journal

CLAUDE = find_claude()
pytestmark = [
    pytest.mark.claude,
    pytest.mark.skipif(CLAUDE is None, reason=claude_missing()),
]


def write_plan(
    root: Path, rows: Sequence[tuple[str, str, str]], extra: str = "", settings: str = "", column: str = "Assignee"
) -> Path:
    """A plan of ``rows``; ``extra``: every row's cell of one more ``column``."""
    workspace = root / ".orchestrator"
    workspace.mkdir(parents=True, exist_ok=True)
    table = "\n".join(f"| {tid} | {desc} | {deps} |" + (f" {extra} |" if extra else "") for tid, desc, deps in rows)
    header = "| Task ID | Description | Dependencies |" + (f" {column} |" if extra else "")
    rule = "|---|---|---|" + ("---|" if extra else "")
    given = {"backend": "claude", "max_parallel": "1", "retries": "1", "backoff_base": "0.1", "timeout": "90"}
    given["inactivity_timeout"] = "60"
    for line in settings.splitlines():  # a setting given replaces the default (one written twice is refused)
        key, _, value = line.partition(":")
        given[key.strip()] = value.strip()
    front = "".join(f"{key}: {value}\n" for key, value in given.items())
    (workspace / "master_plan.md").write_text(
        f"---\n{front}---\n# Plan\n\n## Original Request\n> Test the claude backend\n\n"
        f"## Task Decomposition\n{header}\n{rule}\n{table}\n",
        encoding="utf-8",
    )
    return workspace


def environment(api: FakeAnthropic, tmp_path: Path, auth: str = "api_key") -> dict[str, str]:
    assert CLAUDE is not None
    config = tmp_path / "claude-config"
    config.mkdir(exist_ok=True)
    env = claude_env(api.base_url, config, auth=auth)  # type: ignore[arg-type]
    env["ORCHESTRATOR_CLAUDE_BIN"] = CLAUDE
    env["HOME"] = str(tmp_path)
    return env


def run(tmp_path: Path, env: dict[str, str], *args: str, timeout: float = 150) -> tuple[int, list[dict[str, Any]]]:
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "run", str(tmp_path / ".orchestrator"), "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert events and events[-1]["event"] == "run_finished", proc.stdout + proc.stderr
    return proc.returncode, events


def result(tmp_path: Path, agent: str) -> tuple[dict[str, Any], str]:
    document = documents.read_document(tmp_path / ".orchestrator" / "results" / f"{agent}-result.md")
    assert document is not None
    return document


def always(reply: Reply) -> Callable[[dict[str, Any]], Reply]:
    return lambda body: reply


def test_success_records_cost_tokens_session_and_passes_results_downstream(tmp_path: Path) -> None:
    write_plan(tmp_path, [("T-01", "Say hello", "None"), ("T-02", "Say goodbye", "T-01")])
    with FakeAnthropic([Reply.say("Hello from T-01"), Reply.say("Goodbye from T-02")]) as api:
        code, events = run(tmp_path, environment(api, tmp_path))
        assert code == 0
        second_prompt = json.dumps(api.main_requests[1]["messages"])
    assert "Hello from T-01" in second_prompt  # upstream result inline in the dependent's prompt
    meta, body = result(tmp_path, "agent-02")
    assert body.strip() == "Goodbye from T-02"
    assert meta["status"] == "completed" and meta["backend"] == "claude"
    assert meta["cost_usd"] > 0 and meta["tokens"]["input"] > 0 and meta["turns"] == 1
    assert meta["session_id"]
    completed = [e for e in events if e["event"] == "task_completed"]
    assert [e["task"] for e in completed] == ["T-01", "T-02"] and all(e["cost_usd"] > 0 for e in completed)
    status = subprocess.run(
        [sys.executable, "-m", "orchestrator", "status", str(tmp_path / ".orchestrator"), "--json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    report = json.loads(status.stdout)
    assert report["cost_usd"] == pytest.approx(meta["cost_usd"] * 2)
    final = (tmp_path / ".orchestrator" / "final_output.md").read_text()
    assert "| Cost | $" in final and "| Tokens |" in final


def test_bash_tool_round_trip_does_real_work(tmp_path: Path) -> None:
    write_plan(tmp_path, [("T-01", "Make a file", "None")], settings="allowed_tools: [Bash]\n")
    script = [Reply.tool("Bash", {"command": "echo made > made.txt"}), Reply.say("I made made.txt")]
    with FakeAnthropic(script) as api:
        code, _ = run(tmp_path, environment(api, tmp_path))
        tool_result = json.dumps(api.main_requests[-1]["messages"][-1])
    assert code == 0
    assert (tmp_path / "made.txt").read_text() == "made\n"  # claude ran in the project directory
    assert "tool_result" in tool_result
    assert result(tmp_path, "agent-01")[1].strip() == "I made made.txt"


def test_auth_failure_fails_once_and_stops_the_backend(tmp_path: Path) -> None:
    write_plan(tmp_path, [("T-01", "One", "None"), ("T-02", "Two", "None")], settings="")
    with FakeAnthropic(always(Reply.auth_error())) as api:
        code, events = run(tmp_path, environment(api, tmp_path))
    assert code == 1
    first, _ = result(tmp_path, "agent-01")
    assert first["status"] == "failed" and first["error_class"] == "auth" and first["attempts"] == 1
    assert "log in" in first["reason"]
    second, _ = result(tmp_path, "agent-02")
    assert second["status"] == "skipped" and "not logged in" in second["reason"]
    assert not [e for e in events if e["event"] == "task_retrying"]


def test_rate_limit_is_retried_then_succeeds(tmp_path: Path) -> None:
    # claude itself retries twice (CLAUDE_CODE_MAX_RETRIES=2), so three 429s fail one attempt.
    script = [Reply.rate_limited(retry_after=0)] * 3 + [Reply.say("made it")]
    write_plan(tmp_path, [("T-01", "Try hard", "None")])
    with FakeAnthropic(script) as api:
        code, events = run(tmp_path, environment(api, tmp_path))
    assert code == 0
    retries = [e for e in events if e["event"] == "task_retrying"]
    assert len(retries) == 1 and retries[0]["error_class"] == "rate_limit"
    meta, body = result(tmp_path, "agent-01")
    assert meta["attempts"] == 2 and body.strip() == "made it"


def test_usage_limit_pauses_the_queue_without_spending_retries(tmp_path: Path) -> None:
    resets_at = int(time.time()) + 3
    write_plan(tmp_path, [("T-01", "Work", "None")], settings="retries: 0\n")
    with FakeAnthropic([Reply.usage_limit(resets_at), Reply.say("after the pause")]) as api:
        code, events = run(tmp_path, environment(api, tmp_path, auth="oauth"))
    assert code == 0, events
    paused = [e for e in events if e["event"] == "run_paused"]
    assert len(paused) == 1 and "limit" in paused[0]["reason"]
    meta, body = result(tmp_path, "agent-01")
    assert meta["status"] == "completed" and body.strip() == "after the pause"
    started = [e for e in events if e["event"] == "task_started"]
    assert started[1]["time"] >= time.strftime("%Y", time.gmtime(resets_at))  # sanity: two starts
    assert not (tmp_path / ".orchestrator" / "state" / "pause.json").exists()


def _wait_for(predicate: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.1)


def test_usage_limit_pause_survives_a_restart_and_shows_in_status(tmp_path: Path) -> None:
    workspace = write_plan(tmp_path, [("T-01", "Work", "None")], settings="retries: 0\n")
    with FakeAnthropic([Reply.usage_limit(int(time.time()) + 3600)]) as api:
        env = environment(api, tmp_path, auth="oauth")
        runner = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "run", str(workspace), "--json"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            _wait_for(lambda: (workspace / "state" / "pause.json").exists(), 60)
            status = subprocess.run(
                [sys.executable, "-m", "orchestrator", "status", str(workspace)],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert "paused until" in status.stdout
            assert "T-01  Agent-01  ⏸️ Waiting" in status.stdout, status.stdout  # not 🟡 Pending: nothing starts
        finally:
            runner.send_signal(signal.SIGINT)
            runner.communicate(timeout=30)
            assert runner.returncode == 130
        calls = len(api.main_requests)
        # A new runner honours the pause it finds: it calls nothing.
        again = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "run", str(workspace), "--json"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        # Once its run has begun (its own handler takes SIGTERM: Python's own takes SIGINT from the
        # start), a while in which it would have called the API.
        _wait_for(lambda: catches(again.pid, signal.SIGTERM), 60)
        time.sleep(1.5)
        again.send_signal(signal.SIGINT)
        out, _ = again.communicate(timeout=30)
        assert len(api.main_requests) == calls
    assert again.returncode == 130
    assert not any(json.loads(line)["event"] == "task_started" for line in out.splitlines() if line.startswith("{"))


def test_silent_stream_is_killed_by_the_inactivity_timeout(tmp_path: Path) -> None:
    write_plan(tmp_path, [("T-01", "Hang", "None")], settings="retries: 0\ninactivity_timeout: 3\nkill_grace: 1\n")
    with FakeAnthropic(always(Reply.hang(120))) as api:
        began = time.monotonic()
        code, _ = run(tmp_path, environment(api, tmp_path))
        assert time.monotonic() - began < 60
    assert code == 1
    meta, _ = result(tmp_path, "agent-01")
    assert meta["status"] == "failed" and meta["error_class"] == "hang" and "no output" in meta["reason"]


def _interrupt_first_attempt(tmp_path: Path, workspace: Path, env: dict[str, str], api: FakeAnthropic) -> None:
    """Start a run whose first answer hangs, and stop it with Ctrl-C once claude is in its turn."""
    runner = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "run", str(workspace), "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    attempts = workspace / "state" / "attempts.jsonl"
    _wait_for(lambda: any(a.session_id for a in journal.read(attempts).open.values()), 60)
    _wait_for(lambda: len(api.main_requests) >= 1, 30)
    runner.send_signal(signal.SIGINT)
    runner.communicate(timeout=30)
    assert runner.returncode == 130


def _said(body: dict[str, Any]) -> str:
    """What the last user message of a request said (claude puts its sandbox's note after it, as
    a message of its own, when its Bash runs walled)."""
    return json.dumps([m for m in body["messages"] if m["role"] == "user"][-1]["content"])


def test_interrupted_task_continues_its_session(tmp_path: Path) -> None:
    workspace = write_plan(tmp_path, [("T-01", "Long work", "None")])
    with FakeAnthropic([Reply.hang(120), Reply.say("finished after resume")]) as api:
        env = environment(api, tmp_path)
        _interrupt_first_attempt(tmp_path, workspace, env, api)
        interrupted, _ = result(tmp_path, "agent-01")
        assert interrupted["status"] == "interrupted" and interrupted["session_id"]
        assert interrupted["fingerprint"]  # what it was started with: a later run compares
        code, _ = run(tmp_path, env)
    assert code == 0
    meta, body = result(tmp_path, "agent-01")
    assert body.strip() == "finished after resume"
    assert meta["session_id"] == interrupted["session_id"]  # the same conversation, continued
    assert meta["fingerprint"] == interrupted["fingerprint"]
    # The resumed session is told to go on, not sent its brief again (twice the prompt tokens).
    resumed = json.dumps(api.main_requests[-1]["messages"])
    assert "was interrupted" in _said(api.main_requests[-1])
    assert resumed.count("Task Description") == 1  # the brief once: the first attempt's


@pytest.mark.timeout(300)  # (a hang guard: it runs several processes one after another, slow on a loaded machine)
def test_a_continued_session_is_told_what_was_discovered_while_it_was_away(tmp_path: Path) -> None:
    """The short 'go on' prompt carries the discoveries other tasks made after the attempt began:
    the session never saw them, and a task that starts now would be told them."""
    workspace = write_plan(tmp_path, [("T-01", "Long work", "None"), ("T-02", "Other work", "None")])
    with FakeAnthropic([Reply.hang(120), Reply.say("finished, v2 in mind"), Reply.say("other done")]) as api:
        env = environment(api, tmp_path)
        _interrupt_first_attempt(tmp_path, workspace, env, api)
        said = subprocess.run(
            [sys.executable, "-m", "orchestrator", "discover", str(workspace), "T-02", "The API moved to /v2"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert said.returncode == 0, said.stderr
        code, _ = run(tmp_path, env)
        last = [_said(body) for body in api.main_requests[1:]]
    assert code == 0
    went_on = [text for text in last if "was interrupted" in text]
    assert len(went_on) == 1 and "The API moved to /v2" in went_on[0]
    assert "while your work was interrupted" in went_on[0]


def test_a_task_edited_after_its_interruption_starts_a_new_session(tmp_path: Path) -> None:
    """A hand edit of the brief between the runs: the old session holds a stale task, so the
    task starts afresh with the brief as it stands, never a short 'go on' that would hide it."""
    workspace = write_plan(tmp_path, [("T-01", "Long work", "None")])
    with FakeAnthropic([Reply.hang(120), Reply.say("done as edited")]) as api:
        env = environment(api, tmp_path)
        _interrupt_first_attempt(tmp_path, workspace, env, api)
        interrupted, _ = result(tmp_path, "agent-01")
        brief = workspace / "agent_tasks" / "agent-01.md"
        brief.write_text(brief.read_text(encoding="utf-8") + "\nAlso count the tests.\n", encoding="utf-8")
        code, events = run(tmp_path, env)
    assert code == 0
    meta, body = result(tmp_path, "agent-01")
    assert body.strip() == "done as edited"
    assert meta["session_id"] != interrupted["session_id"]  # a new conversation
    sent = json.dumps(api.main_requests[-1]["messages"])
    assert "Also count the tests." in sent and sent.count("Task Description") == 1 and "was interrupted" not in sent
    assert any(e["event"] == "notice" and "changed since its interrupted attempt" in e["message"] for e in events)


def test_an_attempt_that_finished_as_its_runner_died_is_kept_from_its_log(tmp_path: Path) -> None:
    """Issue 21: a task whose agent had printed its result when the runner died is not done
    again, nor continued: the next run records it from the log, and sends the API nothing."""
    workspace = write_plan(tmp_path, [("T-01", "Say hello", "None"), ("T-02", "Say goodbye", "T-01")])
    with FakeAnthropic([Reply.say("Hello from T-01"), Reply.say("Goodbye from T-02")]) as api:
        env = environment(api, tmp_path)
        assert run(tmp_path, env, "--only", "T-01")[0] == 0
        first, _ = result(tmp_path, "agent-01")
        as_if_the_runner_died_before_recording(workspace, "agent-01")
        code, events = run(tmp_path, env)
        sent = [json.dumps(body["messages"]) for body in api.main_requests]
    assert code == 0
    meta, body = result(tmp_path, "agent-01")
    assert body.strip() == "Hello from T-01" and meta["status"] == "completed"
    assert meta["attempts"] == 1 and meta["session_id"] == first["session_id"]
    assert meta["fingerprint"] == first["fingerprint"] and meta["cost_usd"] == first["cost_usd"]
    assert "recovered from the log of attempt 1" in meta["reason"]
    assert meta["logs"] == [".orchestrator/logs/agent-01.attempt-1.out"]
    assert [e["task"] for e in events if e["event"] == "task_started"] == ["T-02"]  # T-01 did not run again
    assert any(e["event"] == "notice" and "T-01 had finished" in e["message"] for e in events)
    started = next(e for e in events if e["event"] == "run_started")  # what runs: T-01 is done
    assert (started["to_run"], started["already_done"]) == (1, 1)
    assert len(sent) == 2 and "Hello from T-01" in sent[1]  # T-02 got the recovered result as its input
    assert not (workspace / "logs" / "agent-01.attempt-2.out").exists()


@pytest.mark.parametrize(
    "how",
    [
        pytest.param(("run", "--rerun", "T-01"), id="rerun"),  # asked to run again: it does
        pytest.param(("reset", "T-01"), id="reset"),  # its results forgotten: its dead attempt too
    ],
)
def test_a_dead_attempt_is_not_kept_from_its_log_when_asked_to_run_again(tmp_path: Path, how: tuple[str, ...]) -> None:
    workspace = write_plan(tmp_path, [("T-01", "Say hello", "None")])
    with FakeAnthropic([Reply.say("Hello v1"), Reply.say("Hello v2")]) as api:
        env = environment(api, tmp_path)
        assert run(tmp_path, env)[0] == 0
        first, _ = result(tmp_path, "agent-01")
        as_if_the_runner_died_before_recording(workspace, "agent-01")
        if how[0] == "reset":
            reset = subprocess.run(
                [sys.executable, "-m", "orchestrator", "reset", str(workspace), *how[1:]],
                env=env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert reset.returncode == 0, reset.stderr
            code, events = run(tmp_path, env)
        else:
            code, events = run(tmp_path, env, *how[1:])
        sent = json.dumps(api.main_requests[-1]["messages"])
    assert code == 0
    meta, body = result(tmp_path, "agent-01")
    assert body.strip() == "Hello v2" and meta["attempts"] == 2
    assert meta["session_id"] != first["session_id"] and "was interrupted" not in sent  # afresh
    assert not any(e["event"] == "notice" and "kept from its log" in e["message"] for e in events)


def test_a_dead_attempt_of_the_fake_executor_is_never_kept(tmp_path: Path) -> None:
    """What the fake executor wrote is made up: never evidence that a real task was done."""
    workspace = write_plan(tmp_path, [("T-01", "Say hello", "None")])
    with FakeAnthropic([Reply.say("Hello for real")]) as api:
        env = environment(api, tmp_path)
        assert run(tmp_path, env, "--executor", "fake")[0] == 0
        as_if_the_runner_died_before_recording(workspace, "agent-01")
        code, events = run(tmp_path, env)
    assert code == 0
    meta, body = result(tmp_path, "agent-01")
    assert body.strip() == "Hello for real" and not meta.get("simulated")
    assert not any(e["event"] == "notice" and "kept from its log" in e["message"] for e in events)


def test_an_attempt_whose_task_changed_since_is_not_kept_from_its_log(tmp_path: Path) -> None:
    """The brief was edited after the attempt began: what it did answers an older task, so the
    task runs again as its brief now says, in a new session."""
    workspace = write_plan(tmp_path, [("T-01", "Say hello", "None")])
    with FakeAnthropic([Reply.say("Hello"), Reply.say("Hello, as edited")]) as api:
        env = environment(api, tmp_path)
        assert run(tmp_path, env)[0] == 0
        as_if_the_runner_died_before_recording(workspace, "agent-01")
        brief = workspace / "agent_tasks" / "agent-01.md"
        brief.write_text(brief.read_text(encoding="utf-8") + "\nSay it twice.\n", encoding="utf-8")
        code, events = run(tmp_path, env)
        sent = json.dumps(api.main_requests[-1]["messages"])
    assert code == 0
    meta, body = result(tmp_path, "agent-01")
    assert body.strip() == "Hello, as edited" and meta["attempts"] == 2
    assert "recovered" not in (meta.get("reason") or "")
    assert "Say it twice." in sent and "was interrupted" not in sent
    assert [e["task"] for e in events if e["event"] == "task_started"] == ["T-01"]


def test_cost_limit_stops_launching(tmp_path: Path) -> None:
    """claude's reported cost reaches the budget: what ran completes, nothing more starts, and the
    run waits for a higher budget (exit 4: T-03 is left to the next run, not skipped)."""
    write_plan(tmp_path, [("T-01", "One", "None"), ("T-02", "Two", "None"), ("T-03", "Three", "None")])
    with FakeAnthropic(always(Reply.say("done"))) as api:
        code, events = run(tmp_path, environment(api, tmp_path), "--max-cost", "0.001")
    assert code == 4
    (reached,) = [e for e in events if e["event"] == "budget_reached"]
    assert reached["tasks"] == ["T-03"] and reached["spent"] >= 0.001, reached
    statuses = [result(tmp_path, f"agent-0{i}")[0]["status"] for i in (1, 2)]
    assert statuses == ["completed", "completed"]
    assert not (tmp_path / ".orchestrator" / "results" / "agent-03-result.md").exists()


def test_profile_prompt_model_and_limit_reach_claude(tmp_path: Path) -> None:
    workspace = write_plan(
        tmp_path, [("T-01", "Review A", "None"), ("T-02", "Review B", "None")], extra="reviewer", settings=""
    )
    (workspace / "agents").mkdir()
    (workspace / "agents" / "reviewer.md").write_text(
        "---\nname: reviewer\ndescription: Reviews code\nmodel: claude-reviewer-1\nmax_parallel: 1\n---\n"
        "You are a careful reviewer who cites line numbers.\n",
        encoding="utf-8",
    )
    with FakeAnthropic(always(Reply.say("reviewed"))) as api:
        code, _ = run(tmp_path, environment(api, tmp_path), "--max-parallel", "4")
        bodies = list(api.main_requests)
    assert code == 0
    assert all(body["model"] == "claude-reviewer-1" for body in bodies)
    assert all("careful reviewer who cites line numbers" in json.dumps(body["system"]) for body in bodies)
    starts = sorted(
        (result(tmp_path, a)[0]["started"], result(tmp_path, a)[0]["finished"]) for a in ("agent-01", "agent-02")
    )
    assert starts[0][1] <= starts[1][0]  # the profile's max_parallel 1 kept them apart


def test_plan_needs_no_network_beyond_the_api(tmp_path: Path) -> None:
    """``orchestrator plan`` with claude's structured output writes a plan that validates."""
    answer = {
        "goal": "Greet",
        "success_criteria": "Two greetings",
        "tasks": [
            {"id": "T-01", "name": "Hello", "description": "Say hello", "dependencies": [], "details": "Say hello.",
             "access": "read"},
            {"id": "T-02", "name": "Bye", "description": "Say bye", "dependencies": ["T-01"], "details": "Bye.",
             "access": "edit"},
        ],
    }  # fmt: skip
    with FakeAnthropic([Reply.tool("StructuredOutput", answer)]) as api:
        env = environment(api, tmp_path)
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator", "plan", str(tmp_path / ".orchestrator"), "Greet twice"],
            env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    check = subprocess.run(
        [sys.executable, "-m", "orchestrator", "validate", str(tmp_path / ".orchestrator"), "--json"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert json.loads(check.stdout)["tasks"] == 2
    # The planner chose what each task may do; the plan says it in an Access column.
    assert '"access"' in json.dumps(api.main_requests[0])
    plan = (tmp_path / ".orchestrator" / "master_plan.md").read_text(encoding="utf-8")
    assert "| Priority | Access |" in plan
    assert "| T-01 | Hello | Say hello | None | P2 | read |" in plan
    assert "| T-02 | Bye | Say bye | T-01 | P2 | edit |" in plan


def test_bundled_claude_review_example_runs_against_the_fake_api(tmp_path: Path) -> None:
    import shutil

    example = Path(__file__).resolve().parent.parent / "examples" / "claude-review"
    copy = tmp_path / "examples" / "claude-review"
    shutil.copytree(example / ".orchestrator", copy / ".orchestrator")
    with FakeAnthropic(always(Reply.say("- orchestrator/x.py:1: a finding"))) as api:
        env = environment(api, tmp_path)
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator", "run", str(copy), "--json"],
            env=env, capture_output=True, text=True, timeout=150,
        )  # fmt: skip
        bodies = list(api.main_requests)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(bodies) == 5
    reviewed = [b for b in bodies if "careful senior reviewer" in json.dumps(b["system"])]
    assert len(reviewed) == 2  # T-02 and T-03 have the reviewer profile
    final = (copy / ".orchestrator" / "final_output.md").read_text()
    assert "| Tasks | 5: 5 completed |" in final


def _plan_answer(*deps: tuple[str, list[str]]) -> dict[str, Any]:
    return {
        "goal": "Greet",
        "success_criteria": "Greetings",
        "tasks": [
            {"id": task_id, "name": task_id, "description": f"Do {task_id}", "dependencies": after, "details": "Go."}
            for task_id, after in deps
        ],
    }


def _plan(tmp_path: Path, api: FakeAnthropic, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "plan", str(tmp_path / ".orchestrator"), "Greet", "--json", *args],
        env=environment(api, tmp_path), capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip


def test_a_plan_the_planner_got_wrong_twice_names_its_answer_not_a_file_never_written(tmp_path: Path) -> None:
    """Its problems named master_plan.md (line 0 for an answer that was no plan), a file that
    was never written; then "the planner's answer:20", a line of nothing anyone could open. The
    answer is kept beside the planner's logs, and its lines are named there."""
    answer = _plan_answer(("T-01", []), ("T-02", ["T-9"]))
    with FakeAnthropic([Reply.tool("StructuredOutput", answer), Reply.tool("StructuredOutput", answer)]) as api:
        proc = _plan(tmp_path, api)
    assert proc.returncode == 2, proc.stderr
    problems = json.loads(proc.stdout)["problems"]
    kept = ".orchestrator/logs/planner.attempt-2.plan.md"  # (QA pass 3: a line of a file nobody could open)
    assert [(p["file"], p["message"]) for p in problems] == [(kept, "T-02 depends on unknown task 'T-9'")]
    assert proc.stderr.startswith(f"{kept}:{problems[0]['line']}: T-02 depends on unknown task 'T-9'")
    assert "| T-02 |" in (tmp_path / kept).read_text(encoding="utf-8").splitlines()[problems[0]["line"] - 1]
    assert not (tmp_path / ".orchestrator" / "master_plan.md").exists()


def test_a_dry_run_plan_got_wrong_twice_names_the_answer_it_kept_nowhere(tmp_path: Path) -> None:
    answer = _plan_answer(("T-01", []), ("T-02", ["T-9"]))
    with FakeAnthropic([Reply.tool("StructuredOutput", answer), Reply.tool("StructuredOutput", answer)]) as api:
        proc = _plan(tmp_path, api, "--dry-run")
    assert proc.returncode == 2, proc.stderr
    assert [p["file"] for p in json.loads(proc.stdout)["problems"]] == ["the planner's answer"]
    assert not (tmp_path / ".orchestrator").exists()


def test_a_drafted_plan_holds_a_fallback_a_gate_outputs_and_params(tmp_path: Path) -> None:
    """The planner may answer with a task's condition, approval gate and output fields, and the
    plan's parameters: the plan written from it holds them (a Condition, an Approval and an Output
    column; params: in its settings, with {{ params.NAME }} in the tasks), and validates as written."""
    answer = {
        "goal": "Release",
        "success_criteria": "Shipped once approved",
        "params": [{"name": "version", "default": "1.4.0", "description": "the version to release"}],
        "tasks": [
            {"id": "T-01", "name": "Check", "description": "Run the checks for {{ params.version }}",
             "dependencies": [], "details": "Run the checks.",
             "output": [{"name": "failing", "type": "int"}, {"name": "severity"}]},
            {"id": "T-02", "name": "Build", "description": "Build it", "dependencies": ["T-01"],
             "details": "Build.", "condition": "T-01.failing == 0"},
            {"id": "T-03", "name": "Triage", "description": "Triage the failures", "dependencies": ["T-01"],
             "details": "Triage.", "condition": "T-01 failed or T-01.failing > 0"},
            {"id": "T-04", "name": "Deploy", "description": "Deploy it", "dependencies": ["T-02"],
             "details": "Deploy.", "approval": "before"},
        ],
    }  # fmt: skip
    with FakeAnthropic([Reply.tool("StructuredOutput", answer)]) as api:
        proc = _plan(tmp_path, api)
        asked = json.dumps(api.main_requests[0])
    assert proc.returncode == 0, proc.stderr
    for word in ('"condition"', '"approval"', '"output"', '"params"'):  # in the schema the planner was given
        assert word in asked, word
    text = (tmp_path / ".orchestrator" / "master_plan.md").read_text(encoding="utf-8")
    assert "| Condition | Approval | Output |" in text
    assert (
        "| T-01 | Check | Run the checks for {{ params.version }} | None | P2 | - | - | failing:int, severity:str |"
        in text
    )
    assert "| T-02 | Build | Build it | T-01 | P2 | T-01.failing == 0 | - | - |" in text
    assert "| T-04 | Deploy | Deploy it | T-02 | P2 | - | before | - |" in text
    checked = subprocess.run(
        [sys.executable, "-m", "orchestrator", "validate", str(tmp_path / ".orchestrator"), "--json"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    data = json.loads(checked.stdout)
    assert [c["task"] for c in data["conditions"]] == ["T-02", "T-03"]
    assert data["gates"] == [{"task": "T-04", "approval": "before"}]
    assert data["params"]["version"]["default"] == "1.4.0"


def test_a_drafted_condition_validate_would_refuse_goes_back_to_the_planner(tmp_path: Path) -> None:
    """A condition reading a field its upstream does not declare is a problem of the answer, sent
    back as a cycle is: the plan written is one validate takes."""
    wrong = _plan_answer(("T-01", []), ("T-02", ["T-01"]))
    wrong["tasks"][0]["output"] = [{"name": "failing", "type": "int"}]
    wrong["tasks"][1]["condition"] = "T-01.failng == 0"
    fixed = json.loads(json.dumps(wrong))
    fixed["tasks"][1]["condition"] = "T-01.failing == 0"
    with FakeAnthropic([Reply.tool("StructuredOutput", wrong), Reply.tool("StructuredOutput", fixed)]) as api:
        proc = _plan(tmp_path, api)
        second_prompt = json.dumps(api.main_requests[-1]["messages"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["attempts"] == 2
    assert "T-01 has no output field 'failng'" in second_prompt
    assert "T-01.failing == 0" in (tmp_path / ".orchestrator" / "master_plan.md").read_text(encoding="utf-8")


def test_plan_dry_run_with_a_timeout_in_minutes_writes_nothing(tmp_path: Path) -> None:
    """``--timeout`` takes a duration as the settings do; ``--dry-run`` prints the plan and leaves
    no file behind, the planner's logs included."""
    answer = _plan_answer(("T-01", []), ("T-02", ["T-01"]))
    with FakeAnthropic([Reply.tool("StructuredOutput", answer)]) as api:
        proc = _plan(tmp_path, api, "--timeout", "5m", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert printed["written"] is None and "| T-02 |" in printed["plan"]
    assert not (tmp_path / ".orchestrator").exists()


def test_plan_still_reads_the_old_dir_option(tmp_path: Path) -> None:
    answer = _plan_answer(("T-01", []))
    with FakeAnthropic([Reply.tool("StructuredOutput", answer)]) as api:
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator", "plan", "Greet", "--dir", str(tmp_path / "ws")],
            env=environment(api, tmp_path), capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("--dir is deprecated: give the workspace as the first argument")
    assert (tmp_path / "ws" / "master_plan.md").is_file()


def test_plan_sends_an_invalid_answer_back_once_with_its_problems(tmp_path: Path) -> None:
    cyclic = _plan_answer(("T-01", ["T-02"]), ("T-02", ["T-01"]))
    fixed = _plan_answer(("T-01", []), ("T-02", ["T-01"]))
    with FakeAnthropic([Reply.tool("StructuredOutput", cyclic), Reply.tool("StructuredOutput", fixed)]) as api:
        proc = _plan(tmp_path, api)
        second_prompt = json.dumps(api.main_requests[-1]["messages"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["attempts"] == 2
    assert "dependency cycle: T-01 -> T-02 -> T-01" in second_prompt  # the problems went back
    assert (tmp_path / ".orchestrator" / "master_plan.md").exists()


def test_plan_writes_nothing_when_the_second_answer_is_invalid_too(tmp_path: Path) -> None:
    cyclic = _plan_answer(("T-01", ["T-02"]), ("T-02", ["T-01"]))
    with FakeAnthropic(always(Reply.tool("StructuredOutput", cyclic))) as api:
        proc = _plan(tmp_path, api)
    assert proc.returncode == 2
    assert "dependency cycle" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / ".orchestrator" / "master_plan.md").exists()


def test_plan_and_init_do_not_replace_the_plan_of_a_run_going_on(tmp_path: Path) -> None:
    """QA: ``plan --force`` beside a run wrote its plan, and the run took the new plan's tasks
    into its own (a mix of two plans). Both it and ``init --force`` are refused as beside any
    other writer, exit 3, before the planner is asked (nothing is paid for)."""
    from runner_helpers import Spec, start, wait_until
    from runner_helpers import write_plan as write_shell_plan

    write_shell_plan(tmp_path, [Spec("T-01", "until [ -e go ]; do sleep 0.05; done")])
    plan_file = tmp_path / ".orchestrator" / "master_plan.md"
    runner = start(tmp_path)
    try:
        wait_until(lambda: any(e["event"] == "task_started" for e in runner.events()), "T-01 to start")
        with FakeAnthropic(always(Reply.tool("StructuredOutput", _plan_answer(("T-01", []))))) as api:
            planned = _plan(tmp_path, api, "--force")
            asked = len(api.main_requests)
        initialised = subprocess.run(
            [sys.executable, "-m", "orchestrator", "init", str(tmp_path / ".orchestrator"), "--force"],
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )  # fmt: skip
        (tmp_path / "go").touch()
        assert runner.wait() == 0
    finally:
        (tmp_path / "go").touch()  # (a failed assertion above must not leave T-01 waiting for ever)
        runner.stop_all()
    for proc in (planned, initialised):
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert f"another run, render, reset, aggregate or plan (pid {runner.pid}) is using" in proc.stderr
    assert asked == 0
    assert [e["event"] for e in runner.events()].count("task_started") == 1  # nothing else was taken in
    kept = plan_file.read_text(encoding="utf-8")  # (the run's status blocks aside)
    assert "until [ -e go ]" in kept and "Do T-01" not in kept and "Describe what you want done" not in kept


def test_a_read_only_profile_cannot_write_whatever_the_permission_mode(tmp_path: Path) -> None:
    """A profile's ``tools`` is the agent's whole tool set (``--tools``), not a pre-approval:
    even under bypassPermissions, an agent given Read, Grep and Glob has nothing to write with."""
    write_plan(
        tmp_path,
        [("T-01", "Review the code", "None")],
        extra="reviewer",
        settings='permission_mode: bypassPermissions\nenv: {IS_SANDBOX: "1"}\n',
    )
    agents = tmp_path / ".orchestrator" / "agents"
    agents.mkdir()
    (agents / "reviewer.md").write_text(
        "---\nname: reviewer\ndescription: Reads code\ntools: Read, Grep, Glob\n---\nYou review code.\n",
        encoding="utf-8",
    )
    script = [
        Reply.tool("Bash", {"command": "echo pwned > reviewer-bash.txt"}),
        Reply.tool("Write", {"file_path": str(tmp_path / "written.txt"), "content": "x"}),
        Reply.say("Reviewed."),
    ]
    with FakeAnthropic(script) as api:
        run(tmp_path, environment(api, tmp_path))
        offered = [sorted(tool["name"] for tool in body.get("tools") or []) for body in api.main_requests]
    writers = {"Bash", "Write", "Edit", "NotebookEdit", "Agent", "Task"}
    assert offered and all({"Glob", "Grep", "Read"} <= set(names) and not writers & set(names) for names in offered)
    assert not (tmp_path / "reviewer-bash.txt").exists()
    assert not (tmp_path / "written.txt").exists()
    meta, _ = result(tmp_path, "agent-01")  # and it did not review as asked: both calls were refused
    assert meta["error_class"] == "denied" and meta["permission_denials"] == 2


@pytest.mark.parametrize("restricted", ["profile", "access", "type", "project-deny"])
def test_a_call_of_a_tool_the_agent_was_not_given_fails_the_task_as_denied(tmp_path: Path, restricted: str) -> None:
    """claude answers a call of a tool outside ``--tools`` with "No such tool available" (not a
    permission denial: ``permission_denials`` stays empty), and the agent then says it did the
    work. The task fails as denied, its result names the call, and its dependent is not run on
    the claim. The agent is restricted by a profile's ``tools``, by an Access cell, by its task
    type (``review`` reads only), or by the project's own claude settings (``permissions.deny``,
    which takes the tool away)."""
    rows = [("T-01", "Write the notes", "None"), ("T-02", "Use the notes", "T-01")]
    if restricted == "profile":
        write_plan(tmp_path, rows, extra="reviewer")
        agents = tmp_path / ".orchestrator" / "agents"
        agents.mkdir()
        (agents / "reviewer.md").write_text(
            "---\nname: reviewer\ndescription: Reads code\ntools: Read, Grep, Glob\n---\nYou review code.\n",
            encoding="utf-8",
        )
    elif restricted == "access":
        write_plan(tmp_path, rows, extra="read", column="Access", settings="permission_mode: acceptEdits\n")
    elif restricted == "type":
        write_plan(tmp_path, rows, extra="review", column="Type", settings="permission_mode: acceptEdits\n")
    else:
        write_plan(tmp_path, rows, settings="permission_mode: acceptEdits\n")
        (tmp_path / ".claude").mkdir()
        (tmp_path / ".claude" / "settings.json").write_text('{"permissions": {"deny": ["Write"]}}', encoding="utf-8")
    script = [
        Reply.tool("Write", {"file_path": "notes.md", "content": "the notes"}),
        Reply.say("I created the file. Done."),
    ]
    with FakeAnthropic(script) as api:
        code, events = run(tmp_path, environment(api, tmp_path))
        offered = {tool["name"] for tool in api.main_requests[0].get("tools") or []}
        requests = len(api.main_requests)
    assert "Write" not in offered and "Read" in offered
    assert code == 1
    assert not (tmp_path / "notes.md").exists()
    assert requests == 2  # T-01's two turns: no retry, and T-02 never asked
    meta, body = result(tmp_path, "agent-01")
    assert meta["status"] == "failed" and meta["error_class"] == "denied" and meta["attempts"] == 1
    assert meta["reason"].startswith("1 tool call denied: Write (notes.md) — ") and meta["permission_denials"] == 1
    assert "I created the file. Done." in body  # kept for a person to judge, not passed on
    assert result(tmp_path, "agent-02")[0]["status"] == "skipped"
    assert not [e for e in events if e["event"] == "task_completed"]


@pytest.mark.skipif(
    not (shutil.which("bwrap") and shutil.which("socat")),
    reason="claude's sandbox needs bubblewrap and socat (apt install bubblewrap socat)",
)
def test_a_command_claudes_sandbox_refused_fails_the_task_as_denied(tmp_path: Path) -> None:
    """The project turns claude's sandbox on (its settings), with no network. A command refused
    the network exits 0 all the same (it echoes after curl), and the agent says it fetched the
    page: claude marks the call a sandbox violation, and the task fails as denied."""
    write_plan(tmp_path, [("T-01", "Fetch the page", "None")], settings="allowed_tools: [Bash]\n")
    (tmp_path / ".claude").mkdir()
    sandbox = {"sandbox": {"enabled": True, "autoAllowBashIfSandboxed": True, "allowUnsandboxedCommands": False}}
    (tmp_path / ".claude" / "settings.json").write_text(json.dumps(sandbox), encoding="utf-8")
    command = "curl -sS -m 5 http://example.com -o page.html; echo fetched"
    with FakeAnthropic([Reply.tool("Bash", {"command": command}), Reply.say("I fetched the page.")]) as api:
        code, _ = run(tmp_path, environment(api, tmp_path))
    assert code == 1
    meta, body = result(tmp_path, "agent-01")
    assert meta["error_class"] == "denied" and meta["permission_denials"] == 1
    assert (
        meta["reason"].startswith("1 tool call denied: Bash (curl -sS -m 5 http://example.com") and "I fetched" in body
    )


def test_an_ordinary_tool_error_is_no_refusal(tmp_path: Path) -> None:
    """An agent's Read of a file that is not there, and a command that exits non-zero,
    are errors the agent saw and answered: the tasks complete."""
    write_plan(
        tmp_path,
        [("T-01", "Read the notes", "None"), ("T-02", "List a directory", "T-01")],
        settings="allowed_tools: [Bash]\n",
    )
    script = [
        Reply.tool("Read", {"file_path": str(tmp_path / "missing.txt")}),
        Reply.say("There are no notes."),
        Reply.tool("Bash", {"command": "ls no-such-directory"}),
        Reply.say("That directory does not exist."),
    ]
    with FakeAnthropic(script) as api:
        code, _ = run(tmp_path, environment(api, tmp_path))
        answers = [json.dumps(body["messages"][-1]) for body in api.main_requests[1::2]]
    assert all('"is_error": true' in answer for answer in answers)  # both calls failed, as the agent saw
    assert code == 0
    for agent in ("agent-01", "agent-02"):
        meta, _ = result(tmp_path, agent)
        assert meta["status"] == "completed" and "permission_denials" not in meta


def test_a_retry_after_a_rate_limit_waits_what_the_api_asked(tmp_path: Path) -> None:
    # claude re-sends twice itself (each after the API's retry-after: 2 s), then gives up; the
    # next attempt must not come sooner than the API asked either.
    script = [Reply.rate_limited(retry_after=2)] * 3 + [Reply.say("made it")]
    write_plan(tmp_path, [("T-01", "Try hard", "None")])
    with FakeAnthropic(script) as api:
        code, events = run(tmp_path, environment(api, tmp_path))
        arrivals = [entry.time for entry in api.log if entry.body and entry.body.get("tools")]
    assert code == 0
    (retry,) = [e for e in events if e["event"] == "task_retrying"]
    assert retry["error_class"] == "rate_limit" and 2.0 <= retry["delay"] <= 3.0
    assert len(arrivals) == 4
    assert arrivals[3] - arrivals[2] >= 2.0  # the new attempt's first request, after the third 429


def test_a_request_the_api_refuses_as_it_stands_is_not_retried(tmp_path: Path) -> None:
    refused = Reply.error(400, "invalid_request_error", "prompt is too long: 250000 tokens > 200000 maximum")
    write_plan(tmp_path, [("T-01", "Read everything", "None")])
    with FakeAnthropic(always(refused)) as api:
        code, events = run(tmp_path, environment(api, tmp_path))
    assert code == 1
    assert not [e for e in events if e["event"] == "task_retrying"]
    meta, _ = result(tmp_path, "agent-01")
    assert meta["status"] == "failed" and meta["attempts"] == 1 and meta["error_class"] == "request"
    assert "prompt is too long" in meta["reason"].lower()


def test_the_synthesis_call_counts_in_the_run_cost(tmp_path: Path) -> None:
    write_plan(tmp_path, [("T-01", "Say hello", "None")], settings="aggregate: agent\n")
    with FakeAnthropic([Reply.say("Hello"), Reply.say("All said: hello.")]) as api:
        code, events = run(tmp_path, environment(api, tmp_path))
    assert code == 0
    task_cost = result(tmp_path, "agent-01")[0]["cost_usd"]
    total = events[-1]["cost_usd"]
    assert task_cost > 0 and total > task_cost  # the aggregating agent's call is spend too
    final = (tmp_path / ".orchestrator" / "final_output.md").read_text(encoding="utf-8")
    assert f"| Cost | ${total:.4f} (the synthesis ${total - task_cost:.4f} of it) |" in final
    assert "All said: hello." in final
    # Its tokens too: the task's, and the aggregating agent's as its own result event states them.
    task_tokens = sum(result(tmp_path, "agent-01")[0]["tokens"].values())
    (log,) = (tmp_path / ".orchestrator" / "logs").glob("aggregator*.out")
    last = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if '"type":"result"' in line][-1]
    usage = last["usage"]
    keys = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    synthesis_tokens = sum(int(usage.get(key) or 0) for key in keys)
    assert task_tokens > 0 and synthesis_tokens > 0
    tokens = task_tokens + synthesis_tokens
    assert f"| Tokens | {tokens:,} (the synthesis {synthesis_tokens:,} of them) |" in final
    # report counts the synthesis as final_output.md does, and says how much was its.
    report = json.loads(_cli(tmp_path, "report", "--json"))
    assert report["cost_usd"] == pytest.approx(total) and report["tokens"] == tokens
    assert report["synthesis"] == {"cost_usd": pytest.approx(total - task_cost), "tokens": synthesis_tokens}
    assert f"| Tokens | {tokens:,} (the synthesis {synthesis_tokens:,} of them) |" in _cli(tmp_path, "report")
    # Rebuilt without a synthesis, final_output.md and report count the task alone.
    _cli(tmp_path, "aggregate")
    report = json.loads(_cli(tmp_path, "report", "--json"))
    assert report["synthesis"] is None and report["tokens"] == task_tokens
    assert report["cost_usd"] == pytest.approx(task_cost)


def _cli(project: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", *args], cwd=project, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_denied_tool_calls_fail_the_task_and_are_not_passed_on_as_done(tmp_path: Path) -> None:
    # Headless claude in the default mode refuses a command that writes (nobody can approve it);
    # the agent then claims it did the work anyway.
    write_plan(tmp_path, [("T-01", "Make a file", "None"), ("T-02", "Use the file", "T-01")])
    script = [Reply.tool("Bash", {"command": "touch made.txt"}), Reply.say("I made made.txt")]
    with FakeAnthropic(script) as api:
        code, events = run(tmp_path, environment(api, tmp_path))
        requests = len(api.main_requests)
    assert code == 1
    assert not (tmp_path / "made.txt").exists()
    assert requests == 2  # T-01's two turns: no retry, and T-02 never asked
    meta, body = result(tmp_path, "agent-01")
    assert meta["status"] == "failed" and meta["error_class"] == "denied" and meta["attempts"] == 1
    assert meta["reason"].startswith("1 tool call denied: Bash (touch made.txt) — ")
    assert "I made made.txt" in body  # the agent's answer is kept for a person to judge
    second, _ = result(tmp_path, "agent-02")
    assert second["status"] == "skipped"
    assert not [e for e in events if e["event"] == "task_completed"]


def test_a_long_silent_generation_is_not_taken_for_a_hang(tmp_path: Path) -> None:
    """claude says nothing on stream-json until a message is whole; with partial messages on, a
    slow answer (8 s here, 0.8 s between chunks) keeps the 3 s inactivity watchdog fed. (Its agent
    has no Bash: claude's sandbox, which an agent with one gets, takes some 0.5 s more to start,
    and on a loaded machine the first line would come too late for a 3 s watchdog.)"""
    workspace = tmp_path / ".orchestrator"
    workspace.mkdir()
    (workspace / "master_plan.md").write_text(
        "---\nbackend: claude\nretries: 0\ntimeout: 90\ninactivity_timeout: 3\ntools: [Read]\n---\n"
        "## Task Decomposition\n| Task ID | Description | Dependencies |\n|---|---|---|\n| T-01 | Think | None |\n",
        encoding="utf-8",
    )
    slow = Reply(kind="text", text="x" * 160, chunk_seconds=0.8)  # 10 chunks of 16 characters
    with FakeAnthropic([slow]) as api:
        code, _ = run(tmp_path, environment(api, tmp_path))
    meta, body = result(tmp_path, "agent-01")
    assert (code, meta["status"]) == (0, "completed"), meta.get("reason")
    assert body.strip() == "x" * 160


def test_claude_in_a_worktree_writes_on_its_branch_and_its_dependent_sees_it(tmp_path: Path) -> None:
    """isolation: worktree with the real claude: its Bash tool call runs in the task's worktree,
    the file lands on the integration branch, the dependent's worktree holds it, and the
    project's own files are untouched."""
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "--allow-empty", "-m", "start"]):
        subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True)
    (tmp_path / ".git" / "info" / "exclude").write_text(".orchestrator/\nclaude-config/\n", encoding="utf-8")
    write_plan(
        tmp_path,
        [("T-01", "Write a.txt", "None"), ("T-02", "Copy a.txt", "T-01")],
        settings="isolation: worktree\nallowed_tools: [Bash]\n",
    )
    script = [
        Reply.tool("Bash", {"command": "echo from-claude > a.txt"}),
        Reply.say("I wrote a.txt"),
        Reply.tool("Bash", {"command": "cp a.txt seen.txt && pwd"}),
        Reply.say("I copied it"),
    ]
    with FakeAnthropic(script) as api:
        code, _ = run(tmp_path, environment(api, tmp_path))
        where = json.dumps(api.main_requests[-1]["messages"][-1])
    assert code == 0
    assert ".orchestrator/worktrees/T-02" in where  # the Bash tool ran in T-02's worktree
    assert not (tmp_path / "a.txt").exists() and not (tmp_path / "seen.txt").exists()

    def show(name: str) -> str:
        done = subprocess.run(["git", "show", f"orchestrator/integration:{name}"], cwd=tmp_path, capture_output=True)
        return done.stdout.decode()

    assert show("a.txt") == "from-claude\n" and show("seen.txt") == "from-claude\n"
    meta, _ = result(tmp_path, "agent-01")
    assert meta["branch"] == "orchestrator/integration-T-01" and "a.txt" in meta["diffstat"]


def test_one_cost_for_a_task_and_one_for_the_run_in_every_view(tmp_path: Path) -> None:
    """A task that reads a file, then hits 429s and is retried on its resumed session: the run
    line said $0.0173 while its line, status, report and its result said $0.0061 (the last
    attempt's), and history gave the first attempt no cost. Every view now gives one figure for
    the task and one for the run: what the CLI billed across its attempts, each counted once."""
    (tmp_path / "notes.txt").write_text("the notes\n", encoding="utf-8")
    script = [
        Reply.tool("Read", {"file_path": str(tmp_path / "notes.txt")}),
        *[Reply.rate_limited(retry_after=0)] * 3,  # claude retries twice itself: the attempt fails
        Reply.say("read it"),
    ]
    write_plan(tmp_path, [("T-01", "Read the notes", "None"), ("T-02", "Say hi", "None")], settings="retries: 2")
    with FakeAnthropic([*script, Reply.say("hi")]) as api:
        code, events = run(tmp_path, environment(api, tmp_path), "--max-parallel", "1")
    assert code == 0, events
    workspace = tmp_path / ".orchestrator"

    def cli_json(*args: str) -> Any:
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator", *args, str(workspace), "--json"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return json.loads(done.stdout)

    retried = [e for e in events if e["event"] == "task_retrying" and e["task"] == "T-01"]
    assert len(retried) == 1 and retried[0]["cost_usd"] > 0  # the first attempt's own spend
    attempts = [a for a in cli_json("history")["attempts"] if a["task"] == "T-01"]
    assert [a["outcome"] for a in attempts] == ["retried", "completed"]
    first, second = (a["cost_usd"] for a in attempts)
    assert first > 0 and second > 0
    task = first + second
    meta, _ = result(tmp_path, "agent-01")
    done = next(e for e in events if e["event"] == "task_completed" and e["task"] == "T-01")
    status = next(t for t in cli_json("status")["tasks"] if t["id"] == "T-01")
    report = cli_json("report")
    reported = next(t for t in report["tasks"] if t["id"] == "T-01")
    assert meta["cost_usd"] == pytest.approx(task) == done["cost_usd"] == status["cost_usd"] == reported["cost_usd"]
    hi = next(t for t in cli_json("status")["tasks"] if t["id"] == "T-02")["cost_usd"]
    run_cost = events[-1]["cost_usd"]
    assert run_cost == pytest.approx(task + hi) == pytest.approx(cli_json("status")["cost_usd"])
    assert report["cost_usd"] == pytest.approx(run_cost)
    final = (workspace / "final_output.md").read_text(encoding="utf-8")
    assert f"| Cost | ${run_cost:.4f} |" in final
    # Tokens: both attempts' (a resumed session reports its last invocation's only).
    assert meta["tokens"]["input"] > 0 and sum(meta["tokens"].values()) == reported["tokens"]
    from orchestrator.serve.board import Board
    from orchestrator.state.workspace import Workspace

    board = Board(Workspace.find(workspace)).snapshot({}, [], [])
    assert next(t for t in board["tasks"] if t["id"] == "T-01")["cost_usd"] == pytest.approx(task)
    assert board["cost_usd"] == pytest.approx(run_cost)


def _dollars(text: str) -> list[float]:
    return [float(found) for found in re.findall(r"\$(\d+\.\d+)", text)]


@pytest.mark.timeout(300)  # (two runs of the real CLI, a server, nine CLI calls: slow on a loaded machine)
@pytest.mark.parametrize("stop", ["sigint", "kill -9"])
def test_one_cost_in_every_view_after_an_interrupted_resumed_and_retried_task(tmp_path: Path, stop: str) -> None:
    """T-01 reads a file, meets 429s, and its retry (the same session, resumed) is stopped with
    its runner mid-session (Ctrl-C, or kill -9); a new run resumes that session, which meets 429s
    again and completes on its retry. claude reports a resumed session's whole cost: the new run
    counted again what the first had counted already (its line said $0.0016 where it spent
    $0.0008, and history's attempts added up to more than the task's figure). Every view now
    gives one figure for the task, each attempt's own in history adding up to it, and the runs'
    figures add up to what the CLI billed, each call once."""
    from dashboard_helpers import http_get, served

    (tmp_path / "notes.txt").write_text("the notes\n", encoding="utf-8")
    held, release = threading.Event(), threading.Event()
    replies: list[Reply | None] = [
        Reply.say("hi"),  # T-02, which T-01 needs: one call, its cost is the price of one
        Reply.tool("Read", {"file_path": str(tmp_path / "notes.txt")}),
        *[Reply.rate_limited(retry_after=0)] * 3,  # claude retries twice itself: the attempt fails
        None,  # the retry, resuming the session: held until the runner is stopped
        *[Reply.rate_limited(retry_after=0)] * 3,  # the new run's attempt, resumed: fails
        Reply.say("read it"),
    ]

    def answer(body: dict[str, Any]) -> Reply:
        reply = replies.pop(0)
        if reply is None:
            held.set()
            release.wait(HOLD_GUARD)
            return Reply.broken()
        return reply

    workspace = write_plan(
        tmp_path, [("T-01", "Read the notes", "T-02"), ("T-02", "Say hi", "None")], settings="retries: 2"
    )
    with FakeAnthropic(answer) as api:
        env = environment(api, tmp_path)
        first = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "run", str(workspace)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            _wait_for(held.is_set, 90)
            attempts = workspace / "state" / "attempts.jsonl"
            _wait_for(lambda: any(a.session_id for a in journal.read(attempts).open.values()), 30)
            if stop == "sigint":
                first.send_signal(signal.SIGINT)
            else:
                os.kill(first.pid, signal.SIGKILL)  # (its claude lives on, held: the next run stops it)
            shown_first, _ = first.communicate(timeout=60)
            assert first.returncode == (130 if stop == "sigint" else -signal.SIGKILL), shown_first
            if stop == "sigint":  # what the run said it spent is what status says was spent
                assert f"cost ${_status(workspace)['cost_usd']:.4f} " in shown_first, shown_first
            second = subprocess.run(
                [sys.executable, "-m", "orchestrator", "run", str(workspace)],
                env=env, capture_output=True, text=True, timeout=150,
            )  # fmt: skip
        finally:
            release.set()
            if first.poll() is None:
                first.kill()
                first.communicate()
    assert second.returncode == 0, second.stdout + second.stderr
    assert not replies and len(api.main_requests) == 10
    ran = [json.loads(line) for line in (workspace / "state" / "events.jsonl").read_text().splitlines()]
    runs = [e["run"] for e in ran if e["event"] == "run_started"]
    assert len(runs) == 2
    price = next(e for e in ran if e["event"] == "task_completed" and e["task"] == "T-02")["cost_usd"]
    assert price > 0
    # What the CLI billed: three answers (T-02's, the Read, the last), each once.
    task, billed = 2 * price, 3 * price

    def money(value: float) -> str:
        return f"${value:.4f}"

    # The lines the runs printed: the task's figure on its line, each run's own spend on its own.
    second_shown = second.stdout
    assert re.search(rf"✅ T-01 \[Agent-01\] completed in [^,]+, \{money(task)}\n", second_shown), second_shown
    assert f"; cost {money(price)} → " in second_shown, second_shown  # not counted again: only the last answer
    if stop == "sigint":
        assert f"; cost {money(2 * price)} → " in shown_first, shown_first
    # What each run's attempts spent (history's own costs), run by run: they add up to what was billed.
    history = _cli_json(workspace, "history")["attempts"]
    by_run = {run: sum(a["cost_usd"] or 0.0 for a in history if a["run"] == run) for run in runs}
    assert by_run[runs[1]] == pytest.approx(price)
    assert sum(by_run.values()) == pytest.approx(billed)
    finished = {e["run"]: e["cost_usd"] for e in ran if e["event"] == "run_finished"}
    assert all(finished[run] == pytest.approx(by_run[run]) for run in finished), (finished, by_run)
    # history: every attempt of T-01, each with its own cost, adding up to the task's figure.
    own = [a for a in history if a["task"] == "T-01"]
    assert [a["attempt"] for a in own] == [1, 2, 3, 4]
    assert [a["outcome"] for a in own] == [
        "retried",
        "interrupted" if stop == "sigint" else "lost",
        "retried",
        "completed",
    ]
    assert sum(a["cost_usd"] or 0.0 for a in own) == pytest.approx(task)
    assert all((a["cost_usd"] or 0.0) >= 0 for a in own)
    history_text = _cli(tmp_path, "history")
    own_lines = [line.split(" (forecast ")[0] for line in history_text.splitlines() if "T-01 attempt" in line]
    assert sum(sum(_dollars(line)) for line in own_lines) == pytest.approx(task)  # (its forecast beside: not spent)
    # The task's one figure, and the total, in every view.
    meta, _ = result(tmp_path, "agent-01")
    assert meta["cost_usd"] == pytest.approx(task)
    status = _status(workspace)
    assert next(t for t in status["tasks"] if t["id"] == "T-01")["cost_usd"] == pytest.approx(task)
    assert status["cost_usd"] == pytest.approx(billed)
    status_text = _cli(tmp_path, "status")
    row = next(line for line in status_text.splitlines() if line.startswith("T-01 "))
    assert _dollars(row) == [round(task, 4)] and f"cost {money(billed)}" in status_text, status_text
    report = _cli_json(workspace, "report")
    assert next(t for t in report["tasks"] if t["id"] == "T-01")["cost_usd"] == pytest.approx(task)
    assert report["cost_usd"] == pytest.approx(billed)
    report_text = _cli(tmp_path, "report")
    row = next(line for line in report_text.splitlines() if line.startswith("| T-01"))
    assert _dollars(row) == [round(task, 4)] and f"| Cost | {money(billed)} |" in report_text, report_text
    final = (workspace / "final_output.md").read_text(encoding="utf-8")
    assert re.search(rf"### T-01 Read the notes \(Agent-01, [^,]+, \{money(task)}\)", final), final
    assert f"| Cost | {money(billed)} |" in final
    with served(tmp_path) as server:
        board = http_get(server.port, "/api/state").json()
    assert next(t for t in board["tasks"] if t["id"] == "T-01")["cost_usd"] == pytest.approx(task)
    assert board["cost_usd"] == pytest.approx(billed)


HOLD_GUARD = 120.0  # seconds a held answer waits to be released


def _cli_json(workspace: Path, *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", *args, str(workspace), "--json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)


def _status(workspace: Path) -> dict[str, Any]:
    found: dict[str, Any] = _cli_json(workspace, "status")
    return found


@pytest.mark.parametrize("shared", [False, True])
def test_a_usage_limit_pauses_its_limit_group_once_and_only_it(tmp_path: Path, shared: bool) -> None:
    # Two claude tasks meet the same usage limit: one pause, told once. The shell task shares no
    # account with claude and starts at once; with `limit_group: team` (every task's) it shares
    # the limit, and waits for the reset.
    from datetime import datetime

    resets_at = int(time.time()) + 20  # (both claude tasks meet the limit within its pause, on a loaded machine too)
    rows = [
        ("T-01", "Work", "None | claude | "),
        ("T-02", "Work", "None | claude | "),
        ("T-03", "Echo", "None | shell | echo ok"),
    ]
    workspace = tmp_path / ".orchestrator"
    write_plan(tmp_path, [], settings="retries: 0\nmax_parallel: 2\n" + ("limit_group: team\n" if shared else ""))
    plan = (workspace / "master_plan.md").read_text(encoding="utf-8")
    head = plan.split("## Task Decomposition")[0]
    table = "| Task ID | Description | Dependencies | Backend | Command |\n|---|---|---|---|---|\n"
    table += "".join(f"| {tid} | {desc} | {rest} |\n" for tid, desc, rest in rows)
    (workspace / "master_plan.md").write_text(head + "## Task Decomposition\n" + table, encoding="utf-8")
    replies = [Reply.usage_limit(resets_at), Reply.usage_limit(resets_at), Reply.say("done"), Reply.say("done")]
    with FakeAnthropic(replies) as api:
        code, events = run(tmp_path, environment(api, tmp_path, auth="oauth"))
    assert code == 0, events
    paused = [e for e in events if e["event"] == "run_paused"]
    assert len(paused) == 1 and paused[0]["limit_group"] == ("team" if shared else "claude"), paused
    shell = next(e for e in events if e["event"] == "task_started" and e["task"] == "T-03")
    started = datetime.fromisoformat(shell["time"]).timestamp()
    if shared:
        assert started >= resets_at, (started, resets_at)
    else:  # it takes the first slot a paused claude task frees: before any claude task starts again
        again = [e for e in events if e["event"] == "task_started" and e["task"] != "T-03" and e["attempt"] > 1]
        assert again and all(datetime.fromisoformat(e["time"]).timestamp() > started for e in again), events
    assert sum(1 for e in events if e["event"] == "task_completed") == 3


def test_a_row_run_per_item_gives_each_claude_agent_its_item_as_data(tmp_path: Path) -> None:
    """Each instance of a row with an ``Each`` cell is its own claude session: its prompt names
    its item where the brief says ``{{ item }}``; the row's result holds both answers in order."""
    write_plan(tmp_path, [("T-01", "Translate the guide into {{ item }}", "None")], extra="fr, de", column="Each")
    with FakeAnthropic([Reply.say("Bonjour"), Reply.say("Hallo")]) as api:
        code, events = run(tmp_path, environment(api, tmp_path))
        prompts = [json.dumps(request["messages"]) for request in api.main_requests]
    assert code == 0, events
    assert any("Translate the guide into fr" in p for p in prompts) and any("into de" in p for p in prompts)
    meta, body = result(tmp_path, "agent-01")
    assert meta["status"] == "completed"
    assert json.loads(body.rsplit("```json\n", 1)[1].split("\n```")[0])["items"] == ["Bonjour", "Hallo"]


@pytest.mark.parametrize(
    "command", ["git push -q {remote} HEAD:refs/heads/agent", "git -C . push -q {remote} HEAD:refs/heads/agent"]
)
def test_claude_in_a_worktree_commits_but_never_pushes(tmp_path: Path, command: str) -> None:
    """In worktree isolation the run delivers, once; its agent may not push (issue 76): claude's
    deny rule refuses ``git push`` as written (the task fails as denied), and a push its rule does
    not see (``git -C . push``) goes nowhere, git's ``pushInsteadOf`` set in its environment."""
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "--allow-empty", "-m", "start"]):
        subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True)
    (tmp_path / ".git" / "info" / "exclude").write_text(".orchestrator/\nclaude-config/\nremote.git/\n")
    write_plan(tmp_path, [("T-01", "Push", "None")], settings="isolation: worktree\nallowed_tools: [Bash]\n")
    script = [Reply.tool("Bash", {"command": command.format(remote=remote)}), Reply.say("I pushed it")]
    with FakeAnthropic(script) as api:
        code, _ = run(tmp_path, environment(api, tmp_path))
    pushed = subprocess.run(["git", "for-each-ref", "--format=%(refname)"], cwd=remote, capture_output=True, text=True)
    assert pushed.stdout == ""  # nothing reached the remote
    meta, _ = result(tmp_path, "agent-01")
    if command.startswith("git push"):
        assert code == 1 and meta["error_class"] == "denied", meta
    else:
        assert "no-push-from-an-agent-the-orchestrator-delivers" in json.dumps(api.main_requests[-1]["messages"][-1])
