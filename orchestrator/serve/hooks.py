"""Webhooks that start runs: ``POST /hooks/github`` (GitHub's deliveries) and ``POST /hooks/NAME``
(any sender that signs its body the same way), as the plan's ``triggers`` setting says
(``plan/config/triggers.py``).

A delivery is taken in this order, and each refusal starts nothing and writes nothing:

1. no secret was given to ``serve`` (``--webhook-secret-file``, ``ORCHESTRATOR_WEBHOOK_SECRET``):
   404, hooks are off;
2. a body over ``BODY_LIMIT`` (1 MiB): 413;
3. the signature in GitHub's exact form, ``sha256=`` and the HMAC-SHA256 of the body with the
   secret as 64 lower-case hex digits, compared in constant time (``hmac.compare_digest``):
   missing, in another form or wrong, 401;
4. what the delivery is: GitHub's ``X-GitHub-Event`` and ``X-GitHub-Delivery`` (a hook's
   ``delivery_header``), a JSON object (GitHub's form encoding too); malformed, 400, saying to
   send it with ``Content-Type: application/json``;
5. an ``issue_comment`` whose comment says a word at a gate (``/approve T-04``): taken as
   ``serve/comments`` says, and no run started by it; an event the plan does not take: 202,
   ignored (GitHub's ``ping``: 200);
6. its parameters, rendered from the delivery: one that cannot be read, 422;
7. the run, started in the background (``Commands.start_run``): 202 with its launch; a run going
   on (its ``pid``) or a delivery id taken before, 409.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any
from urllib.parse import parse_qs

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from orchestrator.errors import Refused
from orchestrator.plan.config.triggers import GitHub, Hook, TriggerError, render
from orchestrator.redaction import SECRET_VARIABLE as SECRET_ENV
from orchestrator.run.deliver import followup
from orchestrator.serve import comments
from orchestrator.serve.api import (
    BODY_LIMIT,
    Answer,
    Commands,
    answered,
    body_of,
    json_object,
    refusals,
)
from orchestrator.serve.board import Board
from orchestrator.serve.github import Replies

SIGNATURE = "X-Hub-Signature-256"
_DELIVERY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_EVENT = re.compile(r"^[a-z_]{1,64}$")
_SIGNED = re.compile(r"sha256=[0-9a-f]{64}")  # (a header's form: telling it says nothing of the secret)
JSON = "application/json"


def verify(secret: bytes, body: bytes, given: str | None) -> None:
    """``Refused`` 401 unless ``given`` is the body's HMAC-SHA256 with ``secret`` in GitHub's exact
    form: ``sha256=`` and 64 lower-case hex digits, nothing else (``SHA256=``, upper-case hex or a
    bare digest is no signature GitHub sends), compared in constant time."""
    if not given:
        raise Refused(401, "the delivery is not signed: no signature header — set the webhook's secret")
    if not _SIGNED.fullmatch(given):
        raise Refused(
            401, "the signature is not in GitHub's form: sha256= and the HMAC-SHA256 of the body as 64 lower-case "
            "hex digits"
        )  # fmt: skip
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise Refused(401, "the signature does not match the body: is the webhook's secret the one serve was given?")


def _header(request: Request, name: str, pattern: re.Pattern[str]) -> str:
    value = request.headers.get(name)
    if value is None:
        raise Refused(400, f"no {name} header")
    if not pattern.match(value):
        raise Refused(400, f"the {name} header is not one this hook takes")
    return value


def _payload(request: Request, body: bytes, *, empty_ok: bool) -> dict[str, Any]:
    """The delivery's JSON object (GitHub's ``application/x-www-form-urlencoded``: its ``payload``).
    A body that does not read says to send it with ``Content-Type: application/json``, and as what
    it came when it came as something else (``curl -d`` sends a form)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    came = f" (this one came as {media})" if media else " (this one came with no Content-Type)"
    send = f"a JSON object, with Content-Type: {JSON}" + ("" if media == JSON else came)
    if media == "application/x-www-form-urlencoded":
        try:
            fields = parse_qs(body.decode("utf-8"), strict_parsing=False, max_num_fields=10)
        except (UnicodeDecodeError, ValueError):
            fields = {}
        if "payload" not in fields:
            raise Refused(
                400, "a form-encoded delivery holds its JSON in its payload field, as GitHub's does, and this one "
                f"has none — send the JSON itself, with Content-Type: {JSON} (curl: -H 'Content-Type: {JSON}')"
            )  # fmt: skip
        body = fields["payload"][0].encode()
    return json_object(body, empty_ok=empty_ok, send=send)


