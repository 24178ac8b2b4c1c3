"""The agent briefs, ``agent_tasks/agent-NN.md``: rendered from ``agent_task.md.j2``, never
written over a hand edit.

A brief records the hash of the body it was rendered with (``content_hash``); a body that no
longer matches was edited by hand and is kept (``render --force`` replaces it). What an attempt
gets is the brief as it is on disk when it starts.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from orchestrator import documents
from orchestrator.documents import compose, parse
from orchestrator.errors import WorkspaceError
from orchestrator.output.templates import Templates
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.identity import Book
from orchestrator.plan.model import Plan, Task
from orchestrator.state import store
from orchestrator.state.kept.aside import set_aside
from orchestrator.state.plans.identity import book_outdated, write_book
from orchestrator.state.workspace import Workspace
from orchestrator.version import __version__

BRIEF_TEMPLATE = "agent_task.md.j2"


def brief_inputs(
    plan: Plan, workspace: Workspace, task: Task, result_names: Mapping[str, str] | None = None
) -> list[dict[str, str]]:
    """The results a task's brief points to; ``result_names`` (task id -> result file as the user
    types it) saves rendering every brief from spelling each task's name once per dependent."""
    if result_names is None or task.archived_upstream:
        return [{"task": dep.id, "path": workspace.result_name(dep)} for dep in plan.inputs_of(task)]
    return [{"task": dep, "path": result_names[dep]} for dep in task.dependencies]


def brief_metadata(
    plan: Plan,
    workspace: Workspace,
    task: Task,
    inputs: list[dict[str, str]] | None = None,
    *,
    settings: Settings | None = None,
) -> dict[str, Any]:
    if settings is None:
        settings = plan.settings_for(task)
    if inputs is None:
        inputs = brief_inputs(plan, workspace, task)
    return {
        "task": task.id,
        "agent": task.agent,
        "name": task.title,
        "dependencies": list(task.dependencies),
        "priority": task.priority_name,
        "profile": task.profile,
        "inputs": [i["path"] for i in inputs],
        "settings": {"backend": settings.backend, "timeout": settings.timeout, "retries": settings.retries},
    }


def render_brief(plan: Plan, workspace: Workspace, task: Task, templates: Templates) -> str:
    return _render_brief(plan, workspace, task, templates)[1]


def brief_body(plan: Plan, workspace: Workspace, task: Task, templates: Templates) -> str:
    """The body of ``task``'s brief as ``render_briefs`` would give it now, with nothing written:
    the brief on disk when it is this task's and was edited by hand (one that is not UTF-8
    counts as edited: run refuses it), else the brief rendered."""
    kept = edited_body(workspace, task)
    return kept if kept is not None else _render_brief(plan, workspace, task, templates)[0]


def edited_body(workspace: Workspace, task: Task) -> str | None:
    """The body of ``task``'s brief on disk when ``render_briefs`` would keep it (this task's,
    edited by hand), else ``None``: it would render it."""
    try:
        found = documents.read_regular(workspace.brief(task)).decode("utf-8")
    except OSError:
        return None
    except UnicodeDecodeError:
        return ""
    owner = _owner(found)
    if (owner is not None and owner.lower() != task.id.lower()) or not brief_was_edited(found):
        return None
    try:
        return parse(found)[1]
    except ValueError:
        return ""


def _params(plan: Plan, task: Task) -> list[dict[str, Any]]:
    """What a brief says of the parameters its task uses (``filling.brief_params``, imported when
    a plan has any: ``status`` reads briefs, and a plan of none needs not the shell's reading of
    scripts that filling brings)."""
    item = _item(plan, task) if task.item is not None else []
    if not task.params and not plan.context_params:
        return item
    from orchestrator.plan.config.filling import brief_params

    return [*brief_params(plan, task), *item]


def _item(plan: Plan, task: Task) -> list[dict[str, Any]]:
    """An instance's item (``plan/instances``), as a brief says a parameter: from outside when an
    upstream's answer gave it, quoted apart as data."""
    from orchestrator.plan.instances import ITEM_VARIABLE
    from orchestrator.printable import visible

    row = plan.tasks.get(task.row or "")
    each = row.each if row is not None else None
    outside = f"{each.upstream}'s answer" if each is not None and each.upstream is not None else None
    return [{"name": "item", "value": visible(task.item or ""), "variable": ITEM_VARIABLE, "untrusted": outside}]


