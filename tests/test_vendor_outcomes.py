"""What a run records of a codex or gemini task from what the CLI printed: refused calls, retried
streams, token counts.

The agent CLIs are stand-ins here (the real ones run against fakes of their APIs in
``tests/test_agents_*.py``): small programs on ``ORCHESTRATOR_CODEX_BIN`` /
``ORCHESTRATOR_GEMINI_BIN`` that print what the real CLI prints (the formats recorded in
``tests/test_backend_parsers.py``) for the case the task's description names (``MODE=...``),
cases a fake cannot make a real CLI print (codex's ``declined`` status). The runs are real:
``orchestrator run`` starts them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from runner_helpers import cli_in_process, results, run

_CODEX = """\
import json, re, sys
mode = re.search(r"MODE=(\\w+)", sys.stdin.read()).group(1)
def say(**event):
    print(json.dumps(event), flush=True)
def answer(text):
    say(type="item.completed", item={"id": "item_9", "type": "agent_message", "text": text})
say(type="thread.started", thread_id="thread-" + mode)
say(type="turn.started")
usage = {"input_tokens": 1200, "cached_input_tokens": 200, "output_tokens": 345}
if mode == "declined":
    command = "bash -lc 'touch out.txt'"
    say(type="item.started", item={"id": "item_0", "type": "command_execution", "command": command,
                                   "aggregated_output": "", "exit_code": None, "status": "in_progress"})
    say(type="item.completed", item={"id": "item_0", "type": "command_execution", "command": command,
                                     "aggregated_output": "", "exit_code": None, "status": "declined"})
    answer("I created out.txt as asked.")
elif mode == "failedcommand":
    say(type="item.completed", item={"id": "item_0", "type": "command_execution", "command": "false",
                                     "aggregated_output": "", "exit_code": 1, "status": "failed"})
    answer("false exits 1, as the task expected.")
elif mode == "ok":
    answer("All done: ok.")
elif mode == "reconnect":
    say(type="error", message="Reconnecting... 1/5 (stream disconnected before completion: error sending request)")
    answer("Recovered and finished the task.")
say(type="turn.completed", usage=usage)
"""

_GEMINI = """\
import json, re, sys
mode = re.search(r"MODE=(\\w+)", sys.stdin.read()).group(1)
def say(**event):
    print(json.dumps(event), flush=True)
say(type="init", session_id="g-" + mode, model="auto")
answer = "Gemini did it."
if mode in ("unregistered", "policy", "toolfailed"):
    name = "read_file" if mode == "toolfailed" else "write_file"
    say(type="tool_use", tool_name=name, tool_id=name + "__1", parameters={"file_path": "out.txt"})
    kind = {"unregistered": "tool_not_registered", "policy": "policy_violation", "toolfailed": "file_not_found"}[mode]
    say(type="tool_result", tool_id=name + "__1", status="error", output="no",
        error={"type": kind, "message": "Tool " + name + " failed: " + kind})
    answer = "There are no notes." if mode == "toolfailed" else "I have created out.txt."
say(type="message", role="assistant", content=answer, delta=True)
say(type="result", status="success",
    stats={"total_tokens": 1100, "input_tokens": 1000, "output_tokens": 100, "cached": 400, "input": 600})
