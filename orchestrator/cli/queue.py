"""The living queue from outside a run, on the command line: ``add``, ``cancel``, ``retry`` (their
work: ``commands/changing`` and ``commands/adding``), and what ``spawn`` shares with ``add``.

A run going on takes what these ask within a second (``run/inflight/live``): ``add`` writes the row into
master_plan.md, which the run reads again; ``cancel`` and ``retry`` append a request to the event
log and wait for the run's answer there (``run/inflight/requests``, which the dashboard's buttons use too).
With no run going on, they change what the next run does, holding the workspace lock as ``reset``
does.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from orchestrator.cli.doors import register_command
from orchestrator.cli.output import Commands, column_options, find_workspace
from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from orchestrator.state.workspace import Workspace


def split_words(words: list[str], usage: str, *, at_most: int = 2) -> tuple[Workspace, list[str]]:
    """An optional workspace before the command's own words."""
    if len(words) > at_most:
        raise UsageError(f"too many arguments: {usage}")
    if not words:
        raise UsageError(f"too few arguments: {usage}")
    workspace = find_workspace(words[0] if len(words) == at_most else None)
    return workspace, words[1:] if len(words) == at_most else words


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    """``add``, ``cancel``, ``retry``, ``budget``: their parsers from ``commands/table``, their work in
    ``commands/changing`` (``budget``: ``commands/budgeting``)."""
    for name in ("add", "cancel", "retry", "budget"):
        register_command(sub, name)


def task_options(parser: argparse.ArgumentParser, *, tag_flags: tuple[str, ...], tag_help: str) -> None:
    """The options of the row ``add`` writes, which ``spawn`` takes too: one per column ``add``
    sets (``column_options``), the Tags column's under ``tag_flags``."""
    column_options(parser, "add", names={"tags": tag_flags}, helps={"tags": tag_help})
