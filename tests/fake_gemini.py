"""A fake Gemini API (``generateContent``, ``streamGenerateContent``), for the real ``gemini`` CLI:
the dialect of ``fakeapi.FakeServer`` Google's Generative Language API speaks.

Point gemini at it with ``GOOGLE_GEMINI_BASE_URL=<base_url>``, ``GEMINI_API_KEY`` and a settings
file that selects API-key auth (``tests/agentclis.py``'s ``gemini_env``). Paths are
``POST /v1beta/models/<model>:generateContent`` (one JSON answer),
``:streamGenerateContent?alt=sse`` (``data:`` lines, each a ``GenerateContentResponse`` chunk) and
``:countTokens``.

A :class:`fakeapi.Reply` renders as candidates whose ``content.parts`` hold its text
(``{"text"}``) and its tool calls (``{"functionCall": {"name", "args"}}``), the last chunk with
``finishReason: "STOP"`` and ``usageMetadata`` (``promptTokenCount``, ``candidatesTokenCount``,
``thoughtsTokenCount`` for a reply that thought, ``totalTokenCount``). Errors are Google's
envelope, ``{"error": {"code", "message", "status", "details"}}``; a 429's wait is a
``google.rpc.RetryInfo`` detail (``retryDelay: "2s"``), which is where gemini reads it (not a
header). gemini asks a router which model to use before each answer (a request with no tools and
a JSON answer wanted): that is a side call, answered with the choice of the flash model without
consuming the script.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from fakeapi import JSON, FakeServer, Reply, Wire

DEFAULT_MODEL = "gemini-2.5-pro"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


def google_error(status: int, message: str, code: str, details: list[JSON] | None = None) -> JSON:
    """Google's error envelope."""
    return {"error": {"code": status, "message": message, "status": code, "details": details or []}}


def rate_limited(retry_after: float = 1) -> Reply:
    """A 429 of a per-minute quota: ``RESOURCE_EXHAUSTED`` with a ``RetryInfo`` detail."""
    wait = f"{retry_after:g}s"
    return Reply.error(
        429,
        "RESOURCE_EXHAUSTED",
        "",
        body=google_error(
            429,
            f"You exceeded your current quota, please check your plan and billing details. Please retry in {wait}.",
            "RESOURCE_EXHAUSTED",
            [
                {
                    "@type": QUOTA_FAILURE,
                    "violations": [
                        {
                            "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                            "quotaDimensions": {"location": "global", "model": DEFAULT_MODEL},
                            "quotaValue": "60",
                        }
                    ],
                },
                {"@type": RETRY_INFO, "retryDelay": wait},
            ],
        ),
    )


def quota_exhausted() -> Reply:
    """A 429 of a daily quota, which no wait of seconds lifts (``...PerDay...``: gemini's terminal
    quota error)."""
    return Reply.error(
        429,
        "RESOURCE_EXHAUSTED",
        "",
        body=google_error(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            "RESOURCE_EXHAUSTED",
            [
                {
                    "@type": QUOTA_FAILURE,
                    "violations": [
                        {
                            "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                            "quotaId": "GenerateRequestsPerDayPerProjectPerModel",
                            "quotaDimensions": {"location": "global", "model": DEFAULT_MODEL},
                            "quotaValue": "1000",
                        }
                    ],
                },
            ],
        ),
    )


def server_error() -> Reply:
    return Reply.error(
        500, "INTERNAL", "", body=google_error(500, "An internal error has occurred. Please retry.", "INTERNAL")
    )


