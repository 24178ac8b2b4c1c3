"""``serve``'s answers on GitHub: a reaction to a comment that said a word, a comment where one was
refused, through the one client of GitHub's REST API (``git/github``: the token in
``$ORCHESTRATOR_GITHUB_TOKEN``, another API root in ``$ORCHESTRATOR_GITHUB_API``). Without a token
nothing is sent. Each answer is sent from a thread of its own, after the delivery was answered
(GitHub waits 10 seconds at most for that); one that fails is one line on stderr, and changes
nothing that was decided.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from orchestrator.git.github import API, REPOSITORY, GitHub, GitHubError


class Replies:
    """Answers on GitHub with ``token`` at ``api``; ``threads``: each request's, for who waits on them."""

    def __init__(self, token: str, api: str = API) -> None:
        self.client = GitHub(token, api)
        self.threads: list[threading.Thread] = []

    @classmethod
    def from_environment(cls) -> Replies | None:
        client = GitHub.from_environment()
        return cls(client.token, client.api) if client is not None else None

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
        try:
            self.client.call("POST", path, body)
        except GitHubError as exc:
            print(f"serve: could not answer on GitHub ({path}): {exc}", file=sys.stderr, flush=True)
