"""What codex refused a thread's last turn, from the session file it keeps (its "rollout").

    read_rollout(codex_home, thread_id) -> Rollout (the refused calls, the thread's tokens), or None

``codex exec --json`` prints an item for each command it ran and each patch it applied, and
nothing at all for a call it refused: a command that asked to leave the sandbox under the
approval policy ``never`` (the model is answered "approval policy is Never; reject command"), a
write the sandbox stopped ("Read-only file system", which codex tells a sandbox denial by), a
patch the sandbox forbids ("patch rejected: writing is blocked by read-only sandbox"). The model
sees the refusal; the JSON does not. The session file does: every ``response_item`` the turn
sent and received (the model's ``function_call`` or ``custom_tool_call``, and its output) and an
``event_msg`` ``item_completed`` for each command or patch that ran (``CommandExecution``,
``FileChange``; its ``id`` is the call's ``call_id``). A call of a command or patch tool with an
output and no such item was refused. Only the thread's last turn counts (after its last
``task_started``): a resumed thread's file holds the turns of the attempts before. Its last
``token_count`` holds the thread's tokens so far, which ``--json`` leaves out of a turn that
failed (a turn that read a file, then met 429s until codex gave up, did spend them).

The file is ``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<thread id>.jsonl`` (``CODEX_HOME``
defaults to ``~/.codex``), on the machine codex ran on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.backends.refusals import refusal

# The tools that run a command or change files: a call of one that did not run was refused.
COMMAND_TOOLS = frozenset({"exec_command", "shell", "shell_command", "local_shell", "container.exec"})
PATCH_TOOLS = frozenset({"apply_patch"})
_RAN = frozenset({"CommandExecution", "FileChange"})


def codex_home(env: Mapping[str, str]) -> Path:
    """Where codex keeps its state for an agent with environment ``env``."""
    named = env.get("CODEX_HOME")
    if named:
        return Path(named)
    return Path(env.get("HOME") or Path.home()) / ".codex"


def rollout_of(home: Path, thread_id: str) -> Path | None:
    """The session file of ``thread_id`` under ``home``, or None."""
    if not thread_id or "/" in thread_id or thread_id.startswith("."):
        return None
    found = sorted((home / "sessions").glob(f"*/*/*/rollout-*-{thread_id}.jsonl"))
    return found[-1] if found else None


@dataclass(frozen=True, slots=True)
class Rollout:
    """What a thread's session file says of its last turn."""

    refused: list[dict[str, Any]]  # the calls codex refused, as ``refusals.refusal`` entries
    usage: dict[str, int]  # the thread's tokens so far (its last ``token_count``), as --json words them


def read_rollout(home: Path, thread_id: str | None) -> Rollout | None:
    """The last turn of ``thread_id`` as its session file tells it; None when the file is not
    there to tell (another machine ran it)."""
    path = rollout_of(home, thread_id or "")
    if path is None:
        return None
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return None
    usage: dict[str, int] = {}
    calls: dict[str, dict[str, Any]] = {}  # call_id -> the refusal it would be, in order
    answered: set[str] = set()
    ran: set[str] = set()
    for line in lines:
        record = _record(line)
        payload = record.get("payload") if record is not None else None
        if not isinstance(payload, dict):
            continue
        kind = payload.get("type")
        if record is not None and record.get("type") == "event_msg":
            if kind == "task_started":  # a turn begins: what came before was another attempt's
                calls.clear()
                answered.clear()
                ran.clear()
            elif kind == "item_completed":
                item = payload.get("item")
                if isinstance(item, dict) and item.get("type") in _RAN:
                    ran.add(str(item.get("id")))
            elif kind in ("exec_command_end", "patch_apply_end"):  # (the older event names)
                ran.add(str(payload.get("call_id")))
            elif kind == "token_count":
                usage = _usage(payload.get("info")) or usage
            continue
        call = str(payload.get("call_id") or "")
        if kind in ("function_call", "custom_tool_call", "local_shell_call"):
            entry = _refusal(payload)
            if entry is not None and call:
                calls[call] = entry
        elif kind in ("function_call_output", "custom_tool_call_output") and not _still_running(payload.get("output")):
            answered.add(call)
    refused = [entry for call, entry in calls.items() if call in answered and call not in ran]
    return Rollout(refused, usage)


def _usage(info: Any) -> dict[str, int]:
    """A ``token_count``'s thread total, under the names ``turn.completed``'s ``usage`` uses."""
    total = info.get("total_token_usage") if isinstance(info, dict) else None
    if not isinstance(total, dict):
        return {}
    return {k: v for k, v in total.items() if isinstance(v, int) and not isinstance(v, bool) and k != "total_tokens"}


def _record(line: bytes) -> dict[str, Any] | None:
    try:
        found = json.loads(line)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _refusal(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The refusal a call would be if it did not run; None for a tool that neither runs a
    command nor changes a file."""
    name = str(payload.get("name") or ("local_shell" if payload.get("type") == "local_shell_call" else ""))
    if name in PATCH_TOOLS:
        text = str(payload.get("input") or "")
        paths = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("*** ") and ":" in line]
        return refusal("patch", path=", ".join(paths))
    if name not in COMMAND_TOOLS:
        return None
    arguments = payload.get("arguments")
    given: Any = {}
    if isinstance(arguments, str):
        try:
            given = json.loads(arguments)
        except ValueError:
            return None  # arguments codex could not read: a bad call, answered as such, no refusal
    command = given.get("cmd") or given.get("command") if isinstance(given, dict) else None
    if isinstance(command, list):
        command = " ".join(str(part) for part in command)
    return refusal("command", command=str(command or ""))


def _still_running(output: Any) -> bool:
    """An ``exec_command`` answered while its process goes on (``write_stdin`` follows it):
    its item comes when it ends."""
    text = output if isinstance(output, str) else json.dumps(output)
    return "Process running with session ID" in text


def home_of(settings_env: Mapping[str, str]) -> Path:
    """codex's home for an attempt whose plan ``env`` is ``settings_env`` (ours, then the plan's)."""
    return codex_home({**os.environ, **settings_env})
