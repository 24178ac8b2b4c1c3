"""Fake Anthropic Messages API for tests, proven against the real ``claude`` CLI.

Standard library only: a ``ThreadingHTTPServer`` on 127.0.0.1 (OS-chosen
port) in a background thread.  Point claude at it with
``ANTHROPIC_BASE_URL=<base_url>``; see :func:`claude_env`.

Facts observed with @anthropic-ai/claude-code 2.1.329 (native binary,
``tools/install-claude.sh``), ``claude -p --output-format stream-json
--verbose``, prompt on stdin, ``ANTHROPIC_API_KEY=dummy``,
``CLAUDE_CONFIG_DIR=<tmp>``, ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1``.
Recorded outputs are in ``tests/fixtures/claude/*.jsonl``.

Wire protocol
  * Main calls: ``POST /v1/messages?beta=true`` (query string!), ``stream:
    true``, 12 tools (Agent, Bash, Edit, Read, Write, Skill, ...), default
    model ``claude-opus-5-5`` (``claude-sonnet-5-5`` under OAuth),
    ``max_tokens`` 128000, header ``x-api-key: dummy``.  ``messages`` contains
    a ``role: "system"`` entry (environment info) after the first user turn.
    The ``system`` field is a list of text blocks; ``--append-system-prompt``
    text lands in ``system`` (not in ``messages``).
  * No side calls were seen (no title generation, no count_tokens, no quota
    probe) in -p mode, with or without DISABLE_NONESSENTIAL_TRAFFIC; without
    it claude additionally sends ``HEAD /api/hello``.  Rule used here all
    the same (:func:`is_side_call`): a ``/v1/messages`` body with no
    ``tools`` is a side call, answered "ok" without consuming the script.
  * Cost: result ``total_cost_usd`` is computed from the usage in
    message_start/message_delta (100 in + 20 out on opus-5-5 = $0.0008).
  * After a stream goes silent or breaks, claude retries; after a stream
    *idle timeout* it falls back to a NON-streaming request (``stream:
    false``, ``max_tokens`` 64000), answered here as plain JSON.

Retries and timeouts (env vars)
  * ``CLAUDE_CODE_MAX_RETRIES`` works: default 10 retries with exponential
    backoff (0.5 s, 1 s, 2 s, ... 37 s; a 401 run takes minutes); 0 = fail on
    the first error.  Each retry emits ``{"type":"system","subtype":
    "api_retry","attempt":n,"max_retries":m,"retry_delay_ms":..,
    "error_status":401|429|529|500|null,"error":"authentication_failed"|
    "rate_limit"|"overloaded"|"server_error"|"unknown"}``.  401, 429, 500 and
    529 are all retried; 429 honours ``retry-after`` (3 s -> 3031 ms).
    400 is re-sent a few times immediately, then fails.
  * Silent stream after ``message_start`` (``Reply.hang``): claude waits
    300 s by default, then silently re-sends as non-streaming (no api_retry
    event, even with MAX_RETRIES=0).  ``CLAUDE_STREAM_IDLE_TIMEOUT_MS`` can
    NOT lower this (floored at 300000).  ``CLAUDE_BYTE_STREAM_IDLE_TIMEOUT_MS``
    can (floor 10000): with 10000 the fallback happens after 10 s.  With
    ``CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK=1`` too, claude gives up
    after 10 s: exit 1, result ``is_error: true``, ``api_error_status: null``,
    ``result: "API Error: Stream idle timeout - no chunks received"``.
  * No response headers at all (``Reply(delay_seconds=...)``): default wait
    ~360 s, then api_retry (``error: "unknown"``, status null).
    ``API_TIMEOUT_MS`` works here (5000 -> retry after 5 s; it is also sent
    as ``x-stainless-timeout``) and bounds the non-streaming fallback, but
    does NOT bound a stream that already sent headers.
    ``CLAUDE_STREAM_FIRST_BYTE_TIMEOUT_MS`` had no effect (first-party API).
  * Broken stream (connection dropped mid-message): api_retry
    ``error: "unknown"``, re-sent *streaming*.  SSE ``error`` event
    mid-stream: re-sent streaming without an api_retry event.

Errors as seen in the stream-json ``result`` event (all exit code 1; note
``subtype`` stays ``"success"``, ``terminal_reason: "api_error"``,
``total_cost_usd: 0``, preceded by an ``assistant`` event with model
``<synthetic>``, ``error`` (kind), ``api_error_status``, ``is_api_error_message``):
  * 401: ``is_error: true, api_error_status: 401, result: "Invalid API key ·
    Fix external API key"``; assistant ``error: "authentication_failed"``.
  * 429 (+ retry-after, MAX_RETRIES=0): ``api_error_status: 429, result:
    "API Error: Request rejected (429) · <error.message>"``.
  * 529: ``api_error_status: 529, result: "API Error: 529 Overloaded. This is
    a server-side issue, usually temporary — try again in a moment. If it
    persists, check your inference gateway (127.0.0.1:PORT)."``
  * 400: ``api_error_status: 400, result: "API Error: 400 <error.message>"``.
  * Usage limit (``Reply.usage_limit``: 429 + ``anthropic-ratelimit-unified-
    status: rejected``, ``-reset: <epoch s>``, ``-representative-claim:
    five_hour|seven_day|...``) is only interpreted for subscribers: run with
    ``CLAUDE_CODE_OAUTH_TOKEN=<anything>`` and NO ``ANTHROPIC_API_KEY``
    (``claude_env(..., auth="oauth")``).  Then it is never retried, a
    ``{"type":"rate_limit_event","rate_limit_info":{"status":"rejected",
    "resetsAt":<epoch>,"rateLimitType":"five_hour","isUsingOverage":false}}``
    line precedes the assistant event, the assistant/result events carry
    ``api_error: "usage_limit_reached"`` (assistant also ``api_error_params.
    rate_limit_info``) and ``result`` is e.g. ``"You've hit your 5-hour limit
    · resets 7:40am (UTC)"`` or ``"You've hit your weekly limit · resets Nov
    24, 6:48am (UTC)"`` (U+00B7 middle dot).  With an API key the same
    response is a plain 429 ("API Error: Request rejected (429) · ...").
    The legacy ``"Claude AI usage limit reached|<epoch>"`` text is no longer
    produced by claude; sent as an error message it just appears verbatim
    after "API Error: Request rejected (429) · ".

Other facts
  * ``--max-turns 1`` + a tool call: exit 1, ``subtype: "error_max_turns"``,
    ``is_error: true``, ``result`` absent/None, ``errors: ["Reached maximum
    number of turns (1)"]``, ``terminal_reason: "max_turns"``.
  * ``--max-budget-usd X`` exists: checked after each turn (overshoots),
    exit 1, ``subtype: "error_max_budget_usd"``, ``errors: ["Reached maximum
    budget ($X)"]``, ``terminal_reason: "budget_exhausted"``.
  * ``--json-schema S`` adds a tool ``StructuredOutput`` (input_schema = S).
    When the model calls it: tool_result "Structured output provided
    successfully", the run ends at once, result event has
    ``structured_output: {...}`` and ``result`` = its JSON text.  Invalid
    input -> tool_result error "Output does not match required schema:
    /name: must be string" and another turn.  Text-only reply -> one nudge
    user message "[structured-output-enforce] You MUST call the
    StructuredOutput tool ..."; if ignored again: ``subtype: "success"``,
    ``is_error: false``, ``structured_output`` absent -> check for it!
  * ``--resume <session_id>`` (same CLAUDE_CONFIG_DIR, any cwd) keeps the
    session_id and re-sends the earlier messages; ``total_cost_usd`` in the
    result is CUMULATIVE over the whole session (0.0008 -> 0.0016).  Unknown
    id: exit 1, ``subtype: "error_during_execution"``, ``errors: ["No
    conversation found with session ID: <id>"]``, no API call.
    ``--session-id <uuid>`` sets the id of a new session.
  * Skills: ``system/init`` lists them in ``skills`` (and
    ``slash_commands``): both ``$CLAUDE_CONFIG_DIR/skills/<n>/SKILL.md`` and
    ``<cwd>/.claude/skills/<n>/SKILL.md`` appear (plus ~16 built-ins).
  * A call of a tool the agent does not have (not in ``--tools``, named in
    ``--disallowedTools`` or a settings file's ``permissions.deny``, or no
    such tool at all): a ``user`` event whose ``tool_result`` has
    ``is_error: true`` and content ``<tool_use_error>Error: No such tool
    available: Write. Write is disabled for this session, in subagents as
    well as here.</tool_use_error>``; the run goes on, and the result has
    ``subtype: "success"``, ``is_error: false`` and NO ``permission_denials``
    entry for it.  A call a permission rule, a mode or a PreToolUse hook
    refuses is in ``permission_denials``, its ``user`` event carries
    ``tool_result_meta: [{"id", "non_execution_kind": "permission-rule"|
    "user-rejected", "permission_decision": {"decision": "reject", "source":
    "config"|"hook", ...}}]``, and a ``system``/``permission_denied`` event
    (``tool_name``, ``tool_use_id``, ``message``) precedes it.  An ordinary
    tool error (a missing file, a command exiting non-zero, bad input:
    ``<tool_use_error>InputValidationError: ...``) has ``permission_decision:
    {"decision": "accept"}`` or no meta.  A sandbox (settings ``sandbox.
    enabled``) needs bubblewrap and socat on Linux: without them claude warns
    on stderr and runs commands unsandboxed, or with ``failIfUnavailable``
    refuses to start (exit 1, ``error_during_execution``).  With them, a
    command denied the network still exits as it will (``is_error: false``)
    with ``<sandbox_violations>\ndeny network-outbound example.com:80 (user
    denied)\n</sandbox_violations>`` in its output and ``tool_result_meta:
    [{"id", "remedy": {"kind": "sandbox_violation"}, "permission_decision":
    {"decision": "accept", ...}}]``; a write outside the allowed paths just
    fails ("Read-only file system", exit 1) with no such mark.
  * Permissions (running as root): read-only commands (``echo hi``) run in
    every mode; a writing command (``touch f``) is refused in the default
    mode (is_error tool_result "... needs approval") and in ``dontAsk``, and
    runs with ``--allowedTools Bash``, ``--permission-mode acceptEdits``,
    ``auto``, or ``bypassPermissions`` / ``--dangerously-skip-permissions``;
    the last two refuse to start as root ("--dangerously-skip-permissions
    cannot be used with root/sudo privileges for security reasons", exit 1)
    unless ``IS_SANDBOX=1``.
  * stream-json shape: the ``result`` line does not start with ``"type"``
    (it starts ``{"duration_api_ms":...``): parse JSON, never prefix-match.
    Streamed ``assistant`` events carry ``stop_reason: null`` and the
    message_start usage; the result event has the summed usage,
    ``total_cost_usd``, ``modelUsage``, ``num_turns``, ``session_id``,
    ``terminal_reason`` ("completed", "api_error", "max_turns",
    "budget_exhausted") and ``permission_denials``.
  * Start-up: ~0.45-0.7 s from spawn to the first API request, ~0.5-1.0 s
    for a whole one-turn run; ``claude --version`` 10 ms.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

from agenthome import agent_environment

JSON = dict[str, Any]

ReplyKind = Literal["text", "tool_use", "error", "hang", "broken", "stream_error"]

DEFAULT_MODEL = "claude-opus-5-5"


def mcp_tool(server: str, tool: str) -> str:
    """The name claude gives a tool of an MCP server (``--mcp-config``): ``mcp__<server>__<tool>``.

    Observed with 2.1.329: a configured server's tools are not sent in the request's ``tools``
    (they are deferred behind ``ToolSearch``), yet a ``tool_use`` block naming one is run, when
    ``--allowedTools mcp__<server>`` (or a permission mode) allows it; its ``tool_result`` is
    the text the server answered (``is_error`` for a tool error)."""
    return f"mcp__{server}__{tool}"


@dataclass(frozen=True)
class ToolCall:
    """One ``tool_use`` block (an MCP server's tool: ``mcp_tool(server, tool)`` as its name)."""

    name: str
    input: Mapping[str, Any]
    id: str | None = None  # generated ("toolu_fake_<n>") when None


@dataclass(frozen=True)
class Reply:
    """One scripted answer to a main-agent ``POST /v1/messages``.

    kind:
      * ``"text"``: an assistant message with ``text`` (stop_reason end_turn).
      * ``"tool_use"``: optional ``text`` then ``tool_calls`` (stop_reason tool_use).
      * ``"error"``: HTTP ``status`` with JSON ``body`` (Anthropic error envelope
        built from ``error_type``/``text`` when ``body`` is None) and ``headers``.
      * ``"hang"``: 200 + SSE ``message_start``, then silence for ``hang_seconds``
        (or until the server closes), then the connection is dropped.
      * ``"broken"``: 200 + SSE ``message_start`` + half a text block, then the
        connection is dropped without ``message_stop``.
      * ``"stream_error"``: 200 + SSE ``message_start`` then an SSE ``error``
        event (``error_type``/``text``), as the real API does mid-stream.

    Use the classmethod constructors rather than the raw fields.
    """

    kind: ReplyKind = "text"
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    status: int = 200
    error_type: str = "api_error"
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    hang_seconds: float = 0.0
    stop_reason: str | None = None  # override the natural stop_reason
    input_tokens: int = 100  # the request's whole input, ``cached_tokens`` of it read from a cache
    output_tokens: int = 20
    cached_tokens: int = 0  # each dialect words it as its API does (Anthropic's input_tokens leave them out)
    thought_tokens: int = 0  # the model's thinking, billed as output beside output_tokens (Gemini's thoughtsTokenCount)
    delay_seconds: float = 0.0  # sleep before answering at all
    chunk_seconds: float = 0.0  # sleep before each streamed text chunk: a long, slow generation

    # ---- constructors -------------------------------------------------
    @classmethod
    def say(cls, text: str, **kw: Any) -> Reply:
        return cls(kind="text", text=text, **kw)

    @classmethod
    def tool(
        cls,
        name: str,
        input: Mapping[str, Any],
        *,
        text: str = "",
        id: str | None = None,
        **kw: Any,
    ) -> Reply:
        return cls(kind="tool_use", text=text, tool_calls=(ToolCall(name, input, id),), **kw)

    @classmethod
    def tools(cls, calls: Sequence[ToolCall], *, text: str = "", **kw: Any) -> Reply:
        return cls(kind="tool_use", text=text, tool_calls=tuple(calls), **kw)

    @classmethod
    def error(
        cls,
        status: int,
        error_type: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Reply:
        return cls(
            kind="error",
            status=status,
            error_type=error_type,
            text=message,
            headers=dict(headers or {}),
            body=body,
        )

    @classmethod
    def auth_error(cls) -> Reply:
        return cls.error(401, "authentication_error", "invalid x-api-key")

    @classmethod
    def rate_limited(cls, retry_after: int = 1) -> Reply:
        return cls.error(
            429,
            "rate_limit_error",
            "This request would exceed your account's rate limit. Please try again later.",
            headers={"retry-after": str(retry_after)},
        )

    @classmethod
    def overloaded(cls) -> Reply:
        return cls.error(529, "overloaded_error", "Overloaded")

    @classmethod
    def usage_limit(cls, resets_at: int, claim: str = "five_hour") -> Reply:
        """429 as sent to a subscriber whose plan limit is exhausted."""
        return cls.error(
            429,
            "rate_limit_error",
            "This request would exceed your account's rate limit. Please try again later.",
            headers={
                "anthropic-ratelimit-unified-status": "rejected",
                "anthropic-ratelimit-unified-reset": str(resets_at),
                "anthropic-ratelimit-unified-representative-claim": claim,
            },
        )

    @classmethod
    def hang(cls, seconds: float) -> Reply:
        return cls(kind="hang", hang_seconds=seconds)

    @classmethod
    def broken(cls) -> Reply:
        return cls(kind="broken")

    @classmethod
    def stream_error(cls, error_type: str = "overloaded_error", message: str = "Overloaded") -> Reply:
        return cls(kind="stream_error", error_type=error_type, text=message)

    # ---- helpers ------------------------------------------------------
    def error_body(self) -> Mapping[str, Any]:
        if self.body is not None:
            return self.body
        return {
            "type": "error",
            "error": {"type": self.error_type, "message": self.text},
            "request_id": "req_fake",
        }


SIDE_REPLY_TEXT = "ok"


class RequestLimit:
    """What the fake's limits of requests share: a lock, the times of the requests each let
    through (``admitted``) and refused (``rejected``), and the 429 a refused one gets.

    ``take(now)`` is asked once for every ``POST /v1/messages``, side calls too (the API counts
    every request): 0.0 lets it through, else the seconds until one would be let through, which
    the 429's ``retry-after`` says in whole seconds (at least 1), as the Messages API does. A
    refused request is counted against nothing and does not reach the script. Each shape is a
    subclass: :class:`RateLimit` (a token bucket), :class:`SlidingWindow`, :class:`FixedWindow`.
    ``now`` is the shape's ``clock`` (``time.monotonic`` unless it says otherwise).
    """

    shape = "limit"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.admitted: list[float] = []
        self.rejected: list[float] = []

    def clock(self) -> float:
        return time.monotonic()

    def take(self, now: float | None = None) -> float:
        """0.0 when the request may pass (it is counted), else seconds until one may."""
        now = self.clock() if now is None else now
        with self._lock:
            wait = self._wait(now)
            (self.rejected if wait > 0 else self.admitted).append(now)
            return max(0.0, wait)

    def _wait(self, now: float) -> float:
        """Under the lock: count the request and return 0.0, or return the seconds to wait."""
        raise NotImplementedError

    def _replenished(self, now: float) -> float:
        """Under the lock: seconds from ``now`` until the limit is whole again (the API's
        ``anthropic-ratelimit-requests-reset``)."""
        raise NotImplementedError

    @property
    def limit(self) -> float:
        """The requests the limit admits in its period (``anthropic-ratelimit-requests-limit``)."""
        raise NotImplementedError

    @property
    def words(self) -> str:
        """The limit as the API's message words it."""
        raise NotImplementedError

    def side_reply(self, body: JSON) -> Reply:
        """The answer to a side call (one ``classify`` tells from the agent's turns)."""
        return Reply.say(SIDE_REPLY_TEXT, input_tokens=10, output_tokens=1)

    def refusal(self, wait: float) -> Reply:
        """The 429 the API sends a request beyond the limit, ``wait`` seconds before one may pass."""
        now = self.clock()
        with self._lock:
            whole = max(wait, self._replenished(now))
        reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(math.ceil(time.time() + whole - 0.001)))
        return Reply.error(
            429,
            "rate_limit_error",
            f"This request would exceed the rate limit for your organization of {self.words}. Please try again later.",
            headers={
                "retry-after": str(max(1, math.ceil(wait))),
                "anthropic-ratelimit-requests-limit": f"{self.limit:g}",
                "anthropic-ratelimit-requests-remaining": "0",
                "anthropic-ratelimit-requests-reset": reset,
            },
        )


class RateLimit(RequestLimit):
    """A token bucket over ``POST /v1/messages``, as the Messages API limits requests a minute.

    ``per_minute`` tokens a minute, refilled continuously, at most ``burst`` held (the API's
    bucket holds a minute's worth; a smaller one makes the limit bind from the first seconds).
    Each request takes one token; one that finds none is refused (``RequestLimit``), its
    ``retry-after`` the time until a token is there.
    """

    shape = "bucket"

    def __init__(self, per_minute: float, *, burst: float | None = None) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        super().__init__()
        self.per_minute = per_minute
        self.burst = float(burst if burst is not None else per_minute)
        self._tokens = self.burst
        self._at: float | None = None

    def _refill(self, now: float) -> None:
        if self._at is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.per_minute / 60.0)
        self._at = now

    def _wait(self, now: float) -> float:
        self._refill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) * 60.0 / self.per_minute

    def _replenished(self, now: float) -> float:
        self._refill(now)
        return (self.burst - self._tokens) * 60.0 / self.per_minute

    @property
    def limit(self) -> float:
        return self.per_minute

    @property
    def words(self) -> str:
        return f"{self.per_minute:g} requests per minute"


