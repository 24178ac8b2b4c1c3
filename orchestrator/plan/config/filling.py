"""What ``{{ params... }}`` becomes in each place of a task's text: a value is data, never code.

- **In a script** (a Command cell; a code block of Task Details that is bash: no info string, or
  ``bash``, ``sh``, ``shell``...): never the value. The attempt's environment holds it
  (``$ORCHESTRATOR_PARAM_NAME``; an expression with filters, ``{{ params.lang | upper }}``, its
  own ``$ORCHESTRATOR_VALUE_N``) and the script a reference to it, quoted for the place it stands
  in (``plan/config/shellspots``): one word, byte for byte, whatever the value holds. A place
  where bash would read the value as code (arithmetic, ``eval``, ``sh -c``, a quoted
  here-document) is a ``PlanError`` at its line, with the fix.
- **In prose** (a title, a description, the request, Task Details outside its scripts): the value
  as it is, when it came from the person who runs the plan. A value from outside (a webhook's
  delivery, an API or MCP caller: ``Plan.untrusted``) never enters the text an agent is
  instructed by: ``[untrusted input: NAME]`` stands there, and the brief quotes the value apart,
  fenced and labelled as data (``agent_task.md.j2``'s "Untrusted input").

A task's ``params`` are the values its text uses (``{{ }}`` or ``$ORCHESTRATOR_PARAM_NAME``
written out): its fingerprint's, and the variables its attempts get (``Task.environment``).

``resolve`` is where a plan read from disk and its parameters meet: checked (``check_references``:
every name declared, every place one that may hold a value), each given its value
(``params.values_for``), and filled in. Here, above the plan's model, so that ``params``, which the
settings read, knows nothing of a plan.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.errors import PlanError, Problem, shown
from orchestrator.plan.config.params import body_start, param_line, values_for

if TYPE_CHECKING:  # (shellspots is loaded when a script holds a value: a plan of none needs it not)
    import jinja2

    from orchestrator.plan.config.shellspots import Spot
    from orchestrator.plan.model import Plan, Task

PREFIX = "ORCHESTRATOR_PARAM_"
DERIVED = "ORCHESTRATOR_VALUE_"
# A ``{{ }}`` whose expression starts with ``params``: ``{{ params.repo }}``, ``{{ params['repo'] | upper }}``.
EXPRESSION_RE = re.compile(r"\{\{-?\s*params\b[^{}]*?-?\}\}")
_REFERENCE_RE = re.compile(r"params\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*['\"]([^'\"]*)['\"]\s*\])")
_PLAIN_RE = re.compile(  # one that names a parameter and does nothing else: its own variable
    r"\{\{-?\s*params\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*'([^']*)'\s*\]|\[\s*\"([^\"]*)\"\s*\])\s*-?\}\}"
)
_VARIABLE_RE = re.compile(re.escape(PREFIX) + r"([A-Za-z0-9_]+)")
_MENTIONS_RE = re.compile(r"ORCHESTRATOR_(?:PARAM|VALUE)_|ORCHESTRATOR_ITEM(?![A-Za-z0-9_])")
# The info strings of a code block that is bash (a shell task runs its first; an agent is shown
# one to run): any other language is prose to us.
SHELL_INFOS = frozenset({"", "bash", "sh", "shell", "zsh", "ksh", "console", "shell-session", "sh-session"})
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)")


def variable(name: str) -> str:
    """The environment variable that holds parameter ``name``'s value."""
    return PREFIX + name.upper()


def mark(names: list[str]) -> str:
    """What stands in prose for a value from outside."""
    return f"[untrusted input: {', '.join(names)}]"


def references(text: str) -> list[str]:
    """The parameter names the ``{{ params... }}`` expressions of ``text`` name, in order."""
    names: list[str] = []
    for match in EXPRESSION_RE.finditer(text):
        for found in _REFERENCE_RE.finditer(match.group(0)):
            names.append(found.group(1) or found.group(2))
    return names


