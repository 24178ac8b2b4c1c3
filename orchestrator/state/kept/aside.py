"""A file set aside rather than written over or deleted: one a brief or result of another task, one
a hand edit left unreadable or edited, kept beside it under a name that says why. Nothing that may
be a person's work is lost to a write of the tool's."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator import documents


def set_aside(path: Path, task_id: str, *, unreadable: bool = False) -> Path | None:
    """If ``path`` holds a brief or result of a task other than ``task_id`` (its frontmatter says
    whose), rename it to ``<name>.<its task>.md`` beside it and return the new path: nothing is
    overwritten that may be somebody's work. ``unreadable``: a file there whose frontmatter names
    no task, or cannot be read at all (a hand edit broke it), is renamed ``<name>.unreadable.md``."""
    meta = documents.read_metadata(path)
    owner = meta.get("task") if meta is not None else None
    if isinstance(owner, str) and owner and owner.lower() != task_id.lower():
        return move_aside(path, owner)
    if unreadable and not (isinstance(owner, str) and owner) and documents.metadata_problem(path) is not None:
        return move_aside(path, "unreadable")
    return None


def move_aside(path: Path, label: str) -> Path | None:
    """Rename ``path`` to ``<name>.<label>.md`` beside it (``.<label>.2.md`` if that is taken, and
    so on), and return the new path; ``None`` when it is gone already, or no name is free."""
    stem = path.name.removesuffix(".md")
    for number in range(1, 1000):
        suffix = f".{label}.md" if number == 1 else f".{label}.{number}.md"
        target = path.with_name(stem + suffix)
        if not target.exists():
            try:
                os.rename(path, target)
            except FileNotFoundError:
                return None
            return target
    return None
