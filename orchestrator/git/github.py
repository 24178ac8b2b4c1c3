"""GitHub's REST API, the little of it the tool uses: pull requests found, opened and updated, a
comment read and written, a reaction. The token is ``$ORCHESTRATOR_GITHUB_TOKEN``;
``$ORCHESTRATOR_GITHUB_API`` is another API root (GitHub Enterprise's ``https://HOST/api/v3``, or a
fake's), default ``https://api.github.com``. Without a token there is no client (``from_environment``
gives ``None``): nothing is sent.

One request at a time, standard library only, each bounded by ``TIMEOUT``; what GitHub refuses, or
a network that fails, is one ``GitHubError`` naming the request and GitHub's own message, never the
token. Used by a run's delivery (``run/deliver``) and by ``serve``'s answers to comments
(``serve/github``), which call the same ``GitHub.call``.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from orchestrator.redaction import GITHUB_TOKEN_VARIABLE

TOKEN_ENV = GITHUB_TOKEN_VARIABLE  # (withheld from every attempt's environment: ``redaction.WITHHELD``)
API_ENV = "ORCHESTRATOR_GITHUB_API"
API = "https://api.github.com"
TIMEOUT = 10.0  # seconds one request to GitHub may take
REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
_REMOTE = re.compile(r"(?:github\.com|[^/:@]+)[:/]([A-Za-z0-9_.-]{1,100})/([A-Za-z0-9_.-]{1,100}?)(?:\.git)?/?$")


class GitHubError(Exception):
    """A request GitHub refused (its status and message), or that never got an answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Pull:
    """A pull request as GitHub answers: its number, its page, its head and base branches."""

    number: int
    url: str
    head: str
    base: str
    state: str = "open"  # open, closed (a merged one is closed)
    head_repository: str | None = None  # where its head branch is (a fork's: not its own repository)

    @classmethod
    def of(cls, data: Any) -> Pull:
        if not isinstance(data, dict) or not isinstance(data.get("number"), int):
            raise GitHubError(f"GitHub answered no pull request: {str(data)[:200]}")
        head, base = data.get("head") or {}, data.get("base") or {}
        where = (head.get("repo") or {}).get("full_name") if isinstance(head.get("repo"), dict) else None
        return cls(data["number"], str(data.get("html_url") or ""), str(head.get("ref") or ""),
                   str(base.get("ref") or ""), str(data.get("state") or "open"),
                   where if isinstance(where, str) else None)  # fmt: skip


class GitHub:
    """The API at ``api`` with ``token``."""

    def __init__(self, token: str, api: str = API) -> None:
        self.token = token
        self.api = api.rstrip("/")

    @classmethod
    def from_environment(cls) -> GitHub | None:
        token = os.environ.get(TOKEN_ENV, "").strip()
        return cls(token, os.environ.get(API_ENV) or API) if token else None

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """``method path`` with ``body`` as JSON; GitHub's answer, as JSON (``None`` for none)."""
        request = urllib.request.Request(
            self.api + path,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "Content-Type": "application/json",
                "User-Agent": "orchestrator",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as exc:
            raise GitHubError(f"GitHub refused {method} {path}: {exc.code} {_message(exc)}", exc.code) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise GitHubError(f"GitHub did not answer {method} {path}: {reason}") from None
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError:
            raise GitHubError(f"GitHub answered {method} {path} with no JSON") from None

    # --- pull requests ----------------------------------------------------------------------------

    def open_pulls(self, repository: str, branch: str) -> list[Pull]:
        """The open pull requests of ``repository`` whose head is its branch ``branch``."""
        owner = repository.split("/", 1)[0]
        query = urllib.parse.urlencode({"head": f"{owner}:{branch}", "state": "open", "per_page": 100})
        found = self.call("GET", f"/repos/{repository}/pulls?{query}")
        return [Pull.of(each) for each in found] if isinstance(found, list) else []

    def pull(self, repository: str, number: int) -> Pull:
        return Pull.of(self.call("GET", f"/repos/{repository}/pulls/{number}"))

    def open_pull(self, repository: str, branch: str, base: str, title: str, body: str) -> Pull:
        made = self.call("POST", f"/repos/{repository}/pulls", {"title": title, "head": branch, "base": base,
                                                                 "body": body})  # fmt: skip
        return Pull.of(made)

    def update_pull(self, repository: str, number: int, title: str, body: str) -> Pull:
        return Pull.of(self.call("PATCH", f"/repos/{repository}/pulls/{number}", {"title": title, "body": body}))

    # --- comments ---------------------------------------------------------------------------------

    def comments(self, repository: str, issue: int, since: str | None = None) -> list[dict[str, Any]]:
        """The comments on ``repository``'s issue or pull request ``issue``: the first 100, or the
        first 100 made or changed from ``since`` (an ISO 8601 moment) on."""
        query = urllib.parse.urlencode({"per_page": 100, **({"since": since} if since else {})})
        found = self.call("GET", f"/repos/{repository}/issues/{issue}/comments?{query}")
        return [each for each in found if isinstance(each, dict)] if isinstance(found, list) else []

    def comment(self, repository: str, issue: int, body: str) -> dict[str, Any]:
        made = self.call("POST", f"/repos/{repository}/issues/{issue}/comments", {"body": body})
        return made if isinstance(made, dict) else {}

    def react(self, repository: str, comment: int, content: str) -> None:
        self.call("POST", f"/repos/{repository}/issues/comments/{comment}/reactions", {"content": content})


def _message(error: urllib.error.HTTPError) -> str:
    try:
        said = json.loads(error.read() or b"{}")
    except (ValueError, OSError):
        return str(error.reason)
    message = said.get("message") if isinstance(said, dict) else None
    details = said.get("errors") if isinstance(said, dict) else None
    if isinstance(details, list) and details and isinstance(details[0], dict) and details[0].get("message"):
        message = f"{message}: {details[0]['message']}"
    return str(message or error.reason)[:300]


def repository_of(url: str) -> str | None:
    """``OWNER/NAME`` of a remote's URL on GitHub (``git@github.com:o/r.git``, ``https://github.com/o/r``,
    an Enterprise host's); ``None`` for a path on disk or a URL it cannot read."""
    if "://" not in url and not re.match(r"^[^/]+@[^/]+:", url):
        return None
    found = _REMOTE.search(url)
    return f"{found.group(1)}/{found.group(2)}" if found else None
