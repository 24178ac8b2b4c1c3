"""What a claude agent may do: its permission modes, its tools, the settings claude refuses, and
how one that may ask (``ask: true``) asks a person: ``asking``.

``claude_powers`` words it for ``doctor`` and the agents' prompts; ``check_permissions`` says
why a plan's settings cannot run (a mode claude does not take, a rule it would not apply, a mode
it refuses as root).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.backends.guard import PROJECT_FILES, Guard, Walls, bubblewrap
from orchestrator.executors.base import Limits
from orchestrator.plan.config.settings import Settings, format_duration, suggest
from orchestrator.state.workspace import Workspace

# What --permission-mode of the pinned claude takes (`claude --help`; "default" is still taken),
# and what each lets a headless agent do, in plain words (``doctor`` and cli-integration.md).
# The commands claude's acceptEdits runs unasked, on paths in its directory (the pinned CLI's list).
ACCEPT_EDITS_COMMANDS = ("mkdir", "touch", "rm", "rmdir", "mv", "cp", "sed")
MODE_POWERS = {
    "default": "a call that needs approval and is not in allowed_tools is denied (headless, nobody "
    "can approve it): reads and searches run, edits and commands only if pre-approved",
    "manual": "as default: what is not pre-approved is denied",
    "acceptEdits": f"file edits in its directory run without asking, and so do {', '.join(ACCEPT_EDITS_COMMANDS[:-1])} "
    f"and {ACCEPT_EDITS_COMMANDS[-1]} on paths there (rm -rf build included); any other command (npm install, curl, "
    "python3 -c) only if pre-approved. Risk: it can rewrite or delete any file in its directory",
    "plan": "read-only: it reads and plans, edits nothing and runs no command that changes anything",
    "auto": "claude's classifier approves the calls it judges safe, commands included, without "
    "asking. Risk: a judgement, not a rule, stands between the agent and your files",
    "dontAsk": "only what tools and allowed_tools name runs; everything else is denied without asking",
    "bypassPermissions": "every call runs, no check at all. Risk: it can delete files, run any "
    "command and reach the network with your user's rights; only in a sandbox or a throwaway checkout",
}
PERMISSION_MODES = tuple(MODE_POWERS)
# Tools that only read (files, the web) or keep the agent's own to-do list. An agent whose tools
# are all among them edits no file and runs no command, whatever its permission mode lets a tool
# do: an acceptEdits plan's read-only reviewer (Access: read) is told that, not the mode's risk.
READING_TOOLS = frozenset({"Read", "Grep", "Glob", "LS", "NotebookRead", "WebFetch", "WebSearch", "TodoWrite"})
ONLY_READING = "with no tool that edits files or runs commands, it edits nothing and runs no command, whatever the mode"
# Modes in which only pre-approved calls (and read-only ones) run: there a rule such as
# Bash(git log:*) narrows a tool down. acceptEdits also runs claude's file-changing commands
# (mkdir, touch, rm, rmdir, mv, cp, sed: the pinned CLI's list); auto and bypassPermissions run anything.
_NARROWING_MODES = (None, "default", "manual", "dontAsk", "plan")


def tool_name(entry: str) -> str:
    """The tool a permission rule is about: ``Bash`` for ``Bash(git log:*)``."""
    return entry.split("(", 1)[0].strip()


def only_reading(settings: Settings) -> bool:
    """Whether the tools claude is given can only read (``Access: read``): nothing it runs changes a file."""
    return settings.tools is not None and all(tool_name(t) in READING_TOOLS for t in settings.tools)


def claude_powers(settings: Settings) -> str:
    """What an agent started with ``settings`` may do, in plain words (``doctor``, the prompt)."""
    mode = settings.permission_mode or "default"
    if settings.tools is None:
        tools = "every tool claude has (Bash, Edit, Write, WebFetch, sub-agents, MCP tools)"
    else:
        tools = ("only " + ", ".join(settings.tools)) if settings.tools else "no tool at all"
    allowed = ", ".join(settings.allowed_tools) or "none"
    if settings.ask:
        asks, given = format_duration(settings.ask_timeout), tools if settings.tools is not None else "reads, searches"
        return (
            f"without asking: {given}; pre-approved: {allowed}; "
            f"permission mode {mode}; any other call it asks a person for (ask: true), denied if no one answers "
            f"within {asks}"
        )
    words = ONLY_READING if only_reading(settings) else MODE_POWERS.get(mode, "?")
    return f"tools: {tools}; pre-approved: {allowed}; permission mode {mode}: {words}"


def check_permissions(settings: Settings) -> str | None:
    """Why claude cannot run with these permission settings, and what to do, or None."""
    mode = settings.permission_mode
    if settings.ask and mode in ("dontAsk", "bypassPermissions"):
        return (
            f"ask: true asks a person about the calls claude would ask about, and permission_mode {mode} "
            "asks about none; drop one of the two"
        )
    if mode is not None and mode not in PERMISSION_MODES:
        modes = ", ".join(PERMISSION_MODES)
        return f"permission_mode {mode!r} is not one of claude's{suggest(mode, PERMISSION_MODES)}: {modes}"
    tools = settings.tools
    if tools is not None:
        names = {tool_name(t) for t in tools}
        outside = [t for t in settings.allowed_tools if tool_name(t) not in names]
        if outside:
            return (
                f"allowed_tools names {', '.join(outside)}, which tools does not give the agent "
                f"(tools: {', '.join(tools) or 'none'}); add it to tools, or remove it from allowed_tools"
            )
        narrowed = [t for t in tools if "(" in t]
        if narrowed and mode not in _NARROWING_MODES:
            return (
                f"tools narrows {', '.join(narrowed)}, but permission_mode {mode} runs calls of that "
                "tool the rule does not match; use permission_mode dontAsk (only what tools and "
                "allowed_tools name runs), or give the whole tool"
            )
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    sandbox = (settings.env.get("IS_SANDBOX") or os.environ.get("IS_SANDBOX")) == "1"
    if settings.permission_mode == "bypassPermissions" and as_root and not sandbox:
        return (
            "claude refuses --permission-mode bypassPermissions when run as root unless IS_SANDBOX=1; "
            'if this machine is a sandbox, add `env: {IS_SANDBOX: "1"}` to the frontmatter, '
            "else use acceptEdits with allowed_tools"
        )
    return None


# The MCP server (``orchestrator mcp --permission-tool``) and tool claude asks a person through.
ASK_SERVER, ASK_TOOL = "orchestrator_asks", "permission"
ASK_MARGIN = 60.0  # seconds claude and the watchdog wait for a question beyond its own ask_timeout


def asking(settings: Settings) -> list[str]:
    """What makes claude ask a person (``orchestrator mcp --permission-tool``) for a call its
    permissions would ask about, rather than deny it."""
    command = [sys.executable, "-m", "orchestrator", "mcp", "--permission-tool"]
    server = {"command": command[0], "args": [*command[1:], "--ask-timeout", f"{settings.ask_timeout:g}"]}
    config = json.dumps({"mcpServers": {ASK_SERVER: server}}, separators=(",", ":"))
    return ["--mcp-config", config, "--permission-prompt-tool", f"mcp__{ASK_SERVER}__{ASK_TOOL}"]


def asking_environment(settings: Settings) -> dict[str, str]:
    """claude's wait for its permission tool: past the question's own deadline, which answers first."""
    return {"MCP_TOOL_TIMEOUT": str(int((settings.ask_timeout + ASK_MARGIN) * 1000))} if settings.ask else {}


def asking_limits(settings: Settings, limits: Limits) -> Limits:
    """An attempt's ``limits``; one that may ask is silent while a person thinks, up to
    ``ask_timeout``: its inactivity limit is never shorter than that."""
    if settings.ask and limits.inactivity is not None and limits.inactivity < settings.ask_timeout + ASK_MARGIN:
        return dataclasses.replace(limits, inactivity=settings.ask_timeout + ASK_MARGIN)
    return limits


# --- the walls (``backends/guard``) -----------------------------------------------------------------

# Modes in which claude runs a command it has not checked itself: the walls then hold only in its sandbox.
_UNCHECKED_MODES = ("bypassPermissions", "auto")


def has_bash(settings: Settings) -> bool:
    return settings.tools is None or "Bash" in {tool_name(t) for t in settings.tools}


def unchecked_commands(settings: Settings) -> bool:
    """Whether claude may run a command whose every path it has not checked against its rules:
    one pre-approved (a Bash rule), one a person allowed (``ask``), any in a mode that runs them
    unasked. In acceptEdits and the asking modes it runs alone the commands it reads the paths of
    (mkdir, touch, a redirect...), and denies those that reach a walled place."""
    if not has_bash(settings):
        return False
    rules = [*settings.allowed_tools, *(settings.tools or ())]
    return settings.ask or settings.permission_mode in _UNCHECKED_MODES or any(tool_name(t) == "Bash" for t in rules)


def sandboxable() -> bool:
    """Whether claude's sandbox starts here: on Linux it runs commands under bubblewrap, and needs
    socat for its proxy; macOS has its own (sandbox-exec)."""
    if sys.platform == "darwin":
        return True
    return sys.platform.startswith("linux") and bubblewrap() and shutil.which("socat") is not None


def claude_guard(settings: Settings) -> Guard:
    """What keeps claude out of the walls here: its deny rules, for its file tools and the
    commands it reads the paths of; its sandbox for the others, where it starts."""
    rules = "its deny rules (permissions.deny) stop every tool that writes a file"
    if not has_bash(settings):
        return Guard(True, rules)
    if sandboxable():
        return Guard(True, f"{rules}; its sandbox (bubblewrap) holds them read-only for every command")
    if not unchecked_commands(settings):
        return Guard(True, f"{rules}, and deny the commands it reads the paths of, the only ones it runs unasked")
    return Guard(
        False,
        f"{rules}, but it runs commands it has not checked (a Bash rule, ask, or permission_mode "
        f"{settings.permission_mode}) and its sandbox cannot start here",
        "install bubblewrap and socat (apt install bubblewrap socat), or give it no Bash",
    )


# What an agent in a worktree may not do itself (``agent_pushes: false``): push, open or merge a pull request.
NO_DELIVERY = ("Bash(git push:*)", "Bash(gh pr create:*)", "Bash(gh pr merge:*)")


def walled(settings: Settings, walls: Walls, env: Mapping[str, str], cwd: Path) -> dict[str, Any]:
    """The settings (``--settings``) that keep claude out of ``walls``: a deny rule for each walled
    place (``Edit(...)``: every tool that writes a file, and the commands claude reads the paths
    of), and, for an agent with Bash, its sandbox, whose file system those rules make read-only
    there for every command. The sandbox is there to guard the walls, not to confine the agent
    otherwise: it writes and reaches the network as before, unless the person's own claude settings
    turn the sandbox on (theirs then say what else it may). It may not run a command outside it,
    and where the sandbox should start here (``sandboxable``), one that cannot stops claude before
    it begins; where it cannot, claude's rules alone hold (``claude_guard`` says what that leaves)."""
    deny = [f"Edit(/{rule})" for rule in _walled_paths(walls)]
    if walls.isolated and not settings.agent_pushes:  # (in a worktree it commits; the run delivers, once)
        deny += list(NO_DELIVERY)
    found: dict[str, Any] = {"permissions": {"deny": deny}}
    if has_bash(settings):
        sandbox: dict[str, Any] = {"enabled": True, "allowUnsandboxedCommands": False}
        if sandboxable():
            sandbox["failIfUnavailable"] = True
        if not _own_sandbox(env, cwd):
            sandbox["filesystem"] = {"allowWrite": ["/"]}
            sandbox["network"] = {"allowedDomains": ["*"]}
        found["sandbox"] = sandbox
    return found


