"""The ``triggers`` setting: which webhook deliveries start a run of the plan, and the parameters
each gives it (``serve``'s ``/hooks/github`` and ``/hooks/NAME`` act on it)::

    triggers:
      github:
        events: [pull_request]                 # X-GitHub-Event values that start a run
        actions: [opened, synchronize]         # the payload's "action" (default: any)
        params: {pr: "{{ event.pull_request.number }}"}
      hooks:
        deploy:                                # POST /hooks/deploy
          header: X-Deploy-Signature           # holds sha256=HMAC-SHA256(secret, body), hex
          delivery_header: X-Deploy-Id         # optional: an id seen before is not run twice
          params: {env: "{{ event.environment | default('staging') }}"}

A parameter is a jinja2 expression of the delivery's JSON (``event``), rendered in a sandbox
and bounded: expressions only (no ``{% %}``), a path into the event, literals, ``~``, ``and``,
``or``, ``not``, comparisons, ``a if b else c`` and the filters in ``FILTERS``, each linear in
what it is given (no call, no ``*``, no ``join``: nothing a delivery can make take long or
grow); a value rendered is at most ``VALUE_LIMIT`` characters. A bad setting is a ``ValueError``
whose message the frontmatter's reader puts on the key's line; a delivery a parameter cannot be
read from is a ``TriggerError``.

jinja2 is imported when a parameter is first checked or rendered (``_jinja``): a plan without
``triggers``, as ``status`` and ``list`` read most, does not pay for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

GITHUB = "github"
TEMPLATE_LIMIT = 500  # characters of one parameter's expression
VALUE_LIMIT = 1000  # characters of one rendered value
FILTERS = frozenset(
    {"default", "d", "lower", "upper", "trim", "string", "int", "length", "first", "last", "truncate", "tojson"}
)
TESTS = frozenset({"defined", "undefined", "none", "string", "number", "mapping", "sequence"})
_ALLOWED = (  # the jinja2 nodes a parameter may be built of
    "Template",
    "Output",
    "TemplateData",
    "Name",
    "Getattr",
    "Getitem",
    "Const",
    "Concat",
    "CondExpr",
    "Compare",
    "Operand",
    "And",
    "Or",
    "Not",
    "Filter",
    "Test",
    "Keyword",
)
_WORD = re.compile(r"^[a-z][a-z0-9_]*$")
_HEADER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_HOOK = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_PARAM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class TriggerError(ValueError):
    """A delivery the plan takes, whose parameters cannot be read from it."""


@dataclass(frozen=True, slots=True)
class GitHub:
    events: tuple[str, ...]
    actions: tuple[str, ...] = ()  # empty: any action (and events that have none)
    params: dict[str, str] = field(default_factory=dict)

    def takes(self, event: str, action: object) -> bool:
        return event in self.events and (not self.actions or action in self.actions)


@dataclass(frozen=True, slots=True)
class Hook:
    name: str
    header: str
    delivery_header: str | None = None
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Triggers:
    github: GitHub | None = None
    hooks: dict[str, Hook] = field(default_factory=dict)


@cache
def _jinja() -> tuple[ImmutableSandboxedEnvironment, tuple[type, ...]]:
    """The sandbox parameters are rendered in, and the node classes of ``_ALLOWED``."""
    from jinja2 import StrictUndefined, nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    allowed = tuple(getattr(nodes, name) for name in _ALLOWED)
    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False), allowed


def _expression(name: str, text: object) -> str:
    """A parameter's template, checked: bounded, and built of ``_ALLOWED`` nodes only."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError(f'params.{name}: give a string, such as "{{{{ event.number }}}}"')
    text = str(text)
    if len(text) > TEMPLATE_LIMIT:
        raise ValueError(f"params.{name}: {len(text)} characters, at most {TEMPLATE_LIMIT}")
    from jinja2 import TemplateError, nodes

    environment, allowed = _jinja()
    try:
        tree = environment.parse(text)
    except TemplateError as exc:
        raise ValueError(f"params.{name}: {exc.message}") from None
    for node in tree.find_all(nodes.Node):
        if not isinstance(node, allowed):
            raise ValueError(
                f"params.{name}: {type(node).__name__.lower()} is not allowed here — use an expression of the "
                "event: {{ event.a.b }}, ~, a if b else c, filters " + ", ".join(sorted(FILTERS))
            )
        if isinstance(node, nodes.Filter) and node.name not in FILTERS:
            raise ValueError(
                f"params.{name}: the filter '{node.name}' is not allowed — use {', '.join(sorted(FILTERS))}"
            )
        if isinstance(node, nodes.Test) and node.name not in TESTS:
            raise ValueError(f"params.{name}: the test '{node.name}' is not allowed — use {', '.join(sorted(TESTS))}")
        if isinstance(node, nodes.Name) and node.name != "event":
            raise ValueError(f"params.{name}: '{node.name}' is not known — the delivery is `event`")
    return text


