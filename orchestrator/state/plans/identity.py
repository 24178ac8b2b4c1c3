"""``state/agents.json``: the agent id each task was given, kept so that it never changes hands.

``orchestrator.plan.identity`` decides; this module reads and writes the book. A workspace made
before the book existed has one made up from its briefs and results, each of which names its
task and agent in its frontmatter, so its tasks keep the files they have.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from orchestrator.documents import read_metadata, read_regular
from orchestrator.errors import WorkspaceError
from orchestrator.plan.identity import NUMBERED, Book, highest_number
from orchestrator.state import store

if TYPE_CHECKING:  # (types only: the workspace loads its plan with these, so they may not import it)
    from orchestrator.state.workspace import Workspace

_NOTE = (
    "Written by orchestrator. The agent id each task was given: its brief, result and logs are named "
    "after it, and it stays with the task whatever happens to the table. Do not edit."
)


def read_book(workspace: Workspace) -> Book:
    """The book of ``workspace``; made up from its briefs and results when it has none yet."""
    path = workspace.agents_file
    try:
        data = json.loads(read_regular(path))
    except FileNotFoundError:
        return seed_book(workspace)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise WorkspaceError(
            f"{workspace.relative(path)}: cannot be read ({exc}) — delete it to have it made again from the "
            "briefs and results"
        ) from None
    book = _from_json(data)
    if book is None:
        raise WorkspaceError(
            f"{workspace.relative(path)}: not a book of agent ids — delete it to have it made again from the "
            "briefs and results"
        )
    return book


def write_book(workspace: Workspace, book: Book) -> None:
    data: dict[str, Any] = {
        "note": _NOTE,
        "width": book.width,
        "next": book.next_number,
        "agents": book.agents,
        "retired": book.retired,
    }
    store.write_text(workspace.agents_file, json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def seed_book(workspace: Workspace) -> Book:
    """The agent ids the briefs and results on disk were written for (``task`` and ``agent`` in
    their frontmatter): what a workspace made before ``state/agents.json`` had given."""
    agents: dict[str, str] = {}
    seen: list[str] = []
    for directory, suffix in ((workspace.tasks_dir, ".md"), (workspace.results_dir, "-result.md")):
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            if not name.endswith(suffix) or name.startswith("."):
                continue
            meta = read_metadata(directory / name)
            if meta is None:
                continue
            task, agent = meta.get("task"), meta.get("agent")
            if isinstance(task, str) and isinstance(agent, str) and agent.lower() + suffix == name.lower():
                agents.setdefault(task, agent)
                seen.append(agent)
    width = 0
    for agent in seen:
        match = NUMBERED.fullmatch(agent)
        if match:
            width = max(width, len(match.group(1)))
    return Book(agents, {}, highest_number(seen) + 1, width)


def _from_json(data: object) -> Book | None:
    if not isinstance(data, dict):
        return None
    agents, retired = data.get("agents", {}), data.get("retired", {})
    width, number = data.get("width", 0), data.get("next", 1)
    if not (_text_map(agents) and _text_map(retired) and isinstance(width, int) and isinstance(number, int)):
        return None
    return Book(dict(agents), dict(retired), number, width)


def _text_map(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def book_outdated(workspace: Workspace, book: Book) -> bool:
    """Whether ``book`` must be written: there is none on disk yet, or it says something else."""
    return not workspace.agents_file.exists() or read_book(workspace) != book