def named_variables(text: str, declared: Mapping[str, object]) -> list[str]:
    """The declared parameters whose variable ``text`` names itself (``$ORCHESTRATOR_PARAM_REPO``)."""
    if PREFIX not in text:
        return []
    upper = {name.upper(): name for name in declared}
    return [upper[found] for found in _VARIABLE_RE.findall(text) if found in upper]


def script_blocks(text: str) -> list[tuple[int, int]]:
    """The (start, end) offsets of the bodies of ``text``'s code blocks that are bash."""
    from orchestrator.plan.markdown import fence_closes, fence_opening

    found: list[tuple[int, int]] = []
    offset = 0
    marker: str | None = None
    start = 0
    shell = False
    for line in text.splitlines(keepends=True):
        if marker is not None:
            if fence_closes(line, marker):
                if shell:
                    found.append((start, offset))
                marker = None
        else:
            marker = fence_opening(line)
            if marker is not None:
                info = _FENCE.match(line)
                shell = (info.group(2).lower() if info else "") in SHELL_INFOS
                start = offset + len(line)
        offset += len(line)
    if marker is not None and shell:  # (a block left open runs to the end, as markdown reads it)
        found.append((start, offset))
    return found


@dataclass(slots=True)
class Filler:
    """Fills one task's text (or the request's): ``values`` the parameters', ``untrusted`` those
    from outside (name -> where from). ``used``: what it filled in; ``environment``: the variables
    its scripts read; ``problems``: the places no value may stand, at their lines."""

    values: Mapping[str, str]
    untrusted: Mapping[str, str]
    where: str
    cache: dict[str, jinja2.Template] = field(default_factory=dict)
    used: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def prose(self, text: str | None, line: int = 1) -> str | None:
        """``text`` with each expression's value, or the mark of one from outside."""
        if not text or "{{" not in text:
            return text
        return EXPRESSION_RE.sub(lambda match: self._prose(match.group(0), line), text)

    def _prose(self, source: str, line: int) -> str:
        names = list(dict.fromkeys(references(source)))
        if any(name not in self.values for name in names):
            return source  # a required parameter not given here (status, validate): left as written
        for name in names:
            self.used[name] = self.values[name]
        outside = [name for name in names if name in self.untrusted]
        return mark(outside) if outside else self._evaluate(source, line)

    def script(self, text: str | None, line: int) -> str | None:
        """``text``, a bash script whose first line is the plan's ``line``, with a reference to
        each expression's variable in its place; each place a value may not stand is a problem."""
        self.named(text)
        if not text:
            return text
        if "{{" not in text:
            self._judge(text, [], line)
            return text
        from orchestrator.plan.config.shellspots import written

        spans = [(m.start(), m.end()) for m in EXPRESSION_RE.finditer(text)]
        made = written(text, spans, lambda spot: self._reference(text, spot, line))
        for spot in made.refused:
            at = line + text.count("\n", 0, spot.start)
            self.problems.append(_problem(self.where, at, text[spot.start : spot.end], spot.refused or "", spot.fix))
        marks = [(start, end, text[spot.start : spot.end], line + text.count("\n", 0, spot.start))
                 for start, end, spot in made.marks]  # fmt: skip
        self._judge(made.script, marks, line)
        return made.script

    def _judge(self, script: str, marks: list[tuple[int, int, str, int]], line: int) -> None:
        """Each place of ``script`` where a value from outside may not stand, as a problem at its
        line (``plan/config/allowlist``); ``marks``: where the expressions' references are."""
        if not mentions(script):
            return
        from orchestrator.plan.config.allowlist import judge

        for refusal in judge(script, tuple((start, end) for start, end, _, _ in marks)):
            if refusal.mark is not None:
                _, _, source, at = marks[refusal.mark]
            else:
                source, at = script[refusal.start : refusal.end], line + script.count("\n", 0, refusal.start)
            self.problems.append(_problem(self.where, at, source, refusal.why, refusal.fix))

    def _reference(self, text: str, spot: Spot, line: int) -> str | None:
        """What stands for the expression at ``spot`` of ``text``: a reference to its variable
        (None: a parameter not given here, left as written)."""
        from orchestrator.plan.config.shellspots import reference

        source, place = text[spot.start : spot.end], spot.place
        line += text.count("\n", 0, spot.start)
        names = list(dict.fromkeys(references(source)))
        if any(name not in self.values for name in names):
            return None
        for name in names:
            self.used[name] = self.values[name]
        plain = _PLAIN_RE.fullmatch(source)
        if plain is not None:
            name = next(group for group in plain.groups() if group is not None)
            self.environment[variable(name)] = self.values[name]
            return reference(variable(name), place)
        value = self._evaluate(source, line)
        derived = next((k for k, v in self.environment.items() if k.startswith(DERIVED) and v == value), None)
        if derived is None:
            derived = f"{DERIVED}{sum(k.startswith(DERIVED) for k in self.environment) + 1}"
            self.environment[derived] = value
        return reference(derived, place)

    def named(self, text: str | None) -> None:
        """The parameters whose variable ``text`` names itself: used, and in the environment."""
        for name in named_variables(text or "", self.values):
            self.used[name] = self.values[name]
            self.environment[variable(name)] = self.values[name]

    def details(self, text: str | None, line: int) -> str | None:
        """A Task Details body (its first line the plan's ``line``): its bash blocks as scripts,
        the rest as prose."""
        if not text:
            return text
        if "{{" not in text:
            self.named(text)
            return text
        out: list[str] = []
        last = 0
        for start, end in script_blocks(text):
            out.append(self.prose(text[last:start], line + text.count("\n", 0, last)) or "")
            out.append(self.script(text[start:end], line + text.count("\n", 0, start)) or "")
            last = end
        out.append(self.prose(text[last:], line + text.count("\n", 0, last)) or "")
        self.named(text)
        return "".join(out)

    def _evaluate(self, source: str, line: int) -> str:
        import jinja2

        try:
            template = self.cache.get(source) or _environment().from_string(source)
            self.cache[source] = template
            return template.render(params=self.values)
        except jinja2.TemplateError as exc:
            raise PlanError(
                [Problem(self.where, line, f"{source}: {exc}", "write {{ params.NAME }}, with filters if need be")]
            ) from None


