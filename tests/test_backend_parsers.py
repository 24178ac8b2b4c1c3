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
from orchestrator.plan.settings import Settings
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


# --- gemini --------------------------------------------------------------------------------------

GEMINI_SUCCESS = json.dumps(
    {
        "session_id": "c4bdf6e6-4b4b-4c48-9d0c-5b0f5d9b7e1a",
        "response": "Three endpoints respond.",
        "stats": {
            "models": {
                "gemini-2.5-pro": {
                    "api": {"totalRequests": 2},
                    "tokens": {
                        "prompt": 5120,
                        "candidates": 88,
                        "total": 5300,
                        "cached": 4096,
                        "thoughts": 92,
                        "tool": 0,
                    },
                }
            },
            "tools": {"totalCalls": 1},
        },
    }
)


def test_gemini_success() -> None:
    result = interpret_gemini(OK, "Loaded cached credentials.\n" + GEMINI_SUCCESS, "")
    assert result.completed
    assert result.text == "Three endpoints respond."
    assert result.session_id == "c4bdf6e6-4b4b-4c48-9d0c-5b0f5d9b7e1a"
    # prompt holds the cached tokens, total is the sum of the others: each counted once
    assert result.tokens == {"input": 1024, "output": 180, "cache_read": 4096}


def test_gemini_tokens_add_up_to_its_totals_across_models() -> None:
    models = {
        "gemini-2.5-pro": {"tokens": {"prompt": 1000, "candidates": 50, "total": 1100, "cached": 0, "thoughts": 50,
                                      "tool": 0}},
        "gemini-2.5-flash": {"tokens": {"prompt": 700, "candidates": 20, "total": 760, "cached": 300, "thoughts": 0,
                                        "tool": 40}},
    }  # fmt: skip
    body = json.dumps({"session_id": "s", "response": "Done.", "stats": {"models": models}})
    result = interpret_gemini(OK, body, "")
    assert result.tokens == {"input": 1000 + 400 + 40, "output": 100 + 20, "cache_read": 300}
    assert sum(result.tokens.values()) == 1100 + 760


def _gemini_with_tools(tools: dict[str, object]) -> str:
    data = json.loads(GEMINI_SUCCESS)
    data["stats"]["tools"] = tools
    return json.dumps(data)


def test_gemini_a_rejected_call_fails_the_task_as_denied() -> None:
    """``stats.tools.totalDecisions.reject``: calls gemini refused. Whatever the agent then says
    it did, they were not done; ``byName`` names them as far as it tells."""
    tools = {
        "totalCalls": 3,
        "totalDecisions": {"accept": 1, "reject": 3, "modify": 0, "auto_accept": 0},
        "byName": {
            "write_file": {"count": 2, "decisions": {"accept": 0, "reject": 2, "modify": 0, "auto_accept": 0}},
            "read_file": {"count": 1, "decisions": {"accept": 1, "reject": 0, "modify": 0, "auto_accept": 0}},
        },
    }
    result = interpret_gemini(OK, _gemini_with_tools(tools), "")
    assert not result.completed and not result.retryable
    assert result.error_class == ErrorClass.DENIED
    assert result.message is not None
    assert result.message.startswith("3 tool calls denied: write_file, write_file, ? — ")
    assert "permission_mode" in result.message and "allowed_tools" not in result.message
    assert len(result.permission_denials) == 3
    assert result.text == "Three endpoints respond."


