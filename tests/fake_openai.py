"""A fake OpenAI Responses API (``POST /v1/responses``, streamed), for the real ``codex`` and
``opencode`` CLIs: the dialect of ``fakeapi.FakeServer`` that OpenAI's wire speaks.

Point codex at it with a model provider of its own in ``$CODEX_HOME/config.toml`` (``base_url``
ending ``/v1``, ``wire_api = "responses"``, ``env_key``: :func:`codex_config`), and opencode with
a provider in the project's ``opencode.json`` (``"npm": "@ai-sdk/openai"``, ``options.baseURL``,
the models listed: :func:`opencode_config`). What each CLI sends and makes of the answers is in
``tests/agentclis.py``'s notes.

A :class:`fakeapi.Reply` renders as the API streams it: ``response.created``, then each output
item (``response.output_item.added``, its deltas, ``response.output_item.done``), then
``response.completed`` with ``usage`` (``input_tokens`` holding ``input_tokens_details.
cached_tokens``, ``output_tokens``, ``total_tokens``). A tool call is a ``function_call`` item
(``call_id``, ``name``, ``arguments`` as a JSON string). ``hang``: ``response.created`` then
silence; ``broken``: half a message, then the connection dropped; ``stream_error``: a
``response.failed`` event. Errors are OpenAI's envelope, ``{"error": {"message", "type",
"param", "code"}}``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

from fakeapi import JSON, FakeServer, Reply, Wire

DEFAULT_MODEL = "gpt-5.5"
# Tools codex declares as freeform (``"type": "custom"``): a call of one is a ``custom_tool_call``
# whose ``input`` is the text itself (``ToolCall("apply_patch", {"input": "*** Begin Patch..."})``).
# opencode declares its apply_patch a function (``{"patchText": ...}``): a call given other
# arguments than ``input`` is a function call.
CUSTOM_TOOLS = frozenset({"apply_patch"})


def openai_error(status: int, message: str, *, type: str, code: str | None = None, **extra: Any) -> JSON:
    """OpenAI's error envelope."""
    return {"error": {"message": message, "type": type, "param": None, "code": code, **extra}}


def rate_limited(retry_after: float = 1) -> Reply:
    """A 429 of the per-minute rate limit, as the API sends it: ``retry-after`` (whole seconds)
    and ``retry-after-ms`` headers, the wait in the message too ("Please try again in 1s")."""
    wait = f"{retry_after:g}s"
    return Reply.error(
        429,
        "rate_limit_exceeded",
        "",
        headers={"retry-after": f"{max(0, round(retry_after))}", "retry-after-ms": f"{int(retry_after * 1000)}"},
        body=openai_error(
            429,
            f"Rate limit reached for gpt-5.5 in organization org-fake on requests per min (RPM): Limit 60, "
            f"Used 60, Requested 1. Please try again in {wait}.",
            type="requests",
            code="rate_limit_exceeded",
        ),
    )


def server_error() -> Reply:
    return Reply.error(
        500,
        "server_error",
        "",
        body=openai_error(
            500, "The server had an error while processing your request. Sorry about that!", type="server_error"
        ),
    )


def quota_exceeded() -> Reply:
    """The API's answer to an account out of credit: a 429 no wait lifts (``insufficient_quota``)."""
    return Reply.error(
        429,
        "insufficient_quota",
        "",
        body=openai_error(
            429,
            "You exceeded your current quota, please check your plan and billing details. For more information "
            "on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
            type="insufficient_quota",
            code="insufficient_quota",
        ),
    )


def usage_limit(resets_at: int, plan: str = "plus") -> Reply:
    """ChatGPT's answer to a subscriber past their plan's usage (the ``usage_limit_reached`` error
    codex reads, with ``resets_at`` in epoch seconds)."""
    return Reply.error(
        429,
        "usage_limit_reached",
        "",
        body=openai_error(
            429,
            "The usage limit has been reached",
            type="usage_limit_reached",
            plan_type=plan,
            resets_at=resets_at,
            resets_in_seconds=max(0, resets_at - int(time.time())),
        ),
    )


