"""``cache/<task>/<key>.md``: completed results kept by the content they came from (``run/resume/reuse.py``
makes the key), for a later run to reuse instead of running the task again.

Each entry is a copy of the result file as the run wrote it (its frontmatter and body), written
atomically: a killed writer leaves the entry whole or absent. An entry is only ever added or
replaced by one of the same key, never edited; removing ``cache/`` costs only re-runs, and
``reset`` removes its tasks' entries (``forget``): a task reset runs for real.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from orchestrator.documents import output_of, parse, sha256
from orchestrator.state import store
from orchestrator.state.results import ResultRecord
from orchestrator.state.workspace import Workspace

_KEY = re.compile(r"[0-9a-f]{16,64}")
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def directory(workspace: Workspace) -> Path:
    return workspace.cache_dir


def task_directory(workspace: Workspace, task_id: str) -> Path:
    """The directory of ``task_id``'s entries: its id, or a digest of an id no file may be named."""
    name = task_id if _PLAIN.fullmatch(task_id) else "id-" + sha256(task_id)[:16]
    return directory(workspace) / name


def is_key(name: str) -> bool:
    return _KEY.fullmatch(name) is not None


def entry(workspace: Workspace, task_id: str, key: str) -> Path:
    if not is_key(key):  # (a key is ours: hex; never a path of a person's choosing)
        raise ValueError(f"not a cache key: {key!r}")
    return task_directory(workspace, task_id) / f"{key}.md"


def forget(workspace: Workspace, task_ids: Iterable[str]) -> None:
    """Remove the entries of ``task_ids`` (``reset``: they run for real next time)."""
    for task_id in task_ids:
        shutil.rmtree(task_directory(workspace, task_id), ignore_errors=True)


def keep(workspace: Workspace, task_id: str, key: str, result: Path) -> None:
    """Keep the result file at ``result`` as ``key``'s entry (nothing when it cannot be read)."""
    try:
        data = result.read_bytes()
    except OSError:
        return
    path = entry(workspace, task_id, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    store.write_bytes(path, data, durable=False, parent_exists=True)


def find(workspace: Workspace, task_id: str, key: str) -> tuple[ResultRecord, str] | None:
    """``key``'s entry: the record and the body it was written with, or ``None`` (none, or one
    that cannot be read as a completed result: it is not reused)."""
    try:
        text = entry(workspace, task_id, key).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        meta, _ = parse(text)
    except ValueError:  # (an entry broken by hand: a miss, the task runs)
        return None
    record = ResultRecord.from_mapping(meta)
    if record is None:
        return None
    return record, output_of(text)  # (as the task printed it: its first line's indentation kept)
