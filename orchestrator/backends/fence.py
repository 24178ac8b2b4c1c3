"""An agent CLI run behind the walls of ``backends/guard``, put up by bubblewrap: for a CLI whose
shell tool no rule of its own keeps out of them (gemini's ``yolo``, say: each backend's ``guard`` tells).

    python -I -S .../fence.py [--closed=KIND:PATH]... [--open=PATH]... [--copy=KIND:PATH]... [--bwrap=BWRAP] -- CLI...

The CLI sees the whole machine as it is (``/`` bound to ``/``, devices included: its home, the
network, the processes, the same process group the runner stops), but each closed place bound
read-only over itself: a write there fails "Read-only file system", whoever makes it, a command
its shell tool runs included. The first closed place is the workspace; what is open in it (its
``context/``, and its ``worktrees/`` for an agent in one) is bound again, writable, before the
rest are closed (the integration branch's worktree among them). A copy's path is relative to
where the CLI starts: the worktree the run moved it into, whose own copies are walled too.

A walled place that is not there (no ``.mcp.json`` yet) cannot be bound: an empty one of its kind
(``file``, ``directory``) is bound read-only there instead, so that none can be made; bubblewrap
leaves it on the disk as the mount's place, and it is removed when the CLI ends (a fence killed
with SIGKILL leaves it, empty).

The standard library's ``os`` alone, run by path with ``-I -S``: its start is the interpreter's,
not the package's import, some 100 ms more (``guard.fenced`` makes its command line).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence

# (os and os.path alone: argparse, pathlib and subprocess would double its start)
USAGE = "usage: fence.py [--closed=KIND:PATH]... [--open=PATH]... [--copy=KIND:PATH]... [--bwrap=BWRAP] -- CLI..."


def bindings(
    closed: Sequence[tuple[str, str]], opened: Sequence[str], copies: Sequence[tuple[str, str]], cwd: str
) -> tuple[list[str], list[str]]:
    """bubblewrap's arguments for the walls of an agent starting in ``cwd``, and the places made
    for them (a placeholder where a walled place is not there), to remove after."""
    (_, workspace), *rest = closed
    args = ["--dev-bind", "/", "/", "--ro-bind", workspace, workspace]
    for place in opened:
        os.makedirs(place, exist_ok=True)  # (a bind needs its place: made here, outside the walls)
        args += ["--bind", place, place]
    made: list[str] = []
    for kind, path in [*rest, *((kind, os.path.normpath(os.path.join(cwd, path))) for kind, path in copies)]:
        if os.path.lexists(path):
            args += ["--ro-bind", path, path]
        elif os.path.isdir(os.path.dirname(path)):
            if kind == "file":
                args += ["--ro-bind", os.devnull, path]
            else:
                args += ["--tmpfs", path, "--remount-ro", path]
            made.append(path)
    return args, made


def _read(argv: Sequence[str]) -> tuple[dict[str, list[str]], list[str]]:
    """The options (each ``--NAME=VALUE``, repeatable) and the command after ``--``."""
    given: dict[str, list[str]] = {"closed": [], "open": [], "copy": [], "bwrap": []}
    for index, word in enumerate(argv):
        if word == "--":
            return given, list(argv[index + 1 :])
        name, _, value = word.removeprefix("--").partition("=")
        if name not in given or not value:
            raise SystemExit(USAGE)
        given[name].append(value)
    raise SystemExit(USAGE)


def _kinds(values: list[str]) -> list[tuple[str, str]]:
    return [(kind, path) for kind, _, path in (value.partition(":") for value in values)]


def _which(program: str) -> str | None:
    if os.sep in program:
        return program if os.access(program, os.X_OK) else None
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        found = os.path.join(folder, program)
        if os.access(found, os.X_OK):
            return found
    return None


def main(argv: Sequence[str] | None = None) -> int:
    given, command = _read(sys.argv[1:] if argv is None else argv)
    if not given["closed"] or not command:
        raise SystemExit(USAGE)
    bwrap = (given["bwrap"] or ["bwrap"])[-1]
    found = _which(bwrap)
    if found is None:
        print(f"orchestrator: bubblewrap ({bwrap}) is not installed: apt install bubblewrap", file=sys.stderr)
        return 127
    binds, made = bindings(_kinds(given["closed"]), given["open"], _kinds(given["copy"]), os.getcwd())
    child = os.posix_spawn(found, [found, "--die-with-parent", *binds, "--", *command], os.environ)

    def forward(number: int, _frame: object) -> None:
        os.kill(child, number)

    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, forward)
    try:
        while True:
            try:
                _, status = os.waitpid(child, 0)
                break
            except InterruptedError:
                continue
    finally:
        for path in made:
            _remove_empty(path)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def _remove_empty(path: str) -> None:
    """A placeholder gone again, if it is still the empty one that was made."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        elif os.path.isfile(path) and os.path.getsize(path) == 0:
            os.unlink(path)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
