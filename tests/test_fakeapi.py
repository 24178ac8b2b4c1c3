"""Tests of the fake Messages API (tests/fakeapi.py), partly against the real claude CLI."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from agenthome import hostile_start_up
from fakeapi import (
    SCENARIOS,
    FakeAnthropic,
    FixedWindow,
    RateLimit,
    Reply,
    SlidingWindow,
    claude_missing,
    find_claude,
    fixture_path,
    play,
    run_claude,
)

CLAUDE = find_claude()
needs_claude = pytest.mark.skipif(CLAUDE is None, reason=claude_missing())


def _claude() -> str:
    if CLAUDE is None:
        pytest.skip(claude_missing())
    return CLAUDE


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def _sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for chunk in raw.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in chunk.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


MAIN = {"model": "m", "stream": True, "tools": [{"name": "Bash"}], "messages": [{"role": "user", "content": "hi"}]}


# ---------------------------------------------------------------------------
# The fake alone (no claude needed)


def test_stream_text_and_tool_use_and_side_calls() -> None:
    script = [Reply.say("Hello there, world!"), Reply.tool("Bash", {"command": "echo hi"}, text="Running.")]
    with FakeAnthropic(script) as api:
        # a side call (no tools) does not consume the script
        status, _, raw = _post(api.base_url + "/v1/messages?beta=true", {**MAIN, "tools": [], "stream": False})
        assert status == 200 and json.loads(raw)["content"][0]["text"] == "ok"

        status, headers, raw = _post(api.base_url + "/v1/messages?beta=true", MAIN)
        assert status == 200 and headers["content-type"].startswith("text/event-stream")
        events = _sse(raw)
        names = [n for n, _ in events]
        assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
        text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
        assert text == "Hello there, world!"
        delta = dict(events)["message_delta"]
        assert delta["delta"]["stop_reason"] == "end_turn"
        assert delta["usage"]["output_tokens"] == 20 and delta["usage"]["input_tokens"] == 100

        status, _, raw = _post(api.base_url + "/v1/messages", MAIN)
        events = _sse(raw)
        starts = [d["content_block"] for n, d in events if n == "content_block_start"]
        assert [b["type"] for b in starts] == ["text", "tool_use"] and starts[1]["name"] == "Bash"
        partial = "".join(
            d["delta"]["partial_json"]
            for n, d in events
            if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta"
        )
        assert json.loads(partial) == {"command": "echo hi"}
        assert dict(events)["message_delta"]["delta"]["stop_reason"] == "tool_use"

        # script exhausted: harmless text, recorded in errors
        status, _, raw = _post(api.base_url + "/v1/messages", {**MAIN, "stream": False})
        assert "script exhausted" in json.loads(raw)["content"][0]["text"]
    assert api.errors == ["script exhausted"]
    assert len(api.requests) == 4 and len(api.main_requests) == 3 and len(api.side_requests) == 1
    assert api.log[1].path == "/v1/messages?beta=true"


def test_errors_count_tokens_head_and_callable_script() -> None:
    seen: list[str] = []

    def script(body: dict[str, Any]) -> Reply:
        seen.append(body["messages"][-1]["content"])
        return Reply.error(429, "rate_limit_error", "slow down", headers={"retry-after": "7"})

    with FakeAnthropic(script) as api:
        status, headers, raw = _post(api.base_url + "/v1/messages", MAIN)
        assert status == 429 and headers["retry-after"] == "7"
        assert json.loads(raw)["error"] == {"type": "rate_limit_error", "message": "slow down"}
        status, _, raw = _post(api.base_url + "/v1/messages/count_tokens?beta=true", MAIN)
        assert status == 200 and json.loads(raw)["input_tokens"] > 0
        with urllib.request.urlopen(urllib.request.Request(api.base_url + "/", method="HEAD"), timeout=10) as r:
            assert r.status == 200
        with urllib.request.urlopen(api.base_url + "/anything", timeout=10) as r:
            assert r.status == 200
    assert seen == ["hi"]


def test_rate_limit_is_a_token_bucket_of_requests_a_minute() -> None:
    bucket = RateLimit(60, burst=2)  # one token a second, two at most
    assert bucket.take(now=0.0) == 0.0 and bucket.take(now=0.0) == 0.0
    assert bucket.take(now=0.25) == pytest.approx(0.75)  # refused: the next token in 0.75 s
    assert bucket.take(now=1.0) == 0.0  # a refusal took nothing
    assert bucket.take(now=1.5) == pytest.approx(0.5)
    assert bucket.take(now=100.0) == 0.0 and bucket.take(now=100.0) == 0.0  # refilled up to the burst only
    assert bucket.take(now=100.0) == pytest.approx(1.0)
    assert bucket.admitted == [0.0, 0.0, 1.0, 100.0, 100.0] and bucket.rejected == [0.25, 1.5, 100.0]


def test_requests_beyond_the_rate_limit_get_429_with_retry_after() -> None:
    bucket = RateLimit(6, burst=1)  # a token every 10 s
    with FakeAnthropic([Reply.say("one"), Reply.say("two")], rate_limit=bucket) as api:
        first = _post(api.base_url + "/v1/messages", MAIN)
        status, headers, raw = _post(api.base_url + "/v1/messages", MAIN)
    assert first[0] == 200
    assert status == 429 and 9 <= int(headers["retry-after"]) <= 10
    assert headers["anthropic-ratelimit-requests-limit"] == "6"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert json.loads(raw)["error"]["type"] == "rate_limit_error"
    assert len(api.main_requests) == 1 and len(api.limited) == 1 and len(api.requests) == 2
    assert api.remaining == 1  # the refused request did not take the script's next reply


def test_sliding_window_admits_its_limit_in_any_trailing_span_then_waits_for_the_oldest() -> None:
    window = SlidingWindow(3, 10.0)  # at most 3 requests in any 10 s
    assert [window.take(now=t) for t in (0.0, 1.0, 2.0)] == [0.0, 0.0, 0.0]
    assert window.take(now=2.5) == pytest.approx(7.5)  # refused until the one of 0.0 is 10 s old
    assert window.take(now=9.99) == pytest.approx(0.01)
    assert window.take(now=10.0) == 0.0  # (0.0 has left the window: 1, 2 and 10 are in it)
    assert window.take(now=10.5) == pytest.approx(0.5)  # not a token a second: the next leaves at 11
    assert window.take(now=11.0) == 0.0 and window.take(now=12.0) == 0.0
    assert window.take(now=12.0) == pytest.approx(8.0)
    assert window.take(now=100.0) == 0.0  # a long pause: all aged out, 3 at once again
    assert window.take(now=100.0) == 0.0 and window.take(now=100.0) == 0.0
    assert window.take(now=100.0) == pytest.approx(10.0)
    assert window.admitted == [0.0, 1.0, 2.0, 10.0, 11.0, 12.0, 100.0, 100.0, 100.0]
    assert window.rejected == [2.5, 9.99, 10.5, 12.0, 100.0]


def test_sliding_window_never_admits_more_than_its_limit_in_any_span() -> None:
    window = SlidingWindow(10, 10.0)
    for step in range(2000):  # a request every 0.05 s, 20 times what it admits
        window.take(now=step * 0.05)
    admitted = window.admitted
    assert len(admitted) == 10 * 10  # 100 s: ten windows' worth, no more
    assert all(b - a >= 10.0 for a, b in zip(admitted, admitted[10:], strict=False))


def test_fixed_window_admits_its_limit_a_window_and_starts_afresh_at_its_edge() -> None:
    window = FixedWindow(3, 60.0)  # 3 a clock minute
    start = 1_800_000_000.0  # a whole minute of the epoch
    assert [window.take(now=start + t) for t in (0.0, 1.0, 50.0)] == [0.0, 0.0, 0.0]
    assert window.take(now=start + 50.0) == pytest.approx(10.0)  # to the minute's end, not a token's
    assert window.take(now=start + 59.5) == pytest.approx(0.5)
    assert [window.take(now=start + t) for t in (60.0, 60.0, 60.0)] == [0.0, 0.0, 0.0]  # afresh: 6 in 10 s
    assert window.take(now=start + 119.0) == pytest.approx(1.0)
    assert window.take(now=start + 125.0) == 0.0  # a new minute, though nothing waited out the last
    assert len(window.admitted) == 7 and len(window.rejected) == 3


def test_fixed_window_windows_are_the_clock_s() -> None:
    window = FixedWindow(1, 60.0)
    assert window.take(now=1_800_000_030.0) == 0.0  # half past a minute: the window ends at 60 s
    assert window.take(now=1_800_000_045.0) == pytest.approx(15.0)
    assert window.take(now=1_800_000_060.0) == 0.0


@pytest.mark.parametrize(
    ("limit", "limit_header", "low", "high"),
    [
        (RateLimit(6, burst=1), "6", 9, 10),  # a token every 10 s
        (SlidingWindow(1, 10.0), "1", 9, 10),  # the one admitted leaves the window in 10 s
        (FixedWindow(1, 3600.0), "1", 1, 3600),  # the next hour (whenever the test runs)
    ],
    ids=["bucket", "sliding", "fixed"],
)
def test_each_limit_s_429_says_its_retry_after_and_headers(limit: Any, limit_header: str, low: int, high: int) -> None:
    with FakeAnthropic([Reply.say("one"), Reply.say("two")], rate_limit=limit) as api:
        first = _post(api.base_url + "/v1/messages", MAIN)
        status, headers, raw = _post(api.base_url + "/v1/messages", MAIN)
    assert first[0] == 200
    assert status == 429 and low <= int(headers["retry-after"]) <= high
    if isinstance(limit, FixedWindow):  # the seconds to the next hour of the clock, exactly
        reset = datetime.strptime(headers["anthropic-ratelimit-requests-reset"], "%Y-%m-%dT%H:%M:%SZ")
        assert reset.minute == reset.second == 0
    assert headers["anthropic-ratelimit-requests-limit"] == limit_header
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert json.loads(raw)["error"]["type"] == "rate_limit_error"
    assert len(limit.admitted) == 1 and len(limit.rejected) == 1 and api.remaining == 1


def test_hang_is_released_on_close() -> None:
    api = FakeAnthropic([Reply.hang(30)]).start()
    req = urllib.request.Request(
        api.base_url + "/v1/messages", data=json.dumps(MAIN).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        first = resp.readline()
        assert first.startswith(b"event: message_start")
        api.close()  # must not wait the 30 s
        resp.read()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_recorded_fixture_shape(name: str) -> None:
    path = fixture_path(name)
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    assert events[0]["type"] == "system" and events[0]["subtype"] == "init"
    result = events[-1]
    assert result["type"] == "result"
    expected = {
        "success": ("success", False),
        "tool_roundtrip": ("success", False),
        "structured_output": ("success", False),
        "resume": ("success", False),
        "retry_then_success": ("success", False),
        "unavailable_tool": ("success", False),
        "tool_error": ("success", False),
        "max_turns": ("error_max_turns", True),
        "max_budget": ("error_max_budget_usd", True),
    }.get(name, ("success", True))  # API errors keep subtype "success" but set is_error
    assert (result["subtype"], result["is_error"]) == expected
    if name == "structured_output":
        assert result["structured_output"] == {"name": "Bob"}
    if name == "usage_limit":
        assert result["api_error"] == "usage_limit_reached" and result["result"].startswith("You've hit your")


# ---------------------------------------------------------------------------
# Against the real claude CLI


@pytest.mark.claude
@needs_claude
def test_claude_success(tmp_path: Path) -> None:
    run, api = play("success", tmp_path, claude=_claude())
    assert run.returncode == 0, run.stderr
    result = run.result
    assert result is not None
    assert result["subtype"] == "success" and result["is_error"] is False
    assert result["result"] == "Hello from the fake API."
    assert result["total_cost_usd"] > 0
    assert len(api.main_requests) == 1
    body = api.main_requests[0]
    assert body["stream"] is True and body["tools"]
    assert api.errors == []


@pytest.mark.claude
@needs_claude
def test_claude_bash_tool_roundtrip(tmp_path: Path) -> None:
    script = [Reply.tool("Bash", {"command": "echo hi > made.txt && cat made.txt"}), Reply.say("Done.")]
    (tmp_path / "cfg").mkdir()
    with FakeAnthropic(script) as api:
        run = run_claude(
            api,
            "Make a file.",
            args=("--allowedTools", "Bash"),
            config_dir=tmp_path / "cfg",
            cwd=tmp_path,
            claude=_claude(),
        )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "made.txt").read_text() == "hi\n"
    assert run.result is not None and run.result["result"] == "Done." and run.result["num_turns"] == 2
    assert len(api.main_requests) == 2
    tool_result = api.main_requests[1]["messages"][-1]["content"][0]
    assert tool_result["type"] == "tool_result" and tool_result["content"] == "hi"
    assert tool_result["is_error"] is False


def test_the_users_shell_start_up_never_reaches_the_claude_bash_tool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """claude's Bash tool starts its shells from the person's login shell (their ~/.bash_profile
    and ~/.bashrc) and every bash reads $BASH_ENV: a test's claude has a HOME of its own and
    none of those variables, so nothing of the person's set-up can hang or change it."""
    marker = tmp_path / "marker"
    hostile_start_up(tmp_path / "user", marker, monkeypatch)
    run, api = play("tool_roundtrip", tmp_path / "run", claude=_claude())
    assert run.returncode == 0, run.stderr
    assert run.result is not None and run.result["result"] == "The command said hi."
    assert api.main_requests[1]["messages"][-1]["content"][0]["content"] == "hi"  # the Bash tool ran
    assert not marker.exists(), marker.read_text()


