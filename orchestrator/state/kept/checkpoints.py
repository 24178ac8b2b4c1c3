"""``checkpoints/NAME/``: a workspace's results and state as they were when ``checkpoint save``
kept them, for ``checkpoint restore`` to return to.

A checkpoint holds what decides what the next run does and what the user reads: ``results/``
(every file), the briefs (``agent_tasks/*.md``: a brief edited by hand is what its task runs from,
and part of its fingerprint), ``master_plan.md``, ``final_output.md``, and of ``state/`` the
parameters, agent ids and approvals. Not the logs, the event log nor the attempt journal: they
are history, kept as they are (a restore is one more event in it), and a result's logs stay where
it names them. Not ``worktrees/`` nor any git branch: work on them is never touched.

Saved into a directory beside it first, its ``manifest.json`` written last, then renamed into
place: a checkpoint is whole or absent. A restore first saves what it replaces as the checkpoint
``before-restore-<time>``: nothing is ever lost to it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import UsageError
from orchestrator.state import events, store
from orchestrator.state.events.base import EventKind
from orchestrator.state.workspace import Workspace

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MANIFEST = "manifest.json"
_STATE = ("state/params.json", "state/agents.json", "state/approvals.jsonl")
_FILES = ("master_plan.md", "final_output.md", *_STATE)
_BRIEFS = "agent_tasks"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    name: str
    saved: str  # when, ISO 8601 with its offset
    files: tuple[str, ...]  # relative to the workspace
    results: int  # how many result files

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "saved": self.saved, "results": self.results, "files": list(self.files)}


def directory(workspace: Workspace) -> Path:
    return workspace.checkpoints_dir


def check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise UsageError(
            f"checkpoint name {name!r}: use letters, digits, '.', '_' and '-' (up to 64, a letter or digit first)"
        )


def _present(workspace: Workspace) -> list[str]:
    """The files a checkpoint of the workspace now holds, relative to it."""
    found = [name for name in _FILES if (workspace.root / name).is_file()]
    if workspace.results_dir.is_dir():
        found += sorted(f"results/{p.name}" for p in workspace.results_dir.iterdir() if p.is_file())
        found += sorted(f"results/{name}" for name in workspace.result_names() if "/" in name)  # (rows' items)
    if workspace.tasks_dir.is_dir():  # (a checkpoint saved before briefs were kept holds none: a
        # restore of it removes them, and the next run renders them from the plan it brings back)
        briefs = workspace.tasks_dir.iterdir()
        found += sorted(f"{_BRIEFS}/{p.name}" for p in briefs if p.suffix == ".md" and p.is_file())
    return found


def find(workspace: Workspace, name: str) -> Checkpoint | None:
    try:
        data = json.loads((directory(workspace) / name / MANIFEST).read_text(encoding="utf-8"))
        files = tuple(str(f) for f in data["files"])
        return Checkpoint(str(data["name"]), str(data["saved"]), files, int(data["results"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def every(workspace: Workspace) -> list[Checkpoint]:
    """The checkpoints of the workspace, oldest first (a directory without its manifest is none)."""
    try:
        names = [p.name for p in directory(workspace).iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []
    found = [c for name in names if (c := find(workspace, name)) is not None]
    return sorted(found, key=lambda c: (c.saved, c.name))


def save(workspace: Workspace, name: str, saved: str) -> Checkpoint:
    """Keep the workspace's results and state as ``name``; the caller holds the workspace lock."""
    check_name(name)
    final = directory(workspace) / name
    if final.exists():
        raise UsageError(
            f"checkpoint {name!r} exists ({workspace.relative(final)}) — give another name, "
            f"or restore it with `orchestrator checkpoint restore {name}`"
        )
    staging = directory(workspace) / f".{name}.saving-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    files = _present(workspace)
    for relative in files:
        target = staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(workspace.root / relative, target)
    checkpoint = Checkpoint(name, saved, tuple(files), sum(1 for f in files if f.startswith("results/")))
    staging.mkdir(parents=True, exist_ok=True)
    store.sync_files(staging / relative for relative in files)
    store.write_text(staging / MANIFEST, json.dumps(checkpoint.as_json(), indent=1) + "\n")  # last: it is whole
    os.rename(staging, final)
    store.fsync_directory(final.parent)
    from orchestrator.state.events.runs import CheckpointSaved  # (here: `status` reads checkpoints, writes none)

    events.append(workspace.events_file, [CheckpointSaved(time=saved, name=name)])
    return checkpoint