"""


def _project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, rows: list[str]) -> Path:
    program = tmp_path / "bin" / backend
    program.parent.mkdir()
    program.write_text(f"#!{sys.executable}\n{_CODEX if backend == 'codex' else _GEMINI}", encoding="utf-8")
    program.chmod(0o755)
    monkeypatch.setenv(f"ORCHESTRATOR_{backend.upper()}_BIN", str(program))
    project = tmp_path / "project"
    (project / ".orchestrator").mkdir(parents=True)
    (project / ".orchestrator" / "master_plan.md").write_text(
        f"---\nbackend: {backend}\nmax_parallel: 2\nretries: 1\nbackoff_base: 0.05\ntimeout: 60\n---\n# Plan\n\n"
        "## Task Decomposition\n| Task ID | Description | Dependencies |\n|---|---|---|\n" + "\n".join(rows) + "\n",
        encoding="utf-8",
    )
    return project


def test_a_codex_call_it_declined_fails_the_task_as_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """codex declined the command: whatever its agent then says it did, the task is not done, is
    not retried (it would be declined again), and the task after it is not fed the claim. A
    command that ran and failed is no refusal."""
    project = _project(
        tmp_path,
        monkeypatch,
        "codex",
        ["| T-01 | Touch a file MODE=declined | None |", "| T-02 | Use it MODE=ok | T-01 |",
         "| T-03 | Run false MODE=failedcommand | None |"],
    )  # fmt: skip
    outcome = run(project)
    assert outcome.code == 1, outcome.stdout + outcome.stderr
    meta = results(project)
    assert meta["T-01"]["status"] == "failed" and meta["T-01"]["error_class"] == "denied"
    assert meta["T-01"]["reason"].startswith("1 tool call denied: command (bash -lc 'touch out.txt') — ")
    assert "permission_mode" in meta["T-01"]["reason"] and meta["T-01"]["permission_denials"] == 1
    assert meta["T-01"]["attempts"] == 1  # not retried
    assert meta["T-02"]["status"] == "skipped"
    assert meta["T-03"]["status"] == "completed" and "permission_denials" not in meta["T-03"]


def test_a_codex_stream_retried_then_completed_is_done_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _project(tmp_path, monkeypatch, "codex", ["| T-01 | Work on MODE=reconnect | None |"])
    outcome = run(project)
    assert outcome.code == 0, outcome.stdout + outcome.stderr
    meta = results(project)["T-01"]
    assert meta["status"] == "completed" and meta["attempts"] == 1


def test_a_gemini_call_a_policy_denied_fails_the_task_as_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(
        tmp_path,
        monkeypatch,
        "gemini",
        ["| T-01 | Write a file MODE=policy | None |", "| T-02 | Use it MODE=ok | T-01 |",
         "| T-03 | Answer MODE=ok | None |"],
    )  # fmt: skip
    outcome = run(project)
    assert outcome.code == 1, outcome.stdout + outcome.stderr
    meta = results(project)
    assert meta["T-01"]["status"] == "failed" and meta["T-01"]["error_class"] == "denied"
    assert meta["T-01"]["reason"].startswith("1 tool call denied: write_file (out.txt) — ")
    assert meta["T-01"]["permission_denials"] == 1 and meta["T-01"]["attempts"] == 1
    assert meta["T-02"]["status"] == "skipped"
    assert meta["T-03"]["status"] == "completed"


def test_a_gemini_call_of_a_tool_it_was_not_given_fails_the_task_as_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Headless gemini has no write_file in its default mode: the call's result is an error
    ``tool_not_registered``, and the agent then says it wrote the file. A tool that ran and failed
    is no refusal."""
    project = _project(
        tmp_path,
        monkeypatch,
        "gemini",
        ["| T-01 | Write a file MODE=unregistered | None |", "| T-02 | Use it MODE=ok | T-01 |",
         "| T-03 | Read notes MODE=toolfailed | None |"],
    )  # fmt: skip
    outcome = run(project)
    assert outcome.code == 1, outcome.stdout + outcome.stderr
    meta = results(project)
    assert meta["T-01"]["status"] == "failed" and meta["T-01"]["error_class"] == "denied"
    assert meta["T-01"]["reason"].startswith("1 tool call denied: write_file (out.txt) — ")
    assert meta["T-01"]["permission_denials"] == 1 and meta["T-01"]["attempts"] == 1
    assert meta["T-02"]["status"] == "skipped"
    assert meta["T-03"]["status"] == "completed" and "permission_denials" not in meta["T-03"]


@pytest.mark.parametrize(
    ("backend", "tokens"),
    [
        # usage {input_tokens: 1200, cached_input_tokens: 200, output_tokens: 345}: the input holds the cached
        pytest.param("codex", {"input": 1000, "output": 345, "cache_read": 200}, id="codex"),
        # stats {input_tokens: 1000, output_tokens: 100, cached: 400, total_tokens: 1100}
        pytest.param("gemini", {"input": 600, "output": 100, "cache_read": 400}, id="gemini"),
    ],
)
def test_tokens_are_recorded_under_the_records_keys_and_counted_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, tokens: dict[str, int]
) -> None:
    """The record's keys are claude's (workflow.md), whatever the CLI called them, and what
    status and final_output.md add up is what the CLI said was spent: no token twice."""
    project = _project(tmp_path, monkeypatch, backend, ["| T-01 | Answer MODE=ok | None |"])
    outcome = run(project)
    assert outcome.code == 0, outcome.stdout + outcome.stderr
    assert results(project)["T-01"]["tokens"] == tokens
    spent = 1545 if backend == "codex" else 1100
    status = cli_in_process(project, "status", "--json")
    assert status.code == 0, status.stderr
    assert json.loads(status.stdout)["tasks"][0]["tokens"] == spent
    final = (project / ".orchestrator" / "final_output.md").read_text(encoding="utf-8")
    assert f"| Tokens | {spent:,} |" in final
