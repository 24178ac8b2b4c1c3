"""``orchestrator mcp``: the MCP server on stdio (``cli/agents/mcp_tools``); ``orchestrator install-mcp``:
its entry in a project's ``.mcp.json``, where Claude Code finds MCP servers.

The entry a project keeps is committed with it and used on other machines: it calls the
``orchestrator`` command found on PATH, as the project's copy of the skill does, and no path of
this machine (``--python``: this interpreter, ``<python> -m orchestrator``, for a file kept to
this machine). ``--print`` writes nothing: it prints the entry, for ``claude mcp add-json NAME
'<entry>'``. The other servers of the file are kept as they are; an entry of the same name that
differs is replaced only with ``--force``.

Before it writes one, the entry is started as Claude Code will start it (``probe``: its command
run in the project, asked MCP's ``initialize``): a command that cannot answer (no ``orchestrator``
on PATH, or one installed without the ``mcp`` extra, whose SDK it cannot import) would show
"Failed to connect" there, or hide behind "Pending approval"; it is refused with what to install,
and nothing is written (``--no-check`` writes it all the same: a file for other machines).
``doctor`` probes the entries a project's ``.mcp.json`` has of ours the same way.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.cli.output import Commands, add_command, emit_json, warn
from orchestrator.commands.words import positive_duration
from orchestrator.errors import UsageError
from orchestrator.state import store
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import ExitCode

CONFIG = ".mcp.json"
SERVER = "orchestrator"
INSTALL = "pipx install 'task-orchestrator[mcp]'"  # (from a checkout: pipx install '.[mcp]')
PROBE_TIMEOUT = 60.0  # seconds an entry has to answer `initialize` (a cold interpreter on a busy machine)
_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "probe", "version": "0"}},
}


def _needs_sdk() -> None:
    if importlib.util.find_spec("mcp") is None:
        raise UsageError(
            "mcp needs the MCP SDK, which a plain install leaves out: pip install 'task-orchestrator[mcp]' "
            "(in a checkout: pip install -e '.[mcp]')"
        )


def cmd_mcp(args: argparse.Namespace) -> int:
    _needs_sdk()
    if args.permission_tool:  # (an agent's --permission-prompt-tool: one tool, nothing of the queue)
        from orchestrator.cli.agents.permission_tool import serve as serve_permission

        serve_permission(args.ask_timeout)
        return ExitCode.OK
    from orchestrator.cli.agents.mcp_tools import serve

    fixed = str(Workspace.find(args.workspace).root) if args.workspace is not None else None
    serve(fixed)
    return ExitCode.OK


def entry(workspace: str | None, *, python: bool) -> dict[str, Any]:
    """The server's entry as Claude Code's MCP configuration holds it."""
    command = [sys.executable, "-m", "orchestrator"] if python else ["orchestrator"]
    extra = ["--workspace", workspace] if workspace is not None else []
    return {"type": "stdio", "command": command[0], "args": [*command[1:], "mcp", *extra], "env": {}}


def ours(server: object) -> bool:
    """Whether an entry of an MCP configuration runs our server: ``orchestrator mcp``, or
    ``<python> -m orchestrator mcp``."""
    if not isinstance(server, dict) or not isinstance(server.get("command"), str):
        return False
    given = server.get("args")
    args: list[object] = given if isinstance(given, list) else []
    command = [Path(server["command"]).name, *map(str, args)]
    return "mcp" in command and (command[0] == "orchestrator" or command[1:3] == ["-m", "orchestrator"])


def probe(server: dict[str, Any], project: Path) -> str | None:
    """Why the MCP entry ``server`` cannot start (its command run in ``project`` as Claude Code
    runs it, asked MCP's ``initialize``), or ``None``: it answered. Nothing is left running: the
    server ends once its stdin closes."""
    command = [str(server["command"]), *map(str, server.get("args") or [])]
    env = {**os.environ, **{str(k): str(v) for k, v in (server.get("env") or {}).items()}}
    if os.sep not in command[0] and shutil.which(command[0], path=env.get("PATH")) is None:
        return f"`{command[0]}` is not on PATH: install it outside any virtual environment, {INSTALL}"
    try:
        done = subprocess.run(
            command,
            cwd=project,
            env=env,
            input=json.dumps(_INITIALIZE) + "\n",
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"`{' '.join(command)}` did not answer MCP's initialize within {PROBE_TIMEOUT:g}s"
    except OSError as exc:
        return f"`{command[0]}` cannot be run: {exc.strerror or exc}"
    for line in done.stdout.splitlines():
        try:
            answer = json.loads(line)
        except ValueError:
            continue
        if isinstance(answer, dict) and answer.get("id") == 1 and "result" in answer:
            return None
    said = (done.stderr.strip().splitlines() or [f"exit {done.returncode}, no answer"])[-1]
    if "MCP SDK" in said or "No module named 'mcp" in said:  # (`mcp needs the MCP SDK, which a plain ...`)
        if command[1:3] == ["-m", "orchestrator"]:
            return f"`{command[0]}` cannot import the MCP SDK: {command[0]} -m pip install 'task-orchestrator[mcp]'"
        where = shutil.which(command[0], path=env.get("PATH")) or command[0]
        return (
            f"`{command[0]}` ({where}) was installed without the mcp extra, so it cannot import the MCP SDK: "
            f"install it again with it, {INSTALL.replace('install', 'install --force', 1)}"
        )
    return f"`{' '.join(command)}` does not start the MCP server: {said}"


def install(
    project: Path, name: str, wanted: dict[str, Any], *, force: bool, check: Callable[[], None] | None = None
) -> tuple[Path, bool]:
    """Write ``wanted`` as server ``name`` into ``project``'s ``.mcp.json``, every other entry kept;
    ``(path, unchanged)``. ``UsageError`` for a file that is not a JSON object, or an entry of that
    name that differs (without ``force``): nothing written. ``check``: what must hold of the entry
    (it starts), asked once the file is read, before anything is written."""
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
    if check is not None:
        check()
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
        problem = None if args.no_check else probe(wanted, Path.cwd())
        if problem is not None:  # (printed all the same: it may be for another machine)
            warn(f"this entry cannot start here: {problem}")
        emit_json(wanted) if args.json else print(json.dumps(wanted))
        return ExitCode.OK
    project = Path(args.project)
    if not project.is_dir():
        raise UsageError(f"--project {args.project}: no such directory")

    def starts() -> None:
        problem = probe(wanted, project)
        if problem is not None:
            here = not args.python and importlib.util.find_spec("mcp") is not None
            instead = "--python names this Python, which can; " if here else ""
            raise UsageError(
                f"{CONFIG} not written: Claude Code could not start this entry — {problem} ({instead}--no-check "
                "writes it all the same)"
            )

    path, unchanged = install(project, args.name, wanted, force=args.force, check=None if args.no_check else starts)
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
    p.add_argument(
        "--permission-tool",
        action="store_true",
        help="serve only the permission tool a task with `ask: true` gives its claude (--permission-prompt-tool)",
    )
    p.add_argument(
        "--ask-timeout",
        type=positive_duration,
        default=600.0,
        metavar="DURATION",
        help="with --permission-tool: how long a question waits for a person before it is denied (default 10m)",
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
    p.add_argument(
        "--no-check",
        action="store_true",
        help="write the entry without starting it first (for a file other machines use)",
    )
    p.add_argument("--force", action="store_true", help="replace a server of the same name that differs")
