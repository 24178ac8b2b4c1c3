"""The dashboard as a Starlette application: the page's routes (``page``: the page, its assets,
the state, its event stream, a task's files, the buttons), the API's (``api``) and the hooks'
(``hooks``), all behind ``Guard``.

Routes::

    /                          the page (static/index.html)
    /static/...                its CSS and JavaScript, from the package
    /api/state                 the latest state (what the stream starts with)
    /api/live                  the page's server-sent events: "state" (the whole state), "events" (new log lines)
    /api/events                the event log as server-sent events, resumable (``api``)
    /api/openapi.json          the API's OpenAPI document (``openapi``)
    POST /api/tasks, /api/task/{id}/update, /api/runs   add, update, start a run (``api``)
    POST /hooks/github, /hooks/{name}                   webhooks that start runs (``hooks``), and
                                                        comments that answer gates (``comments``)
    /links/{token}, POST /links/{token}                 a notification's link: what it does, and doing it (``links``)
    /api/graph.svg             the task graph, drawn by ``picture``
    /api/task/{id}             a task's brief, result and log tails
    POST /api/task/{id}/cancel what ``orchestrator cancel ID`` does (the command itself: ``page.ACTIONS``)
    POST /api/task/{id}/retry  what ``orchestrator retry ID`` does
    POST /api/task/{id}/approve, .../reject
                               what ``orchestrator approve|reject ID`` does; a JSON body
                               ``{"reason": ...}`` is its ``--reason`` (cancel takes one too)
    POST /api/budget           what ``orchestrator budget +USD`` does: ``{"amount": "+5"}`` (the budget's button)
    /api/context/{name}        a file under context/ (discoveries and shares)

``Guard`` stands in front of all of them. Reads: with ``reads_need_token`` (a token was given, or
the host is not loopback), every request must carry the token (the ``token`` query parameter,
which also sets a cookie, or that cookie, or a header as actions send it); without, a request
must name a loopback host, so that a web page elsewhere cannot read the dashboard through DNS
rebinding. Actions (POST) always need the token, in the ``X-Orchestrator-Token`` header or as
``Authorization: Bearer`` (which only the page served from here, having read it from its URL, or
a program given the token, can send), and are refused when ``Origin`` or ``Sec-Fetch-Site`` tell
of another site. The hooks (``/hooks/...``, POST only) are guarded by their signature instead:
GitHub neither knows the token nor names a loopback host. So are the links (``/links/...``, GET to
see, POST to act), by the signed token in their path, which reaches nothing else. Whatever is refused or malformed (a
NUL, bytes that are not UTF-8, an overlong path) is a 4xx with ``{"ok": false, "error": ...}``:
never a 500.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs

import anyio
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.errors import internal
from orchestrator.serve.api import Api, Commands, refusal
from orchestrator.serve.board import Board
from orchestrator.serve.hooks import Hooks
from orchestrator.serve.links import Links
from orchestrator.serve.openapi import document
from orchestrator.serve.page import Page
from orchestrator.serve.tailer import Tailer
from orchestrator.state.workspace import Workspace

SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


TOKEN_HEADER = "X-Orchestrator-Token"
HOOKS = "/hooks/"
LINKS = "/links/"
PATH_LIMIT = 2048  # characters of a request's path: a longer one names nothing the dashboard has


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
        if path.startswith(LINKS):  # (the token in the path is the whole credential: links.check)
            if method not in ("GET", "HEAD", "POST"):
                return refusal(
                    405, "a link takes GET (to see it) and POST (to act)", headers={"allow": "GET, HEAD, POST"}
                )
            problem = path_problem(path)
            return refusal(400, problem) if problem is not None else None
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
    page = Page(board, tailer, stopping.is_set, commands)
    api = Api(board, commands, stopping.is_set, document(commands.schema if commands is not None else None))
    hooks = Hooks(board, commands, webhook_secret)
    links = Links(board)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await tailer.start()
        async with anyio.create_task_group() as group:
            group.start_soon(tailer.run)
            yield
            tailer.stop()
            group.cancel_scope.cancel()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return refusal(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))

    app = Starlette(
        routes=[*page.routes(), *api.routes(), *hooks.routes(), *links.routes()],
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
    )
    app.router.redirect_slashes = False  # (`/api/state//` names nothing: a 404 in JSON, not a 307 to elsewhere)
    app.add_middleware(Guard, token=token, reads_need_token=reads_need_token, cookie=cookie)
    app.add_middleware(Defects, logs=workspace.logs_dir)
    app.state.tailer = tailer
    app.state.stopping = stopping
    return app


class Defects:
    """A defect of ours in a route: one line and a 500 in the one shape every error is said in, its
    traceback kept in the workspace's ``logs/errors.log`` (``errors.internal``), never on the wire
    nor on the server's stderr (Starlette's own handler answers, then raises it again)."""

    def __init__(self, app: ASGIApp, logs: Path) -> None:
        self.app = app
        self.logs = logs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            error = internal(exc, self.logs)
            if not started:  # (once an answer has begun, the connection ends: its log says why)
                await JSONResponse(error.as_json(), error.http_status)(scope, receive, send)
