"""Fake Anthropic Messages API for tests (standard library only).

Facts are filled in below after probing the real CLI.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

JSON = dict[str, Any]

ReplyKind = Literal["text", "tool_use", "error", "hang", "broken", "stream_error"]

DEFAULT_MODEL = "claude-sonnet-4-5-20250929"


@dataclass(frozen=True)
class ToolCall:
    """One ``tool_use`` block."""

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
    input_tokens: int = 100
    output_tokens: int = 20
    delay_seconds: float = 0.0  # sleep before answering at all

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


class FakeAnthropic:
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
    """

    def __init__(
        self,
        script: Sequence[Reply] | Callable[[JSON], Reply],
        *,
        model: str = DEFAULT_MODEL,
        classify: Callable[[Mapping[str, Any]], bool] = is_side_call,
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
        self.request_log: list[tuple[str, str, JSON | None]] = []  # (method, path, body)
        self.headers_log: list[dict[str, str]] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # ---- lifecycle ----------------------------------------------------
    def start(self) -> FakeAnthropic:
        handler = _make_handler(self)
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        self._server = server
        port = server.server_address[1]
        self.base_url = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(target=server.serve_forever, name="fakeapi", daemon=True)
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

    def __enter__(self) -> FakeAnthropic:
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

    # ---- internals ----------------------------------------------------
    def next_id(self, prefix: str) -> str:
        return f"{prefix}_fake_{next(self._ids):04d}"

    def choose(self, body: JSON) -> Reply:
        with self._lock:
            self.requests.append(body)
            if self._classify(body):
                self.side_requests.append(body)
                return Reply.say(SIDE_REPLY_TEXT, input_tokens=10, output_tokens=1)
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


# ---------------------------------------------------------------------------
# Message rendering


def _usage(input_tokens: int, output_tokens: int) -> JSON:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def _content_blocks(api: FakeAnthropic, reply: Reply) -> list[JSON]:
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


def render_message(api: FakeAnthropic, reply: Reply, model: str) -> JSON:
    """The non-streaming JSON body for ``reply``."""
    return {
        "id": api.next_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _content_blocks(api, reply),
        "stop_reason": _stop_reason(reply),
        "stop_sequence": None,
        "usage": _usage(reply.input_tokens, reply.output_tokens),
    }


def _chunks(text: str, size: int = 16) -> Iterator[str]:
    for i in range(0, len(text), size):
        yield text[i : i + size]


def _message_start(api: FakeAnthropic, reply: Reply, model: str) -> JSON:
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
            "usage": _usage(reply.input_tokens, 1),
        },
    }


def render_stream(api: FakeAnthropic, reply: Reply, model: str) -> Iterator[tuple[str, JSON]]:
    """The SSE events (name, data) for a successful ``reply``."""
    yield "message_start", _message_start(api, reply, model)
    yield "ping", {"type": "ping"}
    for index, block in enumerate(_content_blocks(api, reply)):
        if block["type"] == "text":
            yield "content_block_start", {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "text", "text": ""},
            }
            for piece in _chunks(block["text"]):
                yield "content_block_delta", {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": piece},
                }
        else:
            yield "content_block_start", {
                "type": "content_block_start",
                "index": index,
                "content_block": {
                    "type": "tool_use",
                    "id": block["id"],
                    "name": block["name"],
                    "input": {},
                },
            }
            for piece in _chunks(json.dumps(block["input"]), 24):
                yield "content_block_delta", {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": piece},
                }
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield "message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": _stop_reason(reply), "stop_sequence": None},
        "usage": {
            "input_tokens": reply.input_tokens,
            "output_tokens": reply.output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }
    yield "message_stop", {"type": "message_stop"}


def _count_tokens(body: Mapping[str, Any]) -> int:
    return max(1, len(json.dumps(body)) // 4)


# ---------------------------------------------------------------------------
# HTTP handler


def _make_handler(api: FakeAnthropic) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "fakeapi/1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        # -- helpers --
        def _send_json(self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] = {}) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("request-id", "req_fake")
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

        def _start_sse(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.send_header("request-id", "req_fake")
            self.end_headers()
            self.close_connection = True

        def _event(self, name: str, data: Mapping[str, Any]) -> None:
            self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()

        def _read_body(self) -> JSON | None:
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
            with api._lock:
                api.request_log.append((self.command, self.path, body))
                api.headers_log.append({k.lower(): v for k, v in self.headers.items()})

        # -- verbs --
        def do_HEAD(self) -> None:  # noqa: N802
            self._log(None)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802
            self._log(None)
            self._send_json(200, {})

        def do_POST(self) -> None:  # noqa: N802
            body = self._read_body()
            self._log(body)
            path = urlsplit(self.path).path.rstrip("/")
            if path.endswith("/v1/messages/count_tokens"):
                self._send_json(200, {"input_tokens": _count_tokens(body or {})})
                return
            if not path.endswith("/v1/messages") or body is None:
                self._send_json(404, {"type": "error", "error": {"type": "not_found_error", "message": path}})
                return
            reply = api.choose(body)
            if reply.delay_seconds and api.wait(reply.delay_seconds):
                return
            model = str(body.get("model") or api.model)
            stream = bool(body.get("stream"))
            try:
                self._answer(reply, model, stream)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _answer(self, reply: Reply, model: str, stream: bool) -> None:
            if reply.kind == "error":
                self._send_json(reply.status, reply.error_body(), reply.headers)
                return
            if not stream:
                if reply.kind in ("hang",):
                    api.wait(reply.hang_seconds)
                    self.close_connection = True
                    return
                if reply.kind in ("broken", "stream_error"):
                    self._send_json(
                        529, Reply.overloaded().error_body()
                    )
                    return
                self._send_json(200, render_message(api, reply, model))
                return
            self._start_sse()
            if reply.kind == "hang":
                self._event("message_start", _message_start(api, reply, model))
                api.wait(reply.hang_seconds)
                return
            if reply.kind == "broken":
                self._event("message_start", _message_start(api, reply, model))
                self._event(
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                )
                self._event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hal"}},
                )
                return
            if reply.kind == "stream_error":
                self._event("message_start", _message_start(api, reply, model))
                self._event("error", {"type": "error", "error": {"type": reply.error_type, "message": reply.text}})
                return
            for name, data in render_stream(api, reply, model):
                self._event(name, data)

    return Handler


# ---------------------------------------------------------------------------
# Locating and running the real CLI


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def find_claude() -> str | None:
    """The ``claude`` binary: $ORCHESTRATOR_CLAUDE_BIN, the repo's .cache, PATH."""
    env = os.environ.get("ORCHESTRATOR_CLAUDE_BIN")
    if env:
        return env if os.access(env, os.X_OK) else None
    local = repo_root() / ".cache" / "claude-code" / "node_modules" / ".bin" / "claude"
    if os.access(local, os.X_OK):
        return str(local)
    return shutil.which("claude")


def claude_env(base_url: str, config_dir: str | os.PathLike[str], **extra: str) -> dict[str, str]:
    """Environment for running the real claude against a fake at ``base_url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_CODE_", "CLAUDECODE"))}
    env.update(
        ANTHROPIC_BASE_URL=base_url,
        ANTHROPIC_API_KEY="dummy",
        CLAUDE_CONFIG_DIR=str(config_dir),
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
    )
    env.update(extra)
    return env


__all__ = [
    "FakeAnthropic",
    "Reply",
    "ToolCall",
    "claude_env",
    "find_claude",
    "is_side_call",
    "render_message",
    "render_stream",
    "repo_root",
    "time",
]
