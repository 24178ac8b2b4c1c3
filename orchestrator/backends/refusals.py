"""Tool calls an agent was refused, in the one shape every backend records and words them.

A task whose agent had tool calls refused is not completed, whatever the agent then says it did
(SKILL.md, workflow.md): each backend finds the refusals in its own CLI's output (claude's
``permission_denials`` and its "No such tool available" answers, say: each backend's module says
where its CLI tells them), lists them as ``{"tool_name", "tool_input"}`` entries in
``AgentResult.permission_denials`` (the result records how many), and fails the attempt as
``denied`` with the message ``denied`` makes.
"""

from __future__ import annotations

from typing import Any

from orchestrator.vocabulary import counted, listed


def refusal(tool: str, **given: str) -> dict[str, Any]:
    """One refused call as the record keeps it: the tool's name and what it was asked to do
    (``command``, ``path``...), in claude's shape so that all backends read alike."""
    return {"tool_name": tool, "tool_input": given}


def denied(denials: list[Any], remedy: str) -> str:
    """``2 tool calls denied: Bash (touch made.txt), Write (notes.md) — …``: what was refused,
    and what to give the agent (``remedy``: the settings of its backend that would let it)."""
    shown: list[str] = []
    for denial in denials[:3]:
        name = str(denial.get("tool_name") or "?") if isinstance(denial, dict) else "?"
        given = denial.get("tool_input") if isinstance(denial, dict) else None
        what = ""
        if isinstance(given, dict):
            what = str(given.get("command") or given.get("file_path") or given.get("path") or given.get("url") or "")
        what = " ".join(what.split())
        shown.append(f"{name} ({what[:60]}{'…' if len(what) > 60 else ''})" if what else name)
    count = counted(len(denials), "tool call")
    return (
        f"{count} denied: {listed(shown, len(denials))} — the agent could not do all it was asked; give it what it "
        f"needs ({remedy}) and run it again"
    )
