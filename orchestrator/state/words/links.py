"""The links a notification carries: approve and reject at a gate, allow and deny for an agent's
question, raise for a run at its budget (bound to the run, ``on``: the dollars it adds). Each is
signed, bound to its task and to what the person is asked on (the task's inputs
digest, or the question's id), valid until a moment, and usable once. A gate's link stands only
while no word was said or taken back at its gate since it was made (``state/approvals.since``):
``reset --approvals`` withdraws a task's links with its word, and a word said by another door
(the CLI, a comment, the dashboard) leaves its links nothing to answer.

A link's token is ``CLAIMS.MAC``: ``CLAIMS`` the base64url of compact JSON ``{"t": task, "a":
action, "o": on, "e": expiry (epoch seconds), "i": made (epoch milliseconds), "n": nonce}``,
``MAC`` the base64url of its
HMAC-SHA256 with the workspace's key, ``state/links.key`` (32 random bytes, mode 0600, made when
the first link is; never in a link). ``check`` compares in constant time and reads nothing of a
token whose MAC does not match. The two links of one notification share their nonce: using either
spends both (``spent``, under an ``flock`` of ``state/links.lock``, in ``state/links-used.json``,
where a nonce is kept until its link expires).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

from orchestrator.documents import read_regular
from orchestrator.errors import UsageError
from orchestrator.state import store
from orchestrator.state.workspace import Workspace

KEY_NAME = "links.key"
USED_NAME = "links-used.json"
LOCK_NAME = "links.lock"
TOKEN_LIMIT = 1024  # characters of a token: a longer one is no link of ours
GATE_ACTIONS = ("approve", "reject")
QUESTION_ACTIONS = ("allow", "deny")
RAISE = "raise"  # a run's budget raised: ``task`` the run, ``on`` the dollars added (``+5``)
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{43}$")


class LinkRefused(UsageError):
    """A link that is not one (403), or no longer one: expired or used (``gone``: 410)."""

    def __init__(self, message: str, *, gone: bool = False) -> None:
        super().__init__(message)
        self.http_status = 410 if gone else 403


@dataclass(frozen=True, slots=True)
class Claims:
    """What a link says: ``action`` on ``task``, asked ``on`` (inputs digest or question id), valid
    until ``expires`` (epoch seconds), made at ``made`` (epoch seconds; 0 for a link of a version
    before, which any word since withdraws), one of the pair ``nonce`` names."""

    task: str
    action: str
    on: str
    expires: float
    nonce: str
    made: float = 0.0

    @property
    def question(self) -> bool:
        return self.action in QUESTION_ACTIONS


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(workspace: Workspace, *, make: bool) -> bytes | None:
    path = workspace.state_dir / KEY_NAME
    try:
        key = read_regular(path)
    except FileNotFoundError:
        key = b""
    if len(key) >= 32 or not make:
        return key if len(key) >= 32 else None
    workspace.state_dir.mkdir(parents=True, exist_ok=True)
    fresh = secrets.token_bytes(32)
    try:  # (O_EXCL: two runs making the first links at once keep one key)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        return _key(workspace, make=False)
    try:
        store.write_all(fd, fresh, path)
        os.fsync(fd)
    finally:
        os.close(fd)
    return fresh


def _mac(key: bytes, claims: str) -> str:
    return _b64(hmac.new(key, claims.encode("ascii"), hashlib.sha256).digest())


def pair(workspace: Workspace, task: str, on: str, valid: float, *, question: bool) -> dict[str, str]:
    """The two tokens of one notification (``approve``/``reject``, or ``allow``/``deny`` for a
    ``question``), valid ``valid`` seconds from now, sharing one nonce."""
    key = _key(workspace, make=True)
    assert key is not None
    now = time.time()
    expires, made, nonce = int(now + valid), int(now * 1000), secrets.token_urlsafe(9)
    tokens: dict[str, str] = {}
    for action in QUESTION_ACTIONS if question else GATE_ACTIONS:
        said = {"t": task, "a": action, "o": on, "e": expires, "i": made, "n": nonce}
        body = json.dumps(said, separators=(",", ":"))
        claims = _b64(body.encode())
        tokens[action] = f"{claims}.{_mac(key, claims)}"
    return tokens


def raising(workspace: Workspace, run: str, amount: str, valid: float) -> str:
    """The one token of a run's budget notification: raise ``run``'s budget by ``amount`` (``+5``),
    valid ``valid`` seconds from now."""
    key = _key(workspace, make=True)
    assert key is not None
    now = time.time()
    said = {
        "t": run,
        "a": RAISE,
        "o": amount,
        "e": int(now + valid),
        "i": int(now * 1000),
        "n": secrets.token_urlsafe(9),
    }
    claims = _b64(json.dumps(said, separators=(",", ":")).encode())
    return f"{claims}.{_mac(key, claims)}"


def check(workspace: Workspace, token: str, now: float | None = None) -> Claims:
    """What ``token`` says, if it is a link of this workspace's, not expired and not used;
    ``LinkRefused`` in one line otherwise. Reads, writes nothing."""
    if len(token) > TOKEN_LIMIT or not _TOKEN.match(token):
        raise LinkRefused("this is not a link orchestrator made")
    key = _key(workspace, make=False)
    claims, mac = token.split(".")
    if key is None or not hmac.compare_digest(_mac(key, claims).encode(), mac.encode()):
        raise LinkRefused("this link's signature does not match: it was not made by this workspace")
    data = json.loads(_unb64(claims))
    made = data.get("i")
    found = Claims(str(data["t"]), str(data["a"]), str(data["o"]), float(data["e"]), str(data["n"]),
                   made / 1000 if isinstance(made, int) else 0.0)  # fmt: skip
    if (time.time() if now is None else now) >= found.expires:
        moment = time.strftime("%d %b %H:%M", time.localtime(found.expires))
        raise LinkRefused(f"this link expired at {moment}: use the task's newer notification, or the CLI", gone=True)
    if found.nonce in _used(workspace):
        raise LinkRefused("this link was used already: a link answers once", gone=True)
    if found.action in GATE_ACTIONS:
        _still_asked(workspace, found)
    return found


def _still_asked(workspace: Workspace, claims: Claims) -> None:
    """``LinkRefused`` (410) when a word was said or taken back at ``claims``' gate since the link
    was made: what it was sent to answer is answered, or asked again with a link of its own."""
    from orchestrator.state import approvals

    since = approvals.since(workspace, claims.task, claims.made)
    if since is None:
        return
    if since.decision in (approvals.WITHDRAWN, approvals.REOPENED):
        why = f" ({since.reason})" if since.reason else ""
        raise LinkRefused(
            f"this link was withdrawn: {claims.task}'s word was taken back after it was made, "
            f"{approvals.said(since)}{why} — its gate asks again, with a new link",
            gone=True,
        )
    raise LinkRefused(f"this link no longer answers: {claims.task} was {approvals.said(since)}, after it was made",
                      gone=True)  # fmt: skip


def _used(workspace: Workspace) -> dict[str, float]:
    try:
        data = json.loads(read_regular(workspace.state_dir / USED_NAME))
    except (OSError, ValueError):
        return {}
    found = data.get("used") if isinstance(data, dict) else None
    return {str(k): float(v) for k, v in found.items() if isinstance(v, int | float)} if isinstance(found, dict) else {}


@contextlib.contextmanager
def held(workspace: Workspace) -> Iterator[None]:
    """The links' lock: one use at a time, so a pair is never used twice at once."""
    from orchestrator.state.lock import turn

    with turn(workspace.state_dir / LOCK_NAME):
        yield


def spend(workspace: Workspace, claims: Claims) -> None:
    """``claims``' pair used: neither link answers again. The caller holds ``held`` and has checked
    it (``check``) under it; nonces whose links expired are let go."""
    now = time.time()
    used = {nonce: until for nonce, until in _used(workspace).items() if until > now}
    used[claims.nonce] = claims.expires
    store.write_text(workspace.state_dir / USED_NAME, json.dumps({"used": used}) + "\n")


def url(base: str, token: str) -> str:
    """Where a link is opened: ``serve``'s ``/links/TOKEN`` at its public URL."""
    return f"{base.rstrip('/')}/links/{token}"
