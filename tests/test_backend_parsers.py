"""codex, gemini and claude output mapped to one result record, from recorded output lines."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from orchestrator import backends
from orchestrator.backends.classify import classify, reset_time
from orchestrator.backends.claude import ClaudeBackend, ClaudeObserver, interpret_claude
from orchestrator.backends.codex import CodexObserver, interpret_codex
from orchestrator.backends.gemini import interpret_gemini
from orchestrator.executors.base import ProcessRun
from orchestrator.plan.config.settings import Settings
from orchestrator.vocabulary import ErrorClass

FIXTURES = Path(__file__).parent / "fixtures"
OK = ProcessRun(0, None, 1.0)
FAILED = ProcessRun(1, None, 1.0)


def _feed(observer: ClaudeObserver | CodexObserver, lines: list[str]) -> None:
    for line in lines:
        observer.feed(line.encode())


# --- codex ---------------------------------------------------------------------------------------

CODEX_SUCCESS = [
    '{"type":"thread.started","thread_id":"0199a213-81c0-7800-8aa1-bbab2a035a53"}',
    '{"type":"turn.started"}',
    '{"type":"item.completed","item":{"id":"item_0","type":"reasoning","text":"**Scanning**"}}',
    '{"type":"item.started","item":{"id":"item_1","type":"command_execution","command":"bash -lc ls",'
    '"aggregated_output":"","status":"in_progress"}}',
    '{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"bash -lc ls",'
    '"aggregated_output":"README.md\\n","exit_code":0,"status":"completed"}}',
    '{"type":"item.completed","item":{"id":"item_2","type":"agent_message","text":"The repo has a README."}}',
    '{"type":"turn.completed","usage":{"input_tokens":24763,"cached_input_tokens":24448,"output_tokens":122}}',
]


def test_codex_success_maps_text_session_and_tokens() -> None:
    observer = CodexObserver()
    _feed(observer, [*CODEX_SUCCESS, "not json at all", '{"type":"something.new"}'])
    result = interpret_codex(OK, observer)
    assert result.completed
    assert result.text == "The repo has a README."
    assert result.session_id == "0199a213-81c0-7800-8aa1-bbab2a035a53"
    # input_tokens hold the cached ones: recorded apart, so that the sum is what was spent
    assert result.tokens == {"input": 315, "output": 122, "cache_read": 24448}
    assert result.cost_usd is None  # codex reports no cost


@pytest.mark.parametrize(
    ("line", "error_class"),
    [
        pytest.param('{"type":"turn.failed","error":{"message":"stream disconnected before completion"}}',
                     ErrorClass.TRANSIENT, id="network"),
        pytest.param('{"type":"error","message":"exceeded retry limit, last status: 429 Too Many Requests"}',
                     ErrorClass.RATE_LIMIT, id="rate-limit"),
        pytest.param('{"type":"error","message":"unexpected status 401 Unauthorized: Missing bearer"}',
                     ErrorClass.AUTH, id="auth"),
        pytest.param('{"type":"error","message":"You\'ve hit your usage limit. Try again in 3 hours 20 min."}',
                     ErrorClass.USAGE_LIMIT, id="usage-limit"),
    ],
)  # fmt: skip
def test_codex_failures_are_classified(line: str, error_class: str) -> None:
    observer = CodexObserver()
    _feed(observer, [CODEX_SUCCESS[0], '{"type":"turn.started"}', line])
    result = interpret_codex(FAILED, observer)
    assert not result.completed
    assert result.error_class == error_class
    assert result.message and result.message.startswith("codex: ")


_RECONNECTING = (
    '{"type":"error","message":"Reconnecting... 1/5 (stream disconnected before completion: error sending request)"}'
)


def test_codex_stream_errors_a_completed_turn_follows_were_retries() -> None:
    """codex prints an ``error`` for each retry of a dropped stream (its StreamError), then may
    complete the turn: the task is done, not failed and redone."""
    observer = CodexObserver()
    _feed(observer, [*CODEX_SUCCESS[:2], _RECONNECTING, _RECONNECTING.replace("1/5", "2/5"), *CODEX_SUCCESS[2:]])
    result = interpret_codex(OK, observer)
    assert result.completed, result.message
    assert result.text == "The repo has a README." and result.error_class is None


@pytest.mark.parametrize(
    "ending",
    [
        pytest.param([_RECONNECTING], id="error-after-the-completed-turn"),
        pytest.param(['{"type":"turn.started"}', _RECONNECTING,
                      '{"type":"turn.failed","error":{"message":"stream disconnected before completion"}}'],
                     id="a-later-turn-failed"),
    ],
)  # fmt: skip
def test_codex_an_error_after_the_last_completed_turn_fails(ending: list[str]) -> None:
    observer = CodexObserver()
    _feed(observer, [*CODEX_SUCCESS, *ending])
    result = interpret_codex(FAILED, observer)
    assert not result.completed
    assert result.error_class == ErrorClass.TRANSIENT
    assert result.message is not None and result.message.startswith("codex: ")


def test_codex_retries_without_a_completed_turn_fail() -> None:
    observer = CodexObserver()
    _feed(observer, [*CODEX_SUCCESS[:2], _RECONNECTING])
    result = interpret_codex(OK, observer)
    assert not result.completed and result.error_class == ErrorClass.TRANSIENT


def test_codex_exit_zero_without_a_completed_turn_is_not_success() -> None:
    observer = CodexObserver()
    _feed(observer, CODEX_SUCCESS[:2])
    result = interpret_codex(OK, observer)
    assert not result.completed
    assert result.error_class == ErrorClass.EXIT


def test_codex_tokens_are_the_last_turns_running_total() -> None:
    """codex's ``usage`` is the thread's total so far (from its running token count): a second
    completed turn's replaces the first's, it does not add to it."""
    observer = CodexObserver()
    second = '{"type":"turn.completed","usage":{"input_tokens":30000,"cached_input_tokens":25000,"output_tokens":200}}'
    _feed(observer, [*CODEX_SUCCESS, '{"type":"turn.started"}', second])
    result = interpret_codex(OK, observer)
    assert result.tokens == {"input": 5000, "output": 200, "cache_read": 25000}


def _codex_item(kind: str, status: str, **fields: object) -> str:
    return json.dumps({"type": "item.completed", "item": {"id": "item_5", "type": kind, "status": status, **fields}})


def test_codex_a_declined_command_or_patch_fails_the_task_as_denied() -> None:
    """Whatever the agent then says it did, what codex declined to run was not done."""
    observer = CodexObserver()
    declined = [
        _codex_item("command_execution", "declined", command="bash -lc 'touch out.txt'", exit_code=None),
        _codex_item("file_change", "declined", changes=[{"path": "a.md", "kind": "add"}, {"path": "b.md"}]),
    ]
    _feed(observer, [*CODEX_SUCCESS[:2], *declined, *CODEX_SUCCESS[2:]])
    result = interpret_codex(OK, observer)
    assert not result.completed and not result.retryable
    assert result.error_class == ErrorClass.DENIED
    assert result.message is not None
    assert result.message.startswith("2 tool calls denied: command (bash -lc 'touch out.txt'), patch (a.md, b.md) — ")
    assert "permission_mode" in result.message and "allowed_tools" not in result.message
    assert len(result.permission_denials) == 2
    assert result.text == "The repo has a README."  # kept for a person to read, not passed on as done


def test_codex_a_failed_command_is_no_refusal() -> None:
    """A ``failed`` command ran and exited non-zero: the agent saw that, and may well have meant it."""
    observer = CodexObserver()
    failed = _codex_item("command_execution", "failed", command="bash -lc 'exit 3'", exit_code=3)
    _feed(observer, [*CODEX_SUCCESS[:2], failed, *CODEX_SUCCESS[2:]])
    result = interpret_codex(OK, observer)
    assert result.completed and result.permission_denials == []


@pytest.mark.parametrize(
    ("sandbox", "output", "code", "refused"),
    [
        pytest.param("read-only", "touch: cannot touch 'x': Read-only file system\n", 1, True, id="read-only-write"),
        pytest.param(
            "workspace-write", "mkdir: cannot create directory '/x': Permission denied\n", 1, True, id="outside"
        ),
        pytest.param("read-only", "", 128 + 31, True, id="seccomp-sigsys"),
        pytest.param("read-only", "", 1, False, id="grep-found-nothing"),
        pytest.param("read-only", "bash: nope: command not found\n", 127, False, id="not-found"),
        pytest.param("danger-full-access", "touch: cannot touch '/x': Permission denied\n", 1, False, id="no-sandbox"),
        pytest.param(  # (with no sandbox of codex's, the walls stand: backends/guard)
            "danger-full-access", "touch: cannot touch 'x': Read-only file system\n", 1, True, id="the-walls"
        ),
        pytest.param(  # (a command that went on after it exits 0)
            "workspace-write", "bash: .orchestrator/master_plan.md: Read-only file system\n", 0, True, id="then-on"
        ),
    ],
)
def test_codex_a_command_its_sandbox_stopped_after_it_began_is_refused(
    sandbox: str, output: str, code: int, refused: bool
) -> None:
    """A command codex's sandbox stopped more than 150 ms after it started ran ``failed``; codex
    judges it stopped by what it printed, as it does the faster one it refuses unseen."""
    observer = CodexObserver(sandbox=sandbox)
    failed = _codex_item(
        "command_execution", "failed", command="bash -lc 'touch x'", aggregated_output=output, exit_code=code
    )
    _feed(observer, [*CODEX_SUCCESS[:2], failed, *CODEX_SUCCESS[2:]])
    result = interpret_codex(OK, observer)
    assert result.completed is not refused, result
    assert len(result.permission_denials) == int(refused)


# --- gemini --------------------------------------------------------------------------------------
# gemini 0.61.0 -o stream-json, as it printed against tests/fake_gemini.py (ids shortened).

GEMINI_INIT = '{"type":"init","timestamp":"2026-11-25T20:57:49.547Z","session_id":"fb7bc446-7dbf-41df","model":"auto"}'
GEMINI_SUCCESS = [
    GEMINI_INIT,
    '{"type":"message","timestamp":"2026-11-25T20:57:49.548Z","role":"user","content":"Count the endpoints."}',
    '{"type":"tool_use","timestamp":"2026-11-25T20:57:49.762Z","tool_name":"read_file","tool_id":"read_file__1_0",'
    '"parameters":{"file_path":"api.md"}}',
    '{"type":"tool_result","timestamp":"2026-11-25T20:57:49.864Z","tool_id":"read_file__1_0","status":"success",'
    '"output":"3 endpoints"}',
    '{"type":"message","timestamp":"2026-11-25T20:57:49.888Z","role":"assistant","content":"Three endpoints ",'
    '"delta":true}',
    '{"type":"message","timestamp":"2026-11-25T20:57:49.895Z","role":"assistant","content":"respond.","delta":true}',
    '{"type":"result","timestamp":"2026-11-25T20:57:49.896Z","status":"success","stats":{"total_tokens":5300,'
    '"input_tokens":5120,"output_tokens":180,"cached":4096,"input":1024,"duration_ms":349,"tool_calls":1,'
    '"models":{"gemini-3.5-flash-lite":{"total_tokens":42,"input_tokens":30,"output_tokens":12,"cached":0,'
    '"input":30},"gemini-3.8-flash":{"total_tokens":5258,"input_tokens":5090,"output_tokens":168,"cached":4096,'
    '"input":994}}}}',
]
GEMINI_UNREGISTERED = [
    '{"type":"tool_use","timestamp":"2026-11-25T20:58:16.435Z","tool_name":"write_file","tool_id":"write_file__2_0",'
    '"parameters":{"file_path":"made.txt","content":"x"}}',
    '{"type":"tool_result","timestamp":"2026-11-25T20:58:16.467Z","tool_id":"write_file__2_0","status":"error",'
    '"output":"Tool \\"write_file\\" not found. Did you mean one of: \\"read_file\\"?","error":{"type":'
    '"tool_not_registered","message":"Tool \\"write_file\\" not found. Did you mean one of: \\"read_file\\"?"}}',
]
GEMINI_NOT_FOUND = [
    '{"type":"tool_use","timestamp":"2026-11-25T20:57:49.762Z","tool_name":"read_file","tool_id":"read_file__3_0",'
    '"parameters":{"file_path":"notes.txt"}}',
    '{"type":"tool_result","timestamp":"2026-11-25T20:57:49.864Z","tool_id":"read_file__3_0","status":"error",'
    '"output":"File not found.","error":{"type":"file_not_found","message":"File not found: /p/notes.txt"}}',
]


def _gemini(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def _gemini_failed(message: str) -> str:
    stats = {"total_tokens": 42, "input_tokens": 30, "output_tokens": 12, "cached": 0}
    error = json.dumps(
        {"type": "result", "status": "error", "error": {"type": "unknown", "message": message}, "stats": stats}
    )
    return _gemini(GEMINI_INIT, error)


def test_gemini_success() -> None:
    result = interpret_gemini(OK, _gemini(*GEMINI_SUCCESS), "")
    assert result.completed
    assert result.text == "Three endpoints respond."  # the answer after the last tool call, its pieces joined
    assert result.session_id == "fb7bc446-7dbf-41df"
    # input_tokens hold the cached ones, the router model's included: each counted once
    assert result.tokens == {"input": 1024, "output": 180, "cache_read": 4096}
    assert sum(result.tokens.values()) == 5300 and result.cost_usd is None


def test_gemini_the_thinking_is_output() -> None:
    """The stats' ``output_tokens`` leave out the thinking their ``total_tokens`` hold."""
    stats = {"total_tokens": 330, "input_tokens": 200, "output_tokens": 40, "cached": 50}
    done = json.dumps({"type": "result", "status": "success", "stats": stats})
    result = interpret_gemini(OK, _gemini(*GEMINI_SUCCESS[:-1], done), "")
    assert result.tokens == {"input": 150, "output": 130, "cache_read": 50}