def restore(workspace: Workspace, name: str, when: str, stamp: str) -> tuple[Checkpoint, Checkpoint]:
    """Bring back checkpoint ``name``'s files: each written atomically, and a file it did not hold
    (a result or a brief written since) removed, once all that is replaced is kept as the checkpoint
    ``before-restore-<stamp>`` (``-2``, ``-3``... after it within the same second). Its
    ``checkpoint_restored`` records the digest of each result it brought back, by which ``verify``
    tells one changed since. The caller holds the workspace lock. Returns both checkpoints."""
    from orchestrator.state.events.chain import digest
    from orchestrator.state.events.runs import CheckpointRestored

    check_name(name)
    checkpoint = find(workspace, name)
    if checkpoint is None:
        known = ", ".join(c.name for c in every(workspace)) or "none yet"
        raise UsageError(
            f"no checkpoint {name!r} in {workspace.root.name}/ (there are: {known}) — see `checkpoint list`"
        )
    source = directory(workspace) / name
    name_before, n = f"before-restore-{stamp}", 1
    while (directory(workspace) / name_before).exists():  # (two restores within the stamp's second)
        n += 1
        name_before = f"before-restore-{stamp}-{n}"
    before = save(workspace, name_before, when)
    kept = set(checkpoint.files)
    for relative in before.files:
        if relative not in kept:
            store.remove(workspace.root / relative)
    brought: dict[str, str] = {}  # each result brought back: the digest of its bytes, for ``verify``
    for relative in checkpoint.files:
        target = workspace.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        data = (source / relative).read_bytes()
        store.write_bytes(target, data)
        if relative.startswith("results/"):
            brought[relative.removeprefix("results/")] = digest(data)
    events.append(
        workspace.events_file,
        [CheckpointRestored(time=when, name=name, before=before.name, results=brought)],
    )
    return checkpoint, before


def restored(workspace: Workspace) -> dict[str, Any] | None:
    """The last ``checkpoint restore``, while no run has started since (the next run goes on from
    what it brought back, and its own record tells of it): ``checkpoint`` (its name), ``saved``
    (when it was kept; ``None`` if it is gone since), ``time`` (when it was restored) and
    ``before`` (the checkpoint that keeps what it replaced). What ``status`` (text and
    ``--json``'s ``restored``), the dashboard and ``report`` say of it."""
    start = events.last_run_start(workspace.events_file) or 0
    restores = f'"{EventKind.CHECKPOINT_RESTORED}"'.encode()  # (their lines, for a cheap look)
    told = events.read_new(workspace.events_file, events.Cursor(start), only=(restores,))
    if not told:
        return None
    from orchestrator.state.events.runs import CheckpointRestored  # (the records: built once one is read)

    last = next((e for e in reversed(told) if isinstance(e, CheckpointRestored)), None)
    if last is None:
        return None
    kept = find(workspace, str(last.name))
    return {
        "checkpoint": last.name,
        "saved": kept.saved if kept is not None else None,
        "time": last.time,
        "before": last.before or None,  # (none said: a line of a version before)
    }


def restored_note(found: dict[str, Any]) -> str:
    """The line ``status``, the dashboard and ``report`` give a restore (``restored``'s dict)."""
    saved = f" (saved {found['saved']})" if found["saved"] else ""
    return (
        f"⏪ restored from checkpoint {found['checkpoint']}{saved} at {found['time']}; what it replaced is kept "
        f"as checkpoint {found['before']} (`orchestrator checkpoint restore {found['before']}` goes back)"
    )
