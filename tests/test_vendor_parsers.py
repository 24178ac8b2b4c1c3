"""What the real codex, opencode and claude CLIs printed (recorded against the fakes of
``tests/fake_openai.py`` and ``tests/fakeapi.py``) mapped to one result record: the refusals
codex shows only in its session file, opencode's events and errors, the cost a resumed claude
reports by version, and what the runner keeps of each attempt's spend."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from orchestrator import backends
from orchestrator.backends.base import AgentResult
from orchestrator.backends.classify import classify, reset_time
from orchestrator.backends.claude import cost_covers
from orchestrator.backends.codex import CodexObserver, interpret_codex
from orchestrator.backends.codex_rollout import read_rollout
from orchestrator.backends.opencode import OpencodeObserver, interpret_opencode
from orchestrator.backends.probe import Cli, untested, version_of
from orchestrator.executors.base import ProcessRun
from orchestrator.plan.config.settings import Settings
from orchestrator.run.books import SessionCosts
from orchestrator.vocabulary import ErrorClass

OK = ProcessRun(0, None, 1.0)
FAILED = ProcessRun(1, None, 1.0)
THREAD = "01a21476-eec9-7003-a6ba-213f050ddf09"


def _feed(observer: CodexObserver | OpencodeObserver, lines: list[str]) -> None:
    for line in lines:
        observer.feed(line.encode())


# --- codex: its session file ----------------------------------------------------------------------


def _call(call: str, command: str, escalated: bool = False) -> dict[str, object]:
    given: dict[str, object] = {"cmd": command}
    if escalated:
        given |= {"sandbox_permissions": "require_escalated", "justification": "I must write the file"}
    return {"type": "response_item", "payload": {"type": "function_call", "status": "completed",
            "name": "exec_command", "arguments": json.dumps(given), "call_id": call}}  # fmt: skip


def _output(call: str, text: str) -> dict[str, object]:
    return {"type": "response_item", "payload": {"type": "function_call_output", "call_id": call, "output": text}}


def _ran(call: str, status: str) -> dict[str, object]:
    return {"type": "event_msg", "payload": {"type": "item_completed", "thread_id": THREAD,
            "item": {"type": "CommandExecution", "id": call, "status": status, "exit_code": 1}}}  # fmt: skip


def _turn() -> dict[str, object]:
    return {"type": "event_msg", "payload": {"type": "task_started", "turn_id": "t"}}


def _tokens(given: int, taken: int) -> dict[str, object]:
    usage = {"input_tokens": given, "cached_input_tokens": 0, "output_tokens": taken, "total_tokens": given + taken}
    return {"type": "event_msg", "payload": {"type": "token_count", "info": {"total_token_usage": usage}}}


PATCH = "*** Begin Patch\n*** Add File: made.txt\n+hello\n*** End Patch\n"
REFUSED_TURN: list[dict[str, object]] = [
    _turn(),
    # a command that asked to leave the sandbox, answered by codex, no item: refused
    _call("c1", "touch made.txt", escalated=True),
    _output("c1", "approval policy is Never; reject command — you cannot ask for escalated permissions"),
    # a write the read-only sandbox stopped: an output like a command's, no item: refused
    _call("c2", "touch made.txt"),
    _output("c2", "Process exited with code 1\nOutput:\ntouch: cannot touch 'made.txt': Read-only file system\n"),
    # a patch the sandbox forbids
    {"type": "response_item", "payload": {"type": "custom_tool_call", "name": "apply_patch", "call_id": "c3",
                                          "input": PATCH}},
    {"type": "response_item", "payload": {"type": "custom_tool_call_output", "call_id": "c3",
                                          "output": "patch rejected: writing is blocked by read-only sandbox"}},
    # a command that ran and failed: its item says so, no refusal
    _call("c4", "false"),
    _ran("c4", "failed"),
    _output("c4", "Process exited with code 1\nOutput:\n"),
    _tokens(400, 80),
]  # fmt: skip


def _home(tmp_path: Path, records: list[dict[str, object]]) -> Path:
    home = tmp_path / "codex"
    day = home / "sessions" / "2026" / "11" / "25"
    day.mkdir(parents=True)
    lines = "".join(json.dumps(record) + "\n" for record in records)
    (day / f"rollout-2026-11-25T20-47-48-{THREAD}.jsonl").write_text(lines, encoding="utf-8")
    return home


def test_codex_refusals_its_json_leaves_out_are_read_from_its_session_file(tmp_path: Path) -> None:
    """codex 0.169.0 prints no item for a call it refused; its session file holds the call and its
    output and no ``item_completed``: each such command or patch was refused."""
    found = read_rollout(_home(tmp_path, REFUSED_TURN), THREAD)
    assert found is not None
    assert found.refused == [
        {"tool_name": "command", "tool_input": {"command": "touch made.txt"}},
        {"tool_name": "command", "tool_input": {"command": "touch made.txt"}},
        {"tool_name": "patch", "tool_input": {"path": "made.txt"}},
    ]
    assert found.usage == {"input_tokens": 400, "cached_input_tokens": 0, "output_tokens": 80}


def test_codex_refusals_of_a_turn_before_the_last_are_not_counted_again(tmp_path: Path) -> None:
    """A resumed thread's file holds the attempts before: only the last turn is this attempt's."""
    found = read_rollout(_home(tmp_path, [*REFUSED_TURN, _turn(), _call("c9", "ls"), _ran("c9", "completed"),
                                          _output("c9", "Process exited with code 0")]), THREAD)  # fmt: skip
    assert found is not None and found.refused == []


def test_codex_a_task_refused_in_its_session_file_is_denied_not_completed(tmp_path: Path) -> None:
    """The agent then said "I created the file. Done.", and the turn completed, exit 0."""
    home = _home(tmp_path, REFUSED_TURN)
    log = tmp_path / "agent-01.attempt-1.out"
    log.write_text(
        f'{{"type":"thread.started","thread_id":"{THREAD}"}}\n{{"type":"turn.started"}}\n'
        '{"type":"item.completed","item":{"id":"item_0","type":"agent_message","text":"I created the file. Done."}}\n'
        '{"type":"turn.completed","usage":{"input_tokens":400,"cached_input_tokens":0,"output_tokens":80}}\n',
        encoding="utf-8",
    )
    backend = backends.get("codex")
    assert backend.recover(Settings(env={"CODEX_HOME": str(home)}), log, tmp_path / "absent.err") is None
    elsewhere = backend.recover(Settings(env={"CODEX_HOME": str(tmp_path / "none")}), log, tmp_path / "absent.err")
    assert elsewhere is not None and elsewhere.completed  # no session file here to tell: as before


def test_codex_a_thread_it_did_not_continue_fails_the_attempt() -> None:
    """``codex exec resume <id>`` of a thread it no longer has starts a new one, exit 0: the new
    thread was told only to go on, so the attempt fails and the next starts afresh."""
    observer = CodexObserver(resumed="gone-thread")
    _feed(observer, ['{"type":"thread.started","thread_id":"new-thread"}', '{"type":"turn.completed","usage":{}}',
                     '{"type":"item.completed","item":{"type":"agent_message","text":"Going on."}}'])  # fmt: skip
    result = interpret_codex(OK, observer)
    assert not result.completed and result.error_class == ErrorClass.AGENT_ERROR and result.retryable
    assert result.message is not None and "gone-thread" in result.message


def test_codex_tokens_are_the_threads_running_total() -> None:
    observer = CodexObserver()
    _feed(observer, ['{"type":"thread.started","thread_id":"t"}',
                     '{"type":"item.completed","item":{"type":"agent_message","text":"Done."}}',
                     '{"type":"turn.completed","usage":{"input_tokens":2500,"cached_input_tokens":0,'
                     '"output_tokens":30}}'])  # fmt: skip
    result = interpret_codex(OK, observer)
    assert result.tokens == {"input": 2500, "output": 30, "cache_read": 0} and result.tokens_cover == "session"


def test_codex_usage_limit_says_when_to_try_again() -> None:
    said = (
        "You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit "
        "https://chatgpt.com/settings/usage to purchase more credits or try again at 9:57 PM."
    )
    now = datetime(2026, 11, 25, 20, 57, 30).timestamp()
    assert classify(said) == ErrorClass.USAGE_LIMIT
    assert reset_time(said, now) == datetime(2026, 11, 25, 21, 57).timestamp()
    # the minute just begun is now, not the same time tomorrow
    assert reset_time("try again at 8:57 PM.", now) == now
    assert reset_time("try again at 8:56 PM.", now) == datetime(2026, 11, 26, 20, 56).timestamp()
    assert reset_time("try again at Nov 26th, 2026 9:57 PM.", now) == datetime(2026, 11, 26, 21, 57).timestamp()
    assert classify("Quota exceeded. Check your plan and billing details.") == ErrorClass.USAGE_LIMIT
    assert classify("exceeded retry limit, last status: 429 Too Many Requests") == ErrorClass.RATE_LIMIT


# --- opencode -------------------------------------------------------------------------------------

SESSION = "ses_deb83a3f4ffepfRoU8IrnnlmTL"


def _event(kind: str, **part: object) -> str:
    return json.dumps({"type": kind, "timestamp": 1795640026547, "sessionID": SESSION, "part": part})


def _step(reason: str, given: int = 100, taken: int = 20, cost: float = 0.00036) -> str:
    tokens = {"total": given + taken, "input": given, "output": taken, "reasoning": 0, "cache": {"write": 0, "read": 0}}
    return _event("step_finish", reason=reason, messageID="m", type="step-finish", tokens=tokens, cost=cost)


def _tool(tool: str, status: str, given: dict[str, object], **state: object) -> str:
    return _event("tool_use", type="tool", tool=tool, callID="call_1", messageID="m1",
                  state={"status": status, "input": given, **state})  # fmt: skip


OPENCODE_SUCCESS = [
    _event("step_start", type="step-start", messageID="m1"),
    _tool("read", "completed", {"filePath": "/p/notes.txt"}, output="forty-two"),
    _step("tool-calls"),
    _event("step_start", type="step-start", messageID="m2"),
    _event("text", type="text", messageID="m2", text="The secret word is forty-two."),
    _step("stop"),
]


def _opencode(lines: list[str], run: ProcessRun = OK, stderr: str = "", resumed: str | None = None) -> AgentResult:
    observer = OpencodeObserver(resumed)
    _feed(observer, lines)
    return interpret_opencode(run, observer, stderr)


def test_opencode_success_adds_up_its_steps() -> None:
    result = _opencode(OPENCODE_SUCCESS)
    assert result.completed and result.text == "The secret word is forty-two." and result.session_id == SESSION
    assert result.tokens == {"input": 200, "output": 40, "cache_read": 0, "cache_creation": 0}
    assert result.cost_usd == pytest.approx(0.00072) and result.cost_covers == "attempt" and result.turns == 2


@pytest.mark.parametrize(
    ("refused", "named"),
    [
        # a call its permissions say to ask about: refused headless, and the run ends there
        pytest.param(_tool("bash", "error", {"command": "echo hi > made.txt", "description": "Make a file"},
                           error="The user rejected permission to use this specific tool call."), "bash",
                     id="asked"),
        # a tool denied outright is not offered: a call of it is a call of the invalid tool
        pytest.param(_tool("invalid", "completed", {"tool": "write", "error": "Model tried to call unavailable tool "
                           "'write'. Available tools: glob, grep, invalid, read."}), "write", id="not-offered"),
    ],
)  # fmt: skip
def test_opencode_a_refused_call_fails_the_task_as_denied(refused: str, named: str) -> None:
    lines = [OPENCODE_SUCCESS[0], refused, _step("tool-calls"), *OPENCODE_SUCCESS[3:]]
    result = _opencode(lines)
    assert not result.completed and result.error_class == ErrorClass.DENIED
    assert [d["tool_name"] for d in result.permission_denials] == [named]
    assert result.message is not None and result.message.startswith(f"1 tool call denied: {named}")
    failed = _tool("read", "error", {"filePath": "/p/missing.txt"}, error="File not found: /p/missing.txt")
    assert _opencode([OPENCODE_SUCCESS[0], failed, _step("tool-calls"), *OPENCODE_SUCCESS[3:]]).completed


def test_opencode_ending_on_a_tool_step_is_not_an_answer() -> None:
    result = _opencode(OPENCODE_SUCCESS[:3])
    assert not result.completed and result.error_class == ErrorClass.EXIT


def _error(status: int, message: str, body: dict[str, object], headers: dict[str, str] | None = None) -> str:
    data = {"message": message, "statusCode": status, "isRetryable": True, "responseHeaders": headers or {},
            "responseBody": json.dumps(body)}  # fmt: skip
    return json.dumps({"type": "error", "timestamp": 1, "sessionID": SESSION, "error": {"name": "APIError",
                       "data": data}})  # fmt: skip


def test_opencode_a_rate_limit_it_gave_up_on_names_the_wait() -> None:
    headers = {"retry-after": "1", "retry-after-ms": "1500"}
    line = _error(
        429, "Rate limit reached. Please try again in 1s.", {"error": {"code": "rate_limit_exceeded"}}, headers
    )
    result = _opencode([*OPENCODE_SUCCESS[:3], line], FAILED)
    assert result.error_class == ErrorClass.RATE_LIMIT and result.retry_after == 1.5
    assert result.tokens == {"input": 100, "output": 20, "cache_read": 0, "cache_creation": 0}  # the step it made


@pytest.mark.parametrize(
    ("body", "reset"),
    [
        ({"error": {"type": "usage_limit_reached", "resets_at": 1795644056, "plan_type": "plus"}}, 1795644056.0),
        ({"error": {"type": "insufficient_quota", "code": "insufficient_quota"}}, None),
    ],
)
def test_opencode_a_quota_is_a_usage_limit(body: dict[str, object], reset: float | None) -> None:
    result = _opencode([_error(429, "The usage limit has been reached", body)], FAILED)
    assert result.error_class == ErrorClass.USAGE_LIMIT and result.reset_at == reset


def test_opencode_a_session_it_no_longer_has_starts_afresh() -> None:
    result = _opencode([], FAILED, "\x1b[91m\x1b[1mError: \x1b[0mSession not found\n", resumed="ses_gone")
    assert result.error_class == ErrorClass.AGENT_ERROR and result.retryable
    assert result.message == "opencode could not continue session ses_gone: Error: Session not found"


def test_opencode_recovers_only_an_answer_from_a_log(tmp_path: Path) -> None:
    log = tmp_path / "agent-01.attempt-1.out"
    backend = backends.get("opencode")
    for lines, recovered in ((OPENCODE_SUCCESS, True), (OPENCODE_SUCCESS[:3], False), ([], False)):
        log.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        found = backend.recover(Settings(), log, tmp_path / "absent.err")
        assert (found is not None) == recovered
        assert found is None or (found.text == "The secret word is forty-two." and found.exit_code is None)


# --- claude: a resumed session's cost, by version ---------------------------------------------------


@pytest.mark.parametrize(
    ("version", "covers"),
    [("2.1.197", "attempt"), ("2.1.276", "attempt"), ("2.1.277", "session"), ("2.1.329", "session"), (None, "session")],
)
def test_claude_cost_of_a_resumed_session_by_version(version: str | None, covers: str) -> None:
    """Bisected over the releases against the fake: up to 2.1.276 a resumed invocation's
    ``total_cost_usd`` is its own; from 2.1.277 the whole session's."""
    assert cost_covers(version) == covers