def _walled_paths(walls: Walls) -> list[str]:
    """The walled places as claude's rules name them (absolute, gitignore's way: ``dir/**``); a
    rule cannot open a directory inside another, so the workspace's places are named one by one
    (its files at its top by ``*.*`` too), and the copies in every worktree by ``worktrees/*/``.
    Its sandbox makes a place a rule names that is not there an unreadable one, which the
    channels' commands would then fail to read (``types.yaml``): the workspace's directories are
    made first, empty, and a file not there is named by ``*.*`` alone, which stops its file tools
    (a command its sandbox holds could make one: ``types.yaml``, where there is none)."""
    found: list[str] = []

    def place(path: str, directory: bool = True) -> None:
        found.extend([path, f"{path}/**"] if directory else [path])

    workspace = Workspace(walls.workspace)
    if workspace.plan_file.is_file():  # (a workspace's; see below)
        for made in workspace.places:
            made.mkdir(parents=True, exist_ok=True)
    for entry in walls.entries():
        if entry.exists():
            place(str(entry), directory=entry.is_dir())
    found.append(f"{walls.workspace}/*.*")
    closed = walls.closed()[1:]
    for path in closed:
        place(str(path), directory=PROJECT_FILES.get(path.name) != "file")
    where = walls.in_repository() if walls.isolated else None
    if where is not None:
        inside = f"{walls.trees}/*" + (f"/{where}" if where else "")
        for copy in walls.copies():
            place(f"{inside}/{copy}", directory=PROJECT_FILES.get(copy) != "file")
    return list(dict.fromkeys(found))


def _own_sandbox(env: Mapping[str, str], cwd: Path) -> bool:
    """Whether the person's claude settings turn its sandbox on (the project's, theirs, the
    machine's managed ones, as claude reads them for an agent in ``cwd``)."""
    home = env.get("CLAUDE_CONFIG_DIR") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".claude")
    files = [cwd / ".claude" / "settings.json", cwd / ".claude" / "settings.local.json", Path(home) / "settings.json",
             Path("/etc/claude-code/managed-settings.json")]  # fmt: skip
    for path in files:
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        sandbox = found.get("sandbox") if isinstance(found, dict) else None
        if isinstance(sandbox, dict) and sandbox.get("enabled") is True:
            return True
    return False