def test_gemini_a_call_of_a_tool_it_was_not_given_fails_the_task_as_denied() -> None:
    """Headless, gemini leaves out the tools its approval mode would have to ask for: a call of
    one is a ``tool_result`` error ``tool_not_registered`` (0.61.0 says "not found", no longer "not
    found in registry"), and the agent then says it wrote the file. A tool that ran and failed is
    no refusal."""
    lines = [*GEMINI_SUCCESS[:2], *GEMINI_UNREGISTERED, *GEMINI_SUCCESS[2:]]
    result = interpret_gemini(OK, _gemini(*lines), 'Error executing tool write_file: Tool "write_file" not found.')
    assert not result.completed and not result.retryable and result.error_class == ErrorClass.DENIED
    assert result.permission_denials == [
        {"tool_name": "write_file", "tool_input": {"file_path": "made.txt", "content": "x"}}
    ]
    assert result.message is not None and result.message.startswith("1 tool call denied: write_file (made.txt) — ")
    assert "permission_mode" in result.message and result.text == "Three endpoints respond."
    ordinary = interpret_gemini(OK, _gemini(*GEMINI_SUCCESS[:2], *GEMINI_NOT_FOUND, *GEMINI_SUCCESS[2:]), "")
    assert ordinary.completed and ordinary.permission_denials == []


