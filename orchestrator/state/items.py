"""``state/items/``: what a row run once per item (its ``Each`` cell) holds, kept beside its
instances so that a view of a row of 100,000 items reads two files, not 100,000 results.

- ``<row>.json``: its counts, by state (``{"completed": 4812, "failed": 12, ...}``), its items'
  number, whether they are known yet (``from T-01``: once T-01 completes), and when it was written.
- ``<row>.items.json``: each instance, in order: ``[number, item, state]``; read only by a view of
  that one row (``status T-03``).

The run writes both (``run/items``) as its instances move, at most once a second and as it ends;
a state written by a run that died is read as the run left it, and the next run writes it again.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.state import store
from orchestrator.state.workspace import Workspace

if TYPE_CHECKING:
    from orchestrator.plan.model import Plan


def directory(workspace: Workspace) -> Path:
    return workspace.state_dir / "items"


@dataclass(frozen=True, slots=True)
class RowSummary:
    """A row's instances at a glance: how many, in which states."""

    row: str
    total: int
    counts: Mapping[str, int] = field(default_factory=dict)
    known: bool = True  # its items are known (from an upstream: once it completed)
    source: str = ""  # its Each cell
    written: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"row": self.row, "items": self.total, "counts": dict(self.counts), "known": self.known,
                "each": self.source, "written": self.written}  # fmt: skip


def write(workspace: Workspace, summary: RowSummary, instances: Iterable[tuple[int, str, str]] | None) -> None:
    """``summary`` (and ``instances``, when given: ``(number, item, state)`` each) written atomically."""
    place = directory(workspace)
    place.mkdir(parents=True, exist_ok=True)
    if instances is not None:
        listed = json.dumps([list(entry) for entry in instances], ensure_ascii=False, separators=(",", ":"))
        store.write_text(place / f"{summary.row}.items.json", listed + "\n", durable=False)
    store.write_text(place / f"{summary.row}.json", json.dumps(summary.as_json(), ensure_ascii=False) + "\n",
                     durable=False)  # fmt: skip


def summary_of(workspace: Workspace, row: str) -> RowSummary | None:
    """What the last run wrote of ``row``, or ``None`` (no run has, or the file cannot be read)."""
    try:
        data = json.loads((directory(workspace) / f"{row}.json").read_text(encoding="utf-8"))
        counts = {str(k): int(v) for k, v in dict(data.get("counts") or {}).items()}
        return RowSummary(str(data["row"]), int(data["items"]), counts, bool(data.get("known", True)),
                          str(data.get("each", "")), float(data.get("written", 0.0)))  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def instances_of(workspace: Workspace, row: str) -> list[tuple[int, str, str]]:
    """Each instance of ``row`` as the last run wrote it: ``(number, item, state)``."""
    try:
        data = json.loads((directory(workspace) / f"{row}.items.json").read_text(encoding="utf-8"))
        return [(int(n), str(item), str(state)) for n, item, state in data]
    except (OSError, ValueError, TypeError):
        return []


def summarize(row: str, states: Iterable[str], *, known: bool = True, source: str = "") -> RowSummary:
    """A ``RowSummary`` of ``row`` from its instances' states."""
    counts = Counter(states)
    return RowSummary(row, sum(counts.values()), dict(counts), known, source, round(time.time(), 3))


_SAID = (
    ("failed", ("failed", "interrupted", "cancelled", "rejected")),
    ("skipped", ("skipped", "bypassed")),
    ("running", ("running", "retrying")),
    ("waiting", ("pending", "waiting", "awaiting_approval", "blocked")),
)


def said(data: Mapping[str, Any]) -> str:
    """What a view says of a row's items (a ``RowSummary.as_json``): their counts, or where they come from."""
    total, counts = data.get("items"), dict(data.get("counts") or {})
    if not data.get("known", True) or total is None:
        return f"📦 items from {data.get('each') or 'its Each cell'}, known when it has run"
    parts = [f"📦 {counts.get('completed', 0):,} of {total:,} done"]
    for word, states in _SAID:
        count = sum(int(counts.get(state, 0)) for state in states)
        if count:
            parts.append(f"{count:,} {word}")
    return ", ".join(parts)


def shown_for(workspace: Workspace, row: str, each: str, listed: int | None) -> dict[str, Any]:
    """What ``status --json`` says of a row's items: the last run's summary, else what its cell says
    (``listed``: the items of a list; ``None``: known when it runs)."""
    found = summary_of(workspace, row)
    data = (
        found.as_json() if found is not None else RowSummary(row, listed or 0, {}, listed is not None, each).as_json()
    )
    return {**data, "said": said(data)}


def add_counts(plan: Plan, workspace: Workspace, shown: list[dict[str, Any]]) -> None:
    """Each row run per item of ``shown`` (tasks as ``status --json`` says them) given its
    ``items``: what every view says of its counts (``status``, ``list``, the dashboard)."""
    for entry in shown:
        task = plan.tasks.get(entry["id"])
        if task is not None and task.each is not None:
            listed = task.each.known_now()
            entry["items"] = shown_for(workspace, task.id, task.each.cell, len(listed) if listed is not None else None)
