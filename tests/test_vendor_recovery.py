"""A codex or gemini task whose agent had finished when its runner died is kept from its log.

The agent CLIs are stand-ins here (the real ones run against fakes of their APIs in
``tests/test_agents_*.py``): small programs on ``ORCHESTRATOR_CODEX_BIN`` /
``ORCHESTRATOR_GEMINI_BIN`` that print what the real CLI prints (the formats
``tests/test_backend_parsers.py`` holds, recorded from the pinned versions), and write down each
call and the prompt it was given. The runs are real: ``orchestrator run`` starts them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from runner_helpers import as_if_the_runner_died_before_recording, run, workspace

from orchestrator import documents

_CODEX = """\
import json, os, sys
prompt = sys.stdin.read()
task = os.environ["ORCHESTRATOR_TASK_ID"]
with open(os.path.join(os.environ["CALLS_DIR"], task + ".prompt"), "a") as f:
    f.write(prompt + "\\n=== end of prompt ===\\n")
events = [
    {"type": "thread.started", "thread_id": "thread-" + task},
    {"type": "turn.started"},
    {"type": "item.completed", "item": {"id": "item_0", "type": "agent_message", "text": "Done by codex for " + task}},
    {"type": "turn.completed", "usage": {"input_tokens": 100, "cached_input_tokens": 0, "output_tokens": 7}},
]
for event in events:
    print(json.dumps(event), flush=True)
"""

_GEMINI = """\
import json, os, sys
prompt = sys.stdin.read()
task = os.environ["ORCHESTRATOR_TASK_ID"]
with open(os.path.join(os.environ["CALLS_DIR"], task + ".prompt"), "a") as f:
    f.write(prompt + "\\n=== end of prompt ===\\n")
events = [
    {"type": "init", "session_id": "session-" + task, "model": "auto"},
    {"type": "message", "role": "user", "content": prompt},
    {"type": "message", "role": "assistant", "content": "Done by gemini for " + task, "delta": True},
    {"type": "result", "status": "success",
     "stats": {"total_tokens": 107, "input_tokens": 100, "output_tokens": 7, "cached": 0, "input": 100}},
]
for event in events:
    print(json.dumps(event), flush=True)
"""


def _stand_in(tmp_path: Path, name: str, source: str) -> Path:
    program = tmp_path / "bin" / name
    program.parent.mkdir(exist_ok=True)
    program.write_text(f"#!{sys.executable}\n{source}", encoding="utf-8")
    program.chmod(0o755)
    return program


def _plan(project: Path, backend: str) -> None:
    ws = project / ".orchestrator"
    ws.mkdir(parents=True)
    (ws / "master_plan.md").write_text(
        f"---\nbackend: {backend}\nmax_parallel: 1\nretries: 0\ntimeout: 60\n---\n# Plan\n\n"
        "## Task Decomposition\n| Task ID | Description | Dependencies |\n|---|---|---|\n"
        "| T-01 | Find the endpoints | None |\n| T-02 | Write them up | T-01 |\n",
        encoding="utf-8",
    )


def _project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str) -> tuple[Path, Path]:
    """A two-task plan on ``backend``, its stand-in CLI on the backend's variable; the project,
    and the directory where the stand-in writes each prompt it was given."""
    project = tmp_path / "project"
    _plan(project, backend)
    calls = tmp_path / "calls"
    calls.mkdir()
    program = _stand_in(tmp_path, backend, _CODEX if backend == "codex" else _GEMINI)
    monkeypatch.setenv(f"ORCHESTRATOR_{backend.upper()}_BIN", str(program))
    monkeypatch.setenv("CALLS_DIR", str(calls))
    return project, calls


@pytest.mark.parametrize("backend", ["codex", "gemini"])
def test_a_finished_attempt_of_a_dead_runner_is_kept_from_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """The agent had printed its finished answer when the runner died, before the result was
    written: the next run records it from the log (its own words, not a run of it again), and the
    task downstream is given it."""
    project, calls = _project(tmp_path, monkeypatch, backend)
    ws = workspace(project)

    first = run(project, "--only", "T-01")
    assert first.code == 0, first.stdout + first.stderr
    recorded = documents.read_document(ws / "results" / "agent-01-result.md")
    assert recorded is not None
    as_if_the_runner_died_before_recording(ws, "agent-01")

    second = run(project)
    assert second.code == 0, second.stdout + second.stderr
    assert second.tasks("task_started") == ["T-02"]  # T-01 did not run again
    assert any(e["event"] == "notice" and "T-01 had finished" in e["message"] for e in second.events)
    meta_and_body = documents.read_document(ws / "results" / "agent-01-result.md")
    assert meta_and_body is not None
    meta, body = meta_and_body
    assert body.strip() == f"Done by {backend} for T-01" and meta["status"] == "completed"
    assert "recovered from the log of attempt 1" in meta["reason"]
    assert meta["session_id"] == recorded[0]["session_id"] and meta["tokens"] == recorded[0]["tokens"]
    assert meta["attempts"] == 1 and not (ws / "logs" / "agent-01.attempt-2.out").exists()
    assert (calls / "T-01.prompt").read_text(encoding="utf-8").count("=== end of prompt ===") == 1
    assert f"Done by {backend} for T-01" in (calls / "T-02.prompt").read_text(encoding="utf-8")


@pytest.mark.parametrize("backend", ["codex", "gemini"])
def test_an_attempt_cut_short_by_its_runner_dying_runs_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """A log that stops before the agent's last word proves nothing: the task runs again."""
    project, calls = _project(tmp_path, monkeypatch, backend)
    ws = workspace(project)
    assert run(project, "--only", "T-01").code == 0
    as_if_the_runner_died_before_recording(ws, "agent-01")
    log = ws / "logs" / "agent-01.attempt-1.out"
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    log.write_text("".join(lines[:-1]), encoding="utf-8")  # its last line never reached the log

    second = run(project)
    assert second.code == 0, second.stdout + second.stderr
    assert second.tasks("task_started") == ["T-01", "T-02"]
    assert (calls / "T-01.prompt").read_text(encoding="utf-8").count("=== end of prompt ===") == 2
    started = [json.loads(line) for line in (ws / "state" / "attempts.jsonl").read_text().splitlines()]
    assert any(e.get("task") == "T-01" and e.get("attempt") == 2 for e in started)
