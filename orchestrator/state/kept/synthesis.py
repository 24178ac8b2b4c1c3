"""``state/kept/synthesis.json``: what the aggregating agent whose synthesis final_output.md holds spent.

The synthesis is no task and leaves no result file, yet its call is spend: final_output.md counts
it in its Cost and Tokens, and ``report``, which reads the result files, reads it here to count
it the same way. Written whenever final_output.md is: with a synthesis, its spend; without one,
the file goes, as the synthesis went from final_output.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from orchestrator.documents import read_regular
from orchestrator.state import store
from orchestrator.state.workspace import Workspace

_NAME = "synthesis.json"


@dataclass(frozen=True, slots=True)
class Spent:
    cost_usd: float | None = None
    tokens: int | None = None


def record(workspace: Workspace, spent: Spent | None) -> None:
    """Keep what the synthesis now in final_output.md spent (``None``: it has none)."""
    path = workspace.state_dir / _NAME
    if spent is None:
        store.remove(path)
        return
    store.write_text(path, json.dumps({"cost_usd": spent.cost_usd, "tokens": spent.tokens}) + "\n")


def read(workspace: Workspace) -> Spent | None:
    """What the synthesis in final_output.md spent, or None (none, or the file is unreadable)."""
    try:
        data = json.loads(read_regular(workspace.state_dir / _NAME))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    cost, tokens = data.get("cost_usd"), data.get("tokens")
    return Spent(
        float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else None,
        tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None,
    )
