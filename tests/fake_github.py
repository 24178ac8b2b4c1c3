"""A fake of the two routes of GitHub's REST API ``serve`` answers comments with, on 127.0.0.1:
``POST /repos/{owner}/{repo}/issues/comments/{id}/reactions`` (``{"content": "+1"}``) and
``POST /repos/{owner}/{repo}/issues/{number}/comments`` (``{"body": ...}``), each answered 201 as
GitHub does. Every request is kept (``requests``: method, path, headers, JSON body), for a test to
wait on. Standard library only.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

_ROUTES = (
    re.compile(r"^/repos/[^/]+/[^/]+/issues/comments/\d+/reactions$"),
    re.compile(r"^/repos/[^/]+/[^/]+/issues/\d+/comments$"),
)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class FakeGitHub:
    """``with FakeGitHub() as github:`` its ``url`` is the API root to give ``serve``."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(size)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                seen = Seen("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with fake._lock:
                    fake.requests.append(seen)
                known = any(route.match(self.path) for route in _ROUTES)
                answer = json.dumps({"id": len(fake.requests)} if known else {"message": "Not Found"}).encode()
                self.send_response(201 if known else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-github", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.server.shutdown()
        self.server.server_close()

    def seen(self, count: int, seconds: float = 30) -> list[Seen]:
        """The requests, once there are at least ``count`` (``AssertionError`` after ``seconds``)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.05)
        raise AssertionError(f"GitHub's fake got {len(self.requests)} requests, not {count}: {self.requests}")