def _problem(where: str, line: int, source: str, why: str, fix: str) -> Problem:
    names = references(source) or [m.group(1).lower() for m in _VARIABLE_RE.finditer(source)]
    fix = fix.replace("params.x", f"params.{names[0]}" if names else "params.x")
    if names:
        fix = fix.replace("ORCHESTRATOR_PARAM_X", variable(names[0]))
    return Problem(where, line, f"{source} {why}", fix)


def mentions(script: str) -> bool:
    """Whether ``script`` names a variable that holds a value from outside (only such a script
    is read by the allow-list)."""
    return "ORCHESTRATOR_" in script and _MENTIONS_RE.search(script) is not None


_ENVIRONMENT: list[Any] = []


def _environment() -> Any:
    if not _ENVIRONMENT:
        import jinja2
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        _ENVIRONMENT.append(ImmutableSandboxedEnvironment(autoescape=False, undefined=jinja2.StrictUndefined))
    return _ENVIRONMENT[0]


def fill_task(task: Task, make: Callable[[], Filler]) -> tuple[Task, list[Problem]]:
    """``task`` with its values in (``Filler``), and the places no value may stand."""
    fields = (task.name, task.description, task.details, task.command)
    if not any(f and ("{{" in f or PREFIX in f) for f in fields):
        return task, []
    filler = make()
    filler.named("\n".join(f for f in fields if f))
    filled = dataclasses.replace(
        task,
        name=filler.prose(task.name, task.line) or "",
        description=filler.prose(task.description, task.line) or "",
        details=filler.details(task.details, task.details_line or task.line),
        command=filler.script(task.command, task.line),
        params=tuple(sorted(filler.used.items())),
        environment=tuple(sorted(filler.environment.items())),
    )
    return filled, filler.problems


