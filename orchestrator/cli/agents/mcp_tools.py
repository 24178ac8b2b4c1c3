"""The MCP server of ``orchestrator mcp``: a workspace's queue as Model Context Protocol tools and
resources, over stdio, on the official ``mcp`` SDK (its low-level ``Server``: the tools are made
from the commands' parsers at start, not written out by hand).

One tool per command an agent uses (``cli/agents/invoke.COMMANDS``), named as the command, its
arguments the command's options (``commands/table``: one table for the CLI, MCP and HTTP); a call
calls the command's function in-process and answers its data, as text and as structured content;
a command that fails is a tool error whose text is its one line, its structured content the error
in the one shape every surface says it in. An agent's context is no terminal: ``status`` lists the
tasks that need attention unless asked for all, ``list`` a page (``invoke.MCP_DEFAULTS``).
``run`` starts the run in the background and returns at once (``run/launch/background``): ``status``
follows it. The resources are the plan (``orchestrator://plan``), ``final_output.md``
(``orchestrator://final_output``) and every result (``orchestrator://results/<file>``), read
bounded, regular files only, named from a listing (a URI is looked up, never joined to a path).

Calls are taken one at a time, each in a worker thread (a command's own code is synchronous):
what one prints is never another's.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

from orchestrator.cli.agents import invoke
from orchestrator.cli.agents.mcp_wire import claimed
from orchestrator.cli.output import find_workspace
from orchestrator.commands.table import COMMANDS as TABLE
from orchestrator.documents import open_regular
from orchestrator.errors import OrchestratorError
from orchestrator.version import __version__

if TYPE_CHECKING:
    from orchestrator.state.workspace import Workspace

NAME = "orchestrator"
RESOURCE_LIMIT = 1024 * 1024  # bytes of a resource read at most
SCHEME = "orchestrator://"
READ_ONLY = frozenset(name for name, command in TABLE.items() if command.read_only)
DESTRUCTIVE = frozenset(name for name, command in TABLE.items() if command.destructive)
INSTRUCTIONS = (
    "A workspace of orchestrator: a plan of tasks (master_plan.md) run by sub-agents in dependency order. "
    "Queue work with `add` (after: the tasks it waits for), start it with `run` (it returns at once; the run "
    "goes on in the background), follow it with `status`, read a task's answer with `output` and its logs "
    "with `logs`; `approve`/`reject` a task waiting at its gate, `answer` what its agent asks, `cancel`/`retry` "
    "one; `verify` that the event log and results are what the runs wrote. Each tool answers what "
    "`orchestrator COMMAND --json` prints. Resources: the plan, final_output.md, every result."
)
RUN_NOTE = (
    " Here it starts the run in the background and returns at once (its runner's pid and log); "
    "follow it with `status`. Refused while a run goes on (its pid)."
)


def tools(fixed: str | None) -> list[types.Tool]:
    """Every tool, its input schema read from its command's parser."""
    found: list[types.Tool] = []
    for command in invoke.COMMANDS:
        description = invoke.description(command) + (RUN_NOTE if command == "run" else "")
        found.append(
            types.Tool(
                name=command,
                description=description,
                input_schema=invoke.schema(command, directory=fixed is None, defaults=invoke.MCP_DEFAULTS.get(command)),
                annotations=types.ToolAnnotations(
                    read_only_hint=command in READ_ONLY,
                    destructive_hint=command in DESTRUCTIVE,
                    open_world_hint=False,
                ),
            )
        )
    return found


def answer(outcome: invoke.Outcome) -> types.CallToolResult:
    """A command's outcome as a tool's result: its JSON, or (an error) its one line."""
    structured = outcome.data if isinstance(outcome.data, dict) else {"items": outcome.data}
    if outcome.error is not None:
        return types.CallToolResult(
            content=[types.TextContent(text=outcome.error)], structured_content=structured, is_error=True
        )
    text = json.dumps(outcome.data, ensure_ascii=False, default=str)
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=structured)


