"""The dashboard as a Starlette application: the page, its assets, the state, the event stream,
a task's files, and the two actions (cancel, retry).

Routes::

    /                          the page (static/index.html)
    /static/...                its CSS and JavaScript, from the package
    /api/state                 the latest state (what the stream starts with)
    /api/live                  the page's server-sent events: "state" (the whole state), "events" (new log lines)
    /api/events                the event log as server-sent events, resumable (``api``)
    /api/openapi.json          the API's OpenAPI document (``openapi``)
    POST /api/tasks, /api/task/{id}/update, /api/runs   add, update, start a run (``api``)
    POST /hooks/github, /hooks/{name}                   webhooks that start runs (``hooks``)
    /api/graph.svg             the task graph, drawn by ``picture``
    /api/task/{id}             a task's brief, result and log tails
    POST /api/task/{id}/cancel what ``orchestrator cancel ID`` does (``run.requests``)
    POST /api/task/{id}/retry  what ``orchestrator retry ID`` does
    POST /api/task/{id}/approve, .../reject
                               what ``orchestrator approve|reject ID`` does; a JSON body
                               ``{"reason": ...}`` is its ``--reason`` (cancel takes one too)
    /api/context/{name}        a file under context/ (discoveries and shares)

``Guard`` stands in front of all of them. Reads: with ``reads_need_token`` (a token was given, or
the host is not loopback), every request must carry the token (the ``token`` query parameter,
which also sets a cookie, or that cookie, or a header as actions send it); without, a request
must name a loopback host, so that a web page elsewhere cannot read the dashboard through DNS
rebinding. Actions (POST) always need the token, in the ``X-Orchestrator-Token`` header or as
``Authorization: Bearer`` (which only the page served from here, having read it from its URL, or
a program given the token, can send), and are refused when ``Origin`` or ``Sec-Fetch-Site`` tell
of another site. The hooks (``/hooks/...``, POST only) are guarded by their signature instead:
GitHub neither knows the token nor names a loopback host. Whatever is refused or malformed (a
NUL, bytes that are not UTF-8, an overlong path) is a 4xx with ``{"ok": false, "error": ...}``:
never a 500.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator import timing
from orchestrator.errors import OrchestratorError
from orchestrator.run.requests import Kind, request
from orchestrator.serve.api import Api, Commands
from orchestrator.serve.board import Board
from orchestrator.serve.hooks import Hooks
from orchestrator.serve.openapi import document
from orchestrator.serve.tailer import Tailer
from orchestrator.state.workspace import Workspace

STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


TOKEN_HEADER = "X-Orchestrator-Token"
HOOKS = "/hooks/"
PATH_LIMIT = 2048  # characters of a request's path: a longer one names nothing the dashboard has


def refusal(status: int, error: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Every answer that is not what was asked: ``{"ok": false, "error": ...}`` and a 4xx."""
    return JSONResponse({"ok": False, "error": error}, status, headers=headers)