def test_gemini_a_call_a_policy_denied_fails_the_task_as_denied() -> None:
    denied = GEMINI_UNREGISTERED[1].replace("tool_not_registered", "policy_violation")
    result = interpret_gemini(OK, _gemini(*GEMINI_SUCCESS[:2], GEMINI_UNREGISTERED[0], denied, *GEMINI_SUCCESS[2:]), "")
    assert result.error_class == ErrorClass.DENIED and len(result.permission_denials) == 1


@pytest.mark.parametrize(
    ("code", "error_class", "words"),
    [
        pytest.param(41, ErrorClass.AUTH, "not authenticated", id="41-auth"),
        pytest.param(42, ErrorClass.START, "invalid input", id="42-input"),
        pytest.param(52, ErrorClass.START, "configuration error", id="52-config"),
        pytest.param(53, ErrorClass.MAX_TURNS, "turn limit", id="53-turns"),
        pytest.param(55, ErrorClass.START, "untrusted workspace", id="55-untrusted"),
    ],
)
def test_gemini_exit_codes(code: int, error_class: str, words: str) -> None:
    result = interpret_gemini(ProcessRun(code, None, 1.0), _gemini_failed("details here"), "")
    assert not result.completed
    assert result.error_class == error_class
    assert result.message is not None and words in result.message and "details here" in result.message
    assert result.error_class is not None and not result.error_class.retryable


