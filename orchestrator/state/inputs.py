"""``state/inputs/``: what an attempt's script reads of its upstream results, as files.

For each task, written when each of its attempts is prepared (its upstream results as they are
then), atomically, and kept until the next attempt of that task rewrites them:

    state/inputs/<slug>.txt   the upstream result files, one absolute path a line, in the order of
                              its Dependencies cell (``$ORCHESTRATOR_INPUTS_FILE``): no limit on
                              how many, where one environment variable holds some 1,500 paths
    state/inputs/<slug>/      the body of each upstream result alone, its output without the YAML
                              header, as ``<task id>.md`` (``$ORCHESTRATOR_INPUTS_DIR``); a body
                              file of a task it no longer depends on is removed

They are copies: results/ stays what a run reads and writes, and nothing here is ever a result.

A row's instances (``T-03[N]``) have the same upstream results, their row's: they share the row's
listing and bodies (``state/inputs/<row slug>``), written once while those results stay as they
were (``Book``), not a directory and a copy of every upstream answer an item.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.documents import read_output
from orchestrator.state import store
from orchestrator.state.workspace import Workspace

FILE_VARIABLE = "ORCHESTRATOR_INPUTS_FILE"
DIR_VARIABLE = "ORCHESTRATOR_INPUTS_DIR"
LIST_VARIABLE = "ORCHESTRATOR_INPUTS"  # the same list in one variable: unset when it cannot hold it


@dataclass(frozen=True, slots=True)
class Inputs:
    """Where one attempt's inputs were written."""

    listing: Path  # the result files, one a line
    bodies: Path  # the directory of ``<task id>.md`` bodies


def inputs_dir(workspace: Workspace) -> Path:
    return workspace.state_dir / "inputs"


def write_inputs(workspace: Workspace, slug: str, upstream: Sequence[tuple[str, Path]]) -> Inputs:
    """Write the inputs of the task ``slug`` from ``upstream`` (each dependency's id and result
    file). A dependency with no result file has no body file (the listing names it still)."""
    top = inputs_dir(workspace)
    listing, bodies = top / f"{slug}.txt", top / slug
    bodies.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{path}\n" for _, path in upstream)
    store.write_text(listing, text, durable=False, parent_exists=True)
    wanted: set[str] = set()
    for task_id, path in upstream:
        body = read_output(path)
        if body is None:
            continue
        name = f"{task_id}.md"
        wanted.add(name)
        store.write_text(bodies / name, body, durable=False, parent_exists=True)
    for name in os.listdir(bodies):
        if name.endswith(".md") and name not in wanted:
            store.remove(bodies / name, durable=False)
    return Inputs(listing, bodies)


class Book:
    """The inputs one run writes, each attempt's as it is prepared (``write``): a row's instances
    share their row's, written again only when an upstream result file has changed since."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._shared: dict[str, tuple[tuple[tuple[str, tuple[int, int, int] | None], ...], Inputs]] = {}

    def write(self, slug: str, upstream: Sequence[tuple[str, Path]], *, shared: bool = False) -> Inputs:
        """``write_inputs`` of the task ``slug``; ``shared``: ``slug`` is a row's, whose instances
        all read these (written once while each upstream result file is as it was: one ``stat``
        a file, where writing them took a directory, a listing and a copy of each)."""
        if not shared:
            return write_inputs(self.workspace, slug, upstream)
        seen = tuple((task_id, _stamp(path)) for task_id, path in upstream)
        held = self._shared.get(slug)
        if held is not None and held[0] == seen:
            return held[1]
        written = write_inputs(self.workspace, slug, upstream)
        self._shared[slug] = (seen, written)
        return written


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells a change of the file at ``path`` (rewritten atomically: a new inode), or ``None``."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_ino, found.st_mtime_ns, found.st_size