def path_problem(path: str) -> str | None:
    """What makes a request's path (percent-decoded) name nothing: a control character (NUL...),
    bytes that are not UTF-8, or a length past ``PATH_LIMIT``; ``None`` for a path to route."""
    if len(path) > PATH_LIMIT:
        return f"the path is {len(path)} characters long: at most {PATH_LIMIT}"
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        return "the path holds a control character (NUL, a newline...)"
    if "\ufffd" in path or any(0xD800 <= ord(c) <= 0xDFFF for c in path):
        return "the path holds bytes that are not UTF-8"
    return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) is this machine only."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard:
    """Every request passes here first: GET, HEAD, and POST for an action; the loopback Host, or
    the token on every request when reads need it; for an action, the token in ``TOKEN_HEADER``
    and no sign of another site (``Origin``, ``Sec-Fetch-Site``); headers that keep the page to
    itself."""

    def __init__(self, app: ASGIApp, token: str, reads_need_token: bool, cookie: str) -> None:
        self.app = app
        self.token = token
        self.reads_need_token = reads_need_token
        self.cookie = cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refused = self._refusal(scope, headers)
        if refused is not None:
            await refused(scope, receive, send)
            return
        set_cookie = self.reads_need_token and self._from_query(scope) == self.token

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    out.setdefault(name, value)
                if set_cookie:
                    out.append("set-cookie", f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict")
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope, headers: Headers) -> Response | None:
        method = scope["method"]
        path = scope.get("path", "")
        if path.startswith(HOOKS):  # (signed: hooks.verify)
            if method != "POST":
                return refusal(405, "a hook takes POST only", headers={"allow": "POST"})
            problem = path_problem(path)
            return refusal(400, problem) if problem is not None else None
        if method not in ("GET", "HEAD", "POST"):
            return refusal(405, f"{method} is not a method of the dashboard", headers={"allow": "GET, HEAD, POST"})
        if not self.reads_need_token and not is_loopback(_host_name(headers.get("host", ""))):
            return refusal(403, "this dashboard answers only to a loopback host name")
        if method == "POST":
            problem = self._action_problem(headers)
            if problem is not None:
                return refusal(403, problem)
        elif self.reads_need_token and not self._matches(
            self._from_query(scope) or self._from_header(headers) or self._from_cookie(headers)
        ):
            return refusal(401, "a token is needed: open the URL `orchestrator serve` printed (it ends in ?token=...)")
        problem = path_problem(scope.get("path", ""))
        return refusal(400, problem) if problem is not None else None

    def _matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def _action_problem(self, headers: Headers) -> str | None:
        """Why an action is refused: sent from another site (a page elsewhere may post to
        loopback), or without the token, which only the page served from here knows."""
        site = headers.get("sec-fetch-site")
        origin = headers.get("origin")
        if (site is not None and site != "same-origin") or (
            origin is not None and origin != f"http://{headers.get('host', '')}"
        ):
            return "a request from another site: actions are taken only from the dashboard's own page"
        if not self._matches(self._from_header(headers)):
            return (
                f"an action needs the dashboard's token in the {TOKEN_HEADER} header (or Authorization: Bearer): "
                "open the URL "
                "`orchestrator serve` printed (it ends in ?token=...)"
            )
        return None

    @staticmethod
    def _from_header(headers: Headers) -> str | None:
        """The token as a program sends it: ``X-Orchestrator-Token``, or ``Authorization: Bearer``."""
        given = headers.get(TOKEN_HEADER)
        if given is None:
            scheme, _, value = headers.get("authorization", "").partition(" ")
            given = value.strip() if scheme.lower() == "bearer" and value.strip() else None
        return given

    @staticmethod
    def _from_query(scope: Scope) -> str | None:
        values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
        return values[-1] if values else None

    def _from_cookie(self, headers: Headers) -> str | None:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(headers.get("cookie", ""))
        except CookieError:
            return None
        morsel = jar.get(self.cookie)
        return morsel.value if morsel is not None else None


class Stopping:
    """Set by the server's signal handler (plain code between two bytecodes: no lock, no loop
    call), read by every open stream once a second."""

    def __init__(self) -> None:
        self.value = False

    def set(self) -> None:
        self.value = True

    def is_set(self) -> bool:
        return self.value