class Hooks:
    """The two hook routes of one server: its secret (``None``: hooks are off), the board whose
    plan says what starts a run, and the commands that start it."""

    def __init__(self, board: Board, commands: Commands | None, secret: bytes | None) -> None:
        self.board = board
        self.commands = commands
        self.secret = secret
        self.lock = anyio.Lock()  # one delivery at a time: a run going on is seen by the next
        self.replies = Replies.from_environment()  # (answers on GitHub, with a token)

    def routes(self) -> list[Route]:
        async def github(request: Request) -> Response:
            return await refusals(lambda: self.github(request))

        async def named(request: Request) -> Response:
            return await refusals(lambda: self.named(request))

        return [Route("/hooks/github", github, methods=["POST"]), Route("/hooks/{name}", named, methods=["POST"])]

    async def _body(self, request: Request) -> bytes:
        if self.secret is None or self.commands is None:
            raise Refused(
                404,
                f"webhooks are off: start serve with --webhook-secret-file FILE (or {SECRET_ENV}) to take them",
            )
        return await body_of(request, BODY_LIMIT)

    def _triggers(self) -> Any:
        plan = self.board.plan()
        if plan is None:
            raise Refused(409, f"the plan does not load: {self.board.plan_error} — fix it; nothing was started")
        return plan.settings.triggers

    async def github(self, request: Request) -> Response:
        body = await self._body(request)
        assert self.secret is not None
        verify(self.secret, body, request.headers.get(SIGNATURE))
        event = _header(request, "X-GitHub-Event", _EVENT)
        delivery = _header(request, "X-GitHub-Delivery", _DELIVERY)
        payload = _payload(request, body, empty_ok=False)
        if event == "ping":
            return JSONResponse({"ok": True, "pong": True, "delivery": delivery})
        if event == comments.EVENT:  # (a comment's word at a gate; one that says none: for the triggers)
            word = await self._word(payload, delivery)
            if word is not None:
                return word
        if event in followup.EVENTS:  # (a check on the branch a run delivered: its follow-up, if the plan names one)
            found = await self._failed_check(event, payload, delivery)
            if found is not None:
                return found
        trigger = (await anyio.to_thread.run_sync(self._triggers)).github
        action = payload.get("action")
        what = f"{event} {action}" if isinstance(action, str) else event
        if trigger is None or not trigger.takes(event, action):
            return JSONResponse({"ok": True, "ignored": f"the plan's triggers take no {what}"}, 202)
        return await self._start(trigger, payload, "github", what, delivery)

    async def _failed_check(self, event: str, payload: dict[str, Any], delivery: str) -> Response | None:
        """The run a failed check on the delivered branch starts (``run/deliver/followup``); a check
        that passed, or on another branch: ignored, 202; ``None`` when the plan names no follow-up."""
        plan = await anyio.to_thread.run_sync(self.board.plan)
        task = plan.settings.deliver.on_failed_check if plan is not None and plan.settings.deliver else None
        if plan is None or task is None:
            return None
        failure = followup.failed_check(event, payload)
        branch = followup.branch_of(plan)
        if failure is None or branch not in failure.branches:
            said = "no check failed" if failure is None else f"{failure.name} failed on another branch than {branch}"
            return JSONResponse({"ok": True, "ignored": said}, 202)
        commands = self.commands
        assert commands is not None

        def start() -> Answer:
            what = f"{event} {failure.name} failed"
            return commands.start_run(failure.arguments(task), source="github", what=what, delivery=delivery)

        async with self.lock:
            answer = await anyio.to_thread.run_sync(start)
        return answered(answer, ok_status=202)

    async def _word(self, payload: dict[str, Any], delivery: str) -> Response | None:
        """What a comment's word does (``serve/comments``), or ``None`` when it says none."""
        plan = await anyio.to_thread.run_sync(self.board.plan)
        if plan is None and comments.parse(comments.dig(payload, "comment", "body")) is not None:
            raise Refused(409, f"the plan does not load: {self.board.plan_error} — the comment's word was not taken")
        words = plan.settings.approvals.github if plan is not None else None
        workspace, replies = self.board.workspace, self.replies

        def taken() -> tuple[int, dict[str, Any]] | None:
            return comments.take(workspace, words, payload, delivery, replies)

        async with self.lock:
            found = await anyio.to_thread.run_sync(taken)
        return JSONResponse(found[1], found[0]) if found is not None else None

    async def named(self, request: Request) -> Response:
        body = await self._body(request)
        assert self.secret is not None
        name = request.path_params["name"]
        hook = (await anyio.to_thread.run_sync(self._triggers)).hooks.get(name)
        if hook is None:
            raise Refused(404, "no such hook in the plan's triggers")
        verify(self.secret, body, request.headers.get(hook.header))
        delivery = _header(request, hook.delivery_header, _DELIVERY) if hook.delivery_header else None
        payload = _payload(request, body, empty_ok=True)
        return await self._start(hook, payload, name, None, delivery)

    async def _start(
        self, trigger: GitHub | Hook, payload: dict[str, Any], source: str, what: str | None, delivery: str | None
    ) -> Response:
        """The run a delivery asks for: its parameters' values (each untrusted, ``--untrusted SOURCE``),
        read-only where the trigger's ``access`` says so for this sender (a fork's, unless it says)."""
        try:
            values = render(trigger.params, payload)
        except TriggerError as exc:
            raise Refused(422, str(exc)) from None
        arguments: dict[str, Any] = {"param": [f"{name}={value}" for name, value in values.items()]} if values else {}
        if trigger.access.read_only(payload):
            arguments["read_only"] = True
        commands = self.commands
        assert commands is not None

        def start() -> Answer:
            return commands.start_run(arguments, source=source, what=what, delivery=delivery)

        async with self.lock:
            answer = await anyio.to_thread.run_sync(start)
        if source == "github" and answer.error is None and isinstance(answer.data, dict) and answer.data.get("launch"):
            launch = str(answer.data["launch"])  # (where it came from: its comments may answer its gates)
            await anyio.to_thread.run_sync(comments.remember_origin, self.board.workspace, launch, payload)
        return answered(answer, ok_status=202)


def secret_of(text: str | bytes | None) -> bytes | None:
    """A secret as given (a file's text, or the variable's), its line ending dropped; ``None`` for none."""
    if text is None:
        return None
    raw = text.encode() if isinstance(text, str) else text
    raw = raw.rstrip(b"\r\n")
    return raw or None
