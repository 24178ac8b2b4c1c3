"""The API's OpenAPI 3.1 document, served at ``/api/openapi.json`` and kept in
``docs/openapi.json`` (``orchestrator serve --openapi`` prints it; a test holds the three equal
and every route of the application in it). The options a route takes are the command's own,
read from its parser (``Commands.schema``): a new option of ``run`` is in the document at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.commands.table import COMMANDS
from orchestrator.version import __version__

TOKEN_HEADER = "X-Orchestrator-Token"
ANY = {"type": "object", "additionalProperties": True}


def _json(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema or ANY}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _refusals(*codes: int) -> dict[str, Any]:
    said = {
        400: "bad input: JSON that is not an object, an option the command does not take, a bad value, a plan "
        "that does not load (`error`: its class, `message`: its line)",
        401: "no token, or a wrong one (a hook: no signature, or a wrong one)",
        403: "an action from another site, or without the token in its header",
        404: "no such task, file or hook (webhooks off: no secret was given)",
        409: "refused for what is: a run going on (`pid`), a task in another state, a delivery taken before",
        413: "a body over 1 MiB",
        422: "a parameter the plan's trigger cannot read from the delivery",
    }
    return {str(code): _json(said[code], _ref("Error")) for code in codes}


def _task_id() -> list[dict[str, Any]]:
    return [{"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}]


def _post(summary: str, body: str | None, ok: dict[str, Any], *codes: int, **extra: Any) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": {**ok, **_refusals(400, 401, 403, *codes)}}
    if body is not None:
        operation["requestBody"] = {"required": False, "content": {"application/json": {"schema": _ref(body)}}}
    return {"post": {**operation, **extra}}


def _get(summary: str, ok: dict[str, Any], *codes: int, **extra: Any) -> dict[str, Any]:
    return {"get": {"summary": summary, "responses": {**ok, **_refusals(401, *codes)}, **extra}}


def _sse(description: str) -> dict[str, Any]:
    return {"200": {"description": description, "content": {"text/event-stream": {"schema": {"type": "string"}}}}}


def _action(kind: str, what: str) -> dict[str, Any]:
    return _post(
        f"{what} (`orchestrator {kind} TASK`)",
        None,
        {"200": _json(f"done: what `orchestrator {kind} --json` prints")},
        404,
        409,
        parameters=_task_id(),
    )


def document(schema: Callable[[str], dict[str, Any]] | None = None) -> dict[str, Any]:
    """The document; ``schema(command)``: a command's options as JSON Schema (none: any object)."""
    paths: dict[str, Any] = {**_reading(), **_changing(), **_commands(), **_hooks(), **_links()}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "orchestrator serve",
            "version": __version__,
            "description": "A workspace's dashboard and API: its state, its tasks, the commands that change it, its "
            "event log, and webhooks that start runs. Every refusal is a 4xx (a 5xx: a defect of ours, or a run "
            'it could not reach) with `{"ok": false, "error": CLASS, "message": LINE, "problems": [...], '
            '"exit_code": N}`: the shape the command line\'s `--json` and the MCP tools say an error in.',
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "header": {"type": "apiKey", "in": "header", "name": TOKEN_HEADER},
                "bearer": {"type": "http", "scheme": "bearer"},
                "query": {"type": "apiKey", "in": "query", "name": "token"},
            },
            "schemas": _schemas(schema),
        },
        "security": [{"header": []}, {"bearer": []}, {"query": []}],
    }


