"""A plan's parameters: the ``params`` setting, and the values each run gives them.

A plan declares ``params:`` in its settings (each a default and a description; one without a
default is required) and writes ``{{ params.NAME }}`` in its request and goal, and in a task's
title, description, Task Details and Command. ``filling.resolve`` gives a plan read from disk those values: the declared
defaults, under the values its workspace's last run gave (``state/plans/params.py``), under
the ones this command was given. Only a ``{{ }}`` that names ``params`` is a parameter: any other
braces in a plan (a Go template, a GitHub workflow's ``${{ }}``) are left as written.

Each expression is evaluated in jinja2's sandbox with ``StrictUndefined`` (``{{ params.repo |
upper }}`` works; ``params.__class__`` does not). What it becomes in each place, a script's
reference to an environment variable or prose's value, is ``plan/config/filling``'s: a value is
data, never code. An expression naming a parameter the plan does not declare is a ``PlanError``
at its line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import NotText, UsageError

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
VALUE_LIMIT = 64 * 1024  # bytes of a value: an attempt gets it as one environment string (at most 128 KiB)
_KEYS = ("default", "description", "choices")


@dataclass(frozen=True, slots=True)
class Param:
    """One declared parameter: its default (``None``: required) and what it is."""

    default: str | None = None
    description: str = ""
    choices: tuple[str, ...] = ()  # the values it may take (GitHub's ``type: choice`` options); () for any

    @property
    def required(self) -> bool:
        return self.default is None


def _text(value: object, what: str) -> str:
    if isinstance(value, str) and "\0" in value:
        raise ValueError(f"{what} holds a NUL character (\\0), which no process takes")
    fault = NotText.fault(value) if isinstance(value, str) else None
    if fault is not None:  # (a JSON plan's "\\ud800")
        raise ValueError(f"{what} is not text ({fault})")
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    raise ValueError(f"{what} is {value!r}, not text or a number")


def parse_params(value: object) -> dict[str, Param]:
    """The ``params`` setting: a mapping of name to ``{default, description}`` (or to the default
    alone); ``ValueError`` naming the parameter for anything else."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError("not a mapping of NAME: {default: ..., description: ...}")
    found: dict[str, Param] = {}
    for key, spec in value.items():
        name = str(key)
        if not NAME_RE.fullmatch(name):
            raise ValueError(f"{name!r} is not a parameter name (letters, digits and '_', not first a digit)")
        twin = next((known for known in found if known.upper() == name.upper()), None)
        if twin is not None:
            raise ValueError(
                f"{twin} and {name} differ only in case, and a script reads both as $ORCHESTRATOR_PARAM_{name.upper()}"
                " — rename one"
            )
        if isinstance(spec, Mapping):
            unknown = [str(k) for k in spec if k not in _KEYS]
            if unknown:
                raise ValueError(f"params.{name}: unknown key '{unknown[0]}' (use default and description)")
            default = spec.get("default")
            description = spec.get("description")
            choices = spec.get("choices") or []
            if not isinstance(choices, list):
                raise ValueError(f"params.{name}.choices: not a list of values, e.g. [fr, de]")
            param = Param(
                None if default is None else _text(default, f"params.{name}.default"),
                "" if description is None else _text(description, f"params.{name}.description").strip(),
                tuple(_text(choice, f"params.{name}.choices") for choice in choices),
            )
            if param.choices and param.default is not None and param.default not in param.choices:
                raise ValueError(f"params.{name}: its default {param.default!r} is not one of its choices")
            found[name] = param
        else:
            found[name] = Param(None if spec is None else _text(spec, f"params.{name}"))
    return found


def as_json(param: Param) -> dict[str, Any]:
    """A parameter as ``validate --json`` and ``templates list --json`` show it."""
    return {"default": param.default, "description": param.description, "choices": list(param.choices)}


def shown_values(values: Mapping[str, str]) -> str:
    """``repo="../api", depth="2"``: a run's values on one line (each a JSON string: a newline or
    a quote in one is seen, not acted on); empty for none."""
    return ", ".join(f"{name}={json.dumps(value, ensure_ascii=False)}" for name, value in values.items())


def parse_assignments(words: list[str] | None) -> dict[str, str]:
    """``--param NAME=VALUE`` (repeatable) as a mapping; a word without ``=`` is a ``UsageError``."""
    given: dict[str, str] = {}
    for word in words or ():
        NotText.check("--param", word)  # (as every door checks it: ``commands/options.Opt.texts``)
        name, equals, value = word.partition("=")
        name = name.strip()
        if not equals or not NAME_RE.fullmatch(name):
            raise UsageError(f"--param {word}: write NAME=VALUE, e.g. --param repo=../other-repo")
        if name in given:
            raise UsageError(f"--param {name}: given twice — give each parameter once")
        given[name] = value
    return given


def body_start(lines: list[str]) -> int:
    """The index of the first line after the frontmatter (0 without one)."""
    if lines and lines[0].strip() == "---":
        for index, line in enumerate(lines[1:], start=1):
            if line.strip() in ("---", "..."):
                return index + 1
    return 0


def values_for(
    declared: Mapping[str, Param],
    remembered: Mapping[str, str],
    given: Mapping[str, str],
    *,
    complete: bool,
    where: str,
    line: Callable[[str], int] = lambda name: 0,
) -> dict[str, str]:
    """Each declared parameter's value: given, else remembered, else its default. A given name the
    plan does not declare is a ``UsageError``; so, with ``complete``, is a required one without
    a value (without ``complete``, it stays out: its expressions are left as written), told at
    the ``line`` of the plan that declares it."""
    from orchestrator.plan.config.values import suggest

    for name in given:
        if name not in declared:
            known = ", ".join(declared) if declared else "none: add params: to its settings"
            raise UsageError(
                f"--param {name}: {where} declares no parameter '{name}'{suggest(name, list(declared))} "
                f"(its parameters: {known})"
            )
    for name, text in given.items():
        size = len(text.encode("utf-8", "surrogateescape"))
        if size > VALUE_LIMIT:
            raise UsageError(
                f"--param {name}: a value of {size:,} bytes, at most {VALUE_LIMIT:,} (a process is given it as one "
                "string of its environment) — put it in a file in the project, and give its path"
            )
    values: dict[str, str] = {}
    for name, param in declared.items():
        value = given.get(name, remembered.get(name, param.default))
        if value is not None and param.choices and value not in param.choices:
            if name in given:
                raise UsageError(f"--param {name}={value}: not one of {', '.join(param.choices)}")
            value = param.default  # a remembered value no longer allowed: the default
        if value is not None:
            values[name] = value
        elif complete:
            what = f" ({param.description})" if param.description else ""
            at = line(name)
            raise UsageError(
                f"{where}{f':{at}' if at else ''}: parameter '{name}'{what} has no default and no value — "
                f"give one with `run --param {name}=…` or a default"
            )
    return values


def param_line(text: str, name: str) -> int:
    """The line of a plan (``text``: the whole file) that declares parameter ``name``: its own key
    under ``params:``, else the ``params:`` line."""
    from orchestrator.plan.config.values import setting_line

    start = setting_line(text, "params")
    lines = text.splitlines()
    for number, line in enumerate(lines[start:], start=start + 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[:1].isspace():  # the next setting: params: is behind
            break
        if re.match(rf"^\s+['\"]?{re.escape(name)}['\"]?\s*:", line):
            return number
    return start
