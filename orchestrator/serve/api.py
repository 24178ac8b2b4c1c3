"""The dashboard's API for other programs: the commands that change a workspace as routes, a run
started with parameters, and the event log as server-sent events.

Routes (``openapi`` documents them all, served at ``/api/openapi.json``)::

    POST /api/tasks                 add a task: ``orchestrator add``'s options as JSON (201)
    POST /api/task/{id}/update      ``orchestrator update``'s options as JSON
    POST /api/runs                  start a run: ``orchestrator run``'s options as JSON (202); 409
                                    with the runner's ``pid`` while one goes on
    GET  /api/events                ``state/events.jsonl`` as server-sent events, each line's JSON
                                    as it is on disk (docs/events.schema.json: ``state/events``'
                                    records), its ``id`` the byte offset just past it:
                                    ``Last-Event-ID`` resumes after it

A route that changes something calls the command itself (``Commands``, which ``cli/serve``
gives the application: ``cli/agents/invoke`` running the command in-process with ``--json``); its
answer is what the command prints, an error its one line: 400 for bad arguments or a plan that
does not load, 404 for a task the plan does not have, 409 when refused (a run going on, a task
in the wrong state). A body is JSON, an object, at most ``BODY_LIMIT`` bytes (413 past it).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from orchestrator import timing
from orchestrator.errors import Refused
from orchestrator.serve.board import Board

BODY_LIMIT = 1024 * 1024  # bytes of a request's body
READ_LIMIT = 1024 * 1024  # bytes of the event log read at once for a stream


class Answer(Protocol):
    """A command's answer, as the API hands it on: its data, the one line of an error (or of a
    refusal that is not one, as ``approve`` of a task not at its gate), and the HTTP status its
    class maps to (``errors``)."""

    @property
    def code(self) -> int: ...

    @property
    def data(self) -> Any: ...

    @property
    def error(self) -> str | None: ...

    @property
    def http_status(self) -> int: ...


class Commands(Protocol):
    """The commands as the API calls them (``cli/serve.CliCommands``)."""

    def call(self, command: str, arguments: Mapping[str, Any], *, source: str = "api") -> Answer: ...

    def start_run(
        self, arguments: Mapping[str, Any], *, source: str, what: str | None = None, delivery: str | None = None
    ) -> Answer: ...

    def schema(self, command: str) -> dict[str, Any]: ...


async def body_of(request: Request, limit: int = BODY_LIMIT) -> bytes:
    """The request's body, ``Refused`` 413 past ``limit`` bytes (told or counted as it comes)."""
    told = request.headers.get("content-length")
    if told is not None and not (told.isascii() and told.isdigit()):  # (str.isdigit takes "²" too)
        raise Refused(400, "the Content-Length header is not a number")
    if told is not None and int(told) > limit:
        raise Refused(413, f"the body is over {limit} bytes")
    data = bytearray()
    try:
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                raise Refused(413, f"the body is over {limit} bytes")
    except ClientDisconnect:
        raise Refused(400, "the client went away before its body was read") from None
    return bytes(data)


def json_object(
    data: bytes, *, empty_ok: bool = True, send: str = "an object of the command's options"
) -> dict[str, Any]:
    """A body as a JSON object (an empty body: ``{}`` when ``empty_ok``), else ``Refused`` 400
    saying what to ``send`` instead."""
    if not data.strip() and empty_ok:
        return {}
    try:
        found = json.loads(data)
    except (ValueError, RecursionError):
        raise Refused(400, f"the body is not JSON — send {send}") from None
    if not isinstance(found, dict):
        raise Refused(400, f"the body is not a JSON object — send {send}")
    return found


def answered(answer: Answer, *, ok_status: int = 200) -> Response:
    """A command's answer as a response: its data; an error in the one shape every surface says one
    in (``OrchestratorError.as_json``), with the HTTP status of its class."""
    if answer.error is None:
        return JSONResponse(answer.data, ok_status)
    body = dict(answer.data) if isinstance(answer.data, dict) else {"data": answer.data}
    if body.get("error") is None or body.get("ok") is not False or "message" not in body:
        # (a refusal that is no error, as approve of a task not at its gate: its answer, said so)
        body.update(ok=False, error="Refused", message=answer.error, exit_code=answer.code)
        body.setdefault("problems", [])
    return JSONResponse(body, answer.http_status)