def _schemas(schema: Callable[[str], dict[str, Any]] | None) -> dict[str, Any]:
    """The bodies and answers the paths name: an error, a launch, the state, the commands' options."""

    def options(command: str, *, without: tuple[str, ...] = ()) -> dict[str, Any]:
        found: dict[str, Any] = dict(schema(command)) if schema is not None else dict(ANY)
        if without and "properties" in found:
            found["properties"] = {k: v for k, v in found["properties"].items() if k not in without}
            found["required"] = [k for k in found.get("required", []) if k not in without]
        return found

    return {
        "Error": {
            "type": "object",
            "properties": {
                "ok": {"const": False},
                "error": {"type": "string", "description": "its class: UsageError, PlanError, RunGoingOn, Refused..."},
                "message": {"type": "string", "description": "what is wrong, and what to do"},
                "problems": {
                    "type": "array",
                    "description": "a plan's problems, each at its file and line",
                    "items": {
                        "type": "object",
                        "properties": {
                            "file": {"type": "string"},
                            "line": {"type": "integer"},
                            "message": {"type": "string"},
                            "hint": {"type": "string"},
                        },
                    },
                },
                "exit_code": {"type": "integer", "description": "what the command line would exit with"},
                "pid": {"type": "integer", "description": "a run going on: its runner"},
            },
            "required": ["ok", "error", "message"],
        },
        "Launch": {
            "type": "object",
            "properties": {
                "ok": {"const": True},
                "launch": {"type": "string"},
                "pid": {"type": "integer"},
                "log": {"type": "string"},
                "running": {"type": "boolean"},
                "exit_code": {"type": ["integer", "null"]},
            },
        },
        "State": ANY,
        "RunOptions": options("run", without=("directory",)),
        "AddOptions": options("add", without=("directory",)),
        "UpdateOptions": options("update", without=("directory", "task")),
        **{_options_name(name): options(name, without=("directory",)) for name in COMMANDS},
    }


def _options_name(command: str) -> str:
    return "".join(part.title() for part in command.split("_")) + "Arguments"


def _commands() -> dict[str, Any]:
    """Every command another program calls (``commands/table``), at ``/api/commands/NAME``: its options
    as a JSON object, its answer what ``orchestrator NAME --json`` prints, an error in the one shape."""
    paths: dict[str, Any] = {
        "/api/commands/{command}": _post(
            "any command another program calls, by its name: its options as JSON (each command's own path below "
            "names them)",
            None,
            {"200": _json("what `orchestrator COMMAND --json` prints (`run`: 202, started)")},
            404,
            409,
            413,
            parameters=[{"name": "command", "in": "path", "required": True, "schema": {"enum": list(COMMANDS)}}],
        )
    }
    for name, command in COMMANDS.items():
        ok = "202" if name == "run" else "200"
        said = "started in the background: its launch" if name == "run" else f"what `orchestrator {name} --json` prints"
        paths[f"/api/commands/{name}"] = _post(
            f"{command.summary} (`orchestrator {name}`): its options as JSON",
            _options_name(name),
            {ok: _json(said)},
            404,
            409,
            413,
        )
    return paths