class FakeGemini(FakeServer):
    """``POST {base}/v1beta/models/<model>:<method>``."""

    name = "fake_gemini"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("model", DEFAULT_MODEL)
        kwargs.setdefault("classify", is_side_call)
        super().__init__(*args, **kwargs)

    def post(self, wire: Wire, path: str, body: JSON | None) -> None:
        model, _, method = path.rpartition("/")[2].partition(":")
        if method == "countTokens":
            wire.send_json(200, {"totalTokens": max(1, len(json.dumps(body or {})) // 4)})
            return
        if method not in ("generateContent", "streamGenerateContent") or body is None:
            wire.send_json(404, google_error(404, f"no such method: {path}", "NOT_FOUND"))
            return
        reply = self.choose(body)
        if reply.delay_seconds and self.wait(reply.delay_seconds):
            return
        model = model or self.model
        if reply.kind == "error":
            wire.send_json(reply.status, reply.body or google_error(reply.status, reply.text, reply.error_type),
                           reply.headers)  # fmt: skip
            return
        if method == "generateContent":
            if reply.kind in ("hang", "broken"):
                if reply.kind == "hang":
                    self.wait(reply.hang_seconds)
                wire.drop()
                return
            wire.send_json(200, self.answer(reply, model, parts(reply), done=True))
            return
        wire.start_sse()
        if reply.kind == "hang":
            wire.event(None, self.answer(reply, model, [{"text": ""}], done=False))
            self.wait(reply.hang_seconds)
            return
        if reply.kind == "stream_error":
            wire.event(None, google_error(503, reply.text or "The model is overloaded.", "UNAVAILABLE"))
            return
        chunks = list(_chunked(parts(reply)))
        for index, chunk in enumerate(chunks):
            if reply.kind == "broken" and index == 1:
                return  # the first chunk, then the connection is dropped
            if reply.chunk_seconds and index and self.wait(reply.chunk_seconds):
                return
            wire.event(None, self.answer(reply, model, chunk, done=index == len(chunks) - 1))

    def side_reply(self, body: JSON) -> Reply:
        """The router's choice (a JSON answer naming the model kind), or "ok" to anything else."""
        config = body.get("generationConfig") if isinstance(body.get("generationConfig"), dict) else {}
        if isinstance(config, dict) and config.get("responseMimeType") == "application/json":
            choice = {
                "reasoning": "A simple task.",
                "model_choice": "flash",
                "complexity_reasoning": "A simple task.",
                "complexity_score": 10,
            }
            return Reply.say(json.dumps(choice), input_tokens=30, output_tokens=12)
        return super().side_reply(body)

    def answer(self, reply: Reply, model: str, given: list[JSON], *, done: bool) -> JSON:
        candidate: JSON = {"content": {"parts": given, "role": "model"}, "index": 0}
        found: JSON = {"candidates": [candidate], "modelVersion": model, "responseId": self.next_id("resp")}
        if done:
            candidate["finishReason"] = "STOP"
            found["usageMetadata"] = usage(
                reply.input_tokens, reply.output_tokens, reply.cached_tokens, reply.thought_tokens
            )
        return found


def usage(prompt: int, candidates: int, cached: int = 0, thoughts: int = 0) -> JSON:
    """``usageMetadata`` as the API words it: ``totalTokenCount`` holds the thinking
    (``thoughtsTokenCount``, billed as output) that ``candidatesTokenCount`` leaves out."""
    found: JSON = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }
    if cached:
        found["cachedContentTokenCount"] = cached
    if thoughts:
        found["thoughtsTokenCount"] = thoughts
    return found


def parts(reply: Reply) -> list[JSON]:
    found: list[JSON] = [{"text": reply.text}] if reply.text or not reply.tool_calls else []
    found += [{"functionCall": {"name": call.name, "args": dict(call.input)}} for call in reply.tool_calls]
    return found


def _chunked(given: list[JSON], size: int = 16) -> Iterator[list[JSON]]:
    """The parts as the API streams them: a text in pieces, a call whole."""
    for part in given:
        text = part.get("text")
        if isinstance(text, str) and len(text) > size:
            for i in range(0, len(text), size):
                yield [{"text": text[i : i + size]}]
        else:
            yield [part]


def is_side_call(body: Mapping[str, Any]) -> bool:
    """A request with no tools: the model router's, not the agent's turn."""
    return not body.get("tools")


__all__ = ["FakeGemini", "google_error", "quota_exhausted", "rate_limited", "server_error", "usage"]
