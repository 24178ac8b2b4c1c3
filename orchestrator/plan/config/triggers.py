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
          access: read                         # its runs' agents read only (or {OWNER: edit, default: read})
          sandbox: network                     # its shell tasks' sandbox: on (default: the plan's), network, off
          deliver: comment                     # what its runs deliver (default: the plan's ``deliver``)

A parameter is a jinja2 expression of the delivery's JSON (``event``), rendered in a sandbox
and bounded: expressions only (no ``{% %}``), a path into the event, literals, ``~``, ``and``,
``or``, ``not``, comparisons, ``a if b else c`` and the filters in ``FILTERS``, each linear in
what it is given (no call, no ``*``, no ``join``: nothing a delivery can make take long or
grow); a value rendered is at most ``VALUE_LIMIT`` characters. A bad setting is a ``ValueError``
whose message the frontmatter's reader puts on the key's line; a delivery a parameter cannot be
read from is a ``TriggerError``.

What a trigger's runs may do is its ``access`` (``Access``): ``read`` caps every agent task of the
run at ``Access: read``, by the sender's ``author_association`` or for a fork, which is capped by
default: a delivery's text is untrusted input (``plan/config/filling``).

jinja2 is imported when a parameter is first checked or rendered (``_jinja``): a plan without
``triggers``, as ``status`` and ``list`` read most, does not pay for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from orchestrator.plan.config.deliver import Deliver, parse_deliver

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


ASSOCIATIONS = frozenset(  # GitHub's author_association values
    {"OWNER", "MEMBER", "COLLABORATOR", "CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR", "FIRST_TIMER", "MANNEQUIN", "NONE"}
)
_CAP_KEYS = ASSOCIATIONS | {"fork", "default"}


@dataclass(frozen=True, slots=True)
class Access:
    """What a trigger lets the runs it starts do: ``read`` (every agent task with ``Access: read``)
    or ``edit`` (as the plan says), by who sent the delivery (GitHub's ``author_association``),
    whether it came from a fork, else ``default``. Not said: a pull request from a fork runs
    read-only (as GitHub gives a fork's workflow a read-only token), anything else as the plan says."""

    by: dict[str, str] = field(default_factory=dict)

    def read_only(self, event: object) -> bool:
        """Whether the run of delivery ``event`` is capped at ``read``."""
        if "fork" in self.by and from_fork(event):
            return self.by["fork"] == "read"
        association = author_association(event)
        if association in self.by:
            return self.by[association] == "read"
        if "default" in self.by:
            return self.by["default"] == "read"
        return from_fork(event)


def _dig(event: object, *path: str) -> object:
    for key in path:
        event = event.get(key) if isinstance(event, Mapping) else None
    return event


def from_fork(event: object) -> bool:
    """Whether a delivery is about a pull request from another repository (a fork)."""
    head, base = _dig(event, "pull_request", "head", "repo"), _dig(event, "pull_request", "base", "repo")
    if head is None:
        return False
    if _dig(head, "fork") is True:
        return True
    return _dig(head, "full_name") != _dig(base, "full_name")


def author_association(event: object) -> str | None:
    """The sender's relation to the repository, as GitHub gives it for the comment, review, pull
    request or issue the delivery is about (``None``: the delivery has none)."""
    for where in ("comment", "review", "pull_request", "issue"):
        found = _dig(event, where, "author_association")
        if isinstance(found, str):
            return found
    return None


def _access(value: object, where: str) -> Access:
    if value is None:
        return Access()
    if isinstance(value, str):
        value = {"default": value, "fork": value}
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}.access: give read or edit, or a mapping such as {{OWNER: edit, default: read}}")
    found: dict[str, str] = {}
    for key, word in value.items():
        if key not in _CAP_KEYS:
            raise ValueError(
                f"{where}.access: '{key}' is not fork, default nor an author_association "
                f"({', '.join(sorted(ASSOCIATIONS))})"
            )
        if word not in ("read", "edit"):
            raise ValueError(f"{where}.access.{key}: '{word}' — give read or edit")
        found[str(key)] = str(word)
    return Access(found)


