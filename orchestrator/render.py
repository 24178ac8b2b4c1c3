"""Jinja templates in: agent briefs, the tool-written sections of master_plan.md, and the skeleton.

Every piece of user text is passed to templates as data, never as template source, so a task
description containing ``{{ 7*7 }}`` is written literally. A file of the same name in
``.orchestrator/templates/`` overrides the packaged one; overrides run in jinja2's sandbox, since a
cloned repository's templates must not run Python. The packaged templates are ours: they run in a
plain environment, where an attribute lookup costs a quarter of the sandbox's checked one.
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from . import __version__, store
from .errors import PlanError, Problem, WorkspaceError
from .markdown import replace_sections
from .plan import TOOL_SECTIONS, Plan, Task
from .settings import format_duration
from .status import TaskView, collect, counts, label
from .views import MERMAID_MAX_TASKS, mermaid, summary_line
from .workspace import Workspace

_PACKAGE_TEMPLATES = Path(__file__).parent / "templates"
_OPTIONS: dict[str, Any] = {"autoescape": False, "keep_trailing_newline": True, "undefined": jinja2.StrictUndefined}


def environment(workspace: Workspace | None) -> ImmutableSandboxedEnvironment:
    """The sandboxed environment: the workspace's ``templates/`` first, then the packaged ones."""
    loaders: list[jinja2.BaseLoader] = []
    if workspace is not None and workspace.templates_dir.is_dir():
        loaders.append(jinja2.FileSystemLoader(workspace.templates_dir))
    loaders.append(jinja2.FileSystemLoader(_PACKAGE_TEMPLATES))
    env = ImmutableSandboxedEnvironment(loader=jinja2.ChoiceLoader(loaders), **_OPTIONS)
    env.filters["quote"] = blockquote
    return env


@functools.cache
def packaged_environment() -> jinja2.Environment:
    """A plain environment that loads the packaged templates only, never a workspace's file.

    Only for packaged templates that include, extend or import no other template (a test checks
    they do not): here such a reference would get the packaged file where the workspace has its own.
    """
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_PACKAGE_TEMPLATES), **_OPTIONS)
    env.filters["quote"] = blockquote
    return env


def blockquote(text: str) -> str:
    """Text as a markdown blockquote, one ``> `` per line."""
    lines = str(text or "").strip().splitlines() or [""]
    return "\n".join(f"> {line}".rstrip() for line in lines)


