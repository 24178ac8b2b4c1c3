"""Where a run's notifications go: the ``notify`` setting's targets, parsed and checked.

``notify`` takes one target or a list of them. A target is a URL (generic JSON is posted to it),
or a mapping::

    notify: http://localhost:9000/hook                      # generic JSON, every event
    notify:
      - url: https://hooks.slack.com/services/T0/B0/XX
        format: slack                                        # generic (default), slack, discord
        events: [run_finished, task_failed]                  # default: NOTIFY_EVENTS; task_started
                                                             # and task_completed when named
      - command: ["notify-send", "orchestrator"]             # a list, or one shell string
        timeout: 10s                                         # default 10s

Nothing here sends anything (``run/notices/delivery.py`` does); a bad target is a ``ValueError`` whose
message the frontmatter's reader puts on the key's line.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

# What a run tells a target about unless it names its events: the events that need a person.
NOTIFY_EVENTS = (
    "run_finished",
    "task_failed",
    "items_failed",
    "run_paused",
    "budget_reached",
    "task_stuck",
    "approval_requested",
    "permission_asked",
    "deadline_at_risk",
    "deadline_missed",
)
# What else a target may name (``events: [task_completed]``: "tell me when each task is done").
OPT_IN_EVENTS = ("task_started", "task_completed")
EVENT_NAMES = NOTIFY_EVENTS + OPT_IN_EVENTS
FORMATS = ("generic", "slack", "discord")
DEFAULT_COMMAND_TIMEOUT = 10.0
_KEYS = {"url", "format", "events", "command", "shell", "timeout"}


@dataclass(frozen=True, slots=True)
class Target:
    """One place a notification goes: a URL (``url`` and ``format``), or a command (``argv``, or
    ``shell``: one string ``sh -c`` runs), told of the ``events`` named."""

    url: str | None = None
    format: str = "generic"
    argv: tuple[str, ...] = ()
    shell: str | None = None
    events: tuple[str, ...] = NOTIFY_EVENTS
    timeout: float = DEFAULT_COMMAND_TIMEOUT

    @property
    def name(self) -> str:
        """How messages name it: the URL without its path (a Slack URL's path is its secret), or
        the command's program."""
        if self.url is not None:
            parts = urlsplit(self.url)
            return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
        return self.argv[0] if self.argv else "sh -c " + shlex.quote((self.shell or "")[:40])


def parse_targets(value: object) -> tuple[Target, ...]:
    """The targets ``value`` names (one, a list, or none: ``None``/``[]``); ``ValueError`` names
    what is wrong with the first bad one."""
    if value is None:
        return ()
    items = value if isinstance(value, list | tuple) else [value]
    return tuple(_target(item, index) for index, item in enumerate(items, 1))


def _target(item: object, index: int) -> Target:
    where = f"target {index}: "
    if isinstance(item, str):
        return Target(url=_url(item, where))
    if not isinstance(item, Mapping):
        raise ValueError(f"{where}{item!r} is neither a URL nor a mapping with url: or command:")
    unknown = sorted(str(k) for k in item if str(k) not in _KEYS)
    if unknown:
        raise ValueError(f"{where}unknown key '{unknown[0]}' (use url, format, events, command, timeout)")
    events = _events(item.get("events"), where)
    timeout = _timeout(item.get("timeout"), where)
    if ("url" in item) == ("command" in item or "shell" in item):
        raise ValueError(f"{where}give either url: or command:, not both or neither")
    if "url" in item:
        fmt = str(item.get("format") or "generic").strip().lower()
        if fmt not in FORMATS:
            raise ValueError(f"{where}format {fmt!r} is not one of {', '.join(FORMATS)}")
        return Target(url=_url(item["url"], where), format=fmt, events=events, timeout=timeout)
    if item.get("format") not in (None, "generic"):
        raise ValueError(f"{where}a command is given the event as generic JSON: remove format:")
    command = item.get("command", item.get("shell"))
    if isinstance(command, str) and command.strip():
        return Target(shell=command, events=events, timeout=timeout)
    if isinstance(command, list | tuple) and command and all(isinstance(w, str | int | float) for w in command):
        return Target(argv=tuple(str(w) for w in command), events=events, timeout=timeout)
    raise ValueError(
        f'{where}command: {command!r} is not a command (a list such as ["notify-send", "run"], or a string)'
    )


def _url(value: object, where: str) -> str:
    text = str(value).strip() if isinstance(value, str) else ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{where}{value!r} is not an http:// or https:// URL")
    try:
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        raise ValueError(f"{where}{value!r} has a bad port") from None
    return text


def _events(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return NOTIFY_EVENTS
    words = value.replace(",", " ").split() if isinstance(value, str) else value
    if not isinstance(words, list | tuple) or not words:
        raise ValueError(f"{where}events: {value!r} is not a list of events")
    for word in words:
        if word not in EVENT_NAMES:
            raise ValueError(f"{where}unknown event {word!r} (use {', '.join(EVENT_NAMES)})")
    return tuple(str(w) for w in words)


def _timeout(value: object, where: str) -> float:
    from orchestrator.plan.config.values import parse_duration

    if value is None:
        return DEFAULT_COMMAND_TIMEOUT
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{where}timeout: {exc}") from None
    if seconds is None:
        raise ValueError(f"{where}timeout: a notification needs a time limit")
    return seconds
