"""One command called: its workspace and arguments (``Call``), what it answers (``Result``), and the
door other programs come in by (``call``): their JSON arguments read and checked by the command's
options, every path they name kept in the project, the function called, its result or its error
as the class it is. Nothing here prints, parses a command line, or reads what a command printed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.commands.options import Arguments, from_program
from orchestrator.errors import UsageError
from orchestrator.vocabulary import ExitCode

if TYPE_CHECKING:
    from orchestrator.state.workspace import Workspace

WORKSPACE_VARIABLE = "ORCHESTRATOR_WORKSPACE"  # set in every attempt's environment
#: The arguments that name a file or a folder: a caller from outside reaches only the project's.
PATHS = ("directory", "details_file")
PATH_LIMIT = 4096  # bytes of a path a caller may give (Linux's PATH_MAX)


@dataclass(frozen=True, slots=True)
class Voiced:
    """Who said a word a door vouches for, off this machine: a GitHub comment's author (``by``),
    where it can be read (``url``), and the inputs a link was made on (``inputs_seen``: its word
    holds on those only)."""

    by: str
    url: str | None = None
    inputs_seen: str | None = None


@dataclass(slots=True)
class Call:
    """A command called: its arguments, the workspace they name (found when first asked for), and
    who calls (``cli``, ``mcp``, ``api``, ``link``, ``github``): a program's values are data from
    outside. ``voiced``: the person a door vouches for, where it says a person's word (a link's,
    a comment's)."""

    args: Arguments
    source: str = "cli"
    fixed: str | None = None  # the workspace a server was started for: ``directory`` is not taken
    what: str | None = None  # a webhook's: the event that fired it (``pull_request opened``)
    delivery: str | None = None  # a webhook's delivery id: never run twice
    _workspace: Workspace | None = None
    voiced: Voiced | None = None

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            self._workspace = find_workspace(self.fixed if self.fixed is not None else self.args.get("directory"))
        return self._workspace


@dataclass(slots=True)
class Result:
    """What a command answers: ``data`` (its ``--json``, a tool's structured content, a route's
    body), its exit code (``FAILED`` where it did not do what was asked, as ``approve`` of a task
    not at its gate: ``said`` is why), ``notes`` (lines for a person beside the answer: stderr on
    the command line), ``shown``, what the command line prints without ``--json`` (made only when
    asked for), and ``aside``, what it tells on stderr beside that text."""

    data: Any
    code: int = ExitCode.OK
    said: str | None = None
    notes: list[str] = field(default_factory=list)
    shown: Callable[[], str] | None = None
    aside: list[str] = field(default_factory=list)  # lines for a person beside ``shown`` alone (``data`` holds them)

    @property
    def ok(self) -> bool:
        return self.code == ExitCode.OK

    def payload(self) -> Any:
        """``data``, made now where it is made only when asked for (a callable: what the command line's
        text does not need, as ``update``'s task read again)."""
        return self.data() if callable(self.data) else self.data


def find_workspace(directory: str | None) -> Workspace:
    """The workspace named, else the one of the task this runs in (``$ORCHESTRATOR_WORKSPACE``: an
    agent calling a command from inside its task), else ``.orchestrator`` here."""
    from orchestrator.state.workspace import DEFAULT_DIR, Workspace

    return Workspace.find(directory or os.environ.get(WORKSPACE_VARIABLE) or DEFAULT_DIR)


def confine(arguments: Mapping[str, Any], reach: Path) -> None:
    """``UsageError`` in one line, before anything is read, for a path argument that leads out of
    ``reach`` (the project, or the folder the server was started in), a symlink followed."""
    for name in PATHS:
        given = arguments.get(name)
        if not isinstance(given, str) or not given:
            continue
        if len(os.fsencode(given)) > PATH_LIMIT:
            raise UsageError(f"{name}: a path of {len(given):,} characters, at most {PATH_LIMIT} — nothing was read")
        found = Path(os.path.realpath(given))
        if found != reach and reach not in found.parents:
            raise UsageError(
                f"{name} {given[:200]}: outside {reach} — a call from another program reaches only the project's "
                "files; nothing was read"
            )


def reach_of(fixed: str | None, started_in: Path | None = None) -> Path:
    """What a caller may reach: the fixed workspace's project, else the folder the server was started in."""
    if fixed is not None:
        return Path(os.path.realpath(find_workspace(fixed).project_dir))
    return Path(os.path.realpath(started_in or Path.cwd()))


def call(
    name: str,
    given: Mapping[str, Any],
    *,
    source: str,
    fixed: str | None = None,
    reach: Path | None = None,
    defaults: Mapping[str, Any] | None = None,
    what: str | None = None,
    delivery: str | None = None,
) -> Result:
    """``name`` called by another program with ``given`` (its options by name, as JSON gives them),
    in the workspace ``fixed`` or the one ``directory`` names, within ``reach`` (``reach_of``):
    its ``Result``, or its error raised as the class it is. ``defaults``: the door's own defaults
    for what the caller left out (MCP's ``status`` lists the tasks that need attention)."""
    from orchestrator.commands.table import COMMANDS

    command = COMMANDS.get(name)
    if command is None:
        raise UsageError(f"no command {str(name)[:60]} here — use one of: {', '.join(COMMANDS)}")
    reach = reach or reach_of(fixed)
    merged = {**(defaults or {}), **given}
    for path in PATHS:  # (a relative path is the project's: never the server's own working folder)
        named = merged.get(path)
        if isinstance(named, str) and named and not os.path.isabs(named) and len(named) <= PATH_LIMIT:
            merged[path] = str(reach / named)
    args = from_program(name, command.options, merged, directory=fixed is None)
    confine(merged, reach)
    result: Result = command.function()(Call(args, source, fixed, what, delivery))
    return result
