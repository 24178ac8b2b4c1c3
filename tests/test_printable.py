"""What agents print cannot take over a terminal or a file: control characters a task wrote are
shown (``\\x1b``), never sent raw to a terminal nor written into a markdown file; ``logs/`` keeps
the raw bytes. Real runs of shell tasks that print an OSC title change, a clear-screen, a bell
and a NUL, and the bytes the real CLI prints and writes."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from runner_helpers import CLI, Spec, cli, cli_in_process, write_plan

from orchestrator.printable import visible

HOSTILE = r"printf 'title\033]0;pwned\007 clear\033[2J bell\007 nul\000 end\n'"
RAW = (b"\x1b", b"\x07", b"\x00")
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def test_control_characters_are_shown_on_terminals_and_in_files_and_kept_raw_in_logs(tmp_path: Path) -> None:
    script = f"{HOSTILE}\n{HOSTILE} >&2\nexit 1"
    write_plan(tmp_path, [Spec("T-01", HOSTILE), Spec("T-02", script)])
    ran = subprocess.run([*CLI, "run"], cwd=tmp_path, capture_output=True, timeout=60)
    assert ran.returncode == 1
    shown = rb"title\x1b]0;pwned\x07 clear\x1b[2J bell\x07 nul\x00 end"
    assert shown in ran.stdout  # the failure's stderr tail, under its line
    assert not any(raw in ran.stdout + ran.stderr for raw in RAW)
    for args in (("logs", "T-02"), ("logs", "T-01"), ("status",), ("history",), ("watch",)):
        out = subprocess.run([*CLI, *args], cwd=tmp_path, capture_output=True, timeout=60)
        assert not any(raw in out.stdout + out.stderr for raw in RAW), (args, out.stdout)
        if args[0] == "logs":
            assert shown in out.stdout, out.stdout
    workspace = tmp_path / ".orchestrator"
    for written in (workspace / "results" / "agent-01-result.md", workspace / "results" / "agent-02-result.md",
                    workspace / "final_output.md", workspace / "master_plan.md"):  # fmt: skip
        data = written.read_bytes()
        assert not any(raw in data for raw in RAW), written
    assert shown in (workspace / "results" / "agent-02-result.md").read_bytes()
    assert shown in (workspace / "final_output.md").read_bytes()
    raw = b"title\x1b]0;pwned\x07 clear\x1b[2J bell\x07 nul\x00 end\n"
    assert (workspace / "logs" / "agent-02.attempt-1.out").read_bytes() == raw  # the log: exactly as printed
    assert (workspace / "logs" / "agent-02.attempt-1.err").read_bytes() == raw
    as_json = cli_in_process(tmp_path, "logs", "T-02", "--json").stdout  # JSON escapes: the exact text, no raw byte
    assert "\\u001b]0;pwned\\u0007" in as_json and "\x1b" not in as_json


def test_a_shared_note_with_control_characters_is_kept_visible(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "true")])
    assert cli(tmp_path, "share", "T-01", "done \x1b[2J now").code == 0
    shared = (tmp_path / ".orchestrator" / "context" / "shared.md").read_text(encoding="utf-8")
    assert "done \\x1b[2J now" in shared and "\x1b" not in shared


@given(st.text())
def test_visible_leaves_no_control_character_but_newline_and_tab(text: str) -> None:
    shown = visible(text)
    assert not CONTROL.search(shown)
    assert visible(shown) == shown  # once is enough
    if not CONTROL.search(text):
        assert shown == text  # plain text, and every other character, is left as it is
    assert shown.count("\n") >= text.count("\n") - text.count("\r\n")


def test_an_error_message_holding_what_was_typed_or_printed_is_shown_not_acted_on(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "true")])
    refused = subprocess.run([*CLI, "logs", "T-\x1b]0;pwned\x07"], cwd=tmp_path, capture_output=True, timeout=60)
    assert refused.returncode == 2 and b"T-\\x1b]0;pwned\\x07" in refused.stderr
    assert not any(raw in refused.stderr + refused.stdout for raw in RAW)


def _controls(value: Any, where: str = "") -> list[str]:
    """Where in a JSON answer a string (or a key) holds a control character but newline and tab."""
    if isinstance(value, str):
        return [where] if CONTROL.search(value) else []
    if isinstance(value, dict):
        found = [f"{where}/{key!r}" for key in value if CONTROL.search(key)]
        return found + [spot for key, item in value.items() for spot in _controls(item, f"{where}/{key}")]
    if isinstance(value, list):
        return [spot for index, item in enumerate(value) for spot in _controls(item, f"{where}[{index}]")]
    return []


def test_the_dashboard_sends_no_control_character_an_agent_printed(tmp_path: Path) -> None:
    """/api/state carried a failed task's ``stderr_tail`` (and its reason) with the raw ESC, BEL
    and NUL: every answer of the dashboard (the state, the events as they come, a task's files, a
    context file) now shows them as ``\\x1b``..., once (the page sets text, never markup)."""
    from dashboard_helpers import Stream, http_get, served

    script = f"{HOSTILE}\n{HOSTILE} >&2\nexit 1"
    write_plan(tmp_path, [Spec("T-01", HOSTILE), Spec("T-02", script)])
    assert subprocess.run([*CLI, "run"], cwd=tmp_path, capture_output=True, timeout=60).returncode == 1
    notes = tmp_path / ".orchestrator" / "context" / "notes.md"  # an agent's own file, written raw
    notes.parent.mkdir(exist_ok=True)
    notes.write_bytes(b"seen \x1b]0;pwned\x07 \x1b[2J\x00\n")
    shown = "title\\x1b]0;pwned\\x07 clear\\x1b[2J bell\\x07 nul\\x00 end"
    with served(tmp_path) as server:
        state = http_get(server.port, "/api/state").json()
        failed = [e for e in state["feed"] if e["event"] == "task_failed"]
        assert failed and shown in failed[0]["stderr_tail"][0], failed  # shown once: never \\x1b twice
        answers = {"/api/state": state}
        for path in ("/api/task/T-01", "/api/task/T-02", "/api/context/notes.md"):
            answers[path] = http_get(server.port, path).json()
        assert shown in answers["/api/task/T-02"]["stderr"]["text"]
        assert answers["/api/context/notes.md"]["text"] == "seen \\x1b]0;pwned\\x07 \\x1b[2J\\x00\n"
        stream = Stream.open(server.port)
        try:
            answers["stream state"] = stream.until(lambda kind, _: kind == "state")[1]
            again = subprocess.run([*CLI, "run"], cwd=tmp_path, capture_output=True, timeout=60)  # T-02 fails again
            assert again.returncode == 1
            _, events = stream.until(
                lambda kind, data: kind == "events" and any(e["event"] == "task_failed" for e in data)
            )
            answers["stream events"] = events
        finally:
            stream.close()
    assert shown in next(e for e in events if e["event"] == "task_failed")["stderr_tail"][0]
    for path, answer in answers.items():
        assert not _controls(answer), (path, _controls(answer))
