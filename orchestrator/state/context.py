"""The channels tasks talk through (``share``, ``note``, ``discover``, ``sync``): append-only
markdown under ``.orchestrator/context/``, a person can read as it is::

    context/shared.md         every share: updates any task may read
    context/discoveries.md    every discovery: findings that matter to everyone; each task that
                              starts later is given them in its prompt (``run.prompt``)
    context/sync.md           checkpoints in the run's record
    context/notes/T-03.md     T-03's notes: its private reasoning, shown with T-03 only

Each file opens with a title line; each entry is a heading line (its time, its task, its kind,
and who wrote it when that was said: ``--as``, ``$ORCHESTRATOR_AGENT``) and the text::

    ## 2026-11-23T10:00:00.000+01:00 · T-03 · discover · by Agent-03

    The API pages at 100 items, not 1000.

Entries are only ever appended, each in one ``write()`` to the file opened with ``O_APPEND``:
concurrent writers (ten agents sharing at once) never mix their entries, and a killed writer
leaves whole ones. A file is created with its title by a hard link of a complete temp file, so a
second creator cannot put its title after the first one's entries. An entry starts with a blank
line, so even one a power cut tore leaves the next heading on a line of its own. A text line that
would read as a heading (``#`` at its start, after up to three spaces) is written with a
backslash before the ``#``, which markdown shows as the ``#`` itself and no reader here takes for
a heading: no text can forge another entry.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from orchestrator.documents import read_regular
from orchestrator.errors import WorkspaceError
from orchestrator.moments import now_iso
from orchestrator.printable import visible
from orchestrator.state import events, store
from orchestrator.state.workspace import Workspace

MAX_TEXT = 20_000  # characters one entry holds: longer material belongs in a file the entry names


class Kind(StrEnum):
    """What an entry is, and so where it is kept."""

    SHARE = "share"
    NOTE = "note"
    DISCOVER = "discover"
    SYNC = "sync"


_FILES = {Kind.SHARE: "shared.md", Kind.DISCOVER: "discoveries.md", Kind.SYNC: "sync.md"}
_TITLES = {
    Kind.SHARE: "# Shared updates\n",
    Kind.DISCOVER: "# Discoveries\n",
    Kind.SYNC: "# Checkpoints\n",
    Kind.NOTE: "# Notes of {task}\n",
}
AUTHOR_RE = re.compile(r"[A-Za-z0-9._@+-]{1,64}")  # who wrote an entry: one word, as an agent id is
_HEADING_RE = re.compile(
    r"^## (\S+) · (?:([A-Za-z0-9._-]+) · )?(share|note|discover|sync)(?: · by ([A-Za-z0-9._@+-]{1,64}))?$"
)
_ESCAPE_RE = re.compile(r"^( {0,3})(\\*#)", re.M)
_UNESCAPE_RE = re.compile(r"^( {0,3})\\(\\*#)", re.M)


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of a channel."""

    time: str  # ISO 8601, local time with its offset
    task: str | None  # None: a checkpoint no task made
    kind: Kind
    text: str
    author: str | None = None  # who wrote it (``--as``, ``$ORCHESTRATOR_AGENT``); None: not said

    def heading(self) -> str:
        task = f"{self.task} · " if self.task else ""
        return f"## {self.time} · {task}{self.kind.value}" + (f" · by {self.author}" if self.author else "")

    def markdown(self) -> str:
        """The entry as its file holds it (a heading-like line of its text escaped)."""
        return f"{self.heading()}\n\n{_escape(self.text)}\n"

    def as_json(self) -> dict[str, Any]:
        return {"time": self.time, "task": self.task, "kind": self.kind.value, "text": self.text, "author": self.author}


def channel_file(workspace: Workspace, kind: Kind, task: str | None = None) -> Path:
    """The file that keeps entries of ``kind`` (a note: the file of ``task``'s notes)."""
    if kind is Kind.NOTE:
        if not task:
            raise ValueError("a note belongs to a task")
        return workspace.context_dir / "notes" / f"{task}.md"
    return workspace.context_dir / _FILES[kind]


def clean_text(text: str) -> str:
    """``text`` as an entry keeps it: newlines made ``\\n``, blank space at its ends dropped.
    ``ValueError`` says in words why it cannot be an entry."""
    if "\0" in text:
        raise ValueError("the text holds a NUL character (\\0)")
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise ValueError("the text is empty: say what to record")
    if len(text) > MAX_TEXT:
        raise ValueError(
            f"the text is {len(text):,} characters, more than the {MAX_TEXT:,} an entry holds — "
            "write it to a file and record where it is"
        )
    return visible(text)  # (a markdown file, shown in prompts and on terminals: no control character)


def _escape(text: str) -> str:
    return _ESCAPE_RE.sub(r"\1\\\2", text)


def _unescape(text: str) -> str:
    return _UNESCAPE_RE.sub(r"\1\2", text)