def build_app(
    workspace: Workspace,
    *,
    token: str,
    reads_need_token: bool = False,
    cookie: str = "orchestrator_token",
    commands: Commands | None = None,
    webhook_secret: bytes | None = None,
) -> Starlette:
    """The dashboard of ``workspace``; its actions need ``token`` (and so does every request when
    ``reads_need_token``). ``commands``: what the API's routes call (``cli/serve``; without, they
    answer 404); ``webhook_secret``: what the hooks' signatures are made with (without, hooks are
    off). ``app.state.tailer`` follows its events while the application's lifespan lasts;
    ``app.state.stopping`` (set by the server on a signal) ends every open stream."""
    board = Board(workspace)
    tailer = Tailer(board)
    stopping = Stopping()
    api = Api(board, commands, stopping.is_set, document(commands.schema if commands is not None else None))
    hooks = Hooks(board, commands, webhook_secret)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await tailer.start()
        async with anyio.create_task_group() as group:
            group.start_soon(tailer.run)
            yield
            tailer.stop()
            group.cancel_scope.cancel()

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    async def state(request: Request) -> Response:
        return Response(tailer.latest.data, media_type="application/json")

    async def graph(request: Request) -> Response:
        return Response(await anyio.to_thread.run_sync(board.svg), media_type="image/svg+xml")

    async def task(request: Request) -> Response:
        found = await anyio.to_thread.run_sync(board.task_files, request.path_params["task_id"])
        if found is None:
            return refusal(404, "no such task in the plan")
        return JSONResponse(found)

    async def context(request: Request) -> Response:
        found = await anyio.to_thread.run_sync(board.context_file, request.path_params["name"])
        if found is None:
            return refusal(404, "no such file under context/")
        return JSONResponse(found)

    async def act(request: Request) -> Response:
        kind = request.url.path.rsplit("/", 1)[1]
        reason = await _reason(request)
        return await anyio.to_thread.run_sync(_act, workspace, request.path_params["task_id"], ACTIONS[kind], reason)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return refusal(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))

    async def live(request: Request) -> Response:
        return StreamingResponse(
            _stream(tailer, stopping.is_set),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/state", state),
            Route("/api/live", live),
            *api.routes(),
            Route("/api/graph.svg", graph),
            Route("/api/task/{task_id}", task),
            *(Route(f"/api/task/{{task_id}}/{kind}", act, methods=["POST"]) for kind in ACTIONS),
            Route("/api/context/{name:path}", context),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
            *hooks.routes(),
        ],
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
    )
    app.add_middleware(Guard, token=token, reads_need_token=reads_need_token, cookie=cookie)
    app.state.tailer = tailer
    app.state.stopping = stopping
    return app


# What the page's buttons do: each is what the CLI command of its name does, through the same
# function (``run.requests.request``; ``run.decisions.decide`` for a gate's approve and reject).
ACTIONS: dict[str, str] = {"cancel": "cancel", "retry": "retry", "approve": "approve", "reject": "reject"}
CANCEL_REASON = "cancelled from the dashboard"
REASON_BYTES = 8 * 1024  # of an action's body: a reason is a line, not a document


async def _reason(request: Request) -> str | None:
    """The ``reason`` an action's JSON body gives (the page asks for one at Reject), on one line
    with single spaces as ``orchestrator reject --reason`` makes it; ``None`` for none.
    A body too big or not ``{"reason": "..."}``: an ``HTTPException`` (413, 400)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > REASON_BYTES:
            raise HTTPException(413, f"the body is over {REASON_BYTES} bytes: a reason is one line")
    if not body.strip():
        return None
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    reason = data.get("reason") if isinstance(data, dict) else 0
    if not isinstance(reason, str | None):
        raise HTTPException(400, 'an action\'s body is JSON: {"reason": "why"}')
    printable = "".join(c if c.isprintable() else " " for c in reason or "")  # (a NUL, an escape: never kept)
    return " ".join(printable.split()) or None


def _act(workspace: Workspace, task_id: str, kind: str, reason: str | None = None) -> Response:
    """``orchestrator cancel``, ``retry``, ``approve`` or ``reject`` of ``task_id`` (with its
    ``--reason``), answered as JSON: 200 when done, 409 when refused (``error`` says why), 404 for
    a task the plan does not have."""
    from orchestrator.run.decisions import decide

    try:
        plan = workspace.load_plan()
        task = plan.tasks.get(task_id)
        if task is None:
            return refusal(404, f"no task {task_id} in the plan")
        if kind in ("approve", "reject"):
            answer = decide(
                workspace,
                plan,
                task,
                kind == "approve",
                reason or ("approved from the dashboard" if kind == "approve" else "rejected from the dashboard"),
            )
        else:
            asked: Kind = "cancel" if kind == "cancel" else "retry"
            answer = request(workspace, plan, task, asked, (reason or CANCEL_REASON) if kind == "cancel" else None)
    except OrchestratorError as exc:
        return refusal(409, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    data = {**answer.as_json(), "said": answer.said, "notes": list(answer.notes)}
    if not answer.ok:
        return JSONResponse({**data, "error": answer.said}, 409)
    return JSONResponse(data)


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
