"""``orchestrator serve``: the live web dashboard of a workspace and its API (``orchestrator.serve``),
the API's routes calling the commands themselves (``CliCommands``: ``cli/agents/invoke``)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from collections.abc import Mapping
from typing import Any

from orchestrator import redaction
from orchestrator.cli.agents import invoke
from orchestrator.cli.output import Commands, add_command, add_directory, emit_json
from orchestrator.errors import UsageError
from orchestrator.redaction import SECRET_VARIABLE as SECRET_ENV
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import ExitCode

TOKEN_ENV = "ORCHESTRATOR_SERVE_TOKEN"
NEEDS = ("starlette", "uvicorn")


class CliCommands:
    """The commands as the API calls them (``invoke.call``: the command's function, in-process), in the
    served workspace; ``run`` started in the background."""

    def __init__(self, workspace: Workspace) -> None:
        self.fixed = str(workspace.root)

    def call(self, command: str, arguments: Mapping[str, Any], *, source: str = "api") -> invoke.Outcome:
        return invoke.call(command, arguments, fixed=self.fixed, source=source)

    def start_run(
        self, arguments: Mapping[str, Any], *, source: str, what: str | None = None, delivery: str | None = None
    ) -> invoke.Outcome:
        return invoke.start_run(arguments, fixed=self.fixed, source=source, what=what, delivery=delivery)

    def schema(self, command: str) -> dict[str, Any]:
        return invoke.schema(command, directory=False)


def webhook_secret(path: str | None) -> bytes | None:
    """The webhooks' secret: ``--webhook-secret-file``'s first line, else ``$ORCHESTRATOR_WEBHOOK_SECRET``;
    ``None``: hooks are off. A file that cannot be read, or an empty secret, is a ``UsageError``.
    The file is named in ``$ORCHESTRATOR_WEBHOOK_SECRET_FILE`` from then on: this server and the
    runs it starts redact the secret from what they write (``redaction``); no attempt is given it."""
    if path is None:
        given = os.environ.get(SECRET_ENV)
        return given.encode() if given else None
    try:
        secret = redaction.read_secret_file(path)
    except OSError as exc:
        raise UsageError(f"--webhook-secret-file {path}: cannot be read ({exc.strerror})") from None
    if not secret:
        raise UsageError(f"--webhook-secret-file {path}: its first line is empty — put the webhook's secret there")
    os.environ[redaction.SECRET_FILE_VARIABLE] = os.path.abspath(path)
    redaction.refresh()
    return secret


def cmd_serve(args: argparse.Namespace) -> int:
    missing = [name for name in NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(
            f"serve needs {' and '.join(missing)}, which a plain install leaves out: "
            "pip install 'task-orchestrator[serve]' (in a checkout: pip install -e '.[serve]')"
        )
    if args.openapi:
        from orchestrator.serve.openapi import document

        print(json.dumps(document(lambda command: invoke.schema(command, directory=False)), indent=2))
        return ExitCode.OK
    from orchestrator.serve.server import Address, listen, make_address, serve
    from orchestrator.state import memo

    memo.enable()  # (a long-lived process: the files it read are kept while they are the same)

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: use a port from 1 to 65535, or 0 for any free one")
    workspace = Workspace.find(args.directory)
    given = args.token if args.token is not None else os.environ.get(TOKEN_ENV)
    make_address(args.host, args.port, given)  # a bad token is refused before anything listens
    secret = webhook_secret(args.webhook_secret_file)
    sock = listen(args.host, args.port)
    address = make_address(args.host, sock.getsockname()[1], given)

    def announce(found: Address) -> None:
        if args.json:
            emit_json(
                {
                    "ok": True,
                    "url": found.url,
                    "host": found.host,
                    "port": found.port,
                    "workspace": str(workspace.root),
                    "token_required": found.reads_need_token,
                    "hooks": secret is not None,
                }
            )
        else:
            print(f"Dashboard of {workspace.relative(workspace.root)} at {found.url}", flush=True)
            print(
                "Actions and the API (POST) need the token in this URL (X-Orchestrator-Token or Authorization: "
                f"Bearer); webhooks are {'on' if secret else 'off'}; Ctrl-C stops it.",
                flush=True,
            )

    with sock:
        started = serve(workspace, sock, address, announce, CliCommands(workspace), secret)
    return ExitCode.OK if started else ExitCode.FAILED


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "serve",
        cmd_serve,
        "a live web dashboard of the run: the graph, every task's state, briefs, results and logs",
        json_help="print one JSON line with the URL once it listens (for scripts)",
    )
    add_directory(p)
    p.add_argument("--port", type=int, default=8765, help="the port (default 8765; 0: any free port)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default 127.0.0.1, this machine only; any other needs a token)",
    )
    p.add_argument(
        "--token",
        default=None,
        help=f"the token to require on every request (default: ${TOKEN_ENV}); needed off loopback. "
        "Without one, a fresh token guards the actions and the API's POSTs only",
    )
    p.add_argument(
        "--webhook-secret-file",
        metavar="FILE",
        help=f"take webhooks (/hooks/github, /hooks/NAME) signed with the secret on this file's first line "
        f"(default: ${SECRET_ENV}; neither: hooks are off)",
    )
    p.add_argument("--openapi", action="store_true", help="print the API's OpenAPI document and exit")