def test_gemini_a_rate_limit_it_gave_up_on_names_the_wait() -> None:
    """A 429 gemini retried ``general.maxAttempts`` times: the RetryInfo's wait is in its words."""
    said = ("[API Error: You exceeded your current quota, please check your plan and billing details. Please retry "
            "in 1s.\nSuggested retry after 1s.]\nPlease wait and try again later. To increase your limits, request a "
            "quota increase through AI Studio, or switch to another /auth method")  # fmt: skip
    result = interpret_gemini(ProcessRun(173, None, 1.0), _gemini_failed(said), "")
    assert result.error_class == ErrorClass.RATE_LIMIT and result.retry_after == 1.0 and result.retryable
    assert result.tokens == {"input": 30, "output": 12, "cache_read": 0}  # the router's answer was spent


def test_gemini_a_daily_quota_is_a_usage_limit() -> None:
    said = (
        "[API Error: You have exhausted your daily quota on this model.]\nPlease wait and try again later. To "
        "increase your limits, request a quota increase through AI Studio, or switch to another /auth method"
    )
    result = interpret_gemini(ProcessRun(173, None, 1.0), _gemini_failed(said), "")
    assert result.error_class == ErrorClass.USAGE_LIMIT and result.retry_after is None


def test_gemini_a_session_it_no_longer_has_starts_afresh() -> None:
    """``--resume`` of a session gemini does not have: exit 42, which would fail the task as bad
    input; it is a retry with a new session."""
    stderr = ('Error resuming session: Invalid session identifier "f3e0613d".\n  Searched for sessions in '
              "/h/.gemini/tmp/p/chats.\n")  # fmt: skip
    result = interpret_gemini(ProcessRun(42, None, 1.0), "", stderr, resumed="f3e0613d")
    assert result.error_class == ErrorClass.AGENT_ERROR and result.retryable
    assert result.message is not None and "f3e0613d" in result.message