class Resources:
    """The workspace's files an MCP client may read: the plan, final_output.md, the results."""

    def __init__(self, fixed: str | None) -> None:
        self.fixed = fixed

    def workspace(self) -> Workspace | None:
        try:
            return find_workspace(self.fixed)
        except OrchestratorError:
            return None

    def listed(self) -> Iterator[tuple[str, str, Path, str]]:
        """``(uri, name, path, description)`` of every resource there is now."""
        workspace = self.workspace()
        if workspace is None:
            return
        yield f"{SCHEME}plan", "master_plan.md", workspace.plan_file, "the plan: its settings and task table"
        final = workspace.root / "final_output.md"
        if final.is_file():
            yield f"{SCHEME}final_output", "final_output.md", final, "every completed task's result, aggregated"
        if workspace.results_dir.is_dir():
            for path in sorted(workspace.results_dir.glob("*-result.md")):
                yield f"{SCHEME}results/{path.name}", path.name, path, "a task's result: frontmatter and answer"

    def list(self) -> list[types.Resource]:
        return [
            types.Resource(uri=uri, name=name, description=about, mime_type="text/markdown")
            for uri, name, _, about in self.listed()
        ]

    def read(self, uri: str) -> str:
        """The text of the resource ``uri`` names (at most ``RESOURCE_LIMIT`` bytes); ``MCPError``
        for one there is not (a name is looked up in the listing, never joined to a path)."""
        for listed, _, path, _ in self.listed():
            if listed == uri:
                try:
                    fd = open_regular(path)
                except OSError as exc:
                    raise MCPError(types.INVALID_PARAMS, f"{uri}: cannot be read ({exc.strerror})") from None
                try:
                    data = os.read(fd, RESOURCE_LIMIT)
                finally:
                    os.close(fd)
                return data.decode("utf-8", errors="replace")
        raise MCPError(types.INVALID_PARAMS, f"no resource {uri[:200]} — list them with resources/list")


def build(fixed: str | None) -> Server[Any]:
    """The server; ``fixed``: the workspace every tool uses (else each takes ``directory``)."""
    lock = anyio.Lock()
    resources = Resources(fixed)
    known = tools(fixed)
    # A tool's paths stay in the project: the fixed workspace's (found at each call), or the folder
    # the server was started in (where its client, Claude Code, started it: the project).
    reach = None if fixed is not None else invoke.reach_of(None)

    async def list_tools(ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None) -> Any:
        return types.ListToolsResult(tools=known)

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> Any:
        if params.name not in invoke.COMMANDS:
            text = f"no tool {params.name[:100]} — the tools are: {', '.join(invoke.COMMANDS)}"
            return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)
        arguments = params.arguments or {}
        async with lock:
            try:
                outcome = await anyio.to_thread.run_sync(_call, params.name, arguments, fixed, reach)
            except Exception as exc:  # a defect of ours: said, and the server goes on
                traceback.print_exc(file=sys.stderr)
                text = f"{params.name} failed inside orchestrator: {type(exc).__name__}: {exc}"
                return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)
        return answer(outcome)

    async def list_resources(ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None) -> Any:
        return types.ListResourcesResult(resources=await anyio.to_thread.run_sync(resources.list))

    async def read_resource(ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams) -> Any:
        text = await anyio.to_thread.run_sync(resources.read, params.uri)
        contents = types.TextResourceContents(uri=params.uri, mime_type="text/markdown", text=text)
        return types.ReadResourceResult(contents=[contents])

    return Server(
        NAME,
        version=__version__,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
    )


def _call(command: str, arguments: dict[str, Any], fixed: str | None, reach: Path | None) -> invoke.Outcome:
    return invoke.call(
        command, arguments, fixed=fixed, source="mcp", reach=reach, defaults=invoke.MCP_DEFAULTS.get(command)
    )


def serve(fixed: str | None) -> None:
    """Serve MCP on stdin and stdout until the client closes them (``mcp_wire``: a line that is no
    message is answered with its JSON-RPC error)."""
    from orchestrator.state import memo

    memo.enable()  # (a long-lived process: the files it read are kept while they are the same)
    server = build(fixed)

    async def main() -> None:
        with claimed() as wire:
            async with stdio_server(stdin=cast(Any, wire), stdout=cast(Any, wire)) as (read, write):
                await server.run(read, write, server.create_initialization_options())

    anyio.run(main)
