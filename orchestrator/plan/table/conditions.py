"""A task's ``Condition``: whether it runs, said of its upstream tasks' outcomes and the fields
of their structured output, in a small expression language a person reads at a glance:

    T-01 failed                          a fallback: runs only when T-01 failed
    T-01 completed and T-02 completed    (a bare id means the same: ``T-01 and T-02``)
    T-02.severity == "high"              a field of T-02's output (a JSON object)
    T-03.count > 10 or T-01 failed

The ids are the plan's own; what is around them is a jinja2 expression, compiled and evaluated
by jinja2's sandbox (no ``eval``, no attribute of a Python object but a mapping's keys). Nothing
here reads a file or runs anything: ``compile_condition`` checks a condition against the plan
(``validate``), ``Condition.evaluate`` decides it from values a run hands it.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # (jinja2 and the sandbox are imported when a condition is first read or evaluated)
    from jinja2 import TemplateSyntaxError
    from jinja2.environment import TemplateExpression

# What ``T-01 <word>`` asks of T-01's outcome; ``succeeded`` and ``success`` mean completed.
OUTCOMES = {
    "completed": "completed",
    "succeeded": "completed",
    "success": "completed",
    "failed": "failed",
    "failure": "failed",
    "skipped": "skipped",
    "bypassed": "bypassed",
    "rejected": "rejected",
    "cancelled": "cancelled",
    "interrupted": "interrupted",
}
# The types an Output column may give a field (``count:int``), and the JSON values each takes.
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "string": (str,),
    "int": (int,),
    "integer": (int,),
    "number": (int, float),
    "float": (int, float),
    "bool": (bool,),
    "boolean": (bool,),
    "list": (list,),
    "array": (list,),
    "object": (dict,),
}
_STRINGS = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")
_OUTCOME = "_outcome"
_FIELDS = "_fields"
_NAMES = frozenset({_OUTCOME, _FIELDS})  # the only names a condition's expression has: the ids made lookups


class ConditionError(ValueError):
    """A condition that cannot be read or cannot be decided; its message says what and where."""


class NotDone(ConditionError):
    """A condition needs a field of a task that did not complete (failed, skipped, bypassed...):
    the task is not run for it, as a plain dependent of that task is not."""

    def __init__(self, task: str, outcome: str) -> None:
        super().__init__(f"{task} {outcome}: it left no output fields to read")
        self.task, self.outcome = task, outcome


@dataclass(frozen=True, slots=True)
class Condition:
    text: str  # as written in the plan
    expression: str  # the jinja2 expression it was read as
    tasks: tuple[str, ...]  # the tasks it names, in the order it names them
    fields: tuple[tuple[str, str], ...]  # (task, field) it reads of their output

    def evaluate(self, outcomes: Mapping[str, str], outputs: Mapping[str, Mapping[str, Any] | None]) -> bool:
        """Whether it holds, given each named task's outcome (``completed``, ``failed``...) and its
        output's fields (``None``: it has none). ``and`` and ``or`` read no further than they need
        (``T-01 failed or T-01.count > 2`` holds when T-01 failed). A field it needs that is not
        there is a ``ConditionError`` (``NotDone`` when its task did not complete): never a false
        condition."""
        from jinja2 import TemplateError

        try:
            value = _compiled(self.expression)(**{_OUTCOME: dict(outcomes), _FIELDS: dict(outputs)})
            holds = bool(value)  # (a field it reads as a whole, missing: StrictUndefined raises here)
        except (TemplateError, TypeError, ValueError, ArithmeticError, RecursionError) as exc:
            for task, name in self.fields:
                found = outputs.get(task)
                if found is None and outcomes.get(task, "completed") != "completed":
                    raise NotDone(task, outcomes[task]) from None
                if found is None:
                    raise ConditionError(
                        f"{task} left no output fields (its answer held no JSON object) to read {name}"
                    ) from None
                if name not in found:
                    raise ConditionError(
                        f"{task}'s output has no field '{name}' (it has: {', '.join(found) or 'none'})"
                    ) from None
                deeper = _missing_under(self.text, task, name, found[name])
                if deeper is not None:
                    raise ConditionError(deeper) from None
            raise ConditionError(f"{self.text}: {exc}") from None
        return holds

    def seen(self, outcomes: Mapping[str, str], outputs: Mapping[str, Mapping[str, Any] | None]) -> str:
        """What it looked at, as a reason says it: ``T-01 failed, T-02.severity = "low"``."""
        said = [f"{task} {outcomes.get(task, '?')}" for task in self.tasks]
        for task, name in self.fields:
            if outputs.get(task) is None:  # (it did not complete: its outcome said so)
                continue
            value = (outputs.get(task) or {}).get(name)
            said.append(f"{task}.{name} = {json.dumps(value, ensure_ascii=False)}")
        return ", ".join(dict.fromkeys(said))


_FALSE = "condition false: "  # how a bypassed task's reason begins, when its own condition was false


def _kind(value: object) -> str:
    """What a JSON value is, in a person's words."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if value is None:
        return "null"
    return "an object"