def _render_brief(
    plan: Plan,
    workspace: Workspace,
    task: Task,
    templates: Templates,
    result_names: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """(body, whole file text) of a task's brief. A dependency on an archived task is named as
    the row names it: the brief is the one it was before the archive (its fingerprint too)."""
    settings = plan.settings_for(task)
    inputs = brief_inputs(plan, workspace, task, result_names)
    if task.archived_upstream:
        task = replace(task, dependencies=task.upstream_ids)
    body = templates.render(
        BRIEF_TEMPLATE,
        task=task,
        inputs=inputs,
        result_path=workspace.result_name(task) if result_names is None else result_names[task.id],
        request=plan.request,
        goal=plan.goal,
        settings=settings,
        section=kind.get("section") if (kind := plan.type_of(task)) is not None else None,
        params=_params(plan, task),
    ).strip()  # as python-frontmatter strips it on reading, so the recorded hash matches
    meta = brief_metadata(plan, workspace, task, inputs, settings=settings)
    meta["rendered_by"] = _RENDERED_BY
    meta["content_hash"] = documents.sha256(body)
    return body, compose(meta, body + "\n")


_RENDERED_BY = f"orchestrator {__version__}"


@dataclass(slots=True)
class RenderReport:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept_edited: list[str] = field(default_factory=list)  # hand-edited briefs left alone
    # (task id, brief) of those whose task the plan has changed since the brief was rendered: the
    # change is not in the brief, so it does not run
    changed_under_edit: list[tuple[str, str]] = field(default_factory=list)
    # Briefs are kept as UTF-8 bytes: as str, one emoji makes a brief 4 bytes a character, and
    # 10,000 briefs held twice were most of a large run's memory.
    # (a brief to be written: its body is a view of the file's bytes in ``pending``, not a copy)
    bodies: dict[str, bytes | memoryview] = field(default_factory=dict)  # task id -> brief body as it now is on disk
    pending: list[tuple[Path, bytes]] = field(default_factory=list, repr=False)  # briefs to write
    set_aside: list[tuple[Path, str]] = field(default_factory=list, repr=False)  # (brief, new owner): move first
    moved_aside: list[tuple[str, str]] = field(default_factory=list)  # (brief, where it is now): another task's
    book: Book | None = field(default=None, repr=False)  # the agent ids to keep first, when they changed
    listed: set[str] = field(default_factory=set, repr=False)  # agent_tasks/ as prepare_briefs found it

    def as_json(self) -> dict[str, Any]:
        # (changed_under_edit: the kept briefs whose task the plan changed since: that change does not run)
        changed = [{"task": task_id, "brief": name} for task_id, name in self.changed_under_edit]
        return {
            "written": self.written,
            "unchanged": self.unchanged,
            "kept_edited": self.kept_edited,
            "changed_under_edit": changed,
            "moved_aside": [{"brief": name, "kept_as": kept} for name, kept in self.moved_aside],
        }


def brief_was_edited(text: str) -> bool:
    """True when a brief's body no longer matches the hash recorded when it was rendered."""
    try:
        meta, body = parse(text)
    except ValueError:
        return True
    recorded = meta.get("content_hash")
    return not isinstance(recorded, str) or recorded != documents.sha256(body.strip())


def render_briefs(
    plan: Plan, workspace: Workspace, *, force: bool = False, only: Collection[str] | None = None
) -> RenderReport:
    """Write ``agent_tasks/<agent>.md`` for every task (``only``: those tasks'); idempotent, and
    never silently over a hand edit."""
    report = prepare_briefs(plan, workspace, force=force, only=only)
    write_briefs(report, workspace)
    return report


def prepare_briefs(
    plan: Plan,
    workspace: Workspace,
    *,
    force: bool = False,
    only: Collection[str] | None = None,
    book: bool = True,
    templates: Templates | None = None,
) -> RenderReport:
    """What ``render_briefs`` would write, and why, with nothing written yet: every template
    error is raised here. ``write_briefs`` then writes it. ``only``: those tasks' briefs alone;
    ``book``: whether the agent book is looked at too."""
    templates = templates if templates is not None else Templates.of(workspace)
    report = RenderReport()
    pending = report.pending
    if only is not None and len(only) <= _FEW:  # (a brief or two: looked for, not the whole listing)
        present = {name for t in only if os.path.lexists(workspace.tasks_dir / (name := f"{plan.tasks[t].slug}.md"))}
    else:
        try:  # one listing instead of 10,000 failed opens on a first render
            present = set(os.listdir(workspace.tasks_dir))
        except FileNotFoundError:
            present = set()
    named = (
        plan.tasks if only is None else {t for task_id in only for t in (task_id, *plan.tasks[task_id].dependencies)}
    )
    result_names = {task_id: workspace.result_name(plan.tasks[task_id]) for task_id in named if task_id in plan.tasks}
    for task in plan.tasks.values() if only is None else [plan.tasks[t] for t in only]:
        path = workspace.brief(task)
        body, text = _render_brief(plan, workspace, task, templates, result_names)
        report.bodies[task.id] = encoded = body.encode("utf-8")
        rendered = text.encode("utf-8")
        del text
        existing: bytes | None = None
        if present and path.name in present:
            with contextlib.suppress(FileNotFoundError):
                existing = documents.read_regular(path)  # exact: no newline translation
        name = workspace.brief_name(task)
        if existing == rendered:
            report.unchanged.append(name)
            continue
        found: str | None = None
        if existing is not None:
            try:
                found = existing.decode("utf-8")
            except UnicodeDecodeError as exc:
                if not force:  # somebody's bytes, not a brief we wrote: not written over
                    raise WorkspaceError(
                        f"{name}: not UTF-8 text (byte {exc.start}) — fix the brief, or delete it to render it again"
                    ) from None
        owner = _owner(found) if found is not None else None
        if owner is not None and owner.lower() != task.id.lower():
            report.set_aside.append((path, task.id))  # another task's brief: moved aside, not overwritten
            found = None
        if found is not None and not force and brief_was_edited(found):
            report.kept_edited.append(name)
            try:
                meta, kept = parse(found)
            except ValueError as exc:
                raise WorkspaceError(f"{name}: {exc} — fix the brief, or delete it to render it again") from None
            report.bodies[task.id] = kept.encode("utf-8")
            if meta.get("content_hash") != documents.sha256(body):  # what the plan says now is not what it said
                report.changed_under_edit.append((task.id, name))
        else:
            pending.append((path, rendered))
            report.written.append(name)
            if rendered.endswith(encoded + b"\n"):  # (it is: the file ends with its body) held once, not twice
                report.bodies[task.id] = memoryview(rendered)[-1 - len(encoded) : -1]
    report.listed = present
    if book and book_outdated(workspace, plan.book):
        report.book = plan.book
    return report


_FEW = 16  # briefs ``prepare_briefs`` looks for one by one rather than listing agent_tasks/


class OnStart:
    """The briefs a run renders as their tasks start rather than before the first one starts: a
    row's instances' (rendering 100,000 of them took seconds, and held their text at once). Each
    brought up to date as ``render_briefs`` does (a hand edit kept, another task's file set
    aside, each said through ``tell``), written with the run's other files (made durable by its
    flush: a brief lost to a power cut is rendered again)."""

    def __init__(self, plan: Plan, workspace: Workspace, tell: Callable[[str], None]) -> None:
        self.plan, self.workspace, self.tell = plan, workspace, tell
        self.templates = Templates.of(workspace)

    def render(self, task_id: str) -> str | None:
        """``task_id``'s brief brought up to date; ``None``, or why it cannot be (a file in its
        place that is not UTF-8 text, as ``run`` refuses it before it starts)."""
        try:
            report = prepare_briefs(self.plan, self.workspace, only=[task_id], book=False, templates=self.templates)
        except WorkspaceError as exc:
            return str(exc)
        for path, owner in report.set_aside:
            if (moved := set_aside(path, owner)) is not None:
                self.tell(f"{self.workspace.relative(path)} is another task's brief: kept as {moved.name}")
        for path, data in report.pending:
            store.write_bytes(path, data, durable=False, parent_exists=True, exists=path.name in report.listed)
        for changed, name in report.changed_under_edit:
            self.tell(edit_notice(changed, name))
        return None


def edit_notice(task_id: str, name: str) -> str:
    """What a person is told of a brief kept as they edited it when what the plan renders for its task
    (its row, the request, a template) has changed since."""
    return (
        f"{name}: edited by hand, and what the plan gives {task_id} has changed since it was rendered: the brief is "
        "kept as edited, so that change does not run (`orchestrator render --force`, or deleting the brief, takes "
        "the plan's)"
    )


def write_briefs(report: RenderReport, workspace: Workspace) -> None:
    """Write the briefs ``prepare_briefs`` found to be new or changed (all at once, on a first
    render), after the agent book that names them (``state/agents.json``)."""
    if report.book is not None:
        write_book(workspace, report.book)
    for path, task_id in report.set_aside:
        if (moved := set_aside(path, task_id)) is not None:
            report.moved_aside.append((workspace.relative(path), moved.name))
    if report.pending:  # made with its files, on a first render (store.write_many)
        store.write_many(report.pending, listed={workspace.tasks_dir: report.listed}, whole=True)
    else:
        workspace.tasks_dir.mkdir(parents=True, exist_ok=True)


def _owner(text: str) -> str | None:
    """The task a brief's frontmatter names, or ``None``."""
    try:
        task = parse(text)[0].get("task")
    except ValueError:
        return None
    return task if isinstance(task, str) else None
