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
import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from orchestrator import __version__
from orchestrator.errors import PlanError, Problem, WorkspaceError
from orchestrator.output.views import MERMAID_MAX_TASKS, mermaid, summary_line
from orchestrator.plan.markdown import replace_sections
from orchestrator.plan.parser import TOOL_SECTIONS, Plan, Task
from orchestrator.plan.settings import Settings, format_duration
from orchestrator.state import store
from orchestrator.state.status import TaskView, collect, counts, label
from orchestrator.state.workspace import Workspace

if TYPE_CHECKING:  # imported where a template is compiled: a render that needs none skips 40 ms
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

_PACKAGE_TEMPLATES = Path(__file__).parent.parent / "templates"


def _options() -> dict[str, Any]:
    import jinja2

    return {"autoescape": False, "keep_trailing_newline": True, "undefined": jinja2.StrictUndefined}


def environment(workspace: Workspace | None) -> ImmutableSandboxedEnvironment:
    """The sandboxed environment: the workspace's ``templates/`` first, then the packaged ones."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    loaders: list[jinja2.BaseLoader] = []
    if workspace is not None and workspace.templates_dir.is_dir():
        loaders.append(jinja2.FileSystemLoader(workspace.templates_dir))
    loaders.append(jinja2.FileSystemLoader(_PACKAGE_TEMPLATES))
    env = ImmutableSandboxedEnvironment(loader=jinja2.ChoiceLoader(loaders), **_options())
    env.filters["quote"] = blockquote
    return env


@functools.cache
def packaged_environment() -> jinja2.Environment:
    """A plain environment that loads the packaged templates only, never a workspace's file.

    Only for packaged templates that include, extend or import no other template (a test checks
    they do not): here such a reference would get the packaged file where the workspace has its own.
    """
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_PACKAGE_TEMPLATES), **_options())
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
        self._sandbox: ImmutableSandboxedEnvironment | None = None
        self._cache: dict[str, jinja2.Template] = {}
        self._in_python: dict[str, Callable[..., str] | None] = {}

    @property
    def sandbox(self) -> ImmutableSandboxedEnvironment:
        if self._sandbox is None:
            self._sandbox = environment(self.workspace)
        return self._sandbox

    def overridden(self, name: str) -> bool:
        """Whether the workspace has its own ``name``: it then runs in the sandbox."""
        return self.workspace is not None and (self.workspace.templates_dir / name).is_file()

    def in_python(self, name: str) -> Callable[..., str] | None:
        """The Python function that writes what template ``name`` renders, where it may stand in
        for it: the workspace has no ``name`` of its own, and the packaged file is the one the
        function was written from."""
        if name not in self._in_python:
            found = _WRITTEN_OUT.get(name)
            if found is not None and (self.overridden(name) or _packaged_hash(name) != found[0]):
                found = None
            self._in_python[name] = found[1] if found is not None else None
        return self._in_python[name]

    def get(self, name: str) -> jinja2.Template:
        template = self._cache.get(name)
        if template is None:
            import jinja2

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
        write = self.in_python(name)
        if write is not None:
            return write(**context)
        template = self.get(name)
        import jinja2

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


# --- packaged templates written out in Python -----------------------------------------------------
# jinja spends 30 µs a brief on a context, a generator and two dozen attribute lookups: 0.3 s of
# rendering 10,000 briefs, and as much again for the 10,000 rows of the Agent Assignment table.
# The templates ``render`` and ``run`` need are therefore also written out as functions below,
# used only where the packaged file would run unchanged (``Templates.in_python``); with these, a
# render or a run does not import jinja (``master_plan.md.j2``, for ``init`` and ``plan``, still
# goes through it). Tests hold each function equal to its template on generated input and fail
# when a template file changes.

BRIEF_TEMPLATE = "agent_task.md.j2"
_INPUTS_HEAD = (
    "This task builds on the results of the tasks it depends on. When the task starts, their results\n"
    "are included after this brief (up to a size limit); the full files are here:\n\n"
    "| Task | Result file |\n|------|-------------|\n"
)
_EXPECTED_OUTPUT = (
    "\n\n## Expected Output\n"
    "A concise markdown report of what you did and what you found, with the concrete results (file\n"
    "paths you changed or created, findings, numbers). Your final answer is saved as this task's result\n"
    "in `"
)
_CONSTRAINTS = (
    "` and passed to the tasks that depend on this one.\n\n"
    "## Constraints\n"
    "- Do this task only; other agents handle the other tasks of the plan in parallel.\n"
    "- Work in the project directory; do not edit files under `.orchestrator/`.\n"
    "- If you cannot complete the task, say so plainly and why. Never invent or simulate results."
)


def _brief(*, task: Task, inputs: list[dict[str, str]], result_path: str, request: str, **_: object) -> str:
    """agent_task.md.j2"""
    parts = [
        f"# 🤖 {task.agent} Task Assignment\n\n## Task Information\n- **Task ID**: {task.id}\n"
        f"- **Task Name**: {task.title}\n- **Priority**: {task.priority_name}\n"
        f"- **Dependencies**: {', '.join(task.dependencies) if task.dependencies else 'None'}"
    ]
    if task.profile:
        parts.append(f"\n- **Specialist profile**: {task.profile}")
    if task.tags:
        parts.append(f"\n- **Tags**: {', '.join(task.tags)}")
    parts.append("\n\n## Inputs\n")
    if inputs:
        parts.append(_INPUTS_HEAD)
        parts.extend([f"| {item['task']} | `{item['path']}` |\n" for item in inputs])
    else:
        parts.append("None: this task depends on no other task.")
    parts += ["\n\n## Task Description\n", task.instructions, _EXPECTED_OUTPUT, result_path, _CONSTRAINTS]
    if request:
        parts += ["\n\n## Context: the original request\n", blockquote(request)]
    parts.append("\n")
    return "".join(parts)


_ASSIGNMENT_HEAD = (
    '<!-- Written by orchestrator: this section and "Dependency Graph" are rewritten on every render and run. -->\n'
    "| Task ID | Agent | Status | Start | End | Duration | Cost |\n"
    "|---------|-------|--------|-------|-----|----------|------|\n"
)


def _assignment(*, rows: list[dict[str, str]], summary: str, **_: object) -> str:
    """assignment.md.j2"""
    lines = [
        f"| {r['id']} | {r['agent']} | {r['label']} | {r['start']} | {r['end']} | {r['duration']} | {r['cost']} |\n"
        for r in rows
    ]
    return "".join([_ASSIGNMENT_HEAD, *lines, "\n**Totals**: ", summary, "\n"])


def _dependency_graph(*, mermaid: str, **_: object) -> str:
    """dependency_graph.md.j2 (rendered once a render, but then jinja need not be imported at all)"""
    return f"```mermaid\n{mermaid}\n```\n"


def _result(
    *, task: Task, status: str, icon: str, reason: str, output: str, stderr_tail: str, logs: list[str], **_: object
) -> str:
    """result.md.j2 (once a finished task: jinja's context, and its import, cost more than the rest)"""
    if status == "completed":
        return f"{output}\n"
    parts = [f"# {icon} {task.id} {status}: {reason}\n"]
    if output.strip():
        parts.append(f"\n## Output\n{output}\n")
    if stderr_tail.strip():
        parts.append(f"\n## Last lines of stderr\n```\n{stderr_tail}\n```\n")
    parts.append(f"\nLogs: {', '.join(logs) if logs else 'none'}\n")
    return "".join(parts)


def _final_output(
    *,
    request: str,
    summary: dict[str, Any],
    completed: list[dict[str, Any]],
    problems: list[dict[str, Any]],
    synthesis: str,
    **_: object,
) -> str:
    """final_output.md.j2"""
    parts = ["# 📦 Final Output\n"]
    if request:
        parts.append(f"\n## Original Request\n{blockquote(request)}\n")
    parts.append(
        "\n## Summary\n| | |\n|---|---|\n"
        f"| Tasks | {summary['total']}: {summary['counts_text']} |\n"
        f"| Wall time (while any task ran) | {summary['wall']} |\n"
        f"| Sum of task times | {summary['work']} |\n"
        f"| Speed-up vs sequential | {summary['speedup']} |\n"
        f"| Critical path | {summary['critical_path']} |"
    )
    if summary["cost"]:
        parts.append(f"\n| Cost | {summary['cost']} |")
    if summary["tokens"]:
        parts.append(f"\n| Tokens | {summary['tokens']} |")
    parts.append("\n")
    if synthesis:
        parts.append(f"\n## Synthesis\n{synthesis}\n")
    parts.append("\n## Results\n")
    parts.extend(
        [f"\n### {i['id']} {i['name']} ({i['agent']}, {i['duration']})\n{i['body']}\n" for i in completed]
        or ["\nNo task has completed yet.\n"]
    )
    if problems:
        parts.append(
            "\n## Failed and skipped tasks\n"
            "| Task | Status | Reason | Result file |\n|------|--------|--------|-------------|\n"
        )
        parts.extend([f"| {i['id']} | {i['label']} | {i['reason']} | {i['file']} |\n" for i in problems])
    parts.append("\n")
    return "".join(parts)


# Template name -> (SHA-256 of the packaged file the function was written from, the function).
_WRITTEN_OUT: dict[str, tuple[str, Callable[..., str]]] = {
    BRIEF_TEMPLATE: ("f2a0495fcac69a71305fa41a0b139fe4e34ebdf6817c25ed40b796512b08cb12", _brief),
    "assignment.md.j2": ("78ef54d244a1d15c5e8048d9086fb2b139866430f7796b34ac4f92c834571afb", _assignment),
    "dependency_graph.md.j2": ("5ad09681c18597561414cddcf70b35bf7cba30093f84f4bced525c4efcd06984", _dependency_graph),
    "result.md.j2": ("d738e31aa8f6e112ce4996f33504c70ba0a44330653237c413467d11113aa6cf", _result),
    "final_output.md.j2": ("4c72a04366cde4d912c09e3cdee266891c952901274bf5d35b8dea65e8fd6dae", _final_output),
}


def _packaged_hash(name: str) -> str | None:
    try:
        return hashlib.sha256((_PACKAGE_TEMPLATES / name).read_bytes()).hexdigest()
    except OSError:
        return None


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


def brief_inputs(
    plan: Plan, workspace: Workspace, task: Task, result_names: Mapping[str, str] | None = None
) -> list[dict[str, str]]:
    """The results a task's brief points to; ``result_names`` (task id -> result file as the user
    types it) saves rendering every brief from spelling each task's name once per dependent."""
    if result_names is None:
        return [{"task": dep, "path": workspace.result_name(plan.tasks[dep])} for dep in task.dependencies]
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


def _render_brief(
    plan: Plan,
    workspace: Workspace,
    task: Task,
    templates: Templates,
    result_names: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """(body, whole file text) of a task's brief."""
    settings = plan.settings_for(task)
    inputs = brief_inputs(plan, workspace, task, result_names)
    body = templates.render(
        BRIEF_TEMPLATE,
        task=task,
        inputs=inputs,
        result_path=workspace.result_name(task) if result_names is None else result_names[task.id],
        request=plan.request,
        goal=plan.goal,
        settings=settings,
    ).strip()  # as python-frontmatter strips it on reading, so the recorded hash matches
    meta = brief_metadata(plan, workspace, task, inputs, settings=settings)
    meta["rendered_by"] = _RENDERED_BY
    meta["content_hash"] = store.sha256(body)
    return body, store.compose(meta, body + "\n")


_RENDERED_BY = f"orchestrator {__version__}"


@dataclass(slots=True)
class RenderReport:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept_edited: list[str] = field(default_factory=list)  # hand-edited briefs left alone
    bodies: dict[str, str] = field(default_factory=dict)  # task id -> brief body as it now is on disk
    pending: list[tuple[Path, str]] = field(default_factory=list, repr=False)  # briefs to write
    listed: set[str] = field(default_factory=set, repr=False)  # agent_tasks/ as prepare_briefs found it

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
    report = prepare_briefs(plan, workspace, force=force)
    write_briefs(report, workspace)
    return report


def prepare_briefs(plan: Plan, workspace: Workspace, *, force: bool = False) -> RenderReport:
    """What ``render_briefs`` would write, and why, with nothing written yet: every template
    error is raised here. ``write_briefs`` then writes it."""
    templates = Templates.of(workspace)
    report = RenderReport()
    pending = report.pending
    try:  # one listing instead of 10,000 failed opens on a first render
        present = set(os.listdir(workspace.tasks_dir))
    except FileNotFoundError:
        present = set()
    result_names = {task_id: workspace.result_name(task) for task_id, task in plan.tasks.items()}
    for task in plan.tasks.values():
        path = workspace.brief(task)
        body, text = _render_brief(plan, workspace, task, templates, result_names)
        report.bodies[task.id] = body
        existing: str | None = None
        if present and path.name in present:
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
    report.listed = present
    return report


def write_briefs(report: RenderReport, workspace: Workspace) -> None:
    """Write the briefs ``prepare_briefs`` found to be new or changed (all at once, on a first render)."""
    if report.pending:  # made with its files, on a first render (store.write_many)
        store.write_many(report.pending, listed={workspace.tasks_dir: report.listed}, whole=True)
    else:
        workspace.tasks_dir.mkdir(parents=True, exist_ok=True)


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