def _reading() -> dict[str, Any]:
    """The page, its files, and what reads the workspace."""
    return {
        "/": _get("the dashboard's page", {"200": {"description": "HTML"}}),
        "/static/{path}": _get(
            "the page's CSS and JavaScript",
            {"200": {"description": "a file"}},
            404,
            parameters=[{"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}],
        ),
        "/api/openapi.json": _get("this document", {"200": _json("OpenAPI 3.1")}),
        "/api/state": _get(
            "the workspace's state: `status --json`'s data (every task, counts, cost, schedule, the last run "
            "started from outside in `launched`), the run, the pause, recent events; as the files are when it is "
            "asked (a task just added is in it)",
            {"200": _json("the state", _ref("State"))},
        ),
        "/api/live": _get(
            "the dashboard's own stream: `clock`, `state` (the whole state) and `events` (new events) messages",
            _sse("server-sent events"),
        ),
        "/api/events": _get(
            "the event log (state/events.jsonl) as server-sent events: each message's data one event's JSON as "
            "it is on disk (its keys: docs/events.schema.json, the schema version in `v`), its id the byte "
            "offset past its line; `Last-Event-ID` resumes after it",
            _sse("server-sent events, one per event"),
            400,
            parameters=[
                {"name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "string"}},
                {"name": "last_event_id", "in": "query", "required": False, "schema": {"type": "string"}},
                {"name": "from", "in": "query", "required": False, "schema": {"enum": ["start", "end"]}},
            ],
        ),
        "/api/graph.svg": _get("the task graph", {"200": {"description": "SVG"}}),
        "/api/task/{task_id}": _get(
            "a task's brief, result and the tails of its last attempt's logs",
            {"200": _json("the task's files")},
            404,
            parameters=_task_id(),
        ),
        "/api/context/{name}": _get(
            "a file under context/ (discoveries, shares)",
            {"200": _json("the file")},
            404,
            parameters=[{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
        ),
    }


def _changing() -> dict[str, Any]:
    """The commands that change the workspace: add, update, cancel, retry, approve, reject, run."""
    return {
        "/api/tasks": _post(
            "add a task (`orchestrator add`): its options as JSON",
            "AddOptions",
            {"201": _json("what `orchestrator add --json` prints")},
            409,
            413,
        ),
        "/api/task/{task_id}/update": _post(
            "change a task's row (`orchestrator update TASK`): its options as JSON",
            "UpdateOptions",
            {"200": _json("what `orchestrator update --json` prints")},
            404,
            409,
            413,
            parameters=_task_id(),
        ),
        "/api/task/{task_id}/cancel": _action("cancel", "stop a task, or keep it from starting"),
        "/api/task/{task_id}/retry": _action("retry", "put a failed, skipped or cancelled task back in the queue"),
        "/api/task/{task_id}/approve": _action("approve", "let a task waiting at its approval gate start"),
        "/api/task/{task_id}/reject": _action("reject", "turn down a task waiting at its approval gate"),
        "/api/task/{task_id}/allow": _action(
            "answer", 'allow the question the body names (`{"question": "Q2"}`), or what the task\'s agent asks now'
        ),
        "/api/task/{task_id}/deny": _action(
            "answer", 'deny the question the body names (`{"question": "Q2"}`), or what the task\'s agent asks now'
        ),
        "/api/budget": _post(
            "raise the budget of the run going on, as the dashboard's button does (`orchestrator budget +USD`): "
            '`{"amount": "+5"}`',
            None,
            {"200": _json("done: what `orchestrator budget --json` prints")},
            409,
            413,
        ),
        "/api/runs": _post(
            "start a run in the background (`orchestrator run`): its options as JSON; refused while one goes on",
            "RunOptions",
            {"202": _json("started: its launch id, runner pid and log", _ref("Launch"))},
            409,
            413,
        ),
    }


def _links() -> dict[str, Any]:
    """A notification's links: the signed token in the path is their whole credential."""
    token = [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}]
    gone = {"410": _json("the link expired, or was used: a link answers once", _ref("Error"))}
    refused = {**_refusals(404, 409), "403": _json("not a link this workspace made", _ref("Error")), **gone}
    return {
        "/links/{token}": {
            "get": {
                "summary": "what a notification's link (approve, reject, allow, deny) would do: nothing changes",
                "parameters": token, "security": [],
                "responses": {"200": {"description": "a page with the button that does it (JSON if asked)"}, **refused},
            },
            "post": {
                "summary": "do what the link says, once (as `approve`, `reject` or `answer` do, by `link`)",
                "parameters": token, "security": [],
                "responses": {"200": {"description": "done (JSON if asked: `said`, and a run it started)"}, **refused},
            },
        }
    }  # fmt: skip


def _hooks() -> dict[str, Any]:
    """The webhooks that start runs."""
    hook_headers = [
        {
            "name": "X-Hub-Signature-256",
            "in": "header",
            "required": True,
            "description": "GitHub's exact form: sha256= and the HMAC-SHA256 of the body as 64 lower-case hex digits",
            "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
        },
        {"name": "X-GitHub-Event", "in": "header", "required": True, "schema": {"type": "string"}},
        {"name": "X-GitHub-Delivery", "in": "header", "required": True, "schema": {"type": "string"}},
    ]
    return {
        "/hooks/github": _post(
            "a GitHub webhook delivery: starts a run when the plan's `triggers.github` takes its event",
            None,
            {
                "200": _json("a ping"),
                "202": _json("started (`launch`), or ignored (`ignored`: the plan takes no such event)"),
            },
            404,
            409,
            413,
            422,
            security=[],
            parameters=hook_headers,
        ),
        "/hooks/{name}": _post(
            "a delivery to the hook NAME of the plan's `triggers.hooks`, signed as GitHub signs (its header named "
            "in the plan)",
            None,
            {"202": _json("started (`launch`)")},
            404,
            409,
            413,
            422,
            security=[],
            parameters=[{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
        ),
    }
