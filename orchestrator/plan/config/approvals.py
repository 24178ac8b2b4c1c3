"""The ``approvals`` and ``public_url`` settings: where a person's word at a gate, or on an agent's
question, may come from beside the terminal, and where ``serve`` is reached from outside::

    approvals:
      github:                                   # `/approve T-04`, `/reject T-04 why` in comments
        repository: acme/app                    # default: a run a delivery started, its repository
        issue: 42                               # the pull request or issue; default: the delivery's
        from: [OWNER, MEMBER, COLLABORATOR]     # author_association values, or logins: [ann, bob]
      links: 24h                                # how long a notification's links hold; off: no links
    public_url: https://orchestrator.example.com   # `serve` behind your tunnel or proxy

Comments are taken by ``serve``'s ``/hooks/github`` (``serve/comments``); links are made by the
run's notifications and opened at ``public_url`` (``state/links``, ``serve/links``). A bad value
is a ``ValueError`` whose message the frontmatter's reader puts on the key's line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from orchestrator.plan.config.triggers import ASSOCIATIONS
from orchestrator.plan.config.values import parse_duration

#: Who may answer from GitHub when the plan does not say: those GitHub itself trusts with the repository.
DEFAULT_FROM = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})
DEFAULT_LINKS = 24 * 3600.0
_LOGIN = re.compile(r"^@?([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))$")
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")


@dataclass(frozen=True, slots=True)
class GitHubWords:
    """Comments that answer: on ``repository``'s ``issue`` (each ``None``: the delivery's that
    started the run), from senders of an ``associations`` or of ``logins`` (lower-cased)."""

    repository: str | None = None
    issue: int | None = None
    associations: frozenset[str] = DEFAULT_FROM
    logins: frozenset[str] = frozenset()

    def allows(self, login: str, association: str | None) -> bool:
        """Whether a comment by ``login`` (its ``author_association``) may answer."""
        return login.lower() in self.logins or (association is not None and association in self.associations)


@dataclass(frozen=True, slots=True)
class Approvals:
    """``github``: comments that answer (``None``: none do); ``links``: seconds a notification's
    links hold (``None``: notifications carry none)."""

    github: GitHubWords | None = field(default_factory=GitHubWords)
    links: float | None = DEFAULT_LINKS


def _senders(value: object) -> tuple[frozenset[str], frozenset[str]]:
    words = [value] if isinstance(value, str) else value
    if not isinstance(words, list | tuple) or not words:
        raise ValueError("github.from: give a list: author_association values (OWNER, MEMBER...) or logins")
    associations: set[str] = set()
    logins: set[str] = set()
    for word in words:
        text = str(word).strip() if isinstance(word, str) else ""
        if text in ASSOCIATIONS:
            associations.add(text)
            continue
        login = _LOGIN.match(text)
        if login is None:
            raise ValueError(f"github.from: {word!r} is neither an author_association nor a GitHub login")
        logins.add(login.group(1).lower())
    return frozenset(associations), frozenset(logins)


def _github(value: object) -> GitHubWords | None:
    if value is False or value is None:
        return None
    if value is True:
        return GitHubWords()
    if not isinstance(value, Mapping):
        raise ValueError("github: give true, false, or a mapping with repository, issue and from")
    unknown = sorted(str(key) for key in value if key not in ("repository", "issue", "from"))
    if unknown:
        raise ValueError(f"github: unknown key '{unknown[0]}' — it takes repository, issue, from")
    repository = value.get("repository")
    if repository is not None and (not isinstance(repository, str) or not _REPOSITORY.match(repository)):
        raise ValueError(f"github.repository: {repository!r} is not OWNER/NAME")
    issue = value.get("issue")
    if issue is not None and (isinstance(issue, bool) or not isinstance(issue, int) or issue < 1):
        raise ValueError(f"github.issue: {issue!r} is not an issue or pull request number")
    associations, logins = _senders(value["from"]) if "from" in value else (DEFAULT_FROM, frozenset[str]())
    return GitHubWords(repository, issue, associations, logins)


def parse_approvals(value: object) -> Approvals:
    """The ``approvals`` setting; ``ValueError`` in one line for what is wrong."""
    if value is None:
        return Approvals()
    if not isinstance(value, Mapping):
        raise ValueError("give a mapping: github: {...} and/or links: 24h")
    unknown = sorted(str(key) for key in value if key not in ("github", "links"))
    if unknown:
        raise ValueError(f"unknown key '{unknown[0]}' — it takes github, links")
    github = _github(value["github"]) if "github" in value else GitHubWords()
    try:
        links = parse_duration(value["links"]) if "links" in value else DEFAULT_LINKS
    except ValueError as exc:
        raise ValueError(f"links: {exc}") from None
    return Approvals(github, links)


def parse_public_url(value: object) -> str | None:
    """``public_url``: where ``serve`` is reached from outside, an http(s) URL with no query (its
    trailing ``/`` dropped); ``None`` for none."""
    if value is None or value == "":
        return None
    text = str(value).strip() if isinstance(value, str) else ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"{value!r} is not an http:// or https:// URL (no query, no #fragment)")
    if any(ord(char) < 33 for char in text):
        raise ValueError(f"{value!r} holds a space or a control character")
    return text.rstrip("/")