def _missing_under(text: str, task: str, name: str, value: object) -> str | None:
    """Where a path the condition reads below ``task.name`` (``T-01.name.x.y``) is not in the value
    the task gave: the part that is missing and what stands there instead, in the condition's own
    words; ``None`` when every path it reads below that field is there."""
    for match in re.finditer(rf"(?<![\w.-]){re.escape(task)}\.{re.escape(name)}((?:\.\w+|\[\d+\])+)", text):
        at, shown = value, f"{task}.{name}"
        for step in re.findall(r"\.(\w+)|\[(\d+)\]", match.group(1)):
            key, index = step
            if key and isinstance(at, dict) and key in at:
                at, shown = at[key], f"{shown}.{key}"
            elif index and isinstance(at, list) and int(index) < len(at):
                at, shown = at[int(index)], f"{shown}[{index}]"
            else:
                wanted = f"no field '{key}'" if key else f"no item {index}"
                listed = f" (it has: {', '.join(at) or 'none'})" if isinstance(at, dict) else ""
                return f"{shown} is {_kind(at)}{listed}: it has {wanted}, which the condition reads ({text})"
    return None


def false_reason(text: str, seen: str) -> str:
    """Why a task whose condition ``text`` was false is bypassed: the condition and what it saw."""
    return f"{_FALSE}{text} ({seen})"


def seen_in(reason: str | None, text: str | None) -> str | None:
    """What condition ``text`` saw, as ``false_reason`` put it in ``reason``; ``None`` when
    ``reason`` is no such reason of that condition (an upstream was bypassed, the cell changed)."""
    prefix = f"{_FALSE}{text} ("
    if text and reason and reason.startswith(prefix) and reason.endswith(")"):
        return reason[len(prefix) : -1]
    return None


def compile_condition(text: str, ids: Iterable[str], depends_on: Iterable[str] = ()) -> Condition:
    """``text`` read as a condition on the tasks of ``ids`` (the plan's); ``ConditionError`` names
    what is wrong: a syntax error, a name that is no task, a task it does not depend on."""
    from jinja2 import TemplateSyntaxError

    from orchestrator.plan.table.expressions import MAX_CHARS, Refused, UnknownName

    if len(text) > MAX_CHARS:
        raise ConditionError(f"the condition is {len(text)} characters long (at most {MAX_CHARS}): split the task")
    if "{{" in text:  # (a plan's {{ params.x }} is filled in scripts and prose, never here)
        raise ConditionError(
            f"'{text}': a Condition is not filled in, so {{{{ ... }}}} would be compared as its own text (a "
            "condition reads its tasks' outcomes and output fields: to branch on a parameter, let a task print "
            "it as an Output field and read that)"
        )
    known = sorted(set(ids), key=len, reverse=True)
    _no_such_id(text, known)
    _brackets(text)
    for part in _STRINGS.split(text)[::2]:
        for name in re.findall(rf"(?<![\w.-])({_OUTCOME}|{_FIELDS})\b", part):
            raise _no_task(name, text)  # (the names the ids are made: never one of its own)
    tasks: list[str] = []
    fields: list[tuple[str, str]] = []
    parts = _STRINGS.split(text)
    for index in range(0, len(parts), 2):  # (the odd parts are string literals: left as they are)
        parts[index] = _read_ids(parts[index], known, tasks, fields)
    expression = "".join(parts).strip()
    if not expression:
        raise ConditionError("the condition is empty")
    try:
        _compiled(expression)
    except TemplateSyntaxError as exc:
        raise ConditionError(f"cannot read '{text}': {_said(exc)}") from None
    except UnknownName as exc:
        raise _no_task(exc.name, text) from None
    except Refused as exc:
        raise ConditionError(f"'{text}': {exc}") from None
    upstream = set(depends_on)
    outside = [task for task in dict.fromkeys(tasks) if task not in upstream]
    if outside:
        raise ConditionError(f"the condition names {outside[0]}, which the task does not depend on")
    return Condition(text, expression, tuple(dict.fromkeys(tasks)), tuple(dict.fromkeys(fields)))