def append(workspace: Workspace, kind: Kind, task: str | None, text: str, author: str | None = None) -> Entry:
    """Append one entry (``text`` as ``clean_text`` leaves it; ``author``: one word, ``AUTHOR_RE``)
    and return it as readers will see it."""
    kept = clean_text(text)
    if author is not None and not AUTHOR_RE.fullmatch(author):
        raise ValueError(f"{author!r} is not a name an entry keeps: one word of letters, digits and . _ - @ +")
    entry = Entry(now_iso(), task, kind, kept, author)
    path = channel_file(workspace, kind, task)
    path.parent.mkdir(parents=True, exist_ok=True)
    _check_inside(workspace, path.parent)
    _create(path, _TITLES[kind].format(task=task))
    data = f"\n{entry.markdown()}".encode()
    store.append(path, data, sync=True)
    return entry


def _check_inside(workspace: Workspace, directory: Path) -> None:
    """Nothing is written through a directory link that leads out of the workspace (context/notes/
    included, which ``Workspace.check_inside`` does not look at)."""
    root, target = os.path.realpath(workspace.root), os.path.realpath(directory)
    if os.path.commonpath([root, target]) != root:
        raise WorkspaceError(
            f"{workspace.relative(directory)}: leads to {target}, outside {workspace.root.name}/ — the "
            f"orchestrator writes only inside its workspace: make it a directory there"
        )


def _create(path: Path, title: str) -> None:
    """``path`` with its title, unless it is there: created whole (a link of a complete temp
    file), so that a writer that appends to it at once appends after the title."""
    if os.path.lexists(path):
        return
    temp = Path(store.write_temp(path, title.encode(), sync=True, exists=False))
    try:
        os.link(temp, path)
        store.fsync_directory(path.parent)
    except FileExistsError:
        pass  # another writer made it first
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)


def read(path: Path) -> list[Entry]:
    """The entries of one channel file, oldest first (none if it is missing)."""
    try:
        text = read_regular(path).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    found: list[Entry] = []
    heading: re.Match[str] | None = None
    lines: list[str] = []

    def close() -> None:
        if heading is not None:
            body = _unescape("\n".join(lines).strip("\n"))
            found.append(Entry(heading.group(1), heading.group(2), Kind(heading.group(3)), body, heading.group(4)))

    for line in text.split("\n"):
        match = _HEADING_RE.match(line)
        if match is not None:
            close()
            heading, lines = match, []
        elif heading is not None:
            lines.append(line)
    close()
    return found


def read_kind(workspace: Workspace, kind: Kind, task: str | None = None) -> list[Entry]:
    return read(channel_file(workspace, kind, task))


@dataclass(frozen=True, slots=True)
class TaskContext:
    """What ``context T-03`` shows: the shares of T-03 and of every task upstream of it, every
    discovery (they matter to everyone), and T-03's own notes."""

    task: str
    upstream: list[str]
    shared: list[Entry]
    discoveries: list[Entry]
    notes: list[Entry]

    def as_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "upstream": self.upstream,
            "shared": [e.as_json() for e in self.shared],
            "discoveries": [e.as_json() for e in self.discoveries],
            "notes": [e.as_json() for e in self.notes],
        }


def task_context(workspace: Workspace, task: str, upstream: list[str]) -> TaskContext:
    """The context of ``task``, whose upstream (every task it depends on, directly or not) is ``upstream``."""
    mine = {task, *upstream}
    shared = [e for e in read_kind(workspace, Kind.SHARE) if e.task in mine]
    return TaskContext(
        task, upstream, shared, read_kind(workspace, Kind.DISCOVER), read_kind(workspace, Kind.NOTE, task)
    )


def running_run(events_file: Path) -> str | None:
    """The run going on in the workspace, by its name (the ``run`` its events carry), or None."""
    live = events.live_run(events_file)
    return live.run if live is not None else None


def status_data(workspace: Workspace, latest: int = 3) -> dict[str, Any]:
    """For ``status``: how many discoveries there are, and the ``latest`` few, newest first (and
    why not, when the file cannot be read: ``status`` reports the tasks all the same)."""
    try:
        found = read_kind(workspace, Kind.DISCOVER)
    except OSError as exc:
        where = workspace.relative(channel_file(workspace, Kind.DISCOVER))
        return {"count": 0, "latest": [], "problem": f"{where}: {exc.strerror or exc}"}
    return {"count": len(found), "latest": [e.as_json() for e in reversed(found[-latest:])]}


def status_lines(data: dict[str, Any]) -> list[str]:
    """``status_data`` in words: a Discoveries section, each entry on one line."""
    if data.get("problem"):
        return [f"Discoveries: cannot be read ({data['problem']})"]
    if not data["count"]:
        return []
    lines = [f"Discoveries: {data['count']} (newest first; `orchestrator context TASK` shows them all)"]
    for entry in data["latest"]:
        text = " ".join(entry["text"].split())
        lines.append(f"  💡 {entry['task'] or 'the run'}: {text if len(text) <= 100 else text[:99] + '…'}")
    return lines