@dataclass(frozen=True, slots=True)
class GitHub:
    events: tuple[str, ...]
    actions: tuple[str, ...] = ()  # empty: any action (and events that have none)
    params: dict[str, str] = field(default_factory=dict)
    access: Access = field(default_factory=Access)
    sandbox: str | None = None  # its runs' shell and command tasks (``executors/sandbox``); None: the plan's
    deliver: Deliver | None = None  # what its runs deliver (``plan/config/deliver``); None: the plan's

    def takes(self, event: str, action: object) -> bool:
        return event in self.events and (not self.actions or action in self.actions)


@dataclass(frozen=True, slots=True)
class Hook:
    name: str
    header: str
    delivery_header: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    access: Access = field(default_factory=Access)
    sandbox: str | None = None
    deliver: Deliver | None = None


@dataclass(frozen=True, slots=True)
class Triggers:
    github: GitHub | None = None
    hooks: dict[str, Hook] = field(default_factory=dict)

    def given(self) -> dict[str, list[str]]:
        """Each parameter a delivery gives, with the triggers that give it (``github``, a hook's name)."""
        found: dict[str, list[str]] = {}
        for name, params in ([(GITHUB, self.github.params)] if self.github else []) + [
            (hook.name, hook.params) for hook in self.hooks.values()
        ]:
            for param in params:
                found.setdefault(param, []).append(name)
        return found

    def sandbox(self, name: str) -> str | None:
        """What trigger ``name`` says of its runs' sandbox (``on``, ``network``, ``off``), if it says."""
        trigger = self.github if name == GITHUB else self.hooks.get(name)
        return trigger.sandbox if trigger is not None else None

    def deliver(self, name: str) -> Deliver | None:
        """What trigger ``name`` says its runs deliver, if it says."""
        trigger = self.github if name == GITHUB else self.hooks.get(name)
        return trigger.deliver if trigger is not None else None

    def unsandboxed(self) -> list[str]:
        """The triggers whose runs' shell and command tasks run with no sandbox."""
        found = [GITHUB] if self.github is not None and self.github.sandbox == "off" else []
        return found + [name for name, hook in self.hooks.items() if hook.sandbox == "off"]

    def capped(self, name: str) -> bool:
        """Whether every run trigger ``name`` starts is read-only, whoever sent it."""
        trigger = self.github if name == GITHUB else self.hooks.get(name)
        by = trigger.access.by if trigger is not None else {}
        return "default" in by and set(by.values()) == {"read"}


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
    _keys(value, {"header", "delivery_header", "params", "access", "sandbox", "deliver"}, f"hooks.{name}")
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
    access = _access(value.get("access"), name)
    return Hook(name, headers[0], headers[1], _params(value.get("params")), access, _sandbox(value, name),
                _deliver(value, f"hooks.{name}"))  # fmt: skip


def sandbox_mode(value: object) -> str:
    """A ``sandbox`` setting's word: on, network or off (YAML's bare on and off read as such)."""
    if value is True or value is False:
        return "on" if value else "off"
    if value not in ("on", "network", "off"):
        raise ValueError(f"'{value}' — give on, network or off")
    return str(value)


def _sandbox(spec: Mapping[str, Any], where: str) -> str | None:
    if spec.get("sandbox") is None:
        return None
    try:
        return sandbox_mode(spec["sandbox"])
    except ValueError as exc:
        raise ValueError(f"{where}.sandbox: {exc}") from None


def _deliver(spec: Mapping[str, Any], where: str) -> Deliver | None:
    try:
        return parse_deliver(spec.get("deliver"))
    except ValueError as exc:
        raise ValueError(f"{where}.deliver: {exc}") from None


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
        _keys(spec, {"events", "actions", "params", "access", "sandbox", "deliver"}, GITHUB)
        github = GitHub(
            _words(spec.get("events"), "github.events", required=True),
            _words(spec.get("actions"), "github.actions", required=False),
            _params(spec.get("params")),
            _access(spec.get("access"), GITHUB),
            _sandbox(spec, GITHUB),
            _deliver(spec, GITHUB),
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