def refusal(status: int, error: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Every answer that is not what was asked, in the one shape (``Refused``), with its 4xx."""
    return JSONResponse(Refused(status, error).as_json(), status, headers=headers)


async def refusals(handler: Callable[[], Any]) -> Response:
    try:
        response: Response = await handler()
    except Refused as exc:
        return JSONResponse(exc.as_json(), exc.http_status)
    return response


def start_offset(request: Request, path: os.PathLike[str]) -> int:
    """Where a stream of the event log starts: after ``Last-Event-ID`` (or ``?last_event_id=``), a
    byte offset this server gave as an event's id; else the log's start (``?from=end``: its end)."""
    given = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        size = 0
    if given is None:
        where = request.query_params.get("from", "start")
        if where not in ("start", "end"):
            raise Refused(400, "from: start (the default) or end")
        return size if where == "end" else 0
    if not (given.isascii() and given.isdigit()) or len(given) > 18:  # (str.isdigit takes "²" too)
        raise Refused(400, "Last-Event-ID is not an id this stream gave (a byte offset)")
    offset = int(given)
    if offset > size:
        raise Refused(400, "Last-Event-ID is past the end of the event log (was it replaced?) — reconnect without it")
    if offset > 0:
        with open(path, "rb") as file:
            file.seek(offset - 1)
            if file.read(1) != b"\n":
                raise Refused(400, "Last-Event-ID is not at the end of a line of the event log")
    return offset


async def log_stream(path: os.PathLike[str], offset: int, stopping: Callable[[], bool]) -> AsyncIterator[str]:
    """The event log's lines from ``offset`` on, each as an SSE message whose id is the offset
    past it; a torn or foreign line is skipped (its offset passed all the same). Ends when the
    server stops, or when the log turns shorter than where it is (replaced)."""
    yield "retry: 1000\n\n"
    clock = timing.current()
    quiet = 0.0
    while not stopping():
        try:
            chunk = await anyio.to_thread.run_sync(_read_from, path, offset)
        except FileNotFoundError:
            chunk = b""
        if chunk is None:
            return
        end = chunk.rfind(b"\n") + 1
        if end == 0 and len(chunk) >= READ_LIMIT:  # a line longer than a read: no event, passed over
            offset += len(chunk)
            continue
        messages: list[str] = []
        for line in chunk[:end].splitlines(keepends=True):
            offset += len(line)
            text = line.strip()
            if text.startswith(b"{") and _is_event(text):
                messages.append(f"id: {offset}\ndata: {text.decode('utf-8', errors='replace')}\n\n")
        if messages:
            quiet = 0.0
            yield "".join(messages)
            continue
        await anyio.sleep(clock.serve_poll)
        quiet += clock.serve_poll
        if quiet >= clock.ping:
            quiet = 0.0
            yield ": ping\n\n"


def _read_from(path: os.PathLike[str], offset: int) -> bytes | None:
    """Up to ``READ_LIMIT`` bytes of the log from ``offset``; ``None`` when it is shorter than that."""
    with open(path, "rb") as file:
        if os.fstat(file.fileno()).st_size < offset:
            return None
        file.seek(offset)
        return file.read(READ_LIMIT)


def _is_event(line: bytes) -> bool:
    try:
        found = json.loads(line)
    except ValueError:
        return False
    return isinstance(found, dict) and isinstance(found.get("event"), str)


def event_log(request: Request, path: os.PathLike[str], stopping: Callable[[], bool]) -> Response:
    offset = start_offset(request, path)
    return StreamingResponse(
        log_stream(path, offset, stopping),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


class Api:
    """The API's routes of one server: its workspace's board, the commands, the document."""

    def __init__(
        self, board: Board, commands: Commands | None, stopping: Callable[[], bool], document: dict[str, Any]
    ) -> None:
        self.board = board
        self.commands = commands
        self.stopping = stopping
        self.document = document
        self.lock = anyio.Lock()  # one command at a time: each sees what the one before did

    def routes(self) -> list[Route]:
        return [
            Route("/api/openapi.json", self.openapi),
            Route("/api/events", self.events),
            Route("/api/tasks", self.add, methods=["POST"]),
            Route("/api/task/{task_id}/update", self.update, methods=["POST"]),
            Route("/api/runs", self.run, methods=["POST"]),
            Route("/api/commands/{command}", self.command, methods=["POST"]),
        ]

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(self.document)

    async def events(self, request: Request) -> Response:
        return await refusals(lambda: self._events(request))

    async def _events(self, request: Request) -> Response:
        return event_log(request, self.board.workspace.events_file, self.stopping)

    async def _call(self, command: str, arguments: dict[str, Any]) -> Answer:
        commands = self.commands
        if commands is None:
            raise Refused(404, "this server was started without its commands")

        def call() -> Answer:
            return commands.call(command, arguments)

        async with self.lock:
            return await anyio.to_thread.run_sync(call)

    async def add(self, request: Request) -> Response:
        async def handle() -> Response:
            arguments = json_object(await body_of(request))
            return answered(await self._call("add", arguments), ok_status=201)

        return await refusals(handle)

    async def update(self, request: Request) -> Response:
        async def handle() -> Response:
            arguments = json_object(await body_of(request))
            task = await anyio.to_thread.run_sync(self.board.find, request.path_params["task_id"])
            if task is None:
                raise Refused(404, "no such task in the plan")
            task_id = task.id
            if "task" in arguments:
                raise Refused(400, "the task is the one in the path: leave 'task' out of the body")
            return answered(await self._call("update", {**arguments, "task": task_id}))

        return await refusals(handle)

    async def command(self, request: Request) -> Response:
        """Any command of ``commands/table``: its options the body's JSON object, its answer what its
        ``--json`` prints (``run``: started in the background, 202)."""

        async def handle() -> Response:
            from orchestrator.commands.table import COMMANDS

            name = request.path_params["command"]
            if name not in COMMANDS:
                raise Refused(404, f"no command {str(name)[:60]} — the API's commands: {', '.join(COMMANDS)}")
            arguments = json_object(await body_of(request))
            return answered(await self._call(name, arguments), ok_status=202 if name == "run" else 200)

        return await refusals(handle)

    async def run(self, request: Request) -> Response:
        async def handle() -> Response:
            arguments = json_object(await body_of(request))
            commands = self.commands
            if commands is None:
                raise Refused(404, "this server was started without its commands")

            def start() -> Answer:
                return commands.start_run(arguments, source="api")

            async with self.lock:
                answer = await anyio.to_thread.run_sync(start)
            return answered(answer, ok_status=202)

        return await refusals(handle)