# How deep the lookup a task id is made nests its own brackets: ``(_outcome["T-01"] == "completed")``.
_LOOKUP_NESTING = 2


def _brackets(text: str) -> None:
    """Refused: brackets nested past ``expressions.MAX_NESTING`` as the condition writes them (the
    lookups its ids are made add their own, which a person does not count: ``_LOOKUP_NESTING``)."""
    from orchestrator.plan.table.expressions import MAX_NESTING

    depth = 0
    for part in _STRINGS.split(text)[::2]:  # (a bracket in a string literal is a character)
        for char in part:
            if char in "([{":
                depth += 1
                if depth > MAX_NESTING:
                    raise ConditionError(f"'{text}': its brackets are nested more than {MAX_NESTING} deep")
            elif char in ")]}":
                depth -= 1


def _no_task(name: str, text: str) -> ConditionError:
    return ConditionError(
        f"'{name}' in '{text}' is no task of the plan (a task is named by its id, e.g. T-01 failed, "
        'T-02.severity == "high")'
    )


def _said(exc: TemplateSyntaxError) -> str:
    """jinja2's word for what it could not read, in a condition's terms (it reads one as a
    ``{{ ... }}`` print statement, or a template of its own)."""
    said = exc.message or "a syntax error"
    for end in ("'end of print statement'", "'end of template'"):
        said = said.replace(end, "end of the condition")
    return said


def _no_such_id(text: str, known: list[str]) -> None:
    """A word written as an id (``T-1``, ``T-09``) that is no task's: said so, with the one meant."""
    lowered = {task.lower() for task in known}
    for part in _STRINGS.split(text)[::2]:
        for word in re.findall(r"(?<![\w.-])[A-Za-z][A-Za-z_]*-[\w-]+", part):
            if word.lower() not in lowered:
                close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
                meant = f" (did you mean {close[0]}?)" if close else ""
                raise ConditionError(f"'{word}' in '{text}' is no task of the plan{meant}")


def _read_ids(part: str, known: list[str], tasks: list[str], fields: list[tuple[str, str]]) -> str:
    """``part`` (no string literal in it) with each task id made a lookup in what a run hands in."""
    if not known:
        return part
    ids = "|".join(re.escape(task) for task in known)
    pattern = re.compile(
        rf"(?<![\w.-])(?P<id>{ids})(?![\w-])"
        rf"(?:\.(?P<field>[A-Za-z_]\w*)|\s+(?P<word>{'|'.join(OUTCOMES)})\b)?",
        re.IGNORECASE,
    )

    def lookup(match: re.Match[str]) -> str:
        task = next(t for t in known if t.lower() == match["id"].lower())
        tasks.append(task)
        if match["field"]:
            fields.append((task, match["field"]))
            return f"{_FIELDS}[{json.dumps(task)}][{json.dumps(match['field'])}]"
        outcome = OUTCOMES[(match["word"] or "completed").lower()]
        return f"({_OUTCOME}[{json.dumps(task)}] == {json.dumps(outcome)})"

    return pattern.sub(lookup, part)


def output_fields(text: str) -> dict[str, Any] | None:
    """The fields an output holds: the JSON object it is, or the last one it ends with (a line of
    its own, or a fenced ```json block); ``None`` when there is none."""
    stripped = text.strip()
    candidates = [stripped]
    fenced = re.findall(r"```(?:json)?\s*\n(\{.*?\})\s*\n```", text, re.DOTALL)
    candidates += reversed(fenced)
    candidates += [line.strip() for line in reversed(stripped.splitlines()) if line.strip().startswith("{")][:3]
    for candidate in candidates:
        try:
            found = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(found, dict):
            return found
    return None


