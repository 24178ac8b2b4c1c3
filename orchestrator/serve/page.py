"""The dashboard's page and what it reads and does: the page and its assets, the state, its own
event stream (``/api/live``), the task graph, a task's files, a file under context/, and the
buttons (cancel, retry, approve, reject, and allow or deny for an agent's question: each the
command of its name, called as the API calls it). ``app`` puts these routes beside the
API's and the hooks', behind its ``Guard``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from orchestrator import timing
from orchestrator.serve.api import Commands, refusal
from orchestrator.serve.board import Board
from orchestrator.serve.tailer import Tailer

STATIC = Path(__file__).parent / "static"
# What the page's buttons do: each calls the command of its name (``commands/changing``), as the
# API and MCP call it.
ACTIONS: dict[str, str] = {
    "cancel": "cancel", "retry": "retry", "approve": "approve", "reject": "reject",
    "allow": "answer", "deny": "answer",  # (``run/inflight/asking.answer``: what its agent asks now)
}  # fmt: skip


class Page:
    """The page's routes, over the workspace's ``board`` and the ``tailer`` that follows its events;
    ``stopping``: whether the server is stopping (every open stream ends)."""

    def __init__(self, board: Board, tailer: Tailer, stopping: Callable[[], bool], commands: Commands | None) -> None:
        self.board = board
        self.tailer = tailer
        self.stopping = stopping
        self.commands = commands  # (what the buttons call: the commands of their names)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.index),
            Route("/api/state", self.state),
            Route("/api/live", self.live),
            Route("/api/graph.svg", self.graph),
            Route("/api/task/{task_id}", self.task),
            *(Route(f"/api/task/{{task_id}}/{kind}", self.act, methods=["POST"]) for kind in ACTIONS),
            Route("/api/budget", self.budget, methods=["POST"]),
            Route("/api/context/{name:path}", self.context),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]

    async def index(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    async def state(self, request: Request) -> Response:
        return Response((await self.tailer.current()).data, media_type="application/json")

    async def graph(self, request: Request) -> Response:
        return Response(await anyio.to_thread.run_sync(self.board.svg), media_type="image/svg+xml")

    async def task(self, request: Request) -> Response:
        found = await anyio.to_thread.run_sync(self.board.task_files, request.path_params["task_id"])
        if found is None:
            return refusal(404, "no such task in the plan")
        return JSONResponse(found)

    async def context(self, request: Request) -> Response:
        found = await anyio.to_thread.run_sync(self.board.context_file, request.path_params["name"])
        if found is None:
            return refusal(404, "no such file under context/")
        return JSONResponse(found)

    async def act(self, request: Request) -> Response:
        kind = request.url.path.rsplit("/", 1)[1]
        reason, question = await _said(request)
        commands, task = self.commands, request.path_params["task_id"]
        if commands is None:
            return refusal(404, "this server was started without its commands")
        return await anyio.to_thread.run_sync(_act, commands, task, kind, reason, question)

    async def budget(self, request: Request) -> Response:
        """The budget's button: ``orchestrator budget +USD`` by the person at this machine (``via``
        dashboard), the amount the body's JSON gives (``{"amount": "+5"}``); 409 when refused."""
        commands = self.commands
        if commands is None:
            return refusal(404, "this server was started without its commands")
        amount = await _amount(request)
        outcome = await anyio.to_thread.run_sync(
            lambda: commands.call("budget", {"amount": amount}, source="dashboard")
        )
        data = dict(outcome.data) if isinstance(outcome.data, dict) else {"data": outcome.data}
        if outcome.error is None:
            return JSONResponse({**data, "ok": True})
        return JSONResponse(
            {**data, "ok": False, "error": outcome.error}, outcome.http_status if outcome.http_status != 400 else 409
        )

    async def live(self, request: Request) -> Response:
        return StreamingResponse(
            _stream(self.tailer, self.stopping),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )


CANCEL_REASON = "cancelled from the dashboard"
REASON_BYTES = 8 * 1024  # of an action's body: a reason is a line, not a document