def test_gemini_a_call_of_a_tool_it_was_not_given_fails_the_task_as_denied() -> None:
    """Headless, gemini leaves out the tools its approval mode would have to ask for: a call of
    one is no decision (``byName`` counts it a ``fail``), only a line on stderr. A tool that ran
    and failed is no refusal."""
    tools = {
        "totalCalls": 3, "totalSuccess": 1, "totalFail": 2,
        "totalDecisions": {"accept": 0, "reject": 0, "modify": 0, "auto_accept": 2},
        "byName": {
            "write_file": {"count": 1, "success": 0, "fail": 1,
                           "decisions": {"accept": 0, "reject": 0, "modify": 0, "auto_accept": 0}},
            "read_file": {"count": 2, "success": 1, "fail": 1,
                          "decisions": {"accept": 0, "reject": 0, "modify": 0, "auto_accept": 2}},
        },
    }  # fmt: skip
    stderr = (
        "Loaded cached credentials.\n"
        "Error executing tool read_file: File not found: /p/missing.md\n"
        'Error executing tool write_file: Tool "write_file" not found in registry. Tools must use the exact names '
        'that are registered. Did you mean one of: "read_file", "glob", "web_fetch"?\n'
    )
    result = interpret_gemini(OK, _gemini_with_tools(tools), stderr)
    assert not result.completed and result.error_class == ErrorClass.DENIED
    assert result.permission_denials == [{"tool_name": "write_file", "tool_input": {}}]
    assert result.message is not None and result.message.startswith("1 tool call denied: write_file — ")
    assert "permission_mode" in result.message
    ordinary = interpret_gemini(OK, _gemini_with_tools(tools), stderr.splitlines(keepends=True)[1])
    assert ordinary.completed and ordinary.permission_denials == []


def test_gemini_calls_accepted_are_no_refusal() -> None:
    tools = {"totalCalls": 2, "totalDecisions": {"accept": 1, "reject": 0, "modify": 0, "auto_accept": 1}}
    result = interpret_gemini(OK, _gemini_with_tools(tools), "")
    assert result.completed and result.permission_denials == []


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
    body = json.dumps({"error": {"type": "Error", "message": "details here", "code": code}})
    result = interpret_gemini(ProcessRun(code, None, 1.0), body, "")
    assert not result.completed
    assert result.error_class == error_class
    assert result.message is not None and words in result.message and "details here" in result.message
    assert result.error_class is not None and not result.error_class.retryable


def test_gemini_quota_error_is_a_usage_limit() -> None:
    body = json.dumps(
        {"error": {"type": "ApiError", "message": "Quota exceeded for quota metric; retry in 45m", "code": 429}}
    )
    result = interpret_gemini(FAILED, body, "")
    assert result.error_class == ErrorClass.USAGE_LIMIT
    assert result.reset_at is not None and result.reset_at > time.time() + 40 * 60


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
        pytest.param("Loaded cached credentials.\n" + GEMINI_SUCCESS, True, id="success"),
        pytest.param(GEMINI_SUCCESS[: len(GEMINI_SUCCESS) // 2], False, id="torn"),
        pytest.param('{"session_id":"s","error":{"type":"Error","message":"quota exceeded","code":429}}', False,
                     id="error"),
        pytest.param('{"session_id":"s","response":"partial","error":{"type":"FatalTurnLimitedError",'
                     '"message":"Reached max session turns","code":53}}', False, id="turn-limit"),
        pytest.param('{"session_id":"s","response":"","stats":{}}', False, id="no-answer"),
        pytest.param('{"session_id":"s","response":"I wrote it.","stats":{"tools":{"totalDecisions":{"reject":1}}}}',
                     False, id="denied"),
        pytest.param("Loaded cached credentials.\n", False, id="nothing-yet"),
        pytest.param(GEMINI_SUCCESS + '\0Error executing tool write_file: Tool "write_file" not found in registry.',
                     False, id="unregistered-tool"),
    ],
)  # fmt: skip
def test_gemini_recovers_only_a_whole_answer_from_a_log(tmp_path: Path, output: str, recovered: bool) -> None:
    """gemini prints its JSON object when it is done: only a whole one with an answer and no
    error, and no refused call on stderr (after the NUL here), proves a finished task."""
    log = tmp_path / "agent-01.attempt-1.out"
    out, _, err = output.partition("\0")
    log.write_text(out, encoding="utf-8")
    (tmp_path / "agent-01.attempt-1.err").write_text(err, encoding="utf-8")
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