def test_gemini_crash_without_json() -> None:
    result = interpret_gemini(FAILED, "", "Error: connect ECONNREFUSED 127.0.0.1:443\n")
    assert not result.completed
    assert result.error_class == ErrorClass.TRANSIENT


# --- claude (recorded from the real CLI against the fake API) --------------------------------------


def _claude(name: str) -> ClaudeObserver:
    observer = ClaudeObserver()
    _feed(observer, (FIXTURES / "claude" / f"{name}.jsonl").read_text().splitlines())
    return observer


def _fixture(name: str) -> None:
    if not (FIXTURES / "claude" / f"{name}.jsonl").exists():
        pytest.skip(f"no recorded claude output {name}.jsonl")


def test_claude_success_from_recording() -> None:
    _fixture("success")
    observer = _claude("success")
    result = interpret_claude(OK, observer, "")
    assert result.completed and result.text
    assert result.session_id and result.cost_usd and result.cost_usd > 0
    assert result.tokens and result.tokens["input"] > 0 and result.turns == 1


@pytest.mark.parametrize(
    ("name", "error_class"),
    [
        pytest.param("auth_401", ErrorClass.AUTH, id="401"),
        pytest.param("rate_limit_429", ErrorClass.RATE_LIMIT, id="429"),
        pytest.param("overloaded_529", ErrorClass.RATE_LIMIT, id="529"),
        pytest.param("max_turns", ErrorClass.MAX_TURNS, id="max-turns"),
        pytest.param("usage_limit", ErrorClass.USAGE_LIMIT, id="usage-limit"),
    ],
)
def test_claude_errors_from_recordings(name: str, error_class: str) -> None:
    _fixture(name)
    result = interpret_claude(FAILED, _claude(name), "")
    assert not result.completed
    assert result.error_class == error_class
    if error_class == ErrorClass.USAGE_LIMIT:
        assert result.reset_at is not None
    if error_class == ErrorClass.AUTH:
        assert result.message is not None and "log in" in result.message


def test_claude_is_error_wins_over_success_subtype() -> None:
    observer = ClaudeObserver()
    _feed(
        observer,
        [
            '{"type":"system","subtype":"init","session_id":"s-1"}',
            '{"type":"result","subtype":"success","is_error":true,"api_error_status":500,'
            '"result":"API Error: 500 Internal server error","session_id":"s-1","total_cost_usd":0}',
        ],
    )
    result = interpret_claude(FAILED, observer, "")
    assert not result.completed
    assert result.error_class == ErrorClass.TRANSIENT
    assert result.session_id == "s-1"


def test_claude_success_with_denied_tools_is_not_completed() -> None:
    observer = ClaudeObserver()
    _feed(
        observer,
        [
            '{"type":"result","subtype":"success","is_error":false,"result":"I wrote the file.",'
            '"permission_denials":[{"tool_name":"Write","tool_use_id":"t1","tool_input":{"file_path":"/p/notes.md"}},'
            '{"tool_name":"Bash","tool_use_id":"t2","tool_input":{"command":"touch  made.txt"}}],"num_turns":2}',
        ],
    )
    result = interpret_claude(OK, observer, "")
    assert not result.completed and not result.retryable
    assert result.error_class == ErrorClass.DENIED
    assert result.message is not None
    assert result.message.startswith("2 tool calls denied: Write (/p/notes.md), Bash (touch made.txt) — ")
    assert result.text == "I wrote the file."  # kept for a person to read, not passed on as done


def test_claude_a_call_of_a_tool_it_was_not_given_is_refused_from_recording() -> None:
    """claude answers a call of a tool outside ``--tools`` with "No such tool available" and leaves
    it out of ``permission_denials``; the agent then claims the work done. It is a refusal all
    the same: the tool and its input are recorded, and the attempt fails as denied."""
    _fixture("unavailable_tool")
    observer = _claude("unavailable_tool")
    assert observer.result is not None and observer.result["permission_denials"] == []
    result = interpret_claude(OK, observer, "")
    assert not result.completed and not result.retryable
    assert result.error_class == ErrorClass.DENIED
    (refused,) = result.permission_denials
    assert refused["tool_name"] == "Write"
    assert refused["tool_input"] == {"file_path": "/nowhere/notes.md", "content": "x"}
    assert result.message is not None and result.message.startswith("1 tool call denied: Write (/nowhere/notes.md) — ")
    assert result.text == "I created the file. Done."