def parse_outputs(cell: str) -> tuple[tuple[str, str], ...]:
    """An Output column's fields: ``severity, count:int`` -> ``(("severity", "str"), ("count", "int"))``;
    ``ValueError`` names a bad one."""
    found: list[tuple[str, str]] = []
    for word in re.split(r"[,;\s]+", re.sub(r"\s*:\s*", ":", cell.strip())):
        if not word.strip():
            continue
        name, _, kind = (part.strip() for part in word.partition(":"))
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise ValueError(f"'{name}' is no field name (letters, digits and _)")
        kind = (kind or "str").lower()
        if kind not in FIELD_TYPES:
            raise ValueError(f"'{word.strip()}': unknown type '{kind}' (use {', '.join(sorted(set(FIELD_TYPES)))})")
        found.append((name, kind))
    return tuple(found)


def shape_problem(declared: Iterable[tuple[str, str]], fields: Mapping[str, Any] | None) -> str | None:
    """What an output lacks of the fields its task declares (its Output column), or ``None``."""
    declared = list(declared)
    if not declared:
        return None
    if fields is None:
        return f"its answer holds no JSON object with {', '.join(name for name, _ in declared)}"
    for name, kind in declared:
        if name not in fields:
            return f"its answer's JSON object has no field '{name}'"
        value = fields[name]
        numeric = kind in ("int", "integer", "number", "float")
        if not isinstance(value, FIELD_TYPES[kind]) or (numeric and isinstance(value, bool)):
            return f"its answer's field '{name}' is {json.dumps(value)[:40]}, not {kind}"
    return None


@lru_cache(maxsize=256)
def _compiled(expression: str) -> TemplateExpression:
    """``expression`` checked (``expressions.parse``: the language, its bounds) and compiled."""
    from orchestrator.plan.table.expressions import MAX_NESTING, compile_tree, parse

    return compile_tree(parse(expression, _NAMES, nesting=MAX_NESTING + _LOOKUP_NESTING))


def plan_problems(tasks: Mapping[str, Any]) -> list[tuple[int, str, str]]:
    """(line, what, what to do) for each Condition of ``tasks`` (a plan's ``Task`` rows) that
    cannot be read, names a task it does not depend on, or reads a field its upstream's Output
    column does not declare."""
    found: list[tuple[int, str, str]] = []
    for task in tasks.values():
        if not task.condition:
            continue
        try:
            condition = compile_condition(task.condition, tasks, task.dependencies)
        except ConditionError as exc:
            found.append((task.line, f"{task.id}: {exc}", _HINT))
            continue
        for upstream, name in condition.fields:
            # A row run once per item answers with its items' answers (``run/items``), whatever each's are.
            each = getattr(tasks[upstream], "each", None) is not None
            declared = ["items", "failed"] if each else [field for field, _ in tasks[upstream].outputs]
            if not declared:
                what = f"{task.id}: {upstream} declares no Output, so it has no field '{name}' to read"
                found.append((task.line, what, f"give {upstream} an Output cell naming it ({name}, or {name}:int...)"))
            elif name not in declared:
                close = difflib.get_close_matches(name, declared, n=1)
                meant = f" (did you mean {close[0]}?)" if close else ""
                what = f"{task.id}: {upstream} has no output field '{name}'{meant}"
                found.append((task.line, what, f"its Output column declares: {', '.join(declared)}"))
    return found


def reads(task: Any, ids: Iterable[str]) -> tuple[str, ...]:
    """The upstream tasks ``task``'s Condition names, in the order it names them: the edges a
    graph labels with it. ``()`` for none, or for a condition that does not read (``validate``
    says why)."""
    if not task.condition:
        return ()
    try:
        return compile_condition(task.condition, ids, task.dependencies).tasks
    except ConditionError:
        return ()


GATES = {
    "before": "approval before it starts",
    "after": "approval of its result, before what depends on it starts",
}  # what an Approval cell asks of a person, as validate says it


_HINT = 'write it as T-01 failed, T-01 completed, T-02.severity == "high", joined by and, or, not'
