"""Runs the dashboard: binds the socket (a port in use is one line, before anything starts),
then serves the application with uvicorn until Ctrl-C or SIGTERM.

uvicorn's own signal handling raises the signal again once it has shut down (the process would
die of SIGTERM, or end in a KeyboardInterrupt); ``_Server`` keeps the handlers but not that, so a
stopped dashboard exits 0 after closing every stream.
"""

from __future__ import annotations

import contextlib
import errno
import secrets
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType

import anyio
import uvicorn

from orchestrator import timing
from orchestrator.errors import UsageError
from orchestrator.serve.api import Commands
from orchestrator.serve.app import Stopping, build_app, is_loopback
from orchestrator.state.workspace import Workspace

MIN_TOKEN = 16  # characters a token must have: a guessable one would guard nothing


@dataclass(frozen=True, slots=True)
class Address:
    """Where the dashboard listens, and the URL to open (with the token, when there is one)."""

    host: str
    port: int
    token: str  # what an action (cancel, retry) must carry; given, or made at start
    reads_need_token: bool  # every request must carry it too: one was given, or the host is not loopback

    @property
    def url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/?token={self.token}"


def make_address(host: str, port: int, given: str | None) -> Address:
    """Where the dashboard listens, with its token: ``given`` (checked by ``check_token``), or a
    fresh one, which actions need but reads on loopback do not."""
    token = check_token(host, given)
    return Address(host, port, token or secrets.token_urlsafe(24), token is not None)


def check_token(host: str, token: str | None) -> str | None:
    """The token given, to require of every request: none is needed on loopback; on any other
    address one must be given (``UsageError`` otherwise), of at least ``MIN_TOKEN`` characters."""
    token = token or None
    if token is None and not is_loopback(host):
        raise UsageError(
            f"--host {host} is reachable from other machines: a token is needed — pass --token TOKEN or set "
            'ORCHESTRATOR_SERVE_TOKEN (e.g. python -c "import secrets; print(secrets.token_urlsafe())")'
        )
    if token is not None and len(token) < MIN_TOKEN:
        raise UsageError(f"the token is {len(token)} characters: use at least {MIN_TOKEN} (secrets.token_urlsafe())")
    return token


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host``:``port`` (``port`` 0: any free one); ``UsageError`` in one
    line when the port is taken or the address is not this machine's."""
    try:
        family, kind, proto, _, where = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise UsageError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(where)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(
                f"port {port} on {host} is in use (another dashboard?) — pass --port N, or --port 0 for any free port"
            ) from None
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, stopped by SIGINT/SIGTERM without raising the signal again afterwards."""

    def __init__(self, config: uvicorn.Config, stopping: Stopping) -> None:
        super().__init__(config)
        self.stopping = stopping

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.stopping.set()
        super().handle_exit(sig, frame)


def serve(
    workspace: Workspace,
    sock: socket.socket,
    address: Address,
    announce: Callable[[Address], None],
    commands: Commands | None = None,
    webhook_secret: bytes | None = None,
) -> bool:
    """Serve the dashboard of ``workspace`` on ``sock`` until a signal stops it; ``announce`` is
    called once it answers requests. False when it could not start (uvicorn said why)."""
    cookie = f"orchestrator_token_{address.port}"  # cookies ignore ports: one name per dashboard
    app = build_app(
        workspace,
        token=address.token,
        reads_need_token=address.reads_need_token,
        cookie=cookie,
        commands=commands,
        webhook_secret=webhook_secret,
    )
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=3,
        server_header=False,
    )
    server = _Server(config, app.state.stopping)

    async def main() -> None:
        async with anyio.create_task_group() as group:

            async def when_started() -> None:
                while not server.started:
                    if server.should_exit:
                        return
                    await anyio.sleep(timing.current().serve_start_poll)
                announce(address)

            group.start_soon(when_started)
            await server.serve(sockets=[sock])
            group.cancel_scope.cancel()

    anyio.run(main)
    return server.started
