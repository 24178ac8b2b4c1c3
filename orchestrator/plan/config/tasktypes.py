"""Task types: the ``Type`` column names one, and it gives the task default cells and settings.

A type may set ``profile``, ``backend``, ``model``, ``timeout``, ``retries``, ``access``,
``permission_mode``, ``tools``, ``allowed_tools``, ``isolation``, ``priority``, ``approval`` and
``section`` (the heading the brief asks the agent to put its answer under), and has a
``description``. The built-in types (``BUILT_IN``) may be changed, and new ones defined, in
``types.yaml`` beside master_plan.md and under ``types:`` in the plan's settings; for one name,
field by field, the plan's settings win over types.yaml, and types.yaml over the built-in type.
A field set to ``default`` is not set by that type.

A type works as cells of the task's row the row leaves empty: the row's own cells win over its
type, its type over its profile, its profile over the plan (``Plan.settings_for``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import Problem, shown
from orchestrator.plan.config import values as setting
from orchestrator.plan.config.bestof import parse_best_of, parse_judge
from orchestrator.plan.config.deliver import parse_deliver
from orchestrator.plan.config.hedging import parse_hedge
from orchestrator.plan.config.values import ISOLATION, RETRIES, parse_duration
from orchestrator.plan.table.access import ACCESS_WORDS, access_settings
from orchestrator.plan.table.cells import parse_priority

TYPES_FILE = "types.yaml"
TYPES_LIMIT = 256 * 1024  # bytes: definitions, not data
APPROVALS = ("before", "after")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


def _access(value: object) -> str:
    word = setting._str(value).lower()
    if word not in ACCESS_WORDS:
        raise ValueError(f"{setting._shown(value)} is not read or edit")
    return ACCESS_WORDS[word]


def _priority(value: object) -> int:
    try:
        return parse_priority(setting._str(value))
    except ValueError:
        raise ValueError(f"{setting._shown(value)} is not a priority (P0-P3, critical/high/normal/low)") from None


def _approval(value: object) -> str | None:
    word = setting._str(value).lower()
    if word in {"none", "no", "-"}:
        return None
    if word not in APPROVALS:
        raise ValueError(f"{setting._shown(value)} is not before, after or none")
    return word


def _section(value: object) -> str:
    text = setting._str(value).lstrip("#").strip()
    if not text or "\n" in text or len(text) > 60:
        raise ValueError(f"{setting._shown(value)} is not a heading (a few words on one line)")
    return text


def _profile(value: object) -> str | None:
    text = setting._str(value)
    return None if text.lower() in {"none", "-"} else text or None


# Each field a type may set, and how its value is read (a field the plan may set too is read by
# the same reader as the plan's setting: a test holds it).
FIELDS: dict[str, Callable[[object], Any]] = {
    "description": setting._str,
    "profile": _profile,
    "backend": lambda value: setting._str(value).lower(),
    "model": setting._optional_str,
    "timeout": parse_duration,
    "retries": RETRIES,
    "access": _access,
    "permission_mode": setting._optional_str,
    "tools": setting._tool_set,
    "allowed_tools": setting._words,
    "isolation": ISOLATION,
    "priority": _priority,
    "approval": _approval,
    "section": _section,
    "cache": setting._cache,
    "hedge": parse_hedge,
    "best_of": parse_best_of,
    "judge": parse_judge,
    "agent_pushes": setting._bool,
    "deliver": parse_deliver,
}
# The fields that become the task's settings (the rest are its cells, or its brief's).
SETTING_FIELDS = (
    "backend", "model", "timeout", "retries", "isolation", "permission_mode", "tools", "allowed_tools", "cache",
    "hedge", "best_of", "judge", "agent_pushes", "deliver",
)  # fmt: skip
# What a change to does not change what the task does, so its result stays up to date (as for a row's cells).
_NOT_SIGNED = ("description", "timeout", "retries", "priority", "approval", "cache", "hedge", "best_of", "judge",
               "deliver")  # fmt: skip


@dataclass(frozen=True, slots=True)
class TaskType:
    """One type: the fields it sets (a field it does not set is absent), and where it is defined."""

    name: str
    values: Mapping[str, Any] = field(default_factory=dict)
    origin: str = "built-in"  # built-in, types.yaml, the plan, or a combination ("built-in, the plan")

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def sets(self, name: str) -> bool:
        return name in self.values

    @property
    def description(self) -> str:
        return str(self.values.get("description") or "")

    def settings(self, backend: str, *, access: bool = True) -> dict[str, Any]:
        """What it changes of a task's settings on ``backend``: its access as an Access cell (unless
        ``access`` is false: the row has its own), then its own settings (an explicit ``tools`` or
        ``permission_mode`` wins over its access)."""
        changes = access_settings(backend, self.values["access"]) if access and "access" in self.values else {}
        changes.update((name, self.values[name]) for name in SETTING_FIELDS if name in self.values)
        return changes

    def signature(self) -> str:
        """What of it changes what a task of this type does (not its timeout or retries)."""
        signed = {key: value for key, value in self.values.items() if key not in _NOT_SIGNED}
        return f"{self.name}:{sorted(signed.items())!r}"


def _builtin(name: str, description: str, **values: Any) -> TaskType:
    return TaskType(name, {"description": description, **values})


BUILT_IN: dict[str, TaskType] = {
    kind.name: kind
    for kind in (
        _builtin(
            "research",
            "find things out and report them; reads files, changes nothing",
            access="read",
            section="Findings",
        ),
        _builtin(
            "analysis", "study code or data and explain it; reads, changes nothing", access="read", section="Analysis"
        ),
        _builtin("implementation", "make a change: edits files in its directory", access="edit", section="Changes"),
        _builtin("review", "judge another task's work; reads, changes nothing", access="read", section="Verdict"),
        _builtin("test", "run and write tests; twice the default time", timeout=3600.0, section="Test results"),
        _builtin("docs", "write or update documentation: edits files", access="edit", section="Changes"),
        _builtin(
            "coordination",
            "weigh other tasks' results and decide; reads, changes nothing",
            access="read",
            section="Decisions",
        ),
    )
}


def parse_types(value: object) -> dict[str, TaskType]:
    """The ``types:`` setting: ``{name: {field: value}}``; ``ValueError`` tells the first problem
    (``read_types`` finds them all, and ``parse_plan`` gives each its line)."""
    found, problems = read_types(value)
    if problems:
        raise ValueError(problems[0].message)
    return found


@dataclass(frozen=True, slots=True)
class TypeProblem:
    keys: tuple[str, ...]  # the keys leading to it: (type,) or (type, field)
    message: str
    hint: str


_MAPPING_HINT = "write each type as 'name: {field: value}', e.g. 'quick: {timeout: 1m}'"


def read_types(value: object, origin: str = "the plan") -> tuple[dict[str, TaskType], list[TypeProblem]]:
    """The types of ``value`` (defined in ``origin``), and every problem."""
    if value is None:
        return {}, []
    if not isinstance(value, Mapping):
        return {}, [TypeProblem((), f"{setting._shown(value)} is not a mapping of types", _MAPPING_HINT)]
    found: dict[str, TaskType] = {}
    problems: list[TypeProblem] = []
    for key, fields in value.items():
        name = str(key).strip().lower()
        if name in {"none", "default"}:
            message = f"type name {setting._shown(key)} means no type in a Type cell"
            problems.append(TypeProblem((str(key),), message, "give the type another name"))
            continue
        if not _NAME_RE.fullmatch(name):
            message = f"type name {setting._shown(key)} is not a word"
            problems.append(TypeProblem((str(key),), message, "name it with lowercase letters, digits, '-' and '_'"))
            continue
        if not isinstance(fields, Mapping | None):
            problems.append(
                TypeProblem((str(key),), f"type '{name}': {setting._shown(fields)} is not a mapping", _MAPPING_HINT)
            )
            continue
        values: dict[str, Any] = {}
        for raw, item in (fields or {}).items():
            field_name = str(raw).strip().replace("-", "_")
            keys = (str(key), str(raw))
            if field_name not in FIELDS:
                message = f"type '{name}': unknown field '{raw}'{setting.suggest(field_name, list(FIELDS))}"
                problems.append(TypeProblem(keys, message, "use one of: " + ", ".join(FIELDS)))
            elif isinstance(item, str) and item.strip().lower() == "default":
                values[field_name] = _DEFAULT
            else:
                try:
                    values[field_name] = FIELDS[field_name](item)
                    if setting._holds_nul(values[field_name]):
                        raise ValueError("it holds a NUL character (\\0), which no process takes")
                except ValueError as exc:
                    message = f"type '{name}': bad value for '{raw}': {exc}"
                    problems.append(TypeProblem(keys, message, "fix the value, or write 'default' to leave it unset"))
        found[name] = TaskType(name, values, origin)
    return found, problems


def load_file(path: Path) -> tuple[dict[str, TaskType], list[Problem]]:
    """The types defined in ``path`` (``types.yaml`` beside the plan; none when there is no such
    file), and every problem in it, by its line."""
    from orchestrator import documents
    from orchestrator.yamlio import safe_load

    where = shown(path)
    try:
        text = documents.read_regular(path, TYPES_LIMIT).decode("utf-8-sig")
    except FileNotFoundError:
        return {}, []
    except (OSError, UnicodeDecodeError) as exc:
        return {}, [
            Problem(where, 1, f"cannot read the types file: {exc}", "make it a YAML file in UTF-8, or delete it")
        ]
    try:
        data = safe_load(text)
    except Exception as exc:  # yaml.YAMLError (PyYAML imported only when needed)
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return {}, [Problem(where, line, f"not valid YAML: {problem}", "fix the YAML, e.g. 'quick: {timeout: 1m}'")]
    found, problems = read_types(data, TYPES_FILE)
    lines = text.splitlines()
    return found, [Problem(where, key_line(lines, 0, len(lines), p.keys), p.message, p.hint) for p in problems]


class _Default:
    """A field set to ``default``: not set by the type, whatever a definition below it says."""

    def __repr__(self) -> str:
        return "default"


_DEFAULT = _Default()


def merged(*layers: Mapping[str, TaskType]) -> dict[str, TaskType]:
    """The types the plan's tasks may name: the built-in ones, then each layer's, field by field."""
    kinds: dict[str, TaskType] = dict(BUILT_IN)
    for layer in layers:
        for name, kind in layer.items():
            below = kinds.get(name)
            values = {**below.values, **kind.values} if below is not None else dict(kind.values)
            origin = f"{below.origin}, {kind.origin}" if below is not None else kind.origin
            kinds[name] = TaskType(name, {k: v for k, v in values.items() if v is not _DEFAULT}, origin)
    return kinds


def key_line(lines: list[str], start: int, end: int, keys: tuple[str, ...]) -> int:
    """The 1-based line, among ``lines[start:end]`` (0-based), of the last of ``keys`` each nested
    in the one before (a block or a flow mapping): ``start + 1`` when the first is not found."""
    at = start
    for key in keys:
        pattern = re.compile(rf"(^|[\s{{,])['\"]?{re.escape(key)}['\"]?\s*:")
        for index in range(at, end):
            if pattern.search(lines[index]):
                at = index
                break
        else:
            break
    return at + 1