@pytest.mark.claude
@needs_claude
def test_claude_auth_401(tmp_path: Path) -> None:
    run, api = play("auth_401", tmp_path, claude=_claude())
    assert run.returncode == 1
    result = run.result
    assert result is not None
    assert result["is_error"] is True and result["api_error_status"] == 401
    assert "Invalid API key" in result["result"]
    assert len(api.requests) == 1  # CLAUDE_CODE_MAX_RETRIES=0 is honoured


# --- the other vendors' dialects (tests/fake_openai.py, tests/fake_gemini.py) ---------------------


def _events(raw: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    """The (event name, data) of an SSE body; the name is None for bare ``data:`` lines."""
    found: list[tuple[str | None, dict[str, Any]]] = []
    for chunk in raw.decode().split("\n\n"):
        name = next((line[7:] for line in chunk.splitlines() if line.startswith("event: ")), None)
        data = next((line[6:] for line in chunk.splitlines() if line.startswith("data: ")), None)
        if data is not None:
            found.append((name, json.loads(data)))
    return found


def test_the_responses_api_streams_items_then_usage() -> None:
    """codex and opencode read ``response.output_item.done`` items and ``response.completed``'s
    usage: a message, then a ``function_call`` (arguments a JSON string) or a freeform
    ``custom_tool_call``; a request without tools is a side call (opencode's title)."""
    from fake_openai import FakeOpenAI, rate_limited

    script = [Reply.tool("exec_command", {"cmd": "ls"}, text="Looking."), Reply.tool("apply_patch", {"input": "*** x"}),
              rate_limited(2)]  # fmt: skip
    with FakeOpenAI(script) as api:
        url = api.base_url + "/v1/responses"
        _, headers, raw = _post(url, {"model": "m", "stream": True, "tools": [{"type": "function"}], "input": []})
        events = _events(raw)
        _, _, patch = _post(url, {"model": "m", "stream": True, "tools": [{"type": "function"}], "input": []})
        _, _, side = _post(url, {"model": "m", "stream": False, "input": []})
        status, limited_headers, body = _post(url, {"model": "m", "stream": True, "tools": [{}], "input": []})
    assert headers["content-type"] == "text/event-stream"
    names = [name for name, _ in events]
    assert names[0] == "response.created" and names[-1] == "response.completed"
    assert all(name == data["type"] for name, data in events)
    done = [data["item"] for name, data in events if name == "response.output_item.done"]
    assert [item["type"] for item in done] == ["message", "function_call"]
    assert done[0]["content"][0]["text"] == "Looking." and json.loads(done[1]["arguments"]) == {"cmd": "ls"}
    usage = events[-1][1]["response"]["usage"]
    assert usage["input_tokens"] == 100 and usage["output_tokens"] == 20 and usage["total_tokens"] == 120
    custom = [d["item"] for n, d in _events(patch) if n == "response.output_item.done"]
    assert custom[0]["type"] == "custom_tool_call" and custom[0]["input"] == "*** x"
    assert json.loads(side)["output"][0]["content"][0]["text"] == "ok" and len(api.side_requests) == 1
    assert status == 429 and limited_headers["retry-after"] == "2" and limited_headers["retry-after-ms"] == "2000"
    assert json.loads(body)["error"]["code"] == "rate_limit_exceeded"
    assert api.billed == (100 + 100 + 10, 20 + 20 + 1)  # the answers and the side call; not the 429


def test_the_gemini_api_streams_chunks_and_answers_the_router() -> None:
    """gemini reads bare ``data:`` chunks of candidates, the last with ``finishReason`` and
    ``usageMetadata``; its router's request (no tools, a JSON answer wanted) gets a model choice
    without consuming the script; a 429's wait is a RetryInfo detail."""
    from fake_gemini import RETRY_INFO, FakeGemini, rate_limited

    with FakeGemini([Reply.tool("read_file", {"file_path": "a.md"}, text="Reading the notes now."),
                     rate_limited(3)]) as api:  # fmt: skip
        base = api.base_url + "/v1beta/models/gemini-x"
        router = {"contents": [], "generationConfig": {"responseMimeType": "application/json"}}
        _, _, chosen = _post(base + ":generateContent", router)
        _, headers, raw = _post(base + ":streamGenerateContent?alt=sse", {"contents": [], "tools": [{}]})
        status, _, body = _post(base + ":streamGenerateContent?alt=sse", {"contents": [], "tools": [{}]})
    answer = json.loads(json.loads(chosen)["candidates"][0]["content"]["parts"][0]["text"])
    assert answer["model_choice"] == "flash" and isinstance(answer["complexity_score"], int)
    chunks = [data for _, data in _events(raw)]
    assert headers["content-type"] == "text/event-stream" and all(name is None for name, _ in _events(raw))
    parts = [part for chunk in chunks for part in chunk["candidates"][0]["content"]["parts"]]
    assert "".join(p.get("text", "") for p in parts) == "Reading the notes now."
    assert parts[-1] == {"functionCall": {"name": "read_file", "args": {"file_path": "a.md"}}}
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP" and "usageMetadata" not in chunks[0]
    assert chunks[-1]["usageMetadata"]["totalTokenCount"] == 120
    error = json.loads(body)["error"]
    assert status == 429 and error["status"] == "RESOURCE_EXHAUSTED"
    assert {"@type": RETRY_INFO, "retryDelay": "3s"} in error["details"]
