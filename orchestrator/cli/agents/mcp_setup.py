"""``orchestrator mcp``: the MCP server on stdio (``cli/agents/mcp_tools``); ``orchestrator install-mcp``:
its entry in a project's ``.mcp.json``, where Claude Code finds MCP servers.

The entry a project keeps is committed with it and used on other machines: it calls the
``orchestrator`` command found on PATH, as the project's copy of the skill does, and no path of
this machine (``--python``: this interpreter, ``<python> -m orchestrator``, for a file kept to
this machine). ``--print`` writes nothing: it prints the entry, for ``claude mcp add-json NAME
'<entry>'``. The other servers of the file are kept as they are; an entry of the same name that
differs is replaced only with ``--force``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from orchestrator.cli.output import Commands, add_command, emit_json
from orchestrator.errors import UsageError
from orchestrator.state import store
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import ExitCode

CONFIG = ".mcp.json"
SERVER = "orchestrator"


def _needs_sdk() -> None:
    if importlib.util.find_spec("mcp") is None:
        raise UsageError(
            "mcp needs the MCP SDK, which a plain install leaves out: pip install 'task-orchestrator[mcp]' "
            "(in a checkout: pip install -e '.[mcp]')"
        )


def cmd_mcp(args: argparse.Namespace) -> int:
    _needs_sdk()
    from orchestrator.cli.agents.mcp_tools import serve

    fixed = str(Workspace.find(args.workspace).root) if args.workspace is not None else None
    serve(fixed)
    return ExitCode.OK


def entry(workspace: str | None, *, python: bool) -> dict[str, Any]:
    """The server's entry as Claude Code's MCP configuration holds it."""
    command = [sys.executable, "-m", "orchestrator"] if python else ["orchestrator"]
    extra = ["--workspace", workspace] if workspace is not None else []
    return {"type": "stdio", "command": command[0], "args": [*command[1:], "mcp", *extra], "env": {}}


def install(project: Path, name: str, wanted: dict[str, Any], *, force: bool) -> tuple[Path, bool]:
    """Write ``wanted`` as server ``name`` into ``project``'s ``.mcp.json``, every other entry kept;
    ``(path, unchanged)``. ``UsageError`` for a file that is not a JSON object, or an entry of that
    name that differs (without ``force``): nothing written."""
    path = project / CONFIG
    config: dict[str, Any] = {}
    if path.exists():
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problem = f"{path}: not readable JSON ({exc})"
            raise UsageError(f"{problem} — fix it or move it aside; nothing was written") from None
        if not isinstance(config, dict) or not isinstance(config.get("mcpServers", {}), dict):
            raise UsageError(f"{path}: not an MCP configuration (an object with mcpServers) — nothing was written")
    servers = config.setdefault("mcpServers", {})
    if servers.get(name) == wanted:
        return path, True
    if name in servers and not force:
        raise UsageError(f"{path} already has a server '{name}' that differs — pass --force to replace it, or --name")
    servers[name] = wanted
    store.write_text(path, json.dumps(config, indent=2) + "\n")
    return path, False


def cmd_install_mcp(args: argparse.Namespace) -> int:
    if args.workspace is not None:
        Workspace.find(args.workspace)  # (one that is not there is refused now, not when Claude Code starts it)
    wanted = entry(args.workspace, python=args.python)
    if args.print:
        emit_json(wanted) if args.json else print(json.dumps(wanted))
        return ExitCode.OK
    project = Path(args.project)
    if not project.is_dir():
        raise UsageError(f"--project {args.project}: no such directory")
    path, unchanged = install(project, args.name, wanted, force=args.force)
    if args.json:
        emit_json({"ok": True, "path": str(path), "name": args.name, "entry": wanted, "unchanged": unchanged})
    elif unchanged:
        print(f"MCP server '{args.name}' is already in {path}, as it should be")
    else:
        print(f"Added MCP server '{args.name}' to {path}: Claude Code started in {project} offers its tools")
    return ExitCode.OK


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "mcp",
        cmd_mcp,
        "an MCP server on stdio: the queue's commands as tools (add, run, status, output...) for an agent",
    )
    p.add_argument(
        "--workspace",
        metavar="DIR",
        help="the workspace every tool uses (default: each tool's `directory`, else .orchestrator here)",
    )
    p = add_command(
        sub,
        "install-mcp",
        cmd_install_mcp,
        "add the MCP server to a project's .mcp.json, for Claude Code (or --print the entry)",
    )
    p.add_argument("--project", default=".", metavar="DIR", help="the project whose .mcp.json to write (default: here)")
    p.add_argument(
        "--name", default=SERVER, help=f"the server's name: its tools are mcp__NAME__add... (default {SERVER})"
    )
    p.add_argument("--workspace", metavar="DIR", help="fix the workspace its tools use (default: .orchestrator there)")
    p.add_argument(
        "--python",
        action="store_true",
        help="call this interpreter (<python> -m orchestrator) instead of `orchestrator` on PATH: a machine's own file",
    )
    p.add_argument("--print", action="store_true", help="print the entry (for `claude mcp add-json`); write nothing")
    p.add_argument("--force", action="store_true", help="replace a server of the same name that differs")
