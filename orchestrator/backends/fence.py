"""An agent CLI run behind the walls of ``backends/guard``, put up by bubblewrap: for a CLI whose
shell tool no rule of its own keeps out of them (gemini's ``yolo``, opencode's bash).

    python -m orchestrator.backends.fence --workspace W --project P [--isolated] [--to-project REL] -- CLI...

The CLI sees the whole machine as it is (``/`` bound to ``/``: its home, the network, the
processes, the same process group the runner stops), but the walled places bound read-only over
themselves: a write there fails "Read-only file system", whoever makes it, a command its shell
tool runs included. For an agent in a worktree, the workspace's ``worktrees/`` is open again (its
own is there), the integration branch's closed. The places are worked out here, where the CLI
starts: its directory is the worktree the run moved it into, whose copies are walled too.

A walled place that is not there (no ``.mcp.json`` yet) cannot be bound: an empty one of its kind
is bound read-only there instead, so that none can be made; bubblewrap leaves it on the disk as
the mount's place, and it is removed when the CLI ends (a fence killed with SIGKILL leaves it, empty).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from orchestrator.backends.guard import PROJECT_FILES, Walls, bwrap_bin


def fenced(argv: Sequence[str], walls: Walls) -> list[str]:
    """The command line that runs ``argv`` behind ``walls``."""
    given = ["--workspace", str(walls.workspace), "--project", str(walls.project), "--to-project", walls.to_project]
    return [sys.executable, "-m", "orchestrator.backends.fence", *given, *(["--isolated"] if walls.isolated else []),
            "--", *argv]  # fmt: skip


def bindings(walls: Walls, cwd: Path) -> tuple[list[str], list[Path]]:
    """bubblewrap's arguments for ``walls`` of an agent starting in ``cwd``, and the places made
    for them (a placeholder where a walled place is not there), to remove after."""
    workspace, *closed = walls.closed()
    place = Path(os.path.normpath(cwd / walls.to_project))
    copies = [place / name for name in walls.copies()] if walls.isolated else []
    kinds = {folder / name: kind for name, kind in PROJECT_FILES.items() for folder in (walls.project, place)}
    args = ["--dev-bind", "/", "/", "--ro-bind", str(workspace), str(workspace)]  # (devices as they are: /dev/null)
    for opened in walls.opened():
        opened.mkdir(exist_ok=True)  # (a bind needs its place: made here, outside the walls)
        args += ["--bind", str(opened), str(opened)]
    made: list[Path] = []
    for path in [*closed, *copies]:
        if os.path.lexists(path):
            args += ["--ro-bind", str(path), str(path)]
        elif path.parent.is_dir():
            if kinds.get(path, "directory") == "file":
                args += ["--ro-bind", os.devnull, str(path)]
            else:
                args += ["--tmpfs", str(path), "--remount-ro", str(path)]
            made.append(path)
    return args, made


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orchestrator.backends.fence")
    parser.add_argument("--workspace", required=True, type=Path)
    parser.add_argument("--project", required=True, type=Path)
    parser.add_argument("--to-project", default=".")
    parser.add_argument("--isolated", action="store_true")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    walls = Walls(args.workspace, args.project, args.isolated, args.to_project)
    found = shutil.which(bwrap_bin())
    if found is None:
        print(f"orchestrator: bubblewrap ({bwrap_bin()}) is not installed: apt install bubblewrap", file=sys.stderr)
        return 127
    binds, made = bindings(walls, Path.cwd())
    child = subprocess.Popen([found, "--die-with-parent", *binds, "--", *command])

    def forward(number: int, _frame: object) -> None:
        child.send_signal(number)

    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, forward)
    try:
        code = child.wait()
    finally:
        for path in made:
            _remove_empty(path)
    return code if code >= 0 else 128 - code


def _remove_empty(path: Path) -> None:
    """A placeholder gone again, if it is still the empty one that was made."""
    try:
        if path.is_dir() and not path.is_symlink():
            path.rmdir()
        elif path.is_file() and path.stat().st_size == 0:
            path.unlink()
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