def _params(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError('params: give a mapping of parameter names to expressions: {pr: "{{ event.number }}"}')
    found: dict[str, str] = {}
    for name, text in value.items():
        if not isinstance(name, str) or not _PARAM.match(name):
            raise ValueError(f"params: '{name}' is not a parameter name (letters, digits, _)")
        found[name] = _expression(name, text)
    return found


def _words(value: object, what: str, *, required: bool) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if items is None and not required:
        return ()
    if not isinstance(items, list | tuple) or not items:
        raise ValueError(f"{what}: give a list of names, such as [pull_request]")
    for item in items:
        if not isinstance(item, str) or not _WORD.match(item):
            raise ValueError(f"{what}: '{item}' is not a name (lowercase letters, digits, _)")
    return tuple(items)


def _keys(value: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(str(key) for key in value if key not in allowed)
    if unknown:
        raise ValueError(f"{where}: unknown key '{unknown[0]}' — it takes {', '.join(sorted(allowed))}")


def _hook(name: object, value: object) -> Hook:
    if not isinstance(name, str) or not _HOOK.match(name) or name == GITHUB:
        raise ValueError(f"hooks: '{name}' is not a hook name (lowercase letters, digits, - and _; not github)")
    if not isinstance(value, Mapping):
        raise ValueError(f"hooks.{name}: give a mapping with header: and params:")
    _keys(value, {"header", "delivery_header", "params"}, f"hooks.{name}")
    headers: list[str | None] = []
    for key in ("header", "delivery_header"):
        header = value.get(key)
        if header is None and key == "delivery_header":
            headers.append(None)
            continue
        if not isinstance(header, str) or not _HEADER.match(header):
            raise ValueError(f"hooks.{name}.{key}: give an HTTP header's name, such as X-Signature-256")
        headers.append(header)
    assert headers[0] is not None
    return Hook(name, headers[0], headers[1], _params(value.get("params")))


def parse_triggers(value: object) -> Triggers:
    """The ``triggers`` setting; ``ValueError`` in one line for what is wrong."""
    if value is None:
        return Triggers()
    if not isinstance(value, Mapping):
        raise ValueError("give a mapping: github: {events: [...], params: {...}} and/or hooks: {NAME: {...}}")
    _keys(value, {GITHUB, "hooks"}, "triggers")
    github = None
    if value.get(GITHUB) is not None:
        spec = value[GITHUB]
        if not isinstance(spec, Mapping):
            raise ValueError("github: give a mapping with events:, actions: and params:")
        _keys(spec, {"events", "actions", "params"}, GITHUB)
        github = GitHub(
            _words(spec.get("events"), "github.events", required=True),
            _words(spec.get("actions"), "github.actions", required=False),
            _params(spec.get("params")),
        )
    hooks = value.get("hooks") or {}
    if not isinstance(hooks, Mapping):
        raise ValueError("hooks: give a mapping of hook names to {header: ..., params: {...}}")
    return Triggers(github, {str(name): _hook(name, spec) for name, spec in hooks.items()})


def render(params: Mapping[str, str], event: Any) -> dict[str, str]:
    """Each parameter's value, read from the delivery ``event``; ``TriggerError`` when one cannot be."""
    from jinja2 import TemplateError

    environment, _ = _jinja()
    values: dict[str, str] = {}
    for name, text in params.items():
        try:
            value = environment.from_string(text).render(event=event)
        except (TemplateError, TypeError, ValueError, OverflowError) as exc:
            raise TriggerError(f"the parameter {name} ({text}) cannot be read from this delivery: {exc}") from None
        if len(value) > VALUE_LIMIT:
            raise TriggerError(f"the parameter {name} came out {len(value)} characters long, at most {VALUE_LIMIT}")
        if "\x00" in value:
            raise TriggerError(f"the parameter {name} came out holding a NUL character")
        values[name] = value
    return values