def test_claude_an_ordinary_tool_error_is_no_refusal_from_recording() -> None:
    _fixture("tool_error")
    result = interpret_claude(OK, _claude("tool_error"), "")
    assert result.completed and result.permission_denials == []
    assert result.text == "There is no such file."


@pytest.mark.parametrize(
    ("answer", "listed"),
    [
        pytest.param('"<tool_use_error>Error: No such tool available: Write. Write is disabled for this session, in '
                     'subagents as well as here.</tool_use_error>"', False, id="unavailable"),
        pytest.param('[{"type":"text","text":"<tool_use_error>Error: No such tool available: Write</tool_use_error>"}]',
                     False, id="unavailable-as-blocks"),
        pytest.param('"Permission to use Write has been denied."', True, id="permission-denied"),
    ],
)  # fmt: skip
def test_claude_each_refused_call_is_recorded_once_in_the_order_made(answer: str, listed: bool) -> None:
    """A call refused, whichever way claude says it, counts once beside the result's
    ``permission_denials`` (``listed``: a rejection is in both), in the order the agent made the
    calls; an ordinary error, ``InputValidationError`` included, is not a refusal."""
    observer = ClaudeObserver()
    write = '{"type":"tool_use","id":"t1","name":"Write","input":{"file_path":"/p/a.md","content":"x"}}'
    bash = '{"type":"tool_use","id":"t2","name":"Bash","input":{"command":"touch b"}}'
    read = '{"type":"tool_use","id":"t3","name":"Read","input":{"nope":1}}'
    denials = [{"tool_name": "Bash", "tool_use_id": "t2", "tool_input": {"command": "touch b"}}]
    if listed:
        denials.insert(0, {"tool_name": "Write", "tool_use_id": "t1", "tool_input": {"file_path": "/p/a.md"}})
    _feed(
        observer,
        [
            '{"type":"assistant","message":{"content":[' + write + "," + bash + "," + read + "]}}",
            '{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","is_error":true,'
            f'"content":{answer}}}]}}}}',
            '{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t2","content":"Permission to '
            'use Bash with command touch b has been denied.","is_error":true}]},"tool_result_meta":[{"id":"t2",'
            '"non_execution_kind":"permission-rule","permission_decision":{"decision":"reject","source":"config"}}]}',
            '{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t3","content":"<tool_use_error>'
            'InputValidationError: Read failed</tool_use_error>","is_error":true}]}}',
            json.dumps({"type": "result", "subtype": "success", "is_error": False, "result": "All done.",
                        "permission_denials": denials}),
        ],
    )  # fmt: skip
    result = interpret_claude(OK, observer, "")
    assert result.error_class == ErrorClass.DENIED
    assert [(d["tool_name"], d["tool_input"]["command" if d["tool_name"] == "Bash" else "file_path"])
            for d in result.permission_denials] == [("Write", "/p/a.md"), ("Bash", "touch b")]  # fmt: skip
    assert result.message is not None
    assert result.message.startswith("2 tool calls denied: Write (/p/a.md), Bash (touch b) — ")


def test_claude_a_command_its_sandbox_stopped_is_refused() -> None:
    """With claude's sandbox on, a command refused the network still exits 0 (the output holds
    ``<sandbox_violations>``): claude marks it ``remedy: {kind: sandbox_violation}``. A command
    that ran and failed carries no such mark, whatever its output says."""
    observer = ClaudeObserver()
    curl = '{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"curl -sS https://example.com"}}'
    fake = '{"type":"tool_use","id":"t2","name":"Bash","input":{"command":"cat notes.txt"}}'
    _feed(
        observer,
        [
            '{"type":"assistant","message":{"content":[' + curl + "," + fake + "]}}",
            '{"type":"user","message":{"content":[{"tool_use_id":"t1","type":"tool_result","is_error":false,'
            '"content":"<sandbox_violations>\\ndeny network-outbound example.com:443\\n</sandbox_violations>"}]},'
            '"tool_result_meta":[{"id":"t1","remedy":{"kind":"sandbox_violation"},'
            '"permission_decision":{"decision":"accept","source":"config","reason_type":"other"}}]}',
            '{"type":"user","message":{"content":[{"tool_use_id":"t2","type":"tool_result","is_error":false,'
            '"content":"<sandbox_violations>made up</sandbox_violations>"}]},"tool_result_meta":[{"id":"t2",'
            '"permission_decision":{"decision":"accept","source":"config"}}]}',
            '{"type":"result","subtype":"success","is_error":false,"result":"Fetched it.","permission_denials":[]}',
        ],
    )  # fmt: skip
    result = interpret_claude(OK, observer, "")
    assert result.error_class == ErrorClass.DENIED
    assert result.message is not None and result.message.startswith("1 tool call denied: Bash (curl -sS https://")