def _spent(session: str, cost: float | None, tokens: dict[str, int] | None, **covers: str) -> AgentResult:
    return AgentResult(False, session_id=session, cost_usd=cost, tokens=tokens, **covers)  # type: ignore[arg-type]


def test_each_attempt_keeps_its_own_spend_however_the_cli_counts_it() -> None:
    """Two attempts of one session, the second resumed: a running total is made the attempt's
    own; a figure of the attempt alone is kept as it is."""
    books = SessionCosts()
    first, second = _spent("s", 1.0, None), _spent("s", 1.5, None)  # claude 2.1.329: the session's total
    books.own(None, first)
    books.own("s", second)
    assert (first.cost_usd, second.cost_usd) == (1.0, 0.5)
    books = SessionCosts()
    first, second = _spent("s", 1.0, None, cost_covers="attempt"), _spent("s", 1.0, None, cost_covers="attempt")
    books.own(None, first)
    books.own("s", second)  # claude 2.1.197: each its own
    assert (first.cost_usd, second.cost_usd) == (1.0, 1.0)
    books = SessionCosts()
    first = _spent("t", None, {"input": 100, "output": 20}, tokens_cover="session")
    second = _spent("t", None, {"input": 250, "output": 45}, tokens_cover="session")  # codex: the thread's
    books.own(None, first)
    books.own("t", second)
    assert second.tokens == {"input": 150, "output": 25}
    afresh = _spent("t", None, {"input": 90, "output": 9}, tokens_cover="session")
    books.own(None, afresh)  # not resumed: nothing of before in it
    assert afresh.tokens == {"input": 90, "output": 9}


# --- doctor: versions outside those tested ------------------------------------------------------------


def test_a_version_outside_those_tested_is_said() -> None:
    cli = Cli("codex", "", (), (), "", tested=("0.169.0", "0.169.0"))
    assert version_of("codex-cli 0.169.0") == (0, 169, 0) and untested(cli, "codex-cli 0.169.0") is None
    older, newer = untested(cli, "codex-cli 0.150.2"), untested(cli, "codex-cli 0.170.0")
    assert older is not None and older.startswith("older than") and "0.169.0" in older
    assert newer is not None and newer.startswith("newer than")
    assert untested(cli, None) is None and untested(Cli("x", "", (), (), ""), "1.0") is None