class FakeOpenAI(FakeServer):
    """``POST {base}/v1/responses``; a request with ``"stream": true`` is answered with SSE, any
    other with the whole response object. A request with no ``tools`` is a side call (opencode
    asks for a session title that way), answered without consuming the script."""

    name = "fake_openai"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("model", DEFAULT_MODEL)
        kwargs.setdefault("classify", is_side_call)
        super().__init__(*args, **kwargs)

    def post(self, wire: Wire, path: str, body: JSON | None) -> None:
        if not path.endswith("/responses") or body is None:
            wire.send_json(404, openai_error(404, f"Invalid URL (POST {path})", type="invalid_request_error"))
            return
        reply = self.choose(body)
        if reply.delay_seconds and self.wait(reply.delay_seconds):
            return
        model = str(body.get("model") or self.model)
        if reply.kind == "error":
            wire.send_json(reply.status, reply.body or openai_error(reply.status, reply.text, type=reply.error_type),
                           reply.headers)  # fmt: skip
            return
        if not body.get("stream"):
            if reply.kind in ("hang", "broken"):
                if reply.kind == "hang":
                    self.wait(reply.hang_seconds)
                wire.drop()
                return
            wire.send_json(200, self.response(reply, model, "completed"))
            return
        wire.start_sse()
        sequence = iter(range(1_000_000))
        response = self.response(reply, model, "in_progress", output=False)
        wire.event(
            "response.created", {"type": "response.created", "sequence_number": next(sequence), "response": response}
        )
        wire.event(
            "response.in_progress",
            {"type": "response.in_progress", "sequence_number": next(sequence), "response": response},
        )
        if reply.kind == "hang":
            self.wait(reply.hang_seconds)
            return
        if reply.kind == "stream_error":
            failed = {**response, "status": "failed", "error": {"code": reply.error_type, "message": reply.text}}
            wire.event(
                "response.failed", {"type": "response.failed", "sequence_number": next(sequence), "response": failed}
            )
            return
        items = self.items(reply)
        for index, item in enumerate(items):
            for name, data in _item_events(item, index):
                if reply.kind == "broken" and name == "response.output_text.done":
                    return  # half a message, then the connection is dropped
                if reply.chunk_seconds and name.endswith(".delta") and self.wait(reply.chunk_seconds):
                    return
                wire.event(name, {"type": name, "sequence_number": next(sequence), **data})
        done = self.response(reply, model, "completed", items=items)
        wire.event(
            "response.completed", {"type": "response.completed", "sequence_number": next(sequence), "response": done}
        )

    def items(self, reply: Reply) -> list[JSON]:
        """The output items of ``reply``: a message with its text, then a ``function_call`` each."""
        items: list[JSON] = []
        if reply.text or not reply.tool_calls:
            items.append(
                {
                    "id": self.next_id("msg"),
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}],
                }
            )
        for call in reply.tool_calls:
            if call.name in CUSTOM_TOOLS and set(call.input) == {"input"}:  # freeform: its input is text
                items.append(
                    {
                        "id": self.next_id("ctc"),
                        "type": "custom_tool_call",
                        "status": "completed",
                        "call_id": call.id or self.next_id("call"),
                        "name": call.name,
                        "input": str(call.input.get("input", "")),
                    }
                )
                continue
            items.append(
                {
                    "id": self.next_id("fc"),
                    "type": "function_call",
                    "status": "completed",
                    "call_id": call.id or self.next_id("call"),
                    "name": call.name,
                    "arguments": json.dumps(dict(call.input)),
                }
            )
        return items

    def response(
        self, reply: Reply, model: str, status: str, *, output: bool = True, items: list[JSON] | None = None
    ) -> JSON:
        """The response object, ``output`` and ``usage`` when it is done."""
        found: JSON = {
            "id": self.next_id("resp"),
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "error": None,
            "incomplete_details": None,
            "model": model,
            "output": (items if items is not None else self.items(reply)) if output else [],
            "usage": None,
        }
        if status == "completed":
            found["usage"] = usage(reply.input_tokens, reply.output_tokens, reply.cached_tokens)
        return found


def usage(input_tokens: int, output_tokens: int, cached: int = 0) -> JSON:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def _chunks(text: str, size: int = 16) -> Iterator[str]:
    for i in range(0, len(text), size):
        yield text[i : i + size]


def _item_events(item: Mapping[str, Any], index: int) -> Iterator[tuple[str, JSON]]:
    """The SSE events that stream one output item."""
    started = {**item, "status": "in_progress"}
    if item["type"] == "message":
        text = item["content"][0]["text"]
        started["content"] = []
        yield "response.output_item.added", {"output_index": index, "item": started}
        where = {"item_id": item["id"], "output_index": index, "content_index": 0}
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        yield "response.content_part.added", {**where, "part": part}
        for piece in _chunks(text):
            yield "response.output_text.delta", {**where, "delta": piece, "logprobs": []}
        yield "response.output_text.done", {**where, "text": text, "logprobs": []}
        yield "response.content_part.done", {**where, "part": {**part, "text": text}}
    elif item["type"] == "custom_tool_call":
        started["input"] = ""
        yield "response.output_item.added", {"output_index": index, "item": started}
        where = {"item_id": item["id"], "output_index": index}
        for piece in _chunks(item["input"], 24):
            yield "response.custom_tool_call_input.delta", {**where, "delta": piece}
        yield "response.custom_tool_call_input.done", {**where, "input": item["input"]}
    else:
        started["arguments"] = ""
        yield "response.output_item.added", {"output_index": index, "item": started}
        where = {"item_id": item["id"], "output_index": index}
        for piece in _chunks(item["arguments"], 24):
            yield "response.function_call_arguments.delta", {**where, "delta": piece}
        yield "response.function_call_arguments.done", {**where, "arguments": item["arguments"]}
    yield "response.output_item.done", {"output_index": index, "item": dict(item)}


def is_side_call(body: Mapping[str, Any]) -> bool:
    """A request with no tools: not the agent's turn (opencode's title of a session)."""
    return not body.get("tools")


__all__ = ["FakeOpenAI", "openai_error", "quota_exceeded", "rate_limited", "server_error", "usage", "usage_limit"]