def test_claude_denied_a_question_to_a_person_only_is_still_completed() -> None:
    # Headless claude refuses ExitPlanMode and AskUserQuestion as a rule: no work was withheld.
    observer = ClaudeObserver()
    _feed(
        observer,
        [
            '{"type":"result","subtype":"success","is_error":false,"result":"The plan: ...",'
            '"permission_denials":[{"tool_name":"ExitPlanMode","tool_use_id":"t1","tool_input":{}}],"num_turns":2}',
        ],
    )
    result = interpret_claude(OK, observer, "")
    assert result.completed and result.text == "The plan: ..."


@pytest.mark.parametrize(
    ("ending", "recovered"),
    [
        pytest.param('{"type":"result","subtype":"success","is_error":false,"result":"Done.","session_id":"s-1",'
                     '"total_cost_usd":0.02,"num_turns":1}', True, id="success"),
        pytest.param('{"type":"result","subtype":"success","is_error":true,"api_error_status":500,'
                     '"result":"API Error: 500","session_id":"s-1"}', False, id="is-error"),
        pytest.param('{"type":"result","subtype":"success","is_error":false,"result":"I wrote it.",'
                     '"permission_denials":[{"tool_name":"Write","tool_use_id":"t1","tool_input":{}}]}',
                     False, id="denied"),
        pytest.param('{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","is_error":true,'
                     '"content":"<tool_use_error>Error: No such tool available: Write</tool_use_error>"}]}}\n'
                     '{"type":"result","subtype":"success","is_error":false,"result":"I wrote it.","session_id":"s-1",'
                     '"permission_denials":[]}', False, id="tool-not-given"),
        pytest.param('{"type":"result","subtype":"error_max_turns","is_error":true}', False, id="max-turns"),
        pytest.param('{"type":"assistant","message":{"content":[{"type":"text","text":"Done."}]}}', False,
                     id="no-result-yet"),
        pytest.param('{"type":"result","subtype":"succ', False, id="torn-last-line"),
    ],
)  # fmt: skip
def test_claude_recovers_only_a_successful_result_from_a_log(tmp_path: Path, ending: str, recovered: bool) -> None:
    """What a dead runner's attempt left in its log: a finished task only on claude's own word."""
    log = tmp_path / "agent-01.attempt-1.out"
    log.write_text('{"type":"system","subtype":"init","session_id":"s-1"}\n' + ending + "\n", encoding="utf-8")
    result = ClaudeBackend().recover(Settings(), log, tmp_path / "absent.err")
    assert (result is not None) == recovered
    if result is not None:
        assert result.text == "Done." and result.session_id == "s-1" and result.cost_usd == 0.02


_CODEX_FAILED_TURN = '{"type":"turn.failed","error":{"message":"stream disconnected before completion"}}'


@pytest.mark.parametrize(
    ("lines", "recovered"),
    [
        pytest.param(CODEX_SUCCESS, True, id="success"),
        pytest.param(CODEX_SUCCESS[:-1], False, id="turn-not-completed"),
        pytest.param([*CODEX_SUCCESS[:-1], _CODEX_FAILED_TURN], False, id="turn-failed"),
        pytest.param([*CODEX_SUCCESS, '{"type":"error","message":"unexpected status 401 Unauthorized"}'], False,
                     id="error-after"),
        pytest.param([*CODEX_SUCCESS[:2], _RECONNECTING, *CODEX_SUCCESS[2:]], True, id="a-retry-it-got-past"),
        pytest.param([*CODEX_SUCCESS[:2], '{"type":"item.completed","item":{"id":"i","type":"command_execution",'
                      '"command":"touch x","status":"declined"}}', *CODEX_SUCCESS[2:]], False, id="denied"),
        pytest.param([*CODEX_SUCCESS[:2], CODEX_SUCCESS[-1]], False, id="no-answer"),
        pytest.param([*CODEX_SUCCESS[:-1], CODEX_SUCCESS[-1][:40]], False, id="torn-last-line"),
    ],
)  # fmt: skip
def test_codex_recovers_only_a_completed_turn_from_a_log(tmp_path: Path, lines: list[str], recovered: bool) -> None:
    """What a dead runner's codex attempt left in its log: a finished task only on codex's own word."""
    log = tmp_path / "agent-01.attempt-1.out"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = backends.get("codex").recover(Settings(), log, tmp_path / "absent.err")
    assert (result is not None) == recovered
    if result is not None:
        assert result.completed and result.text == "The repo has a README." and result.exit_code is None
        assert result.session_id == "0199a213-81c0-7800-8aa1-bbab2a035a53"
        assert result.tokens == {"input": 315, "output": 122, "cache_read": 24448}


