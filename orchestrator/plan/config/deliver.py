"""The ``deliver`` setting: what a run does with its work once the work and its gates are done,
the orchestrator's act and never an agent's (``run/deliver``)::

    deliver: pr                        # or push, comment, [pr, comment], none
    deliver:
      to: [pr, comment]
      remote: origin                   # a git remote's name, a URL or a path (default: origin)
      repository: acme/app             # GitHub's OWNER/NAME (default: the run's origin's, else the remote's URL's)
      branch: orchestrator/integration # the remote branch pushed (default: the integration branch's name)
      base: main                       # the pull request's base (default: the branch your checkout is on)
      on_failed_check: T-09            # a failed check on the branch delivered starts this task again

``push`` pushes the run's integration branch to ``remote``; ``pr`` pushes it and opens one pull
request for it, or updates the one it opened before (never a second); ``comment`` answers on the
pull request or issue the run came from (a webhook's delivery: its launch's origin) with the run's
summary and links. ``on_failed_check``: a ``check_run`` or ``status`` delivery to ``serve`` that
says a check failed on the branch delivered starts a run of that task (``--rerun``), the check's
name and log its ``check`` and ``check_log`` parameters (untrusted: ``run/deliver/followup``). A
trigger may say its own (``triggers``' ``deliver``), which its runs take over the plan's. A bad
value is a ``ValueError`` whose message the frontmatter's reader puts on the key's line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

KINDS = ("push", "pr", "comment")
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
_BRANCH = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/-]{1,200}(?<![./])$")
_TASK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_KEYS = ("to", "remote", "repository", "branch", "base", "on_failed_check")


@dataclass(frozen=True, slots=True)
class Deliver:
    """``to``: what is done, in order (push, pr, comment); where to."""

    to: tuple[str, ...]
    remote: str = "origin"
    repository: str | None = None
    branch: str | None = None
    base: str | None = None
    on_failed_check: str | None = None  # the task a failed check on the branch delivered starts again

    @property
    def pushes(self) -> bool:
        return "push" in self.to or "pr" in self.to

    def said(self) -> str:
        return " + ".join(self.to)


def _kinds(value: object) -> tuple[str, ...]:
    words = [w.strip() for w in value.split(",")] if isinstance(value, str) else value
    if not isinstance(words, list | tuple):
        raise ValueError("give pr, push, comment, a list of them, or none")
    found: list[str] = []
    for word in words:
        text = str(word).strip().lower() if isinstance(word, str) else ""
        if text not in KINDS:
            raise ValueError(f"{word!r} is not a delivery: give pr, push or comment (or none)")
        if text not in found:
            found.append(text)
    return tuple(k for k in KINDS if k in found)  # (pushed first, the pull request next, then the comment)


def _text(value: Mapping[str, object], key: str, pattern: re.Pattern[str] | None, what: str) -> str | None:
    given = value.get(key)
    if given is None:
        return None
    if not isinstance(given, str) or not given.strip() or (pattern is not None and not pattern.match(given)):
        raise ValueError(f"{key}: {given!r} is not {what}")
    if any(ord(char) < 32 for char in given):
        raise ValueError(f"{key}: {given!r} holds a control character")
    return given.strip()


def parse_deliver(value: object) -> Deliver | None:
    """The ``deliver`` setting (or a trigger's); ``None``: nothing delivered."""
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() in ("", "none", "off")):
        return None
    if not isinstance(value, Mapping):
        return Deliver(_kinds(value))
    unknown = sorted(str(key) for key in value if key not in _KEYS)
    if unknown:
        raise ValueError(f"unknown key '{unknown[0]}' — it takes {', '.join(_KEYS)}")
    if "to" not in value:
        raise ValueError("say what to deliver: to: pr (or push, comment, a list)")
    to = _kinds(value["to"])
    if not to:
        return None
    remote = _text(value, "remote", None, "a remote") or "origin"
    if remote.startswith("-"):
        raise ValueError(f"remote: {remote!r} starts with -: give a remote's name, a URL or a path")
    repository = _text(value, "repository", _REPOSITORY, "OWNER/NAME")
    branch, base = (_text(value, key, _BRANCH, "a branch name") for key in ("branch", "base"))
    return Deliver(to, remote, repository, branch, base, _text(value, "on_failed_check", _TASK, "a task's id"))
