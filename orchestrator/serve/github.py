"""``serve``'s answers on GitHub: a reaction to a comment that said a word, a comment where one was
refused, through GitHub's REST API with the token in ``$ORCHESTRATOR_GITHUB_TOKEN``
(``$ORCHESTRATOR_GITHUB_API``: another API root, GitHub Enterprise's or a fake's; default
``https://api.github.com``). Without a token nothing is sent. Each answer is sent from a thread
of its own, after the delivery was answered (GitHub waits 10 seconds at most for that); one that
fails is one line on stderr, and changes nothing that was decided.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import urllib.error
import urllib.request
from typing import Any

TOKEN_ENV = "ORCHESTRATOR_GITHUB_TOKEN"
API_ENV = "ORCHESTRATOR_GITHUB_API"
API = "https://api.github.com"
TIMEOUT = 10.0  # seconds one request to GitHub may take
REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")


class Replies:
    """Answers on GitHub with ``token`` at ``api``; ``sent``: each request's path, for who waits on them."""

    def __init__(self, token: str, api: str = API) -> None:
        self.token = token
        self.api = api.rstrip("/")
        self.threads: list[threading.Thread] = []

    @classmethod
    def from_environment(cls) -> Replies | None:
        token = os.environ.get(TOKEN_ENV, "").strip()
        return cls(token, os.environ.get(API_ENV) or API) if token else None

    def react(self, repository: str, comment: int, content: str) -> None:
        """A reaction (``+1``, ``-1``, ``confused``...) to comment ``comment`` of ``repository``."""
        self._later(f"/repos/{repository}/issues/comments/{comment}/reactions", {"content": content}, repository)

    def comment(self, repository: str, issue: int, body: str) -> None:
        """A comment on ``repository``'s issue or pull request ``issue``."""
        self._later(f"/repos/{repository}/issues/{issue}/comments", {"body": body}, repository)

    def _later(self, path: str, body: dict[str, Any], repository: str) -> None:
        if not REPOSITORY.match(repository):
            return
        thread = threading.Thread(target=self._post, args=(path, body), name="github-reply", daemon=True)
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()

    def _post(self, path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.api + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "Content-Type": "application/json",
                "User-Agent": "orchestrator-serve",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
                answer.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            print(f"serve: could not answer on GitHub ({path}): {exc}", file=sys.stderr, flush=True)