def fill(plan: Plan, values: Mapping[str, str], untrusted: Mapping[str, str], where: str) -> Plan:
    """``plan`` with ``values`` in its request, goal, and tasks (``fill_task``); ``PlanError``
    for every place a value may not stand."""
    plan.params = dict(values)
    plan.untrusted = {name: source for name, source in untrusted.items() if name in values}
    if "params" not in plan.text and PREFIX not in plan.text:
        return plan
    cache: dict[str, jinja2.Template] = {}

    def make() -> Filler:
        return Filler(values, plan.untrusted, where, cache=cache)

    context = make()
    for name in ("request", "goal"):  # (a problem in either is told at the plan's first line)
        setattr(plan, name, context.prose(getattr(plan, name)) or "")
    plan.context_params = tuple(sorted(context.used.items()))
    problems: list[Problem] = []
    tasks: dict[str, Task] = {}
    for task_id, task in plan.tasks.items():
        tasks[task_id], found = fill_task(task, make)
        problems += found
    if problems:
        raise PlanError(problems)
    plan.tasks = tasks
    return plan


def check_places(plan: Plan) -> list[Problem]:
    """The places of the plan's scripts where no value may stand (``validate``, ``import``), each
    at its line: the scripts written as a run would fill them, each parameter's value aside."""
    filler = Filler(dict.fromkeys(plan.settings.params, ""), {}, shown(plan.path))
    for task in plan.tasks.values():
        if task.command and ("{{" in task.command or mentions(task.command)):
            filler.script(task.command, task.line)
        if task.details and ("{{" in task.details or mentions(task.details)):
            first = task.details_line or task.line
            for start, end in script_blocks(task.details):
                filler.script(task.details[start:end], first + task.details.count("\n", 0, start))
    return filler.problems


def brief_params(plan: Plan, task: Task) -> list[dict[str, Any]]:
    """The parameters ``task``'s brief names (its own and the request's), each with its value, its
    variable and where it came from when that is outside (``None``: the person who ran it)."""
    from orchestrator.printable import visible

    used = dict(plan.context_params)
    used.update(task.params)
    return [
        {"name": name, "value": visible(value), "variable": variable(name), "untrusted": plan.untrusted.get(name)}
        for name, value in sorted(used.items())
    ]


def check_references(plan: Plan) -> None:
    """A ``PlanError`` for every expression of the plan's text (outside its frontmatter) that
    names a parameter it does not declare, and for every place of its scripts where no value may
    stand (``plan/config/filling.check_places``)."""
    from orchestrator.plan.config.values import suggest

    declared = plan.settings.params
    text = plan.text
    if "params" not in text:
        return
    where = shown(plan.path)
    problems: list[Problem] = []
    lines = text.splitlines()
    for number, line in enumerate(lines[body_start(lines) :], start=body_start(lines) + 1):
        if "{{" not in line:
            continue
        for name in references(line):
            if name not in declared:
                known = ", ".join(declared) or "none"
                problems.append(
                    Problem(
                        where,
                        number,
                        f"unknown parameter '{name}' in {{{{ params.{name} }}}}{suggest(name, list(declared))} "
                        f"(declared: {known})",
                        f"declare it in the settings (params: {{{name}: {{default: ..., description: ...}}}}), "
                        "or fix the name",
                    )
                )
    problems += check_places(plan)
    if problems:
        raise PlanError(sorted(problems, key=lambda p: p.line))


def resolve(
    plan: Plan,
    remembered: Mapping[str, str],
    given: Mapping[str, str],
    *,
    complete: bool = False,
    untrusted: Mapping[str, str] | None = None,
) -> Plan:
    """``plan`` as read from disk, checked and given its parameters' values (``values_for``);
    ``untrusted``: the names whose value came from outside, and from where (``filling``)."""
    check_references(plan)
    values = values_for(
        plan.settings.params,
        remembered,
        given,
        complete=complete,
        where=shown(plan.path),
        line=lambda name: param_line(plan.text, name),
    )
    return fill(plan, values, untrusted or {}, shown(plan.path))
