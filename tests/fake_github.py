"""A fake of the routes of GitHub's REST API the tool calls, on 127.0.0.1, keeping state as GitHub
does, so that a duplicate is there to be counted:

- ``POST /repos/{o}/{r}/issues/comments/{id}/reactions`` (``{"content": "+1"}``), 201;
- ``GET`` (``since``: those made from then on) and ``POST /repos/{o}/{r}/issues/{n}/comments``:
  the comments kept, each its ``id``, ``html_url``, ``body`` and ``created_at``;
- ``GET /repos/{o}/{r}/pulls?head=OWNER:BRANCH&state=open``, ``POST /repos/{o}/{r}/pulls`` (422 for
  a second open pull request of one head, as GitHub answers), ``GET`` and ``PATCH
  /repos/{o}/{r}/pulls/{n}`` (a test closes one by setting its ``state``).

Every request is kept (``requests``: method, path, headers, JSON body), for a test to wait on.
``hold(method, path_part, after=...)`` stops the next matching request before it acts (or after it
acted, before it answers) until ``release``: a test kills the client at that moment. ``delay``:
seconds each request takes. Standard library only.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

_REACTIONS = re.compile(r"^/repos/([^/]+/[^/]+)/issues/comments/(\d+)/reactions$")
_COMMENTS = re.compile(r"^/repos/([^/]+/[^/]+)/issues/(\d+)/comments$")
_PULLS = re.compile(r"^/repos/([^/]+/[^/]+)/pulls$")
_PULL = re.compile(r"^/repos/([^/]+/[^/]+)/pulls/(\d+)$")


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Hold:
    """A request held: ``method`` and a part of its path; ``after``: once it acted, before it answers;
    ``dropped``: released, it neither acts nor answers but 502 (the request was lost on the way)."""

    method: str
    part: str
    after: bool
    dropped: bool = False
    arrived: threading.Event = field(default_factory=threading.Event)
    go: threading.Event = field(default_factory=threading.Event)


class FakeGitHub:
    """``with FakeGitHub() as github:`` its ``url`` is the API root to give the tool."""

    def __init__(self, delay: float = 0.0) -> None:
        self.requests: list[Seen] = []
        self.pulls: dict[str, list[dict[str, Any]]] = {}  # by repository, every pull request opened
        self.comments: dict[str, list[dict[str, Any]]] = {}  # by "o/r#n"
        self.delay = delay
        self.holds: list[Hold] = []
        self._lock = threading.Lock()
        self._ids = 1000
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def _body(self) -> Any:
                size = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(size)
                try:
                    return json.loads(raw) if raw else None
                except ValueError:
                    return raw.decode(errors="replace")

            def _handle(self, method: str) -> None:
                body = self._body() if method != "GET" else None
                seen = Seen(method, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with fake._lock:
                    fake.requests.append(seen)
                if fake.delay:
                    time.sleep(fake.delay)
                hold = fake._held(method, self.path)
                if hold is not None and not hold.after:
                    hold.arrived.set()
                    hold.go.wait(60)
                dropped = hold is not None and hold.dropped
                status, answer = (502, {"message": "lost"}) if dropped else fake._answer(method, self.path, body)
                if hold is not None and hold.after:
                    hold.arrived.set()
                    hold.go.wait(60)
                data = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # (its client was killed while it waited)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

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
        for hold in self.holds:
            hold.go.set()
        self.server.shutdown()
        self.server.server_close()

    # --- holding a request ------------------------------------------------------------------------

    def hold(self, method: str, part: str, *, after: bool = False, dropped: bool = False) -> Hold:
        """The next ``method`` request whose path holds ``part`` waits (before it acts, or ``after``)."""
        hold = Hold(method, part, after, dropped)
        with self._lock:
            self.holds.append(hold)
        return hold

    def _held(self, method: str, path: str) -> Hold | None:
        with self._lock:
            for hold in self.holds:
                if hold.method == method and hold.part in path and not hold.arrived.is_set():
                    return hold
        return None

    # --- the state --------------------------------------------------------------------------------

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        parts = urllib.parse.urlsplit(path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        with self._lock:
            if method == "POST" and (found := _REACTIONS.match(parts.path)):
                return 201, {"id": self._next_id(), "content": (body or {}).get("content")}
            if found := _COMMENTS.match(parts.path):
                return self._comment(method, f"{found.group(1)}#{found.group(2)}", body, query.get("since"))
            if found := _PULLS.match(parts.path):
                return self._pulls(method, found.group(1), query, body)
            if method == "PATCH" and (found := _PULL.match(parts.path)):
                return self._patch(found.group(1), int(found.group(2)), body)
            if method == "GET" and (found := _PULL.match(parts.path)):
                return self._patch(found.group(1), int(found.group(2)), {})
        return 404, {"message": "Not Found"}

    def _comment(self, method: str, where: str, body: Any, since: str | None) -> tuple[int, Any]:
        kept = self.comments.setdefault(where, [])
        if method == "GET":  # (``since``: those made from then on, as GitHub's ISO 8601 moments compare)
            return 200, [c for c in kept if since is None or c["created_at"] >= since]
        number = self._next_id()
        repository, issue = where.split("#")
        made = {"id": number, "body": (body or {}).get("body"),
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "html_url": f"https://github.test/{repository}/issues/{issue}#issuecomment-{number}"}  # fmt: skip
        kept.append(made)
        return 201, made

    def _pulls(self, method: str, repository: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        kept = self.pulls.setdefault(repository, [])
        owner = repository.split("/")[0]
        if method == "GET":
            head = query.get("head", "")
            wanted = head.split(":", 1)[1] if ":" in head else head
            return 200, [p for p in kept if p["state"] == "open" and (not wanted or p["head"]["ref"] == wanted)]
        body = body or {}
        if any(p["state"] == "open" and p["head"]["ref"] == body.get("head") for p in kept):
            error = f"A pull request already exists for {owner}:{body.get('head')}."
            return 422, {"message": "Validation Failed", "errors": [{"message": error}]}
        number = len(kept) + 1
        made = {"number": number, "state": "open", "title": body.get("title"), "body": body.get("body"),
                "head": {"ref": body.get("head")}, "base": {"ref": body.get("base")},
                "html_url": f"https://github.test/{repository}/pull/{number}"}  # fmt: skip
        kept.append(made)
        return 201, made

    def _patch(self, repository: str, number: int, body: Any) -> tuple[int, Any]:
        found = next((p for p in self.pulls.get(repository, []) if p["number"] == number), None)
        if found is None:
            return 404, {"message": "Not Found"}
        found.update({k: v for k, v in (body or {}).items() if k in ("title", "body", "state")})
        return 200, found

    # --- for a test -------------------------------------------------------------------------------

    def open_pulls(self, repository: str) -> list[dict[str, Any]]:
        with self._lock:
            return [p for p in self.pulls.get(repository, []) if p["state"] == "open"]

    def seen(self, count: int, seconds: float = 30) -> list[Seen]:
        """The requests, once there are at least ``count`` (``AssertionError`` after ``seconds``)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.05)
        raise AssertionError(f"GitHub's fake got {len(self.requests)} requests, not {count}: {self.requests}")
