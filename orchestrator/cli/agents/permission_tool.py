"""``orchestrator mcp --permission-tool``: the MCP server a task with ``ask: true`` gives its claude,
whose ``--permission-prompt-tool`` it is (``backends/claude``). It offers one tool, ``permission``,
and nothing of the queue: the agent it serves reaches no other command through it.

claude calls it with ``{"tool_name", "input", "tool_use_id"}`` for a call its permissions would
ask a person about; the answer is the JSON text claude reads, ``{"behavior": "allow",
"updatedInput": ...}`` or ``{"behavior": "deny", "message": ...}``, given once a person answered
or ``--ask-timeout`` passed (``run/inflight/asking.ask``). Which task and attempt asks is read from the
attempt's environment (``$ORCHESTRATOR_WORKSPACE``, ``$ORCHESTRATOR_TASK_ID``,
``$ORCHESTRATOR_ATTEMPT``), which claude hands its MCP servers; without them every call is denied.
"""

from __future__ import annotations

import json
import os
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server

from orchestrator.backends.claude_permissions import ASK_SERVER, ASK_TOOL
from orchestrator.errors import OrchestratorError
from orchestrator.state.journal import ATTEMPT_MARKS
from orchestrator.version import __version__

SERVER, TOOL = ASK_SERVER, ASK_TOOL
SCHEMA = {
    "type": "object",
    "properties": {
        "tool_name": {"type": "string", "description": "the tool the agent asks to call"},
        "input": {"type": "object", "description": "its input"},
        "tool_use_id": {"type": "string"},
    },
    "required": ["tool_name", "input"],
}
_INPUT_LIMIT = 64 * 1024  # characters of a call's input as JSON, at most: a bigger one is denied unasked


def _denied(message: str) -> types.CallToolResult:
    text = json.dumps({"behavior": "deny", "message": message})
    return types.CallToolResult(content=[types.TextContent(text=text)])


def decide(arguments: dict[str, Any], environment: dict[str, str], timeout: float) -> dict[str, Any]:
    """The answer to one call (blocking until a person answers or ``timeout`` passes)."""
    from orchestrator.run.inflight.asking import agent_message, ask
    from orchestrator.state.workspace import Workspace

    place, task, attempt = (environment.get(name, "") for name in ATTEMPT_MARKS)
    if not place or not task or not attempt.isdigit():
        return {"behavior": "deny", "message": "this permission tool asks for a task orchestrator runs, and none is"}
    tool, given = arguments.get("tool_name"), arguments.get("input")
    if not isinstance(tool, str) or not tool or not isinstance(given, dict):
        return {"behavior": "deny", "message": "a permission question names tool_name and its input"}
    if len(json.dumps(given, default=str)) > _INPUT_LIMIT:
        return {"behavior": "deny", "message": "this call's input is too big to show a person: denied"}
    try:
        workspace = Workspace.find(place)
        return agent_message(ask(workspace, task, int(attempt), tool, given, timeout), given)
    except (OrchestratorError, OSError) as exc:
        return {"behavior": "deny", "message": f"the question could not be asked ({exc}): denied"}


def build(timeout: float) -> Server[Any]:
    """The server: one tool, answered with what a person said within ``timeout`` seconds."""
    tool = types.Tool(
        name=TOOL,
        description="Ask the person running this task whether a tool call beyond the task's access may go ahead.",
        input_schema=SCHEMA,
        annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    environment = dict(os.environ)

    async def list_tools(ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None) -> Any:
        return types.ListToolsResult(tools=[tool])

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> Any:
        if params.name != TOOL:
            return _denied(f"no tool {params.name[:100]}: this server has {TOOL} only")
        arguments = dict(params.arguments or {})
        said = await anyio.to_thread.run_sync(decide, arguments, environment, timeout)
        return types.CallToolResult(content=[types.TextContent(text=json.dumps(said))])

    return Server(SERVER, version=__version__, on_list_tools=list_tools, on_call_tool=call_tool)


def serve(timeout: float) -> None:
    """Serve the permission tool on stdin and stdout until the client closes them."""
    server = build(timeout)

    async def main() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(main)