class SlidingWindow(RequestLimit):
    """At most ``limit`` requests in any trailing ``seconds``: a request is let through when fewer
    than ``limit`` were in the ``seconds`` before it; a refused one's ``retry-after`` is the time
    until the oldest of those leaves the window. It lets ``limit`` through at once, then nothing
    until they age out."""

    shape = "sliding"

    def __init__(self, limit: int, seconds: float) -> None:
        if limit < 1 or seconds <= 0:
            raise ValueError("limit must be at least 1 and seconds positive")
        super().__init__()
        self.count = limit
        self.seconds = seconds
        self._inside: collections.deque[float] = collections.deque()  # admitted, oldest first

    def _age(self, now: float) -> None:
        while self._inside and self._inside[0] <= now - self.seconds:
            self._inside.popleft()

    def _wait(self, now: float) -> float:
        self._age(now)
        if len(self._inside) < self.count:
            self._inside.append(now)
            return 0.0
        return self._inside[0] + self.seconds - now

    def _replenished(self, now: float) -> float:
        self._age(now)
        return self._inside[-1] + self.seconds - now if self._inside else 0.0

    @property
    def limit(self) -> float:
        return self.count

    @property
    def words(self) -> str:
        return f"{self.count} requests per {self.seconds:g} seconds"


class FixedWindow(RequestLimit):
    """At most ``limit`` requests in each window of ``seconds`` of the clock (by default each
    clock minute, as a vendor counting requests a minute does), the count starting afresh at each
    window's start; a refused request's ``retry-after`` is the time to the next window. It lets
    ``limit`` through at once, and twice that across a window's edge.

    Its clock is the wall clock (``time.time``): the windows are the clock's minutes."""

    shape = "fixed"

    def __init__(self, limit: int, seconds: float = 60.0) -> None:
        if limit < 1 or seconds <= 0:
            raise ValueError("limit must be at least 1 and seconds positive")
        super().__init__()
        self.count = limit
        self.seconds = seconds
        self._window: int | None = None  # the window counted in (its start / seconds)
        self._used = 0

    def clock(self) -> float:
        return time.time()

    def _wait(self, now: float) -> float:
        window = math.floor(now / self.seconds)
        if window != self._window:
            self._window, self._used = window, 0
        if self._used < self.count:
            self._used += 1
            return 0.0
        return (window + 1) * self.seconds - now

    def _replenished(self, now: float) -> float:
        return (math.floor(now / self.seconds) + 1) * self.seconds - now

    @property
    def limit(self) -> float:
        return self.count

    @property
    def words(self) -> str:
        return f"{self.count} requests per {self.seconds:g} seconds"