@pytest.mark.parametrize(
    ("output", "recovered"),
    [
        pytest.param(_gemini(*GEMINI_SUCCESS), True, id="success"),
        pytest.param(_gemini(*GEMINI_SUCCESS[:-1]), False, id="no-result-yet"),
        pytest.param(_gemini_failed("[API Error: You have exhausted your daily quota on this model.]"), False,
                     id="error"),
        pytest.param(_gemini(*GEMINI_SUCCESS[:2], *GEMINI_UNREGISTERED, *GEMINI_SUCCESS[2:]), False, id="denied"),
        pytest.param(_gemini(GEMINI_INIT), False, id="nothing-yet"),
        pytest.param("", False, id="empty"),
    ],
)  # fmt: skip
def test_gemini_recovers_only_a_finished_turn_from_a_log(tmp_path: Path, output: str, recovered: bool) -> None:
    """gemini's last event says how its turn ended: only a ``result`` of success, and no call it
    refused, proves a finished task."""
    log = tmp_path / "agent-01.attempt-1.out"
    log.write_text(output, encoding="utf-8")
    result = backends.get("gemini").recover(Settings(), log, tmp_path / "agent-01.attempt-1.err")
    assert (result is not None) == recovered
    if result is not None:
        assert result.completed and result.text == "Three endpoints respond." and result.exit_code is None
        assert result.tokens == {"input": 1024, "output": 180, "cache_read": 4096}


def test_plain_processes_recover_nothing_from_a_log(tmp_path: Path) -> None:
    """A shell task's output never says how it exited: no evidence, so it runs again (nor do an
    agent CLI's lines that are not its events)."""
    log = tmp_path / "agent-01.attempt-1.out"
    log.write_text("all tests passed\n", encoding="utf-8")
    for name in ("shell", "command", "claude", "codex", "gemini"):
        assert backends.get(name).recover(Settings(), log, tmp_path / "absent.err") is None


def test_claude_without_a_result_event_uses_stderr() -> None:
    result = interpret_claude(FAILED, ClaudeObserver(), "Invalid API key · Please run /login\n")
    assert result.error_class == ErrorClass.AUTH


def test_claude_timeout_keeps_the_session_for_resume() -> None:
    observer = ClaudeObserver()
    _feed(observer, ['{"type":"system","subtype":"init","session_id":"abc"}'])
    result = interpret_claude(ProcessRun(None, 15, 5.0, timed_out="inactivity"), observer, "")
    assert result.error_class == ErrorClass.HANG and result.session_id == "abc" and result.retryable


# --- words --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "status", "expected"),
    [
        ("Invalid API key · Fix external API key", 401, ErrorClass.AUTH),
        ("API Error: Request rejected (429) · slow down", 429, ErrorClass.RATE_LIMIT),
        ("API Error: 529 Overloaded. This is a server-side issue", 529, ErrorClass.RATE_LIMIT),
        ("You've hit your 5-hour limit · resets 7:40am (UTC)", None, ErrorClass.USAGE_LIMIT),
        ("Claude AI usage limit reached|1767225600", None, ErrorClass.USAGE_LIMIT),
        ("API Error: Stream idle timeout - no chunks received", None, ErrorClass.TRANSIENT),
        ("API Error: 503 Service Unavailable", 503, ErrorClass.TRANSIENT),
    ],
)
def test_classify(message: str, status: int | None, expected: str) -> None:
    assert classify(message, status) == expected


def test_reset_times() -> None:
    now = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
    assert reset_time("Claude AI usage limit reached|1767225600", now) == 1767225600.0
    assert reset_time("try again in 2h 30m", now) == now + 9000
    seven_forty = reset_time("You've hit your 5-hour limit · resets 7:40am (UTC)", now)
    assert seven_forty is not None and 0 < seven_forty - now <= 24 * 3600
    assert time.gmtime(seven_forty)[3:5] == (7, 40)
    weekly = reset_time("You've hit your weekly limit · resets Nov 24, 6:48am (UTC)", now)
    assert weekly is not None and time.gmtime(weekly)[1:5] == (11, 24, 6, 48)
    assert reset_time("no time here", now) is None
