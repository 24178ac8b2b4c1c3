"""A workspace's plan, assembled: the plan's file read, with what the workspace keeps beside it.

A plan read alone (``plan/parser``) knows nothing of the workspace it lives in; a workspace
(``state/workspace``) is its paths, and reads no plan. What joins them is here, above both and
above what the workspace keeps for its plan: the agent id each task was given
(``state/plans/identity``), the tasks ``archive`` moved out (``state/kept/archive``), and the
parameters' values the last runs gave (``state/plans/params``). Those name a ``Workspace`` for its
paths; none of them is named by it. The plan's ``redact`` patterns become the process's
(``redaction.use``): whatever it writes of the workspace is redacted by them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.state.workspace import Workspace

if TYPE_CHECKING:
    from orchestrator.plan.model import Plan


def plan_of(
    workspace: Workspace,
    params: Mapping[str, str] | None = None,
    *,
    complete: bool = False,
    untrusted: str | None = None,
    text: str | None = None,
) -> Plan:
    """The plan of ``workspace``, its tasks with the agent ids it gave them (``state/agents.json``)
    and its parameters' values (``plan/config/params.py``): ``params`` over those the last runs
    gave (``state/params.json``) over the defaults; ``complete``: every one has a value, or a
    ``UsageError`` says how to give it. ``untrusted``: ``params`` came from outside (``github``,
    ``api``, ``mcp``): they alone, over the defaults, and each a value from there. ``text``: the
    plan its file would hold with that text, read as the file is (a write checked before it is
    made: ``add``, ``update``, held to what ``validate`` holds the file to)."""
    from orchestrator import redaction
    from orchestrator.plan.config.filling import resolve
    from orchestrator.state.plans.params import Remembered, read

    given = dict(params or {})
    plan = _read(workspace) if text is None else _parsed(workspace, text)
    redaction.use(plan.settings.redact)  # (what this process writes of the workspace's tasks is redacted by them)
    if untrusted is not None:
        kept = Remembered({}, dict.fromkeys(given, untrusted))
    else:
        kept = read(workspace) if plan.settings.params else Remembered()
        kept = Remembered(kept.values, {k: v for k, v in kept.untrusted.items() if k not in given})
    return resolve(plan, kept.values, given, complete=complete, untrusted=kept.untrusted)


def load_plan(directory: str | Path | None = None) -> Plan:
    """The plan of the workspace at ``directory`` (as ``Workspace.find`` takes it: the workspace,
    its project, or its master_plan.md), each task with the agent id its workspace gave it."""
    return plan_of(Workspace.find(directory))


def _parsed(workspace: Workspace, text: str) -> Plan:
    """``text`` read as the workspace's plan file (never kept: it is not on disk)."""
    from orchestrator.plan.parser import parse_plan
    from orchestrator.state.kept.archive import archived_tasks
    from orchestrator.state.plans.identity import read_book

    return parse_plan(text, workspace.plan_file, book=read_book(workspace), archived=archived_tasks(workspace))


def _read(workspace: Workspace) -> Plan:
    """The plan as read from its file, with the workspace's agent ids and archive (in a long-lived
    process, kept while those files are the same, ``memo``: a copy, which what reads it may change)."""
    import copy
    import os

    from orchestrator.plan.parser import read_plan
    from orchestrator.state import memo
    from orchestrator.state.kept.archive import archived_tasks
    from orchestrator.state.plans.identity import read_book

    def read() -> Plan:
        return read_plan(workspace.plan_file, book=read_book(workspace), archived=archived_tasks(workspace))

    if not memo.enabled():
        return read()
    try:
        archived = sorted(workspace.archive_dir / name for name in os.listdir(workspace.archive_dir))
    except OSError:
        archived = []
    sources = (
        workspace.plan_file,
        workspace.agents_file,
        workspace.results_dir,
        workspace.tasks_dir,
        workspace.archive_dir,
        *archived,
    )
    kept = memo.kept(("plan", str(workspace.plan_file)), sources, read)
    plan = copy.copy(kept)
    plan.tasks = dict(kept.tasks)
    return plan
