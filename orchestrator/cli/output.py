"""What every command shares: how it is added to the parser, and how it prints."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from orchestrator.state.workspace import DEFAULT_DIR

Handler = Callable[[argparse.Namespace], int]
Commands = argparse._SubParsersAction  # the parser's sub-commands (argparse has no public name for it)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def warn(message: str) -> None:
    sys.stderr.write(message + "\n")


def add_command(
    sub: Commands[argparse.ArgumentParser], name: str, handler: Handler, help_text: str, *, json_help: str = ""
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    parser.add_argument("--json", action="store_true", help=json_help or "print one JSON object instead of text")
    return parser


def add_directory(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "directory",
        nargs="?",
        default=DEFAULT_DIR,
        help="the workspace (default: .orchestrator in the current directory)",
    )