def _overrides_signature(directory: Path) -> object:
    try:
        return tuple(sorted((e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in os.scandir(directory)))
    except OSError:
        return None


class Templates:
    """Compiled templates of one workspace; a broken override is a ``PlanError`` naming the file.

    Use ``Templates.of(workspace)``: compiling a template costs milliseconds, and the runner
    renders one per finished task.
    """

    _shared: ClassVar[dict[str, tuple[object, Templates]]] = {}

    @classmethod
    def of(cls, workspace: Workspace | None) -> Templates:
        """The instance for this workspace, rebuilt when its override files change."""
        key = str(workspace.templates_dir) if workspace is not None else ""
        signature = _overrides_signature(workspace.templates_dir) if workspace is not None else None
        found = cls._shared.get(key)
        if found is None or found[0] != signature:
            found = cls._shared[key] = (signature, cls(workspace))
        return found[1]

    def __init__(self, workspace: Workspace | None) -> None:
        self.workspace = workspace
        self.sandbox = environment(workspace)
        self._cache: dict[str, jinja2.Template] = {}

    def overridden(self, name: str) -> bool:
        """Whether the workspace has its own ``name``: it then runs in the sandbox."""
        return self.workspace is not None and (self.workspace.templates_dir / name).is_file()

    def get(self, name: str) -> jinja2.Template:
        template = self._cache.get(name)
        if template is None:
            env = self.sandbox if self.overridden(name) else packaged_environment()
            try:
                template = env.get_template(name)
            except jinja2.TemplateSyntaxError as exc:
                raise _template_error(exc.name or name, exc.lineno, exc.message or str(exc)) from None
            except UnicodeDecodeError as exc:
                line = exc.object[: exc.start].count(b"\n") + 1
                raise _template_error(name, line, f"not valid UTF-8 (byte 0x{exc.object[exc.start]:02x})") from None
            self._cache[name] = template
        return template

    def render(self, name: str, **context: Any) -> str:
        template = self.get(name)
        try:
            return template.render(**context)
        except jinja2.TemplateSyntaxError as exc:  # in an included template
            raise _template_error(exc.name or name, exc.lineno, exc.message or str(exc)) from None
        except jinja2.TemplateNotFound as exc:  # {% include %} of a file that is not there
            line = _template_line(exc, template.filename)
            raise _template_error(name, line, f"no template named '{exc.name}'") from None
        except jinja2.TemplateError as exc:
            line = getattr(exc, "lineno", 0) or _template_line(exc, template.filename)
            raise _template_error(name, line, str(exc)) from None
        except Exception as exc:  # a template is code: {{ 1/0 }}, a range the sandbox refuses, a bad int()...
            line = _template_line(exc, template.filename)
            raise _template_error(name, line, f"{type(exc).__name__}: {exc}") from None


def _template_error(name: str, line: int, message: str) -> PlanError:
    return PlanError(
        [
            Problem(
                f"templates/{name}",
                line,
                f"template error: {message}",
                "fix the template or delete it to use the packaged one",
            )
        ]
    )


def _template_line(exc: BaseException, filename: str | None) -> int:
    """The template line an error was raised on (jinja puts template frames in the traceback), or 0."""
    line = 0
    frame = exc.__traceback__
    while frame is not None:
        if filename and frame.tb_frame.f_code.co_filename == filename:
            line = frame.tb_lineno
        frame = frame.tb_next
    return line


def brief_inputs(plan: Plan, workspace: Workspace, task: Task) -> list[dict[str, str]]:
    return [{"task": dep, "path": workspace.result_name(plan.tasks[dep])} for dep in task.dependencies]


def brief_metadata(
    plan: Plan, workspace: Workspace, task: Task, inputs: list[dict[str, str]] | None = None
) -> dict[str, Any]:
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


def _render_brief(plan: Plan, workspace: Workspace, task: Task, templates: Templates) -> tuple[str, str]:
    """(body, whole file text) of a task's brief."""
    inputs = brief_inputs(plan, workspace, task)
    body = templates.render(
        "agent_task.md.j2",
        task=task,
        inputs=inputs,
        result_path=workspace.result_name(task),
        request=plan.request,
        goal=plan.goal,
        settings=plan.settings_for(task),
    ).strip()  # as python-frontmatter strips it on reading, so the recorded hash matches
    meta = brief_metadata(plan, workspace, task, inputs)
    meta["rendered_by"] = f"orchestrator {__version__}"
    meta["content_hash"] = store.sha256(body)
    return body, store.compose(meta, body + "\n")


@dataclass(slots=True)
class RenderReport:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept_edited: list[str] = field(default_factory=list)  # hand-edited briefs left alone
    bodies: dict[str, str] = field(default_factory=dict)  # task id -> brief body as it now is on disk

    def as_json(self) -> dict[str, list[str]]:
        return {"written": self.written, "unchanged": self.unchanged, "kept_edited": self.kept_edited}


def brief_was_edited(text: str) -> bool:
    """True when a brief's body no longer matches the hash recorded when it was rendered."""
    try:
        meta, body = store.parse(text)
    except ValueError:
        return True
    recorded = meta.get("content_hash")
    return not isinstance(recorded, str) or recorded != store.sha256(body.strip())


def render_briefs(plan: Plan, workspace: Workspace, *, force: bool = False) -> RenderReport:
    """Write ``agent_tasks/<agent>.md`` for every task; idempotent, and never silently over a hand edit."""
    templates = Templates.of(workspace)
    report = RenderReport()
    pending: list[tuple[Path, str]] = []
    try:  # one listing instead of 10,000 failed opens on a first render
        present = set(os.listdir(workspace.tasks_dir))
    except FileNotFoundError:
        present = set()
    for task in plan.tasks.values():
        path = workspace.brief(task)
        body, text = _render_brief(plan, workspace, task, templates)
        report.bodies[task.id] = body
        existing: str | None = None
        if path.name in present:
            with contextlib.suppress(FileNotFoundError, UnicodeDecodeError):
                existing = _read(path).decode("utf-8")  # exact: no newline translation
        name = workspace.brief_name(task)
        if existing == text:
            report.unchanged.append(name)
        elif existing is not None and not force and brief_was_edited(existing):
            report.kept_edited.append(name)
            try:
                report.bodies[task.id] = store.parse(existing)[1]
            except ValueError as exc:
                raise WorkspaceError(f"{name}: {exc} — fix the brief, or delete it to render it again") from None
        else:
            pending.append((path, text))
            report.written.append(name)
    workspace.tasks_dir.mkdir(parents=True, exist_ok=True)
    store.write_many(pending)
    return report


def _read(path: Path) -> bytes:
    """The file's bytes; half the cost of ``Path.read_bytes`` (no file object), which counts when
    every run starts by comparing 10,000 briefs with what is on disk."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def status_sections(plan: Plan, views: list[TaskView], templates: Templates) -> dict[str, str]:
    """Bodies of the two tool-written sections of master_plan.md."""
    rows = [
        {
            "id": v.id,
            "agent": v.agent,
            "label": label(v.status) + (f" ({v.attempts} attempts)" if v.attempts > 1 else ""),
            "start": _clock(v.started),
            "end": _clock(v.finished),
            "duration": format_duration(v.duration) if v.duration is not None else "-",
            "cost": f"${v.cost_usd:.4f}" if v.cost_usd is not None else "-",
        }
        for v in views
    ]
    return {
        "agent assignment": templates.render("assignment.md.j2", rows=rows, summary=summary_line(views, counts(views))),
        "dependency graph": templates.render(
            "dependency_graph.md.j2", mermaid=mermaid(plan, views, limit=MERMAID_MAX_TASKS)
        ),
    }


def _clock(stamp: str | None) -> str:
    if not stamp:
        return "-"
    return stamp.replace("T", " ")[:19]


def updated_plan_file(plan: Plan, workspace: Workspace, views: list[TaskView] | None = None) -> bytes | None:
    """master_plan.md with the Agent Assignment and Dependency Graph sections rewritten, or ``None``
    when that changes nothing (or the file is gone). Every other byte stays as it was, a BOM included.

    Reads the file fresh so a hand edit made since the plan was loaded is kept.
    """
    if views is None:
        views = collect(plan, workspace)
    templates = Templates.of(workspace)
    try:
        data = workspace.plan_file.read_bytes()
    except FileNotFoundError:
        return None
    bom = codecs.BOM_UTF8 if data.startswith(codecs.BOM_UTF8) else b""
    current = data[len(bom) :].decode("utf-8")
    updated = replace_sections(current, status_sections(plan, views, templates), TOOL_SECTIONS)
    return None if updated == current else bom + updated.encode("utf-8")


def update_plan_file(plan: Plan, workspace: Workspace, views: list[TaskView] | None = None) -> bool:
    """Rewrite the two tool-written sections of master_plan.md; returns whether the file changed."""
    data = updated_plan_file(plan, workspace, views)
    if data is None:
        return False
    store.write_bytes(workspace.plan_file, data)
    return True


def cell(text: str) -> str:
    """Text made safe for one table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def plan_markdown(
    request: str, tasks: list[dict[str, str]], *, backend: str, goal: str = "", criteria: str = ""
) -> str:
    """A master_plan.md from task rows (``id``, ``name``, ``description``, ``deps``, ``priority``, ``details``)."""
    rows = [
        {**row, **{key: cell(row.get(key, "")) for key in ("id", "name", "description", "deps", "priority")}}
        for row in tasks
    ]
    return Templates.of(None).render(
        "master_plan.md.j2",
        request=request or "Describe what you want done.",
        backend=backend,
        tasks=rows,
        goal=cell(goal),
        criteria=cell(criteria),
    )


def skeleton(request: str, backend: str) -> str:
    """The master_plan.md that ``orchestrator init`` writes: valid, runnable, and meant to be edited."""
    tasks = [
        {"id": "T-01", "name": "Survey", "description": "List the project's main parts and what each does",
         "deps": "None", "priority": "P1",
         "details": "Read the project's top-level files and folders. Write a short list of its main parts\n"
                    "and what each does."},
        {"id": "T-02", "name": "Assess", "description": "Point out the three most important problems",
         "deps": "T-01", "priority": "P2",
         "details": "Using the survey from T-01, point out the three most important problems you see,\n"
                    "each with the file it is in."},
        {"id": "T-03", "name": "Report", "description": "Summarise survey and problems in one page",
         "deps": "T-01, T-02", "priority": "P2",
         "details": "Combine the results of T-01 and T-02 into a one-page report."},
    ]  # fmt: skip
    return plan_markdown(request, tasks, backend=backend)
