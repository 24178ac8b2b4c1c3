"""``orchestrator serve``: the live web dashboard of a workspace (``orchestrator.serve``)."""

from __future__ import annotations

import argparse
import importlib.util
import os

from orchestrator.cli.output import Commands, add_command, add_directory, emit_json
from orchestrator.errors import UsageError
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import ExitCode

TOKEN_ENV = "ORCHESTRATOR_SERVE_TOKEN"
NEEDS = ("starlette", "uvicorn")


def cmd_serve(args: argparse.Namespace) -> int:
    missing = [name for name in NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(
            f"serve needs {' and '.join(missing)}, which a plain install leaves out: "
            "pip install 'task-orchestrator[serve]' (in a checkout: pip install -e '.[serve]')"
        )
    from orchestrator.serve.server import Address, listen, make_address, serve

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: use a port from 1 to 65535, or 0 for any free one")
    workspace = Workspace.find(args.directory)
    given = args.token if args.token is not None else os.environ.get(TOKEN_ENV)
    make_address(args.host, args.port, given)  # a bad token is refused before anything listens
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
                }
            )
        else:
            print(f"Dashboard of {workspace.relative(workspace.root)} at {found.url}", flush=True)
            print("Cancel and retry from the page need the token in this URL; Ctrl-C stops it.", flush=True)

    with sock:
        started = serve(workspace, sock, address, announce)
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
        "Without one, a fresh token guards cancel and retry only",
    )
