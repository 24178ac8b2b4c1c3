"""claude's command line: what it is started with, and whether the system would start it.

    claude -p --output-format stream-json --verbose --include-partial-messages [--model M] [--max-turns N]
           [--permission-mode P] [--tools T,...] [--allowedTools T,...] [--settings WALLS]
           [--append-system-prompt S] [--max-budget-usd X] [--json-schema J] [--resume SESSION]

The system prompt, the tool lists, the walls' rules and the JSON schema go on the command line
(the brief on stdin), so ``argv_fault`` checks it before a run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.backends.claude_permissions import asking, tool_name
from orchestrator.backends.command_line import refused_start
from orchestrator.plan.config.profiles import Profile
from orchestrator.plan.config.settings import Settings


def claude_bin() -> str:
    return os.environ.get("ORCHESTRATOR_CLAUDE_BIN") or "claude"


CHANNEL_VERBS = ("share", "note", "discover", "sync", "context")


def claude_argv(
    settings: Settings,
    profile: Profile | None,
    resume: str | None = None,
    json_schema: str | None = None,
    channels: str | None = None,
    walls: Mapping[str, Any] | None = None,
) -> list[str]:
    """claude's command line. ``channels``: the command the prompt gives for the channels; an
    agent with a Bash tool gets those calls pre-approved (and nothing else by them): headless,
    it cannot ask, and the prompt tells it to make them. ``walls``: the settings that keep it out
    of the workspace (``claude_permissions.walled``)."""
    # Partial messages: claude writes nothing else while a message is being generated, and a long
    # answer would look like a hang to the inactivity watchdog; each chunk is output that feeds it.
    argv = [claude_bin(), "-p", "--output-format", "stream-json", "--verbose", "--include-partial-messages"]
    if settings.model:
        argv += ["--model", settings.model]
    if settings.max_turns:
        argv += ["--max-turns", str(settings.max_turns)]
    if settings.permission_mode:
        argv += ["--permission-mode", settings.permission_mode]
    allowed = list(settings.allowed_tools)
    if settings.ask:
        # The tools it is given run without asking; every other call claude would ask about goes
        # to a person (``asking``): so all its tools are there, those of its Access pre-approved.
        argv += asking(settings)
        allowed += [t for t in settings.tools or () if t not in allowed]
    elif settings.tools is not None:
        # --tools takes tool names; a rule such as Bash(git log:*) gives the tool and pre-approves
        # only what the rule matches (what else the agent asks for is denied: it cannot ask).
        argv += ["--tools", ",".join(dict.fromkeys(tool_name(t) for t in settings.tools))]
        allowed += [t for t in settings.tools if "(" in t and t not in allowed]
    if channels and (settings.tools is None or "Bash" in {tool_name(t) for t in settings.tools}):
        allowed += [f"Bash({channels} {verb}:*)" for verb in CHANNEL_VERBS]
    if allowed:
        argv += ["--allowedTools", ",".join(allowed)]
    if walls:
        argv += ["--settings", json.dumps(walls, separators=(",", ":"))]
    system = "\n\n".join(p for p in ((profile.prompt if profile else ""), settings.append_system_prompt or "") if p)
    if system:
        argv += ["--append-system-prompt", system]
    if settings.max_budget_usd:
        argv += ["--max-budget-usd", f"{settings.max_budget_usd:g}"]
    if json_schema:
        argv += ["--json-schema", json_schema]
    if resume:
        argv += ["--resume", resume]
    return argv


# What the arguments that can grow long hold, in the plan's words (``refused_start``).
_LONG_ARGUMENTS = {
    "--append-system-prompt": "the system prompt (the profile's prompt and append_system_prompt, together)",
    "--json-schema": "the JSON schema",
    "--tools": "tools",
    "--allowedTools": "allowed_tools (with the rules in tools)",
    "--settings": "the rules that keep the agent out of the workspace (one for each place in it)",
}
_SHORTEN = "shorten the system prompt (the profile's prompt, append_system_prompt) or the plan's env"


def argv_fault(argv: Sequence[str], env: Mapping[str, str]) -> tuple[str, str] | None:
    """Why the system would refuse to start claude with ``argv`` and ``env``, and what to do; or None."""
    return refused_start("claude", argv, env, _LONG_ARGUMENTS, _SHORTEN)
