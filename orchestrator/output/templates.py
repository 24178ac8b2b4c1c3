"""Jinja templates: the packaged ones, and a workspace's overrides in ``templates/``.

Every piece of user text is passed to templates as data, never as template source, so a task
description containing ``{{ 7*7 }}`` is written literally. A file of the same name in
``.orchestrator/templates/`` overrides the packaged one; overrides run in jinja2's sandbox, since
a cloned repository's templates must not run Python. A broken override is a ``PlanError`` naming
its file and line.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from orchestrator.errors import PlanError, Problem, shown
from orchestrator.state.workspace import Workspace

if TYPE_CHECKING:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

PACKAGED = Path(__file__).parent.parent / "templates"


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
    loaders.append(jinja2.FileSystemLoader(PACKAGED))
    env = ImmutableSandboxedEnvironment(loader=jinja2.ChoiceLoader(loaders), **_options())
    env.filters["quote"] = blockquote
    env.filters["fence"] = fence
    return env


@functools.cache
def packaged_environment() -> jinja2.Environment:
    """A plain environment that loads the packaged templates only, never a workspace's file.

    Only for packaged templates that include, extend or import no other template (a test checks
    they do not): here such a reference would get the packaged file where the workspace has its own.
    """
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(PACKAGED), **_options())
    env.filters["quote"] = blockquote
    env.filters["fence"] = fence
    return env


def blockquote(text: str) -> str:
    """Text as a markdown blockquote, one ``> `` per line."""
    lines = str(text or "").strip().splitlines() or [""]
    return "\n".join(f"> {line}".rstrip() for line in lines)


def fence(text: str, info: str = "") -> str:
    """Text as a fenced code block, its fence longer than any run of backticks inside, so that
    nothing in the text can close it."""
    body = str(text or "").strip("\n")
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    marker = "`" * max(3, longest + 1)
    return f"{marker}{info}\n{body}\n{marker}"


def _overrides_signature(directory: Path) -> object:
    try:
        return tuple(sorted((e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in os.scandir(directory)))
    except OSError:
        return None


_T = TypeVar("_T")


class Renders(Protocol):
    """What renders a template by name: ``Templates`` (a broken one is an error) or ``Lenient``.
    ``render_as``: its text handed to ``join`` a piece at a time, as jinja2 makes them (a large
    file written without its whole text in memory at once: ``output/final``)."""

    def render(self, name: str, **context: Any) -> str: ...

    def render_as(self, name: str, join: Callable[[Iterator[str]], _T], **context: Any) -> _T: ...


class Lenient:
    """What a run renders once its tasks have started (results, the status blocks,
    final_output.md): the workspace's own template or, should it fail on what it is given now
    (``{{ (problems | first).id }}`` with no problem), the packaged one, and ``notice`` of the
    error, once a template. A task's work is never lost to a template, nor a run stopped by one:
    ``output.trial`` refused before the start what it could see without rendering."""

    def __init__(self, workspace: Workspace | None, notice: Callable[[str], None]) -> None:
        self.workspace = workspace
        self.notice = notice
        self._told: set[str] = set()

    def render(self, name: str, **context: Any) -> str:
        return self.render_as(name, "".join, **context)

    def render_as(self, name: str, join: Callable[[Iterator[str]], _T], **context: Any) -> _T:
        templates = Templates.of(self.workspace)
        try:
            return templates.render_as(name, join, **context)
        except PlanError as exc:
            if not templates.overridden(name):
                raise  # the packaged template's own failure: nothing to fall back on
            if name not in self._told:
                self._told.add(name)
                self.notice(f"{exc}; until it is fixed, {name} is rendered from the packaged template")
            return Templates.of(None).render_as(name, join, **context)


class Templates:
    """Compiled templates of one workspace; a broken override is a ``PlanError`` naming the file.

    Use ``Templates.of(workspace)``: compiling a template costs milliseconds, and a run renders
    one per finished task.
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

    @property
    def sandbox(self) -> ImmutableSandboxedEnvironment:
        if self._sandbox is None:
            self._sandbox = environment(self.workspace)
        return self._sandbox

    def overridden(self, name: str) -> bool:
        """Whether the workspace has its own ``name``: it then runs in the sandbox."""
        return self.workspace is not None and (self.workspace.templates_dir / name).is_file()

    def _error(self, name: str, line: int, message: str) -> PlanError:
        """The error of template ``name``, naming the workspace's file as a user opens it."""
        own = self.workspace is not None and self.overridden(name)
        file = shown(self.workspace.templates_dir / name) if own and self.workspace else f"templates/{name}"
        return PlanError(
            [Problem(file, line, f"template error: {message}", "fix the template or delete it to use the packaged one")]
        )

    def check_names(self, name: str, given: Iterable[str], _seen: set[str] | None = None) -> None:
        """Compile ``name`` and the templates it includes, and raise the ``PlanError`` of the first
        variable one uses that nothing gives it (``'nope' is undefined``), without rendering: what a
        template does with the values (``completed | last`` of none yet) depends on the run.

        Given: ``given``, Jinja's globals, and whatever the template sets anywhere (``set``, loop
        targets, macros, imports); a name it only asks after (``x is defined``, ``x | default``)
        is not used without a guard. Lenient where scope would need more care: a miss here is
        said when the template renders, as before."""
        import jinja2
        import jinja2.meta
        from jinja2 import nodes

        seen = _seen if _seen is not None else set()
        if name in seen:
            return
        seen.add(name)
        self.get(name)  # a syntax error is said first
        env = self.sandbox if self.overridden(name) else packaged_environment()
        assert env.loader is not None
        tree = env.parse(env.loader.get_source(env, name)[0])
        known = set(given) | set(env.globals)
        known |= {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
        known |= {n.name for n in tree.find_all(nodes.Macro)}
        known |= {n.target for n in tree.find_all(nodes.Import)}
        known |= {a if isinstance(a, str) else a[-1] for n in tree.find_all(nodes.FromImport) for a in n.names}
        for test in tree.find_all(nodes.Test):
            if test.name in ("defined", "undefined") and isinstance(test.node, nodes.Name):
                known.add(test.node.name)
        for used in tree.find_all(nodes.Filter):
            if used.name in ("default", "d") and isinstance(used.node, nodes.Name):
                known.add(used.node.name)
        unknown = jinja2.meta.find_undeclared_variables(tree) - known
        if unknown:
            line, word = min((n.lineno, n.name) for n in tree.find_all(nodes.Name) if n.name in unknown)
            raise self._error(name, line, f"'{word}' is undefined")
        for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
            named = getattr(node, "template", None)
            if not isinstance(named, nodes.Const) or not isinstance(named.value, str):
                continue  # a name computed as it renders
            other = named.value
            try:
                self.get(other)
            except jinja2.TemplateNotFound:
                raise self._error(name, node.lineno, f"no template named '{other}'") from None
            self.check_names(other, known, seen)  # an included template sees the context it is given

    def get(self, name: str) -> jinja2.Template:
        template = self._cache.get(name)
        if template is None:
            import jinja2

            env = self.sandbox if self.overridden(name) else packaged_environment()
            try:
                template = env.get_template(name)
            except jinja2.TemplateSyntaxError as exc:
                raise self._error(exc.name or name, exc.lineno, exc.message or str(exc)) from None
            except UnicodeDecodeError as exc:
                line = exc.object[: exc.start].count(b"\n") + 1
                raise self._error(name, line, f"not valid UTF-8 (byte 0x{exc.object[exc.start]:02x})") from None
            self._cache[name] = template
        return template

    def render(self, name: str, **context: Any) -> str:
        return self.render_as(name, "".join, **context)

    def render_as(self, name: str, join: Callable[[Iterator[str]], _T], **context: Any) -> _T:
        """``name`` rendered, its pieces handed to ``join`` as jinja2 makes them (``"".join``:
        what ``Template.render`` returns)."""
        template = self.get(name)
        import jinja2

        try:
            return join(template.generate(**context))
        except jinja2.TemplateSyntaxError as exc:  # in an included template
            raise self._error(exc.name or name, exc.lineno, exc.message or str(exc)) from None
        except jinja2.TemplateNotFound as exc:  # {% include %} of a file that is not there
            line = _template_line(exc, template.filename)
            raise self._error(name, line, f"no template named '{exc.name}'") from None
        except jinja2.TemplateError as exc:
            line = getattr(exc, "lineno", 0) or _template_line(exc, template.filename)
            raise self._error(name, line, str(exc)) from None
        except Exception as exc:  # a template is code: {{ 1/0 }}, a range the sandbox refuses, a bad int()...
            line = _template_line(exc, template.filename)
            raise self._error(name, line, f"{type(exc).__name__}: {exc}") from None


def _template_line(exc: BaseException, filename: str | None) -> int:
    """The template line an error was raised on (jinja puts template frames in the traceback), or 0."""
    line = 0
    frame = exc.__traceback__
    while frame is not None:
        if filename and frame.tb_frame.f_code.co_filename == filename:
            line = frame.tb_lineno
        frame = frame.tb_next
    return line