async def _said(request: Request) -> tuple[str | None, str | None]:
    """The ``reason`` an action's JSON body gives (the page asks for one at Reject), on one line
    with single spaces as ``orchestrator reject --reason`` makes it, and the ``question`` an Allow
    or Deny answers (``Q2``, the one the page shows: ``answer --question``); ``None`` for none.
    A body too big or not ``{"reason": "...", "question": "..."}``: an ``HTTPException`` (413, 400)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > REASON_BYTES:
            raise HTTPException(413, f"the body is over {REASON_BYTES} bytes: a reason is one line")
    if not body.strip():
        return None, None
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    reason = data.get("reason") if isinstance(data, dict) else 0
    question = data.get("question") if isinstance(data, dict) else None
    if not isinstance(reason, str | None) or not isinstance(question, str | None):
        raise HTTPException(400, 'an action\'s body is JSON: {"reason": "why", "question": "Q2"}')
    printable = "".join(c if c.isprintable() else " " for c in reason or "")  # (a NUL, an escape: never kept)
    return " ".join(printable.split()) or None, _question(question)


async def _amount(request: Request) -> str:
    """The ``amount`` the budget button's JSON body gives (``+5``); 400 for none, 413 for a body too big."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > REASON_BYTES:
            raise HTTPException(413, f"the body is over {REASON_BYTES} bytes")
    try:
        data = json.loads(body or b"null")
    except ValueError:
        data = None
    amount = data.get("amount") if isinstance(data, dict) else None
    if not isinstance(amount, str) or not amount.strip():
        raise HTTPException(400, 'the budget\'s body is JSON: {"amount": "+5"}')
    return amount


def _question(given: str | None) -> str | None:
    """The question an Allow or Deny names, read as ``answer --question`` reads it (400 if it is none)."""
    import argparse

    from orchestrator.commands.words import question

    try:
        return question(given) if given else None
    except argparse.ArgumentTypeError as exc:
        raise HTTPException(400, str(exc)) from None


def _act(
    commands: Commands, task_id: str, kind: str, reason: str | None = None, question: str | None = None
) -> Response:
    """``orchestrator cancel``, ``retry``, ``approve``, ``reject`` or ``answer allow|deny`` of
    ``task_id`` (with its ``--reason``; an answer, its ``--question``): the command itself, called
    as the API calls it, by the dashboard (the person at this machine, ``via`` dashboard), so the
    task is named as on the command line (``T-03[2]``: an instance; any case). Answered as JSON:
    200 when done, 409 when refused (``error`` says why), 404 for a task the plan does not have."""
    arguments: dict[str, Any] = {"task": task_id}
    if kind in ("allow", "deny"):
        arguments.update(answer=kind, reason=reason, question=question)
    elif kind in ("approve", "reject"):
        arguments["reason"] = reason or f"{'approved' if kind == 'approve' else 'rejected'} from the dashboard"
    elif kind == "cancel":
        arguments["reason"] = reason or CANCEL_REASON
    outcome = commands.call(ACTIONS[kind], {name: value for name, value in arguments.items() if value is not None},
                            source="dashboard")  # fmt: skip
    data = dict(outcome.data) if isinstance(outcome.data, dict) else {"data": outcome.data}
    if outcome.error is None:
        return JSONResponse(data)
    if data.get("error") == "UsageError" and str(data.get("message", "")).startswith("no task "):
        return refusal(404, outcome.error)
    status = outcome.http_status if outcome.http_status != 400 else 409
    return JSONResponse({**data, "ok": False, "error": outcome.error}, status)


async def _stream(tailer: Tailer, stopping: Callable[[], bool]) -> AsyncIterator[str]:
    """One browser's stream: the latest state, then every message as it comes. Wakes at least
    every ``timing.stream_wake`` seconds to notice that the server is stopping; a comment after
    ``timing.ping`` quiet seconds."""
    receive = tailer.subscribe()
    with receive:
        # The server's clock as the stream opens: the page's clocks tick from it (the state's own
        # ``now`` is when it was built, which may be long before a late page connects).
        clock = json.dumps({"now": datetime.now().astimezone().isoformat(timespec="milliseconds")})
        yield f"retry: 1000\n\nevent: clock\ndata: {clock}\n\n" + tailer.latest.encode()
        quiet = 0.0
        wake = timing.current().stream_wake
        while not stopping():
            message: Any = None
            with anyio.move_on_after(wake):
                try:
                    message = await receive.receive()
                except anyio.EndOfStream:
                    return
            if message is None:
                quiet += wake
                if quiet >= timing.current().ping:
                    quiet = 0.0
                    yield ": ping\n\n"
                continue
            quiet = 0.0
            yield message.encode()