@dataclass(frozen=True)
class LoggedRequest:
    """One HTTP request received by the fake."""

    method: str
    path: str  # including the query string, e.g. "/v1/messages?beta=true"
    body: JSON | None
    headers: dict[str, str]
    time: float  # time.monotonic() at arrival


def is_side_call(body: Mapping[str, Any]) -> bool:
    """True for claude's auxiliary calls, which must not consume the script.

    Rule: the main agent loop always sends a non-empty ``tools`` list (the
    built-in tools, plus StructuredOutput with --json-schema); the auxiliary
    calls claude makes (title/topic generation, quota probe, ...) send no
    tools.  Caveat: running claude with ``--tools ""`` makes the main call
    look like a side call too; use a callable script that ignores this rule
    (``FakeAnthropic(..., classify=lambda b: False)``) in that case.
    """
    tools = body.get("tools")
    return not tools


class FakeServer:
    """The machinery every vendor's fake shares: a ``ThreadingHTTPServer`` on 127.0.0.1 (an
    OS-chosen port) in a background thread, a script of :class:`Reply` consumed one per main
    call, the requests logged, a :class:`RequestLimit` in front. A vendor's dialect is a subclass:
    its ``post`` routes a request and renders the chosen reply on the :class:`Wire` (its paths,
    JSON and SSE shapes); ``FakeAnthropic`` below, ``fake_openai.FakeOpenAI`` (the Responses
    API, for codex and opencode) and ``fake_gemini.FakeGemini`` (the Gemini API).

    ``script`` is a sequence of :class:`Reply` consumed one per main call (when exhausted, a
    text reply ``"[fakeapi: script exhausted]"`` is sent and recorded in ``errors``), or a
    callable ``body -> Reply`` called for every main call. ``classify(body)`` tells a side call
    (answered "ok", the script untouched) from a main one.
    """

    name = "fakeapi"

    def __init__(
        self,
        script: Sequence[Reply] | Callable[[JSON], Reply],
        *,
        model: str = DEFAULT_MODEL,
        classify: Callable[[Mapping[str, Any]], bool] = is_side_call,
        rate_limit: RequestLimit | None = None,
    ) -> None:
        self._script_fn: Callable[[JSON], Reply] | None
        self._script: list[Reply]
        if callable(script):
            self._script_fn = script
            self._script = []
        else:
            self._script_fn = None
            self._script = list(script)
        self.model = model
        self._classify = classify
        self.requests: list[JSON] = []
        self.main_requests: list[JSON] = []
        self.side_requests: list[JSON] = []
        self.limited: list[JSON] = []  # refused by ``rate_limit``
        self.rate_limit = rate_limit
        self.log: list[LoggedRequest] = []  # every HTTP request, in order
        self.chosen: list[Reply] = []  # the reply chosen for each request, in order
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # ---- lifecycle ----------------------------------------------------
    def start(self) -> Self:
        handler = _make_handler(self)
        server = _QuietServer(("127.0.0.1", 0), handler)
        self._server = server
        port = server.server_address[1]
        self.base_url = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(target=server.serve_forever, name=self.name, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def remaining(self) -> int:
        """Replies of a list script not yet consumed."""
        with self._lock:
            return len(self._script)

    # ---- the dialect ----------------------------------------------------
    def post(self, wire: Wire, path: str, body: JSON | None) -> None:
        """Answer one ``POST`` (``path`` without its query string, which ``wire.query`` holds)."""
        wire.send_json(404, {"error": {"message": f"no such endpoint: {path}"}})

    def get(self, wire: Wire, path: str) -> None:
        """Answer one ``GET``."""
        wire.send_json(200, {})

    def side_reply(self, body: JSON) -> Reply:
        """The answer to a side call (one ``classify`` tells from the agent's turns)."""
        return Reply.say(SIDE_REPLY_TEXT, input_tokens=10, output_tokens=1)

    def refusal(self, wait: float) -> Reply:
        """The 429 this vendor sends when ``rate_limit`` has no token for a request."""
        assert self.rate_limit is not None
        return self.rate_limit.refusal(wait)

    # ---- internals ----------------------------------------------------
    def next_id(self, prefix: str) -> str:
        return f"{prefix}_fake_{next(self._ids):04d}"

    def choose(self, body: JSON) -> Reply:
        reply = self._choose(body)
        with self._lock:
            self.chosen.append(reply)
        return reply

    @property
    def billed(self) -> tuple[int, int]:
        """The input and output tokens of every answer given (side calls included): what the
        vendor would bill, and what the CLI should report."""
        with self._lock:
            answers = [r for r in self.chosen if r.kind in ("text", "tool_use")]
        return sum(r.input_tokens for r in answers), sum(r.output_tokens + r.thought_tokens for r in answers)

    def _choose(self, body: JSON) -> Reply:
        if self.rate_limit is not None:
            wait = self.rate_limit.take()
            if wait > 0:
                with self._lock:
                    self.requests.append(body)
                    self.limited.append(body)
                return self.refusal(wait)
        with self._lock:
            self.requests.append(body)
            if self._classify(body):
                self.side_requests.append(body)
                return self.side_reply(body)
            self.main_requests.append(body)
            if self._script_fn is not None:
                fn = self._script_fn
            elif self._script:
                return self._script.pop(0)
            else:
                self.errors.append("script exhausted")
                return Reply.say("[fakeapi: script exhausted]")
        return fn(body)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if the server is closing."""
        return self._stop.wait(seconds)


class FakeAnthropic(FakeServer):
    """A local fake of ``api.anthropic.com`` for the ``claude`` CLI.

    Usage::

        with FakeAnthropic([Reply.say("hello")]) as api:
            env["ANTHROPIC_BASE_URL"] = api.base_url
            ...
        api.requests        # every JSON body POSTed to /v1/messages
        api.main_requests   # only those that consumed the script

    ``script`` is a sequence of :class:`Reply` consumed one per main-agent
    call (when exhausted, a text reply ``"[fakeapi: script exhausted]"`` is
    sent and recorded in ``errors``), or a callable ``body -> Reply`` called
    for every main-agent call.

    ``rate_limit``: a :class:`RequestLimit` every ``POST /v1/messages`` passes
    first; what it refuses is answered 429 (listed in ``requests`` and
    ``limited``, not in ``main_requests``/``side_requests``).
    """

    def post(self, wire: Wire, path: str, body: JSON | None) -> None:
        if path.endswith("/v1/messages/count_tokens"):
            wire.send_json(200, {"input_tokens": _count_tokens(body or {})})
            return
        if not path.endswith("/v1/messages") or body is None:
            wire.send_json(404, {"type": "error", "error": {"type": "not_found_error", "message": path}})
            return
        reply = self.choose(body)
        if reply.delay_seconds and self.wait(reply.delay_seconds):
            return
        model = str(body.get("model") or self.model)
        _answer_messages(self, wire, reply, model, bool(body.get("stream")))


# ---------------------------------------------------------------------------
# Message rendering


def _usage(input_tokens: int, output_tokens: int, cached: int = 0) -> JSON:
    return {
        "input_tokens": input_tokens - cached,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def _content_blocks(api: FakeServer, reply: Reply) -> list[JSON]:
    blocks: list[JSON] = []
    if reply.text or reply.kind == "text":
        blocks.append({"type": "text", "text": reply.text})
    for call in reply.tool_calls:
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id or api.next_id("toolu"),
                "name": call.name,
                "input": dict(call.input),
            }
        )
    return blocks


def _stop_reason(reply: Reply) -> str:
    if reply.stop_reason is not None:
        return reply.stop_reason
    return "tool_use" if reply.tool_calls else "end_turn"


def render_message(api: FakeServer, reply: Reply, model: str) -> JSON:
    """The non-streaming JSON body for ``reply``."""
    return {
        "id": api.next_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _content_blocks(api, reply),
        "stop_reason": _stop_reason(reply),
        "stop_sequence": None,
        "usage": _usage(reply.input_tokens, reply.output_tokens, reply.cached_tokens),
    }


def _chunks(text: str, size: int = 16) -> Iterator[str]:
    for i in range(0, len(text), size):
        yield text[i : i + size]


def _message_start(api: FakeServer, reply: Reply, model: str) -> JSON:
    return {
        "type": "message_start",
        "message": {
            "id": api.next_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _usage(reply.input_tokens, 1, reply.cached_tokens),
        },
    }


def render_stream(api: FakeServer, reply: Reply, model: str) -> Iterator[tuple[str, JSON]]:
    """The SSE events (name, data) for a successful ``reply``."""
    yield "message_start", _message_start(api, reply, model)
    yield "ping", {"type": "ping"}
    for index, block in enumerate(_content_blocks(api, reply)):
        if block["type"] == "text":
            yield (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            for piece in _chunks(block["text"]):
                yield (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
        else:
            yield (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {
                        "type": "tool_use",
                        "id": block["id"],
                        "name": block["name"],
                        "input": {},
                    },
                },
            )
            for piece in _chunks(json.dumps(block["input"]), 24):
                yield (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    },
                )
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": _stop_reason(reply), "stop_sequence": None},
            "usage": {
                "input_tokens": reply.input_tokens - reply.cached_tokens,
                "output_tokens": reply.output_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": reply.cached_tokens,
            },
        },
    )
    yield "message_stop", {"type": "message_stop"}


def _count_tokens(body: Mapping[str, Any]) -> int:
    return max(1, len(json.dumps(body)) // 4)


# ---------------------------------------------------------------------------
# HTTP handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # claude drops connections (timeouts, exit); that is not a test failure.
        pass


class Wire(BaseHTTPRequestHandler):
    """One request as a dialect answers it: JSON, SSE (named events or bare ``data:`` lines, as
    the Gemini API streams), or nothing (a dropped connection). ``query``: the request's query
    string, parsed."""

    protocol_version = "HTTP/1.1"
    server_version = "fakeapi/1"
    api: FakeServer  # set on the subclass ``_make_handler`` makes
    query: dict[str, list[str]]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- what a dialect writes --
    def send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", "req_fake")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.send_header("request-id", "req_fake")
        self.end_headers()
        self.close_connection = True

    def event(self, name: str | None, data: Any) -> None:
        """One SSE event; ``name`` None: a bare ``data:`` line (the Gemini API's stream)."""
        head = f"event: {name}\n" if name is not None else ""
        self.wfile.write(f"{head}data: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()

    def drop(self) -> None:
        """End the connection without (any more of) an answer."""
        self.close_connection = True

    # -- reading --
    def _read_body(self) -> JSON | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raw = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                raw += self.rfile.read(size)
                self.rfile.readline()
        else:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            parsed = json.loads(raw)
        except ValueError:
            return {"_raw": raw.decode(errors="replace")}
        return parsed if isinstance(parsed, dict) else {"_json": parsed}

    def _log(self, body: JSON | None) -> None:
        entry = LoggedRequest(
            method=self.command,
            path=self.path,
            body=body,
            headers={k.lower(): v for k, v in self.headers.items()},
            time=time.monotonic(),
        )
        with self.api._lock:
            self.api.log.append(entry)

    # -- verbs --
    def do_HEAD(self) -> None:
        self._log(None)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self._log(None)
        parts = urlsplit(self.path)
        self.query = parse_qs(parts.query)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.api.get(self, parts.path.rstrip("/"))

    def do_POST(self) -> None:
        body = self._read_body()
        self._log(body)
        parts = urlsplit(self.path)
        self.query = parse_qs(parts.query)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.api.post(self, parts.path.rstrip("/"), body)


def _make_handler(api: FakeServer) -> type[Wire]:
    return type("Handler", (Wire,), {"api": api})


def _answer_messages(api: FakeServer, wire: Wire, reply: Reply, model: str, stream: bool) -> None:
    """The Messages API's answer: JSON, or its SSE stream."""
    if reply.kind == "error":
        wire.send_json(reply.status, reply.error_body(), reply.headers)
        return
    if not stream:
        # claude's non-streaming fallback (after a stream idle timeout).
        if reply.kind == "hang":
            api.wait(reply.hang_seconds)
            wire.drop()
            return
        if reply.kind == "broken":
            wire.drop()  # drop without any response
            return
        if reply.kind == "stream_error":
            wire.send_json(529, Reply.error(529, reply.error_type, reply.text).error_body())
            return
        wire.send_json(200, render_message(api, reply, model))
        return
    wire.start_sse()
    if reply.kind == "hang":
        wire.event("message_start", _message_start(api, reply, model))
        api.wait(reply.hang_seconds)
        return
    if reply.kind == "broken":
        wire.event("message_start", _message_start(api, reply, model))
        wire.event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
        wire.event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hal"}},
        )
        return
    if reply.kind == "stream_error":
        wire.event("message_start", _message_start(api, reply, model))
        wire.event("error", {"type": "error", "error": {"type": reply.error_type, "message": reply.text}})
        return
    for name, data in render_stream(api, reply, model):
        if reply.chunk_seconds and name == "content_block_delta" and api.wait(reply.chunk_seconds):
            return
        wire.event(name, data)


# ---------------------------------------------------------------------------
# Locating and running the real CLI


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def claude_missing() -> str:
    """Why the claude tests are skipped, and what to do: the reason a skip shows."""
    named = os.environ.get("ORCHESTRATOR_CLAUDE_BIN")
    if named:
        return f"ORCHESTRATOR_CLAUDE_BIN={named} is not an executable: point it at a claude binary, or unset it"
    return (
        "the claude CLI is not installed: run `bash tools/install-claude.sh` (it needs node and npm; it puts "
        "the pinned version in .cache/, where the tests look), or set ORCHESTRATOR_CLAUDE_BIN"
    )


def find_claude() -> str | None:
    """The ``claude`` binary: $ORCHESTRATOR_CLAUDE_BIN, the repo's .cache, PATH."""
    env = os.environ.get("ORCHESTRATOR_CLAUDE_BIN")
    if env:
        return env if os.access(env, os.X_OK) else None
    local = repo_root() / ".cache" / "claude-code" / "node_modules" / ".bin" / "claude"
    if os.access(local, os.X_OK):
        return str(local)
    return shutil.which("claude")


def claude_env(
    base_url: str,
    config_dir: str | os.PathLike[str],
    *,
    auth: Literal["api_key", "oauth"] = "api_key",
    **extra: str,
) -> dict[str, str]:
    """Environment for running the real claude against a fake at ``base_url``.

    Inherited ``ANTHROPIC_*``/``CLAUDE_*`` variables are dropped, and with them what would start
    its Bash tool's shells as the person's do: its ``HOME`` is a directory of its own beside
    ``config_dir`` (``<config_dir>-home``), and no ``BASH_ENV`` and the like reach it
    (``agenthome``).  ``auth="oauth"`` sets ``CLAUDE_CODE_OAUTH_TOKEN`` instead of
    ``ANTHROPIC_API_KEY`` (claude then behaves as a subscriber: usage-limit headers are honoured).
    ``extra`` is added last, e.g. ``CLAUDE_CODE_MAX_RETRIES="0"`` (or a ``HOME`` of the test's).
    """
    config = Path(config_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_", "CLAUDECODE"))}
    env = agent_environment(env, config.parent / f"{config.name}-home")
    env.update(
        ANTHROPIC_BASE_URL=base_url,
        CLAUDE_CONFIG_DIR=str(config_dir),
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
    )
    if auth == "oauth":
        env["CLAUDE_CODE_OAUTH_TOKEN"] = "fake-oauth-token"
    else:
        env["ANTHROPIC_API_KEY"] = "dummy"
    env.update(extra)
    return env


@dataclass
class ClaudeRun:
    """Outcome of one ``claude -p`` process."""

    returncode: int | None  # None: killed by the timeout
    stdout: str
    stderr: str
    seconds: float

    @property
    def events(self) -> list[JSON]:
        """The stream-json lines that parse as JSON objects."""
        out: list[JSON] = []
        for line in self.stdout.splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if isinstance(ev, dict):
                out.append(ev)
        return out

    @property
    def result(self) -> JSON | None:
        """The last ``{"type": "result"}`` event."""
        found = [ev for ev in self.events if ev.get("type") == "result"]
        return found[-1] if found else None

    @property
    def init(self) -> JSON | None:
        """The ``system/init`` event."""
        for ev in self.events:
            if ev.get("type") == "system" and ev.get("subtype") == "init":
                return ev
        return None


def run_claude(
    api: FakeAnthropic,
    prompt: str,
    *,
    args: Sequence[str] = (),
    config_dir: str | os.PathLike[str],
    cwd: str | os.PathLike[str],
    auth: Literal["api_key", "oauth"] = "api_key",
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    claude: str | None = None,
) -> ClaudeRun:
    """Run ``claude -p --output-format stream-json --verbose ARGS`` (prompt on
    stdin) against ``api``; kill it after ``timeout`` seconds."""
    binary = claude or find_claude()
    if binary is None:
        raise FileNotFoundError(claude_missing())
    cmd = [binary, "-p", "--output-format", "stream-json", "--verbose", *args]
    full_env = claude_env(api.base_url, config_dir, auth=auth, **dict(env or {}))
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd=cwd,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(prompt, timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        code = None
    return ClaudeRun(code, out, err, time.monotonic() - t0)


# ---------------------------------------------------------------------------
# Recorded scenarios (tests/fixtures/claude/<name>.jsonl)

SCHEMA_EXAMPLE: JSON = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


@dataclass(frozen=True)
class Scenario:
    """How one fixture was recorded: a script, claude arguments and env."""

    script: Callable[[], list[Reply]]
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    auth: Literal["api_key", "oauth"] = "api_key"
    prompt: str = "Say hello."
    resume: bool = False  # first run a one-turn session, then --resume it
    timeout: float = 60.0


NO_RETRY = {"CLAUDE_CODE_MAX_RETRIES": "0"}

SCENARIOS: dict[str, Scenario] = {
    "success": Scenario(lambda: [Reply.say("Hello from the fake API.")]),
    "tool_roundtrip": Scenario(
        lambda: [
            Reply.tool("Bash", {"command": "echo hi", "description": "Say hi"}),
            Reply.say("The command said hi."),
        ],
        args=("--allowedTools", "Bash"),
    ),
    "auth_401": Scenario(lambda: [Reply.auth_error()], env=NO_RETRY),
    "rate_limit_429": Scenario(lambda: [Reply.rate_limited(retry_after=1)], env=NO_RETRY),
    "overloaded_529": Scenario(lambda: [Reply.overloaded()], env=NO_RETRY),
    "usage_limit": Scenario(
        lambda: [Reply.usage_limit(int(time.time()) + 3600)],
        auth="oauth",
        env=NO_RETRY,
    ),
    "max_turns": Scenario(
        lambda: [Reply.tool("Bash", {"command": "echo hi"}), Reply.say("unreachable")],
        args=("--max-turns", "1"),
    ),
    "max_budget": Scenario(
        lambda: [Reply.tool("Bash", {"command": "echo hi"}, input_tokens=100_000)] * 3 + [Reply.say("unreachable")],
        args=("--max-budget-usd", "0.5"),
    ),
    "structured_output": Scenario(
        lambda: [Reply.tool("StructuredOutput", {"name": "Bob"})],
        args=("--json-schema", json.dumps(SCHEMA_EXAMPLE)),
    ),
    "resume": Scenario(lambda: [Reply.say("Second answer.")], resume=True, prompt="And now?"),
    # A call of a tool the agent was not given: an is_error tool_result "<tool_use_error>Error: No
    # such tool available: Write. ...", NOT in the result's permission_denials (same for a tool in
    # --disallowedTools or a project's permissions.deny).
    "unavailable_tool": Scenario(
        lambda: [
            Reply.tool("Write", {"file_path": "/nowhere/notes.md", "content": "x"}),
            Reply.say("I created the file. Done."),
        ],
        args=("--tools", "Read,Grep,Glob"),
    ),
    # An ordinary tool error (a Read of a missing file): is_error tool_result, no refusal.
    "tool_error": Scenario(
        lambda: [Reply.tool("Read", {"file_path": "missing.txt"}), Reply.say("There is no such file.")],
        args=("--tools", "Read,Grep,Glob"),
    ),
    "retry_then_success": Scenario(lambda: [Reply.overloaded(), Reply.say("Recovered after a retry.")]),
    "stream_idle_timeout": Scenario(
        lambda: [Reply.hang(60)],
        env={
            "CLAUDE_BYTE_STREAM_IDLE_TIMEOUT_MS": "10000",
            "CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK": "1",
            "CLAUDE_CODE_MAX_RETRIES": "0",
        },
    ),
}


def play(name: str, workdir: Path, claude: str | None = None) -> tuple[ClaudeRun, FakeAnthropic]:
    """Run scenario ``name`` with fresh config/cwd dirs under ``workdir``."""
    sc = SCENARIOS[name]
    config_dir, cwd = workdir / "config", workdir / "cwd"
    config_dir.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    args = sc.args
    if sc.resume:
        with FakeAnthropic([Reply.say("First answer.")]) as first_api:
            first = run_claude(first_api, "Remember 42.", config_dir=config_dir, cwd=cwd, claude=claude)
        assert first.result is not None, first.stderr
        args = ("--resume", str(first.result["session_id"]), *args)
    with FakeAnthropic(sc.script()) as api:
        run = run_claude(
            api,
            sc.prompt,
            args=args,
            config_dir=config_dir,
            cwd=cwd,
            auth=sc.auth,
            env=sc.env,
            timeout=sc.timeout,
            claude=claude,
        )
    return run, api


def fixture_path(name: str) -> Path:
    return Path(__file__).resolve().parent / "fixtures" / "claude" / f"{name}.jsonl"


def record(names: Sequence[str] = ()) -> None:
    """Re-record fixtures: ``python tests/fakeapi.py [scenario ...]``."""
    import tempfile

    for name in names or list(SCENARIOS):
        with tempfile.TemporaryDirectory() as tmp:
            run, _ = play(name, Path(tmp))
        path = fixture_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(run.stdout)
        res = run.result or {}
        print(
            f"{name}: rc={run.returncode} {run.seconds:.1f}s subtype={res.get('subtype')} result={res.get('result')!r}"
        )


__all__ = [
    "SCENARIOS",
    "ClaudeRun",
    "FakeAnthropic",
    "FakeServer",
    "FixedWindow",
    "LoggedRequest",
    "RateLimit",
    "Reply",
    "RequestLimit",
    "Scenario",
    "SlidingWindow",
    "ToolCall",
    "Wire",
    "claude_env",
    "find_claude",
    "fixture_path",
    "is_side_call",
    "play",
    "record",
    "render_message",
    "render_stream",
    "repo_root",
    "run_claude",
]


if __name__ == "__main__":
    import sys

    record(sys.argv[1:])
